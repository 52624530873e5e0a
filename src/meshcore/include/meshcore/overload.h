/*
 * The bootstrap's overload_manager beyond the global connection limit:
 * resource monitors sampled by one engine thread every refresh_interval,
 * and overload actions their triggers turn on (docs/hardening.md).
 * The workers read the actions' state as one atomic word; nothing on the
 * request path takes a lock.
 */
#ifndef MESHCORE_OVERLOAD_H
#define MESHCORE_OVERLOAD_H

#include <stdint.h>

#include "meshcore/engine.h"

typedef enum {
    MC_OM_FIXED_HEAP,      /* envoy.resource_monitors.fixed_heap: bytes in use / max */
    MC_OM_INJECTED,        /* envoy.resource_monitors.injected_resource: a number in a file */
    MC_OM_DOWNSTREAM_CX,   /* envoy.resource_monitors.global_downstream_max_connections: active / max */
} mc_om_monitor_kind_t;

/* The actions meshcore implements, as bit numbers of the state word. */
typedef enum {
    MC_OA_STOP_ACCEPTING_REQUESTS,    /* new requests: 503, flag OL */
    MC_OA_DISABLE_HTTP_KEEPALIVE,     /* responses carry connection: close */
    MC_OA_STOP_ACCEPTING_CONNECTIONS, /* listeners leave the worker's poll set */
    MC_OA_REJECT_INCOMING_CONNECTIONS, /* accepted and closed at once, counted */
    MC_OA_SHRINK_HEAP,                /* pools trimmed and malloc_trim every period */
    MC_OA__COUNT
} mc_om_action_t;

#define MC_OM_MAX_MONITORS 8
#define MC_OM_MAX_TRIGGERS 32

typedef struct mc_om_monitor {
    const char *name;
    mc_om_monitor_kind_t kind;
    uint64_t max;     /* FIXED_HEAP: max_heap_size_bytes; DOWNSTREAM_CX: max connections */
    const char *path; /* INJECTED: the file */
} mc_om_monitor_t;

typedef struct mc_om_trigger {
    mc_om_action_t action;
    uint32_t monitor; /* index into the monitors */
    int scaled;       /* 0: threshold {value = lo}; 1: scaled {scaling = lo, saturation = hi} */
    double lo, hi;
} mc_om_trigger_t;

/* Replaces the overload manager's config (n_monitors 0: none, the sampler
 * stops and every action is off). The strings are copied. 0, or -1 with err. */
int mc_engine_set_overload(mc_engine_t *e, uint64_t refresh_interval_ms, const mc_om_monitor_t *monitors,
                           uint32_t n_monitors, const mc_om_trigger_t *triggers, uint32_t n_triggers, char *err,
                           size_t errlen);

/* Monitor i as last sampled: pressure in [0, 1] (-1 before the first
 * sample), failed updates; 0, or -1 past the last monitor. */
int mc_engine_overload_monitor(mc_engine_t *e, uint32_t i, double *pressure, uint64_t *failed_updates);
/* An action's state as last computed: 0 inactive .. 1 saturated (the
 * workers act on saturated ones, as Envoy's isSaturated()). */
double mc_engine_overload_action(mc_engine_t *e, mc_om_action_t a);
/* Runs one sampling round now (tests and the first apply: no wait for the interval). */
void mc_engine_overload_sample(mc_engine_t *e);

#endif
