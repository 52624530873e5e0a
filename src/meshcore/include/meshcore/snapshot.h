/*
 * Building a config snapshot: the C side of "compile xDS". The Python layer
 * validates xDS resources and then describes them through these calls; the
 * engine finishes the snapshot (resolves names, binds listeners, registers
 * stats) when it is applied, and from then on it is immutable.
 *
 * Every call returns the new item's index or 0 on success, and -1 on error,
 * with the reason available from mc_sb_error(). Strings are copied.
 */
#ifndef MESHCORE_SNAPSHOT_H
#define MESHCORE_SNAPSHOT_H

#include <stdint.h>

typedef struct mc_snapshot_builder mc_snapshot_builder_t;

mc_snapshot_builder_t *mc_sb_new(void);
void mc_sb_free(mc_snapshot_builder_t *b);
const char *mc_sb_error(const mc_snapshot_builder_t *b);

/* lb_policy: MC_LB_* from meshcore/balancer.h. */
int mc_sb_add_cluster(mc_snapshot_builder_t *b, const char *name, int lb_policy,
                      uint32_t connect_timeout_ms);
int mc_sb_add_endpoint(mc_snapshot_builder_t *b, int cluster, const char *ip, uint16_t port,
                       uint32_t weight);

/* stat_prefix may be NULL or "" (the listener's address is used, as Envoy). */
int mc_sb_add_listener(mc_snapshot_builder_t *b, const char *name, const char *ip, uint16_t port,
                       const char *stat_prefix, uint32_t backlog);
/* envoy.filters.network.connection_limit */
int mc_sb_set_connection_limit(mc_snapshot_builder_t *b, int listener, const char *stat_prefix,
                               uint32_t max_connections);
/* envoy.filters.network.tcp_proxy; idle_timeout_ms 0 disables. */
int mc_sb_set_tcp_proxy(mc_snapshot_builder_t *b, int listener, const char *stat_prefix,
                        uint32_t idle_timeout_ms, uint32_t max_connect_attempts);
/* One entry for `cluster`, several (with weights) for `weighted_clusters`. */
int mc_sb_add_tcp_proxy_cluster(mc_snapshot_builder_t *b, int listener, const char *cluster,
                                uint32_t weight);

#endif
