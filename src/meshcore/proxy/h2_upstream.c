/*
 * HTTP/2 upstream sessions: connect, TLS (ALPN h2), socket I/O through
 * nghttp2's memory interface, the per-host list of sessions a worker keeps,
 * and the stream slots handed out to exchanges (see proxy/h2_upstream.h).
 *
 * Theory of operation. mc_h2up_acquire() finds a session of this worker to
 * the host with a free stream slot (below our max_concurrent_streams, the
 * peer's SETTINGS_MAX_CONCURRENT_STREAMS and max_requests_per_connection,
 * and not told GOAWAY) or opens one; streams attach while it connects and
 * hear UPEV_CONNECTED once the TLS handshake (if any) is done. Reading feeds
 * nghttp2, whose callbacks (h2_adapt.c) put news on the session's `ready`
 * list; the owners are told only after nghttp2 has returned, so an owner
 * may submit, reset or release from its event. Sending happens from the
 * loop (mc_h2up_kick posts the session's task), never inside a callback.
 *
 * A session that dies (EOF, reset, a protocol error, a connect failure)
 * detaches every handle first (h2 = NULL, `dead`) and then tells them, so
 * they fail their try like an HTTP/1.1 reset; a handle outlives its session.
 * The circuit breaker's max_connections counts sessions; max_requests
 * counts streams (in the router filter, as for HTTP/1.1).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "proxy/h2_session.h"

#define STATS(h) ((h)->w->stats)

static nghttp2_session_callbacks *callbacks;
static nghttp2_option *options;
static pthread_once_t callbacks_once = PTHREAD_ONCE_INIT;

static void make_callbacks(void)
{
    if (nghttp2_session_callbacks_new(&callbacks) != 0 || nghttp2_option_new(&options) != 0)
        abort();
    mc_h2up_set_callbacks(callbacks);
    /* Windows reopen only as the stream forwards what it got. */
    nghttp2_option_set_no_auto_window_update(options, 1);
    nghttp2_option_set_peer_max_concurrent_streams(options, 100); /* until the peer's SETTINGS say */
}

/* ---- telling owners -------------------------------------------------------- */

void mc_h2up_notify(mc_h2up_t *h, mc_upconn_t *u, int event)
{
    u->readable = 1;
    if (event != UPEV_IO || !u->h2s.notify)
        u->h2s.ev = (uint8_t)event;
    if (u->h2s.notify)
        return;
    u->h2s.notify = 1;
    mc_list_push(&h->ready, &u->h2s.ready_link);
}

/* Delivers queued news; an owner may release any handle meanwhile. */
static void dispatch(mc_list_t *ready)
{
    while (!mc_list_empty(ready)) {
        mc_upconn_t *u = mc_container_of(ready->next, mc_upconn_t, h2s.ready_link);
        mc_list_remove(&u->h2s.ready_link);
        u->h2s.notify = 0;
        if (u->owner)
            mc_http_upstream_event(u->owner, u, u->h2s.ev);
    }
}

/* ---- lifecycle -------------------------------------------------------------- */

static void free_task(mc_task_t *t)
{
    free(mc_container_of(t, mc_h2up_t, task));
}

static void flush_task(mc_task_t *t);

void mc_h2up_kick(mc_h2up_t *h)
{
    if (h->state != H2_CLOSED)
        mc_loop_post(&h->w->loop, &h->task, flush_task);
}

/* Closes the session; its handles hear `event` (UPEV_IO or a connect failure). */
static void session_close(mc_h2up_t *h, int event)
{
    if (h->state == H2_CLOSED)
        return;
    mc_worker_t *w = h->w;
    mc_list_t gone;
    mc_list_init(&gone);
    while (!mc_list_empty(&h->streams)) {
        mc_upconn_t *u = mc_container_of(h->streams.next, mc_upconn_t, h2s.link);
        mc_list_remove(&u->h2s.link);
        mc_list_init(&u->h2s.link);
        if (u->h2s.notify)
            mc_list_remove(&u->h2s.ready_link);
        u->h2s.notify = 0;
        u->h2 = NULL;
        u->h2s.dead = 1;
        u->rdhup = 1;
        u->readable = 1;
        if (!u->h2s.sid) /* never sent: not processed */
            u->h2s.refused = 1;
        u->h2s.ev = (uint8_t)(u->state == UP_CONNECTING ? event : UPEV_IO);
        u->h2s.notify = 1;
        mc_list_push(&gone, &u->h2s.ready_link);
    }
    mc_list_remove(&h->link);
    mc_list_remove(&h->wlink);
    h->state = H2_CLOSED;
    mc_timer_cancel(&w->loop.timers, &h->timer);
    mc_h2_ka_stop(&h->ka, w);
    if (h->ng)
        nghttp2_session_del(h->ng);
    h->ng = NULL;
    mc_stream_close(&h->st);
    h->io.fd = -1;
    mc_tls_ctx_unref(h->tls);
    h->tls = NULL;
    mc_hbuf_release(w, &h->wbuf);
    mc_cb_release(&h->cstate->cx_active);
    h->cstate->wconns[w->id]--;
    mc_stat_add(STATS(h), h->cluster_scope, MC_CLUSTER_UPSTREAM_CX_ACTIVE, -1);
    mc_stat_inc(STATS(h), h->cluster_scope, MC_CLUSTER_UPSTREAM_CX_DESTROY);
    mc_stat_add(STATS(h), h->host_scope, MC_HOST_CX_ACTIVE, -1);
    mc_cluster_state_t *cs = h->cstate;
    mc_list_t *pending = &cs->wpending[w->id];
    if (!mc_list_empty(pending)) /* a connection slot came free */
        mc_http_pending_wake(mc_container_of(pending->next, mc_http_stream_t, pending_link));
    mc_host_state_unref(h->host);
    mc_cluster_state_unref(cs);
    mc_loop_post(&w->loop, &h->task, free_task);
    dispatch(&gone);
}

/* Writes wbuf; 1 when it is empty, 0 when the socket is full, -1 (session
 * closed) on an error. */
static int write_out(mc_h2up_t *h)
{
    uint64_t sent;
    int r = mc_hbuf_write(h->w, &h->wbuf, &h->st, &h->writable, &sent);
    if (sent)
        mc_stat_add(STATS(h), h->cluster_scope, MC_CLUSTER_UPSTREAM_CX_TX_BYTES_TOTAL, (int64_t)sent);
    if (r < 0)
        session_close(h, UPEV_IO);
    return r;
}

/* Sends what nghttp2 has to send, as far as the socket takes it. Frames
 * (about one per nghttp2_session_mem_send) are gathered in wbuf up to a
 * pooled buffer's size and written together: one send(2) per session per
 * loop turn carries every stream's frames. */
static void flush(mc_h2up_t *h)
{
    while (h->state == H2_READY) {
        if (write_out(h) <= 0)
            return;
        while (mc_hbuf_len(&h->wbuf) < MC_HTTP_BUF / 2) {
            const uint8_t *data;
            ssize_t n = nghttp2_session_mem_send(h->ng, &data);
            if (n < 0) {
                session_close(h, UPEV_IO);
                return;
            }
            if (n == 0)
                break;
            if (mc_hbuf_reserve(h->w, &h->wbuf, (uint32_t)n) < 0) {
                session_close(h, UPEV_IO);
                return;
            }
            memcpy(h->wbuf.data + h->wbuf.end, data, (size_t)n);
            h->wbuf.end += (uint32_t)n;
        }
        if (!mc_hbuf_len(&h->wbuf))
            break;
    }
    if (h->state == H2_READY && !nghttp2_session_want_read(h->ng) && !nghttp2_session_want_write(h->ng))
        session_close(h, UPEV_IO); /* GOAWAY exchanged and every stream done */
}

static void flush_task(mc_task_t *t)
{
    mc_h2up_t *h = mc_container_of(t, mc_h2up_t, task);
    flush(h);
    dispatch(&h->ready); /* a request body drained: its owner may write more */
}

static int session_full(const mc_h2up_t *h)
{
    if (h->state == H2_CLOSED || h->goaway || (h->max_requests && h->n_total >= h->max_requests))
        return 1;
    uint32_t cap = h->max_streams ? h->max_streams : UINT32_MAX;
    if (h->ng) {
        uint32_t peer = nghttp2_session_get_remote_settings(h->ng, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
        if (peer < cap)
            cap = peer;
    }
    return h->n_active >= cap;
}

/* The connection is up (TLS included): speak HTTP/2 and let the streams go. */
static void session_ready(mc_h2up_t *h)
{
    if (h->st.ssl) {
        const unsigned char *alpn = NULL;
        unsigned alpn_len = 0;
        SSL_get0_alpn_selected(h->st.ssl, &alpn, &alpn_len);
        if (alpn_len && !(alpn_len == 2 && memcmp(alpn, "h2", 2) == 0)) {
            /* the upstream chose another protocol for an HTTP/2 cluster */
            mc_stat_inc(STATS(h), h->cluster_scope, MC_CLUSTER_UPSTREAM_CX_PROTOCOL_ERROR);
            session_close(h, UPEV_CONNECT_FAILED);
            return;
        }
    }
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, h->stream_window},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, MC_H1_DEFAULT_MAX_HEAD_BYTES},
    };
    if (nghttp2_session_client_new3(&h->ng, callbacks, h, options, &mc_proxy_of(h->w)->h2mem) != 0 ||
        nghttp2_submit_settings(h->ng, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) != 0 ||
        nghttp2_session_set_local_window_size(h->ng, NGHTTP2_FLAG_NONE, 0, (int32_t)h->conn_window) != 0) {
        session_close(h, UPEV_CONNECT_FAILED);
        return;
    }
    h->state = H2_READY;
    h->writable = 1;
    h->last_used = h->w->loop.now;
    mc_h2_ka_start(&h->ka, h->w);
    for (mc_list_t *l = h->streams.next; l != &h->streams; l = l->next) {
        mc_upconn_t *u = mc_container_of(l, mc_upconn_t, h2s.link);
        u->state = UP_BUSY;
        u->writable = 1;
        memcpy(u->principal, h->principal, sizeof(u->principal));
        mc_h2up_notify(h, u, UPEV_CONNECTED);
    }
    dispatch(&h->ready);
    flush(h);
    dispatch(&h->ready);
}

static void handshake(mc_h2up_t *h)
{
    int r = mc_stream_handshake(&h->st);
    if (r == 0)
        return;
    mc_timer_cancel(&h->w->loop.timers, &h->timer);
    if (r < 0) {
        mc_tls_count_failure(STATS(h), h->cluster_scope, h->st.ssl, MC_TLS_UPSTREAM);
        session_close(h, UPEV_CONNECT_FAILED);
        return;
    }
    mc_stat_inc(STATS(h), h->cluster_scope, MC_CLUSTER_SSL_HANDSHAKE);
    if (SSL_session_reused(h->st.ssl))
        mc_stat_inc(STATS(h), h->cluster_scope, MC_CLUSTER_SSL_SESSION_REUSED);
    mc_tls_peer_uri(h->st.ssl, h->principal, sizeof(h->principal));
    SSL_SESSION *sess = SSL_get1_session(h->st.ssl);
    if (sess) { /* the next session to this host resumes it */
        mc_host_wpool_t *p = &h->host->wpools[h->w->id];
        if (p->tls_session)
            SSL_SESSION_free(p->tls_session);
        p->tls_session = sess;
    }
    h->readable = 1; /* read-ahead may hold records past the handshake */
    session_ready(h);
}

static void on_timer(mc_timer_t *t)
{
    mc_h2up_t *h = mc_container_of(t, mc_h2up_t, timer);
    if (h->state == H2_CONNECTING || h->state == H2_HANDSHAKE) {
        session_close(h, h->failed ? UPEV_CONNECT_FAILED : UPEV_CONNECT_TIMEOUT);
        return;
    }
    if (h->state == H2_READY && h->n_active == 0) {
        uint64_t deadline = h->last_used + h->idle_timeout_ns;
        if (deadline > h->w->loop.now) {
            mc_timer_arm(&h->w->loop.timers, &h->timer, deadline);
            return;
        }
        mc_stat_inc(STATS(h), h->cluster_scope, MC_CLUSTER_UPSTREAM_CX_IDLE_TIMEOUT);
        session_close(h, UPEV_IO);
    }
}

static void on_keepalive(mc_timer_t *t)
{
    mc_h2up_t *h = mc_container_of(t, mc_h2up_t, ka.timer);
    if (h->state != H2_READY)
        return;
    int r = mc_h2_ka_fire(&h->ka, h->w, h->ng);
    if (r == MC_H2_KA_FLUSH) {
        mc_h2up_kick(h);
    } else if (r == MC_H2_KA_TIMEOUT) {
        mc_stat_inc(STATS(h), h->cluster_scope, MC_CLUSTER_HTTP2_KEEPALIVE_TIMEOUT);
        session_close(h, UPEV_IO);
    }
}

/* Feeds what the socket has to nghttp2. 0 ok, -1 the session is gone. */
static int receive(mc_h2up_t *h)
{
    uint8_t buf[16384];
    while (h->readable && h->state == H2_READY) {
        ssize_t n = mc_stream_read(&h->st, buf, sizeof(buf));
        if (n == MC_IO_AGAIN) {
            h->readable = 0;
            break;
        }
        if (n <= 0) {
            session_close(h, UPEV_IO);
            return -1;
        }
        mc_stat_add(STATS(h), h->cluster_scope, MC_CLUSTER_UPSTREAM_CX_RX_BYTES_TOTAL, n);
        if ((size_t)n < sizeof(buf) && !h->rdhup && mc_stream_short_read_drains(&h->st))
            h->readable = 0;
        if (nghttp2_session_mem_recv(h->ng, buf, (size_t)n) < 0) {
            mc_stat_inc(STATS(h), h->cluster_scope, MC_CLUSTER_UPSTREAM_CX_PROTOCOL_ERROR);
            session_close(h, UPEV_IO);
            return -1;
        }
        dispatch(&h->ready);
    }
    return 0;
}

static void on_io(mc_io_t *io, uint32_t ev)
{
    mc_h2up_t *h = mc_container_of(io, mc_h2up_t, io);
    if (h->state == H2_CLOSED)
        return;
    if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        h->readable = 1;
    if (ev & (EPOLLRDHUP | EPOLLHUP))
        h->rdhup = 1;
    if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))
        h->writable = 1;
    if (h->state == H2_CONNECTING) {
        if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        mc_timer_cancel(&h->w->loop.timers, &h->timer);
        if ((ev & EPOLLERR) || mc_sock_error(io->fd) != 0) {
            session_close(h, UPEV_CONNECT_FAILED);
            return;
        }
        mc_stat_hist(STATS(h), h->cluster_scope, MC_CLUSTER_H_UPSTREAM_CX_CONNECT_MS,
                     (mc_now_ns() - h->connect_start) / 1000);
        if (!h->tls) {
            session_ready(h);
            return;
        }
        mc_stream_set_ssl(&h->st, mc_tls_new_ssl(h->tls, h->io.fd));
        if (!h->st.ssl) {
            session_close(h, UPEV_CONNECT_FAILED);
            return;
        }
        mc_host_wpool_t *p = &h->host->wpools[h->w->id];
        if (p->tls_session)
            SSL_set_session(h->st.ssl, p->tls_session);
        h->state = H2_HANDSHAKE;
        mc_timer_arm(&h->w->loop.timers, &h->timer, h->w->loop.now + h->tls->handshake_timeout_ns);
        handshake(h);
        return;
    }
    if (h->state == H2_HANDSHAKE) {
        handshake(h);
        return;
    }
    if (receive(h) < 0)
        return;
    flush(h);
    dispatch(&h->ready); /* a request body drained while sending: its owner may write more */
}

static mc_h2up_t *session_open(mc_worker_t *w, const mc_cluster_t *c, uint32_t ep)
{
    pthread_once(&callbacks_once, make_callbacks);
    const mc_endpoint_t *e = &c->endpoints[ep];
    mc_h2up_t *h = calloc(1, sizeof(*h)); /* per connection, not per request */
    if (!h)
        return NULL;
    int in_progress;
    int fd = mc_sock_connect(&e->addr, &in_progress);
    (void)in_progress; /* reported by EPOLLOUT either way */
    h->w = w;
    h->io.fd = h->st.fd = fd;
    h->io.cb = on_io;
    if (c->tls) {
        h->tls = c->tls;
        mc_tls_ctx_ref(h->tls);
    }
    mc_list_init(&h->streams);
    mc_list_init(&h->ready);
    mc_timer_init(&h->timer, on_timer);
    mc_h2_ka_init(&h->ka, &c->h2_keepalive, on_keepalive);
    h->host = e->host;
    h->cstate = c->state;
    __atomic_add_fetch(&h->host->refcnt, 1, __ATOMIC_RELAXED);
    mc_cluster_state_ref(h->cstate);
    __atomic_add_fetch(&h->cstate->cx_active, 1, __ATOMIC_RELAXED);
    h->cstate->wconns[w->id]++;
    h->cluster_scope = c->scope;
    h->host_scope = e->host_scope;
    h->idle_timeout_ns = c->idle_timeout_ns;
    h->max_streams = c->h2_max_streams;
    h->max_requests = c->max_requests_per_connection;
    h->stream_window = c->h2_stream_window;
    h->conn_window = c->h2_conn_window;
    h->connect_start = mc_now_ns();
    h->state = H2_CONNECTING;
    mc_list_push(&e->host->wpools[w->id].h2, &h->link);
    mc_list_push(&mc_proxy_of(w)->h2_sessions, &h->wlink);
    mc_stat_inc(STATS(h), c->scope, MC_CLUSTER_UPSTREAM_CX_TOTAL);
    mc_stat_inc(STATS(h), c->scope, MC_CLUSTER_UPSTREAM_CX_ACTIVE);
    mc_stat_inc(STATS(h), e->host_scope, MC_HOST_CX_TOTAL);
    mc_stat_inc(STATS(h), e->host_scope, MC_HOST_CX_ACTIVE);
    if (fd < 0 || mc_loop_add_et(&w->loop, &h->io) < 0) {
        /* reported from the timer, once the caller has settled */
        h->failed = 1;
        if (fd >= 0)
            close(fd);
        h->io.fd = h->st.fd = -1;
        mc_timer_arm(&w->loop.timers, &h->timer, w->loop.now);
        return h;
    }
    mc_timer_arm(&w->loop.timers, &h->timer, w->loop.now + c->connect_timeout_ns);
    return h;
}

/* ---- stream slots ------------------------------------------------------------- */

static void handle_free(mc_task_t *t)
{
    mc_upconn_t *u = mc_container_of(t, mc_upconn_t, task);
    mc_pool_put(&mc_proxy_of(u->w)->upconns, u);
}

mc_upconn_t *mc_h2up_acquire(mc_worker_t *w, const mc_cluster_t *c, uint32_t ep, mc_http_stream_t *owner,
                             int *pending)
{
    const mc_endpoint_t *e = &c->endpoints[ep];
    mc_list_t *list = &e->host->wpools[w->id].h2;
    mc_h2up_t *h = NULL;
    *pending = 0;
    for (mc_list_t *l = list->next; l != list; l = l->next) {
        mc_h2up_t *x = mc_container_of(l, mc_h2up_t, link);
        if (!session_full(x)) {
            h = x;
            break;
        }
    }
    if (!h) {
        if (__atomic_load_n(&c->state->cx_active, __ATOMIC_RELAXED) >= (int64_t)c->max_connections &&
            c->state->wconns[w->id] > 0 && !mc_upconn_shed_idle(w, c)) {
            *pending = 1;
            return NULL;
        }
        h = session_open(w, c, ep);
        if (!h)
            return NULL;
    } else {
        mc_stat_inc(STATS(h), c->scope, MC_CLUSTER_UPSTREAM_CX_REUSED);
        if (h->state == H2_READY && mc_h2_ka_idle_ping(&h->ka, w, h->ng))
            mc_h2up_kick(h); /* a PING ahead of the stream: a dead peer shows within the timeout */
    }
    mc_upconn_t *u = mc_pool_get(&mc_proxy_of(w)->upconns);
    if (!u)
        return NULL;
    u->w = w;
    u->io.fd = u->st.fd = -1;
    u->h2 = h;
    u->is_h2 = 1;
    u->host = e->host;
    u->cluster_scope = c->scope;
    u->host_scope = e->host_scope;
    u->owner = owner;
    u->h2s.grpc_status = -1;
    mc_list_init(&u->link);
    mc_list_push(&h->streams, &u->h2s.link);
    h->n_active++;
    h->n_total++;
    if (h->state == H2_READY) {
        mc_timer_cancel(&w->loop.timers, &h->timer); /* the idle timeout */
        u->state = UP_BUSY;
        u->writable = 1;
        memcpy(u->principal, h->principal, sizeof(u->principal));
    } else {
        u->state = UP_CONNECTING;
    }
    return u;
}

void mc_h2up_release(mc_upconn_t *u)
{
    mc_worker_t *w = u->w;
    mc_h2up_t *h = u->h2;
    if (u->h2s.notify)
        mc_list_remove(&u->h2s.ready_link);
    u->h2s.notify = 0;
    u->owner = NULL;
    if (h) {
        mc_list_remove(&u->h2s.link);
        u->h2 = NULL;
        uint32_t unread = mc_hbuf_len(&u->h2s.raw);
        if (u->h2s.sid && !u->h2s.closed) {
            nghttp2_session_set_stream_user_data(h->ng, u->h2s.sid, NULL);
            if (unread)
                nghttp2_session_consume(h->ng, u->h2s.sid, unread);
            nghttp2_submit_rst_stream(h->ng, NGHTTP2_FLAG_NONE, u->h2s.sid, NGHTTP2_CANCEL);
        } else if (u->h2s.sid && unread) {
            nghttp2_session_consume_connection(h->ng, unread);
        }
        h->n_active--;
        h->last_used = w->loop.now;
        if (h->n_active == 0 && h->state == H2_READY) {
            if (h->goaway || (h->max_requests && h->n_total >= h->max_requests))
                nghttp2_session_terminate_session(h->ng, NGHTTP2_NO_ERROR); /* closes once sent */
            else if (h->idle_timeout_ns)
                mc_timer_arm(&w->loop.timers, &h->timer, w->loop.now + h->idle_timeout_ns);
        }
        mc_h2up_kick(h);
        mc_list_t *pending = &h->cstate->wpending[w->id];
        if (!mc_list_empty(pending)) /* a stream slot came free */
            mc_http_pending_wake(mc_container_of(pending->next, mc_http_stream_t, pending_link));
    }
    mc_hbuf_release(w, &u->h2s.out);
    mc_hbuf_release(w, &u->h2s.raw);
    mc_hbuf_release(w, &u->h2s.trailers);
    mc_hbuf_release(w, &u->in);
    u->state = UP_CLOSED;
    mc_loop_post(&w->loop, &u->task, handle_free);
}

void mc_h2up_close_all(mc_list_t *all)
{
    while (!mc_list_empty(all))
        session_close(mc_container_of(all->next, mc_h2up_t, wlink), UPEV_IO);
}

void mc_h2up_close_idle(mc_list_t *sessions)
{
    for (mc_list_t *l = sessions->next; l != sessions;) {
        mc_h2up_t *h = mc_container_of(l, mc_h2up_t, link);
        l = l->next;
        if (h->n_active == 0)
            session_close(h, UPEV_IO);
    }
}
