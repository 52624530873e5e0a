/*
 * HTTP/1.1 downstream connections: reading request heads, routing, local
 * replies, request bodies toward upstream, responses toward the client,
 * keep-alive and pipelining. See proxy/http_session.h for the model.
 *
 * States: DS_READ_HEAD (idle or reading a head) -> DS_ACTIVE (a request in
 * flight) -> back to DS_READ_HEAD, or DS_CLOSING (write what is queued,
 * then close). Pipelined requests stay in `in` until the current response
 * is complete; they are never parsed early, so they are answered in order.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include "core/clock.h"
#include "meshcore/balancer.h"
#include "proxy/http_session.h"

#define STATS(s) ((s)->w->stats)
#define HTTP_SCOPE(s) ((s)->hcm->scope)

size_t mc_http_session_size(void)
{
    return sizeof(mc_http_session_t);
}

static void read_head(mc_http_session_t *s);
static void flush_closing(mc_http_session_t *s);

/* ---- teardown ------------------------------------------------------------- */

static void free_task(mc_task_t *t)
{
    mc_http_session_t *s = mc_container_of(t, mc_http_session_t, task);
    mc_worker_t *w = s->w;
    mc_wctx_unpin(s->ctx);
    mc_pool_put(&w->http_sessions, s);
}

void mc_http_session_close(mc_http_session_t *s)
{
    if (s->state == DS_CLOSED)
        return;
    mc_worker_t *w = s->w;
    mc_stats_shard_t *st = STATS(s);
    if (s->shadow) {
        s->state = DS_CLOSED;
        mc_http_forward_abort(s);
        mc_timer_cancel(&w->loop.timers, &s->timer);
        mc_timer_cancel(&w->loop.timers, &s->try_timer);
        mc_hbuf_release(w, &s->replay);
        mc_worker_session_remove(w, &s->base);
        mc_loop_post(&w->loop, &s->task, free_task);
        return;
    }
    if (s->state == DS_ACTIVE && !s->accounted) {
        /* Mid-request: we reset the client's stream because of the
         * upstream or a timeout (the flag says which), or the client left. */
        if (s->flags & (MC_RF_UC | MC_RF_UT | MC_RF_UPE | MC_RF_UF | MC_RF_LR | MC_RF_SI)) {
            mc_stat_inc(st, HTTP_SCOPE(s), MC_HTTP_DOWNSTREAM_RQ_TX_RESET);
        } else {
            s->flags |= MC_RF_DC;
            mc_stat_inc(st, HTTP_SCOPE(s), MC_HTTP_DOWNSTREAM_RQ_RX_RESET);
        }
        for (uint32_t i = 0; i < MC_RF__COUNT; i++)
            if (s->flags & (1u << i))
                mc_stat_inc(st, HTTP_SCOPE(s), MC_HTTP_RF_FIRST + i);
        mc_http_alog_end(s);
        mc_http_im_end(s);
        mc_stat_add(st, HTTP_SCOPE(s), MC_HTTP_DOWNSTREAM_RQ_ACTIVE, -1);
    }
    if (s->state == DS_ACTIVE)
        mc_http_forward_abort(s);
    if (s->state == DS_HANDSHAKE) /* failed, timed out, or the client went away mid-handshake */
        mc_stat_inc(st, s->l->scope, MC_LISTENER_SSL_CONNECTION_ERROR);
    s->state = DS_CLOSED;
    mc_timer_cancel(&w->loop.timers, &s->timer);
    mc_timer_cancel(&w->loop.timers, &s->try_timer);
    mc_stream_close(&s->st);
    s->io.fd = -1;
    mc_hbuf_release(w, &s->in);
    mc_hbuf_release(w, &s->out);
    mc_hbuf_release(w, &s->replay);
    mc_hbuf_release(w, &s->mirror);
    const mc_listener_t *l = s->l;
    mc_stat_add(st, l->scope, MC_LISTENER_DOWNSTREAM_CX_ACTIVE, -1);
    mc_stat_inc(st, l->scope, MC_LISTENER_DOWNSTREAM_CX_DESTROY);
    mc_stat_hist(st, l->scope, MC_LISTENER_H_DOWNSTREAM_CX_LENGTH_MS, (w->loop.now - s->last_activity) / 1000);
    mc_stat_add(st, HTTP_SCOPE(s), MC_HTTP_DOWNSTREAM_CX_ACTIVE, -1);
    if (s->limited) {
        __atomic_sub_fetch(&l->ls->active_cx, 1, __ATOMIC_RELAXED);
        mc_stat_add(st, l->conn_limit_scope, MC_CONN_LIMIT_ACTIVE_CONNECTIONS, -1);
    }
    mc_worker_session_remove(w, &s->base);
    mc_loop_post(&w->loop, &s->task, free_task);
}

void mc_http_peer_text(mc_http_session_t *s)
{
    mc_addr_format(&s->peer, s->peer_text, sizeof(s->peer_text));
    const char *t = s->peer_text, *colon = strrchr(t, ':');
    size_t end = colon ? (size_t)(colon - t) : strlen(t);
    size_t off = 0;
    if (t[0] == '[' && end >= 2 && t[end - 1] == ']') { /* [v6]:port */
        off = 1;
        end--;
    }
    s->peer_ip_off = (uint8_t)off;
    s->peer_ip_len = (uint8_t)(end - off);
}

static void abort_session(mc_session_t *base)
{
    mc_http_session_close(mc_container_of(base, mc_http_session_t, base));
}

static void drain_session(mc_session_t *base)
{
    mc_http_session_t *s = mc_container_of(base, mc_http_session_t, base);
    if (s->shadow)
        return;
    if (s->state == DS_READ_HEAD && !s->head_start_ns && mc_hbuf_len(&s->in) == 0 && mc_hbuf_len(&s->out) == 0) {
        mc_http_session_close(s); /* idle between requests */
        return;
    }
    s->draining = 1;
    s->close_after = 1; /* connection: close on the response in flight, then close */
}

/* ---- writing to the client ------------------------------------------------- */

/* Sends s->out; 1 when it is empty, 0 when the socket is full, -1 on error. */
static int flush_out(mc_http_session_t *s)
{
    while (mc_hbuf_len(&s->out)) {
        if (!s->writable)
            return 0;
        ssize_t n = mc_stream_write(&s->st, s->out.data + s->out.start, mc_hbuf_len(&s->out));
        if (n > 0) {
            s->out.start += (uint32_t)n;
            mc_stat_add(STATS(s), HTTP_SCOPE(s), MC_HTTP_DOWNSTREAM_CX_TX_BYTES_TOTAL, n);
        } else if (n == MC_IO_AGAIN) {
            s->writable = 0;
            return 0;
        } else {
            return -1;
        }
    }
    mc_hbuf_release(s->w, &s->out);
    return 1;
}

static int queue_out(mc_http_session_t *s, const char *data, size_t len)
{
    if (mc_hbuf_reserve(s->w, &s->out, (uint32_t)len) < 0)
        return -1;
    memcpy(s->out.data + s->out.end, data, len);
    s->out.end += (uint32_t)len;
    return 0;
}

static void count_status(mc_http_session_t *s, int status)
{
    static const int slots[6] = {0, MC_HTTP_DOWNSTREAM_RQ_1XX, MC_HTTP_DOWNSTREAM_RQ_2XX, MC_HTTP_DOWNSTREAM_RQ_3XX,
                                 MC_HTTP_DOWNSTREAM_RQ_4XX, MC_HTTP_DOWNSTREAM_RQ_5XX};
    int cls = status / 100;
    if (cls >= 1 && cls <= 5)
        mc_stat_inc(STATS(s), HTTP_SCOPE(s), (uint32_t)slots[cls]);
}

void mc_http_reply(mc_http_session_t *s, int status, const char *body, size_t body_len, uint32_t flags,
                   const char *location)
{
    if (s->shadow) { /* nobody to tell */
        mc_http_session_close(s);
        return;
    }
    s->flags |= flags;
    s->status = (uint16_t)status;
    /* A request body we have not read would be taken for the next request. */
    if (!s->req_done)
        s->close_after = 1;
    s->bytes_tx = s->head_request ? 0 : body_len;
    mc_http_local_t r = {.status = status, .body = body, .body_len = body_len, .close = s->close_after,
                         .head = s->head_request, .request_id = s->request_id, .request_id_len = s->request_id_len,
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
    uint32_t need = (uint32_t)body_len + 1024 + (location ? (uint32_t)strlen(location) : 0) + (uint32_t)r.peer_md_id_len +
                    (uint32_t)r.peer_md_len;
    if (mc_hbuf_reserve(s->w, &s->out, need) < 0) {
        mc_http_session_close(s);
        return;
    }
    long n = mc_http_write_local_reply(s->out.data + s->out.end, s->out.cap - s->out.end, &r);
    if (n < 0) {
        mc_http_session_close(s);
        return;
    }
    s->out.end += (uint32_t)n;
    mc_http_forward_abort(s);
    s->resp_done = 1;
    s->try_state = TRY_RESPONDING;
    mc_http_pump_response(s);
}

void mc_http_local_reply(mc_http_session_t *s, int status, const char *body, uint32_t flags)
{
    mc_http_reply(s, status, body ? body : "", body ? strlen(body) : 0, flags, NULL);
}

/* Answers a request that never got as far as routing (unparsable, or a
 * client that stalled), then closes: what it sent is dropped unread. */
static void reply_and_close(mc_http_session_t *s, int status, const char *body)
{
    char buf[1024];
    mc_http_local_t r = {.status = status, .body = body, .body_len = strlen(body), .close = 1,
                         .server = s->hcm->server_name, .server_len = s->hcm->server_name_len};
    long n = mc_http_write_local_reply(buf, sizeof(buf), &r);
    mc_hbuf_release(s->w, &s->in);
    if (n < 0 || queue_out(s, buf, (size_t)n) < 0) {
        mc_http_session_close(s);
        return;
    }
    s->state = DS_CLOSING;
    flush_closing(s);
}

/* A reply for a request we cannot even parse: answer and close. */
static void protocol_error(mc_http_session_t *s, int status, const char *reason)
{
    mc_stats_shard_t *st = STATS(s);
    mc_stat_inc(st, HTTP_SCOPE(s), MC_HTTP_DOWNSTREAM_CX_PROTOCOL_ERROR);
    mc_stat_inc(st, HTTP_SCOPE(s), MC_HTTP_RF_FIRST + 11); /* DPE */
    count_status(s, status);
    char body[160];
    snprintf(body, sizeof(body), "bad request: %s\n", reason ? reason : "malformed");
    reply_and_close(s, status, body);
}

/* DS_CLOSING: write what is queued, then close (half-close first so the
 * client reads the reply before the connection goes). */
static void flush_closing(mc_http_session_t *s)
{
    int r = flush_out(s);
    if (r == 0)
        return;
    if (r > 0)
        mc_stream_shutdown(&s->st);
    mc_http_session_close(s);
}

/* ---- the response toward the client ---------------------------------------- */

static void finish_exchange(mc_http_session_t *s);
static void account_exchange(mc_http_session_t *s);
/* For an HTTP/1.0 client: consumes chunk framing from the upstream buffer
 * until chunk data is next, then offers that data (resp_ready) to be
 * written from the buffer as usual. Framing is walked a byte at a time;
 * it is a few bytes per chunk, the data is skipped in bulk. */
static int dechunk_response(mc_http_session_t *s, mc_upconn_t *u, uint32_t avail)
{
    const char *p = u->in.data + u->in.start;
    uint32_t off = 0;
    s->resp_ready = 0;
    while (off < avail && !s->resp_done) {
        uint64_t data = mc_h1_chunked_data_next(&s->resp_chunked);
        int done = 0;
        ssize_t n = mc_h1_chunked_scan(&s->resp_chunked, p + off, data ? (data < avail - off ? data : avail - off) : 1,
                                       &done, NULL);
        if (n < 0)
            return -1;
        if (data) {
            s->resp_ready = (uint32_t)n;
            break;
        }
        off += (uint32_t)n;
        s->resp_done = (uint8_t)done;
    }
    u->in.start += off;
    return 0;
}

/* Scans what is in the upstream buffer for response body bytes: sets
 * resp_ready and resp_done. -1 on a malformed chunked body. */
static int scan_response(mc_http_session_t *s, mc_upconn_t *u)
{
    uint32_t avail = mc_hbuf_len(&u->in);
    switch (s->resp_body) {
    case MC_H1_BODY_LENGTH: {
        uint64_t n = avail < s->resp_remaining ? avail : s->resp_remaining;
        s->resp_ready = (uint32_t)n;
        s->resp_remaining -= n;
        s->resp_done = s->resp_remaining == 0;
        return 0;
    }
    case MC_H1_BODY_CHUNKED: {
        int done = 0;
        const char *reason = NULL;
        if (s->resp_dechunk)
            return dechunk_response(s, u, avail);
        ssize_t n = mc_h1_chunked_scan(&s->resp_chunked, u->in.data + u->in.start, avail, &done, &reason);
        if (n < 0)
            return -1;
        s->resp_ready = (uint32_t)n;
        s->resp_done = (uint8_t)done;
        return 0;
    }
    case MC_H1_BODY_UNTIL_CLOSE:
        s->resp_ready = avail;
        return 0;
    default:
        s->resp_done = 1;
        return 0;
    }
}

static void task_run(mc_task_t *t);

/* Response body bytes already here join the head in `out`, so a small
 * response leaves in one write (one TLS record) instead of two. Bounded by
 * the room left in `out`; a larger body streams from the upstream buffer. */
static int coalesce_body(mc_http_session_t *s, mc_upconn_t *u)
{
    if (!u || s->shadow || s->resp_done || !mc_hbuf_len(&s->out))
        return 0;
    if (!s->resp_ready && mc_hbuf_len(&u->in) && scan_response(s, u) < 0)
        return -1;
    uint32_t n = s->resp_ready;
    if (!n || n > s->out.cap - s->out.end)
        return 0;
    memcpy(s->out.data + s->out.end, u->in.data + u->in.start, n);
    s->out.end += n;
    u->in.start += n;
    s->resp_ready = 0;
    s->bytes_tx += n;
    return 0;
}

void mc_http_pump_response(mc_http_session_t *s)
{
    size_t budget = 1u << 20; /* then yield to other connections */
    for (;;) {
        if (coalesce_body(s, s->up) < 0) {
            s->flags |= MC_RF_UPE;
            mc_stat_inc(STATS(s), s->up->cluster_scope, MC_CLUSTER_UPSTREAM_CX_PROTOCOL_ERROR);
            mc_http_session_close(s);
            return;
        }
        if (s->resp_done && s->resp_ready == 0 && !s->accounted)
            account_exchange(s); /* before the last write: see account_exchange */
        int r = flush_out(s);
        if (r < 0) {
            mc_http_session_close(s);
            return;
        }
        if (r == 0)
            return; /* socket full: EPOLLOUT resumes */
        mc_upconn_t *u = s->up;
        if (s->resp_done && s->resp_ready == 0) {
            finish_exchange(s);
            return;
        }
        if (!u)
            return;
        if (s->resp_ready && s->shadow) { /* a mirror's response is dropped */
            u->in.start += s->resp_ready;
            s->resp_ready = 0;
            continue;
        }
        if (s->resp_ready) {
            /* Straight from the upstream buffer: no copy. Whatever the client
             * does not take waits there; the upstream is not read meanwhile. */
            if (!s->writable)
                return;
            ssize_t n = mc_stream_write(&s->st, u->in.data + u->in.start, s->resp_ready);
            if (n > 0) {
                s->last_activity = s->w->loop.now;
                u->in.start += (uint32_t)n;
                s->resp_ready -= (uint32_t)n;
                s->bytes_tx += (uint64_t)n;
                mc_stat_add(STATS(s), HTTP_SCOPE(s), MC_HTTP_DOWNSTREAM_CX_TX_BYTES_TOTAL, n);
                if ((size_t)n >= budget) {
                    mc_loop_post(&s->w->loop, &s->task, task_run);
                    return;
                }
                budget -= (size_t)n;
                continue;
            }
            if (n == MC_IO_AGAIN) {
                s->writable = 0;
                return;
            }
            mc_http_session_close(s);
            return;
        }
        if (mc_hbuf_len(&u->in) && !s->resp_done) {
            if (scan_response(s, u) < 0) {
                s->flags |= MC_RF_UPE;
                mc_stat_inc(STATS(s), u->cluster_scope, MC_CLUSTER_UPSTREAM_CX_PROTOCOL_ERROR);
                mc_http_session_close(s);
                return;
            }
            if (s->resp_ready || s->resp_done)
                continue;
        }
        /* Need more from upstream. */
        if (!u->readable)
            return;
        if (mc_hbuf_len(&u->in) == 0)
            u->in.start = u->in.end = 0;
        if (mc_hbuf_reserve(s->w, &u->in, 1024) < 0) {
            mc_http_session_close(s);
            return;
        }
        uint32_t room = u->in.cap - u->in.end;
        ssize_t n = mc_stream_read(&u->st, u->in.data + u->in.end, room);
        if (n > 0) {
            u->in.end += (uint32_t)n;
            if ((uint32_t)n < room && !u->rdhup && mc_stream_short_read_drains(&u->st))
                u->readable = 0;
            continue;
        }
        if (n == MC_IO_AGAIN) {
            u->readable = 0;
            return;
        }
        if (n == 0 && s->resp_body == MC_H1_BODY_UNTIL_CLOSE) {
            s->resp_done = 1;
            s->resp_keep_upstream = 0;
            continue;
        }
        /* Upstream went away mid-body: the client cannot get a whole
         * response any more; close it so it sees a truncated message. */
        s->flags |= MC_RF_UC;
        mc_stat_inc(STATS(s), u->cluster_scope, MC_CLUSTER_UPSTREAM_RQ_RX_RESET);
        mc_http_session_close(s);
        return;
    }
}

/* The request's stats, access-log record / span and Istio metrics, once
 * its whole response is known (the last bytes may still be on their way
 * out, as when Envoy logs a stream): a client that has read its response
 * then finds it counted. */
static void account_exchange(mc_http_session_t *s)
{
    if (s->accounted || s->shadow)
        return;
    s->accounted = 1;
    mc_stats_shard_t *st = STATS(s);
    count_status(s, s->status);
    mc_stat_add(st, HTTP_SCOPE(s), MC_HTTP_DOWNSTREAM_RQ_ACTIVE, -1);
    mc_stat_hist(st, HTTP_SCOPE(s), MC_HTTP_H_DOWNSTREAM_RQ_TIME, (mc_now_ns() - s->rq_start_ns) / 1000);
    for (uint32_t i = 0; i < MC_RF__COUNT; i++)
        if (s->flags & (1u << i))
            mc_stat_inc(st, HTTP_SCOPE(s), MC_HTTP_RF_FIRST + i);
    mc_http_alog_end(s);
    mc_http_im_end(s);
}

static void finish_exchange(mc_http_session_t *s)
{
    mc_worker_t *w = s->w;
    if (s->shadow) {
        mc_http_forward_abort(s); /* returns the connection to the pool */
        mc_http_session_close(s);
        return;
    }
    account_exchange(s);
    mc_http_forward_abort(s); /* returns the upstream connection (reused when clean) */
    s->state = DS_READ_HEAD;
    mc_timer_cancel(&w->loop.timers, &s->timer);
    mc_timer_cancel(&w->loop.timers, &s->try_timer);
    mc_hbuf_release(w, &s->replay);
    mc_hbuf_release(w, &s->mirror);
    if (s->close_after) {
        s->state = DS_CLOSING;
        flush_closing(s);
        return;
    }
    mc_http_request_done(s);
}

/* ---- reading requests --------------------------------------------------------- */

enum { T_NONE, T_IDLE, T_HEADERS, T_REQUEST, T_ROUTE, T_STREAM_IDLE };

/* The nearest deadline among the timeouts that apply in this state. */
static uint64_t next_deadline(const mc_http_session_t *s, int *which)
{
    const mc_hcm_t *h = s->hcm;
    uint64_t best = UINT64_MAX;
    *which = T_NONE;
#define CONSIDER(t, kind)          \
    do {                           \
        uint64_t t_ = (t);         \
        if (t_ < best) {           \
            best = t_;             \
            *which = (kind);       \
        }                          \
    } while (0)
    if (s->state == DS_READ_HEAD) {
        if (!s->head_start_ns) {
            if (h->idle_timeout_ns)
                CONSIDER(s->last_activity + h->idle_timeout_ns, T_IDLE);
            return best;
        }
        if (h->request_headers_timeout_ns)
            CONSIDER(s->head_start_ns + h->request_headers_timeout_ns, T_HEADERS);
        if (h->request_timeout_ns)
            CONSIDER(s->head_start_ns + h->request_timeout_ns, T_REQUEST);
        if (h->stream_idle_timeout_ns)
            CONSIDER(s->last_activity + h->stream_idle_timeout_ns, T_STREAM_IDLE);
    } else if (s->state == DS_ACTIVE) {
        if (!s->req_done && h->request_timeout_ns)
            CONSIDER(s->head_start_ns + h->request_timeout_ns, T_REQUEST);
        /* Envoy's route timeout runs from the end of the downstream request
         * to the end of the upstream response. */
        if (s->rq_done_ns && s->route && s->route->timeout_ns)
            CONSIDER(s->rq_done_ns + s->route->timeout_ns, T_ROUTE);
        if (h->stream_idle_timeout_ns && !s->shadow)
            CONSIDER(s->last_activity + h->stream_idle_timeout_ns, T_STREAM_IDLE);
    }
#undef CONSIDER
    return best;
}

void mc_http_rearm(mc_http_session_t *s)
{
    int which;
    uint64_t d = next_deadline(s, &which);
    if (which == T_NONE)
        mc_timer_cancel(&s->w->loop.timers, &s->timer);
    else
        mc_timer_arm(&s->w->loop.timers, &s->timer, d);
}

static void arm_idle(mc_http_session_t *s)
{
    mc_http_rearm(s);
}

void mc_http_request_done(mc_http_session_t *s)
{
    /* Reset the per-request fields; keep the connection's. */
    s->route = NULL;
    s->vhost = NULL;
    s->c = NULL;
    s->up = NULL;
    s->flags = 0;
    s->status = 0;
    s->tries = s->retries = 0;
    s->n_tried = 0;
    s->tried_clusters = 0;
    s->try_state = TRY_NONE;
    s->req_done = s->buffered = s->body_sent = s->sent_100 = 0;
    s->req_ready = s->resp_ready = 0;
    s->resp_done = s->mirrored = s->early_response = s->has_hash = 0;
    s->request_id_len = 0;
    s->head_start_ns = 0;
    s->rq_done_ns = 0;
    s->denied_by = NULL;
    s->replay_sent = 0;
    s->bytes_rx = s->bytes_tx = 0;
    s->accounted = 0;
    if (mc_hbuf_len(&s->in) == 0)
        mc_hbuf_release(s->w, &s->in); /* idle keep-alive connections hold no buffer */
    arm_idle(s);
    /* A pipelined request may already be here. */
    read_head(s);
}

static void new_request_id(mc_http_session_t *s)
{
    static const char hex[] = "0123456789abcdef";
    uint64_t a = mc_rand_next(&s->w->rand), b = mc_rand_next(&s->w->rand);
    uint8_t bytes[16];
    memcpy(bytes, &a, 8);
    memcpy(bytes + 8, &b, 8);
    bytes[6] = (uint8_t)((bytes[6] & 0x0f) | 0x40); /* version 4 */
    bytes[8] = (uint8_t)((bytes[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    char *o = s->request_id;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *o++ = '-';
        *o++ = hex[bytes[i] >> 4];
        *o++ = hex[bytes[i] & 15];
    }
    s->request_id_len = 36;
}

static void redirect(mc_http_session_t *s, const mc_route_t *r)
{
    const mc_h1_request_t *q = &s->req;
    mc_route_req_t rq;
    mc_route_req_from_h1(&rq, q);
    char loc[2048];
    size_t n = 0;
    const char *scheme = r->redirect_scheme ? r->redirect_scheme : "http";
    const char *host = r->redirect_host;
    size_t host_len = host ? strlen(host) : 0;
    if (!host) {
        host = rq.authority;
        host_len = rq.authority_len;
        /* As Envoy: drop the request's port when redirecting to another
         * port, or when the scheme changes and the port is the old
         * scheme's default (http://x:80 -> https://x). */
        const char *colon = memrchr(host, ':', host_len);
        if (colon && memchr(colon, ']', (size_t)(host + host_len - colon)))
            colon = NULL;
        if (colon) {
            size_t plen = (size_t)(host + host_len - colon - 1);
            int default_port = (plen == 2 && !memcmp(colon + 1, "80", 2)) ||
                               (plen == 3 && !memcmp(colon + 1, "443", 3));
            if (r->redirect_port || (r->redirect_scheme && default_port))
                host_len = (size_t)(colon - host);
        }
    }
    n += (size_t)snprintf(loc + n, sizeof(loc) - n, "%s://%.*s", scheme, (int)host_len, host);
    if (r->redirect_port && n < sizeof(loc))
        n += (size_t)snprintf(loc + n, sizeof(loc) - n, ":%u", r->redirect_port);
    int own_query = 0;
    if (n < sizeof(loc)) {
        if (r->redirect_path) {
            n += (size_t)snprintf(loc + n, sizeof(loc) - n, "%s", r->redirect_path);
            own_query = strchr(r->redirect_path, '?') != NULL; /* replaces the request's query */
        } else if (r->redirect_prefix && rq.path_len >= r->path_len) {
            n += (size_t)snprintf(loc + n, sizeof(loc) - n, "%s%.*s", r->redirect_prefix,
                                  (int)(rq.path_len - r->path_len), rq.path + r->path_len);
        } else {
            n += (size_t)snprintf(loc + n, sizeof(loc) - n, "%.*s", (int)rq.path_len, rq.path);
        }
    }
    if (n < sizeof(loc) && rq.query && !r->strip_query && !own_query)
        n += (size_t)snprintf(loc + n, sizeof(loc) - n, "?%.*s", (int)rq.query_len, rq.query);
    if (n >= sizeof(loc)) {
        mc_http_local_reply(s, 500, "redirect target too long\n", 0);
        return;
    }
    mc_stat_inc(STATS(s), HTTP_SCOPE(s), MC_HTTP_RQ_REDIRECT);
    mc_http_reply(s, r->redirect_code, "", 0, 0, loc);
}

/* envoy.filters.http.rbac, in http_filters order, before routing. */
static int rbac_allows(mc_http_session_t *s, const mc_route_req_t *rq)
{
    const mc_hcm_t *h = s->hcm;
    if (!h->n_rbac)
        return 1;
    mc_rbac_ctx_t c = {.rq = rq, .principal = s->principal, .authenticated = s->principal[0] != 0,
                       .peer = &s->peer, .local = s->l->ls ? &s->l->ls->bound : &s->l->addr,
                       .md = s->w->match_data};
    for (uint32_t i = 0; i < h->n_rbac; i++) {
        const char *policy;
        if (!mc_rbac_allows(h->rbac[i], &c, &policy)) {
            s->denied_by = policy ? policy : "none";
            mc_stat_inc(STATS(s), HTTP_SCOPE(s), MC_HTTP_RBAC_DENIED);
            return 0;
        }
    }
    mc_stat_inc(STATS(s), HTTP_SCOPE(s), MC_HTTP_RBAC_ALLOWED);
    return 1;
}

/* envoy.filters.network.rbac on an HTTP chain: once per connection. */
static int net_rbac_allows(mc_http_session_t *s)
{
    const mc_chain_t *ch = s->ch;
    mc_rbac_ctx_t c = {.principal = s->principal, .authenticated = s->principal[0] != 0, .peer = &s->peer,
                       .local = s->l->ls ? &s->l->ls->bound : &s->l->addr, .md = s->w->match_data};
    for (uint32_t i = 0; i < ch->n_net_rbac; i++) {
        const char *policy;
        if (!mc_rbac_allows(ch->net_rbac[i], &c, &policy))
            return 0;
    }
    return 1;
}

static void start_request(mc_http_session_t *s, int head_len)
{
    mc_worker_t *w = s->w;
    mc_stats_shard_t *st = STATS(s);
    const mc_h1_request_t *q = &s->req;
    s->head_len = (uint32_t)head_len;
    s->state = DS_ACTIVE;
    s->requests++;
    s->rq_start_ns = mc_now_ns();
    s->rq_done_ns = 0;
    mc_http_rearm(s);
    mc_stat_inc(st, HTTP_SCOPE(s), MC_HTTP_DOWNSTREAM_RQ_TOTAL);
    mc_stat_inc(st, HTTP_SCOPE(s), MC_HTTP_DOWNSTREAM_RQ_ACTIVE);
    s->last_ep = UINT32_MAX;
    s->resp_head_ns = 0;

    const mc_h1_header_t *rid = mc_h1_find_header(q->headers, q->n_headers, "x-request-id", 12);
    if (rid && rid->value_len && rid->value_len < sizeof(s->request_id)) {
        memcpy(s->request_id, rid->value, rid->value_len);
        s->request_id_len = (uint8_t)rid->value_len;
    } else if (s->hcm->generate_request_id) {
        new_request_id(s);
    }
    s->close_after = s->draining || !q->keep_alive ||
                     (s->hcm->max_requests_per_connection && s->requests >= s->hcm->max_requests_per_connection);
    s->head_request = q->method_len == 4 && memcmp(q->method, "HEAD", 4) == 0;
    mc_http_trace_begin(s);
    mc_http_alog_begin(s);
    mc_http_im_request_head(s);
    s->req_body = q->body;
    s->req_remaining = q->content_length;
    mc_h1_chunked_init(&s->req_chunked);
    s->req_done = (q->body == MC_H1_BODY_NONE) || (q->body == MC_H1_BODY_LENGTH && q->content_length == 0);
    s->in.start += (uint32_t)head_len; /* the views into the head stay valid until `in` is compacted */

    if (q->connect) {
        mc_http_local_reply(s, 405, "CONNECT is not supported\n", 0);
        return;
    }
    mc_route_req_t rq;
    mc_route_req_from_h1(&rq, q);
    if (!rbac_allows(s, &rq)) {
        mc_http_local_reply(s, 403, "RBAC: access denied", 0);
        return;
    }
    const mc_route_table_t *rt = &s->hcm->rt;
    s->vhost = mc_router_vhost(rt, rq.authority, rq.authority_len);
    s->route = s->vhost ? mc_router_match(s->vhost, &rq, w->match_data) : NULL;
    if (!s->route) {
        mc_stat_inc(st, HTTP_SCOPE(s), MC_HTTP_NO_ROUTE);
        mc_http_local_reply(s, 404, "", MC_RF_NR);
        return;
    }
    if (s->route->action == MC_ACTION_DIRECT) {
        mc_stat_inc(st, HTTP_SCOPE(s), MC_HTTP_RQ_DIRECT_RESPONSE);
        mc_http_reply(s, s->route->direct_status, s->route->direct_body ? s->route->direct_body : "",
                      s->route->direct_body_len, 0, NULL);
        return;
    }
    if (s->route->action == MC_ACTION_REDIRECT) {
        redirect(s, s->route);
        return;
    }
    if (q->expect_continue && !s->req_done) {
        /* Envoy's default: answer 100 Continue here and strip Expect, so the
         * client starts its body without waiting on the upstream. */
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        queue_out(s, cont, sizeof(cont) - 1);
        s->sent_100 = 1;
        if (flush_out(s) < 0) {
            mc_http_session_close(s);
            return;
        }
    }
    mc_http_forward(s);
}

/* Between requests, a kept-alive connection moves to the worker's current
 * config (as Envoy applies new routes to the next request on an open
 * connection): same listener socket, same chain position, still HTTP. If
 * the listener is gone or changed kind, the connection stays on its own. */
static void refresh_config(mc_http_session_t *s)
{
    mc_wctx_t *cur = s->w->ctx;
    if (!cur || cur == s->ctx || !s->l->ls)
        return;
    const mc_snapshot_t *snap = cur->snap;
    const mc_listener_t *l2 = NULL;
    for (uint32_t i = 0; i < snap->n_listeners && !l2; i++)
        if (snap->listeners[i].ls == s->l->ls)
            l2 = &snap->listeners[i];
    uint32_t k = (uint32_t)(s->ch - s->l->chains);
    if (!l2 || k >= l2->n_chains || !l2->chains[k].hcm.present || l2->chains[k].transport != s->ch->transport)
        return;
    mc_stats_shard_t *st = STATS(s);
    const mc_chain_t *ch2 = &l2->chains[k];
    if (ch2->hcm.scope != s->hcm->scope) { /* the gauge follows the connection */
        mc_stat_add(st, s->hcm->scope, MC_HTTP_DOWNSTREAM_CX_ACTIVE, -1);
        mc_stat_inc(st, ch2->hcm.scope, MC_HTTP_DOWNSTREAM_CX_ACTIVE);
    }
    if (l2->scope != s->l->scope) {
        mc_stat_add(st, s->l->scope, MC_LISTENER_DOWNSTREAM_CX_ACTIVE, -1);
        mc_stat_inc(st, l2->scope, MC_LISTENER_DOWNSTREAM_CX_ACTIVE);
    }
    mc_wctx_t *old = s->ctx;
    mc_wctx_pin(cur);
    s->ctx = cur;
    s->l = l2;
    s->ch = ch2;
    s->hcm = &ch2->hcm;
    mc_wctx_unpin(old);
}

static void read_head(mc_http_session_t *s)
{
    mc_stats_shard_t *st = STATS(s);
    if (s->state == DS_READ_HEAD)
        refresh_config(s);
    for (;;) {
        if (s->state != DS_READ_HEAD)
            return;
        uint32_t len = mc_hbuf_len(&s->in);
        if (len) {
            s->req.headers = s->headers;
            s->req.n_headers = MC_HTTP_MAX_HEADERS;
            int status = 400;
            const char *reason = NULL;
            if (!s->head_start_ns) /* a pipelined request, already here */
                s->head_start_ns = s->w->loop.now;
            int rc = mc_h1_parse_request(s->in.data + s->in.start, len, &s->req, &s->hcm->limits, &status, &reason);
            if (rc > 0) {
                start_request(s, rc);
                return;
            }
            if (rc == MC_H1_ERROR) {
                protocol_error(s, status, reason);
                return;
            }
        }
        if (!s->readable)
            return;
        /* Room for more head: a head may be as large as the limit. */
        uint32_t need = len < MC_HTTP_BUF / 2 ? MC_HTTP_BUF / 2 : len;
        if (s->in.data && s->in.cap - s->in.end == 0 && s->in.cap >= s->hcm->limits.max_head_bytes + MC_HTTP_BUF) {
            protocol_error(s, 431, "request head too large");
            return;
        }
        if (mc_hbuf_reserve(s->w, &s->in, need) < 0) {
            mc_http_session_close(s);
            return;
        }
        uint32_t room = s->in.cap - s->in.end;
        ssize_t n = mc_stream_read(&s->st, s->in.data + s->in.end, room);
        if (n > 0) {
            if (!s->head_start_ns) { /* a request begins: its timeouts start */
                s->head_start_ns = s->w->loop.now;
                s->last_activity = s->w->loop.now;
                mc_http_rearm(s);
            }
            s->in.end += (uint32_t)n;
            s->last_activity = s->w->loop.now;
            mc_stat_add(st, HTTP_SCOPE(s), MC_HTTP_DOWNSTREAM_CX_RX_BYTES_TOTAL, n);
            if ((uint32_t)n < room && !s->rdhup && mc_stream_short_read_drains(&s->st))
                s->readable = 0;
            continue;
        }
        if (n == MC_IO_AGAIN) {
            s->readable = 0;
            if (mc_hbuf_len(&s->in) == 0)
                mc_hbuf_release(s->w, &s->in);
            return;
        }
        /* EOF or error: between requests that is a normal close. */
        mc_http_session_close(s);
        return;
    }
}

/* ---- the request body toward upstream ------------------------------------------ */

void mc_http_pump_request(mc_http_session_t *s)
{
    /* Reading downstream bytes while a request is active: only body bytes
     * are wanted; they are taken by the forwarder (proxy/http_forward.c),
     * which calls back here when it has room for more. */
    if (s->state != DS_ACTIVE || s->req_done || !s->readable)
        return;
    /* Backpressure: body bytes the upstream has not taken yet cap what we
     * read, so a slow upstream costs one buffer, never more. */
    if (mc_hbuf_len(&s->in) >= MC_HTTP_BUF / 2)
        return;
    if (mc_hbuf_len(&s->in) == 0)
        s->in.start = s->in.end = 0;
    if (mc_hbuf_reserve(s->w, &s->in, MC_HTTP_BUF / 2) < 0) {
        mc_http_session_close(s);
        return;
    }
    uint32_t room = s->in.cap - s->in.end;
    ssize_t n = mc_stream_read(&s->st, s->in.data + s->in.end, room);
    if (n > 0) {
        s->in.end += (uint32_t)n;
        s->last_activity = s->w->loop.now;
        mc_stat_add(STATS(s), HTTP_SCOPE(s), MC_HTTP_DOWNSTREAM_CX_RX_BYTES_TOTAL, n);
        if ((uint32_t)n < room && !s->rdhup && mc_stream_short_read_drains(&s->st))
            s->readable = 0;
        return;
    }
    if (n == MC_IO_AGAIN) {
        s->readable = 0;
        return;
    }
    /* The client closed before sending its whole body. */
    mc_http_session_close(s);
}

/* ---- events ------------------------------------------------------------------- */

/* DS_HANDSHAKE: the downstream TLS handshake; then requests. */
static void handshake(mc_http_session_t *s)
{
    int r = mc_stream_handshake(&s->st);
    if (r == 0)
        return;
    mc_stats_shard_t *st = STATS(s);
    if (r < 0) { /* ssl.connection_error: counted by the close, below */
        int kind = mc_tls_failure_kind(s->st.ssl);
        if (kind == MC_TLS_FAIL_SAN)
            mc_stat_inc(st, s->l->scope, MC_LISTENER_SSL_FAIL_VERIFY_SAN);
        else if (kind == MC_TLS_FAIL_VERIFY)
            mc_stat_inc(st, s->l->scope, MC_LISTENER_SSL_FAIL_VERIFY_ERROR);
        else if (kind == MC_TLS_FAIL_NO_CERT)
            mc_stat_inc(st, s->l->scope, MC_LISTENER_SSL_NO_CERTIFICATE);
        ERR_clear_error();
        mc_http_session_close(s);
        return;
    }
    mc_stat_inc(st, s->l->scope, MC_LISTENER_SSL_HANDSHAKE);
    mc_tls_peer_uri(s->st.ssl, s->principal, sizeof(s->principal));
    s->readable = 1; /* the handshake's reads may have buffered the first request (read-ahead) */
    mc_timer_cancel(&s->w->loop.timers, &s->timer);
    if (!net_rbac_allows(s)) {
        mc_http_session_close(s);
        return;
    }
    s->state = DS_READ_HEAD;
    arm_idle(s);
    read_head(s);
}

/* A 408 for a client that stalled before its request head was complete. */
static void timeout_reply(mc_http_session_t *s)
{
    reply_and_close(s, 408, "request timeout");
}

static void on_timer(mc_timer_t *t)
{
    mc_http_session_t *s = mc_container_of(t, mc_http_session_t, timer);
    mc_stats_shard_t *st = STATS(s);
    if (s->state == DS_HANDSHAKE) { /* the client never finished its handshake */
        mc_http_session_close(s);
        return;
    }
    int which;
    uint64_t deadline = next_deadline(s, &which);
    if (which == T_NONE)
        return;
    if (deadline > s->w->loop.now) { /* activity since arming: sleep the rest */
        mc_timer_arm(&s->w->loop.timers, &s->timer, deadline);
        return;
    }
    if (which == T_IDLE) {
        mc_stat_inc(st, HTTP_SCOPE(s), MC_HTTP_DOWNSTREAM_CX_IDLE_TIMEOUT);
        mc_http_session_close(s);
        return;
    }
    if (s->state == DS_READ_HEAD) {
        /* The client stalled inside a request head: 408 and close. */
        mc_stat_inc(st, HTTP_SCOPE(s), which == T_STREAM_IDLE ? MC_HTTP_DOWNSTREAM_RQ_IDLE_TIMEOUT
                                                              : MC_HTTP_DOWNSTREAM_RQ_TIMEOUT);
        timeout_reply(s);
        return;
    }
    if (which == T_ROUTE) {
        /* The route timeout: the whole request (all tries) took too long. */
        mc_stat_inc(st, HTTP_SCOPE(s), MC_HTTP_DOWNSTREAM_RQ_TIMEOUT);
        if (s->c)
            mc_stat_inc(st, s->c->scope, MC_CLUSTER_UPSTREAM_RQ_TIMEOUT);
        if (s->try_state >= TRY_RESPONDING) { /* too late for a reply */
            s->flags |= MC_RF_UT;
            mc_http_session_close(s);
            return;
        }
        mc_http_local_reply(s, 504, "upstream request timeout", MC_RF_UT);
        return;
    }
    /* The request (body) or the stream stalled. */
    mc_stat_inc(st, HTTP_SCOPE(s), which == T_STREAM_IDLE ? MC_HTTP_DOWNSTREAM_RQ_IDLE_TIMEOUT
                                                          : MC_HTTP_DOWNSTREAM_RQ_TIMEOUT);
    if (which == T_STREAM_IDLE)
        s->flags |= MC_RF_SI;
    if (s->try_state >= TRY_RESPONDING) {
        s->flags |= MC_RF_LR;
        mc_http_session_close(s);
        return;
    }
    mc_http_local_reply(s, 408, which == T_STREAM_IDLE ? "stream timeout" : "request timeout", 0);
}

static void on_io(mc_io_t *io, uint32_t ev)
{
    mc_http_session_t *s = mc_container_of(io, mc_http_session_t, io);
    if (s->state == DS_CLOSED)
        return;
    if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        s->readable = 1;
    if (ev & (EPOLLRDHUP | EPOLLHUP))
        s->rdhup = 1;
    if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))
        s->writable = 1;
    if (ev & EPOLLERR) {
        mc_http_session_close(s);
        return;
    }
    switch (s->state) {
    case DS_HANDSHAKE:
        handshake(s);
        break;
    case DS_READ_HEAD:
        read_head(s);
        break;
    case DS_CLOSING:
        flush_closing(s);
        break;
    case DS_ACTIVE:
        if (s->try_state == TRY_RESPONDING) {
            mc_http_pump_response(s);
        } else if (!s->req_done) {
            mc_http_forward_progress(s); /* reads more body and passes it on */
        } else if ((ev & (EPOLLRDHUP | EPOLLHUP)) && !mc_hbuf_len(&s->out)) {
            /* Whole request read; a FIN now is a half-close we tolerate
             * (the response still goes out), a full HUP is a reset. */
            if (ev & EPOLLHUP)
                mc_http_session_close(s);
        }
        break;
    default:
        break;
    }
}

static void task_run(mc_task_t *t)
{
    mc_http_session_t *s = mc_container_of(t, mc_http_session_t, task);
    if (s->state != DS_ACTIVE)
        return;
    if (s->try_state == TRY_RESPONDING)
        mc_http_pump_response(s);
    else if (s->try_state == TRY_WOKEN)
        mc_http_forward_resume(s);
}

/* ---- accept ------------------------------------------------------------------- */

void mc_http_accept(mc_worker_t *w, mc_wctx_t *ctx, uint32_t li, uint32_t chain, int fd, const mc_addr_t *peer)
{
    const mc_listener_t *l = &ctx->snap->listeners[li];
    const mc_chain_t *ch = &l->chains[chain];
    mc_stats_shard_t *st = w->stats;
    int limited = 0;
    if (l->conn_limit) {
        int64_t n = __atomic_add_fetch(&l->ls->active_cx, 1, __ATOMIC_RELAXED);
        if (n > (int64_t)l->conn_limit) {
            __atomic_sub_fetch(&l->ls->active_cx, 1, __ATOMIC_RELAXED);
            mc_stat_inc(st, l->conn_limit_scope, MC_CONN_LIMIT_LIMITED_CONNECTIONS);
            mc_stat_inc(st, l->scope, MC_LISTENER_DOWNSTREAM_CX_OVERFLOW);
            close(fd);
            return;
        }
        limited = 1;
        mc_stat_inc(st, l->conn_limit_scope, MC_CONN_LIMIT_ACTIVE_CONNECTIONS);
    }
    mc_http_session_t *s = mc_pool_get(&w->http_sessions);
    if (!s) {
        if (limited) {
            __atomic_sub_fetch(&l->ls->active_cx, 1, __ATOMIC_RELAXED);
            mc_stat_add(st, l->conn_limit_scope, MC_CONN_LIMIT_ACTIVE_CONNECTIONS, -1);
        }
        mc_stat_inc(st, w->server_scope, MC_SERVER_CONN_POOL_EXHAUSTED);
        mc_stat_inc(st, l->scope, MC_LISTENER_DOWNSTREAM_CX_OVERFLOW);
        close(fd);
        return;
    }
    s->base.abort = abort_session;
    s->base.drain = drain_session;
    s->task.cb = task_run;
    s->w = w;
    s->ctx = ctx;
    mc_wctx_pin(ctx);
    s->l = l;
    s->ch = ch;
    s->hcm = &ch->hcm;
    s->limited = (uint8_t)limited;
    s->io.fd = fd;
    s->io.cb = on_io;
    s->st.fd = fd;
    s->writable = 1;
    s->state = DS_READ_HEAD;
    if (peer)
        s->peer = *peer;
    mc_http_peer_text(s);
    s->last_activity = w->loop.now;
    mc_list_init(&s->pending_link);
    mc_timer_init(&s->timer, on_timer);
    mc_timer_init(&s->try_timer, mc_http_try_timer);
    mc_worker_session_add(w, &s->base);
    mc_stat_inc(st, l->scope, MC_LISTENER_DOWNSTREAM_CX_TOTAL);
    mc_stat_inc(st, l->scope, MC_LISTENER_DOWNSTREAM_CX_ACTIVE);
    mc_stat_inc(st, s->hcm->scope, MC_HTTP_DOWNSTREAM_CX_TOTAL);
    mc_stat_inc(st, s->hcm->scope, MC_HTTP_DOWNSTREAM_CX_ACTIVE);
    mc_sock_nodelay(fd);
    if (mc_loop_add_et(&w->loop, &s->io) < 0) {
        mc_http_session_close(s);
        return;
    }
    if (ch->tls) {
        mc_stream_set_ssl(&s->st, mc_tls_new_ssl(ch->tls, fd));
        if (!s->st.ssl) {
            mc_http_session_close(s);
            return;
        }
        s->state = DS_HANDSHAKE;
        mc_timer_arm(&w->loop.timers, &s->timer, w->loop.now + ch->tls->handshake_timeout_ns);
        handshake(s);
        return;
    }
    if (!net_rbac_allows(s)) {
        mc_http_session_close(s);
        return;
    }
    arm_idle(s);
}
