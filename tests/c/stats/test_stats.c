/*
 * include/meshcore/stats.h + stats/shard.h: the scope registry, per-worker
 * shards, summing on read, and the bounded registry's overflow scope.
 *
 * The slot-name table below restates every enum in stats.h with its wire
 * name, so a slot added to the enum but not to stats/stats.c (or added in a
 * different order) fails here rather than in a dashboard.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "meshcore/stats.h"
#include "stats/shard.h"

static void test_register(void)
{
    mc_stats_t *st = mc_stats_new(3);
    CHECK(st != NULL);
    if (!st)
        return;
    /* Scope 0 is the overflow scope, present from the start. */
    CHECK_EQ(mc_stats_scope_count(st), 1);
    mc_scope_kind_t kind = MC_SCOPE__COUNT;
    char name[MC_STATS_NAME_MAX];
    CHECK_EQ(mc_stats_scope_info(st, 0, &kind, name, sizeof(name)), 0);
    CHECK_EQ(kind, MC_SCOPE_OVERFLOW);
    CHECK(strcmp(name, "overflow") == 0);

    uint32_t c1 = mc_stats_scope(st, MC_SCOPE_CLUSTER, "backend");
    uint32_t c2 = mc_stats_scope(st, MC_SCOPE_CLUSTER, "backend");
    uint32_t l1 = mc_stats_scope(st, MC_SCOPE_LISTENER, "backend");
    uint32_t c3 = mc_stats_scope(st, MC_SCOPE_CLUSTER, "backend2");
    uint32_t h1 = mc_stats_scope(st, MC_SCOPE_HOST, "backend");
    CHECK(c1 != 0);
    CHECK_EQ(c1, c2); /* same (kind, name): same id */
    CHECK(l1 != 0 && l1 != c1); /* same name, other kind: other id */
    CHECK(c3 != 0 && c3 != c1 && c3 != l1);
    CHECK(h1 != 0 && h1 != c1 && h1 != l1 && h1 != c3);
    CHECK_EQ(mc_stats_scope_count(st), 5);
    CHECK_EQ(mc_stats_scope(st, MC_SCOPE_LISTENER, "backend"), l1);

    CHECK_EQ(mc_stats_scope_info(st, l1, &kind, name, sizeof(name)), 0);
    CHECK_EQ(kind, MC_SCOPE_LISTENER);
    CHECK(strcmp(name, "backend") == 0);
    /* A short name buffer gets a truncated, terminated copy. */
    char small[4];
    CHECK_EQ(mc_stats_scope_info(st, c3, &kind, small, sizeof(small)), 0);
    CHECK_EQ(kind, MC_SCOPE_CLUSTER);
    CHECK(strcmp(small, "bac") == 0);
    CHECK_EQ(mc_stats_scope_info(st, c3, &kind, NULL, 0), 0);
    CHECK_EQ(mc_stats_scope_info(st, 5, &kind, name, sizeof(name)), -1);
    CHECK_EQ(mc_stats_scope_info(st, UINT32_MAX, &kind, name, sizeof(name)), -1);

    /* The empty name is a name like any other. */
    uint32_t e = mc_stats_scope(st, MC_SCOPE_TCP, "");
    CHECK(e != 0);
    CHECK_EQ(mc_stats_scope(st, MC_SCOPE_TCP, ""), e);

    /* Kinds that cannot be registered go to the overflow scope. */
    CHECK_EQ(mc_stats_scope(st, MC_SCOPE_OVERFLOW, "x"), 0);
    CHECK_EQ(mc_stats_scope(st, MC_SCOPE__COUNT, "x"), 0);

    /* Name length: MC_STATS_NAME_MAX - 1 characters fit, one more does not. */
    char longname[MC_STATS_NAME_MAX + 2];
    memset(longname, 'n', sizeof(longname));
    longname[MC_STATS_NAME_MAX - 1] = '\0';
    uint32_t lid = mc_stats_scope(st, MC_SCOPE_CLUSTER, longname);
    CHECK(lid != 0);
    CHECK_EQ(mc_stats_scope_info(st, lid, &kind, name, sizeof(name)), 0);
    CHECK(strcmp(name, longname) == 0);
    longname[MC_STATS_NAME_MAX - 1] = 'n';
    longname[MC_STATS_NAME_MAX] = '\0';
    uint32_t before = mc_stats_scope_count(st);
    CHECK_EQ(mc_stats_scope(st, MC_SCOPE_CLUSTER, longname), 0);
    longname[MC_STATS_NAME_MAX + 1] = '\0';
    longname[MC_STATS_NAME_MAX] = 'n';
    CHECK_EQ(mc_stats_scope(st, MC_SCOPE_CLUSTER, longname), 0);
    CHECK_EQ(mc_stats_scope_count(st), before); /* nothing registered */

    mc_stats_free(st);
}

/* The registry's index position for (kind, name) as stats/stats.c computes
 * it today (FNV-1a seeded with the kind, 2 * MAX_SCOPES slots). Only used
 * to pick inputs that collide; the registry's behaviour is checked through
 * the public API alone. If stats.c changes its hash, keep this in step or
 * test_kind_collision silently stops building a collision. */
static uint32_t index_pos(mc_scope_kind_t kind, const char *name)
{
    uint64_t h = 1469598103934665603ull ^ (uint64_t)kind;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return (uint32_t)(h % (MC_STATS_MAX_SCOPES * 2));
}

/* Same name under two kinds, with the second kind's probe sequence running
 * through the first kind's entry: the lookup must compare kinds, not just
 * names. (FNV-1a modulo a power of two never puts the same name under two
 * kinds in the same first slot, so the collision is built from a probe
 * chain: a filler sits on CLUSTER's first slot, HOST's entry on the next.) */
static void test_kind_collision(void)
{
    char name[32], filler[32];
    const uint32_t size = MC_STATS_MAX_SCOPES * 2;
    uint32_t pc = 0;
    int found = 0;
    for (uint32_t i = 0; i < 4000000 && !found; i++) {
        snprintf(name, sizeof(name), "x%u", i);
        pc = index_pos(MC_SCOPE_CLUSTER, name);
        found = index_pos(MC_SCOPE_HOST, name) == (pc + 1) % size;
    }
    for (uint32_t i = 0; i < 4000000 && found == 1; i++) {
        snprintf(filler, sizeof(filler), "y%u", i);
        if (index_pos(MC_SCOPE_HOST, filler) == pc)
            found = 2;
    }
    CHECK_EQ(found, 2); /* the search itself is deterministic */
    if (found != 2)
        return;
    mc_stats_t *st = mc_stats_new(1);
    CHECK(st != NULL);
    if (!st)
        return;
    uint32_t f = mc_stats_scope(st, MC_SCOPE_HOST, filler);
    uint32_t h = mc_stats_scope(st, MC_SCOPE_HOST, name);
    uint32_t c = mc_stats_scope(st, MC_SCOPE_CLUSTER, name);
    CHECK(f != 0 && h != 0 && c != 0);
    CHECK(h != c && f != c && f != h);
    CHECK_EQ(mc_stats_scope(st, MC_SCOPE_HOST, name), h);
    CHECK_EQ(mc_stats_scope(st, MC_SCOPE_CLUSTER, name), c);
    mc_scope_kind_t kind;
    CHECK_EQ(mc_stats_scope_info(st, c, &kind, NULL, 0), 0);
    CHECK_EQ(kind, MC_SCOPE_CLUSTER);
    mc_stats_free(st);
}

static void test_counters_gauges(void)
{
    mc_stats_t *st = mc_stats_new(3);
    CHECK(st != NULL);
    if (!st)
        return;
    uint32_t c = mc_stats_scope(st, MC_SCOPE_CLUSTER, "web");
    uint32_t other = mc_stats_scope(st, MC_SCOPE_CLUSTER, "db");
    mc_stats_shard_t *s0 = mc_stats_shard(st, 0), *s1 = mc_stats_shard(st, 1),
                     *s2 = mc_stats_shard(st, 2);
    CHECK(s0 != s1 && s1 != s2 && s0 != s2);

    int64_t out[MC_STATS_SLOTS];
    mc_stats_sum(st, c, out);
    for (uint32_t i = 0; i < MC_STATS_SLOTS; i++)
        CHECK_EQ(out[i], 0);

    /* Counters: writes on every shard sum. */
    mc_stat_inc(s0, c, MC_CLUSTER_UPSTREAM_CX_TOTAL);
    mc_stat_inc(s0, c, MC_CLUSTER_UPSTREAM_CX_TOTAL);
    mc_stat_inc(s1, c, MC_CLUSTER_UPSTREAM_CX_TOTAL);
    mc_stat_add(s2, c, MC_CLUSTER_UPSTREAM_CX_TOTAL, 10);
    mc_stat_add(s1, c, MC_CLUSTER_UPSTREAM_CX_RX_BYTES_TOTAL, 1ll << 40);
    mc_stat_add(s2, c, MC_CLUSTER_UPSTREAM_CX_RX_BYTES_TOTAL, 5);
    /* Gauges go up on one worker and down on another. */
    mc_stat_add(s0, c, MC_CLUSTER_UPSTREAM_CX_ACTIVE, 3);
    mc_stat_add(s1, c, MC_CLUSTER_UPSTREAM_CX_ACTIVE, 1);
    mc_stat_add(s0, c, MC_CLUSTER_UPSTREAM_CX_ACTIVE, -2);
    mc_stat_add(s2, c, MC_CLUSTER_UPSTREAM_CX_ACTIVE, -1);
    /* Another scope is independent. */
    mc_stat_add(s0, other, MC_CLUSTER_UPSTREAM_CX_TOTAL, 7);

    mc_stats_sum(st, c, out);
    CHECK_EQ(out[MC_CLUSTER_UPSTREAM_CX_TOTAL], 13);
    CHECK_EQ(out[MC_CLUSTER_UPSTREAM_CX_RX_BYTES_TOTAL], (1ll << 40) + 5);
    CHECK_EQ(out[MC_CLUSTER_UPSTREAM_CX_ACTIVE], 1);
    CHECK_EQ(out[MC_CLUSTER_UPSTREAM_CX_CONNECT_FAIL], 0);
    mc_stats_sum(st, other, out);
    CHECK_EQ(out[MC_CLUSTER_UPSTREAM_CX_TOTAL], 7);
    CHECK_EQ(out[MC_CLUSTER_UPSTREAM_CX_ACTIVE], 0);

    /* A gauge may go negative on one shard and to zero overall. */
    mc_stat_add(s2, c, MC_CLUSTER_UPSTREAM_CX_ACTIVE, -1);
    mc_stats_sum(st, c, out);
    CHECK_EQ(out[MC_CLUSTER_UPSTREAM_CX_ACTIVE], 0);
    CHECK(s2->slots[c][MC_CLUSTER_UPSTREAM_CX_ACTIVE] == -2);

    /* The overflow scope absorbs writes like any other. */
    mc_stat_inc(s1, 0, 0);
    mc_stats_sum(st, 0, out);
    CHECK_EQ(out[0], 1);

    /* An id not registered reads as all zeros. */
    out[0] = 99;
    mc_stats_sum(st, 1000, out);
    CHECK_EQ(out[0], 0);

    mc_stats_free(st);
}

static void test_histograms(void)
{
    mc_stats_t *st = mc_stats_new(3);
    CHECK(st != NULL);
    if (!st)
        return;
    CHECK_EQ(mc_stats_hist_count(MC_SCOPE_CLUSTER), MC_CLUSTER__HISTS);
    CHECK_EQ(mc_stats_hist_count(MC_SCOPE_LISTENER), MC_LISTENER__HISTS);
    CHECK_EQ(mc_stats_hist_count(MC_SCOPE_TCP), 0);
    CHECK_EQ(mc_stats_hist_count(MC_SCOPE__COUNT), 0);

    uint32_t c = mc_stats_scope(st, MC_SCOPE_CLUSTER, "web");
    uint32_t t = mc_stats_scope(st, MC_SCOPE_TCP, "web");
    static mc_hist_t h;

    /* Registered but empty. */
    CHECK_EQ(mc_stats_sum_hist(st, c, MC_CLUSTER_H_UPSTREAM_CX_CONNECT_MS, &h), 0);
    CHECK_EQ(h.count, 0);

    mc_stat_hist(mc_stats_shard(st, 0), c, MC_CLUSTER_H_UPSTREAM_CX_CONNECT_MS, 3);
    mc_stat_hist(mc_stats_shard(st, 1), c, MC_CLUSTER_H_UPSTREAM_CX_CONNECT_MS, 3);
    mc_stat_hist(mc_stats_shard(st, 2), c, MC_CLUSTER_H_UPSTREAM_CX_CONNECT_MS, 1000);
    mc_stat_hist(mc_stats_shard(st, 2), c, MC_CLUSTER_H_UPSTREAM_CX_CONNECT_MS, 20);
    mc_stat_hist(mc_stats_shard(st, 1), c, MC_CLUSTER_H_UPSTREAM_CX_LENGTH_MS, 5000);

    memset(&h, 0xff, sizeof(h)); /* sum_hist zeroes its output first */
    CHECK_EQ(mc_stats_sum_hist(st, c, MC_CLUSTER_H_UPSTREAM_CX_CONNECT_MS, &h), 0);
    CHECK_EQ(h.count, 4);
    CHECK_EQ(h.sum, 3 + 3 + 1000 + 20);
    CHECK_EQ(h.buckets[mc_hist_bucket(3)], 2);
    CHECK_EQ(h.buckets[mc_hist_bucket(20)], 1);
    CHECK_EQ(h.buckets[mc_hist_bucket(1000)], 1);
    uint64_t total = 0;
    for (uint32_t i = 0; i < MC_HIST_BUCKETS; i++)
        total += h.buckets[i];
    CHECK_EQ(total, 4);

    CHECK_EQ(mc_stats_sum_hist(st, c, MC_CLUSTER_H_UPSTREAM_CX_LENGTH_MS, &h), 0);
    CHECK_EQ(h.count, 1);
    CHECK_EQ(h.sum, 5000);

    /* Slots past the kind's histograms, kinds without any, bad ids. */
    CHECK_EQ(mc_stats_sum_hist(st, c, MC_CLUSTER__HISTS, &h), -1);
    CHECK_EQ(h.count, 0);
    CHECK_EQ(mc_stats_sum_hist(st, c, MC_STATS_HISTS, &h), -1);
    CHECK_EQ(mc_stats_sum_hist(st, t, 0, &h), -1);
    CHECK_EQ(mc_stats_sum_hist(st, 0, 0, &h), -1);
    CHECK_EQ(mc_stats_sum_hist(st, 999, 0, &h), -1);
    /* Recording into a scope without histograms is a no-op. */
    mc_stat_hist(mc_stats_shard(st, 0), t, 0, 42);
    CHECK_EQ(mc_stats_sum_hist(st, t, 0, &h), -1);

    /* Listener scopes carry their one histogram. */
    uint32_t l = mc_stats_scope(st, MC_SCOPE_LISTENER, "0.0.0.0:80");
    mc_stat_hist(mc_stats_shard(st, 1), l, MC_LISTENER_H_DOWNSTREAM_CX_LENGTH_MS, 7);
    CHECK_EQ(mc_stats_sum_hist(st, l, MC_LISTENER_H_DOWNSTREAM_CX_LENGTH_MS, &h), 0);
    CHECK_EQ(h.count, 1);

    mc_stats_free(st); /* frees every per-shard histogram (LeakSanitizer) */
}

static const struct {
    mc_scope_kind_t kind;
    uint32_t slot;
    const char *name;
    int gauge;
} slot_names[] = {
    {MC_SCOPE_SERVER, MC_SERVER_WORKERS_STARTED, "workers_started", 0},
    {MC_SCOPE_SERVER, MC_SERVER_CONN_POOL_EXHAUSTED, "conn_pool_exhausted", 0},
    {MC_SCOPE_SERVER, MC_SERVER_SPLICE_FALLBACK, "splice_fallback", 0},
    {MC_SCOPE_SERVER, MC_SERVER_TOTAL_CONNECTIONS, "total_connections", 1},
    {MC_SCOPE_LISTENER, MC_LISTENER_DOWNSTREAM_CX_TOTAL, "downstream_cx_total", 0},
    {MC_SCOPE_LISTENER, MC_LISTENER_DOWNSTREAM_CX_ACTIVE, "downstream_cx_active", 1},
    {MC_SCOPE_LISTENER, MC_LISTENER_DOWNSTREAM_CX_DESTROY, "downstream_cx_destroy", 0},
    {MC_SCOPE_LISTENER, MC_LISTENER_DOWNSTREAM_CX_OVERFLOW, "downstream_cx_overflow", 0},
    {MC_SCOPE_LISTENER, MC_LISTENER_SSL_HANDSHAKE, "ssl.handshake", 0},
    {MC_SCOPE_LISTENER, MC_LISTENER_SSL_CONNECTION_ERROR, "ssl.connection_error", 0},
    {MC_SCOPE_LISTENER, MC_LISTENER_SSL_FAIL_VERIFY_ERROR, "ssl.fail_verify_error", 0},
    {MC_SCOPE_LISTENER, MC_LISTENER_SSL_FAIL_VERIFY_SAN, "ssl.fail_verify_san", 0},
    {MC_SCOPE_LISTENER, MC_LISTENER_SSL_NO_CERTIFICATE, "ssl.no_certificate", 0},
    {MC_SCOPE_LISTENER, MC_LISTENER_DOWNSTREAM_GLOBAL_CX_OVERFLOW, "downstream_global_cx_overflow", 0},
    {MC_SCOPE_LISTENER, MC_LISTENER_DOWNSTREAM_CX_OVERLOAD_REJECT, "downstream_cx_overload_reject", 0},
    {MC_SCOPE_LISTENER, MC_LISTENER_DOWNSTREAM_PRE_CX_ACTIVE, "downstream_pre_cx_active", 1},
    {MC_SCOPE_LISTENER, MC_LISTENER_DOWNSTREAM_PRE_CX_TIMEOUT, "downstream_pre_cx_timeout", 0},
    {MC_SCOPE_LISTENER, MC_LISTENER_DOWNSTREAM_LISTENER_FILTER_REMOTE_CLOSE, "downstream_listener_filter_remote_close", 0},
    {MC_SCOPE_LISTENER, MC_LISTENER_DOWNSTREAM_LISTENER_FILTER_ERROR, "downstream_listener_filter_error", 0},
    {MC_SCOPE_LISTENER, MC_LISTENER_NO_FILTER_CHAIN_MATCH, "no_filter_chain_match", 0},
    {MC_SCOPE_TCP, MC_TCP_DOWNSTREAM_CX_TOTAL, "downstream_cx_total", 0},
    {MC_SCOPE_TCP, MC_TCP_DOWNSTREAM_CX_NO_ROUTE, "downstream_cx_no_route", 0},
    {MC_SCOPE_TCP, MC_TCP_DOWNSTREAM_CX_RX_BYTES_TOTAL, "downstream_cx_rx_bytes_total", 0},
    {MC_SCOPE_TCP, MC_TCP_DOWNSTREAM_CX_TX_BYTES_TOTAL, "downstream_cx_tx_bytes_total", 0},
    {MC_SCOPE_TCP, MC_TCP_IDLE_TIMEOUT, "idle_timeout", 0},
    {MC_SCOPE_TCP, MC_TCP_UPSTREAM_FLUSH_TOTAL, "upstream_flush_total", 0},
    {MC_SCOPE_TCP, MC_TCP_SPLICED_BYTES_TOTAL, "spliced_bytes_total", 0},
    {MC_SCOPE_TCP, MC_TCP_RBAC_ALLOWED, "rbac.allowed", 0},
    {MC_SCOPE_TCP, MC_TCP_RBAC_DENIED, "rbac.denied", 0},
    {MC_SCOPE_HTTP, MC_HTTP_DOWNSTREAM_CX_HTTP2_TOTAL, "downstream_cx_http2_total", 0},
    {MC_SCOPE_HTTP, MC_HTTP_DOWNSTREAM_CX_HTTP2_ACTIVE, "downstream_cx_http2_active", 1},
    {MC_SCOPE_HTTP, MC_HTTP2_RX_RESET, "http2.rx_reset", 0},
    {MC_SCOPE_HTTP, MC_HTTP2_TX_RESET, "http2.tx_reset", 0},
    {MC_SCOPE_HTTP, MC_HTTP2_GOAWAY_SENT, "http2.goaway_sent", 0},
    {MC_SCOPE_HTTP, MC_HTTP2_HEADER_OVERFLOW, "http2.header_overflow", 0},
    {MC_SCOPE_HTTP, MC_HTTP2_RX_MESSAGING_ERROR, "http2.rx_messaging_error", 0},
    {MC_SCOPE_HTTP, MC_HTTP2_STREAM_REFUSED, "http2.stream_refused_errors", 0},
    {MC_SCOPE_HTTP, MC_HTTP2_OUTBOUND_CONTROL_FLOOD, "http2.outbound_control_flood", 0},
    {MC_SCOPE_HTTP, MC_HTTP2_INBOUND_EMPTY_FRAMES_FLOOD, "http2.inbound_empty_frames_flood", 0},
    {MC_SCOPE_HTTP, MC_HTTP2_INBOUND_PRIORITY_FLOOD, "http2.inbound_priority_frames_flood", 0},
    {MC_SCOPE_HTTP, MC_HTTP2_INBOUND_WINDOW_UPDATE_FLOOD, "http2.inbound_window_update_frames_flood", 0},
    {MC_SCOPE_HTTP, MC_HTTP2_TOO_MANY_CONTINUATIONS, "http2.too_many_continuations", 0},
    {MC_SCOPE_HTTP, MC_HTTP2_TOO_MANY_SETTINGS, "http2.too_many_settings", 0},
    {MC_SCOPE_HTTP, MC_HTTP2_PREMATURE_RESETS, "downstream_rq_too_many_premature_resets", 0},
    {MC_SCOPE_HTTP, MC_HTTP2_TRAILERS, "http2.trailers", 0},
    {MC_SCOPE_HTTP, MC_HTTP2_KEEPALIVE_TIMEOUT, "http2.keepalive_timeout", 0},
    {MC_SCOPE_CONN_LIMIT, MC_CONN_LIMIT_ACTIVE_CONNECTIONS, "active_connections", 1},
    {MC_SCOPE_CONN_LIMIT, MC_CONN_LIMIT_LIMITED_CONNECTIONS, "limited_connections", 0},
    {MC_SCOPE_CLUSTER, MC_CLUSTER_UPSTREAM_CX_TOTAL, "upstream_cx_total", 0},
    {MC_SCOPE_CLUSTER, MC_CLUSTER_UPSTREAM_CX_ACTIVE, "upstream_cx_active", 1},
    {MC_SCOPE_CLUSTER, MC_CLUSTER_UPSTREAM_CX_CONNECT_FAIL, "upstream_cx_connect_fail", 0},
    {MC_SCOPE_CLUSTER, MC_CLUSTER_UPSTREAM_CX_CONNECT_TIMEOUT, "upstream_cx_connect_timeout", 0},
    {MC_SCOPE_CLUSTER, MC_CLUSTER_UPSTREAM_CX_CONNECT_ATTEMPTS_EXCEEDED, "upstream_cx_connect_attempts_exceeded", 0},
    {MC_SCOPE_CLUSTER, MC_CLUSTER_UPSTREAM_CX_CONNECT_RETRY, "upstream_cx_connect_retry", 0},
    {MC_SCOPE_CLUSTER, MC_CLUSTER_UPSTREAM_CX_NONE_HEALTHY, "upstream_cx_none_healthy", 0},
    {MC_SCOPE_CLUSTER, MC_CLUSTER_UPSTREAM_CX_DESTROY, "upstream_cx_destroy", 0},
    {MC_SCOPE_CLUSTER, MC_CLUSTER_UPSTREAM_CX_RX_BYTES_TOTAL, "upstream_cx_rx_bytes_total", 0},
    {MC_SCOPE_CLUSTER, MC_CLUSTER_UPSTREAM_CX_TX_BYTES_TOTAL, "upstream_cx_tx_bytes_total", 0},
    {MC_SCOPE_CLUSTER, MC_CLUSTER_UPSTREAM_CX_OVERFLOW, "upstream_cx_overflow", 0},
    {MC_SCOPE_CLUSTER, MC_CLUSTER_UPSTREAM_CX_IDLE_TIMEOUT, "upstream_cx_idle_timeout", 0},
    {MC_SCOPE_CLUSTER, MC_CLUSTER_UPSTREAM_RQ_TOTAL, "upstream_rq_total", 0},
    {MC_SCOPE_CLUSTER, MC_CLUSTER_UPSTREAM_RQ_ACTIVE, "upstream_rq_active", 1},
    {MC_SCOPE_CLUSTER, MC_CLUSTER_UPSTREAM_RQ_PENDING_TOTAL, "upstream_rq_pending_total", 0},
    {MC_SCOPE_CLUSTER, MC_CLUSTER_UPSTREAM_RQ_PENDING_ACTIVE, "upstream_rq_pending_active", 1},
    {MC_SCOPE_CLUSTER, MC_CLUSTER_UPSTREAM_RQ_PENDING_OVERFLOW, "upstream_rq_pending_overflow", 0},
    {MC_SCOPE_CLUSTER, MC_CLUSTER_UPSTREAM_RQ_1XX, "upstream_rq_1xx", 0},
    {MC_SCOPE_CLUSTER, MC_CLUSTER_UPSTREAM_RQ_2XX, "upstream_rq_2xx", 0},
    {MC_SCOPE_CLUSTER, MC_CLUSTER_UPSTREAM_RQ_3XX, "upstream_rq_3xx", 0},
    {MC_SCOPE_CLUSTER, MC_CLUSTER_UPSTREAM_RQ_4XX, "upstream_rq_4xx", 0},
    {MC_SCOPE_CLUSTER, MC_CLUSTER_UPSTREAM_RQ_5XX, "upstream_rq_5xx", 0},
    {MC_SCOPE_CLUSTER, MC_CLUSTER_UPSTREAM_RQ_TIMEOUT, "upstream_rq_timeout", 0},
    {MC_SCOPE_CLUSTER, MC_CLUSTER_UPSTREAM_RQ_PER_TRY_TIMEOUT, "upstream_rq_per_try_timeout", 0},
    {MC_SCOPE_CLUSTER, MC_CLUSTER_UPSTREAM_RQ_RETRY, "upstream_rq_retry", 0},
    {MC_SCOPE_CLUSTER, MC_CLUSTER_UPSTREAM_RQ_RETRY_SUCCESS, "upstream_rq_retry_success", 0},
    {MC_SCOPE_CLUSTER, MC_CLUSTER_UPSTREAM_RQ_RETRY_OVERFLOW, "upstream_rq_retry_overflow", 0},
    {MC_SCOPE_CLUSTER, MC_CLUSTER_UPSTREAM_RQ_RETRY_LIMIT_EXCEEDED, "upstream_rq_retry_limit_exceeded", 0},
    {MC_SCOPE_CLUSTER, MC_CLUSTER_UPSTREAM_RQ_OVERFLOW, "upstream_rq_overflow", 0},
    {MC_SCOPE_CLUSTER, MC_CLUSTER_UPSTREAM_RQ_RX_RESET, "upstream_rq_rx_reset", 0},
    {MC_SCOPE_CLUSTER, MC_CLUSTER_UPSTREAM_RQ_TX_RESET, "upstream_rq_tx_reset", 0},
    {MC_SCOPE_CLUSTER, MC_CLUSTER_UPSTREAM_CX_PROTOCOL_ERROR, "upstream_cx_protocol_error", 0},
    {MC_SCOPE_CLUSTER, MC_CLUSTER_UPSTREAM_CX_REUSED, "upstream_cx_reused", 0},
    {MC_SCOPE_CLUSTER, MC_CLUSTER_OUTLIER_EJECTIONS_ENFORCED_TOTAL, "outlier_detection.ejections_enforced_total", 0},
    {MC_SCOPE_CLUSTER, MC_CLUSTER_UPSTREAM_RQ_MIRRORED, "upstream_rq_mirrored", 0},
    {MC_SCOPE_CLUSTER, MC_CLUSTER_SSL_HANDSHAKE, "ssl.handshake", 0},
    {MC_SCOPE_CLUSTER, MC_CLUSTER_SSL_CONNECTION_ERROR, "ssl.connection_error", 0},
    {MC_SCOPE_CLUSTER, MC_CLUSTER_SSL_FAIL_VERIFY_ERROR, "ssl.fail_verify_error", 0},
    {MC_SCOPE_CLUSTER, MC_CLUSTER_SSL_FAIL_VERIFY_SAN, "ssl.fail_verify_san", 0},
    {MC_SCOPE_CLUSTER, MC_CLUSTER_SSL_SESSION_REUSED, "ssl.session_reused", 0},
    {MC_SCOPE_CLUSTER, MC_CLUSTER_HTTP2_KEEPALIVE_TIMEOUT, "http2.keepalive_timeout", 0},
#define CODE_ROW(code) {MC_SCOPE_CLUSTER, MC_CLUSTER_CODE_FIRST + MC_STAT_CODE_##code, "upstream_rq_" #code, 0},
    MC_STAT_CODES(CODE_ROW)
#undef CODE_ROW
    {MC_SCOPE_HOST, MC_HOST_CX_TOTAL, "cx_total", 0},
    {MC_SCOPE_HOST, MC_HOST_CX_ACTIVE, "cx_active", 1},
    {MC_SCOPE_HOST, MC_HOST_CX_CONNECT_FAIL, "cx_connect_fail", 0},
    {MC_SCOPE_HOST, MC_HOST_RQ_TOTAL, "rq_total", 0},
    {MC_SCOPE_HOST, MC_HOST_RQ_ACTIVE, "rq_active", 1},
    {MC_SCOPE_HOST, MC_HOST_RQ_ERROR, "rq_error", 0},
    {MC_SCOPE_HOST, MC_HOST_RQ_SUCCESS, "rq_success", 0},
    {MC_SCOPE_HTTP, MC_HTTP_DOWNSTREAM_CX_TOTAL, "downstream_cx_total", 0},
    {MC_SCOPE_HTTP, MC_HTTP_DOWNSTREAM_CX_ACTIVE, "downstream_cx_active", 1},
    {MC_SCOPE_HTTP, MC_HTTP_DOWNSTREAM_CX_RX_BYTES_TOTAL, "downstream_cx_rx_bytes_total", 0},
    {MC_SCOPE_HTTP, MC_HTTP_DOWNSTREAM_CX_TX_BYTES_TOTAL, "downstream_cx_tx_bytes_total", 0},
    {MC_SCOPE_HTTP, MC_HTTP_DOWNSTREAM_CX_PROTOCOL_ERROR, "downstream_cx_protocol_error", 0},
    {MC_SCOPE_HTTP, MC_HTTP_DOWNSTREAM_CX_IDLE_TIMEOUT, "downstream_cx_idle_timeout", 0},
    {MC_SCOPE_HTTP, MC_HTTP_DOWNSTREAM_RQ_TOTAL, "downstream_rq_total", 0},
    {MC_SCOPE_HTTP, MC_HTTP_DOWNSTREAM_RQ_ACTIVE, "downstream_rq_active", 1},
    {MC_SCOPE_HTTP, MC_HTTP_DOWNSTREAM_RQ_1XX, "downstream_rq_1xx", 0},
    {MC_SCOPE_HTTP, MC_HTTP_DOWNSTREAM_RQ_2XX, "downstream_rq_2xx", 0},
    {MC_SCOPE_HTTP, MC_HTTP_DOWNSTREAM_RQ_3XX, "downstream_rq_3xx", 0},
    {MC_SCOPE_HTTP, MC_HTTP_DOWNSTREAM_RQ_4XX, "downstream_rq_4xx", 0},
    {MC_SCOPE_HTTP, MC_HTTP_DOWNSTREAM_RQ_5XX, "downstream_rq_5xx", 0},
    {MC_SCOPE_HTTP, MC_HTTP_DOWNSTREAM_RQ_TIMEOUT, "downstream_rq_timeout", 0},
    {MC_SCOPE_HTTP, MC_HTTP_DOWNSTREAM_RQ_RX_RESET, "downstream_rq_rx_reset", 0},
    {MC_SCOPE_HTTP, MC_HTTP_DOWNSTREAM_RQ_TX_RESET, "downstream_rq_tx_reset", 0},
    {MC_SCOPE_HTTP, MC_HTTP_DOWNSTREAM_RQ_IDLE_TIMEOUT, "downstream_rq_idle_timeout", 0},
    {MC_SCOPE_HTTP, MC_HTTP_NO_ROUTE, "no_route", 0},
    {MC_SCOPE_HTTP, MC_HTTP_RQ_DIRECT_RESPONSE, "rq_direct_response", 0},
    {MC_SCOPE_HTTP, MC_HTTP_RQ_REDIRECT, "rq_redirect", 0},
    {MC_SCOPE_HTTP, MC_HTTP_RQ_FAILED_PATH_NORMALIZATION, "downstream_rq_failed_path_normalization", 0},
    {MC_SCOPE_HTTP, MC_HTTP_RQ_REDIRECTED_NORMALIZED_PATH, "downstream_rq_redirected_with_normalized_path", 0},
    {MC_SCOPE_HTTP, MC_HTTP_FAULT_DELAYS_INJECTED, "fault.delays_injected", 0},
    {MC_SCOPE_HTTP, MC_HTTP_FAULT_ABORTS_INJECTED, "fault.aborts_injected", 0},
    {MC_SCOPE_HTTP, MC_HTTP_RBAC_ALLOWED, "rbac.allowed", 0},
    {MC_SCOPE_HTTP, MC_HTTP_RBAC_DENIED, "rbac.denied", 0},
    {MC_SCOPE_HTTP, MC_HTTP_DOWNSTREAM_RQ_HEADER_TIMEOUT, "downstream_rq_header_timeout", 0},
    {MC_SCOPE_HTTP, MC_HTTP_DOWNSTREAM_RQ_MAX_DURATION_REACHED, "downstream_rq_max_duration_reached", 0},
    {MC_SCOPE_HTTP, MC_HTTP_HTTP1_DROPPED_UNDERSCORES, "http1.dropped_headers_with_underscores", 0},
    {MC_SCOPE_HTTP, MC_HTTP_HTTP1_REJECTED_UNDERSCORES, "http1.requests_rejected_with_underscores_in_headers", 0},
    {MC_SCOPE_HTTP, MC_HTTP_DOWNSTREAM_CX_UPGRADES_TOTAL, "downstream_cx_upgrades_total", 0},
    {MC_SCOPE_HTTP, MC_HTTP_DOWNSTREAM_CX_UPGRADES_ACTIVE, "downstream_cx_upgrades_active", 1},
    {MC_SCOPE_HTTP, MC_HTTP_DOWNSTREAM_RQ_WS_ON_NON_WS_ROUTE, "downstream_rq_ws_on_non_ws_route", 0},
    {MC_SCOPE_HTTP, MC_HTTP_DOWNSTREAM_RQ_OVERLOAD_CLOSE, "downstream_rq_overload_close", 0},
    {MC_SCOPE_HTTP, MC_HTTP_DOWNSTREAM_CX_OVERLOAD_DISABLE_KEEPALIVE, "downstream_cx_overload_disable_keepalive", 0},
    {MC_SCOPE_HTTP, MC_HTTP_RF_FIRST + 0, "response_flag_UH", 0},
    {MC_SCOPE_HTTP, MC_HTTP_RF_FIRST + 1, "response_flag_UF", 0},
    {MC_SCOPE_HTTP, MC_HTTP_RF_FIRST + 2, "response_flag_UO", 0},
    {MC_SCOPE_HTTP, MC_HTTP_RF_FIRST + 3, "response_flag_NR", 0},
    {MC_SCOPE_HTTP, MC_HTTP_RF_FIRST + 4, "response_flag_URX", 0},
    {MC_SCOPE_HTTP, MC_HTTP_RF_FIRST + 5, "response_flag_UT", 0},
    {MC_SCOPE_HTTP, MC_HTTP_RF_FIRST + 6, "response_flag_DC", 0},
    {MC_SCOPE_HTTP, MC_HTTP_RF_FIRST + 7, "response_flag_UC", 0},
    {MC_SCOPE_HTTP, MC_HTTP_RF_FIRST + 8, "response_flag_DI", 0},
    {MC_SCOPE_HTTP, MC_HTTP_RF_FIRST + 9, "response_flag_FI", 0},
    {MC_SCOPE_HTTP, MC_HTTP_RF_FIRST + 10, "response_flag_UPE", 0},
    {MC_SCOPE_HTTP, MC_HTTP_RF_FIRST + 11, "response_flag_DPE", 0},
    {MC_SCOPE_HTTP, MC_HTTP_RF_FIRST + 12, "response_flag_LR", 0},
    {MC_SCOPE_HTTP, MC_HTTP_RF_FIRST + 13, "response_flag_UR", 0},
    {MC_SCOPE_HTTP, MC_HTTP_RF_FIRST + 14, "response_flag_SI", 0},
    {MC_SCOPE_HTTP, MC_HTTP_RF_FIRST + 15, "response_flag_UAEX", 0},
    {MC_SCOPE_HTTP, MC_HTTP_RF_FIRST + 16, "response_flag_OL", 0},
    {MC_SCOPE_HTTP, MC_HTTP_RF_FIRST + 17, "response_flag_DT", 0},
};

/* Per-code counters: the codes of the table have a slot, every other code none. */
static void test_code_index(void)
{
    CHECK_EQ(mc_stats_code_index(200), MC_STAT_CODE_200);
    CHECK_EQ(mc_stats_code_index(101), MC_STAT_CODE_101);
    CHECK_EQ(mc_stats_code_index(503), MC_STAT_CODE_503);
    const char *name = mc_stats_slot_name(MC_SCOPE_CLUSTER, MC_CLUSTER_CODE_FIRST + MC_STAT_CODE_404);
    CHECK(name && strcmp(name, "upstream_rq_404") == 0);
    int with_slot = 0;
    for (int status = -1; status <= 1000; status++) {
        int i = mc_stats_code_index(status);
        CHECK(i >= -1 && i < MC_STAT_CODE__COUNT);
        with_slot += i >= 0;
    }
    CHECK_EQ(with_slot, MC_STAT_CODE__COUNT);
    CHECK_EQ(mc_stats_code_index(299), -1);
    CHECK_EQ(mc_stats_code_index(600), -1);
}

static void test_metadata(void)
{
    uint32_t n = sizeof(slot_names) / sizeof(slot_names[0]);
    for (uint32_t i = 0; i < n; i++) {
        const char *got = mc_stats_slot_name(slot_names[i].kind, slot_names[i].slot);
        CHECK(got != NULL);
        if (got && strcmp(got, slot_names[i].name) != 0) {
            fprintf(stderr, "slot %s/%u: \"%s\", want \"%s\"\n",
                    mc_stats_kind_name(slot_names[i].kind), slot_names[i].slot, got,
                    slot_names[i].name);
            CHECK(0);
        }
        CHECK_EQ(mc_stats_slot_is_gauge(slot_names[i].kind, slot_names[i].slot),
                 slot_names[i].gauge);
    }

    /* Slot counts match the enums, fit a shard row, and end in NULL. */
    static const struct {
        mc_scope_kind_t kind;
        uint32_t n;
        const char *name;
    } kinds[] = {
        {MC_SCOPE_OVERFLOW, 0, "overflow"},
        {MC_SCOPE_SERVER, MC_SERVER__SLOTS, "server"},
        {MC_SCOPE_LISTENER, MC_LISTENER__SLOTS, "listener"},
        {MC_SCOPE_TCP, MC_TCP__SLOTS, "tcp"},
        {MC_SCOPE_CONN_LIMIT, MC_CONN_LIMIT__SLOTS, "connection_limit"},
        {MC_SCOPE_CLUSTER, MC_CLUSTER__SLOTS, "cluster"},
        {MC_SCOPE_HOST, MC_HOST__SLOTS, "host"},
        {MC_SCOPE_HTTP, MC_HTTP__SLOTS, "http"},
    };
    uint32_t listed = 0;
    for (uint32_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        CHECK_EQ(mc_stats_slot_count(kinds[k].kind), kinds[k].n);
        CHECK(kinds[k].n <= MC_STATS_SLOTS);
        CHECK(mc_stats_slot_name(kinds[k].kind, kinds[k].n) == NULL);
        CHECK(mc_stats_slot_is_gauge(kinds[k].kind, kinds[k].n) == 0);
        const char *kn = mc_stats_kind_name(kinds[k].kind);
        CHECK(kn != NULL && strcmp(kn, kinds[k].name) == 0);
        listed += kinds[k].n;
    }
    CHECK_EQ(listed, n); /* the table above covers every slot */
    CHECK(mc_stats_kind_name(MC_SCOPE__COUNT) == NULL);
    CHECK_EQ(mc_stats_slot_count(MC_SCOPE__COUNT), 0);
    CHECK(mc_stats_slot_name(MC_SCOPE__COUNT, 0) == NULL);

    const char *hn = mc_stats_hist_name(MC_SCOPE_CLUSTER, MC_CLUSTER_H_UPSTREAM_CX_CONNECT_MS);
    CHECK(hn && strcmp(hn, "upstream_cx_connect_ms") == 0);
    hn = mc_stats_hist_name(MC_SCOPE_CLUSTER, MC_CLUSTER_H_UPSTREAM_CX_LENGTH_MS);
    CHECK(hn && strcmp(hn, "upstream_cx_length_ms") == 0);
    hn = mc_stats_hist_name(MC_SCOPE_LISTENER, MC_LISTENER_H_DOWNSTREAM_CX_LENGTH_MS);
    CHECK(hn && strcmp(hn, "downstream_cx_length_ms") == 0);
    CHECK(mc_stats_hist_name(MC_SCOPE_CLUSTER, MC_CLUSTER__HISTS) == NULL);
    CHECK(mc_stats_hist_name(MC_SCOPE_TCP, 0) == NULL);
    CHECK(MC_CLUSTER__HISTS <= MC_STATS_HISTS && MC_LISTENER__HISTS <= MC_STATS_HISTS);
}

/* Fill the registry: past MC_STATS_MAX_SCOPES, new scopes get 0 while
 * existing ones are still found. */
static void test_full(void)
{
    mc_stats_t *st = mc_stats_new(1);
    CHECK(st != NULL);
    if (!st)
        return;
    char name[32];
    int bad = 0;
    /* Mix in a few cluster scopes so histograms are allocated too. */
    for (uint32_t i = 1; i < MC_STATS_MAX_SCOPES; i++) {
        snprintf(name, sizeof(name), "h%u", i);
        mc_scope_kind_t kind = i % 1024 == 0 ? MC_SCOPE_CLUSTER : MC_SCOPE_HOST;
        if (mc_stats_scope(st, kind, name) != i)
            bad++;
    }
    CHECK_EQ(bad, 0);
    CHECK_EQ(mc_stats_scope_count(st), MC_STATS_MAX_SCOPES);

    CHECK_EQ(mc_stats_scope(st, MC_SCOPE_HOST, "one-too-many"), 0);
    CHECK_EQ(mc_stats_scope(st, MC_SCOPE_CLUSTER, "one-too-many"), 0);
    CHECK_EQ(mc_stats_scope(st, MC_SCOPE_HOST, "h1024"), 0); /* h1024 is a cluster */
    CHECK_EQ(mc_stats_scope_count(st), MC_STATS_MAX_SCOPES);
    CHECK_EQ(mc_stats_scope(st, MC_SCOPE_HOST, "h1"), 1);
    CHECK_EQ(mc_stats_scope(st, MC_SCOPE_CLUSTER, "h1024"), 1024);
    snprintf(name, sizeof(name), "h%u", MC_STATS_MAX_SCOPES - 1);
    CHECK_EQ(mc_stats_scope(st, MC_SCOPE_HOST, name), MC_STATS_MAX_SCOPES - 1);

    /* With the index half full, every name looked up under another kind
     * probes past the entries of its namesakes: none may match. */
    bad = 0;
    for (uint32_t i = 1; i < MC_STATS_MAX_SCOPES; i++) {
        snprintf(name, sizeof(name), "h%u", i);
        if (mc_stats_scope(st, MC_SCOPE_LISTENER, name) != 0)
            bad++;
        if (mc_stats_scope(st, i % 1024 == 0 ? MC_SCOPE_HOST : MC_SCOPE_CLUSTER, name) != 0)
            bad++;
    }
    CHECK_EQ(bad, 0);

    /* The last scope is usable; writes to rejected ones land in overflow. */
    mc_stats_shard_t *sh = mc_stats_shard(st, 0);
    mc_stat_inc(sh, MC_STATS_MAX_SCOPES - 1, MC_HOST_CX_TOTAL);
    mc_stat_inc(sh, mc_stats_scope(st, MC_SCOPE_HOST, "late"), MC_HOST_CX_TOTAL);
    int64_t out[MC_STATS_SLOTS];
    mc_stats_sum(st, MC_STATS_MAX_SCOPES - 1, out);
    CHECK_EQ(out[MC_HOST_CX_TOTAL], 1);
    mc_stats_sum(st, 0, out);
    CHECK_EQ(out[MC_HOST_CX_TOTAL], 1);
    mc_stats_free(st);
}

/* Registration is thread-safe: racing registrations of the same names
 * agree on the ids. */
#define RACE_THREADS 4
#define RACE_NAMES 300
static mc_stats_t *race_st;
static uint32_t race_ids[RACE_THREADS][RACE_NAMES];

static void *race_main(void *arg)
{
    uint32_t t = (uint32_t)(uintptr_t)arg;
    char name[32];
    for (uint32_t k = 0; k < RACE_NAMES; k++) {
        uint32_t i = (k * 7 + t * 13) % RACE_NAMES; /* different orders */
        snprintf(name, sizeof(name), "c%u", i);
        race_ids[t][i] = mc_stats_scope(race_st, MC_SCOPE_CLUSTER, name);
    }
    return NULL;
}

static void test_threads(void)
{
    race_st = mc_stats_new(2);
    CHECK(race_st != NULL);
    if (!race_st)
        return;
    pthread_t th[RACE_THREADS];
    for (uint32_t t = 0; t < RACE_THREADS; t++)
        CHECK_EQ(pthread_create(&th[t], NULL, race_main, (void *)(uintptr_t)t), 0);
    for (uint32_t t = 0; t < RACE_THREADS; t++)
        pthread_join(th[t], NULL);
    CHECK_EQ(mc_stats_scope_count(race_st), RACE_NAMES + 1);
    int bad = 0;
    for (uint32_t i = 0; i < RACE_NAMES; i++) {
        if (race_ids[0][i] == 0)
            bad++;
        for (uint32_t t = 1; t < RACE_THREADS; t++)
            if (race_ids[t][i] != race_ids[0][i])
                bad++;
    }
    CHECK_EQ(bad, 0);
    mc_stats_free(race_st);
}

int main(void)
{
    test_register();
    test_kind_collision();
    test_counters_gauges();
    test_histograms();
    test_metadata();
    test_code_index();
    test_full();
    test_threads();
    CHECK_DONE();
}
