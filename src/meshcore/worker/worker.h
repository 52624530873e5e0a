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
#include "worker/snapshot.h"

#define MC_WORKER_SCRATCH 16384

typedef struct mc_worker mc_worker_t;
typedef struct mc_wctx mc_wctx_t;

/* Common head of every session kind (TCP proxy now, HTTP later), so the
 * worker can close whatever is left when a drain deadline passes. */
typedef struct mc_session mc_session_t;
struct mc_session {
    mc_list_t link;
    void (*abort)(mc_session_t *s);
    void (*drain)(mc_session_t *s); /* the worker stops: finish soon (NULL: the drain timeout decides) */
};

typedef struct mc_wlistener {
    mc_io_t io;
    mc_wctx_t *ctx;
    uint32_t index; /* in ctx->snap->listeners */
    int registered;
} mc_wlistener_t;

typedef struct mc_wcluster {
    int64_t *swrr;    /* smooth WRR state per endpoint */
    uint32_t *active; /* sessions per endpoint on this worker */
    uint64_t *skip;   /* scratch: endpoints a pick must avoid (mc_lb_skip_words(n) words) */
} mc_wcluster_t;

struct mc_wctx {
    mc_snapshot_t *snap;
    mc_worker_t *w;
    uint32_t users;
    mc_wlistener_t *listeners;
    mc_wcluster_t *clusters;
    int64_t **tcp_swrr;    /* per chain (gidx): tcp_proxy weighted_clusters state */
    int64_t ***route_swrr; /* per chain (gidx), per route split slot: weighted cluster state */
    mc_wctx_t *next_retired;
    mc_task_t free_task; /* freed after the event batch that dropped it */
};

struct mc_worker {
    uint32_t id;
    mc_engine_t *engine;
    pthread_t thread;
    mc_loop_t loop;
    mc_io_t wake;
    int reserve_fd; /* spare descriptor for EMFILE handling */
    mc_stats_shard_t *stats;
    uint32_t server_scope;
    mc_rand_t rand;
    mc_splice_mode_t splice;
    mc_pool_t sessions;      /* TCP proxy sessions */
    mc_pool_t http_sessions; /* HTTP downstream connections */
    mc_pool_t upconns;       /* HTTP upstream connections */
    mc_pool_t bufs;          /* 16 KiB buffers */
    pcre2_match_data *match_data;
    mc_alog_ring_t alog;
    mc_im_table_t im; /* Istio standard metrics */
    mc_pipe_pool_t pipes;
    mc_wctx_t *ctx;
    mc_wctx_t *retired;
    uint64_t acked_gen;
    mc_list_t sessions_list;
    uint64_t n_sessions; /* read by other threads: relaxed atomics */
    int listening;
    int stopping;
    uint64_t stop_deadline;
    char scratch[MC_WORKER_SCRATCH];
};

mc_worker_t *mc_worker_new(mc_engine_t *e, uint32_t id, char *err, size_t errlen);
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

/* Starts the session for a connection accepted on a listener's chain. */
void mc_chain_accept(mc_worker_t *w, mc_wctx_t *c, uint32_t listener, uint32_t chain, int fd,
                     const mc_addr_t *peer);
/* worker/inspect.c: waits for a connection's first bytes to pick its chain. */
void mc_inspect_start(mc_worker_t *w, mc_wctx_t *c, uint32_t listener, int fd, const mc_addr_t *peer);

/* Session bookkeeping used by the proxies. */
void mc_worker_session_add(mc_worker_t *w, mc_session_t *s);
void mc_worker_session_remove(mc_worker_t *w, mc_session_t *s);

#endif
