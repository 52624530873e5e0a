from libc.stdint cimport uint16_t, uint32_t, uint64_t
from libc.stddef cimport size_t

cdef extern from "meshcore/snapshot.h" nogil:
    ctypedef struct mc_snapshot_builder_t:
        pass
    mc_snapshot_builder_t *mc_sb_new()
    void mc_sb_free(mc_snapshot_builder_t *b)
    const char *mc_sb_error(const mc_snapshot_builder_t *b)
    ctypedef struct mc_sb_endpoint_t:
        const char *ip
        uint16_t port
        uint32_t weight
    ctypedef struct mc_sb_cluster_endpoints_t:
        const char *cluster
        const mc_sb_endpoint_t *endpoints
        uint32_t n_endpoints
    ctypedef struct mc_tls_cache_t:
        pass
    mc_tls_cache_t *mc_tls_cache_new()
    void mc_tls_cache_free(mc_tls_cache_t *cache)
    void mc_tls_cache_begin(mc_tls_cache_t *cache)
    void mc_tls_cache_counts(mc_tls_cache_t *cache, uint32_t *entries, uint64_t *hits, uint64_t *misses)
    void mc_sb_set_tls_cache(mc_snapshot_builder_t *b, mc_tls_cache_t *cache)
    int mc_sb_add_cluster(mc_snapshot_builder_t *b, const char *name, int lb_policy,
                          uint32_t connect_timeout_ms)
    int mc_sb_add_endpoint(mc_snapshot_builder_t *b, int cluster, const char *ip, uint16_t port,
                           uint32_t weight)
    int mc_sb_add_listener(mc_snapshot_builder_t *b, const char *name, const char *ip,
                           uint16_t port, const char *stat_prefix, uint32_t backlog)
    int mc_sb_set_reuse_port(mc_snapshot_builder_t *b, int listener, int on)

    int mc_sb_set_global_downstream_max_connections(mc_snapshot_builder_t *b, uint64_t max)
    int mc_sb_set_connection_limit(mc_snapshot_builder_t *b, int listener, const char *stat_prefix,
                                   uint32_t max_connections)
    int mc_sb_set_tcp_proxy(mc_snapshot_builder_t *b, int listener, const char *stat_prefix,
                            uint32_t idle_timeout_ms, uint32_t max_connect_attempts)
    int mc_sb_add_tcp_proxy_cluster(mc_snapshot_builder_t *b, int listener, const char *cluster,
                                    uint32_t weight)

    enum:
        MC_STR_EXACT
        MC_STR_PREFIX
        MC_STR_SUFFIX
        MC_STR_CONTAINS
        MC_STR_REGEX
        MC_STR_PRESENT
    enum:
        MC_HDR_APPEND_OR_ADD
        MC_HDR_ADD_IF_ABSENT
        MC_HDR_OVERWRITE_OR_ADD
        MC_HDR_OVERWRITE_IF_EXISTS
    enum:
        MC_SB_RETRY_5XX
        MC_SB_RETRY_GATEWAY_ERROR
        MC_SB_RETRY_RESET
        MC_SB_RETRY_CONNECT_FAILURE
        MC_SB_RETRY_RETRIABLE_4XX
        MC_SB_RETRY_RETRIABLE_STATUS_CODES
        MC_SB_RETRY_GRPC_CANCELLED
        MC_SB_RETRY_GRPC_DEADLINE_EXCEEDED
        MC_SB_RETRY_GRPC_INTERNAL
        MC_SB_RETRY_GRPC_RESOURCE_EXHAUSTED
        MC_SB_RETRY_GRPC_UNAVAILABLE
        MC_SB_RETRY_REFUSED_STREAM
    enum:
        MC_PATH_PREFIX
        MC_PATH_EXACT
        MC_PATH_REGEX
        MC_PATH_SEPARATED_PREFIX
    enum:
        MC_ACTION_ROUTE
        MC_ACTION_REDIRECT
        MC_ACTION_DIRECT
    enum:
        MC_HASH_HEADER
        MC_HASH_COOKIE
        MC_HASH_SOURCE_IP

    ctypedef struct mc_sb_matcher_t:
        const char *name
        int kind
        const char *value
        int ignore_case
        int invert
    ctypedef struct mc_sb_header_op_t:
        const char *name
        const char *value
        int action
    ctypedef struct mc_sb_header_ops_t:
        const mc_sb_header_op_t *add
        uint32_t n_add
        const char *const *remove
        uint32_t n_remove
    ctypedef struct mc_sb_fault_t:
        int present
        uint32_t delay_ms
        uint32_t delay_ppm
        uint32_t abort_status
        uint32_t abort_ppm
    ctypedef struct mc_sb_retry_t:
        uint32_t retry_on
        uint32_t num_retries
        uint32_t per_try_timeout_ms
        uint32_t base_interval_ms
        uint32_t max_interval_ms
        const uint16_t *codes
        uint32_t n_codes
        int previous_hosts
        uint32_t host_selection_max_attempts
    ctypedef struct mc_sb_hash_policy_t:
        int kind
        const char *name
        int terminal
    ctypedef struct mc_sb_mirror_t:
        const char *cluster
        uint32_t ppm
    ctypedef struct mc_sb_route_t:
        const char *name
        int path_kind
        const char *path
        int case_sensitive
        const mc_sb_matcher_t *headers
        uint32_t n_headers
        const mc_sb_matcher_t *query
        uint32_t n_query
        int action
        const char *const *clusters
        const uint32_t *weights
        uint32_t n_clusters
        uint32_t timeout_ms
        int grpc_timeout_header
        uint32_t grpc_timeout_max_ms
        uint32_t grpc_timeout_offset_ms
        int max_grpc_timeout
        uint32_t max_grpc_timeout_ms
        uint32_t grpc_offset_ms
        int stream_duration
        uint32_t stream_duration_ms
        int has_retry
        mc_sb_retry_t retry
        const char *prefix_rewrite
        const char *regex_rewrite
        const char *regex_substitution
        const char *host_rewrite
        const mc_sb_mirror_t *mirrors
        uint32_t n_mirrors
        const mc_sb_hash_policy_t *hash
        uint32_t n_hash
        mc_sb_fault_t fault
        const char *redirect_scheme
        const char *redirect_host
        uint32_t redirect_port
        const char *redirect_path
        const char *redirect_prefix
        uint32_t redirect_code
        int strip_query
        uint32_t direct_status
        const char *direct_body
        size_t direct_body_len
        mc_sb_header_ops_t request_ops
        mc_sb_header_ops_t response_ops
    ctypedef struct mc_sb_h2_keepalive_t:
        uint32_t interval_ms
        uint32_t jitter_ms
        uint32_t timeout_ms
        uint32_t idle_interval_ms
    ctypedef struct mc_sb_hcm_t:
        const char *stat_prefix
        uint32_t idle_timeout_ms
        uint32_t stream_idle_timeout_ms
        uint32_t request_timeout_ms
        uint32_t request_headers_timeout_ms
        uint32_t max_stream_duration_ms
        uint32_t max_requests_per_connection
        uint32_t max_request_headers_kb
        uint32_t max_headers_count
        int generate_request_id
        int preserve_external_request_id
        int use_remote_address
        uint32_t xff_num_trusted_hops
        const char *server_name
        int accept_http_10
        const char *default_host_for_http_10
        mc_sb_fault_t fault
        mc_sb_header_ops_t request_ops
        mc_sb_header_ops_t response_ops
        uint32_t access_log_id
        uint32_t tracer_id
        uint32_t random_sampling
        int span_kind
        int normalize_path
        int merge_slashes
        int path_with_escaped_slashes_action
        int codec_type
        uint32_t h2_max_concurrent_streams
        uint32_t h2_initial_stream_window
        uint32_t h2_initial_connection_window
        uint32_t h2_max_outbound_control_frames
        uint32_t h2_max_empty_frames
        mc_sb_h2_keepalive_t h2_keepalive

        int headers_with_underscores_action
        int upgrade_websocket
    ctypedef struct mc_sb_cluster_http_t:
        uint32_t max_connections
        uint32_t max_pending_requests
        uint32_t max_requests
        uint32_t max_retries
        int outlier
        uint32_t consecutive_5xx
        uint32_t consecutive_gateway_failure
        uint32_t interval_ms
        uint32_t base_ejection_ms
        uint32_t max_ejection_ms
        uint32_t max_ejection_percent
        uint32_t idle_timeout_ms
        uint32_t max_requests_per_connection
        uint32_t ring_min
        uint32_t ring_max
        int protocol
        uint32_t h2_max_concurrent_streams
        uint32_t h2_initial_stream_window
        uint32_t h2_initial_connection_window
        mc_sb_h2_keepalive_t h2_keepalive

    enum:
        MC_UPSTREAM_HTTP1
        MC_UPSTREAM_HTTP2
        MC_UPSTREAM_DOWNSTREAM

    int mc_sb_set_hcm(mc_snapshot_builder_t *b, int listener, const mc_sb_hcm_t *hcm)
    int mc_sb_set_tcp_access_log(mc_snapshot_builder_t *b, int listener, uint32_t log_id)
    int mc_sb_add_vhost(mc_snapshot_builder_t *b, int listener, const char *name, const char *const *domains,
                        uint32_t n_domains, const mc_sb_header_ops_t *request_ops,
                        const mc_sb_header_ops_t *response_ops, const mc_sb_retry_t *retry)
    int mc_sb_add_route(mc_snapshot_builder_t *b, int listener, int vhost, const mc_sb_route_t *route)
    int mc_sb_set_cluster_http(mc_snapshot_builder_t *b, int cluster, const mc_sb_cluster_http_t *h)
    int mc_regex_check(const char *pattern, char *err, size_t errlen)
    size_t mc_pem_uri_san(const char *pem, size_t pem_len, char *buf, size_t len)

    enum:
        MC_CHAIN_ANY
        MC_CHAIN_TLS
        MC_CHAIN_RAW
    ctypedef struct mc_sb_tls_t:
        int downstream
        const char *cert_chain
        size_t cert_chain_len
        const char *private_key
        size_t private_key_len
        const char *trusted_ca
        size_t trusted_ca_len
        int require_client_certificate
        const mc_sb_matcher_t *sans
        uint32_t n_sans
        const char *sni
        const char *alpn
        int min_version
        int max_version
        const char *cipher_list
        const char *ciphersuites
        uint32_t handshake_timeout_ms
    int mc_sb_add_chain(mc_snapshot_builder_t *b, int listener, int transport)
    int mc_sb_set_chain_tls(mc_snapshot_builder_t *b, int listener, const mc_sb_tls_t *tls)
    int mc_sb_set_cluster_tls(mc_snapshot_builder_t *b, int cluster, const mc_sb_tls_t *tls)

    ctypedef struct mc_sb_istio_stats_t:
        int reporter
        const char *peer_metadata
        const char *peer_metadata_id
    int mc_sb_set_istio_stats(mc_snapshot_builder_t *b, int listener, const mc_sb_istio_stats_t *cfg)
    int mc_sb_set_cluster_service(mc_snapshot_builder_t *b, int cluster, uint32_t service_id)

    enum:
        MC_RBAC_ALLOW
        MC_RBAC_DENY
        MC_RBAC_LOG
    enum:
        MC_RBAC_AND
        MC_RBAC_OR
        MC_RBAC_NOT
        MC_RBAC_ANY
        MC_RBAC_HEADER
        MC_RBAC_PATH
        MC_RBAC_DEST_IP
        MC_RBAC_DEST_PORT
        MC_RBAC_SNI
        MC_RBAC_AUTHENTICATED
        MC_RBAC_SOURCE_IP
        MC_RBAC_NEVER
    ctypedef struct mc_sb_rbac_node_t:
        int kind
        const uint32_t *children
        uint32_t n_children
        mc_sb_matcher_t match
        const char *ip
        uint32_t prefix_len
        uint32_t port_lo
        uint32_t port_hi
    ctypedef struct mc_sb_rbac_policy_t:
        const char *name
        uint32_t permissions
        uint32_t principals
    ctypedef struct mc_sb_rbac_t:
        int action
        const mc_sb_rbac_node_t *nodes
        uint32_t n_nodes
        const mc_sb_rbac_policy_t *policies
        uint32_t n_policies
    int mc_sb_add_http_rbac(mc_snapshot_builder_t *b, int listener, const mc_sb_rbac_t *rbac)
    int mc_sb_add_network_rbac(mc_snapshot_builder_t *b, int listener, const mc_sb_rbac_t *rbac)
