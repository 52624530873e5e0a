/*
 * The engine: N worker threads, each with its own epoll loop, listen sockets
 * and connections; the control API below is called from one control thread
 * (Python's), is thread-safe against the workers, and never blocks them.
 *
 * Config changes are snapshots: mc_engine_apply() finishes a snapshot, binds
 * any new listen sockets, publishes it, and returns once every worker has
 * switched to it. Connections that started on an older snapshot finish on
 * it. A failed apply (bad name reference, address in use) changes nothing.
 *
 * Functions returning int return 0 on success, <0 with a message in err.
 */
#ifndef MESHCORE_ENGINE_H
#define MESHCORE_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "meshcore/access_log.h"
#include "meshcore/snapshot.h"
#include "meshcore/stats.h"

typedef struct mc_engine mc_engine_t;

/* How bytes are moved between plaintext TCP sockets. AUTO reads into a
 * per-worker scratch buffer and writes straight out (two syscalls, nothing
 * buffered per connection) and switches a direction to splice(2) through a
 * pipe once a read fills the buffer, i.e. for bulk transfers, as HAProxy's
 * splice-auto. ALWAYS splices from the first byte; NEVER never splices. */
typedef enum mc_splice_mode { MC_SPLICE_AUTO = 0, MC_SPLICE_ALWAYS, MC_SPLICE_NEVER } mc_splice_mode_t;

typedef struct mc_engine_opts {
    uint32_t concurrency;           /* worker threads; 0 = number of CPUs */
    mc_splice_mode_t splice;
    uint32_t max_connections_per_worker; /* 0 = unbounded */
} mc_engine_opts_t;

void mc_engine_opts_default(mc_engine_opts_t *o);

mc_engine_t *mc_engine_new(const mc_engine_opts_t *opts, char *err, size_t errlen);
int mc_engine_start(mc_engine_t *e, char *err, size_t errlen);

/* Takes the snapshot out of b (b is left empty and must still be freed). */
int mc_engine_apply(mc_engine_t *e, mc_snapshot_builder_t *b, char *err, size_t errlen);

/* ---- incremental changes (engine/engine_incremental.c) ----
 *
 * Both refuse the whole change (nothing applied) with a message in err. */

/* New endpoint lists for some clusters of the running snapshot: a new
 * snapshot sharing everything else with it, published like an apply. */
int mc_engine_set_endpoints(mc_engine_t *e, const mc_sb_cluster_endpoints_t *changes, uint32_t n, char *err,
                            size_t errlen);

/* New weights for weighted-cluster routes of the running snapshot, in place:
 * route `route` of virtual host `vhost` of the HTTP connection manager on
 * filter chain `chain` of listener `listener`; n must be the route's number
 * of clusters; a weight 0 counts as 1, as in the compiler. Workers use the
 * new weights from their next pick; the call does not wait for them (the old
 * arrays are freed by a later call once every worker has moved on). */
typedef struct mc_route_weights {
    const char *listener;
    uint32_t chain, vhost, route;
    const uint32_t *weights;
    uint32_t n;
} mc_route_weights_t;

int mc_engine_set_route_weights(mc_engine_t *e, const mc_route_weights_t *changes, uint32_t n, char *err,
                                size_t errlen);

/* Stops accepting on every listener (Envoy's /drain_listeners); existing
 * connections continue. Later applies keep listeners closed. */
int mc_engine_drain_listeners(mc_engine_t *e);

/* Graceful stop: stop accepting, let connections finish for up to
 * drain_timeout_ms, then close what is left; joins the workers. */
int mc_engine_stop(mc_engine_t *e, uint32_t drain_timeout_ms);
void mc_engine_free(mc_engine_t *e);

uint32_t mc_engine_concurrency(const mc_engine_t *e);
uint64_t mc_engine_generation(mc_engine_t *e);
mc_stats_t *mc_engine_stats(mc_engine_t *e);
/* Connections (downstream sessions) open across workers right now. */
uint64_t mc_engine_active_sessions(mc_engine_t *e);

/* Outlier detection's view of one host of a cluster, for the admin API:
 * whether it is ejected now and how many times it has been. 0, or -1 when
 * the engine has no such cluster or host (or ip does not parse). */
int mc_engine_host_outlier(mc_engine_t *e, const char *cluster, const char *ip, uint16_t port, int *ejected,
                           uint32_t *ejections);

/* Access-log sinks, spans and the log writer: meshcore/access_log.h. */

/* Listeners of the current snapshot, for the admin API. */
uint32_t mc_engine_listener_count(mc_engine_t *e);
/* Copies listener i's name and bound address ("ip:port"); -1 if i is out of
 * range. *port is the bound port (0 if the listener is drained). */
int mc_engine_listener_info(mc_engine_t *e, uint32_t i, char *name, size_t namelen, char *addr,
                            size_t addrlen, uint16_t *port);

#endif
