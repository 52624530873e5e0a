from libc.stdint cimport uint32_t, uint64_t

from includes.engine cimport mc_engine_t

cdef extern from "meshcore/overload.h" nogil:
    ctypedef enum mc_om_monitor_kind_t:
        MC_OM_FIXED_HEAP
        MC_OM_INJECTED
        MC_OM_DOWNSTREAM_CX
    ctypedef enum mc_om_action_t:
        MC_OA__COUNT
    ctypedef struct mc_om_monitor_t:
        const char *name
        mc_om_monitor_kind_t kind
        uint64_t max
        const char *path
    ctypedef struct mc_om_trigger_t:
        mc_om_action_t action
        uint32_t monitor
        int scaled
        double lo, hi
    enum:
        MC_OM_MAX_MONITORS
        MC_OM_MAX_TRIGGERS
    int mc_engine_set_overload(mc_engine_t *e, uint64_t refresh_interval_ms, const mc_om_monitor_t *monitors,
                               uint32_t n_monitors, const mc_om_trigger_t *triggers, uint32_t n_triggers,
                               char *err, size_t errlen)
    int mc_engine_overload_monitor(mc_engine_t *e, uint32_t i, double *pressure, uint64_t *failed_updates)
    double mc_engine_overload_action(mc_engine_t *e, mc_om_action_t a)
    void mc_engine_overload_sample(mc_engine_t *e)
