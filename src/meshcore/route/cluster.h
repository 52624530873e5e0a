/*
 * A compiled cluster (cluster.v3.Cluster + its ClusterLoadAssignment) as it
 * lives in a snapshot: endpoints in a flat array, the load-balancing tables
 * built once (cumulative weights, the ring), and links to the runtime state
 * shared across snapshots (circuit breakers, outlier detection, pools).
 * Immutable once the snapshot is applied.
 */
#ifndef MESHCORE_ROUTE_CLUSTER_H
#define MESHCORE_ROUTE_CLUSTER_H

#include <stdint.h>

#include "meshcore/snapshot.h"
#include "net/sock.h"
#include "net/tls.h"
#include "route/cluster_state.h"

typedef struct mc_endpoint {
    mc_addr_t addr;
    mc_host_state_t *host; /* shared runtime state (outlier, pools) */
    uint32_t host_scope;
    char name[64]; /* ip:port */
} mc_endpoint_t;

typedef struct mc_cluster {
    char *name;
    uint32_t lb_policy; /* MC_LB_* */
    uint64_t connect_timeout_ns;
    uint32_t n_endpoints, cap_endpoints;
    mc_endpoint_t *endpoints;
    uint32_t *weights;
    uint64_t *cum_weights;
    uint32_t scope;
    mc_cluster_state_t *state; /* shared runtime state (circuit breakers) */
    /* HTTP: circuit breakers, outlier detection, connection pool */
    uint32_t max_connections, max_pending_requests, max_requests, max_retries;
    mc_outlier_cfg_t outlier;
    uint64_t idle_timeout_ns;
    uint32_t max_requests_per_connection;
    uint8_t protocol;            /* MC_UPSTREAM_* */
    uint32_t h2_max_streams;     /* per connection; 0: the peer's SETTINGS only */
    uint32_t h2_stream_window;   /* our receive windows (SETTINGS_INITIAL_WINDOW_SIZE, connection) */
    uint32_t h2_conn_window;
    mc_sb_h2_keepalive_t h2_keepalive; /* connection_keepalive (proxy/h2_keepalive.c) */
    uint32_t ring_min, ring_max;
    mc_tls_ctx_t *tls;     /* upstream TLS, or NULL */
    uint32_t im_service;   /* id of its Istio service labels (destination_service...), 0: unknown */
    uint64_t *ring_hashes; /* RING_HASH: sorted points and their endpoints */
    uint32_t *ring_endpoints;
    uint32_t ring_size;
} mc_cluster_t;

#endif
