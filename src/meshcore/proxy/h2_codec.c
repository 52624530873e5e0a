/*
 * The HTTP/2 codec's side of a stream (mc_http_codec_t for HTTP/2): response
 * heads and bodies, trailers, local replies (trailers-only for gRPC) and
 * request bodies. The session and its frames are proxy/h2_server.c.
 *
 * Heads are made by the same code as HTTP/1.1's (proxy/http_headers.c:
 * header operations, x-envoy-* fields, server name), written into a pooled
 * scratch buffer, read back and handed to nghttp2 (which copies them)
 * without the connection-specific fields RFC 9113 8.2.2 forbids.
 *
 * A response body is pulled by nghttp2's data provider straight from the
 * upstream connection's buffer, decoded when it is chunked; the trailer
 * section of a chunked body becomes the HTTP/2 trailers. When the client's
 * window is empty nghttp2 does not pull, the upstream is not read, and TCP
 * backpressure reaches the upstream: a stream holds at most one buffer.
 */
#include <stdio.h>
#include <string.h>

#include "meshcore/overload.h"
#include "proxy/h2_server.h"
#include "worker/control.h"

#define MAX_NV (MC_HTTP_MAX_HEADERS + 32)

/* Per worker thread: a head's fields for nghttp2, which copies them. */
static __thread nghttp2_nv nv[MAX_NV];
static __thread mc_h1_header_t slots[MAX_NV];

#define NV(n, nl, v, vl) ((nghttp2_nv){(uint8_t *)(n), (uint8_t *)(v), (nl), (vl), NGHTTP2_NV_FLAG_NONE})
#define NVS(lit, v, vl) NV(lit, sizeof(lit) - 1, v, vl)

static void lower(char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] >= 'A' && p[i] <= 'Z')
            p[i] = (char)(p[i] | 0x20);
}

static void status_text(char out[4], int status)
{
    out[0] = (char)('0' + status / 100 % 10);
    out[1] = (char)('0' + status / 10 % 10);
    out[2] = (char)('0' + status % 10);
    out[3] = 0;
}

/* The fields of an HTTP/1.1 response head we wrote into buf, as nghttp2
 * pairs after :status (names lowercased in place, hop-by-hop fields left
 * out). Returns the count, or -1; *head_len is the head's length. */
static int head_nv(char *buf, size_t len, char status[4], size_t *head_len)
{
    mc_h1_response_t r = {.headers = slots, .n_headers = MAX_NV - 1};
    mc_h1_limits_t lim = {.max_head_bytes = len + 1, .max_target_bytes = len + 1, .max_headers = MAX_NV - 1};
    int rc = mc_h1_parse_response(buf, len, &r, 0, &lim, NULL);
    if (rc <= 0)
        return -1;
    *head_len = (size_t)rc;
    status_text(status, r.status);
    int k = 0;
    nv[k++] = NVS(":status", status, 3);
    for (size_t i = 0; i < r.n_headers; i++) {
        mc_h1_header_t *h = &r.headers[i];
        if (mc_h1_is_hop_by_hop(h->name, h->name_len))
            continue;
        lower((char *)(uintptr_t)h->name, h->name_len);
        nv[k++] = NV(h->name, h->name_len, h->value, h->value_len);
    }
    return k;
}

/* ---- response bodies ------------------------------------------------------------ */

/* Keeps a byte of the upstream's trailer section (bounded by the chunked
 * scanner's trailer limit). */
static int keep_trailer_byte(mc_http_stream_t *s, char ch)
{
    mc_hbuf_t *b = &s->h2.tx;
    if ((!b->data || b->end == b->cap) && mc_hbuf_reserve(s->w, b, b->cap ? b->cap : 256) < 0)
        return -1;
    b->data[b->end++] = ch;
    return 0;
}

/* Scans the upstream buffer for body bytes (resp_ready at its front); a
 * chunked body is decoded as in proxy/http_upstream.c, and its trailer
 * section is kept for the HTTP/2 trailers. */
static int scan(mc_http_stream_t *s, mc_upconn_t *u)
{
    if (s->resp_body != MC_H1_BODY_CHUNKED)
        return mc_http_scan_response(s, u);
    const char *p = u->in.data + u->in.start;
    uint32_t avail = mc_hbuf_len(&u->in), off = 0;
    s->resp_ready = 0;
    while (off < avail && !s->resp_done) {
        uint64_t data = mc_h1_chunked_data_next(&s->resp_chunked);
        int done = 0;
        if (data) {
            ssize_t n = mc_h1_chunked_scan(&s->resp_chunked, p + off, data < avail - off ? data : avail - off, &done,
                                           NULL);
            if (n < 0)
                return -1;
            s->resp_ready = (uint32_t)n;
            break;
        }
        int trailer = mc_h1_chunked_in_trailers(&s->resp_chunked);
        ssize_t n = mc_h1_chunked_scan(&s->resp_chunked, p + off, 1, &done, NULL);
        if (n < 0 || (trailer && n == 1 && keep_trailer_byte(s, p[off]) < 0))
            return -1;
        off += (uint32_t)n;
        s->resp_done = (uint8_t)done;
    }
    u->in.start += off;
    return 0;
}

/* Copies up to `length` body bytes from the upstream into buf (*n). 0, or -1
 * when the upstream failed mid-body (flagged). */
static int pull(mc_http_stream_t *s, uint8_t *buf, size_t length, size_t *n)
{
    mc_upconn_t *u = s->up;
    if (!u)
        return -1;
    for (;;) {
        if (s->resp_ready) {
            size_t k = length - *n < s->resp_ready ? length - *n : s->resp_ready;
            memcpy(buf + *n, u->in.data + u->in.start, k);
            u->in.start += (uint32_t)k;
            s->resp_ready -= (uint32_t)k;
            s->bytes_tx += k;
            *n += k;
            if (*n == length)
                return 0;
            continue;
        }
        if (s->resp_done)
            return 0;
        if (mc_hbuf_len(&u->in)) {
            if (scan(s, u) < 0) {
                s->flags |= MC_RF_UPE;
                mc_stat_inc(s->w->stats, u->cluster_scope, MC_CLUSTER_UPSTREAM_CX_PROTOCOL_ERROR);
                return -1;
            }
            if (s->resp_ready || s->resp_done)
                continue;
        }
        int more = mc_http_read_response(s, u);
        if (more > 0)
            continue;
        if (more == 0)
            return 0; /* the forwarder calls send_response when the upstream is readable */
        s->flags |= MC_RF_UC;
        return -1;
    }
}

/* The upstream's trailer section (kept in tx) as HTTP/2 trailers: 1 if submitted. */
static int submit_trailers(mc_http_stream_t *s)
{
    mc_hbuf_t *b = &s->h2.tx;
    char *p = b->data + b->start, *end = b->data + b->end;
    int k = 0;
    while (b->data && p < end && k < MAX_NV) {
        char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            break;
        char *le = eol > p && eol[-1] == '\r' ? eol - 1 : eol;
        char *colon = memchr(p, ':', (size_t)(le - p));
        if (le == p)
            break; /* the empty line that ends the section */
        if (colon) {
            char *v = colon + 1;
            while (v < le && (*v == ' ' || *v == '\t'))
                v++;
            char *ve = le;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            lower(p, (size_t)(colon - p));
            if (!mc_h1_is_hop_by_hop(p, (size_t)(colon - p)))
                nv[k++] = NV(p, (size_t)(colon - p), v, (size_t)(ve - v));
        }
        p = eol + 1;
    }
    if (!k || nghttp2_submit_trailer(s->conn->h2->ng, s->h2.id, nv, (size_t)k) != 0)
        return 0;
    mc_stat_inc(s->w->stats, s->hcm->scope, MC_HTTP2_TRAILERS);
    return 1;
}

ssize_t mc_h2_read_body(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length, uint32_t *flags,
                        nghttp2_data_source *src, void *user)
{
    (void)src;
    (void)user;
    mc_http_stream_t *s = nghttp2_session_get_stream_user_data(ng, id);
    if (!s || s->state != ST_ACTIVE)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets the stream */
    if (s->h2.ws && mc_http_upgrade_tunnel(s))
        return mc_h2_tunnel_read(s, buf, length, flags); /* proxy/h2_tunnel.c */
    size_t n = 0;
    int done;
    if (s->h2.local) {
        mc_hbuf_t *b = &s->h2.tx;
        n = length < mc_hbuf_len(b) ? length : mc_hbuf_len(b);
        memcpy(buf, b->data + b->start, n);
        b->start += (uint32_t)n;
        done = mc_hbuf_len(b) == 0;
    } else {
        if (pull(s, buf, length, &n) < 0)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* RST_STREAM; on_stream_close aborts */
        done = s->resp_done && !s->resp_ready;
    }
    if (n)
        s->last_activity = s->w->loop.now;
    if (!done) {
        if (n)
            return (ssize_t)n;
        s->h2.deferred = 1; /* resumed by send_response when the upstream has more */
        return NGHTTP2_ERR_DEFERRED;
    }
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (!s->h2.local && submit_trailers(s))
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
    s->h2.eof = 1;
    mc_http_stream_account(s);
    mc_loop_post(&s->w->loop, &s->task, s->task.cb); /* finishes the stream, outside nghttp2 */
    return (ssize_t)n;
}

/* ---- the codec -------------------------------------------------------------------- */

static void h2_reset(mc_http_stream_t *s)
{
    mc_h2_session_t *h = s->conn->h2;
    if (s->h2.attached && h)
        nghttp2_submit_rst_stream(h->ng, NGHTTP2_FLAG_NONE, s->h2.id, NGHTTP2_INTERNAL_ERROR);
    mc_h2_detach(s);
    mc_http_stream_abort(s);
    mc_h2_want_write(h);
}

static void h2_done(mc_http_stream_t *s)
{
    mc_h2_session_t *h = s->conn->h2;
    /* A request body still coming after a complete response is taken and
     * dropped (on_data_chunk): no RST_STREAM(NO_ERROR), which gRPC clients
     * report as "Stream removed" instead of the status they were sent. */
    mc_h2_detach(s);
    mc_http_stream_free(s);
    mc_h2_want_write(h);
}

static void h2_send_response(mc_http_stream_t *s)
{
    mc_h2_session_t *h = s->conn->h2;
    if (s->h2.eof) {
        mc_http_stream_finish(s);
        return;
    }
    if (s->h2.ws)
        mc_h2_tunnel_pump(s); /* client DATA to the upstream when it is writable */
    if (s->state == ST_ACTIVE && s->h2.deferred && s->h2.attached && h) {
        s->h2.deferred = 0;
        nghttp2_session_resume_data(h->ng, s->h2.id);
        mc_h2_want_write(h);
    }
}

/* Submits a response head (and its body's provider, or none); a head with
 * no body ends the stream here. */
static void submit(mc_http_stream_t *s, int k, int with_body)
{
    mc_h2_session_t *h = s->conn->h2;
    nghttp2_data_provider dp = {.source.ptr = s, .read_callback = mc_h2_read_body};
    int rv = nghttp2_submit_response(h->ng, s->h2.id, nv, (size_t)k, with_body ? &dp : NULL);
    mc_h2_want_write(h);
    if (rv != 0) {
        h2_reset(s);
        return;
    }
    mc_http_conn_t *c = s->conn;
    if (!c->draining && mc_overload_on(c->w->ctl, MC_OA_DISABLE_HTTP_KEEPALIVE)) {
        /* disable_http_keepalive on HTTP/2: a GOAWAY queued after this
         * response's head tells the client to open a new connection for its
         * next streams; those in flight finish (as a drain). */
        mc_stat_inc(c->w->stats, c->hcm->scope, MC_HTTP_DOWNSTREAM_CX_OVERLOAD_DISABLE_KEEPALIVE);
        c->base.drain(&c->base);
    }
    if (!with_body)
        mc_http_stream_finish(s);
}

static void h2_response_head(mc_http_stream_t *s, uint32_t head_len, uint64_t service_ms)
{
    mc_upconn_t *u = s->up;
    mc_hbuf_t tmp = {0};
    long n = -1;
    for (uint32_t room = head_len + 1024; n < 0 && room <= 4u * head_len + 8192; room *= 2) {
        if (mc_hbuf_reserve(s->w, &tmp, room) < 0)
            break;
        n = mc_http_write_response_head(s, tmp.data, tmp.cap, service_ms);
    }
    u->in.start += head_len;
    char status[4];
    size_t hl;
    int k = n < 0 ? -1 : head_nv(tmp.data, (size_t)n, status, &hl);
    if (k < 0) {
        mc_hbuf_release(s->w, &tmp);
        s->flags |= MC_RF_UPE;
        h2_reset(s);
        return;
    }
    if (s->h2.ws && mc_http_upgrade_tunnel(s)) {
        /* RFC 8441 §5: the upstream's 101 is a 200 here, and its
         * Sec-WebSocket-Accept answers a key the client never sent */
        memcpy(status, "200", 4);
        s->status = 200;
        int j = 0;
        for (int i = 0; i < k; i++)
            if (!(nv[i].namelen == 20 && memcmp(nv[i].name, "sec-websocket-accept", 20) == 0))
                nv[j++] = nv[i];
        k = j;
        s->resp_done = 0; /* the tunnel is the body */
        s->resp_keep_upstream = 0;
        submit(s, k, 1);
        mc_hbuf_release(s->w, &tmp);
        mc_h2_tunnel_pump(s); /* DATA the client sent early */
        return;
    }
    submit(s, k, !s->resp_done);
    mc_hbuf_release(s->w, &tmp);
}

/* Envoy's Grpc::Utility::httpToGrpcStatus. */
static int grpc_status_of(int http)
{
    switch (http) {
    case 400: return 13; /* INTERNAL */
    case 401: return 16; /* UNAUTHENTICATED */
    case 403: return 7;  /* PERMISSION_DENIED */
    case 404: return 12; /* UNIMPLEMENTED */
    case 429:
    case 502:
    case 503:
    case 504: return 14; /* UNAVAILABLE */
    default: return 2;   /* UNKNOWN */
    }
}

/* A local reply to a gRPC call: trailers-only (HTTP 200, grpc-status and
 * grpc-message in the one HEADERS frame), as Envoy sends. */
static void grpc_reply(mc_http_stream_t *s, int status, const char *body, size_t body_len)
{
    char code[4], msg[512];
    size_t m = 0;
    while (body_len && (body[body_len - 1] == '\n' || body[body_len - 1] == '\r'))
        body_len--;
    for (size_t i = 0; i < body_len && m + 3 < sizeof(msg); i++) { /* percent-encoded (gRPC over HTTP/2) */
        unsigned char ch = (unsigned char)body[i];
        if (ch >= 0x20 && ch <= 0x7e && ch != '%') {
            msg[m++] = (char)ch;
        } else {
            m += (size_t)snprintf(msg + m, sizeof(msg) - m, "%%%02X", ch);
        }
    }
    /* a gRPC call past its deadline (route timeout, grpc-timeout, max_stream_duration):
     * DEADLINE_EXCEEDED */
    int g = (s->flags & (MC_RF_UT | MC_RF_DT)) && s->grpc_request ? 4 : grpc_status_of(status);
    s->grpc_status = (int16_t)g; /* what the access log and Istio's grpc_response_status report */
    s->has_grpc_status = 1;
    int cl = snprintf(code, sizeof(code), "%d", g);
    s->status = 200;
    int k = 0;
    nv[k++] = NVS(":status", "200", 3);
    nv[k++] = NVS("content-type", "application/grpc", 16);
    nv[k++] = NVS("grpc-status", code, (size_t)cl);
    if (m)
        nv[k++] = NVS("grpc-message", msg, m);
    if (s->request_id_len)
        nv[k++] = NVS("x-request-id", s->request_id, s->request_id_len);
    if (s->hcm->server_name)
        nv[k++] = NVS("server", s->hcm->server_name, s->hcm->server_name_len);
    submit(s, k, 0);
}

static void h2_reply(mc_http_stream_t *s, int status, const char *body, size_t body_len, uint32_t flags,
                     const char *location)
{
    mc_http_forward_abort(s);
    s->resp_done = 1;
    s->try_state = TRY_RESPONDING;
    if (s->h2.grpc) {
        grpc_reply(s, status, body, body_len);
        return;
    }
    mc_http_local_t r = {.status = status, .body = body, .body_len = body_len, .head = 1,
                         .request_id = s->request_id, .request_id_len = s->request_id_len,
                         .server = s->hcm->server_name, .server_len = s->hcm->server_name_len, .location = location};
    if (s->route && s->route->action != MC_ACTION_ROUTE && !flags) {
        r.ops[0] = &s->route->resp_ops;
        r.ops[1] = s->vhost ? &s->vhost->resp_ops : NULL;
        r.ops[2] = &s->hcm->resp_ops;
    }
    const mc_im_cfg_t *im = &s->ch->im;
    if (im->exchange && im->reporter == MC_IM_DESTINATION && s->im_peer_present) {
        r.peer_md_id = im->exchange_id;
        r.peer_md_id_len = im->exchange_id_len;
        r.peer_md = im->exchange;
        r.peer_md_len = im->exchange_len;
    }
    mc_hbuf_t tmp = {0};
    uint32_t need = 2048 + (location ? (uint32_t)strlen(location) : 0) + (uint32_t)(r.peer_md_id_len + r.peer_md_len);
    long n = mc_hbuf_reserve(s->w, &tmp, need) < 0 ? -1 : mc_http_write_local_reply(tmp.data, tmp.cap, &r);
    char st[4];
    size_t hl;
    int k = n < 0 ? -1 : head_nv(tmp.data, (size_t)n, st, &hl);
    int with_body = body_len && !s->head_request;
    if (k >= 0 && with_body) {
        if (mc_hbuf_reserve(s->w, &s->h2.tx, (uint32_t)body_len) < 0) {
            k = -1;
        } else {
            memcpy(s->h2.tx.data + s->h2.tx.end, body, body_len);
            s->h2.tx.end += (uint32_t)body_len;
            s->h2.local = 1;
        }
    }
    if (k < 0) {
        mc_hbuf_release(s->w, &tmp);
        h2_reset(s);
        return;
    }
    submit(s, k, with_body);
    mc_hbuf_release(s->w, &tmp);
}

void mc_h2_reply_bare(mc_h2_session_t *h, int32_t id, int status)
{
    char st[4];
    status_text(st, status);
    nghttp2_nv f[] = {NVS(":status", st, 3), NVS("content-length", "0", 1)};
    nghttp2_submit_response(h->ng, id, f, 2, NULL);
    mc_h2_want_write(h);
}

/* Expect: 100-continue: an interim HEADERS (:status 100) before the final
 * response (RFC 9113 8.1), sent where HTTP/1.1 sends its 100 Continue. */
static int h2_send_continue(mc_http_stream_t *s)
{
    mc_h2_session_t *h = s->conn->h2;
    if (!h || !s->h2.attached)
        return -1;
    nghttp2_nv f[] = {NVS(":status", "100", 3)};
    if (nghttp2_submit_headers(h->ng, NGHTTP2_FLAG_NONE, s->h2.id, NULL, f, 1, NULL) < 0) {
        h2_reset(s);
        return -1;
    }
    mc_h2_want_write(h);
    return 0;
}

/* ---- request bodies ---------------------------------------------------------------- */

/* DATA bytes that have left `rx` go back to the client's windows (nghttp2
 * sends WINDOW_UPDATE once half a window is consumed). Framing bytes in rx
 * count as data until rx empties: never more is consumed than forwarded. */
void mc_h2_settle(mc_http_stream_t *s)
{
    uint32_t held = mc_hbuf_len(&s->h2.rx);
    if (s->h2.unconsumed <= held || !s->h2.attached)
        return;
    mc_h2_session_t *h = s->conn->h2;
    nghttp2_session_consume(h->ng, s->h2.id, s->h2.unconsumed - held);
    s->h2.unconsumed = held;
    mc_h2_want_write(h);
}

static int h2_scan_body(mc_http_stream_t *s)
{
    mc_h2_settle(s);
    if (s->req_ready || s->req_done)
        return 0;
    s->req_ready = mc_hbuf_len(&s->h2.rx);
    s->req_done = s->h2.end_stream;
    return 0;
}

static void h2_read_body(mc_http_stream_t *s)
{
    mc_h2_settle(s); /* the session reads the socket; nothing to pull here */
}

const mc_http_codec_t mc_h2_codec = {
    .name = "h2",
    .reply = h2_reply,
    .send_continue = h2_send_continue,
    .response_head = h2_response_head,
    .send_response = h2_send_response,
    .scan_body = h2_scan_body,
    .read_body = h2_read_body,
    .reset = h2_reset,
    .done = h2_done,
};
