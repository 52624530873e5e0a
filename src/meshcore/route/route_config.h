/*
 * A compiled HTTP route table (route.v3.RouteConfiguration) and the rest of
 * an http_connection_manager's settings, as they live in a snapshot.
 *
 * Immutable after the snapshot is applied. Strings are owned (NUL-terminated
 * copies, lengths kept beside them); regular expressions are compiled once
 * with PCRE2 (JIT when available) and shared by all workers, each of which
 * brings its own match data.
 */
#ifndef MESHCORE_ROUTE_CONFIG_H
#define MESHCORE_ROUTE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "core/match.h"
#include "http/h1_parser.h"
#include "http/path_normalize.h"
#include "meshcore/snapshot.h"
#include "route/retry.h"

typedef struct mc_header_op {
    char *name;
    size_t name_len;
    char *value;
    size_t value_len;
    uint8_t action; /* MC_HDR_* */
} mc_header_op_t;

typedef struct mc_header_ops {
    mc_header_op_t *add;
    uint32_t n_add;
    char **remove;
    size_t *remove_len;
    uint32_t n_remove;
} mc_header_ops_t;

typedef struct mc_fault {
    uint8_t present;
    uint64_t delay_ns;
    uint32_t delay_ppm;
    uint16_t abort_status;
    uint32_t abort_ppm;
} mc_fault_t;

typedef struct mc_mirror {
    char *cluster;
    uint32_t cluster_idx;
    uint32_t ppm;
} mc_mirror_t;

typedef struct mc_hash_policy {
    uint8_t kind; /* MC_HASH_* */
    uint8_t terminal;
    char *name;
    size_t name_len;
} mc_hash_policy_t;

typedef struct mc_route {
    char *name;
    uint8_t path_kind; /* MC_PATH_* */
    uint8_t case_sensitive;
    char *path;
    size_t path_len;
    pcre2_code *path_re;
    mc_matcher_t *headers;
    uint32_t n_headers;
    mc_matcher_t *query;
    uint32_t n_query;

    uint8_t action; /* MC_ACTION_* */
    uint32_t n_clusters;
    char **cluster_names;
    uint32_t *cluster_idx;
    uint32_t *weights;
    uint32_t swrr_slot; /* per-worker split state, when n_clusters > 1 */
    uint64_t timeout_ns;
    uint8_t grpc_timeout_header; /* max_stream_duration.grpc_timeout_header_max set */
    uint64_t grpc_timeout_max_ns, grpc_timeout_offset_ns;
    uint8_t max_grpc_timeout; /* the deprecated max_grpc_timeout set (no max_stream_duration) */
    uint64_t max_grpc_timeout_ns, grpc_offset_ns;
    uint8_t stream_duration; /* max_stream_duration.max_stream_duration set: the HCM's is not used */
    uint64_t stream_duration_ns; /* 0: no limit */
    uint8_t has_retry;
    mc_retry_policy_t retry;
    char *prefix_rewrite;
    size_t prefix_rewrite_len;
    pcre2_code *rewrite_re;
    char *rewrite_sub; /* PCRE2 substitution syntax ($1) */
    char *host_rewrite;
    size_t host_rewrite_len;
    mc_mirror_t *mirrors;
    uint32_t n_mirrors;
    mc_hash_policy_t *hash;
    uint32_t n_hash;
    mc_fault_t fault;

    char *redirect_scheme, *redirect_host, *redirect_path, *redirect_prefix;
    uint32_t redirect_port;
    uint16_t redirect_code;
    uint8_t strip_query;

    uint16_t direct_status;
    char *direct_body;
    size_t direct_body_len;

    mc_header_ops_t req_ops, resp_ops;
} mc_route_t;

enum { MC_DOMAIN_EXACT, MC_DOMAIN_SUFFIX, MC_DOMAIN_PREFIX, MC_DOMAIN_ANY };

typedef struct mc_domain {
    char *pattern; /* lower case; for wildcards, without the '*' */
    size_t len;
    uint8_t kind;
    uint32_t vhost;
} mc_domain_t;

typedef struct mc_vhost {
    char *name;
    mc_route_t *routes;
    uint32_t n_routes, cap_routes;
    mc_header_ops_t req_ops, resp_ops;
    uint8_t has_retry;
    mc_retry_policy_t retry;
} mc_vhost_t;

typedef struct mc_route_table {
    mc_vhost_t *vhosts;
    uint32_t n_vhosts, cap_vhosts;
    mc_domain_t *domains; /* exact (sorted by pattern), then suffix and prefix by length desc */
    uint32_t n_domains, cap_domains;
    uint32_t n_exact;
    int32_t any_vhost; /* "*" or -1 */
    uint32_t n_swrr_slots;
    uint32_t *swrr_slot_size; /* entries per slot */
    uint32_t max_captures;    /* for per-worker PCRE2 match data */
} mc_route_table_t;

typedef struct mc_hcm {
    int present;
    char *stat_prefix;
    uint32_t scope;
    uint64_t idle_timeout_ns, stream_idle_timeout_ns, request_timeout_ns, request_headers_timeout_ns;
    uint64_t max_stream_duration_ns; /* common_http_protocol_options, 0: none */
    uint32_t max_requests_per_connection;
    mc_h1_limits_t limits;
    uint8_t generate_request_id, preserve_external_request_id, use_remote_address;
    uint32_t xff_num_trusted_hops;
    char *server_name;
    size_t server_name_len;
    uint8_t accept_http_10;         /* else HTTP/1.0 gets 426 */
    char *default_host_for_http_10; /* NULL: none */
    size_t default_host_for_http_10_len;
    mc_fault_t fault;
    mc_header_ops_t req_ops, resp_ops;
    uint32_t access_log_id;
    uint32_t tracer_id, random_sampling; /* see mc_sb_hcm_t */
    uint8_t span_kind;
    mc_path_norm_t path_norm; /* applied before RBAC and routing (proxy/http_stream.c) */
    uint8_t codec_type;       /* MC_CODEC_*: which downstream codecs this HCM speaks */
    uint32_t h2_max_streams, h2_stream_window, h2_conn_window; /* http2_protocol_options */
    uint32_t h2_max_control_frames, h2_max_empty_frames;
    mc_sb_h2_keepalive_t h2_keepalive; /* connection_keepalive (proxy/h2_keepalive.c) */

    uint8_t underscores;      /* headers_with_underscores_action: MC_UNDERSCORES_* */
    uint8_t upgrade_websocket; /* upgrade_configs: websocket (proxy/http_upgrade.c) */
    struct mc_rbac **rbac; /* envoy.filters.http.rbac, in http_filters order */
    uint32_t n_rbac;
    mc_route_table_t rt;
} mc_hcm_t;

/* Builder side (route/route_builder.c). Returns 0, or -1 with err filled. */
int mc_hcm_init(mc_hcm_t *h, const mc_sb_hcm_t *spec, char *err, size_t errlen);
int mc_route_table_add_vhost(mc_route_table_t *rt, const char *name, const char *const *domains, uint32_t n,
                             const mc_sb_header_ops_t *req, const mc_sb_header_ops_t *resp,
                             const mc_sb_retry_t *retry, char *err, size_t errlen);
int mc_route_table_add_route(mc_route_table_t *rt, uint32_t vhost, const mc_sb_route_t *spec, char *err,
                             size_t errlen);
/* Sorts domains and numbers split slots; after all adds. */
void mc_route_table_seal(mc_route_table_t *rt);
void mc_hcm_destroy(mc_hcm_t *h);
void mc_retry_from_spec(mc_retry_policy_t *p, const mc_sb_retry_t *s);

#endif
