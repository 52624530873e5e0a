/*
 * The HTTP/1.1 <-> HTTP/2 adapter of an upstream stream (see
 * proxy/h2_upstream.h): the request the stream writes HTTP/1.1-shaped
 * becomes HEADERS + DATA, and the response is handed back HTTP/1.1-shaped,
 * with the body chunked and the trailers as the chunk trailer section.
 *
 * Header translation follows RFC 9113 §8.2.2 and §8.3: the connection-
 * specific fields (Connection, Keep-Alive, Proxy-Connection,
 * Transfer-Encoding, Upgrade, and TE other than "trailers") are dropped,
 * Host becomes :authority, names are sent in lower case. Bounds: a request
 * waits in `out` (one buffer) until nghttp2 frames it within the peer's
 * window; a response head or trailer section is capped at the parser's head
 * limit; response DATA waits in `raw` (at most our stream window).
 */
#include <stdio.h>
#include <string.h>

#include "proxy/h2_session.h"

#define MAX_NV (MC_HTTP_MAX_HEADERS + 32)

static mc_upconn_t *handle_of(nghttp2_session *ng, int32_t sid)
{
    return nghttp2_session_get_stream_user_data(ng, sid);
}

static int put(mc_worker_t *w, mc_hbuf_t *b, const char *p, size_t n)
{
    if (mc_hbuf_len(b) + n > MC_H1_DEFAULT_MAX_HEAD_BYTES + MC_HTTP_BUF)
        return -1; /* a head or trailer section past the limit */
    if (mc_hbuf_reserve(w, b, (uint32_t)n) < 0)
        return -1;
    memcpy(b->data + b->end, p, n);
    b->end += (uint32_t)n;
    return 0;
}
#define PUTS(w, b, s) put(w, b, s, sizeof(s) - 1)

static int is_name(const uint8_t *n, size_t len, const char *lit)
{
    return strlen(lit) == len && memcmp(n, lit, len) == 0;
}

/* ---- the request: HTTP/1.1 head -> HEADERS ----------------------------------- */

static int hop_by_hop(const char *n, size_t len)
{
    return mc_h1_token_eq(n, len, "connection", 10) || mc_h1_token_eq(n, len, "keep-alive", 10) ||
           mc_h1_token_eq(n, len, "proxy-connection", 16) || mc_h1_token_eq(n, len, "transfer-encoding", 17) ||
           mc_h1_token_eq(n, len, "upgrade", 7) || mc_h1_token_eq(n, len, "host", 4) ||
           mc_h1_token_eq(n, len, "expect", 6);
}

static nghttp2_nv nv(const char *n, size_t nl, const char *v, size_t vl)
{
    return (nghttp2_nv){(uint8_t *)(uintptr_t)n, (uint8_t *)(uintptr_t)v, nl, vl, NGHTTP2_NV_FLAG_NONE};
}

static ssize_t read_body(nghttp2_session *ng, int32_t sid, uint8_t *buf, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *user)
{
    (void)src;
    mc_h2up_t *h = user;
    mc_upconn_t *u = handle_of(ng, sid);
    if (!u)
        return NGHTTP2_ERR_DEFERRED; /* released: its RST_STREAM is on the way */
    mc_h2up_stream_t *x = &u->h2s;
    size_t n = 0;
    int end = 0;
    while (n < len && mc_hbuf_len(&x->out) && !end) {
        const char *p = x->out.data + x->out.start;
        uint32_t avail = mc_hbuf_len(&x->out);
        if (x->req_body == MC_H1_BODY_LENGTH) {
            size_t k = avail < len - n ? avail : len - n;
            if (k > x->req_remaining)
                k = x->req_remaining;
            memcpy(buf + n, p, k);
            n += k;
            x->out.start += (uint32_t)k;
            x->req_remaining -= k;
            end = x->req_remaining == 0;
            continue;
        }
        /* chunked: chunk data is copied, framing (and any trailers) dropped */
        uint64_t data = mc_h1_chunked_data_next(&x->req_chunked);
        int done = 0;
        size_t want = data ? (data < avail ? data : avail) : 1;
        if (data && want > len - n)
            want = len - n;
        ssize_t k = mc_h1_chunked_scan(&x->req_chunked, p, want, &done, NULL);
        if (k < 0)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets the stream */
        if (data) {
            memcpy(buf + n, p, (size_t)k);
            n += (size_t)k;
        }
        x->out.start += (uint32_t)k;
        end = done;
    }
    if (x->req_body == MC_H1_BODY_LENGTH && x->req_remaining == 0)
        end = 1;
    if (!mc_hbuf_len(&x->out) && x->out.data)
        x->out.start = x->out.end = 0;
    if (n && !u->writable) { /* room again: the stream may write more */
        u->writable = 1;
        mc_h2up_notify(h, u, UPEV_IO);
    }
    if (end) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        x->req_end = 1;
        return (ssize_t)n;
    }
    if (!n) {
        x->deferred = 1;
        return NGHTTP2_ERR_DEFERRED;
    }
    return (ssize_t)n;
}

/* The request head is whole in `out`: submit it. 0 ok, -1 cannot. */
static int submit_head(mc_upconn_t *u, int head_len, mc_h1_request_t *r)
{
    mc_h2up_t *h = u->h2;
    mc_h2up_stream_t *x = &u->h2s;
    nghttp2_nv v[MAX_NV];
    size_t n = 0;
    v[n++] = nv(":method", 7, r->method, r->method_len);
    if (h->tls)
        v[n++] = nv(":scheme", 7, "https", 5);
    else
        v[n++] = nv(":scheme", 7, "http", 4);
    if (r->authority && r->authority_len)
        v[n++] = nv(":authority", 10, r->authority, r->authority_len);
    if (r->form == MC_H1_FORM_ORIGIN || r->form == MC_H1_FORM_ABSOLUTE) {
        const char *path = r->path ? r->path : "/";
        size_t plen = r->path ? (size_t)(r->target + r->target_len - r->path) : 1;
        v[n++] = nv(":path", 5, path, plen);
    } else {
        return -1; /* CONNECT / asterisk-form are not forwarded as HTTP/2 here */
    }
    for (size_t i = 0; i < r->n_headers && n < MAX_NV; i++) {
        mc_h1_header_t *f = &r->headers[i];
        if (hop_by_hop(f->name, f->name_len))
            continue;
        if (mc_h1_token_eq(f->name, f->name_len, "te", 2)) {
            if (mc_h1_token_eq(f->value, f->value_len, "trailers", 8))
                v[n++] = nv("te", 2, "trailers", 8);
            continue;
        }
        if (r->body != MC_H1_BODY_LENGTH && mc_h1_token_eq(f->name, f->name_len, "content-length", 14))
            continue;
        char *name = (char *)(uintptr_t)f->name; /* our copy in `out`: lower-cased in place */
        for (size_t k = 0; k < f->name_len; k++)
            if (name[k] >= 'A' && name[k] <= 'Z')
                name[k] = (char)(name[k] + 32);
        v[n++] = nv(f->name, f->name_len, f->value, f->value_len);
    }
    x->req_body = r->body;
    x->req_remaining = r->content_length;
    mc_h1_chunked_init(&x->req_chunked);
    x->head_request = r->method_len == 4 && memcmp(r->method, "HEAD", 4) == 0;
    int has_body = r->body == MC_H1_BODY_CHUNKED || (r->body == MC_H1_BODY_LENGTH && r->content_length > 0);
    nghttp2_data_provider prd = {.source.ptr = NULL, .read_callback = read_body};
    int32_t sid = nghttp2_submit_request(h->ng, NULL, v, n, has_body ? &prd : NULL, u);
    if (sid < 0)
        return -1;
    x->sid = sid;
    if (!has_body)
        x->req_end = 1;
    x->out.start += (uint32_t)head_len;
    return 0;
}

ssize_t mc_h2up_write(mc_upconn_t *u, const char *p, uint32_t len)
{
    mc_h2up_t *h = u->h2;
    mc_h2up_stream_t *x = &u->h2s;
    if (!h || x->closed || x->reset_code)
        return MC_IO_ERROR;
    if (x->req_end)
        return len; /* the upstream answered before the body: the rest is moot */
    if (mc_hbuf_len(&x->out) == 0 && x->out.data)
        x->out.start = x->out.end = 0;
    uint32_t cap = x->sid ? MC_HTTP_BUF : MC_H1_DEFAULT_MAX_HEAD_BYTES + MC_HTTP_BUF;
    uint32_t room = cap > mc_hbuf_len(&x->out) ? cap - mc_hbuf_len(&x->out) : 0;
    uint32_t n = len < room ? len : room;
    if (!n) {
        u->writable = 0;
        return MC_IO_AGAIN;
    }
    if (mc_hbuf_reserve(u->w, &x->out, n) < 0)
        return MC_IO_ERROR;
    memcpy(x->out.data + x->out.end, p, n);
    x->out.end += n;
    if (!x->sid) {
        mc_h1_header_t fields[MAX_NV];
        mc_h1_request_t r = {.headers = fields, .n_headers = MAX_NV};
        mc_h1_limits_t lim = mc_h1_default_limits;
        lim.max_headers = MAX_NV;
        int status = 0;
        const char *reason = NULL;
        int rc = mc_h1_parse_request(x->out.data + x->out.start, mc_hbuf_len(&x->out), &r, &lim, &status, &reason);
        if (rc == MC_H1_ERROR || (rc > 0 && submit_head(u, rc, &r) < 0))
            return MC_IO_ERROR;
    } else if (x->deferred) {
        x->deferred = 0;
        nghttp2_session_resume_data(h->ng, x->sid);
    }
    mc_h2up_kick(h);
    return n;
}

/* ---- the response: HEADERS + DATA -> HTTP/1.1 --------------------------------- */

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *user)
{
    (void)user;
    mc_upconn_t *u = handle_of(ng, f->hd.stream_id);
    if (u && u->h2s.head_done)
        u->h2s.in_trailers = 1;
    return 0;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *user)
{
    (void)flags, (void)user;
    mc_upconn_t *u = handle_of(ng, f->hd.stream_id);
    if (!u || f->hd.type != NGHTTP2_HEADERS)
        return 0;
    mc_h2up_stream_t *x = &u->h2s;
    mc_worker_t *w = u->w;
    mc_hbuf_t *b = x->in_trailers ? &x->trailers : &u->in;
    if (x->in_trailers) {
        if (nlen && name[0] == ':')
            return 0;
        if (is_name(name, nlen, "grpc-status") && vlen && vlen <= 2) {
            int st = 0;
            for (size_t i = 0; i < vlen; i++)
                st = st * 10 + (value[i] - '0');
            x->grpc_status = (int16_t)st;
        }
    } else if (is_name(name, nlen, ":status")) {
        if (vlen != 3)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        x->status = (uint16_t)((value[0] - '0') * 100 + (value[1] - '0') * 10 + (value[2] - '0'));
        const char *reason = mc_http_reason(x->status);
        if (PUTS(w, b, "HTTP/1.1 ") < 0 || put(w, b, (const char *)value, 3) < 0 || PUTS(w, b, " ") < 0 ||
            put(w, b, reason, strlen(reason)) < 0 || PUTS(w, b, "\r\n") < 0)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        return 0;
    } else if (nlen && name[0] == ':') {
        return 0;
    } else if (is_name(name, nlen, "content-length")) {
        if (!x->head_request)
            return 0; /* the body is chunked toward the stream */
        x->kept_cl = 1;
    }
    if (put(w, b, (const char *)name, nlen) < 0 || PUTS(w, b, ": ") < 0 || put(w, b, (const char *)value, vlen) < 0 ||
        PUTS(w, b, "\r\n") < 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    return 0;
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *user)
{
    mc_h2up_t *h = user;
    mc_h2_ka_frame(&h->ka, h->w, f);
    if (f->hd.type == NGHTTP2_GOAWAY) {
        h->goaway = 1; /* no new streams; nghttp2 refuses those past last_stream_id */
        return 0;
    }
    mc_upconn_t *u = f->hd.stream_id ? handle_of(ng, f->hd.stream_id) : NULL;
    if (!u)
        return 0;
    mc_h2up_stream_t *x = &u->h2s;
    int end = (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    if (f->hd.type == NGHTTP2_DATA) {
        if (end)
            x->body_end = 1;
    } else if (f->hd.type == NGHTTP2_HEADERS) {
        if (x->in_trailers) {
            x->in_trailers = 0;
            x->body_end = 1;
            if (x->grpc_status >= 0 && u->owner) {
                u->owner->grpc_status = x->grpc_status;
                u->owner->has_grpc_status = 1;
            }
        } else if (x->status < 200) {
            if (PUTS(u->w, &u->in, "\r\n") < 0)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        } else if (end) { /* a whole response in one HEADERS (gRPC trailers-only) */
            if ((!x->kept_cl && PUTS(u->w, &u->in, "content-length: 0\r\n") < 0) || PUTS(u->w, &u->in, "\r\n") < 0)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
            x->head_done = x->body_end = x->tail_framed = 1;
        } else {
            const char *te = x->head_request ? "\r\n" : "transfer-encoding: chunked\r\n\r\n";
            if (put(u->w, &u->in, te, strlen(te)) < 0)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
            x->head_done = 1;
            x->tail_framed = x->head_request;
        }
    } else {
        return 0;
    }
    mc_h2up_notify(h, u, UPEV_IO);
    return 0;
}

static int on_data(nghttp2_session *ng, uint8_t flags, int32_t sid, const uint8_t *data, size_t len, void *user)
{
    (void)flags;
    mc_upconn_t *u = handle_of(ng, sid);
    if (!u || u->h2s.tail_framed) { /* nobody reads it: reopen the window at once */
        nghttp2_session_consume(ng, sid, len);
        return 0;
    }
    /* within our stream window, which reopens only as `raw` drains */
    if (mc_hbuf_reserve(u->w, &u->h2s.raw, (uint32_t)len) < 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    memcpy(u->h2s.raw.data + u->h2s.raw.end, data, len);
    u->h2s.raw.end += (uint32_t)len;
    mc_h2up_notify(user, u, UPEV_IO);
    return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t sid, uint32_t code, void *user)
{
    mc_upconn_t *u = handle_of(ng, sid);
    if (!u)
        return 0;
    mc_h2up_stream_t *x = &u->h2s;
    x->closed = 1;
    if (code == NGHTTP2_REFUSED_STREAM && !x->head_done)
        x->refused = 1;
    if (!x->body_end)
        x->reset_code = code ? code : NGHTTP2_INTERNAL_ERROR;
    nghttp2_session_set_stream_user_data(ng, sid, NULL);
    mc_h2up_notify(user, u, UPEV_IO);
    return 0;
}

static int on_not_send(nghttp2_session *ng, const nghttp2_frame *f, int err, void *user)
{
    (void)err;
    mc_upconn_t *u = f->hd.type == NGHTTP2_HEADERS ? handle_of(ng, f->hd.stream_id) : NULL;
    if (u) { /* e.g. after GOAWAY: the request never left */
        u->h2s.refused = 1;
        u->h2s.closed = 1;
        u->h2s.reset_code = NGHTTP2_REFUSED_STREAM;
        nghttp2_session_set_stream_user_data(ng, f->hd.stream_id, NULL);
        mc_h2up_notify(user, u, UPEV_IO);
    }
    return 0;
}

void mc_h2up_set_callbacks(nghttp2_session_callbacks *cb)
{
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_not_send_callback(cb, on_not_send);
}

/* ---- the stream asks for more ------------------------------------------------------ */

ssize_t mc_h2up_fill(mc_upconn_t *u, uint32_t want)
{
    (void)want;
    mc_h2up_stream_t *x = &u->h2s;
    mc_worker_t *w = u->w;
    if (mc_hbuf_len(&u->in) == 0 && u->in.data)
        u->in.start = u->in.end = 0;
    uint32_t n = mc_hbuf_len(&x->raw);
    if (x->head_done && n) {
        if (n > MC_HTTP_BUF - 32)
            n = MC_HTTP_BUF - 32;
        char line[20];
        int l = snprintf(line, sizeof(line), "%x\r\n", n);
        uint32_t before = mc_hbuf_len(&u->in);
        if (put(w, &u->in, line, (size_t)l) < 0 || put(w, &u->in, x->raw.data + x->raw.start, n) < 0 ||
            PUTS(w, &u->in, "\r\n") < 0)
            return MC_IO_ERROR;
        x->raw.start += n;
        if (!mc_hbuf_len(&x->raw))
            mc_hbuf_release(w, &x->raw);
        mc_h2up_t *h = u->h2;
        if (h && !x->closed) { /* forwarded: the upstream may send as much again */
            nghttp2_session_consume(h->ng, x->sid, n);
            mc_h2up_kick(h);
        } else if (h) {
            nghttp2_session_consume_connection(h->ng, n);
            mc_h2up_kick(h);
        }
        return (ssize_t)(mc_hbuf_len(&u->in) - before);
    }
    if (x->head_done && x->body_end && !x->tail_framed) {
        uint32_t before = mc_hbuf_len(&u->in);
        if (PUTS(w, &u->in, "0\r\n") < 0 ||
            (mc_hbuf_len(&x->trailers) && put(w, &u->in, x->trailers.data + x->trailers.start,
                                              mc_hbuf_len(&x->trailers)) < 0) ||
            PUTS(w, &u->in, "\r\n") < 0)
            return MC_IO_ERROR;
        x->tail_framed = 1;
        mc_hbuf_release(w, &x->trailers);
        return (ssize_t)(mc_hbuf_len(&u->in) - before);
    }
    if (x->reset_code || x->dead || (x->closed && !x->body_end))
        return MC_IO_ERROR;
    u->readable = 0;
    return MC_IO_AGAIN;
}
