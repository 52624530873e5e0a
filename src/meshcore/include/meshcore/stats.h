/*
 * Stats: named scopes of counters, gauges and histograms, sharded per worker.
 *
 * A scope is (kind, name), e.g. (CLUSTER, "backend"); its slots are fixed per
 * kind (the tables in stats/stats.c). Scopes are registered by the control
 * thread when a config snapshot is built and live for the life of the engine,
 * so a counter keeps counting across config reloads, as in Envoy. Each worker
 * owns one shard and is its only writer; readers sum shards.
 *
 * Bounded: at most MC_STATS_MAX_SCOPES scopes. Registration past the bound
 * returns scope 0 ("overflow"), which absorbs writes and is reported once.
 */
#ifndef MESHCORE_STATS_H
#define MESHCORE_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "meshcore/histogram.h"

#define MC_STATS_MAX_SCOPES 16384
#define MC_STATS_SLOTS 48
#define MC_STATS_HISTS 4
#define MC_STATS_NAME_MAX 160

typedef enum mc_scope_kind {
    MC_SCOPE_OVERFLOW = 0,
    MC_SCOPE_SERVER,     /* engine-wide */
    MC_SCOPE_LISTENER,   /* listener.<stat_prefix or address> */
    MC_SCOPE_TCP,        /* tcp.<tcp_proxy stat_prefix> */
    MC_SCOPE_CONN_LIMIT, /* connection_limit.<stat_prefix> */
    MC_SCOPE_CLUSTER,    /* cluster.<name> */
    MC_SCOPE_HOST,       /* <cluster>::<ip:port>, for /clusters */
    MC_SCOPE_HTTP,       /* http.<http_connection_manager stat_prefix> */
    MC_SCOPE__COUNT
} mc_scope_kind_t;

/* Slot numbers per kind. Names in stats/stats.c must follow this order. */
enum {
    MC_SERVER_WORKERS_STARTED, MC_SERVER_CONN_POOL_EXHAUSTED, MC_SERVER_SPLICE_FALLBACK,
    MC_SERVER__SLOTS
};
enum {
    MC_LISTENER_DOWNSTREAM_CX_TOTAL, MC_LISTENER_DOWNSTREAM_CX_ACTIVE,
    MC_LISTENER_DOWNSTREAM_CX_DESTROY, MC_LISTENER_DOWNSTREAM_CX_OVERFLOW,
    MC_LISTENER_SSL_HANDSHAKE, MC_LISTENER_SSL_CONNECTION_ERROR, MC_LISTENER_SSL_FAIL_VERIFY_ERROR,
    MC_LISTENER_SSL_FAIL_VERIFY_SAN, MC_LISTENER_SSL_NO_CERTIFICATE,
    MC_LISTENER__SLOTS
};
enum { MC_LISTENER_H_DOWNSTREAM_CX_LENGTH_MS, MC_LISTENER__HISTS };
enum {
    MC_TCP_DOWNSTREAM_CX_TOTAL, MC_TCP_DOWNSTREAM_CX_NO_ROUTE,
    MC_TCP_DOWNSTREAM_CX_RX_BYTES_TOTAL, MC_TCP_DOWNSTREAM_CX_TX_BYTES_TOTAL,
    MC_TCP_IDLE_TIMEOUT, MC_TCP_UPSTREAM_FLUSH_TOTAL, MC_TCP_SPLICED_BYTES_TOTAL,
    MC_TCP_RBAC_ALLOWED, MC_TCP_RBAC_DENIED,
    MC_TCP__SLOTS
};
enum { MC_CONN_LIMIT_ACTIVE_CONNECTIONS, MC_CONN_LIMIT_LIMITED_CONNECTIONS, MC_CONN_LIMIT__SLOTS };
enum {
    MC_CLUSTER_UPSTREAM_CX_TOTAL, MC_CLUSTER_UPSTREAM_CX_ACTIVE,
    MC_CLUSTER_UPSTREAM_CX_CONNECT_FAIL, MC_CLUSTER_UPSTREAM_CX_CONNECT_TIMEOUT,
    MC_CLUSTER_UPSTREAM_CX_CONNECT_ATTEMPTS_EXCEEDED, MC_CLUSTER_UPSTREAM_CX_CONNECT_RETRY,
    MC_CLUSTER_UPSTREAM_CX_NONE_HEALTHY, MC_CLUSTER_UPSTREAM_CX_DESTROY,
    MC_CLUSTER_UPSTREAM_CX_RX_BYTES_TOTAL, MC_CLUSTER_UPSTREAM_CX_TX_BYTES_TOTAL,
    /* HTTP */
    MC_CLUSTER_UPSTREAM_CX_OVERFLOW, MC_CLUSTER_UPSTREAM_CX_IDLE_TIMEOUT,
    MC_CLUSTER_UPSTREAM_RQ_TOTAL, MC_CLUSTER_UPSTREAM_RQ_ACTIVE,
    MC_CLUSTER_UPSTREAM_RQ_PENDING_TOTAL, MC_CLUSTER_UPSTREAM_RQ_PENDING_ACTIVE,
    MC_CLUSTER_UPSTREAM_RQ_PENDING_OVERFLOW,
    MC_CLUSTER_UPSTREAM_RQ_1XX, MC_CLUSTER_UPSTREAM_RQ_2XX, MC_CLUSTER_UPSTREAM_RQ_3XX,
    MC_CLUSTER_UPSTREAM_RQ_4XX, MC_CLUSTER_UPSTREAM_RQ_5XX,
    MC_CLUSTER_UPSTREAM_RQ_TIMEOUT, MC_CLUSTER_UPSTREAM_RQ_PER_TRY_TIMEOUT,
    MC_CLUSTER_UPSTREAM_RQ_RETRY, MC_CLUSTER_UPSTREAM_RQ_RETRY_SUCCESS,
    MC_CLUSTER_UPSTREAM_RQ_RETRY_OVERFLOW, MC_CLUSTER_UPSTREAM_RQ_RETRY_LIMIT_EXCEEDED,
    MC_CLUSTER_UPSTREAM_RQ_OVERFLOW, MC_CLUSTER_UPSTREAM_RQ_RX_RESET, MC_CLUSTER_UPSTREAM_RQ_TX_RESET,
    MC_CLUSTER_UPSTREAM_CX_PROTOCOL_ERROR, MC_CLUSTER_UPSTREAM_CX_REUSED,
    MC_CLUSTER_OUTLIER_EJECTIONS_ENFORCED_TOTAL, MC_CLUSTER_UPSTREAM_RQ_MIRRORED,
    MC_CLUSTER_SSL_HANDSHAKE, MC_CLUSTER_SSL_CONNECTION_ERROR, MC_CLUSTER_SSL_FAIL_VERIFY_ERROR,
    MC_CLUSTER_SSL_FAIL_VERIFY_SAN, MC_CLUSTER_SSL_SESSION_REUSED,
    MC_CLUSTER__SLOTS
};
enum {
    MC_CLUSTER_H_UPSTREAM_CX_CONNECT_MS, MC_CLUSTER_H_UPSTREAM_CX_LENGTH_MS, MC_CLUSTER_H_UPSTREAM_RQ_TIME,
    MC_CLUSTER__HISTS
};
enum {
    MC_HOST_CX_TOTAL, MC_HOST_CX_ACTIVE, MC_HOST_CX_CONNECT_FAIL, MC_HOST_RQ_TOTAL, MC_HOST_RQ_ACTIVE,
    MC_HOST_RQ_ERROR, MC_HOST_RQ_SUCCESS, MC_HOST__SLOTS
};
/* http.<stat_prefix>: the downstream side of an http_connection_manager.
 * The response_flag_* counters count requests by Envoy response flag. */
enum {
    MC_HTTP_DOWNSTREAM_CX_TOTAL, MC_HTTP_DOWNSTREAM_CX_ACTIVE,
    MC_HTTP_DOWNSTREAM_CX_RX_BYTES_TOTAL, MC_HTTP_DOWNSTREAM_CX_TX_BYTES_TOTAL,
    MC_HTTP_DOWNSTREAM_CX_PROTOCOL_ERROR, MC_HTTP_DOWNSTREAM_CX_IDLE_TIMEOUT,
    MC_HTTP_DOWNSTREAM_RQ_TOTAL, MC_HTTP_DOWNSTREAM_RQ_ACTIVE,
    MC_HTTP_DOWNSTREAM_RQ_1XX, MC_HTTP_DOWNSTREAM_RQ_2XX, MC_HTTP_DOWNSTREAM_RQ_3XX,
    MC_HTTP_DOWNSTREAM_RQ_4XX, MC_HTTP_DOWNSTREAM_RQ_5XX,
    MC_HTTP_DOWNSTREAM_RQ_TIMEOUT, MC_HTTP_DOWNSTREAM_RQ_RX_RESET, MC_HTTP_DOWNSTREAM_RQ_TX_RESET,
    MC_HTTP_DOWNSTREAM_RQ_IDLE_TIMEOUT, MC_HTTP_NO_ROUTE, MC_HTTP_RQ_DIRECT_RESPONSE, MC_HTTP_RQ_REDIRECT,
    MC_HTTP_FAULT_DELAYS_INJECTED, MC_HTTP_FAULT_ABORTS_INJECTED,
    MC_HTTP_RBAC_ALLOWED, MC_HTTP_RBAC_DENIED,
    /* one per response flag, in MC_RF_* bit order */
    MC_HTTP_RF_FIRST,
    MC_HTTP__SLOTS = MC_HTTP_RF_FIRST + 16
};
enum { MC_HTTP_H_DOWNSTREAM_RQ_TIME, MC_HTTP__HISTS };

typedef struct mc_stats mc_stats_t;

/* n_shards = number of workers. Returns NULL on allocation failure. */
mc_stats_t *mc_stats_new(uint32_t n_shards);
void mc_stats_free(mc_stats_t *st);

/* Registers (or finds) a scope; thread-safe. Returns its id, or 0 when the
 * registry is full. Histograms for the scope are allocated here, never on the
 * hot path. */
uint32_t mc_stats_scope(mc_stats_t *st, mc_scope_kind_t kind, const char *name);

/* Reading, from any thread. */
uint32_t mc_stats_scope_count(const mc_stats_t *st);
/* Returns the kind and copies the name; -1 if id is out of range. */
int mc_stats_scope_info(const mc_stats_t *st, uint32_t id, mc_scope_kind_t *kind,
                        char *name, size_t namelen);
/* Sums slot values over shards into out[MC_STATS_SLOTS]. */
void mc_stats_sum(const mc_stats_t *st, uint32_t id, int64_t out[MC_STATS_SLOTS]);
/* Sums one histogram over shards into *out (zeroed first). -1 if none. */
int mc_stats_sum_hist(const mc_stats_t *st, uint32_t id, uint32_t h, mc_hist_t *out);

/* Slot metadata, per kind. */
uint32_t mc_stats_slot_count(mc_scope_kind_t kind);
const char *mc_stats_slot_name(mc_scope_kind_t kind, uint32_t slot);
int mc_stats_slot_is_gauge(mc_scope_kind_t kind, uint32_t slot);
uint32_t mc_stats_hist_count(mc_scope_kind_t kind);
const char *mc_stats_hist_name(mc_scope_kind_t kind, uint32_t h);
const char *mc_stats_kind_name(mc_scope_kind_t kind);

#endif
