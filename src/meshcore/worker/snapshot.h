/*
 * A compiled config snapshot: listeners, clusters and endpoints in flat
 * arrays, referring to each other by index. Immutable once applied, shared
 * by all workers, freed when its reference count drops to zero (the engine
 * holds one reference while it is current, each worker one while it uses it).
 */
#ifndef MESHCORE_WORKER_SNAPSHOT_H
#define MESHCORE_WORKER_SNAPSHOT_H

#include <stdint.h>

#include "meshcore/istio_metrics.h"
#include "meshcore/snapshot.h"
#include "meshcore/stats.h"
#include "net/listener.h"
#include "net/sock.h"
#include "net/tls.h"
#include "route/cluster.h"
#include "route/rbac.h"
#include "route/route_config.h"

typedef struct mc_tcp_proxy {
    int present;
    char *stat_prefix;
    uint32_t scope;
    uint64_t idle_timeout_ns;
    uint32_t max_connect_attempts;
    uint32_t access_log_id;
    uint32_t n_clusters, cap_clusters;
    char **cluster_names;
    uint32_t *cluster_idx;
    uint32_t *weights;
} mc_tcp_proxy_t;

/* Istio standard metrics for a chain's connections/requests (istio.stats)
 * and the peer metadata exchange (istio.metadata_exchange). */
typedef struct mc_im_cfg {
    uint8_t reporter;     /* MC_IM_*; MC_IM_REPORTER_NONE: not counted */
    char *exchange;       /* x-envoy-peer-metadata value this proxy sends; NULL: no exchange */
    char *exchange_id;    /* x-envoy-peer-metadata-id */
    size_t exchange_len, exchange_id_len;
} mc_im_cfg_t;

/* A filter chain: which connections it takes (by their first bytes), its
 * downstream TLS, and its terminal filter (exactly one of tcp and hcm). */
typedef struct mc_chain {
    uint8_t transport; /* MC_CHAIN_* */
    uint32_t gidx;     /* index among all chains of the snapshot (per-worker state) */
    mc_tls_ctx_t *tls; /* downstream TLS, or NULL */
    mc_rbac_t **net_rbac; /* envoy.filters.network.rbac, in order */
    uint32_t n_net_rbac;
    mc_tcp_proxy_t tcp;
    mc_hcm_t hcm;
    mc_im_cfg_t im;
} mc_chain_t;

typedef struct mc_listener {
    char *name;
    char *stat_prefix;
    mc_addr_t addr;
    uint32_t backlog;
    uint32_t scope;
    uint32_t conn_limit; /* 0 = none */
    char *conn_limit_prefix;
    uint32_t conn_limit_scope;
    mc_chain_t *chains;
    uint32_t n_chains, cap_chains;
    uint8_t inspect; /* chains differ by transport: look at the first bytes */
    uint8_t reuse_port; /* per-worker SO_REUSEPORT sockets (see net/listener.h) */
    mc_lsock_t *ls;  /* NULL while listeners are drained */
} mc_listener_t;

typedef struct mc_snapshot {
    int refcnt;
    uint64_t generation;
    uint8_t access_logs; /* some listener logs: workers need their rings */
    uint32_t n_listeners, cap_listeners;
    mc_listener_t *listeners;
    uint32_t n_clusters, cap_clusters;
    mc_cluster_t *clusters;
    uint32_t *cluster_index; /* open addressing by name hash: cluster + 1, 0 = empty */
    uint32_t index_cap;      /* a power of two, at least twice n_clusters */
    uint32_t n_chains; /* over all listeners */
    /* A snapshot derived from another (worker/snapshot_derive.c) borrows
     * what did not change: its listeners array as a whole, and the arrays of
     * each unchanged cluster. Each borrow holds a reference on the snapshot
     * that owns the memory (never on a borrower, so derivations do not
     * chain). NULL: owned here. */
    struct mc_snapshot *listeners_owner;
    struct mc_snapshot **cluster_owner; /* NULL, or one per cluster */
} mc_snapshot_t;

struct mc_snapshot_builder {
    mc_snapshot_t *snap;
    mc_tls_cache_t *tls_cache; /* borrowed; NULL: every TLS context gets its own SSL_CTX */
    char error[256];
};

/* Envoy's ring for a RING_HASH cluster (c->ring_*, owned by c): points in
 * proportion to c->weights, between ring_min and ring_max in all; a point is
 * xxHash64 of "<endpoint name>_<i>". 0, or -1 when out of memory. */
int mc_cluster_build_ring(mc_cluster_t *c, uint64_t total_weight);

/* Resolves cluster names, computes cumulative weights and rings, links
 * clusters and endpoints to their shared runtime state and registers the
 * stats scopes. -1 with a message on a dangling name. */
int mc_snapshot_finalize(mc_snapshot_t *s, mc_stats_t *stats, mc_cluster_registry_t *clusters, char *err,
                         size_t errlen);

/* One cluster's part of mc_snapshot_finalize. */
int mc_snapshot_finalize_cluster(mc_cluster_t *c, mc_stats_t *stats, mc_cluster_registry_t *clusters, char *err,
                                 size_t errlen);

/* The index of the cluster named `name`, or -1. */
int mc_snapshot_find_cluster(const mc_snapshot_t *s, const char *name);

/* A new snapshot sharing everything with `base` (finalized and applied) but
 * the endpoints of the clusters in `changes`, which are finalized here. The
 * listeners (and so the sockets, route tables, chains) are base's. NULL with
 * a message in err naming the cluster and endpoint. */
mc_snapshot_t *mc_snapshot_with_endpoints(mc_snapshot_t *base, const mc_sb_cluster_endpoints_t *changes, uint32_t n,
                                          mc_stats_t *stats, mc_cluster_registry_t *clusters, char *err,
                                          size_t errlen);

void mc_snapshot_ref(mc_snapshot_t *s);
void mc_snapshot_unref(mc_snapshot_t *s);

#endif
