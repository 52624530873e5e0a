/* The engine's control block, shared with workers. Everything here is
 * guarded by `lock`; workers take it only when woken (config change, drain,
 * stop), never on the connection path. */
#ifndef MESHCORE_ENGINE_INTERNAL_H
#define MESHCORE_ENGINE_INTERNAL_H

#include <pthread.h>

#include "meshcore/engine.h"
#include "net/listener.h"
#include "worker/snapshot.h"
#include "worker/worker.h"

struct mc_engine {
    mc_engine_opts_t opts;
    pthread_mutex_t ctl; /* serializes control operations */
    pthread_mutex_t lock;
    pthread_cond_t acked;
    mc_snapshot_t *current; /* the engine's reference */
    uint64_t generation;    /* bumped by every publish (apply, drain, stop) */
    int started, stopping, drained, joined;
    uint64_t stop_deadline_ns;
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
};

#endif
