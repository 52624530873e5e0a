/* The engine: its control block, the workers it runs and the shared cluster
 * state. What the workers see of it is worker/control.h (`shared`). */
#ifndef MESHCORE_ENGINE_INTERNAL_H
#define MESHCORE_ENGINE_INTERNAL_H

#include <pthread.h>

#include "meshcore/engine.h"
#include "net/listener.h"
#include "worker/snapshot.h"
#include "worker/control.h"
#include "worker/worker.h"

struct mc_engine {
    mc_engine_opts_t opts;
    pthread_mutex_t ctl; /* serializes control operations */
    mc_worker_control_t shared; /* with the workers: lock, current snapshot, generation, stop and drain */
    int started, joined;
    uint32_t n_workers;
    mc_worker_t **workers;
    mc_stats_t *stats;
    uint32_t server_scope;
    struct mc_alog_writer *alog; /* formats and writes access logs, hands spans over */
    /* Shared cluster/host runtime state, by cluster name (control thread). */
    mc_cluster_registry_t clusters;
    /* Listen socket sets by address; each holds one registry reference. */
    mc_lsock_t **registry;
    uint32_t n_registry, cap_registry;
    /* Route weight arrays replaced in place (engine_incremental.c), each
     * freed once every worker has acknowledged generation `gen`. */
    struct mc_retired {
        uint64_t gen;
        void *ptr;
    } *retired;
    uint32_t n_retired, cap_retired;
};

int mc_engine_publish(mc_engine_t *e, mc_snapshot_t *s, mc_snapshot_t **old);
/* Bumps the generation and wakes the workers without waiting for them;
 * returns the new generation (0 when no worker runs). */
uint64_t mc_engine_bump(mc_engine_t *e);
/* The generation every worker has acknowledged (UINT64_MAX when none runs). */
uint64_t mc_engine_acked(mc_engine_t *e);

#endif
