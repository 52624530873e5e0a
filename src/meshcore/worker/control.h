/*
 * What the engine shares with its workers: the current snapshot and the
 * stop/drain requests. Guarded by `lock`; a worker takes it only when woken
 * (a config change, drain, stop), never on the connection path, and
 * acknowledges what it has seen through `acked`.
 */
#ifndef MESHCORE_WORKER_CONTROL_H
#define MESHCORE_WORKER_CONTROL_H

#include <pthread.h>
#include <stdint.h>

#include "worker/snapshot.h"

typedef struct mc_worker_control {
    pthread_mutex_t lock;
    pthread_cond_t acked;
    mc_snapshot_t *current; /* the engine's reference */
    uint64_t generation;    /* bumped by every publish (apply, drain, stop) */
    int stopping, drained;
    uint64_t stop_deadline_ns;
    /* Downstream connections admitted on every listener, across workers:
     * the overload manager's global limit counts this (atomics, no lock). */
    int64_t downstream_cx;
    /* The overload actions now saturated, a bit per mc_om_action_t
     * (meshcore/overload.h): written by the engine's sampler, read by the
     * workers with relaxed atomic loads. */
    uint32_t overload;
} mc_worker_control_t;

static inline int mc_overload_on(const mc_worker_control_t *c, int action)
{
    return (__atomic_load_n(&c->overload, __ATOMIC_RELAXED) >> action) & 1;
}

#endif
