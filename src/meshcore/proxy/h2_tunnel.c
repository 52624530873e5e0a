/*
 * WebSocket over HTTP/2 (RFC 8441 extended CONNECT) to an HTTP/1.1 upstream.
 *
 * When the HCM enables websocket upgrades the session advertises
 * SETTINGS_ENABLE_CONNECT_PROTOCOL (proxy/h2_server.c), and nghttp2 then
 * accepts `:method CONNECT` with `:protocol`. The request is made the
 * HTTP/1.1 upgrade it stands for (RFC 8441 §5): `GET`, `Upgrade: <protocol>`
 * (proxy/h2_request.c puts it among the fields), a generated
 * Sec-WebSocket-Key and Sec-WebSocket-Version 13 when the client sent none,
 * and it goes the way an HTTP/1.1 upgrade goes (proxy/http_upgrade.c: a
 * protocol other than websocket is a 403; RBAC, routes). The upstream's 101
 * becomes a 200 on the stream (proxy/h2_codec.c, without
 * Sec-WebSocket-Accept), and the stream carries the tunnel:
 *   - client DATA is held in the stream's `rx` (bounded by the stream
 *     window: it is given back to the client only once written upstream)
 *     and written to the upstream socket as it is; the client's END_STREAM
 *     becomes a half-close of the upstream connection;
 *   - upstream bytes are pulled by nghttp2's data provider when the client's
 *     window has room, through the upstream connection's one buffer
 *     (returned to the pool when empty); the upstream's end of stream is our
 *     END_STREAM, and the exchange is over then;
 *   - a RST_STREAM from the client aborts the stream (the upstream connection
 *     is closed); an upstream error resets the stream.
 */
#include <string.h>
#include <strings.h>

#include "proxy/h2_server.h"

static void base64_16(const uint8_t in[16], char out[24])
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < 15; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = a[v >> 18 & 63];
        out[o++] = a[v >> 12 & 63];
        out[o++] = a[v >> 6 & 63];
        out[o++] = a[v & 63];
    }
    out[o++] = a[in[15] >> 2];
    out[o++] = a[(in[15] & 3) << 4];
    out[o++] = '=';
    out[o++] = '=';
}

/* Adds a field to the request (its bytes in the header buffer). */
static int add_field(mc_http_stream_t *s, const char *name, size_t nlen, const char *value, size_t vlen)
{
    mc_h1_request_t *q = &s->req;
    if (q->n_headers >= MC_HTTP_MAX_HEADERS)
        return -1;
    const char *p = mc_h2_store(s, name, nlen, value, vlen);
    if (!p)
        return -1;
    q->headers[q->n_headers++] = (mc_h1_header_t){p, nlen, p + nlen, vlen};
    return 0;
}

int mc_h2_ws_prepare(mc_http_stream_t *s)
{
    mc_h1_request_t *q = &s->req;
    const char *get = mc_h2_store(s, "GET", 3, "", 0); /* in the buffer: its views move together */
    if (!get)
        return -1;
    q->method = get;
    q->method_len = 3;
    q->connect = 0;
    q->upgrade = 1;
    s->h2.chunked = 0;
    const mc_h1_header_t *up = mc_h1_find_header(q->headers, q->n_headers, "upgrade", 7);
    if (!up || up->value_len != 9 || strncasecmp(up->value, "websocket", 9) != 0)
        return 0; /* mc_http_upgrade_check refuses it (403) */
    if (!mc_h1_find_header(q->headers, q->n_headers, "sec-websocket-version", 21) &&
        add_field(s, "sec-websocket-version", 21, "13", 2) < 0)
        return -1;
    if (!mc_h1_find_header(q->headers, q->n_headers, "sec-websocket-key", 17)) {
        /* The upstream only checks its form and echoes its hash, which we
         * drop: the worker's generator is enough (RFC 6455 4.1 asks for a
         * nonce, not a secret). */
        uint8_t raw[16];
        uint64_t a = mc_rand_next(&s->w->rand), b = mc_rand_next(&s->w->rand);
        memcpy(raw, &a, 8);
        memcpy(raw + 8, &b, 8);
        char key[24];
        base64_16(raw, key);
        if (add_field(s, "sec-websocket-key", 17, key, sizeof(key)) < 0)
            return -1;
    }
    return 0;
}

ssize_t mc_h2_tunnel_read(mc_http_stream_t *s, uint8_t *buf, size_t length, uint32_t *flags)
{
    mc_upconn_t *u = s->up;
    if (!u)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    mc_hbuf_t *in = &u->in;
    if (!mc_hbuf_len(in) && !(s->h2.ws_flags & H2WS_UP_EOF) && u->readable) {
        if (mc_hbuf_reserve(s->w, in, MC_HTTP_BUF / 2) < 0)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        uint32_t room = in->cap - in->end;
        ssize_t n = mc_stream_read(&u->st, in->data + in->end, room);
        if (n > 0) {
            in->end += (uint32_t)n;
            if ((uint32_t)n < room && !u->rdhup && mc_stream_short_read_drains(&u->st))
                u->readable = 0;
        } else if (n == MC_IO_AGAIN) {
            u->readable = 0;
        } else if (n == 0) {
            s->h2.ws_flags |= H2WS_UP_EOF;
        } else {
            s->flags |= MC_RF_UC;
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* RST_STREAM; on_stream_close aborts */
        }
    }
    size_t n = mc_hbuf_len(in) < length ? mc_hbuf_len(in) : length;
    if (n) {
        memcpy(buf, in->data + in->start, n);
        in->start += (uint32_t)n;
        s->bytes_tx += n;
        mc_stat_add(s->w->stats, s->hcm->scope, MC_HTTP_DOWNSTREAM_CX_TX_BYTES_TOTAL, (int64_t)n);
        mc_stat_add(s->w->stats, u->cluster_scope, MC_CLUSTER_UPSTREAM_CX_RX_BYTES_TOTAL, (int64_t)n);
        s->last_activity = s->w->loop.now;
    }
    if (in->data && !mc_hbuf_len(in))
        mc_hbuf_release(s->w, in); /* an idle tunnel holds no buffer */
    if (n)
        return (ssize_t)n;
    if (!(s->h2.ws_flags & H2WS_UP_EOF)) {
        s->h2.deferred = 1; /* resumed by send_response when the upstream is readable */
        return NGHTTP2_ERR_DEFERRED;
    }
    /* The upstream's end: END_STREAM, and the exchange is over (later
     * client DATA goes back to the windows and is dropped). */
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    s->resp_done = 1;
    s->h2.eof = 1;
    mc_http_stream_account(s);
    mc_loop_post(&s->w->loop, &s->task, s->task.cb);
    return 0;
}

void mc_h2_tunnel_pump(mc_http_stream_t *s)
{
    mc_upconn_t *u = s->up;
    if (s->state != ST_ACTIVE || !mc_http_upgrade_tunnel(s) || !u)
        return; /* before the 101: DATA waits in rx (bounded by the window) */
    mc_hbuf_t *rx = &s->h2.rx;
    while (mc_hbuf_len(rx) && u->writable) {
        ssize_t n = mc_stream_write(&u->st, rx->data + rx->start, mc_hbuf_len(rx));
        if (n == MC_IO_AGAIN) {
            u->writable = 0;
            break;
        }
        if (n <= 0) {
            s->flags |= MC_RF_UC;
            s->codec->reset(s);
            return;
        }
        rx->start += (uint32_t)n;
        s->bytes_rx += (uint64_t)n;
        mc_stat_add(s->w->stats, s->hcm->scope, MC_HTTP_DOWNSTREAM_CX_RX_BYTES_TOTAL, n);
        mc_stat_add(s->w->stats, u->cluster_scope, MC_CLUSTER_UPSTREAM_CX_TX_BYTES_TOTAL, n);
        s->last_activity = s->w->loop.now;
    }
    mc_h2_settle(s); /* what left rx goes back to the client's windows */
    if (rx->data && !mc_hbuf_len(rx))
        mc_hbuf_release(s->w, rx);
    if (s->h2.end_stream && !mc_hbuf_len(rx) && !(s->h2.ws_flags & H2WS_UP_SHUT)) {
        mc_stream_shutdown(&u->st); /* the client's END_STREAM, passed on */
        s->h2.ws_flags |= H2WS_UP_SHUT;
    }
}
