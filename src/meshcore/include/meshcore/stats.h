/*
 * Stats: named scopes of counters, gauges and histograms, sharded per worker.
 *
 * A scope is (kind, name), e.g. (CLUSTER, "backend"); its slots are fixed per
 * kind (the MC_<KIND>_STATS tables below). Scopes are registered by the control
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
#define MC_STATS_SLOTS 80 /* per scope: the HTTP scope is the largest (with HTTP/2 and upgrades) */
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

/* The slots of each kind, defined once. Each table lists, in slot order,
 * COUNTER(id, name) or GAUGE(id, name), and HIST(id, name) for histograms:
 * the enums below and the registry's names (stats/stats.c) are both
 * generated from it, so a name cannot drift from its slot. */
#define MC_SERVER_STATS(COUNTER, GAUGE)                                                       \
    COUNTER(MC_SERVER_WORKERS_STARTED, "workers_started")                                    \
    COUNTER(MC_SERVER_CONN_POOL_EXHAUSTED, "conn_pool_exhausted")                            \
    COUNTER(MC_SERVER_SPLICE_FALLBACK, "splice_fallback")                                    \
    /* downstream connections admitted on every listener (the global limit's count) */      \
    GAUGE(MC_SERVER_TOTAL_CONNECTIONS, "total_connections")

#define MC_LISTENER_STATS(COUNTER, GAUGE)                                                     \
    COUNTER(MC_LISTENER_DOWNSTREAM_CX_TOTAL, "downstream_cx_total")                          \
    GAUGE(MC_LISTENER_DOWNSTREAM_CX_ACTIVE, "downstream_cx_active")                          \
    COUNTER(MC_LISTENER_DOWNSTREAM_CX_DESTROY, "downstream_cx_destroy")                      \
    COUNTER(MC_LISTENER_DOWNSTREAM_CX_OVERFLOW, "downstream_cx_overflow")                    \
    COUNTER(MC_LISTENER_SSL_HANDSHAKE, "ssl.handshake")                                      \
    COUNTER(MC_LISTENER_SSL_CONNECTION_ERROR, "ssl.connection_error")                        \
    COUNTER(MC_LISTENER_SSL_FAIL_VERIFY_ERROR, "ssl.fail_verify_error")                      \
    COUNTER(MC_LISTENER_SSL_FAIL_VERIFY_SAN, "ssl.fail_verify_san")                          \
    COUNTER(MC_LISTENER_SSL_NO_CERTIFICATE, "ssl.no_certificate")                            \
    /* refused by the overload manager's global_downstream_max_connections */               \
    COUNTER(MC_LISTENER_DOWNSTREAM_GLOBAL_CX_OVERFLOW, "downstream_global_cx_overflow")      \
    /* closed at accept by envoy.overload_actions.reject_incoming_connections */            \
    COUNTER(MC_LISTENER_DOWNSTREAM_CX_OVERLOAD_REJECT, "downstream_cx_overload_reject")      \
    /* listener filters (tls_inspector): before a chain and downstream_cx_total */         \
    GAUGE(MC_LISTENER_DOWNSTREAM_PRE_CX_ACTIVE, "downstream_pre_cx_active")                  \
    COUNTER(MC_LISTENER_DOWNSTREAM_PRE_CX_TIMEOUT, "downstream_pre_cx_timeout")              \
    COUNTER(MC_LISTENER_DOWNSTREAM_LISTENER_FILTER_REMOTE_CLOSE, "downstream_listener_filter_remote_close") \
    COUNTER(MC_LISTENER_DOWNSTREAM_LISTENER_FILTER_ERROR, "downstream_listener_filter_error") \
    COUNTER(MC_LISTENER_NO_FILTER_CHAIN_MATCH, "no_filter_chain_match")
#define MC_LISTENER_HISTS(HIST) HIST(MC_LISTENER_H_DOWNSTREAM_CX_LENGTH_MS, "downstream_cx_length_ms")

#define MC_TCP_STATS(COUNTER, GAUGE)                                                          \
    COUNTER(MC_TCP_DOWNSTREAM_CX_TOTAL, "downstream_cx_total")                               \
    COUNTER(MC_TCP_DOWNSTREAM_CX_NO_ROUTE, "downstream_cx_no_route")                         \
    COUNTER(MC_TCP_DOWNSTREAM_CX_RX_BYTES_TOTAL, "downstream_cx_rx_bytes_total")             \
    COUNTER(MC_TCP_DOWNSTREAM_CX_TX_BYTES_TOTAL, "downstream_cx_tx_bytes_total")             \
    COUNTER(MC_TCP_IDLE_TIMEOUT, "idle_timeout")                                             \
    COUNTER(MC_TCP_UPSTREAM_FLUSH_TOTAL, "upstream_flush_total")                             \
    COUNTER(MC_TCP_SPLICED_BYTES_TOTAL, "spliced_bytes_total")                               \
    COUNTER(MC_TCP_RBAC_ALLOWED, "rbac.allowed")                                             \
    COUNTER(MC_TCP_RBAC_DENIED, "rbac.denied")

#define MC_CONN_LIMIT_STATS(COUNTER, GAUGE)                                                   \
    GAUGE(MC_CONN_LIMIT_ACTIVE_CONNECTIONS, "active_connections")                            \
    COUNTER(MC_CONN_LIMIT_LIMITED_CONNECTIONS, "limited_connections")

#define MC_CLUSTER_STATS(COUNTER, GAUGE)                                                      \
    COUNTER(MC_CLUSTER_UPSTREAM_CX_TOTAL, "upstream_cx_total")                               \
    GAUGE(MC_CLUSTER_UPSTREAM_CX_ACTIVE, "upstream_cx_active")                               \
    COUNTER(MC_CLUSTER_UPSTREAM_CX_CONNECT_FAIL, "upstream_cx_connect_fail")                 \
    COUNTER(MC_CLUSTER_UPSTREAM_CX_CONNECT_TIMEOUT, "upstream_cx_connect_timeout")           \
    COUNTER(MC_CLUSTER_UPSTREAM_CX_CONNECT_ATTEMPTS_EXCEEDED, "upstream_cx_connect_attempts_exceeded") \
    COUNTER(MC_CLUSTER_UPSTREAM_CX_CONNECT_RETRY, "upstream_cx_connect_retry")               \
    COUNTER(MC_CLUSTER_UPSTREAM_CX_NONE_HEALTHY, "upstream_cx_none_healthy")                 \
    COUNTER(MC_CLUSTER_UPSTREAM_CX_DESTROY, "upstream_cx_destroy")                           \
    COUNTER(MC_CLUSTER_UPSTREAM_CX_RX_BYTES_TOTAL, "upstream_cx_rx_bytes_total")             \
    COUNTER(MC_CLUSTER_UPSTREAM_CX_TX_BYTES_TOTAL, "upstream_cx_tx_bytes_total")             \
    /* HTTP */                                                                                \
    COUNTER(MC_CLUSTER_UPSTREAM_CX_OVERFLOW, "upstream_cx_overflow")                         \
    COUNTER(MC_CLUSTER_UPSTREAM_CX_IDLE_TIMEOUT, "upstream_cx_idle_timeout")                 \
    COUNTER(MC_CLUSTER_UPSTREAM_RQ_TOTAL, "upstream_rq_total")                               \
    GAUGE(MC_CLUSTER_UPSTREAM_RQ_ACTIVE, "upstream_rq_active")                               \
    COUNTER(MC_CLUSTER_UPSTREAM_RQ_PENDING_TOTAL, "upstream_rq_pending_total")               \
    GAUGE(MC_CLUSTER_UPSTREAM_RQ_PENDING_ACTIVE, "upstream_rq_pending_active")               \
    COUNTER(MC_CLUSTER_UPSTREAM_RQ_PENDING_OVERFLOW, "upstream_rq_pending_overflow")         \
    COUNTER(MC_CLUSTER_UPSTREAM_RQ_1XX, "upstream_rq_1xx")                                   \
    COUNTER(MC_CLUSTER_UPSTREAM_RQ_2XX, "upstream_rq_2xx")                                   \
    COUNTER(MC_CLUSTER_UPSTREAM_RQ_3XX, "upstream_rq_3xx")                                   \
    COUNTER(MC_CLUSTER_UPSTREAM_RQ_4XX, "upstream_rq_4xx")                                   \
    COUNTER(MC_CLUSTER_UPSTREAM_RQ_5XX, "upstream_rq_5xx")                                   \
    COUNTER(MC_CLUSTER_UPSTREAM_RQ_TIMEOUT, "upstream_rq_timeout")                           \
    COUNTER(MC_CLUSTER_UPSTREAM_RQ_PER_TRY_TIMEOUT, "upstream_rq_per_try_timeout")           \
    COUNTER(MC_CLUSTER_UPSTREAM_RQ_RETRY, "upstream_rq_retry")                               \
    COUNTER(MC_CLUSTER_UPSTREAM_RQ_RETRY_SUCCESS, "upstream_rq_retry_success")               \
    COUNTER(MC_CLUSTER_UPSTREAM_RQ_RETRY_OVERFLOW, "upstream_rq_retry_overflow")             \
    COUNTER(MC_CLUSTER_UPSTREAM_RQ_RETRY_LIMIT_EXCEEDED, "upstream_rq_retry_limit_exceeded") \
    COUNTER(MC_CLUSTER_UPSTREAM_RQ_OVERFLOW, "upstream_rq_overflow")                         \
    COUNTER(MC_CLUSTER_UPSTREAM_RQ_RX_RESET, "upstream_rq_rx_reset")                         \
    COUNTER(MC_CLUSTER_UPSTREAM_RQ_TX_RESET, "upstream_rq_tx_reset")                         \
    COUNTER(MC_CLUSTER_UPSTREAM_CX_PROTOCOL_ERROR, "upstream_cx_protocol_error")             \
    COUNTER(MC_CLUSTER_UPSTREAM_CX_REUSED, "upstream_cx_reused")                             \
    COUNTER(MC_CLUSTER_OUTLIER_EJECTIONS_ENFORCED_TOTAL, "outlier_detection.ejections_enforced_total") \
    COUNTER(MC_CLUSTER_UPSTREAM_RQ_MIRRORED, "upstream_rq_mirrored")                         \
    COUNTER(MC_CLUSTER_SSL_HANDSHAKE, "ssl.handshake")                                       \
    COUNTER(MC_CLUSTER_SSL_CONNECTION_ERROR, "ssl.connection_error")                         \
    COUNTER(MC_CLUSTER_SSL_FAIL_VERIFY_ERROR, "ssl.fail_verify_error")                       \
    COUNTER(MC_CLUSTER_SSL_FAIL_VERIFY_SAN, "ssl.fail_verify_san")                           \
    COUNTER(MC_CLUSTER_SSL_SESSION_REUSED, "ssl.session_reused")                             \
    COUNTER(MC_CLUSTER_HTTP2_KEEPALIVE_TIMEOUT, "http2.keepalive_timeout")
/* cluster.<name>.upstream_rq_<code>: Envoy's per-code counters for a
 * fixed set of codes, the ones dashboards look for, in slots after the table
 * above (MC_CLUSTER_CODE_FIRST + MC_STAT_CODE_<code>). A code outside the set
 * counts in its class (upstream_rq_<N>xx) only: a bounded table, no allocation
 * per request, where Envoy creates a counter per code seen. */
#define MC_STAT_CODES(CODE)                                                                   \
    CODE(101) CODE(200) CODE(201) CODE(202) CODE(204) CODE(206) CODE(301) CODE(302) CODE(304) \
    CODE(307) CODE(308) CODE(400) CODE(401) CODE(403) CODE(404) CODE(405) CODE(408) CODE(409) \
    CODE(413) CODE(429) CODE(500) CODE(501) CODE(502) CODE(503) CODE(504)
#define MC_STAT_CODE_ENUM_(code) MC_STAT_CODE_##code,
enum { MC_STAT_CODES(MC_STAT_CODE_ENUM_) MC_STAT_CODE__COUNT };
#undef MC_STAT_CODE_ENUM_
/* The slot offset of a status code in MC_STAT_CODES, or -1: a table lookup (stats/stats.c). */
int mc_stats_code_index(int status);

#define MC_CLUSTER_HISTS(HIST)                                                                \
    HIST(MC_CLUSTER_H_UPSTREAM_CX_CONNECT_MS, "upstream_cx_connect_ms")                      \
    HIST(MC_CLUSTER_H_UPSTREAM_CX_LENGTH_MS, "upstream_cx_length_ms")                        \
    HIST(MC_CLUSTER_H_UPSTREAM_RQ_TIME, "upstream_rq_time")

#define MC_HOST_STATS(COUNTER, GAUGE)                                                         \
    COUNTER(MC_HOST_CX_TOTAL, "cx_total")                                                    \
    GAUGE(MC_HOST_CX_ACTIVE, "cx_active")                                                    \
    COUNTER(MC_HOST_CX_CONNECT_FAIL, "cx_connect_fail")                                      \
    COUNTER(MC_HOST_RQ_TOTAL, "rq_total")                                                    \
    GAUGE(MC_HOST_RQ_ACTIVE, "rq_active")                                                    \
    COUNTER(MC_HOST_RQ_ERROR, "rq_error")                                                    \
    COUNTER(MC_HOST_RQ_SUCCESS, "rq_success")

/* http.<stat_prefix>: the downstream side of an http_connection_manager.
 * After these come the response_flag_<FLAG> counters, one per Envoy
 * response flag in MC_RF_* bit order (named from stats/response_flags.h). */
#define MC_HTTP_STATS(COUNTER, GAUGE)                                                         \
    COUNTER(MC_HTTP_DOWNSTREAM_CX_TOTAL, "downstream_cx_total")                              \
    GAUGE(MC_HTTP_DOWNSTREAM_CX_ACTIVE, "downstream_cx_active")                              \
    COUNTER(MC_HTTP_DOWNSTREAM_CX_RX_BYTES_TOTAL, "downstream_cx_rx_bytes_total")            \
    COUNTER(MC_HTTP_DOWNSTREAM_CX_TX_BYTES_TOTAL, "downstream_cx_tx_bytes_total")            \
    COUNTER(MC_HTTP_DOWNSTREAM_CX_PROTOCOL_ERROR, "downstream_cx_protocol_error")            \
    COUNTER(MC_HTTP_DOWNSTREAM_CX_IDLE_TIMEOUT, "downstream_cx_idle_timeout")                \
    COUNTER(MC_HTTP_DOWNSTREAM_RQ_TOTAL, "downstream_rq_total")                              \
    GAUGE(MC_HTTP_DOWNSTREAM_RQ_ACTIVE, "downstream_rq_active")                              \
    COUNTER(MC_HTTP_DOWNSTREAM_RQ_1XX, "downstream_rq_1xx")                                  \
    COUNTER(MC_HTTP_DOWNSTREAM_RQ_2XX, "downstream_rq_2xx")                                  \
    COUNTER(MC_HTTP_DOWNSTREAM_RQ_3XX, "downstream_rq_3xx")                                  \
    COUNTER(MC_HTTP_DOWNSTREAM_RQ_4XX, "downstream_rq_4xx")                                  \
    COUNTER(MC_HTTP_DOWNSTREAM_RQ_5XX, "downstream_rq_5xx")                                  \
    COUNTER(MC_HTTP_DOWNSTREAM_RQ_TIMEOUT, "downstream_rq_timeout")                          \
    COUNTER(MC_HTTP_DOWNSTREAM_RQ_RX_RESET, "downstream_rq_rx_reset")                        \
    COUNTER(MC_HTTP_DOWNSTREAM_RQ_TX_RESET, "downstream_rq_tx_reset")                        \
    COUNTER(MC_HTTP_DOWNSTREAM_RQ_IDLE_TIMEOUT, "downstream_rq_idle_timeout")                \
    COUNTER(MC_HTTP_NO_ROUTE, "no_route")                                                    \
    COUNTER(MC_HTTP_RQ_DIRECT_RESPONSE, "rq_direct_response")                                \
    COUNTER(MC_HTTP_RQ_REDIRECT, "rq_redirect")                                              \
    COUNTER(MC_HTTP_RQ_FAILED_PATH_NORMALIZATION, "downstream_rq_failed_path_normalization") \
    COUNTER(MC_HTTP_RQ_REDIRECTED_NORMALIZED_PATH, "downstream_rq_redirected_with_normalized_path") \
    COUNTER(MC_HTTP_FAULT_DELAYS_INJECTED, "fault.delays_injected")                          \
    COUNTER(MC_HTTP_FAULT_ABORTS_INJECTED, "fault.aborts_injected")                          \
    COUNTER(MC_HTTP_RBAC_ALLOWED, "rbac.allowed")                                            \
    COUNTER(MC_HTTP_RBAC_DENIED, "rbac.denied")                                              \
    COUNTER(MC_HTTP_DOWNSTREAM_RQ_HEADER_TIMEOUT, "downstream_rq_header_timeout")            \
    COUNTER(MC_HTTP_DOWNSTREAM_RQ_MAX_DURATION_REACHED, "downstream_rq_max_duration_reached") \
    /* headers_with_underscores_action (Envoy roots these at http1.*, meshcore per HCM) */  \
    COUNTER(MC_HTTP_HTTP1_DROPPED_UNDERSCORES, "http1.dropped_headers_with_underscores")     \
    COUNTER(MC_HTTP_HTTP1_REJECTED_UNDERSCORES, "http1.requests_rejected_with_underscores_in_headers") \
    /* HTTP/1.1 Upgrade (WebSocket) tunnels, proxy/http_upgrade.c */                          \
    COUNTER(MC_HTTP_DOWNSTREAM_CX_UPGRADES_TOTAL, "downstream_cx_upgrades_total")            \
    GAUGE(MC_HTTP_DOWNSTREAM_CX_UPGRADES_ACTIVE, "downstream_cx_upgrades_active")            \
    COUNTER(MC_HTTP_DOWNSTREAM_RQ_WS_ON_NON_WS_ROUTE, "downstream_rq_ws_on_non_ws_route") \
    /* the overload manager's actions (docs/hardening.md) */                                \
    COUNTER(MC_HTTP_DOWNSTREAM_RQ_OVERLOAD_CLOSE, "downstream_rq_overload_close")            \
    COUNTER(MC_HTTP_DOWNSTREAM_CX_OVERLOAD_DISABLE_KEEPALIVE, "downstream_cx_overload_disable_keepalive") \
    MC_HTTP2_STATS(COUNTER, GAUGE)
/* The downstream HTTP/2 codec (proxy/h2_server.c, docs/http2.md): Envoy's names. */
#define MC_HTTP2_STATS(COUNTER, GAUGE)                                                        \
    COUNTER(MC_HTTP_DOWNSTREAM_CX_HTTP2_TOTAL, "downstream_cx_http2_total")                  \
    GAUGE(MC_HTTP_DOWNSTREAM_CX_HTTP2_ACTIVE, "downstream_cx_http2_active")                  \
    COUNTER(MC_HTTP2_RX_RESET, "http2.rx_reset")                                             \
    COUNTER(MC_HTTP2_TX_RESET, "http2.tx_reset")                                             \
    COUNTER(MC_HTTP2_GOAWAY_SENT, "http2.goaway_sent")                                       \
    COUNTER(MC_HTTP2_HEADER_OVERFLOW, "http2.header_overflow")                               \
    COUNTER(MC_HTTP2_RX_MESSAGING_ERROR, "http2.rx_messaging_error")                         \
    COUNTER(MC_HTTP2_STREAM_REFUSED, "http2.stream_refused_errors")                          \
    COUNTER(MC_HTTP2_OUTBOUND_CONTROL_FLOOD, "http2.outbound_control_flood")                 \
    COUNTER(MC_HTTP2_INBOUND_EMPTY_FRAMES_FLOOD, "http2.inbound_empty_frames_flood")         \
    COUNTER(MC_HTTP2_INBOUND_PRIORITY_FLOOD, "http2.inbound_priority_frames_flood")          \
    COUNTER(MC_HTTP2_INBOUND_WINDOW_UPDATE_FLOOD, "http2.inbound_window_update_frames_flood") \
    COUNTER(MC_HTTP2_TOO_MANY_CONTINUATIONS, "http2.too_many_continuations")                 \
    COUNTER(MC_HTTP2_TOO_MANY_SETTINGS, "http2.too_many_settings")                           \
    COUNTER(MC_HTTP2_PREMATURE_RESETS, "downstream_rq_too_many_premature_resets")            \
    COUNTER(MC_HTTP2_TRAILERS, "http2.trailers")                                             \
    COUNTER(MC_HTTP2_KEEPALIVE_TIMEOUT, "http2.keepalive_timeout")
#define MC_HTTP_HISTS(HIST) HIST(MC_HTTP_H_DOWNSTREAM_RQ_TIME, "downstream_rq_time")
/* Response flag counters (MC_RF__COUNT of them; stats/stats.c checks). */
#define MC_HTTP_RESPONSE_FLAG_SLOTS 18

/* Slot numbers per kind, from the tables above. */
#define MC_STAT_ENUM_(id, name) id,
enum { MC_SERVER_STATS(MC_STAT_ENUM_, MC_STAT_ENUM_) MC_SERVER__SLOTS };
enum { MC_LISTENER_STATS(MC_STAT_ENUM_, MC_STAT_ENUM_) MC_LISTENER__SLOTS };
enum { MC_LISTENER_HISTS(MC_STAT_ENUM_) MC_LISTENER__HISTS };
enum { MC_TCP_STATS(MC_STAT_ENUM_, MC_STAT_ENUM_) MC_TCP__SLOTS };
enum { MC_CONN_LIMIT_STATS(MC_STAT_ENUM_, MC_STAT_ENUM_) MC_CONN_LIMIT__SLOTS };
enum {
    MC_CLUSTER_STATS(MC_STAT_ENUM_, MC_STAT_ENUM_)
    MC_CLUSTER_CODE_FIRST, /* upstream_rq_<code>: MC_CLUSTER_CODE_FIRST + MC_STAT_CODE_<code> */
    MC_CLUSTER__SLOTS = MC_CLUSTER_CODE_FIRST + MC_STAT_CODE__COUNT
};
enum { MC_CLUSTER_HISTS(MC_STAT_ENUM_) MC_CLUSTER__HISTS };
enum { MC_HOST_STATS(MC_STAT_ENUM_, MC_STAT_ENUM_) MC_HOST__SLOTS };
enum {
    MC_HTTP_STATS(MC_STAT_ENUM_, MC_STAT_ENUM_)
    MC_HTTP_RF_FIRST, /* response_flag_<FLAG>: MC_HTTP_RF_FIRST + MC_RF_BIT_<FLAG> */
    MC_HTTP__SLOTS = MC_HTTP_RF_FIRST + MC_HTTP_RESPONSE_FLAG_SLOTS
};
enum { MC_HTTP_HISTS(MC_STAT_ENUM_) MC_HTTP__HISTS };
#undef MC_STAT_ENUM_

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
