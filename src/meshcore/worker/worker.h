/*
 * A worker: one thread, one loop, its own listen sockets (one per listener,
 * SO_REUSEPORT), connections, pools and stats shard. Nothing here is shared
 * with other workers except the immutable snapshot and the engine's control
 * block, which is read only when the engine wakes the worker.
 *
 * Per-worker mutable state that depends on a snapshot (load-balancer state,
 * listener registrations) lives in a context (mc_wctx_t) tied to that
 * snapshot; sessions pin the context they started on, and a retired context
 * is freed when its last session ends.
 */
#ifndef MESHCORE_WORKER_H
#define MESHCORE_WORKER_H

#include <pthread.h>
#include <stdint.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "core/list.h"
#include "core/loop.h"
#include "core/pool.h"
#include "meshcore/engine.h"
#include "meshcore/rand.h"
#include "net/pipe_pool.h"
#include "stats/alog_ring.h"
#include "stats/istio_table.h"
#include "stats/shard.h"
#include "worker/session.h"
#include "route/picker.h"
#include "worker/snapshot.h"

#define MC_WORKER_SCRATCH 16384

typedef struct mc_worker mc_worker_t;
typedef struct mc_wctx mc_wctx_t;
typedef struct mc_worker_hooks mc_worker_hooks_t;

typedef struct mc_wlistener {
    mc_io_t io;
    mc_wctx_t *ctx;
    uint32_t index; /* in ctx->snap->listeners */
    int registered;
} mc_wlistener_t;


struct mc_wctx {
    mc_snapshot_t *snap;
    mc_worker_t *w;
    uint32_t users;
    mc_wlistener_t *listeners;
    mc_lb_state_t *clusters; /* per cluster of snapshot */
    int64_t **tcp_swrr;    /* per chain (gidx): tcp_proxy weighted_clusters state */
    int64_t ***route_swrr; /* per chain (gidx), per route split slot: weighted cluster state */
    mc_wctx_t *next_retired;
    mc_task_t free_task; /* freed after the event batch that dropped it */
};

struct mc_worker {
    uint32_t id;
    struct mc_worker_control *ctl; /* shared with the engine: worker/control.h */
    pthread_t thread;
    mc_loop_t loop;
    mc_io_t wake;
    int reserve_fd; /* spare descriptor for EMFILE handling */
    mc_stats_shard_t *stats;
    uint32_t server_scope;
    mc_rand_t rand;
    mc_splice_mode_t splice;
    const mc_worker_hooks_t *hooks;
    void *proxy;             /* the layer above's per-worker state (hooks->init) */
    mc_pool_t bufs;          /* 16 KiB buffers */
    pcre2_match_data *match_data;
    mc_alog_ring_t alog;
    mc_im_table_t im; /* Istio standard metrics */
    mc_pipe_pool_t pipes;
    mc_wctx_t *ctx;
    mc_wctx_t *retired;
    uint64_t acked_gen;
    mc_session_list_t sessions;
    int listening;
    int accept_paused; /* stop_accepting_connections: listeners out of the poll set */
    int stopping;
    uint64_t stop_deadline;
    char scratch[MC_WORKER_SCRATCH];
};

/* What the worker runs on accepted connections, given by the layer above
 * (proxy/listener.c), so the worker does not depend on the proxies. */
struct mc_worker_hooks {
    /* A connection accepted on listener `listener` of c's snapshot. Consumes fd. */
    void (*accept)(mc_worker_t *w, mc_wctx_t *c, uint32_t listener, int fd, const mc_addr_t *peer);
    int (*init)(mc_worker_t *w, uint32_t max_connections); /* sets w->proxy; -1 on failure */
    void (*fini)(mc_worker_t *w);
    void (*close_idle)(mc_host_wpool_t *p); /* closes a host's pooled upstream connections */
    /* On the way out, once no session is left: closes what close_idle could
     * not reach (connections to hosts no snapshot names any more). */
    void (*close_upstreams)(mc_worker_t *w);
};

mc_worker_t *mc_worker_new(struct mc_worker_control *ctl, mc_stats_t *stats, uint32_t server_scope,
                          const mc_engine_opts_t *opts, uint32_t id, const mc_worker_hooks_t *hooks, char *err,
                          size_t errlen);
int mc_worker_start(mc_worker_t *w);
void mc_worker_wake(mc_worker_t *w);
void mc_worker_join(mc_worker_t *w);
void mc_worker_free(mc_worker_t *w);

/* Sessions pin the context they run on. */
static inline void mc_wctx_pin(mc_wctx_t *c)
{
    c->users++;
}
void mc_wctx_unpin(mc_wctx_t *c);

#endif
