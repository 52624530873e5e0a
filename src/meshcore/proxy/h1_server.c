/*
 * HTTP/1.1 on a downstream connection: TLS handshake, reading request heads,
 * keep-alive, pipelining and the connection's own timeouts. See
 * proxy/http_conn.h for the model.
 *
 * States: DS_READ_HEAD (idle or reading a head) -> DS_ACTIVE (a stream in
 * flight) -> back to DS_READ_HEAD, or DS_CLOSING (write what is queued,
 * then close). Pipelined requests stay in `in` until the current response
 * is complete; they are never parsed early, so they are answered in order.
 * The codec the connection's streams talk through is proxy/h1_codec.c.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/clock.h"
#include "meshcore/overload.h"
#include "worker/control.h"
#include "proxy/h1_server.h"

#define STATS(c) ((c)->w->stats)

static void read_head(mc_http_conn_t *c);
static void flush_closing(mc_http_conn_t *c);
static void conn_rearm(mc_http_conn_t *c);

size_t mc_http_conn_size(void)
{
    return sizeof(mc_http_conn_t);
}

void mc_http_peer_init(mc_http_peer_t *p, const mc_addr_t *addr)
{
    if (addr)
        p->addr = *addr;
    mc_addr_format(&p->addr, p->text, sizeof(p->text));
    const char *t = p->text, *colon = strrchr(t, ':');
    size_t end = colon ? (size_t)(colon - t) : strlen(t);
    size_t off = 0;
    if (t[0] == '[' && end >= 2 && t[end - 1] == ']') { /* [v6]:port */
        off = 1;
        end--;
    }
    p->ip_off = (uint8_t)off;
    p->ip_len = (uint8_t)(end - off);
}

/* ---- teardown ------------------------------------------------------------- */

static void free_task(mc_task_t *t)
{
    mc_http_conn_t *c = mc_container_of(t, mc_http_conn_t, task);
    mc_worker_t *w = c->w;
    mc_wctx_unpin(c->ctx);
    mc_pool_put(&mc_proxy_of(w)->http_conns, c);
}

void mc_h1_conn_close(mc_http_conn_t *c)
{
    if (c->state == DS_CLOSED)
        return;
    mc_worker_t *w = c->w;
    if (c->state == DS_HANDSHAKE) /* timed out, or the client went away mid-handshake */
        mc_stat_inc(STATS(c), c->l->scope, MC_LISTENER_SSL_CONNECTION_ERROR);
    c->state = DS_CLOSED;
    if (c->stream) {
        mc_http_stream_t *s = c->stream;
        c->stream = NULL;
        mc_http_stream_abort(s);
    }
    mc_timer_cancel(&w->loop.timers, &c->timer);
    mc_stream_close(&c->st);
    c->io.fd = -1;
    mc_hbuf_release(w, &c->in);
    mc_hbuf_release(w, &c->out);
    mc_listener_cx_close(w, c->l, &c->adm);
    mc_stat_add(STATS(c), c->hcm->scope, MC_HTTP_DOWNSTREAM_CX_ACTIVE, -1);
    mc_session_list_remove(&w->sessions, &c->base);
    mc_loop_post(&w->loop, &c->task, free_task);
}

static void abort_conn(mc_session_t *base)
{
    mc_h1_conn_close(mc_container_of(base, mc_http_conn_t, base));
}

static void drain_conn(mc_session_t *base)
{
    mc_http_conn_t *c = mc_container_of(base, mc_http_conn_t, base);
    if (c->state == DS_READ_HEAD && !c->head_start_ns && mc_hbuf_len(&c->in) == 0 && mc_hbuf_len(&c->out) == 0) {
        mc_h1_conn_close(c); /* idle between requests */
        return;
    }
    c->draining = 1;
    if (c->stream) /* connection: close on the response in flight, then close */
        c->stream->close_after = 1;
}

/* ---- writing to the client ------------------------------------------------- */

/* Sends c->out; 1 when it is empty, 0 when the socket is full, -1 on error. */
int mc_h1_flush_out(mc_http_conn_t *c)
{
    uint64_t sent;
    int r = mc_hbuf_write(c->w, &c->out, &c->st, &c->writable, &sent);
    if (sent)
        mc_stat_add(STATS(c), c->hcm->scope, MC_HTTP_DOWNSTREAM_CX_TX_BYTES_TOTAL, (int64_t)sent);
    return r;
}

int mc_h1_queue_out(mc_http_conn_t *c, const char *data, size_t len)
{
    if (mc_hbuf_reserve(c->w, &c->out, (uint32_t)len) < 0)
        return -1;
    memcpy(c->out.data + c->out.end, data, len);
    c->out.end += (uint32_t)len;
    return 0;
}

/* Answers a request that never got as far as a stream (unparsable, or a
 * client that stalled), then closes: what it sent is dropped unread. */
static void reply_and_close(mc_http_conn_t *c, int status, const char *body)
{
    char buf[1024];
    mc_http_local_t r = {.status = status, .body = body, .body_len = strlen(body), .close = 1,
                         .server = c->hcm->server_name, .server_len = c->hcm->server_name_len};
    long n = mc_http_write_local_reply(buf, sizeof(buf), &r);
    mc_hbuf_release(c->w, &c->in);
    if (n < 0 || mc_h1_queue_out(c, buf, (size_t)n) < 0) {
        mc_h1_conn_close(c);
        return;
    }
    c->state = DS_CLOSING;
    flush_closing(c);
}

/* A reply for a request we cannot even parse: answer and close. */
static void protocol_error(mc_http_conn_t *c, int status, const char *reason)
{
    mc_stats_shard_t *st = STATS(c);
    mc_stat_inc(st, c->hcm->scope, MC_HTTP_DOWNSTREAM_CX_PROTOCOL_ERROR);
    mc_stat_inc(st, c->hcm->scope, MC_HTTP_RF_FIRST + MC_RF_BIT_DPE);
    mc_http_count_status(c->w, c->hcm, status);
    char body[160];
    snprintf(body, sizeof(body), "bad request: %s\n", reason ? reason : "malformed");
    reply_and_close(c, status, body);
}

/* DS_CLOSING: write what is queued, then close (half-close first so the
 * client reads the reply before the connection goes). */
static void flush_closing(mc_http_conn_t *c)
{
    int r = mc_h1_flush_out(c);
    if (r == 0)
        return;
    if (r > 0)
        mc_stream_shutdown(&c->st);
    mc_h1_conn_close(c);
}

/* The exchange is complete: the next request, or close. */
void mc_h1_conn_done(mc_http_stream_t *s)
{
    mc_http_conn_t *c = s->conn;
    int close_after = s->close_after;
    c->last_activity = s->last_activity;
    c->stream = NULL;
    mc_http_stream_free(s);
    c->state = DS_READ_HEAD;
    if (close_after) {
        c->state = DS_CLOSING;
        flush_closing(c);
        return;
    }
    c->head_start_ns = 0;
    if (mc_hbuf_len(&c->in) == 0)
        mc_hbuf_release(c->w, &c->in); /* idle keep-alive connections hold no buffer */
    conn_rearm(c);
    /* A pipelined request may already be here. */
    read_head(c);
}

/* ---- reading request heads ------------------------------------------------------- */

enum { T_NONE, T_IDLE, T_HEADERS, T_REQUEST, T_STREAM_IDLE };

/* The nearest deadline among the connection's timeouts (no stream in flight). */
static mc_deadline_t next_deadline(const mc_http_conn_t *c)
{
    const mc_hcm_t *h = c->hcm;
    mc_deadline_t d = MC_DEADLINE_NONE;
    if (c->state != DS_READ_HEAD)
        return d;
    if (!c->head_start_ns) {
        if (h->idle_timeout_ns)
            mc_deadline_consider(&d, c->last_activity + h->idle_timeout_ns, T_IDLE);
        return d;
    }
    if (h->request_headers_timeout_ns)
        mc_deadline_consider(&d, c->head_start_ns + h->request_headers_timeout_ns, T_HEADERS);
    if (h->request_timeout_ns)
        mc_deadline_consider(&d, c->head_start_ns + h->request_timeout_ns, T_REQUEST);
    if (h->stream_idle_timeout_ns)
        mc_deadline_consider(&d, c->last_activity + h->stream_idle_timeout_ns, T_STREAM_IDLE);
    return d;
}

static void conn_rearm(mc_http_conn_t *c)
{
    mc_deadline_t d = next_deadline(c);
    if (d.kind == T_NONE)
        mc_timer_cancel(&c->w->loop.timers, &c->timer);
    else
        mc_timer_arm(&c->w->loop.timers, &c->timer, d.at);
}

static void on_timer(mc_timer_t *t)
{
    mc_http_conn_t *c = mc_container_of(t, mc_http_conn_t, timer);
    if (c->state == DS_HANDSHAKE) { /* the client never finished its handshake */
        mc_h1_conn_close(c);
        return;
    }
    mc_deadline_t d = next_deadline(c);
    if (d.kind == T_NONE)
        return;
    if (d.at > c->w->loop.now) { /* activity since arming: sleep the rest */
        mc_timer_arm(&c->w->loop.timers, &c->timer, d.at);
        return;
    }
    int which = d.kind;
    if (which == T_IDLE) {
        mc_stat_inc(STATS(c), c->hcm->scope, MC_HTTP_DOWNSTREAM_CX_IDLE_TIMEOUT);
        mc_h1_conn_close(c);
        return;
    }
    /* The client stalled inside a request head: 408 and close. */
    mc_stat_inc(STATS(c), c->hcm->scope,
                which == T_STREAM_IDLE ? MC_HTTP_DOWNSTREAM_RQ_IDLE_TIMEOUT : MC_HTTP_DOWNSTREAM_RQ_TIMEOUT);
    if (which == T_HEADERS)
        mc_stat_inc(STATS(c), c->hcm->scope, MC_HTTP_DOWNSTREAM_RQ_HEADER_TIMEOUT);
    mc_http_count_status(c->w, c->hcm, 408); /* a 408 is a 4xx, as for any local reply */
    reply_and_close(c, 408, "request timeout");
}

/* headers_with_underscores_action on a parsed head: ALLOW; DROP_HEADER
 * removes the fields; REJECT_REQUEST answers 400. 0 to go on, -1 when the
 * request was refused (the connection is closing). */
static int check_underscores(mc_http_conn_t *c, mc_h1_request_t *q)
{
    if (c->hcm->underscores == MC_UNDERSCORES_ALLOW)
        return 0;
    size_t kept = 0;
    for (size_t i = 0; i < q->n_headers; i++) {
        if (!memchr(q->headers[i].name, '_', q->headers[i].name_len)) {
            q->headers[kept++] = q->headers[i];
            continue;
        }
        if (c->hcm->underscores == MC_UNDERSCORES_REJECT_REQUEST) {
            mc_stat_inc(STATS(c), c->hcm->scope, MC_HTTP_HTTP1_REJECTED_UNDERSCORES);
            protocol_error(c, 400, "header name contains underscores");
            return -1;
        }
        mc_stat_inc(STATS(c), c->hcm->scope, MC_HTTP_HTTP1_DROPPED_UNDERSCORES);
    }
    q->n_headers = kept;
    return 0;
}

/* A request head is parsed: the connection's part, then the stream's. */
static void start_stream(mc_http_conn_t *c, mc_http_stream_t *s, int head_len)
{
    const mc_h1_request_t *q = &s->req;
    c->state = DS_ACTIVE;
    c->requests++;
    mc_timer_cancel(&c->w->loop.timers, &c->timer);
    s->head_len = (uint32_t)head_len;
    s->head_start_ns = c->head_start_ns;
    s->last_activity = c->last_activity;
    s->close_after = c->draining || !q->keep_alive ||
                     (c->hcm->max_requests_per_connection && c->requests >= c->hcm->max_requests_per_connection);
    if (!s->close_after && mc_overload_on(c->w->ctl, MC_OA_DISABLE_HTTP_KEEPALIVE)) {
        s->close_after = 1; /* envoy.overload_actions.disable_http_keepalive */
        mc_stat_inc(STATS(c), c->hcm->scope, MC_HTTP_DOWNSTREAM_CX_OVERLOAD_DISABLE_KEEPALIVE);
    }
    s->req_body = q->body;
    s->req_remaining = q->content_length;
    mc_h1_chunked_init(&s->req_chunked);
    s->req_done = (q->body == MC_H1_BODY_NONE) || (q->body == MC_H1_BODY_LENGTH && q->content_length == 0);
    c->in.start += (uint32_t)head_len; /* the views into the head stay valid until `in` is compacted */
    mc_http_stream_start(s);
}

/* Between requests, a kept-alive connection moves to the worker's current
 * config (as Envoy applies new routes to the next request on an open
 * connection): same listener socket, same chain position, still HTTP. If
 * the listener is gone or changed kind, the connection stays on its own.
 * HTTP/2 (proxy/h2_request.c) calls it at each new stream: streams in flight
 * keep the context they pinned. */
void mc_http_conn_refresh(mc_http_conn_t *c)
{
    mc_wctx_t *cur = c->w->ctx;
    if (!cur || cur == c->ctx || !c->l->ls)
        return;
    const mc_snapshot_t *snap = cur->snap;
    const mc_listener_t *l2 = NULL;
    for (uint32_t i = 0; i < snap->n_listeners && !l2; i++)
        if (snap->listeners[i].ls == c->l->ls)
            l2 = &snap->listeners[i];
    uint32_t k = (uint32_t)(c->ch - c->l->chains);
    if (!l2 || k >= l2->n_chains || !l2->chains[k].hcm.present || l2->chains[k].transport != c->ch->transport)
        return;
    mc_stats_shard_t *st = STATS(c);
    const mc_chain_t *ch2 = &l2->chains[k];
    if (ch2->hcm.scope != c->hcm->scope) { /* the gauge follows the connection */
        mc_stat_add(st, c->hcm->scope, MC_HTTP_DOWNSTREAM_CX_ACTIVE, -1);
        mc_stat_inc(st, ch2->hcm.scope, MC_HTTP_DOWNSTREAM_CX_ACTIVE);
    }
    if (l2->scope != c->l->scope) {
        mc_stat_add(st, c->l->scope, MC_LISTENER_DOWNSTREAM_CX_ACTIVE, -1);
        mc_stat_inc(st, l2->scope, MC_LISTENER_DOWNSTREAM_CX_ACTIVE);
    }
    mc_wctx_t *old = c->ctx;
    mc_wctx_pin(cur);
    c->ctx = cur;
    c->l = l2;
    c->ch = ch2;
    c->hcm = &ch2->hcm;
    mc_wctx_unpin(old);
}

static void read_head(mc_http_conn_t *c)
{
    if (c->state == DS_READ_HEAD && !c->stream)
        mc_http_conn_refresh(c);
    for (;;) {
        if (c->state != DS_READ_HEAD)
            return;
        uint32_t len = mc_hbuf_len(&c->in);
        if (len && !c->requests && c->hcm->codec_type == MC_CODEC_AUTO) {
            /* codec_type AUTO: a client with prior knowledge opens with the HTTP/2 preface */
            int pre = mc_h2_preface(c->in.data + c->in.start, len);
            if (pre > 0) {
                mc_h2_start(c);
                return;
            }
            if (pre == -2)
                len = 0; /* wait for the rest of it */
        }
        if (len) {
            mc_http_stream_t *s = c->stream;
            if (!s) {
                s = c->stream = mc_http_stream_new(c);
                if (!s) {
                    mc_h1_conn_close(c);
                    return;
                }
            }
            s->req.headers = s->headers;
            s->req.n_headers = MC_HTTP_MAX_HEADERS;
            int status = 400;
            const char *reason = NULL;
            if (!c->head_start_ns) /* a pipelined request, already here */
                c->head_start_ns = c->w->loop.now;
            int rc = mc_h1_parse_request(c->in.data + c->in.start, len, &s->req, &c->hcm->limits, &status, &reason);
            if (rc > 0 && s->req.minor_version == 0) {
                /* HTTP/1.0 as Envoy: 426 unless accept_http_10; a request
                 * without Host gets default_host_for_http_10. */
                if (!c->hcm->accept_http_10) {
                    protocol_error(c, 426, "HTTP/1.0 is not accepted (http_protocol_options.accept_http_10)");
                    return;
                }
                if (!s->req.authority && c->hcm->default_host_for_http_10) {
                    s->req.authority = c->hcm->default_host_for_http_10;
                    s->req.authority_len = c->hcm->default_host_for_http_10_len;
                }
            }
            if (rc > 0) {
                if (check_underscores(c, &s->req) == 0)
                    start_stream(c, s, rc);
                return;
            }
            if (rc == MC_H1_ERROR) {
                protocol_error(c, status, reason);
                return;
            }
        }
        if (!c->readable)
            return;
        /* Room for more head: a head may be as large as the limit. */
        uint32_t need = len < MC_HTTP_BUF / 2 ? MC_HTTP_BUF / 2 : len;
        if (c->in.data && c->in.cap - c->in.end == 0 && c->in.cap >= c->hcm->limits.max_head_bytes + MC_HTTP_BUF) {
            protocol_error(c, 431, "request head too large");
            return;
        }
        if (mc_hbuf_reserve(c->w, &c->in, need) < 0) {
            mc_h1_conn_close(c);
            return;
        }
        uint32_t room = c->in.cap - c->in.end;
        ssize_t n = mc_stream_read(&c->st, c->in.data + c->in.end, room);
        if (n > 0) {
            if (!c->head_start_ns) { /* a request begins: its timeouts start */
                c->head_start_ns = c->w->loop.now;
                c->last_activity = c->w->loop.now;
                conn_rearm(c);
            }
            c->in.end += (uint32_t)n;
            c->last_activity = c->w->loop.now;
            mc_stat_add(STATS(c), c->hcm->scope, MC_HTTP_DOWNSTREAM_CX_RX_BYTES_TOTAL, n);
            if ((uint32_t)n < room && !c->rdhup && mc_stream_short_read_drains(&c->st))
                c->readable = 0;
            continue;
        }
        if (n == MC_IO_AGAIN) {
            c->readable = 0;
            if (mc_hbuf_len(&c->in) == 0)
                mc_hbuf_release(c->w, &c->in);
            return;
        }
        /* EOF or error: between requests that is a normal close. */
        mc_h1_conn_close(c);
        return;
    }
}

/* ---- events ------------------------------------------------------------------- */

/* The peer is known (after the handshake, or at once in plaintext):
 * network RBAC, then requests. */
static void peer_known(mc_http_conn_t *c)
{
    const char *denied_by;
    if (!mc_listener_net_rbac(c->w, c->l, c->ch, &c->peer.addr, c->peer.principal, &denied_by)) {
        mc_h1_conn_close(c);
        return;
    }
    c->state = DS_READ_HEAD;
    if (mc_h2_wanted(c)) { /* codec_type HTTP2, or ALPN h2 */
        mc_h2_start(c);
        return;
    }
    conn_rearm(c);
    read_head(c);
}

/* DS_HANDSHAKE: the downstream TLS handshake; then requests. */
static void handshake(mc_http_conn_t *c)
{
    int r = mc_stream_handshake(&c->st);
    if (r == 0)
        return;
    if (r < 0) {
        mc_tls_count_failure(STATS(c), c->l->scope, c->st.ssl, MC_TLS_DOWNSTREAM);
        c->state = DS_CLOSING; /* counted: not again as a handshake cut short */
        mc_h1_conn_close(c);
        return;
    }
    mc_stat_inc(STATS(c), c->l->scope, MC_LISTENER_SSL_HANDSHAKE);
    mc_tls_peer_uri(c->st.ssl, c->peer.principal, sizeof(c->peer.principal));
    c->readable = 1; /* the handshake's reads may have buffered the first request (read-ahead) */
    mc_timer_cancel(&c->w->loop.timers, &c->timer);
    peer_known(c);
}

static void on_io(mc_io_t *io, uint32_t ev)
{
    mc_http_conn_t *c = mc_container_of(io, mc_http_conn_t, io);
    if (c->state == DS_CLOSED)
        return;
    if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        c->readable = 1;
    if (ev & (EPOLLRDHUP | EPOLLHUP))
        c->rdhup = 1;
    if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))
        c->writable = 1;
    if (ev & EPOLLERR) {
        mc_h1_conn_close(c);
        return;
    }
    switch (c->state) {
    case DS_HANDSHAKE:
        handshake(c);
        break;
    case DS_READ_HEAD:
        read_head(c);
        break;
    case DS_CLOSING:
        flush_closing(c);
        break;
    case DS_ACTIVE: {
        mc_http_stream_t *s = c->stream;
        if (s->try_state == TRY_RESPONDING) {
            mc_h1_send_response(s);
        } else if (!s->req_done) {
            mc_http_forward_progress(s); /* reads more body and passes it on */
        } else if ((ev & (EPOLLRDHUP | EPOLLHUP)) && !mc_hbuf_len(&c->out)) {
            /* Whole request read; a FIN now is a half-close we tolerate
             * (the response still goes out), a full HUP is a reset. */
            if (ev & EPOLLHUP)
                mc_h1_conn_close(c);
        }
        break;
    }
    default:
        break;
    }
}

/* ---- accept ------------------------------------------------------------------- */

void mc_h1_server_accept(mc_worker_t *w, mc_wctx_t *ctx, const mc_listener_t *l, const mc_chain_t *ch, int fd,
                         const mc_addr_t *peer, const mc_admission_t *adm)
{
    mc_http_conn_t *c = mc_pool_get(&mc_proxy_of(w)->http_conns);
    if (!c) {
        mc_admission_t a = *adm;
        mc_listener_overflow(w, l, &a, fd);
        return;
    }
    c->base.abort = abort_conn;
    c->base.drain = drain_conn;
    c->w = w;
    c->ctx = ctx;
    mc_wctx_pin(ctx);
    c->l = l;
    c->ch = ch;
    c->hcm = &ch->hcm;
    c->codec = &mc_h1_codec;
    c->adm = *adm;
    c->io.fd = fd;
    c->io.cb = on_io;
    c->st.fd = fd;
    c->writable = 1;
    c->state = DS_READ_HEAD;
    mc_http_peer_init(&c->peer, peer);
    c->last_activity = w->loop.now;
    mc_timer_init(&c->timer, on_timer);
    mc_session_list_add(&w->sessions, &c->base);
    mc_listener_cx_open(w, l);
    mc_stat_inc(w->stats, c->hcm->scope, MC_HTTP_DOWNSTREAM_CX_TOTAL);
    mc_stat_inc(w->stats, c->hcm->scope, MC_HTTP_DOWNSTREAM_CX_ACTIVE);
    mc_sock_nodelay(fd);
    if (mc_loop_add_et(&w->loop, &c->io) < 0) {
        mc_h1_conn_close(c);
        return;
    }
    if (ch->tls) {
        mc_stream_set_ssl(&c->st, mc_tls_new_ssl(ch->tls, fd));
        if (!c->st.ssl) {
            mc_h1_conn_close(c);
            return;
        }
        c->state = DS_HANDSHAKE;
        mc_timer_arm(&w->loop.timers, &c->timer, w->loop.now + ch->tls->handshake_timeout_ns);
        handshake(c);
        return;
    }
    peer_known(c);
}
