/*
 * TCP proxy session (envoy.filters.network.tcp_proxy).
 *
 * Theory of operation. A session joins two sockets, `down` (accepted) and
 * `up` (connected to an endpoint), and moves bytes in two independent
 * directions (d2u, u2d). Both sockets are registered edge-triggered once;
 * each end keeps `readable`/`writable` flags that events set and EAGAIN
 * clears. A direction moves data while its source is readable and its
 * destination writable, within a per-call budget (the rest is posted as a
 * task so one busy connection cannot starve the others).
 *
 * States: [HANDSHAKE (downstream TLS)] -> CONNECTING (upstream connect in
 * flight; downstream bytes wait in the kernel) -> [UP_HANDSHAKE (upstream
 * TLS)] -> ESTABLISHED -> CLOSED. A failed or timed-out connect (or
 * upstream handshake) is retried on another endpoint until
 * max_connect_attempts is reached.
 *
 * TLS on either end goes through mc_stream (net/stream.h); splice needs
 * plaintext on both ends, so a TLS session always relays.
 *
 * Moving bytes (see mc_splice_mode_t): in relay mode a read lands in the
 * worker's scratch buffer and is written out at once; only bytes the
 * destination would not take are copied to a per-session buffer (<= one
 * read), and the source is not read again until they are gone. A read that
 * fills the scratch buffer marks a bulk transfer and switches the direction
 * to splice(2) through a pipe, so large bodies never enter user space.
 *
 * Half-close: when a source reaches EOF and everything read has been
 * written, the destination's write side is shut down; the other direction
 * keeps flowing. The session ends when both directions are done, on an
 * error (both sockets closed), on the idle timeout, or at drain deadline.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include "core/clock.h"
#include "meshcore/balancer.h"
#include "net/stream.h"
#include "net/tls.h"
#include "stats/response_flags.h"
#include "proxy/tcp_proxy.h"
#include "route/picker.h"

#define PUMP_BUDGET (1u << 20) /* bytes per direction per call */
#define PIPE_SIZE 65536u

enum { HANDSHAKE = 1, CONNECTING, UP_HANDSHAKE, ESTABLISHED, CLOSED };

typedef struct tcp_session tcp_session_t;

typedef struct end {
    mc_io_t io;
    mc_stream_t st; /* st.fd == io.fd */
    tcp_session_t *s;
    uint8_t readable, writable, rdhup;
} end_t;

typedef struct dir {
    end_t *src, *dst;
    mc_pipe_t pipe; /* r < 0 while not splicing */
    uint32_t in_pipe;
    char *pend; /* bytes the destination did not take; from the worker's buffer pool */
    uint32_t pend_off, pend_len;
    uint8_t splice, eof, shut;
    uint8_t upstream_bound; /* 1 for d2u: writes go upstream */
} dir_t;

struct tcp_session {
    mc_session_t base;
    mc_task_t task;
    mc_timer_t timer;
    mc_worker_t *w;
    mc_wctx_t *ctx;
    const mc_listener_t *l;
    const mc_chain_t *ch;
    const mc_cluster_t *c;
    uint32_t cidx;
    uint32_t ep; /* UINT32_MAX when no upstream socket is open */
    uint32_t tried[MC_TRIED_MAX]; /* endpoints tried: a reconnect goes elsewhere */
    uint8_t n_tried;
    uint32_t attempts;
    uint8_t state;
    mc_admission_t adm;
    end_t down, up;
    dir_t d2u, u2d;
    uint64_t start_ns, connect_start_ns, last_activity;
    uint64_t start_us;          /* wall clock, for the access log */
    uint64_t rx_bytes, tx_bytes; /* downstream bytes in / out */
    uint32_t last_ep;
    mc_addr_t peer;
    char down_principal[128], up_principal[128];
    const char *denied_by; /* the RBAC policy that refused the connection */
    mc_im_set_t *im;       /* Istio metrics label set while established, or NULL */
};

size_t mc_tcp_proxy_session_size(void)
{
    return sizeof(tcp_session_t);
}

static void run(tcp_session_t *s);
static void connect_next(tcp_session_t *s);
static void task_run(mc_task_t *t);

#define STATS(s) ((s)->w->stats)

/* ---- teardown ------------------------------------------------------- */

static void free_task(mc_task_t *t)
{
    tcp_session_t *s = mc_container_of(t, tcp_session_t, task);
    mc_worker_t *w = s->w;
    mc_wctx_unpin(s->ctx);
    mc_pool_put(&mc_proxy_of(w)->tcp_sessions, s);
}

static void release_dir(tcp_session_t *s, dir_t *d)
{
    mc_pipe_put(&s->w->pipes, &d->pipe, d->in_pipe == 0);
    if (d->pend) {
        mc_pool_put(&s->w->bufs, d->pend);
        d->pend = NULL;
    }
}

/* Closes the upstream socket (if any) and returns its counters. */
static void release_upstream(tcp_session_t *s)
{
    if (s->ep == UINT32_MAX)
        return;
    mc_stats_shard_t *st = STATS(s);
    const mc_endpoint_t *e = &s->c->endpoints[s->ep];
    mc_stream_close(&s->up.st);
    s->up.io.fd = -1;
    mc_stat_add(st, s->c->scope, MC_CLUSTER_UPSTREAM_CX_ACTIVE, -1);
    mc_stat_inc(st, s->c->scope, MC_CLUSTER_UPSTREAM_CX_DESTROY);
    mc_stat_add(st, e->host_scope, MC_HOST_CX_ACTIVE, -1);
    s->ctx->clusters[s->cidx].active[s->ep]--;
    if (s->state == ESTABLISHED)
        mc_stat_hist(st, s->c->scope, MC_CLUSTER_H_UPSTREAM_CX_LENGTH_MS,
                     (s->w->loop.now - s->connect_start_ns) / 1000);
    s->ep = UINT32_MAX;
}

static void log_session(tcp_session_t *s)
{
    const mc_tcp_proxy_t *t = &s->ch->tcp;
    if (!t->access_log_id)
        return;
    mc_alog_record_t *r = mc_alog_reserve(&s->w->alog);
    if (!r)
        return;
    memset(r, 0, sizeof(*r));
    r->log_id = t->access_log_id;
    r->kind = MC_ALOG_TCP;
    r->start_us = s->start_us;
    r->duration_us = (s->w->loop.now - s->start_ns) / 1000;
    r->upstream_service_us = -1;
    r->attempts = s->attempts;
    r->bytes_rx = s->rx_bytes;
    r->bytes_tx = s->tx_bytes;
    if (s->denied_by)
        snprintf(r->details, sizeof(r->details), "rbac_access_denied_matched_policy[%s]",
                 s->denied_by[0] ? s->denied_by : "none");
    else if (s->state != ESTABLISHED)
        r->flags = MC_RF_UF;
    if (s->c) {
        snprintf(r->upstream_cluster, sizeof(r->upstream_cluster), "%s", s->c->name);
        if (s->last_ep < s->c->n_endpoints)
            snprintf(r->upstream_host, sizeof(r->upstream_host), "%s", s->c->endpoints[s->last_ep].name);
    }
    mc_addr_format(&s->peer, r->downstream_peer, sizeof(r->downstream_peer));
    memcpy(r->downstream_principal, s->down_principal, sizeof(r->downstream_principal));
    memcpy(r->upstream_principal, s->up_principal, sizeof(r->upstream_principal));
    mc_alog_commit(&s->w->alog);
}

/* The Istio metrics label set of this connection (istio.stats on the
 * chain), or NULL. */
static mc_im_set_t *im_set(tcp_session_t *s, uint32_t flags)
{
    const mc_im_cfg_t *im = &s->ch->im;
    if (im->reporter == MC_IM_REPORTER_NONE)
        return NULL;
    mc_im_key_t k;
    memset(&k, 0, sizeof(k));
    k.reporter = im->reporter;
    k.protocol = MC_IM_PROTO_TCP;
    k.flags = flags;
    k.service = s->c ? s->c->im_service : 0;
    const char *p = im->reporter == MC_IM_DESTINATION ? s->down_principal : s->up_principal;
    k.principal = mc_im_principal(&s->w->im, p, strlen(p));
    if (im->reporter == MC_IM_DESTINATION)
        k.security = s->down_principal[0] ? MC_IM_SEC_MUTUAL_TLS : MC_IM_SEC_NONE;
    return mc_im_find(&s->w->im, &k);
}

static void im_close(tcp_session_t *s)
{
    if (s->ch->im.reporter == MC_IM_REPORTER_NONE)
        return;
    uint32_t flags = s->state == ESTABLISHED || s->denied_by ? 0 : MC_RF_UF;
    mc_im_set_t *set = s->im;
    if (!set || flags) { /* never established: opened and closed at once */
        set = im_set(s, flags);
        if (set)
            mc_im_add(&set->tcp_opened, 1);
    }
    if (set)
        mc_im_add(&set->tcp_closed, 1);
}

static void close_session(tcp_session_t *s)
{
    if (s->state == CLOSED)
        return;
    log_session(s);
    im_close(s);
    mc_worker_t *w = s->w;
    release_upstream(s);
    s->state = CLOSED;
    mc_timer_cancel(&w->loop.timers, &s->timer);
    mc_stream_close(&s->down.st);
    s->down.io.fd = -1;
    release_dir(s, &s->d2u);
    release_dir(s, &s->u2d);
    mc_listener_cx_close(w, s->l, &s->adm);
    mc_session_list_remove(&w->sessions, &s->base);
    /* Events for these sockets may still be in this loop turn's batch;
     * free only after it (the handlers see CLOSED and return). */
    mc_loop_post(&w->loop, &s->task, free_task);
}

static void abort_session(mc_session_t *base)
{
    close_session(mc_container_of(base, tcp_session_t, base));
}

/* ---- moving bytes ----------------------------------------------------- */

static void count_written(tcp_session_t *s, dir_t *d, size_t n, int spliced)
{
    mc_stats_shard_t *st = STATS(s);
    uint32_t tcp = s->ch->tcp.scope, cl = s->c->scope;
    if (d->upstream_bound) {
        s->rx_bytes += n;
        mc_stat_add(st, tcp, MC_TCP_DOWNSTREAM_CX_RX_BYTES_TOTAL, (int64_t)n);
        mc_stat_add(st, cl, MC_CLUSTER_UPSTREAM_CX_TX_BYTES_TOTAL, (int64_t)n);
    } else {
        s->tx_bytes += n;
        mc_stat_add(st, tcp, MC_TCP_DOWNSTREAM_CX_TX_BYTES_TOTAL, (int64_t)n);
        mc_stat_add(st, cl, MC_CLUSTER_UPSTREAM_CX_RX_BYTES_TOTAL, (int64_t)n);
    }
    if (spliced)
        mc_stat_add(st, tcp, MC_TCP_SPLICED_BYTES_TOTAL, (int64_t)n);
    if (s->im)
        mc_im_add(d->upstream_bound ? &s->im->tcp_received : &s->im->tcp_sent, n);
    s->last_activity = s->w->loop.now;
}

static int has_pending(const dir_t *d)
{
    return d->pend_off < d->pend_len || d->in_pipe > 0;
}

/* Writes pending bytes until none are left or the destination would block.
 * Returns -1 on a write error. */
static int flush(tcp_session_t *s, dir_t *d)
{
    int fd = d->dst->io.fd;
    while (d->pend_off < d->pend_len) {
        ssize_t n = mc_stream_write(&d->dst->st, d->pend + d->pend_off, d->pend_len - d->pend_off);
        if (n > 0) {
            d->pend_off += (uint32_t)n;
            count_written(s, d, (size_t)n, 0);
        } else if (n == MC_IO_AGAIN) {
            d->dst->writable = 0;
            return 0;
        } else {
            return -1;
        }
    }
    if (d->pend) {
        mc_pool_put(&s->w->bufs, d->pend);
        d->pend = NULL;
        d->pend_off = d->pend_len = 0;
    }
    while (d->in_pipe > 0) {
        ssize_t n = splice(d->pipe.r, NULL, fd, NULL, d->in_pipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n > 0) {
            d->in_pipe -= (uint32_t)n;
            count_written(s, d, (size_t)n, 1);
        } else if (n < 0 && errno == EAGAIN) {
            d->dst->writable = 0;
            return 0;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            return -1;
        }
    }
    return 0;
}

static void start_splice(tcp_session_t *s, dir_t *d)
{
    if (mc_pipe_get(&s->w->pipes, &d->pipe) == 0)
        d->splice = 1;
    else
        d->pipe.r = d->pipe.w = -1; /* out of descriptors: keep relaying */
}

/* Relay mode: one read into scratch, written out at once. Returns bytes
 * read, 0 at EOF, -1 on EAGAIN (source drained), -2 on error. */
static ssize_t relay(tcp_session_t *s, dir_t *d)
{
    mc_worker_t *w = s->w;
    ssize_t n = mc_stream_read(&d->src->st, w->scratch, sizeof(w->scratch));
    if (n <= 0) {
        if (n == 0)
            return 0;
        return n == MC_IO_AGAIN ? -1 : -2;
    }
    /* A short read drained a plaintext socket (stream semantics): no need
     * for a second recv to see EAGAIN, unless the peer's FIN is pending. */
    if ((size_t)n < sizeof(w->scratch) && !d->src->rdhup && mc_stream_short_read_drains(&d->src->st))
        d->src->readable = 0;
    size_t off = 0;
    while (off < (size_t)n) {
        ssize_t m = mc_stream_write(&d->dst->st, w->scratch + off, (size_t)n - off);
        if (m > 0) {
            off += (size_t)m;
        } else if (m == MC_IO_AGAIN) {
            d->dst->writable = 0;
            break;
        } else {
            return -2;
        }
    }
    if (off)
        count_written(s, d, off, 0);
    if (off < (size_t)n) {
        d->pend = mc_pool_get_raw(&w->bufs);
        if (!d->pend)
            return -2;
        memcpy(d->pend, w->scratch + off, (size_t)n - off);
        d->pend_off = 0;
        d->pend_len = (uint32_t)((size_t)n - off);
    }
    if ((size_t)n == sizeof(w->scratch) && w->splice == MC_SPLICE_AUTO && !d->src->st.ssl && !d->dst->st.ssl)
        start_splice(s, d);
    return n;
}

/* Splice mode: socket -> pipe. Same return convention as relay(). */
static ssize_t fill_pipe(tcp_session_t *s, dir_t *d)
{
    ssize_t n = splice(d->src->io.fd, NULL, d->pipe.w, NULL, PIPE_SIZE - d->in_pipe,
                       SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n > 0) {
        d->in_pipe += (uint32_t)n;
        return n;
    }
    if (n == 0)
        return 0;
    if (errno == EINTR)
        return 1;
    if (errno == EAGAIN) {
        /* EAGAIN means the socket is empty or the pipe is out of slots
         * (many small segments). Only an empty pipe proves the former. */
        return d->in_pipe == 0 ? -1 : 1;
    }
    if (errno == EINVAL || errno == ENOSYS) {
        /* No splice for this socket type: fall back to relaying for good. */
        if (d->in_pipe == 0) {
            mc_pipe_put(&s->w->pipes, &d->pipe, 1);
            d->splice = 0;
            mc_stat_inc(STATS(s), s->w->server_scope, MC_SERVER_SPLICE_FALLBACK);
        }
        return 1;
    }
    return -2;
}

/* Moves one direction as far as it can go now. Returns -1 if the session
 * was closed. */
static int pump(tcp_session_t *s, dir_t *d)
{
    size_t budget = PUMP_BUDGET;
    for (;;) {
        if (has_pending(d)) {
            if (!d->dst->writable)
                return 0;
            if (flush(s, d) < 0) {
                close_session(s);
                return -1;
            }
            if (has_pending(d))
                return 0;
        }
        if (d->eof) {
            if (!d->shut) {
                mc_stream_shutdown(&d->dst->st);
                d->shut = 1;
                if (d->upstream_bound)
                    mc_stat_inc(STATS(s), s->ch->tcp.scope, MC_TCP_UPSTREAM_FLUSH_TOTAL);
            }
            return 0;
        }
        if (!d->src->readable || !d->dst->writable)
            return 0;
        if (budget == 0) {
            mc_loop_post(&s->w->loop, &s->task, task_run);
            return 0;
        }
        ssize_t n = d->splice ? fill_pipe(s, d) : relay(s, d);
        if (n > 0) {
            budget = (size_t)n >= budget ? 0 : budget - (size_t)n;
        } else if (n == 0) {
            d->eof = 1;
        } else if (n == -1) {
            d->src->readable = 0;
        } else {
            close_session(s);
            return -1;
        }
    }
}

static void task_run(mc_task_t *t)
{
    tcp_session_t *s = mc_container_of(t, tcp_session_t, task);
    if (s->state == ESTABLISHED)
        run(s);
}

static void run(tcp_session_t *s)
{
    if (pump(s, &s->d2u) < 0 || pump(s, &s->u2d) < 0)
        return;
    if (s->d2u.eof && s->d2u.shut && !has_pending(&s->d2u) && s->u2d.eof && s->u2d.shut &&
        !has_pending(&s->u2d))
        close_session(s);
}

/* ---- upstream connect ------------------------------------------------- */

static void connect_failed(tcp_session_t *s, int timed_out)
{
    mc_stats_shard_t *st = STATS(s);
    mc_stat_inc(st, s->c->scope, MC_CLUSTER_UPSTREAM_CX_CONNECT_FAIL);
    if (timed_out)
        mc_stat_inc(st, s->c->scope, MC_CLUSTER_UPSTREAM_CX_CONNECT_TIMEOUT);
    mc_stat_inc(st, s->c->endpoints[s->ep].host_scope, MC_HOST_CX_CONNECT_FAIL);
    mc_timer_cancel(&s->w->loop.timers, &s->timer);
    release_upstream(s);
    if (s->attempts < s->ch->tcp.max_connect_attempts) {
        mc_stat_inc(st, s->c->scope, MC_CLUSTER_UPSTREAM_CX_CONNECT_RETRY);
        connect_next(s);
        return;
    }
    if (s->ch->tcp.max_connect_attempts > 1)
        mc_stat_inc(st, s->c->scope, MC_CLUSTER_UPSTREAM_CX_CONNECT_ATTEMPTS_EXCEEDED);
    close_session(s);
}

static void established(tcp_session_t *s);
static void connect_failed(tcp_session_t *s, int timed_out);

/* Upstream TLS handshake step (UP_HANDSHAKE). */
static void up_handshake(tcp_session_t *s)
{
    int r = mc_stream_handshake(&s->up.st);
    if (r == 0)
        return;
    if (r < 0) {
        mc_tls_count_failure(STATS(s), s->c->scope, s->up.st.ssl, MC_TLS_UPSTREAM);
        connect_failed(s, 0);
        return;
    }
    mc_stat_inc(STATS(s), s->c->scope, MC_CLUSTER_SSL_HANDSHAKE);
    mc_tls_peer_uri(s->up.st.ssl, s->up_principal, sizeof(s->up_principal));
    s->up.readable = 1; /* read-ahead may hold records past the handshake */
    established(s);
}

static void on_connected(tcp_session_t *s)
{
    mc_worker_t *w = s->w;
    mc_timer_cancel(&w->loop.timers, &s->timer);
    mc_stat_hist(STATS(s), s->c->scope, MC_CLUSTER_H_UPSTREAM_CX_CONNECT_MS,
                 (mc_now_ns() - s->connect_start_ns) / 1000);
    s->up.writable = 1;
    if (s->c->tls) {
        mc_stream_set_ssl(&s->up.st, mc_tls_new_ssl(s->c->tls, s->up.io.fd));
        if (!s->up.st.ssl) {
            connect_failed(s, 0);
            return;
        }
        s->state = UP_HANDSHAKE;
        mc_timer_arm(&w->loop.timers, &s->timer, w->loop.now + s->c->tls->handshake_timeout_ns);
        up_handshake(s);
        return;
    }
    established(s);
}

static void established(tcp_session_t *s)
{
    mc_worker_t *w = s->w;
    mc_timer_cancel(&w->loop.timers, &s->timer);
    s->state = ESTABLISHED;
    s->last_activity = w->loop.now;
    s->im = im_set(s, 0);
    if (s->im)
        mc_im_add(&s->im->tcp_opened, 1);
    if (s->ch->tcp.idle_timeout_ns)
        mc_timer_arm(&w->loop.timers, &s->timer, w->loop.now + s->ch->tcp.idle_timeout_ns);
    if (w->splice == MC_SPLICE_ALWAYS && !s->down.st.ssl && !s->up.st.ssl) {
        start_splice(s, &s->d2u);
        start_splice(s, &s->u2d);
    }
    run(s);
}

static void connect_next(tcp_session_t *s)
{
    mc_worker_t *w = s->w;
    mc_stats_shard_t *st = STATS(s);
    const mc_cluster_t *c = s->c;
    if (c->n_endpoints == 0) {
        mc_stat_inc(st, c->scope, MC_CLUSTER_UPSTREAM_CX_NONE_HEALTHY);
        close_session(s);
        return;
    }
    mc_pick_t pick = {.tried = s->tried, .n_tried = s->n_tried};
    uint32_t ep = mc_pick_endpoint(c, &s->ctx->clusters[s->cidx], &w->rand, w->loop.now, &pick);
    const mc_endpoint_t *e = &c->endpoints[ep];
    s->ep = ep;
    s->last_ep = ep;
    if (s->n_tried < MC_TRIED_MAX)
        s->tried[s->n_tried++] = ep;
    s->attempts++;
    s->ctx->clusters[s->cidx].active[ep]++;
    mc_stat_inc(st, c->scope, MC_CLUSTER_UPSTREAM_CX_TOTAL);
    mc_stat_inc(st, c->scope, MC_CLUSTER_UPSTREAM_CX_ACTIVE);
    mc_stat_inc(st, e->host_scope, MC_HOST_CX_TOTAL);
    mc_stat_inc(st, e->host_scope, MC_HOST_CX_ACTIVE);
    s->connect_start_ns = mc_now_ns();
    s->up.readable = s->up.writable = s->up.rdhup = 0;
    int in_progress;
    int fd = mc_sock_connect(&e->addr, &in_progress);
    s->up.io.fd = fd;
    s->up.st = (mc_stream_t){.fd = fd};
    if (fd < 0) {
        connect_failed(s, 0);
        return;
    }
    if (mc_loop_add_et(&w->loop, &s->up.io) < 0) {
        connect_failed(s, 0);
        return;
    }
    if (!in_progress) {
        on_connected(s);
        return;
    }
    mc_timer_arm(&w->loop.timers, &s->timer, w->loop.now + c->connect_timeout_ns);
}

/* ---- events ------------------------------------------------------------ */

static void on_timer(mc_timer_t *t)
{
    tcp_session_t *s = mc_container_of(t, tcp_session_t, timer);
    mc_worker_t *w = s->w;
    if (s->state == CONNECTING || s->state == UP_HANDSHAKE) {
        connect_failed(s, 1);
        return;
    }
    if (s->state == HANDSHAKE) { /* the client never finished its handshake */
        mc_stat_inc(STATS(s), s->l->scope, MC_LISTENER_SSL_CONNECTION_ERROR);
        close_session(s);
        return;
    }
    if (s->state != ESTABLISHED)
        return;
    uint64_t idle = s->ch->tcp.idle_timeout_ns;
    uint64_t deadline = s->last_activity + idle;
    if (deadline > w->loop.now) { /* activity since arming: sleep the rest */
        mc_timer_arm(&w->loop.timers, &s->timer, deadline);
        return;
    }
    mc_stat_inc(STATS(s), s->ch->tcp.scope, MC_TCP_IDLE_TIMEOUT);
    close_session(s);
}

static void start_upstream(tcp_session_t *s);

/* Downstream TLS handshake step (HANDSHAKE); then the upstream side. */
static void down_handshake(tcp_session_t *s)
{
    int r = mc_stream_handshake(&s->down.st);
    if (r == 0)
        return;
    if (r < 0) {
        mc_tls_count_failure(STATS(s), s->l->scope, s->down.st.ssl, MC_TLS_DOWNSTREAM);
        close_session(s);
        return;
    }
    mc_stat_inc(STATS(s), s->l->scope, MC_LISTENER_SSL_HANDSHAKE);
    mc_tls_peer_uri(s->down.st.ssl, s->down_principal, sizeof(s->down_principal));
    s->down.readable = 1; /* read-ahead may have buffered the client's first bytes */
    mc_timer_cancel(&s->w->loop.timers, &s->timer);
    start_upstream(s);
}

static void mark(end_t *e, uint32_t ev)
{
    if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        e->readable = 1;
    if (ev & (EPOLLRDHUP | EPOLLHUP))
        e->rdhup = 1;
    if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))
        e->writable = 1;
}

static void on_down(mc_io_t *io, uint32_t ev)
{
    end_t *e = mc_container_of(io, end_t, io);
    tcp_session_t *s = e->s;
    if (s->state == CLOSED)
        return;
    mark(e, ev);
    if (s->state == HANDSHAKE) {
        down_handshake(s);
        return;
    }
    if (s->state == CONNECTING || s->state == UP_HANDSHAKE) {
        if (ev & EPOLLERR) /* client reset while we were connecting */
            close_session(s);
        return;
    }
    run(s);
}

static void on_up(mc_io_t *io, uint32_t ev)
{
    end_t *e = mc_container_of(io, end_t, io);
    tcp_session_t *s = e->s;
    if (s->state == CLOSED)
        return;
    mark(e, ev);
    if (s->state == CONNECTING) {
        if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        if (mc_sock_error(io->fd) == 0 && !(ev & EPOLLERR))
            on_connected(s);
        else
            connect_failed(s, 0);
        return;
    }
    if (s->state == UP_HANDSHAKE) {
        up_handshake(s);
        return;
    }
    run(s);
}

/* ---- accept ------------------------------------------------------------- */

void mc_tcp_proxy_accept(mc_worker_t *w, mc_wctx_t *ctx, const mc_listener_t *l, const mc_chain_t *ch, int fd,
                         const mc_addr_t *peer, const mc_admission_t *adm)
{
    mc_stats_shard_t *st = w->stats;
    tcp_session_t *s = mc_pool_get(&mc_proxy_of(w)->tcp_sessions);
    if (!s) {
        mc_admission_t a = *adm;
        mc_listener_overflow(w, l, &a, fd);
        return;
    }
    s->base.abort = abort_session;
    s->w = w;
    s->ctx = ctx;
    mc_wctx_pin(ctx);
    s->l = l;
    s->ch = ch;
    s->adm = *adm;
    s->ep = UINT32_MAX;
    s->last_ep = UINT32_MAX;
    s->state = CONNECTING;
    s->start_ns = w->loop.now;
    if (peer)
        s->peer = *peer;
    if (ch->tcp.access_log_id) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        s->start_us = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
    }
    mc_timer_init(&s->timer, on_timer);
    s->down = (end_t){.io = {.fd = fd, .cb = on_down}, .st = {.fd = fd}, .s = s, .writable = 1};
    s->up = (end_t){.io = {.fd = -1, .cb = on_up}, .st = {.fd = -1}, .s = s};
    s->d2u = (dir_t){.src = &s->down, .dst = &s->up, .pipe = {-1, -1}, .upstream_bound = 1};
    s->u2d = (dir_t){.src = &s->up, .dst = &s->down, .pipe = {-1, -1}};
    mc_session_list_add(&w->sessions, &s->base);
    mc_listener_cx_open(w, l);
    mc_stat_inc(st, ch->tcp.scope, MC_TCP_DOWNSTREAM_CX_TOTAL);

    mc_sock_nodelay(fd);
    uint32_t k = ch->tcp.n_clusters == 1 ? 0
                                          : mc_lb_swrr(ctx->tcp_swrr[ch->gidx], ch->tcp.weights, ch->tcp.n_clusters,
                                                       MC_LB_SKIP_NONE);
    s->cidx = ch->tcp.cluster_idx[k];
    s->c = &ctx->snap->clusters[s->cidx];
    if (mc_loop_add_et(&w->loop, &s->down.io) < 0) {
        close_session(s);
        return;
    }
    if (ch->tls) {
        mc_stream_set_ssl(&s->down.st, mc_tls_new_ssl(ch->tls, fd));
        if (!s->down.st.ssl) {
            close_session(s);
            return;
        }
        s->state = HANDSHAKE;
        mc_timer_arm(&w->loop.timers, &s->timer, w->loop.now + ch->tls->handshake_timeout_ns);
        down_handshake(s);
        return;
    }
    start_upstream(s);
}

static void start_upstream(tcp_session_t *s)
{
    if (!mc_listener_net_rbac(s->w, s->l, s->ch, &s->peer, s->down_principal, &s->denied_by)) {
        close_session(s);
        return;
    }
    s->state = CONNECTING;
    connect_next(s);
}
