/*
 * HTTP/2 requests (proxy/h2_server.c's streams): heads and bodies from
 * nghttp2's callbacks.
 *
 * A request head is built from the header callbacks into the stream's own
 * bounded buffer (the views in s->req point there; a head past the HCM's
 * limits is answered 431 once its block is decoded), then the stream goes
 * the way every request goes (proxy/http_stream.c). Request DATA goes to the
 * stream's `rx`, framed for the HTTP/1.1 upstream (chunked when there is no
 * content-length); it is given back to the client's windows
 * (nghttp2_session_consume, proxy/h2_codec.c) only once it has left `rx`, so
 * a slow upstream stalls its client through flow control and a stream holds
 * at most its window.
 */
#include <string.h>

#include "proxy/h2_server.h"

#define STATS(c) ((c)->w->stats)
#define SCOPE(c) ((c)->hcm->scope)

/* ---- request heads ------------------------------------------------------------- */

/* The views of s->req moved with the header buffer. */
static void rebase(mc_http_stream_t *s, const char *from, const char *to)
{
    mc_h1_request_t *q = &s->req;
#define MOVE(p) ((p) = (p) ? to + ((p) - from) : NULL)
    MOVE(q->method);
    MOVE(q->target);
    MOVE(q->authority);
    for (size_t i = 0; i < q->n_headers; i++) {
        MOVE(q->headers[i].name);
        MOVE(q->headers[i].value);
    }
#undef MOVE
}

/* Copies bytes into the stream's header buffer; NULL when out of memory. */
static char *store(mc_http_stream_t *s, const void *a, size_t alen, const void *b, size_t blen)
{
    mc_hbuf_t *buf = &s->h2.hdr;
    uint32_t need = (uint32_t)(alen + blen);
    if (!buf->data || buf->cap - buf->end < need) {
        char *old = buf->data;
        if (mc_hbuf_reserve(s->w, buf, need > buf->cap ? need : buf->cap) < 0) /* doubles */
            return NULL;
        if (old && buf->data != old)
            rebase(s, old, buf->data);
    }
    char *p = buf->data + buf->end;
    memcpy(p, a, alen);
    memcpy(p + alen, b, blen);
    buf->end += need;
    return p;
}

#define IS(n, nl, lit) ((nl) == sizeof(lit) - 1 && memcmp((n), (lit), sizeof(lit) - 1) == 0)

int mc_h2_on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                    const uint8_t *value, size_t vlen, uint8_t flags, void *user)
{
    (void)flags;
    (void)user;
    mc_http_stream_t *s = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
    if (!s || s->h2.overflow || s->h2.started) /* trailers of a request are not forwarded */
        return 0;
    const mc_hcm_t *hcm = s->hcm;
    mc_h1_request_t *q = &s->req;
    size_t max_headers = hcm->limits.max_headers < MC_HTTP_MAX_HEADERS ? hcm->limits.max_headers : MC_HTTP_MAX_HEADERS;
    s->h2.hdr_bytes += (uint32_t)(nlen + vlen);
    if (s->h2.hdr_bytes > hcm->limits.max_head_bytes || (name[0] != ':' && q->n_headers >= max_headers)) {
        s->h2.overflow = 1; /* answered 431 once the block is decoded (HPACK state must stay in step) */
        return 0;
    }
    const char *p = store(s, name, nlen, value, vlen);
    if (!p)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    const char *v = p + nlen;
    if (name[0] == ':') {
        if (IS(name, nlen, ":method")) {
            q->method = v;
            q->method_len = vlen;
            q->connect = IS(value, vlen, "CONNECT");
        } else if (IS(name, nlen, ":path")) {
            q->target = v;
            q->target_len = vlen;
        } else if (IS(name, nlen, ":authority")) {
            q->authority = v;
            q->authority_len = vlen;
        }
        return 0; /* :scheme, :protocol: nothing to keep */
    }
    if (IS(name, nlen, "host")) {
        if (!q->authority) { /* :authority wins when both are sent (RFC 9113 8.3.1) */
            q->authority = v;
            q->authority_len = vlen;
        }
    } else if (IS(name, nlen, "content-length")) {
        uint64_t n = 0;
        for (size_t i = 0; i < vlen; i++) /* nghttp2 checked the digits */
            n = n * 10 + (uint64_t)(value[i] - '0');
        q->content_length = n;
        s->h2.has_cl = 1;
    } else if (IS(name, nlen, "content-type")) {
        s->h2.grpc = vlen >= 16 && memcmp(value, "application/grpc", 16) == 0;
    } else if (IS(name, nlen, "te")) {
        q->te_trailers = 1; /* nghttp2 lets only "trailers" through */
    }
    q->headers[q->n_headers++] = (mc_h1_header_t){p, nlen, v, vlen};
    return 0;
}

/* HTTP/2 sends each cookie pair as its own field; an HTTP/1.1 upstream gets
 * them as one, joined with "; " (RFC 9113 8.2.3). */
static int join_cookies(mc_http_stream_t *s)
{
    mc_h1_request_t *q = &s->req;
    size_t n = 0, total = 0;
    for (size_t i = 0; i < q->n_headers; i++)
        if (IS(q->headers[i].name, q->headers[i].name_len, "cookie")) {
            n++;
            total += q->headers[i].value_len + 2;
        }
    if (n < 2)
        return 0;
    char *p = store(s, "", 0, "", total); /* room first: it may move the views */
    if (!p)
        return -1;
    size_t len = 0, k = 0, first = SIZE_MAX;
    for (size_t i = 0; i < q->n_headers; i++) {
        mc_h1_header_t *hd = &q->headers[i];
        if (!IS(hd->name, hd->name_len, "cookie")) {
            q->headers[k++] = *hd;
            continue;
        }
        if (len) {
            memcpy(p + len, "; ", 2);
            len += 2;
        }
        memcpy(p + len, hd->value, hd->value_len);
        len += hd->value_len;
        if (first == SIZE_MAX) {
            first = k;
            q->headers[k++] = *hd;
        }
    }
    q->n_headers = k;
    q->headers[first].value = p;
    q->headers[first].value_len = len;
    return 0;
}

/* The request head is whole: the stream starts. */
void mc_h2_request_ready(mc_h2_session_t *h, mc_http_stream_t *s, int end_stream)
{
    mc_http_conn_t *c = h->c;
    mc_h1_request_t *q = &s->req;
    if (s->h2.overflow) {
        mc_stat_inc(STATS(c), SCOPE(c), MC_HTTP2_HEADER_OVERFLOW);
        mc_stat_inc(STATS(c), SCOPE(c), MC_HTTP_DOWNSTREAM_RQ_TOTAL);
        mc_http_count_status(c->w, c->hcm, 431);
        mc_h2_reply_bare(h, s->h2.id, 431);
        mc_h2_detach(s);
        mc_http_stream_free(s);
        return;
    }
    if (join_cookies(s) < 0 || !q->method) {
        nghttp2_submit_rst_stream(h->ng, NGHTTP2_FLAG_NONE, s->h2.id, NGHTTP2_INTERNAL_ERROR);
        mc_h2_detach(s);
        mc_http_stream_free(s);
        return;
    }
    if (!q->authority) {
        q->authority = "";
        q->authority_len = 0;
    }
    q->form = MC_H1_FORM_ORIGIN;
    if (q->target) {
        const char *qm = memchr(q->target, '?', q->target_len);
        q->path = q->target;
        q->path_len = qm ? (size_t)(qm - q->target) : q->target_len;
        q->query = qm ? qm + 1 : NULL;
        q->query_len = qm ? q->target_len - q->path_len - 1 : 0;
        if (q->target_len == 1 && q->target[0] == '*')
            q->form = MC_H1_FORM_ASTERISK;
    } else {
        q->form = MC_H1_FORM_AUTHORITY; /* CONNECT */
    }
    if (end_stream) {
        s->h2.end_stream = 1;
        q->body = MC_H1_BODY_NONE;
    } else if (s->h2.has_cl) {
        q->body = MC_H1_BODY_LENGTH;
    } else {
        q->body = MC_H1_BODY_CHUNKED; /* framed by us for the HTTP/1.1 upstream */
        s->h2.chunked = 1;
    }
    s->req_body = q->body;
    s->req_remaining = q->content_length;
    mc_h1_chunked_init(&s->req_chunked);
    s->req_done = q->body == MC_H1_BODY_NONE || (q->body == MC_H1_BODY_LENGTH && q->content_length == 0);
    s->head_len = s->h2.hdr.end;
    s->h2.started = 1;
    mc_http_stream_start(s);
}

int mc_h2_on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *user)
{
    mc_h2_session_t *h = user;
    mc_http_conn_t *c = h->c;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    uint32_t scope = SCOPE(c);
    mc_http_conn_refresh(c); /* a new stream runs on the current config, as Envoy routes it */
    if (SCOPE(c) != scope) { /* the HTTP/2 gauge follows the connection, as downstream_cx_active does */
        mc_stat_add(STATS(c), scope, MC_HTTP_DOWNSTREAM_CX_HTTP2_ACTIVE, -1);
        mc_stat_inc(STATS(c), SCOPE(c), MC_HTTP_DOWNSTREAM_CX_HTTP2_ACTIVE);
    }
    mc_http_stream_t *s = c->draining ? NULL : mc_http_stream_new(c);
    if (!s) {
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_REFUSED_STREAM);
        return 0;
    }
    s->rx = &s->h2.rx;
    s->h2.id = f->hd.stream_id;
    s->h2.attached = 1;
    mc_list_push(&h->streams, &s->h2.link);
    h->n_streams++;
    h->streams_total++;
    nghttp2_session_set_stream_user_data(ng, s->h2.id, s);
    s->req.headers = s->headers;
    s->req.n_headers = 0;
    s->req.minor_version = 1; /* what the HTTP/1.1 upstream is asked in */
    s->req.keep_alive = 1;
    s->head_start_ns = c->w->loop.now;
    s->last_activity = c->w->loop.now;
    c->requests++;
    mc_timer_cancel(&c->w->loop.timers, &c->timer);
    return 0;
}

/* ---- request bodies --------------------------------------------------------------- */

static char *put_hex(char *p, size_t v)
{
    char tmp[16];
    int n = 0;
    do
        tmp[n++] = "0123456789abcdef"[v & 15];
    while (v >>= 4);
    while (n)
        *p++ = tmp[--n];
    return p;
}

static int append_body(mc_http_stream_t *s, const uint8_t *data, size_t len, int last)
{
    mc_hbuf_t *b = &s->h2.rx;
    uint32_t need = (uint32_t)len + (s->h2.chunked ? 24 : 0);
    if (!b->data || b->cap - b->end < need) {
        if (b->data)
            mc_hbuf_compact(b);
        if ((!b->data || b->cap - b->end < need) &&
            mc_hbuf_reserve(s->w, b, need > b->cap ? need : b->cap) < 0)
            return -1;
    }
    char *p = b->data + b->end;
    if (s->h2.chunked && len) {
        p = put_hex(p, len);
        *p++ = '\r';
        *p++ = '\n';
    }
    if (len)
        memcpy(p, data, len);
    p += len;
    if (s->h2.chunked && len) {
        *p++ = '\r';
        *p++ = '\n';
    }
    if (s->h2.chunked && last) {
        memcpy(p, "0\r\n\r\n", 5);
        p += 5;
    }
    b->end = (uint32_t)(p - b->data);
    return 0;
}

void mc_h2_end_stream(mc_http_stream_t *s)
{
    if (s->h2.end_stream)
        return;
    s->h2.end_stream = 1;
    if (s->h2.started && s->state == ST_ACTIVE) {
        if (append_body(s, NULL, 0, 1) < 0) {
            s->codec->reset(s);
            return;
        }
        mc_http_forward_progress(s);
    }
}

int mc_h2_on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                        void *user)
{
    (void)flags;
    (void)user;
    mc_http_stream_t *s = nghttp2_session_get_stream_user_data(ng, id);
    if (!s || !s->h2.started || s->state != ST_ACTIVE) { /* nobody wants it: the window gets it back now */
        nghttp2_session_consume(ng, id, len);
        return 0;
    }
    /* Held bytes are bounded by the stream window (nothing is consumed
     * before it is forwarded); framing adds a little per frame, and a
     * client sending tiny frames to a stalled upstream meets this bound. */
    uint64_t limit = 2ull * s->hcm->h2_stream_window + MC_HTTP_BUF;
    s->h2.unconsumed += (uint32_t)len;
    if (mc_hbuf_len(&s->h2.rx) + len + 24 > limit || append_body(s, data, len, 0) < 0) {
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, id, NGHTTP2_ENHANCE_YOUR_CALM);
        return 0; /* on_stream_close aborts the stream */
    }
    s->last_activity = s->w->loop.now;
    mc_http_forward_progress(s);
    return 0;
}
