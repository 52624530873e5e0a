/*
 * Cluster and host runtime state shared by every worker and kept across
 * config snapshots: circuit-breaker gauges and outlier-detection state.
 *
 * Envoy's circuit breakers and outlier detection are cluster-wide, not
 * per worker, so these are atomics (touched once per request or
 * connection, never per byte). They live in the engine's registry keyed by
 * cluster name (hosts by address) rather than in a snapshot, so a reload
 * neither resets an ejection nor doubles the in-flight allowance.
 */
#ifndef MESHCORE_CLUSTER_STATE_H
#define MESHCORE_CLUSTER_STATE_H

#include <pthread.h>
#include <stdint.h>

#include "core/list.h"
#include "net/sock.h"

typedef struct mc_outlier_cfg {
    uint32_t enabled;
    uint32_t consecutive_5xx;             /* 0 = off; Envoy default 5 */
    uint32_t consecutive_gateway_failure; /* 0 = off */
    uint64_t base_ejection_ns;            /* Envoy default 30 s */
    uint64_t max_ejection_ns;             /* Envoy default 300 s */
    uint32_t max_ejection_percent;        /* Envoy default 10 */
} mc_outlier_cfg_t;

/* A worker's idle upstream connections to one host. Touched only by that
 * worker. */
typedef struct mc_host_wpool {
    mc_list_t idle;
    uint32_t n_idle;
    mc_list_t h2; /* HTTP/2 sessions (proxy/h2_upstream.c), busy or idle */
    void *tls_session; /* SSL_SESSION to resume with this host, or NULL */
    uint64_t seen;     /* last snapshot generation that had this host */
} mc_host_wpool_t;

typedef struct mc_host_state {
    int refcnt;
    mc_addr_t addr;
    mc_host_wpool_t *wpools; /* [n_workers] */
    uint32_t n_workers;
    uint32_t consecutive_5xx;  /* atomics from here on */
    uint32_t consecutive_gw;
    uint32_t num_ejections;
    uint64_t ejected_until_ns; /* 0 = in rotation */
    int64_t rq_active;
    uint64_t ejections_total;
} mc_host_state_t;

typedef struct mc_cluster_state {
    int refcnt;
    char name[160];
    /* circuit-breaker gauges (atomics) */
    int64_t cx_active;
    int64_t rq_pending;
    int64_t rq_active;
    int64_t rq_retry_active;
    uint32_t n_ejected;
    /* per worker: requests waiting for a connection (circuit breaker full),
     * and the worker's open connections to the cluster */
    mc_list_t *wpending;
    uint32_t *wconns;
    /* hosts currently configured (control thread writes, under lock) */
    uint32_t n_workers;
    pthread_mutex_t lock;
    mc_host_state_t **hosts;
    uint32_t n_hosts, cap_hosts;
} mc_cluster_state_t;

/* The engine's registry of cluster states, by name. Control thread only. */
typedef struct mc_cluster_registry {
    mc_cluster_state_t **states;
    uint32_t n, cap;
    uint32_t n_workers;
    uint32_t *index; /* open addressing by name: state + 1, 0 = empty; a power of two >= 2n */
    uint32_t index_cap;
} mc_cluster_registry_t;

/* The state for a cluster name (created if new), with a reference. */
mc_cluster_state_t *mc_cluster_registry_get(mc_cluster_registry_t *r, const char *name);
/* Forgets states no snapshot refers to any more. */
void mc_cluster_registry_prune(mc_cluster_registry_t *r);
void mc_cluster_registry_destroy(mc_cluster_registry_t *r);

mc_cluster_state_t *mc_cluster_state_new(const char *name, uint32_t n_workers);
void mc_cluster_state_ref(mc_cluster_state_t *c);
void mc_cluster_state_unref(mc_cluster_state_t *c);
/* The host state for addr (created if new), with a reference for the caller. */
mc_host_state_t *mc_cluster_state_host(mc_cluster_state_t *c, const mc_addr_t *addr);
void mc_host_state_unref(mc_host_state_t *h);

/* Circuit breakers: try to take one unit of a gauge below `max`; returns 0
 * on success, -1 on overflow (nothing taken). */
int mc_cb_acquire(int64_t *gauge, uint32_t max);
void mc_cb_release(int64_t *gauge);

/* Outlier detection, from any worker. `n_hosts` is the cluster's size in the
 * caller's snapshot (for max_ejection_percent). */
enum { MC_OUTCOME_SUCCESS, MC_OUTCOME_5XX, MC_OUTCOME_GATEWAY /* 502/503/504, connect failure, reset, timeout */ };
/* Returns 1 if this report ejected the host. */
int mc_outlier_report(mc_cluster_state_t *c, mc_host_state_t *h, const mc_outlier_cfg_t *cfg, int outcome,
                      uint32_t n_hosts, uint64_t now);
/* The outlier state of the cluster's host at addr, read without changing
 * it (for the admin API): 0, or -1 if the cluster has no such host. */
int mc_cluster_state_host_outlier(mc_cluster_state_t *c, const mc_addr_t *addr, uint64_t now, int *ejected,
                                  uint32_t *ejections);
/* True while the host is ejected; un-ejects it lazily once its time is up. */
int mc_outlier_ejected(mc_cluster_state_t *c, mc_host_state_t *h, uint64_t now);

#endif
