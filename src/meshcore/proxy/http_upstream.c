/*
 * Upstream HTTP/1.1 connections and the worker's per-host pools.
 *
 * A connection is owned by one request while busy; between requests it sits
 * in its host's idle list (newest first, so the warmest connection is
 * reused) with the cluster's idle timeout armed. An idle connection that
 * becomes readable was closed (or spoke out of turn) upstream, so it is
 * closed here before anyone picks it. The circuit breaker's max_connections
 * counts every open connection of the cluster, across workers.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/clock.h"
#include "proxy/http_stream.h"

/* ---- lifecycle ------------------------------------------------------------- */

size_t mc_upconn_size(void)
{
    return sizeof(mc_upconn_t);
}

ssize_t mc_upconn_fill(mc_upconn_t *u, uint32_t want)
{
    if (u->is_h2)
        return mc_h2up_fill(u, want);
    if (mc_hbuf_len(&u->in) == 0)
        u->in.start = u->in.end = 0;
    if (mc_hbuf_reserve(u->w, &u->in, want) < 0)
        return MC_IO_ERROR;
    uint32_t room = u->in.cap - u->in.end;
    ssize_t n = mc_stream_read(&u->st, u->in.data + u->in.end, room);
    if (n > 0) {
        u->in.end += (uint32_t)n;
        if ((uint32_t)n < room && !u->rdhup && mc_stream_short_read_drains(&u->st))
            u->readable = 0;
    } else if (n == MC_IO_AGAIN) {
        u->readable = 0;
    }
    return n;
}

ssize_t mc_upconn_write(mc_upconn_t *u, const char *p, uint32_t len)
{
    if (u->is_h2)
        return mc_h2up_write(u, p, len);
    return mc_stream_write(&u->st, p, len);
}

int mc_upconn_failure(const mc_upconn_t *u)
{
    if (!u->is_h2)
        return MC_TRY_RESET;
    if (u->h2s.refused)
        return MC_TRY_REFUSED;
    return u->h2s.reset_code ? MC_TRY_REMOTE_RESET : MC_TRY_RESET;
}

int mc_upconn_wants_h2(const mc_http_stream_t *s)
{
    if (s->c->protocol == MC_UPSTREAM_HTTP2)
        return 1;
    /* use_downstream_protocol_config: HTTP/2 when the client's stream is
     * (a WebSocket over HTTP/2 goes as the HTTP/1.1 upgrade: proxy/h2_tunnel.c) */
    return s->c->protocol == MC_UPSTREAM_DOWNSTREAM && !s->upgrade && s->codec && s->codec->name && s->codec->name[0] == 'h' &&
           s->codec->name[1] == '2';
}

/* A connection slot or an idle connection just appeared: let the oldest
 * request waiting on this cluster try again. */
static void wake_pending(mc_worker_t *w, mc_cluster_state_t *cs)
{
    mc_list_t *l = &cs->wpending[w->id];
    if (!mc_list_empty(l))
        mc_http_pending_wake(mc_container_of(l->next, mc_http_stream_t, pending_link));
}

/* Keeps the connection's TLS session so the next connection to the host
 * resumes it (an abbreviated handshake). */
static void keep_tls_session(mc_upconn_t *u, int closing)
{
    if (!u->st.ssl || !u->st.shook || !u->host)
        return;
    SSL_SESSION *sess = SSL_get1_session(u->st.ssl);
    if (!sess)
        return;
    if (!SSL_SESSION_is_resumable(sess)) {
        SSL_SESSION_free(sess);
        return;
    }
    /* SSL_free of a connection not shut down marks its session
     * non-resumable (the kept reference with it): mark this one shut down
     * without a close_notify, which only an orderly close would send. */
    if (closing) {
        SSL_set_quiet_shutdown(u->st.ssl, 1);
        SSL_shutdown(u->st.ssl);
    }
    mc_host_wpool_t *p = &u->host->wpools[u->w->id];
    if (p->tls_session)
        SSL_SESSION_free(p->tls_session);
    p->tls_session = sess;
}

static void free_task(mc_task_t *t)
{
    mc_upconn_t *u = mc_container_of(t, mc_upconn_t, task);
    mc_pool_put(&mc_proxy_of(u->w)->upconns, u);
}

void mc_upconn_close(mc_upconn_t *u)
{
    if (u->state == UP_CLOSED)
        return;
    if (u->is_h2) {
        mc_h2up_release(u);
        return;
    }
    mc_worker_t *w = u->w;
    mc_stats_shard_t *st = w->stats;
    if (u->state == UP_IDLE) {
        mc_list_remove(&u->link);
        u->host->wpools[w->id].n_idle--;
    }
    keep_tls_session(u, 1);
    u->state = UP_CLOSED;
    u->owner = NULL;
    mc_timer_cancel(&w->loop.timers, &u->timer);
    mc_stream_close(&u->st);
    u->io.fd = -1;
    mc_tls_ctx_unref(u->tls);
    u->tls = NULL;
    mc_hbuf_release(w, &u->in);
    mc_cb_release(&u->cstate->cx_active);
    u->cstate->wconns[w->id]--;
    mc_stat_add(st, u->cluster_scope, MC_CLUSTER_UPSTREAM_CX_ACTIVE, -1);
    mc_stat_inc(st, u->cluster_scope, MC_CLUSTER_UPSTREAM_CX_DESTROY);
    mc_stat_add(st, u->host_scope, MC_HOST_CX_ACTIVE, -1);
    wake_pending(w, u->cstate);
    mc_host_state_unref(u->host);
    mc_cluster_state_unref(u->cstate);
    u->host = NULL;
    u->cstate = NULL;
    mc_loop_post(&w->loop, &u->task, free_task);
}

static void on_timer(mc_timer_t *t)
{
    mc_upconn_t *u = mc_container_of(t, mc_upconn_t, timer);
    if (u->state == UP_CONNECTING || u->state == UP_HANDSHAKE) {
        mc_http_stream_t *s = u->owner;
        if (s)
            mc_http_upstream_event(s, u, u->failed ? UPEV_CONNECT_FAILED : UPEV_CONNECT_TIMEOUT);
        else
            mc_upconn_close(u);
        return;
    }
    if (u->state == UP_IDLE) {
        uint64_t deadline = u->last_used + u->idle_timeout_ns;
        if (deadline > u->w->loop.now) {
            mc_timer_arm(&u->w->loop.timers, &u->timer, deadline);
            return;
        }
        mc_stat_inc(u->w->stats, u->cluster_scope, MC_CLUSTER_UPSTREAM_CX_IDLE_TIMEOUT);
        mc_upconn_close(u);
    }
}

/* Tells the owner how connecting went. */
static void connected(mc_upconn_t *u, int ok)
{
    mc_http_stream_t *s = u->owner;
    if (ok)
        u->state = UP_BUSY;
    if (s)
        mc_http_upstream_event(s, u, ok ? UPEV_CONNECTED : UPEV_CONNECT_FAILED);
    else
        mc_upconn_close(u);
}

static void handshake(mc_upconn_t *u)
{
    int r = mc_stream_handshake(&u->st);
    if (r == 0)
        return;
    mc_stats_shard_t *st = u->w->stats;
    mc_timer_cancel(&u->w->loop.timers, &u->timer);
    if (r < 0) {
        mc_tls_count_failure(st, u->cluster_scope, u->st.ssl, MC_TLS_UPSTREAM);
        connected(u, 0);
        return;
    }
    mc_stat_inc(st, u->cluster_scope, MC_CLUSTER_SSL_HANDSHAKE);
    if (SSL_session_reused(u->st.ssl))
        mc_stat_inc(st, u->cluster_scope, MC_CLUSTER_SSL_SESSION_REUSED);
    mc_tls_peer_uri(u->st.ssl, u->principal, sizeof(u->principal));
    u->readable = 1; /* read-ahead may hold records past the handshake */
    connected(u, 1);
}

/* TCP is up: the TLS handshake toward the upstream. 0 = started. */
static int start_tls(mc_upconn_t *u)
{
    mc_stream_set_ssl(&u->st, mc_tls_new_ssl(u->tls, u->io.fd));
    if (!u->st.ssl)
        return -1;
    mc_host_wpool_t *p = &u->host->wpools[u->w->id];
    if (p->tls_session)
        SSL_set_session(u->st.ssl, p->tls_session);
    u->state = UP_HANDSHAKE;
    mc_timer_arm(&u->w->loop.timers, &u->timer, u->w->loop.now + u->tls->handshake_timeout_ns);
    handshake(u);
    return 0;
}

static void on_io(mc_io_t *io, uint32_t ev)
{
    mc_upconn_t *u = mc_container_of(io, mc_upconn_t, io);
    if (u->state == UP_CLOSED)
        return;
    if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        u->readable = 1;
    if (ev & (EPOLLRDHUP | EPOLLHUP))
        u->rdhup = 1;
    if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))
        u->writable = 1;
    if (u->state == UP_CONNECTING) {
        if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        int ok = !(ev & EPOLLERR) && mc_sock_error(io->fd) == 0;
        mc_timer_cancel(&u->w->loop.timers, &u->timer);
        if (ok) {
            mc_stat_hist(u->w->stats, u->cluster_scope, MC_CLUSTER_H_UPSTREAM_CX_CONNECT_MS,
                         (mc_now_ns() - u->connect_start) / 1000);
            if (u->tls && start_tls(u) == 0)
                return; /* the handshake reports when it is done */
            ok = !u->tls;
        }
        connected(u, ok);
        return;
    }
    if (u->state == UP_HANDSHAKE) {
        handshake(u);
        return;
    }
    if (u->state == UP_IDLE) {
        /* Nothing is expected from an idle connection: EOF or stray bytes
         * both mean it cannot carry another request. Over TLS a readable
         * socket may only carry post-handshake messages (TLS 1.3 session
         * tickets): read to tell them apart. */
        if (u->st.ssl && !u->rdhup) {
            char b;
            ssize_t n = mc_stream_read(&u->st, &b, 1);
            if (n == MC_IO_AGAIN) {
                u->readable = 0;
                return;
            }
        }
        mc_upconn_close(u);
        return;
    }
    if (u->owner)
        mc_http_upstream_event(u->owner, u, UPEV_IO);
}

mc_upconn_t *mc_upconn_open(mc_worker_t *w, const mc_cluster_t *c, uint32_t endpoint, mc_http_stream_t *owner)
{
    const mc_endpoint_t *e = &c->endpoints[endpoint];
    mc_upconn_t *u = mc_pool_get(&mc_proxy_of(w)->upconns);
    if (!u)
        return NULL;
    int in_progress;
    int fd = mc_sock_connect(&e->addr, &in_progress);
    u->w = w;
    u->io.fd = fd;
    u->io.cb = on_io;
    u->st.fd = fd;
    if (c->tls) {
        u->tls = c->tls;
        mc_tls_ctx_ref(u->tls);
    }
    mc_list_init(&u->link);
    mc_timer_init(&u->timer, on_timer);
    u->host = e->host;
    u->cstate = c->state;
    __atomic_add_fetch(&u->host->refcnt, 1, __ATOMIC_RELAXED);
    mc_cluster_state_ref(u->cstate);
    __atomic_add_fetch(&u->cstate->cx_active, 1, __ATOMIC_RELAXED);
    u->cstate->wconns[w->id]++;
    u->cluster_scope = c->scope;
    u->host_scope = e->host_scope;
    u->idle_timeout_ns = c->idle_timeout_ns;
    u->max_requests = c->max_requests_per_connection;
    u->owner = owner;
    u->connect_start = mc_now_ns();
    u->state = UP_CONNECTING;
    mc_stats_shard_t *st = w->stats;
    mc_stat_inc(st, c->scope, MC_CLUSTER_UPSTREAM_CX_TOTAL);
    mc_stat_inc(st, c->scope, MC_CLUSTER_UPSTREAM_CX_ACTIVE);
    mc_stat_inc(st, e->host_scope, MC_HOST_CX_TOTAL);
    mc_stat_inc(st, e->host_scope, MC_HOST_CX_ACTIVE);
    if (fd < 0 || mc_loop_add_et(&w->loop, &u->io) < 0) {
        /* Reported to the owner as a failed connect from the timer, so the
         * caller's own state is settled first (refused at once on loopback). */
        u->failed = 1;
        if (fd >= 0) {
            close(fd);
            u->io.fd = u->st.fd = -1;
        }
        mc_timer_arm(&w->loop.timers, &u->timer, w->loop.now);
        return u;
    }
    /* A connect that completed at once is reported like any other: adding
     * the socket edge-triggered raises EPOLLOUT right away. */
    (void)in_progress;
    mc_timer_arm(&w->loop.timers, &u->timer, w->loop.now + c->connect_timeout_ns);
    return u;
}

mc_upconn_t *mc_upconn_take_idle(mc_worker_t *w, mc_host_state_t *h)
{
    mc_host_wpool_t *p = &h->wpools[w->id];
    while (!mc_list_empty(&p->idle)) {
        mc_upconn_t *u = mc_container_of(p->idle.next, mc_upconn_t, link);
        mc_list_remove(&u->link);
        p->n_idle--;
        u->state = UP_BUSY;
        mc_timer_cancel(&w->loop.timers, &u->timer);
        if (u->rdhup) { /* closed upstream since it was pooled */
            mc_upconn_close(u);
            continue;
        }
        mc_stat_inc(w->stats, u->cluster_scope, MC_CLUSTER_UPSTREAM_CX_REUSED);
        return u;
    }
    return NULL;
}

void mc_upconn_release(mc_upconn_t *u, int reusable)
{
    mc_worker_t *w = u->w;
    if (u->is_h2) { /* the stream ends; the session stays in its pool */
        (void)reusable;
        mc_h2up_release(u);
        return;
    }
    u->owner = NULL;
    if (!reusable || u->rdhup || (u->max_requests && u->requests >= u->max_requests) ||
        mc_hbuf_len(&u->in) != 0) {
        mc_upconn_close(u); /* wakes a pending request itself */
        return;
    }
    mc_hbuf_release(w, &u->in);
    keep_tls_session(u, 0);
    mc_host_wpool_t *p = &u->host->wpools[w->id];
    u->state = UP_IDLE;
    u->last_used = w->loop.now;
    /* newest first, so the warmest connection is reused */
    u->link.next = p->idle.next;
    u->link.prev = &p->idle;
    p->idle.next->prev = &u->link;
    p->idle.next = &u->link;
    p->n_idle++;
    if (u->idle_timeout_ns)
        mc_timer_arm(&w->loop.timers, &u->timer, w->loop.now + u->idle_timeout_ns);
    wake_pending(w, u->cstate);
}

int mc_upconn_shed_idle(mc_worker_t *w, const mc_cluster_t *c)
{
    for (uint32_t i = 0; i < c->n_endpoints; i++) {
        mc_host_wpool_t *p = &c->endpoints[i].host->wpools[w->id];
        if (!mc_list_empty(&p->idle)) {
            /* the oldest: it is the least likely to be wanted soon */
            mc_upconn_close(mc_container_of(p->idle.prev, mc_upconn_t, link));
            return 1;
        }
    }
    return 0;
}

/* ---- response bodies (HTTP/1.1 framing) --------------------------------------- */

/* For an HTTP/1.0 client: consumes chunk framing from the upstream buffer
 * until chunk data is next, then offers that data (resp_ready) to be
 * written from the buffer as usual. Framing is walked a byte at a time;
 * it is a few bytes per chunk, the data is skipped in bulk. */
static int dechunk_response(mc_http_stream_t *s, mc_upconn_t *u, uint32_t avail)
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

int mc_http_scan_response(mc_http_stream_t *s, mc_upconn_t *u)
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

int mc_http_read_response(mc_http_stream_t *s, mc_upconn_t *u)
{
    if (!u->readable)
        return 0;
    ssize_t n = mc_upconn_fill(u, 1024);
    if (n > 0)
        return 1;
    if (n == MC_IO_AGAIN)
        return 0;
    if (n == 0 && s->resp_body == MC_H1_BODY_UNTIL_CLOSE) {
        s->resp_done = 1;
        s->resp_keep_upstream = 0;
        return 1;
    }
    mc_stat_inc(u->w->stats, u->cluster_scope, MC_CLUSTER_UPSTREAM_RQ_RX_RESET);
    if (mc_upconn_failure(u) == MC_TRY_REMOTE_RESET)
        s->flags |= MC_RF_UR; /* RST_STREAM mid-body */
    return -1;
}
