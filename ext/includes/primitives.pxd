from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t

from includes.snapshot cimport mc_sb_matcher_t, mc_snapshot_builder_t

cdef extern from "meshcore/primitives.h" nogil:
    ctypedef struct mc_prim_field_t:
        const char *name
        size_t name_len
        const char *value
        size_t value_len
    enum:
        MC_PRIM_BODY_NONE
        MC_PRIM_BODY_LENGTH
        MC_PRIM_BODY_CHUNKED
        MC_PRIM_BODY_UNTIL_CLOSE
    ctypedef struct mc_prim_head_t:
        const char *method
        const char *target
        const char *scheme
        const char *path
        const char *query
        const char *authority
        const char *reason
        size_t method_len, target_len, scheme_len, path_len, query_len, authority_len, reason_len
        int has_query, has_authority
        int minor_version
        int status
        int form
        size_t n_fields
        int body
        uint64_t content_length
        uint8_t keep_alive, expect_continue, upgrade, connect, te_trailers
        int error_status
        const char *error_reason
    ctypedef struct mc_prim_limits_t:
        size_t max_head_bytes, max_target_bytes, max_headers
    void mc_prim_default_limits(mc_prim_limits_t *l)
    int mc_prim_parse_request(const char *buf, size_t len, const mc_prim_limits_t *lim, mc_prim_field_t *fields,
                              size_t cap, mc_prim_head_t *h)
    int mc_prim_parse_response(const char *buf, size_t len, const mc_prim_limits_t *lim, int to_head,
                               int to_connect, mc_prim_field_t *fields, size_t cap, mc_prim_head_t *h)

    ctypedef struct mc_prim_chunked_t:
        pass
    mc_prim_chunked_t *mc_prim_chunked_new()
    void mc_prim_chunked_free(mc_prim_chunked_t *c)
    ssize_t mc_prim_chunked_decode(mc_prim_chunked_t *c, const char *inp, size_t len, char *out, size_t *out_len,
                                   int *done, const char **reason)

    ctypedef struct mc_prim_router_t:
        pass
    mc_prim_router_t *mc_prim_router_new(mc_snapshot_builder_t *b, int listener, char *err, size_t errlen)
    void mc_prim_router_free(mc_prim_router_t *r)
    int mc_prim_router_match(mc_prim_router_t *r, const char *method, size_t method_len, const char *authority,
                             size_t authority_len, const char *path, size_t path_len,
                             const mc_prim_field_t *headers, size_t n_headers, int *vhost, int *route)
    ctypedef struct mc_prim_route_info_t:
        const char *name
        int action
        uint32_t n_clusters
        const char *const *clusters
        const uint32_t *weights
        const char *redirect_scheme
        const char *redirect_host
        const char *redirect_path
        const char *redirect_prefix
        uint32_t redirect_port
        uint16_t redirect_code
        uint8_t strip_query
        uint16_t direct_status
        const char *direct_body
        size_t direct_body_len
    int mc_prim_router_vhosts(const mc_prim_router_t *r)
    int mc_prim_router_routes(const mc_prim_router_t *r, int vhost)
    const char *mc_prim_router_vhost_name(const mc_prim_router_t *r, int vhost)
    int mc_prim_router_route_info(const mc_prim_router_t *r, int vhost, int route, mc_prim_route_info_t *info)

    ctypedef struct mc_prim_picker_t:
        pass
    mc_prim_picker_t *mc_prim_picker_new(int policy, uint32_t n, const uint32_t *weights, const char *const *names,
                                         uint32_t ring_min, uint32_t ring_max, uint64_t seed, char *err,
                                         size_t errlen)
    void mc_prim_picker_free(mc_prim_picker_t *p)
    int mc_prim_picker_set_weights(mc_prim_picker_t *p, const uint32_t *weights, char *err, size_t errlen)
    uint32_t mc_prim_picker_pick(mc_prim_picker_t *p, int has_hash, uint64_t hash)
    void mc_prim_picker_set_healthy(mc_prim_picker_t *p, uint32_t i, int healthy)
    void mc_prim_picker_add_active(mc_prim_picker_t *p, uint32_t i, int delta)
    uint32_t mc_prim_picker_active(const mc_prim_picker_t *p, uint32_t i)
    uint64_t mc_prim_hash(const char *key, size_t len)

    ctypedef struct mc_prim_peer_policy_t:
        pass
    mc_prim_peer_policy_t *mc_prim_peer_policy_new(const mc_sb_matcher_t *sans, uint32_t n, char *err,
                                                   size_t errlen)
    void mc_prim_peer_policy_free(mc_prim_peer_policy_t *p)
    int mc_prim_peer_check(const mc_prim_peer_policy_t *p, const unsigned char *der, size_t der_len, char *uri,
                           size_t uri_len, const char **why)
