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
    /* Route weight arrays replaced while a worker did not answer within the
     * grace period (engine_incremental.c): freed with the engine. */
    void **retired;
    uint32_t n_retired;
};

int mc_engine_publish(mc_engine_t *e, mc_snapshot_t *s, mc_snapshot_t **old);

#endif
