/*
 * The core's primitives for embedders (meshcore.http, meshcore.route,
 * meshcore.tls): the proxy's own HTTP/1.1 parser and chunked decoder, its
 * router over a compiled route table, and its TLS peer-identity rule, run on
 * the caller's inputs outside any worker. Implemented in primitives/ over
 * the same functions the proxy calls, so verdicts cannot drift.
 *
 * Nothing here allocates per call except where a function says so; every
 * pointer an output struct holds points into the caller's buffer (or at a
 * static string) and lives as long as it.
 */
#ifndef MESHCORE_PRIMITIVES_H
#define MESHCORE_PRIMITIVES_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "meshcore/snapshot.h"

/* ---- HTTP/1.1 heads (http/h1_parser.h) ---- */

/* A header field: the same layout as the parser's own (checked at build). */
typedef struct mc_prim_field {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} mc_prim_field_t;

enum { MC_PRIM_BODY_NONE, MC_PRIM_BODY_LENGTH, MC_PRIM_BODY_CHUNKED, MC_PRIM_BODY_UNTIL_CLOSE };

/* A parsed request or status line and its framing. Request-only fields are
 * NULL/0 for a response and the other way round. */
typedef struct mc_prim_head {
    const char *method, *target, *scheme, *path, *query, *authority, *reason;
    size_t method_len, target_len, scheme_len, path_len, query_len, authority_len, reason_len;
    int has_query, has_authority; /* the parser's NULL vs empty */
    int minor_version;
    int status; /* responses */
    int form;   /* requests: 0 origin, 1 absolute, 2 authority, 3 asterisk */
    size_t n_fields;
    int body; /* MC_PRIM_BODY_* */
    uint64_t content_length;
    uint8_t keep_alive, expect_continue, upgrade, connect, te_trailers;
    /* on error: the status the proxy answers (400, 414, 417, 431, 501, 505;
     * 502 for a response) and a static string saying why */
    int error_status;
    const char *error_reason;
} mc_prim_head_t;

typedef struct mc_prim_limits {
    size_t max_head_bytes, max_target_bytes, max_headers;
} mc_prim_limits_t;

/* The proxy's defaults (Envoy's 60 KiB and 100 headers, 8 KiB target). */
void mc_prim_default_limits(mc_prim_limits_t *l);

/* Parses a request head from buf: its length (> 0), -2 for more bytes, -1
 * when malformed (h->error_* set). fields[cap] receives the header fields. */
int mc_prim_parse_request(const char *buf, size_t len, const mc_prim_limits_t *lim, mc_prim_field_t *fields,
                          size_t cap, mc_prim_head_t *h);

/* A response head; to_head / to_connect: it answers a HEAD / CONNECT. */
int mc_prim_parse_response(const char *buf, size_t len, const mc_prim_limits_t *lim, int to_head, int to_connect,
                           mc_prim_field_t *fields, size_t cap, mc_prim_head_t *h);

/* ---- chunked bodies (http/h1_chunked.h) ---- */

typedef struct mc_prim_chunked mc_prim_chunked_t;

/* A decoder with the proxy's limits; NULL when out of memory. */
mc_prim_chunked_t *mc_prim_chunked_new(void);
void mc_prim_chunked_free(mc_prim_chunked_t *c);

/* Decodes the next len bytes of a chunked body: the chunk data goes to out
 * (room for len bytes; *out_len set), framing is validated and dropped.
 * Returns the input bytes that belonged to the body (< len only when it
 * ended: *done set, what follows is the next message), or -1 when malformed
 * (*reason, static; sticky). */
ssize_t mc_prim_chunked_decode(mc_prim_chunked_t *c, const char *in, size_t len, char *out, size_t *out_len,
                               int *done, const char **reason);

/* ---- routing (route/router.c) ---- */

typedef struct mc_prim_router mc_prim_router_t;

/* The route table of listener `listener` of builder b (its
 * http_connection_manager), sealed for matching. b must outlive the router
 * and get no more routes. NULL with err filled on failure. */
mc_prim_router_t *mc_prim_router_new(mc_snapshot_builder_t *b, int listener, char *err, size_t errlen);
void mc_prim_router_free(mc_prim_router_t *r);

/* Matches one request; path is :path (query included). Returns 0 and sets
 * *vhost and *route (indexes in configuration order), or -1 when no virtual
 * host (*vhost = -1) or no route of it matches. */
int mc_prim_router_match(mc_prim_router_t *r, const char *method, size_t method_len, const char *authority,
                         size_t authority_len, const char *path, size_t path_len, const mc_prim_field_t *headers,
                         size_t n_headers, int *vhost, int *route);

/* What a compiled route does, for building its description once. */
typedef struct mc_prim_route_info {
    const char *name;
    int action; /* MC_ACTION_* of snapshot.h */
    uint32_t n_clusters;
    const char *const *clusters;
    const uint32_t *weights;
    const char *redirect_scheme, *redirect_host, *redirect_path, *redirect_prefix; /* NULL: unset */
    uint32_t redirect_port;
    uint16_t redirect_code;
    uint8_t strip_query;
    uint16_t direct_status;
    const char *direct_body;
    size_t direct_body_len;
} mc_prim_route_info_t;

/* Virtual hosts, routes of one, their names; -1 / NULL out of range. */
int mc_prim_router_vhosts(const mc_prim_router_t *r);
int mc_prim_router_routes(const mc_prim_router_t *r, int vhost);
const char *mc_prim_router_vhost_name(const mc_prim_router_t *r, int vhost);
int mc_prim_router_route_info(const mc_prim_router_t *r, int vhost, int route, mc_prim_route_info_t *info);

/* ---- load balancing (route/picker.c) ---- */

typedef struct mc_prim_picker mc_prim_picker_t;

/* A picker over n endpoints with policy MC_LB_* (balancer.h) and the
 * proxy's per-worker state. names: ring points are hashed from them (as the
 * proxy's "ip:port"; at most 63 bytes used); ring_min/max: 0 for Envoy's
 * defaults. NULL with err filled on a bad argument. */
mc_prim_picker_t *mc_prim_picker_new(int policy, uint32_t n, const uint32_t *weights, const char *const *names,
                                     uint32_t ring_min, uint32_t ring_max, uint64_t seed, char *err, size_t errlen);
void mc_prim_picker_free(mc_prim_picker_t *p);

/* New weights for the same endpoints (state kept, ring rebuilt). 0, or -1
 * with err filled. */
int mc_prim_picker_set_weights(mc_prim_picker_t *p, const uint32_t *weights, char *err, size_t errlen);

/* An endpoint index; unhealthy ones are avoided while a healthy one is
 * left. has_hash: the RING_HASH key (else a random pick, as the proxy). */
uint32_t mc_prim_picker_pick(mc_prim_picker_t *p, int has_hash, uint64_t hash);

void mc_prim_picker_set_healthy(mc_prim_picker_t *p, uint32_t i, int healthy);
/* Active requests on endpoint i (LEAST_REQUEST reads them), moved by delta. */
void mc_prim_picker_add_active(mc_prim_picker_t *p, uint32_t i, int delta);
uint32_t mc_prim_picker_active(const mc_prim_picker_t *p, uint32_t i);

/* The key hash of the proxy's hash policies and ring (xxHash64, seed 0). */
uint64_t mc_prim_hash(const char *key, size_t len);

/* ---- TLS peer identity (net/tls.c) ---- */

typedef struct mc_prim_peer_policy mc_prim_peer_policy_t;

/* Accepted peer URI SANs (none: any identity, the one-URI-SAN rule still
 * holds). NULL with err filled when a matcher does not compile. */
mc_prim_peer_policy_t *mc_prim_peer_policy_new(const mc_sb_matcher_t *sans, uint32_t n, char *err, size_t errlen);
void mc_prim_peer_policy_free(mc_prim_peer_policy_t *p);

/* Checks a peer's leaf certificate (DER) as the proxy's handshake does:
 * 1 accepted (its URI SAN, possibly empty, in uri), 0 refused (*why, static),
 * -1 when der is not a certificate. */
int mc_prim_peer_check(const mc_prim_peer_policy_t *p, const unsigned char *der, size_t der_len, char *uri,
                       size_t uri_len, const char **why);

#endif
