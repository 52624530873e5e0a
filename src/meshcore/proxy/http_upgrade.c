/*
 * HTTP/1.1 Upgrade (WebSocket): the http_connection_manager's upgrade_configs.
 *
 * An HTTP/1.1 request with "Connection: upgrade" and an Upgrade header is
 * decided on before any filter runs, as Envoy does:
 *   - "Upgrade: h2c" is not an upgrade a proxy can take: it is dropped with
 *     the other hop-by-hop fields and the request goes on as a plain one;
 *   - "Upgrade: websocket" with upgrade_configs websocket: the request is
 *     routed like any other (RBAC, route match, retries before a response)
 *     and sent with its Connection/Upgrade fields; the connection closes
 *     after the exchange, whatever the upstream answers;
 *   - any other upgrade: 403 and close, counted in
 *     http.<prefix>.downstream_rq_ws_on_non_ws_route (Envoy's answer).
 *
 * Theory of operation of the tunnel. When the upstream answers 101, the
 * stream is committed (accounted once, status 101) and its two connections
 * become a byte tunnel: proxy/h1_codec.c hands every later event of either
 * side to mc_h1_tunnel_pump. Each direction moves through one bounded
 * buffer (the downstream connection's `in` toward the upstream, the
 * upstream connection's `in` toward the client) and a buffer is refilled
 * only once drained, so a slow reader stops reads on the other side (no
 * more than MC_HTTP_BUF per direction); buffers are returned to the pool
 * whenever they are empty, so an idle tunnel holds none. An end of stream
 * on one side is passed on as a half-close (shutdown, close_notify on TLS)
 * once its bytes are delivered; the stream ends when both directions have
 * ended, or at the first error (a reset of the other side too). The HCM's
 * stream_idle_timeout is the tunnel's idle timeout (proxy/http_stream.c).
 */
#include <string.h>
#include <strings.h>

#include "proxy/h1_server.h"

#define STATS(s) ((s)->w->stats)

enum {
    TUN_ON = 1,        /* the 101 is committed: this is a tunnel */
    TUN_DOWN_EOF = 2,  /* the client has sent its last byte */
    TUN_UP_EOF = 4,    /* the upstream has sent its last byte */
    TUN_UP_SHUT = 8,   /* ...and the upstream was told (half-close) */
    TUN_DOWN_SHUT = 16 /* ...and the client was told */
};

/* The value is exactly token (case-insensitive, optional whitespace around). */
static int value_is(const char *v, size_t n, const char *token)
{
    while (n && (*v == ' ' || *v == '\t')) {
        v++;
        n--;
    }
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    size_t len = strlen(token);
    return n == len && strncasecmp(v, token, len) == 0;
}

const mc_h1_header_t *mc_http_upgrade_header(const mc_h1_header_t *headers, size_t n)
{
    return mc_h1_find_header(headers, n, "upgrade", 7);
}

int mc_http_upgrade_check(mc_http_stream_t *s)
{
    const mc_h1_header_t *h = mc_http_upgrade_header(s->req.headers, s->req.n_headers);
    if (!h || value_is(h->value, h->value_len, "h2c"))
        return 0; /* a plain request: Connection/Upgrade are stripped as hop-by-hop fields */
    s->close_after = 1; /* the connection is not reused after an upgrade request, as Envoy */
    if (s->hcm->upgrade_websocket && value_is(h->value, h->value_len, "websocket")) {
        s->upgrade = 1;
        mc_stat_inc(STATS(s), s->hcm->scope, MC_HTTP_DOWNSTREAM_CX_UPGRADES_TOTAL);
        mc_stat_inc(STATS(s), s->hcm->scope, MC_HTTP_DOWNSTREAM_CX_UPGRADES_ACTIVE);
        return 0;
    }
    mc_stat_inc(STATS(s), s->hcm->scope, MC_HTTP_DOWNSTREAM_RQ_WS_ON_NON_WS_ROUTE);
    s->details = "upgrade_failed";
    mc_http_local_reply(s, 403, "", 0);
    return -1;
}

void mc_http_upgrade_end(mc_http_stream_t *s)
{
    if (s->upgrade && s->conn)
        mc_stat_add(STATS(s), s->hcm->scope, MC_HTTP_DOWNSTREAM_CX_UPGRADES_ACTIVE, -1);
    s->upgrade = 0;
}

void mc_http_upgrade_commit(mc_http_stream_t *s)
{
    s->tunnel = TUN_ON;
}

int mc_http_upgrade_tunnel(const mc_http_stream_t *s)
{
    return s->tunnel != 0;
}

/* One direction, one step: writes what buf holds to dst, or (buf empty)
 * reads src into it. 1 progress, 0 blocked, -1 error. *eof is set at the
 * end of src; *moved counts bytes delivered to dst. */
typedef struct side {
    mc_stream_t *st;
    uint8_t *readable, *writable;
    uint8_t rdhup;
} side_t;

static int step(mc_worker_t *w, side_t from, mc_hbuf_t *buf, side_t to, int *eof, uint64_t *moved)
{
    if (mc_hbuf_len(buf)) {
        if (!*to.writable)
            return 0;
        ssize_t n = mc_stream_write(to.st, buf->data + buf->start, mc_hbuf_len(buf));
        if (n == MC_IO_AGAIN) {
            *to.writable = 0;
            return 0;
        }
        if (n <= 0)
            return -1;
        buf->start += (uint32_t)n;
        *moved += (uint64_t)n;
        if (!mc_hbuf_len(buf))
            mc_hbuf_release(w, buf); /* an idle tunnel holds no buffer */
        return 1;
    }
    if (*eof || !*from.readable)
        return 0;
    if (mc_hbuf_reserve(w, buf, MC_HTTP_BUF / 2) < 0)
        return -1;
    uint32_t room = buf->cap - buf->end;
    ssize_t n = mc_stream_read(from.st, buf->data + buf->end, room);
    if (n > 0) {
        buf->end += (uint32_t)n;
        if ((uint32_t)n < room && !from.rdhup && mc_stream_short_read_drains(from.st))
            *from.readable = 0;
        return 1;
    }
    if (n == MC_IO_AGAIN) {
        *from.readable = 0;
        mc_hbuf_release(w, buf);
        return 0;
    }
    mc_hbuf_release(w, buf);
    if (n == 0) {
        *eof = 1;
        return 1;
    }
    return -1;
}

/* Both directions have ended: the exchange is over. */
static void tunnel_done(mc_http_stream_t *s)
{
    s->resp_done = 1;
    s->resp_ready = 0;
    mc_http_stream_finish(s); /* accounted (101, bytes both ways); the upstream connection is closed */
}

void mc_h1_tunnel_pump(mc_http_stream_t *s)
{
    mc_http_conn_t *c = s->conn;
    mc_upconn_t *u = s->up;
    mc_stats_shard_t *st = STATS(s);
    if (!u) {
        mc_h1_conn_close(c);
        return;
    }
    /* The committed 101 carries no body: the stream ends with the tunnel, and
     * its upstream connection is never pooled again. */
    s->resp_done = 0;
    s->resp_keep_upstream = 0;
    int r = mc_h1_flush_out(c); /* the 101's head first */
    if (r < 0) {
        mc_h1_conn_close(c);
        return;
    }
    size_t budget = 1u << 20; /* then yield to other connections */
    for (;;) {
        int down_eof = (s->tunnel & TUN_DOWN_EOF) != 0, up_eof = (s->tunnel & TUN_UP_EOF) != 0;
        uint64_t to_up = 0, to_down = 0;
        side_t client = {&c->st, &c->readable, &c->writable, c->rdhup};
        side_t server = {&u->st, &u->readable, &u->writable, u->rdhup};
        int a = step(s->w, client, &c->in, server, &down_eof, &to_up);
        int b = r > 0 ? step(s->w, server, &u->in, client, &up_eof, &to_down) : 0;
        if (a < 0 || b < 0) { /* a reset on either side resets the other */
            if (b < 0)
                s->flags |= MC_RF_UC;
            mc_h1_conn_close(c);
            return;
        }
        if (to_up) {
            s->bytes_rx += to_up;
            mc_stat_add(st, c->hcm->scope, MC_HTTP_DOWNSTREAM_CX_RX_BYTES_TOTAL, (int64_t)to_up);
            mc_stat_add(st, u->cluster_scope, MC_CLUSTER_UPSTREAM_CX_TX_BYTES_TOTAL, (int64_t)to_up);
        }
        if (to_down) {
            s->bytes_tx += to_down;
            mc_stat_add(st, c->hcm->scope, MC_HTTP_DOWNSTREAM_CX_TX_BYTES_TOTAL, (int64_t)to_down);
            mc_stat_add(st, u->cluster_scope, MC_CLUSTER_UPSTREAM_CX_RX_BYTES_TOTAL, (int64_t)to_down);
        }
        s->tunnel |= (uint8_t)((down_eof ? TUN_DOWN_EOF : 0) | (up_eof ? TUN_UP_EOF : 0));
        if (down_eof && !mc_hbuf_len(&c->in) && !(s->tunnel & TUN_UP_SHUT)) {
            mc_stream_shutdown(&u->st); /* the client's FIN, passed on */
            s->tunnel |= TUN_UP_SHUT;
        }
        if (up_eof && !mc_hbuf_len(&u->in) && !(s->tunnel & TUN_DOWN_SHUT)) {
            mc_stream_shutdown(&c->st);
            s->tunnel |= TUN_DOWN_SHUT;
        }
        if ((s->tunnel & (TUN_UP_SHUT | TUN_DOWN_SHUT)) == (TUN_UP_SHUT | TUN_DOWN_SHUT)) {
            tunnel_done(s);
            return;
        }
        if (a == 0 && b == 0)
            break;
        s->last_activity = s->w->loop.now;
        uint64_t moved = to_up + to_down;
        if (moved >= budget) {
            mc_loop_post(&s->w->loop, &s->task, s->task.cb);
            return;
        }
        budget -= moved;
    }
}
