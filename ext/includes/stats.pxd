from libc.stdint cimport int64_t, uint32_t

from includes.histogram cimport mc_hist_t

cdef extern from "meshcore/stats.h" nogil:
    enum: MC_STATS_SLOTS
    enum: MC_STATS_NAME_MAX
    ctypedef int mc_scope_kind_t
    ctypedef struct mc_stats_t:
        pass
    uint32_t mc_stats_scope_count(const mc_stats_t *st)
    int mc_stats_scope_info(const mc_stats_t *st, uint32_t id, mc_scope_kind_t *kind,
                            char *name, size_t namelen)
    void mc_stats_sum(const mc_stats_t *st, uint32_t id, int64_t *out)
    int mc_stats_sum_hist(const mc_stats_t *st, uint32_t id, uint32_t h, mc_hist_t *out)
    uint32_t mc_stats_slot_count(mc_scope_kind_t kind)
    const char *mc_stats_slot_name(mc_scope_kind_t kind, uint32_t slot)
    int mc_stats_slot_is_gauge(mc_scope_kind_t kind, uint32_t slot)
    uint32_t mc_stats_hist_count(mc_scope_kind_t kind)
    const char *mc_stats_hist_name(mc_scope_kind_t kind, uint32_t h)
    const char *mc_stats_kind_name(mc_scope_kind_t kind)
