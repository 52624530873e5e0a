from libc.stdint cimport uint16_t, uint32_t

cdef extern from "meshcore/snapshot.h" nogil:
    ctypedef struct mc_snapshot_builder_t:
        pass
    mc_snapshot_builder_t *mc_sb_new()
    void mc_sb_free(mc_snapshot_builder_t *b)
    const char *mc_sb_error(const mc_snapshot_builder_t *b)
    int mc_sb_add_cluster(mc_snapshot_builder_t *b, const char *name, int lb_policy,
                          uint32_t connect_timeout_ms)
    int mc_sb_add_endpoint(mc_snapshot_builder_t *b, int cluster, const char *ip, uint16_t port,
                           uint32_t weight)
    int mc_sb_add_listener(mc_snapshot_builder_t *b, const char *name, const char *ip,
                           uint16_t port, const char *stat_prefix, uint32_t backlog)
    int mc_sb_set_connection_limit(mc_snapshot_builder_t *b, int listener, const char *stat_prefix,
                                   uint32_t max_connections)
    int mc_sb_set_tcp_proxy(mc_snapshot_builder_t *b, int listener, const char *stat_prefix,
                            uint32_t idle_timeout_ms, uint32_t max_connect_attempts)
    int mc_sb_add_tcp_proxy_cluster(mc_snapshot_builder_t *b, int listener, const char *cluster,
                                    uint32_t weight)
