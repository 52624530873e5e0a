from libc.stdint cimport uint16_t, uint32_t, uint64_t

from includes.snapshot cimport mc_snapshot_builder_t, mc_sb_cluster_endpoints_t
from includes.stats cimport mc_stats_t

cdef extern from "meshcore/engine.h" nogil:
    ctypedef struct mc_engine_t:
        pass
    ctypedef enum mc_splice_mode_t:
        MC_SPLICE_AUTO
        MC_SPLICE_ALWAYS
        MC_SPLICE_NEVER
    ctypedef struct mc_engine_opts_t:
        uint32_t concurrency
        mc_splice_mode_t splice
        uint32_t max_connections_per_worker
    void mc_engine_opts_default(mc_engine_opts_t *o)
    mc_engine_t *mc_engine_new(const mc_engine_opts_t *opts, char *err, size_t errlen)
    int mc_engine_start(mc_engine_t *e, char *err, size_t errlen)
    int mc_engine_apply(mc_engine_t *e, mc_snapshot_builder_t *b, char *err, size_t errlen)
    ctypedef struct mc_route_weights_t:
        const char *listener
        uint32_t chain, vhost, route
        const uint32_t *weights
        uint32_t n
    int mc_engine_set_endpoints(mc_engine_t *e, const mc_sb_cluster_endpoints_t *changes, uint32_t n, char *err,
                                size_t errlen)
    int mc_engine_set_route_weights(mc_engine_t *e, const mc_route_weights_t *changes, uint32_t n, char *err,
                                    size_t errlen)
    int mc_engine_drain_listeners(mc_engine_t *e)
    int mc_engine_stop(mc_engine_t *e, uint32_t drain_timeout_ms)
    void mc_engine_free(mc_engine_t *e)
    uint32_t mc_engine_concurrency(const mc_engine_t *e)
    uint64_t mc_engine_generation(mc_engine_t *e)
    mc_stats_t *mc_engine_stats(mc_engine_t *e)
    uint64_t mc_engine_active_sessions(mc_engine_t *e)
    int mc_engine_host_outlier(mc_engine_t *e, const char *cluster, const char *ip, uint16_t port,
                               int *ejected, uint32_t *ejections)
    uint32_t mc_engine_listener_count(mc_engine_t *e)
    int mc_engine_listener_info(mc_engine_t *e, uint32_t i, char *name, size_t namelen,
                                char *addr, size_t addrlen, uint16_t *port)
