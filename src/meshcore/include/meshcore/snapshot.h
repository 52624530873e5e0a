/*
 * Building a config snapshot: the C side of "compile xDS". The Python layer
 * validates xDS resources and then describes them through these calls; the
 * engine finishes the snapshot (resolves names, binds listeners, registers
 * stats) when it is applied, and from then on it is immutable.
 *
 * Every call returns the new item's index or 0 on success, and -1 on error,
 * with the reason available from mc_sb_error(). Strings are copied.
 */
#ifndef MESHCORE_SNAPSHOT_H
#define MESHCORE_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

typedef struct mc_snapshot_builder mc_snapshot_builder_t;

mc_snapshot_builder_t *mc_sb_new(void);
void mc_sb_free(mc_snapshot_builder_t *b);
const char *mc_sb_error(const mc_snapshot_builder_t *b);

/* lb_policy: MC_LB_* from meshcore/balancer.h. */
int mc_sb_add_cluster(mc_snapshot_builder_t *b, const char *name, int lb_policy,
                      uint32_t connect_timeout_ms);
int mc_sb_add_endpoint(mc_snapshot_builder_t *b, int cluster, const char *ip, uint16_t port,
                       uint32_t weight);

/* A cluster's whole endpoint list, for mc_engine_set_endpoints (engine.h). */
typedef struct mc_sb_endpoint {
    const char *ip;
    uint16_t port;
    uint32_t weight; /* 0 counts as 1, as mc_sb_add_endpoint */
} mc_sb_endpoint_t;

typedef struct mc_sb_cluster_endpoints {
    const char *cluster;
    const mc_sb_endpoint_t *endpoints;
    uint32_t n_endpoints;
} mc_sb_cluster_endpoints_t;

/* The bootstrap's overload_manager: the resource monitor
 * envoy.resource_monitors.global_downstream_max_connections
 * (max_active_downstream_connections, > 0). Without it the engine derives
 * a limit from RLIMIT_NOFILE (mc_engine_downstream_cx_limit). */
int mc_sb_set_global_downstream_max_connections(mc_snapshot_builder_t *b, uint64_t max);

/* stat_prefix may be NULL or "" (the listener's address is used, as Envoy). */
int mc_sb_add_listener(mc_snapshot_builder_t *b, const char *name, const char *ip, uint16_t port,
                       const char *stat_prefix, uint32_t backlog);
/* Envoy's enable_reuse_port: one SO_REUSEPORT socket per worker, which other
 * processes of the same user can join. Off by default: the engine's workers
 * share one socket that nobody else can bind (see net/listener.h). Takes
 * effect when the address is bound, not on a listener already bound. */
int mc_sb_set_reuse_port(mc_snapshot_builder_t *b, int listener, int on);
/* envoy.filters.network.connection_limit */
int mc_sb_set_connection_limit(mc_snapshot_builder_t *b, int listener, const char *stat_prefix,
                               uint32_t max_connections);
/* envoy.filters.network.tcp_proxy; idle_timeout_ms 0 disables. */
int mc_sb_set_tcp_proxy(mc_snapshot_builder_t *b, int listener, const char *stat_prefix,
                        uint32_t idle_timeout_ms, uint32_t max_connect_attempts);
/* One entry for `cluster`, several (with weights) for `weighted_clusters`. */
int mc_sb_add_tcp_proxy_cluster(mc_snapshot_builder_t *b, int listener, const char *cluster,
                                uint32_t weight);
/* tcp_proxy access_log: records of this listener's connections carry log_id. */
int mc_sb_set_tcp_access_log(mc_snapshot_builder_t *b, int listener, uint32_t log_id);

/* ---- HTTP: envoy.filters.network.http_connection_manager -----------------
 *
 * Plain structs the compiler fills in; every pointer is only read during the
 * call (strings and arrays are copied). Durations are milliseconds with
 * Envoy's defaults already applied by the caller; 0 disables a timeout. */

/* String matchers (type.matcher.v3.StringMatcher) and presence. */
enum { MC_STR_EXACT, MC_STR_PREFIX, MC_STR_SUFFIX, MC_STR_CONTAINS, MC_STR_REGEX, MC_STR_PRESENT };

typedef struct mc_sb_matcher {
    const char *name; /* header (":method", ":authority", ":path" allowed) or query parameter */
    int kind;         /* MC_STR_* */
    const char *value;
    int ignore_case;
    int invert;
} mc_sb_matcher_t;

/* HeaderValueOption.append_action */
enum { MC_HDR_APPEND_OR_ADD, MC_HDR_ADD_IF_ABSENT, MC_HDR_OVERWRITE_OR_ADD, MC_HDR_OVERWRITE_IF_EXISTS };

typedef struct mc_sb_header_op {
    const char *name;
    const char *value;
    int action; /* MC_HDR_* */
} mc_sb_header_op_t;

typedef struct mc_sb_header_ops {
    const mc_sb_header_op_t *add;
    uint32_t n_add;
    const char *const *remove;
    uint32_t n_remove;
} mc_sb_header_ops_t;

/* envoy.filters.http.fault; ppm = parts per million. */
typedef struct mc_sb_fault {
    int present;
    uint32_t delay_ms;
    uint32_t delay_ppm;
    uint32_t abort_status;
    uint32_t abort_ppm;
} mc_sb_fault_t;

/* route.v3.RetryPolicy; retry_on is a mask of these bits, the one
 * definition of them: the compiler sets them, route/retry.c tests them. */
enum {
    MC_SB_RETRY_5XX = 1u << 0,
    MC_SB_RETRY_GATEWAY_ERROR = 1u << 1,
    MC_SB_RETRY_RESET = 1u << 2,
    MC_SB_RETRY_CONNECT_FAILURE = 1u << 3,
    MC_SB_RETRY_RETRIABLE_4XX = 1u << 4,
    MC_SB_RETRY_RETRIABLE_STATUS_CODES = 1u << 5,
    /* gRPC (x-envoy-retry-grpc-on): the grpc-status of a trailers-only response head */
    MC_SB_RETRY_GRPC_CANCELLED = 1u << 6,
    MC_SB_RETRY_GRPC_DEADLINE_EXCEEDED = 1u << 7,
    MC_SB_RETRY_GRPC_INTERNAL = 1u << 8,
    MC_SB_RETRY_GRPC_RESOURCE_EXHAUSTED = 1u << 9,
    MC_SB_RETRY_GRPC_UNAVAILABLE = 1u << 10,
    MC_SB_RETRY_REFUSED_STREAM = 1u << 11,
};

typedef struct mc_sb_retry {
    uint32_t retry_on;
    uint32_t num_retries;
    uint32_t per_try_timeout_ms;
    uint32_t base_interval_ms;
    uint32_t max_interval_ms;
    const uint16_t *codes;
    uint32_t n_codes;
    int previous_hosts;
    uint32_t host_selection_max_attempts;
} mc_sb_retry_t;

enum { MC_PATH_PREFIX, MC_PATH_EXACT, MC_PATH_REGEX, MC_PATH_SEPARATED_PREFIX };
enum { MC_ACTION_ROUTE, MC_ACTION_REDIRECT, MC_ACTION_DIRECT };
enum { MC_HASH_HEADER, MC_HASH_COOKIE, MC_HASH_SOURCE_IP };

typedef struct mc_sb_hash_policy {
    int kind; /* MC_HASH_* */
    const char *name; /* header or cookie name */
    int terminal;
} mc_sb_hash_policy_t;

typedef struct mc_sb_mirror {
    const char *cluster;
    uint32_t ppm;
} mc_sb_mirror_t;

typedef struct mc_sb_route {
    const char *name;
    /* match */
    int path_kind; /* MC_PATH_* */
    const char *path;
    int case_sensitive;
    const mc_sb_matcher_t *headers;
    uint32_t n_headers;
    const mc_sb_matcher_t *query;
    uint32_t n_query;
    /* action */
    int action; /* MC_ACTION_* */
    const char *const *clusters; /* ROUTE: one, or a weighted split */
    const uint32_t *weights;
    uint32_t n_clusters;
    uint32_t timeout_ms;
    /* max_stream_duration: a request's grpc-timeout replaces timeout_ms,
     * capped at grpc_timeout_max_ms (0: uncapped), less the offset */
    int grpc_timeout_header;
    uint32_t grpc_timeout_max_ms, grpc_timeout_offset_ms;
    /* the deprecated max_grpc_timeout (and grpc_timeout_offset): the same for
     * gRPC calls, without a header capped too; ignored with max_stream_duration */
    int max_grpc_timeout;
    uint32_t max_grpc_timeout_ms, grpc_offset_ms;
    /* max_stream_duration.max_stream_duration set (0: the HCM's limit is off) */
    int stream_duration;
    uint32_t stream_duration_ms;
    int has_retry;
    mc_sb_retry_t retry;
    const char *prefix_rewrite;
    const char *regex_rewrite; /* pattern */
    const char *regex_substitution; /* RE2 style: \1 refers to a group */
    const char *host_rewrite;
    const mc_sb_mirror_t *mirrors;
    uint32_t n_mirrors;
    const mc_sb_hash_policy_t *hash;
    uint32_t n_hash;
    mc_sb_fault_t fault; /* typed_per_filter_config override */
    const char *redirect_scheme;
    const char *redirect_host;
    uint32_t redirect_port;
    const char *redirect_path;
    const char *redirect_prefix;
    uint32_t redirect_code;
    int strip_query;
    uint32_t direct_status;
    const char *direct_body;
    size_t direct_body_len;
    mc_sb_header_ops_t request_ops, response_ops;
} mc_sb_route_t;

/* Http2ProtocolOptions.connection_keepalive (proxy/h2_keepalive.c); all 0
 * when absent. */
typedef struct mc_sb_h2_keepalive {
    uint32_t interval_ms;      /* a PING this long after the last ACK; 0: none */
    uint32_t jitter_ms;        /* up to this much added to each interval (interval_jitter of it) */
    uint32_t timeout_ms;       /* no ACK (nor any frame) this long after a PING: close; 0: off */
    uint32_t idle_interval_ms; /* connection_idle_interval (upstream): PING before a stream on a
                                * connection that received nothing this long; 0: never */
} mc_sb_h2_keepalive_t;

typedef struct mc_sb_hcm {
    const char *stat_prefix;
    uint32_t idle_timeout_ms;            /* no request in flight; Envoy default 1 h */
    uint32_t stream_idle_timeout_ms;     /* no bytes during a request; default 5 min */
    uint32_t request_timeout_ms;         /* whole downstream request; default off */
    uint32_t request_headers_timeout_ms; /* request head; default off */
    uint32_t max_stream_duration_ms;     /* a stream's whole life; default off */
    uint32_t max_requests_per_connection; /* 0 = unlimited */
    uint32_t max_request_headers_kb;     /* default 60 */
    uint32_t max_headers_count;          /* default 100 */
    int generate_request_id;
    int preserve_external_request_id;
    int use_remote_address;
    uint32_t xff_num_trusted_hops;
    const char *server_name; /* NULL: keep the upstream's Server header */
    int accept_http_10;      /* http_protocol_options.accept_http_10; 0 (Envoy's default): 426 */
    const char *default_host_for_http_10; /* Host of a 1.0 request without one; NULL: none */
    mc_sb_fault_t fault;     /* the fault filter's own config (present = filter configured) */
    mc_sb_header_ops_t request_ops, response_ops; /* route_config level */
    uint32_t access_log_id;  /* 0: no access log; else records carry this id */
    /* tracing: trace context propagated (W3C traceparent, B3), and a span
     * recorded for sampled requests */
    uint32_t tracer_id;       /* 0: no tracing; else sampled requests' spans carry this id */
    uint32_t random_sampling; /* requests per million sampled when the caller did not decide */
    int span_kind;            /* MC_SPAN_SERVER (ingress) or MC_SPAN_CLIENT (egress) */
    /* path normalization before routing and RBAC (http/path_normalize.h) */
    int normalize_path;                   /* RFC 3986: unreserved escapes decoded, dot segments */
    int merge_slashes;                    /* "//" -> "/" */
    int path_with_escaped_slashes_action; /* the xDS enum's number (MC_SLASHES_*) */
    /* the downstream codec: codec_type and http2_protocol_options (0: the default) */
    int codec_type;                         /* MC_CODEC_*, the xDS enum's number */
    uint32_t h2_max_concurrent_streams;     /* default 100 */
    uint32_t h2_initial_stream_window;      /* default 64 KiB */
    uint32_t h2_initial_connection_window;  /* default 1 MiB */
    uint32_t h2_max_outbound_control_frames; /* SETTINGS/PING acks queued unsent; default 1000 */
    uint32_t h2_max_empty_frames; /* max_consecutive_inbound_frames_with_empty_payload + 1 (0: default 1) */
    mc_sb_h2_keepalive_t h2_keepalive;
    /* common_http_protocol_options.headers_with_underscores_action */
    int headers_with_underscores_action; /* MC_UNDERSCORES_* */
    int upgrade_websocket; /* upgrade_configs websocket: Upgrade requests become tunnels */
} mc_sb_hcm_t;

/* http_connection_manager codec_type (Envoy's numbers) */
enum { MC_CODEC_AUTO = 0, MC_CODEC_HTTP1 = 1, MC_CODEC_HTTP2 = 2 };

/* HttpProtocolOptions.HeadersWithUnderscoresAction, the enum's numbers. */
enum { MC_UNDERSCORES_ALLOW = 0, MC_UNDERSCORES_REJECT_REQUEST = 1, MC_UNDERSCORES_DROP_HEADER = 2 };

int mc_sb_set_hcm(mc_snapshot_builder_t *b, int listener, const mc_sb_hcm_t *hcm);
/* vhost-level retry policy: NULL for none. Returns the vhost's index. */
int mc_sb_add_vhost(mc_snapshot_builder_t *b, int listener, const char *name, const char *const *domains,
                    uint32_t n_domains, const mc_sb_header_ops_t *request_ops,
                    const mc_sb_header_ops_t *response_ops, const mc_sb_retry_t *retry);
int mc_sb_add_route(mc_snapshot_builder_t *b, int listener, int vhost, const mc_sb_route_t *route);

/* Cluster options the HTTP data plane uses (circuit breakers, outlier
 * detection, connection pool, ring hash). */
typedef struct mc_sb_cluster_http {
    uint32_t max_connections;      /* Envoy defaults: 1024 */
    uint32_t max_pending_requests; /* 1024 */
    uint32_t max_requests;         /* 1024 */
    uint32_t max_retries;          /* 3 */
    int outlier;                   /* outlier_detection present */
    uint32_t consecutive_5xx;      /* 0 = off */
    uint32_t consecutive_gateway_failure;
    uint32_t interval_ms;
    uint32_t base_ejection_ms;
    uint32_t max_ejection_ms;
    uint32_t max_ejection_percent;
    uint32_t idle_timeout_ms;      /* pooled upstream connections; default 1 h */
    uint32_t max_requests_per_connection; /* 0 = unlimited */
    uint32_t ring_min, ring_max;   /* RING_HASH sizes; defaults 1024, 8M */
    /* the upstream protocol (HttpProtocolOptions): MC_UPSTREAM_* */
    int protocol;
    uint32_t h2_max_concurrent_streams;    /* 0: the peer's limit only */
    uint32_t h2_initial_stream_window;     /* 0: default 64 KiB */
    uint32_t h2_initial_connection_window; /* 0: default 1 MiB */
    mc_sb_h2_keepalive_t h2_keepalive;
} mc_sb_cluster_http_t;

/* mc_sb_cluster_http_t.protocol: explicit HTTP/1.1, explicit HTTP/2, or the
 * downstream stream's protocol (use_downstream_protocol_config). */
enum { MC_UPSTREAM_HTTP1 = 0, MC_UPSTREAM_HTTP2, MC_UPSTREAM_DOWNSTREAM };

int mc_sb_set_cluster_http(mc_snapshot_builder_t *b, int cluster, const mc_sb_cluster_http_t *h);

/* ---- TLS: envoy.transport_sockets.tls ------------------------------------
 *
 * PEM is passed in memory (the compiler reads Secrets and files). */
typedef struct mc_sb_tls {
    int downstream;         /* 1: a listener's (server) side, 0: a cluster's (client) side */
    const char *cert_chain; /* PEM, leaf first; NULL: no certificate */
    size_t cert_chain_len;
    const char *private_key; /* PEM */
    size_t private_key_len;
    const char *trusted_ca; /* PEM bundle (several roots allowed); NULL: do not verify the peer */
    size_t trusted_ca_len;
    int require_client_certificate;   /* downstream */
    const mc_sb_matcher_t *sans;      /* accepted peer URI SANs (name unused); none: any */
    uint32_t n_sans;
    const char *sni;                  /* upstream */
    const char *alpn;                 /* comma-separated protocols, e.g. "http/1.1" */
    int min_version, max_version;     /* 0x0303 = TLS 1.2, 0x0304 = TLS 1.3; 0 = default (1.2..1.3) */
    const char *cipher_list;          /* TLS 1.2 */
    const char *ciphersuites;         /* TLS 1.3 */
    uint32_t handshake_timeout_ms;    /* 0 = default 10 s */
} mc_sb_tls_t;

/* Filter chain matching on the first bytes of a connection (tls_inspector). */
enum { MC_CHAIN_ANY = 0, MC_CHAIN_TLS, MC_CHAIN_RAW };

/* Adds a filter chain to a listener (one exists from mc_sb_add_listener);
 * the set_* calls for filters and TLS apply to the listener's last chain.
 * Returns the chain's index. */
int mc_sb_add_chain(mc_snapshot_builder_t *b, int listener, int transport);
/* Downstream TLS on the listener's last chain. */
int mc_sb_set_chain_tls(mc_snapshot_builder_t *b, int listener, const mc_sb_tls_t *tls);
/* Upstream TLS for a cluster's connections. */
int mc_sb_set_cluster_tls(mc_snapshot_builder_t *b, int cluster, const mc_sb_tls_t *tls);

/* OpenSSL contexts shared across TLS contexts and compiles (net/tls_cache.c):
 * contexts with the same certificate, key, trust bundle and parameters get
 * one SSL_CTX. The caller keeps the cache alive while a builder uses it;
 * mc_tls_cache_begin() before each compile lets go of contexts the last two
 * compiles did not use. Thread-safe. */
typedef struct mc_tls_cache mc_tls_cache_t;
mc_tls_cache_t *mc_tls_cache_new(void);
void mc_tls_cache_free(mc_tls_cache_t *cache);
void mc_tls_cache_begin(mc_tls_cache_t *cache);
void mc_tls_cache_counts(mc_tls_cache_t *cache, uint32_t *entries, uint64_t *hits, uint64_t *misses);
void mc_sb_set_tls_cache(mc_snapshot_builder_t *b, mc_tls_cache_t *cache);

/* ---- RBAC: envoy.filters.http.rbac / envoy.filters.network.rbac ----------
 *
 * A flattened rule tree: nodes refer to their children by index. */
enum { MC_RBAC_ALLOW = 0, MC_RBAC_DENY = 1, MC_RBAC_LOG = 2 };
enum {
    MC_RBAC_AND, MC_RBAC_OR, MC_RBAC_NOT, MC_RBAC_ANY,
    MC_RBAC_HEADER,        /* match.name + value (":method", ":authority", ":path" too) */
    MC_RBAC_PATH,          /* the path without the query */
    MC_RBAC_DEST_IP,       /* ip/prefix_len */
    MC_RBAC_DEST_PORT,     /* port_lo..port_hi */
    MC_RBAC_SNI,
    MC_RBAC_AUTHENTICATED, /* peer SPIFFE ID; kind PRESENT = any authenticated peer */
    MC_RBAC_SOURCE_IP,     /* ip/prefix_len (source_ip, direct_remote_ip, remote_ip) */
    MC_RBAC_NEVER          /* what meshcore cannot see (JWT metadata...): never matches */
};

typedef struct mc_sb_rbac_node {
    int kind;
    const uint32_t *children;
    uint32_t n_children;
    mc_sb_matcher_t match;
    const char *ip;
    uint32_t prefix_len;
    uint32_t port_lo, port_hi;
} mc_sb_rbac_node_t;

typedef struct mc_sb_rbac_policy {
    const char *name;
    uint32_t permissions; /* node indexes */
    uint32_t principals;
} mc_sb_rbac_policy_t;

typedef struct mc_sb_rbac {
    int action;
    const mc_sb_rbac_node_t *nodes;
    uint32_t n_nodes;
    const mc_sb_rbac_policy_t *policies;
    uint32_t n_policies;
} mc_sb_rbac_t;

/* Appends an RBAC filter to the last chain's http_connection_manager (in
 * http_filters order) or to the chain itself (network RBAC, before its
 * terminal filter). */
int mc_sb_add_http_rbac(mc_snapshot_builder_t *b, int listener, const mc_sb_rbac_t *rbac);
int mc_sb_add_network_rbac(mc_snapshot_builder_t *b, int listener, const mc_sb_rbac_t *rbac);

/* ---- Istio standard metrics (meshcore/istio_metrics.h) --------------------
 *
 * istio.stats on the listener's last chain (its HCM or tcp_proxy counts),
 * and istio.metadata_exchange when the header values are given: an
 * outbound (SOURCE) chain sends them with requests and reads the peer's
 * from responses; an inbound (DESTINATION) chain reads them from requests
 * and answers with its own. Either way the peer's headers are removed
 * before the application sees them. */
typedef struct mc_sb_istio_stats {
    int reporter;                  /* MC_IM_SOURCE / MC_IM_DESTINATION */
    const char *peer_metadata;     /* x-envoy-peer-metadata to send; NULL: no exchange */
    const char *peer_metadata_id;  /* x-envoy-peer-metadata-id */
} mc_sb_istio_stats_t;

int mc_sb_set_istio_stats(mc_snapshot_builder_t *b, int listener, const mc_sb_istio_stats_t *cfg);
/* The id of a cluster's service labels (the exporter maps it back). */
int mc_sb_set_cluster_service(mc_snapshot_builder_t *b, int cluster, uint32_t service_id);

/* Checks a regular expression the way routes compile it (PCRE2); 0 if it
 * compiles, else -1 with the reason in err. */
int mc_regex_check(const char *pattern, char *err, size_t errlen);

/* The first URI SAN (a SPIFFE ID) of the first certificate in a PEM blob,
 * NUL-terminated in buf; 0 when there is none or the PEM is not one. The
 * compiler labels this proxy's own identity with it (Istio metrics). */
size_t mc_pem_uri_san(const char *pem, size_t pem_len, char *buf, size_t len);

#endif
