/*
 * The router filter: forwarding one request upstream in tries.
 *
 * Theory of operation. mc_http_forward() runs once the route is known: it
 * picks the cluster (a weighted split is a smooth WRR per worker), takes the
 * circuit breaker's request slot, applies fault injection, serializes the
 * upstream request head into `replay` and starts the first try. A try picks
 * an endpoint (skipping ejected hosts, and hosts already tried when the
 * retry policy has previous_hosts), takes a pooled connection or opens one
 * (or waits when the cluster's max_connections is reached), writes `replay`
 * and then streams any body that did not fit, and reads the response head.
 *
 * A try fails on a refused or timed-out connect, a reset before the response
 * head, its per-try timeout, or a retriable status. Then, if the policy,
 * the retry budget (num_retries, the cluster's max_retries breaker) and the
 * body (nothing streamed that `replay` cannot resend) allow, the next try
 * starts after a jittered exponential back-off; otherwise the client gets
 * the failure: the upstream's response, or a local 503/504 with Envoy's
 * response flag and wording.
 *
 * meshcore extension of previous_hosts: when every host of the chosen split
 * member has been tried, the retry moves to another member of the split
 * (Envoy would retry the same cluster again). This is what lets a 90/10
 * canary whose v2 fails still answer from v1.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/clock.h"
#include "meshcore/balancer.h"
#include "proxy/http_stream.h"
#include "route/hash_policy.h"
#include "route/picker.h"

#define STATS(s) ((s)->w->stats)
#define UPSTREAM_RESET "upstream connect error or disconnect/reset before headers. reset reason: "

static void start_try(mc_http_stream_t *s);
static void try_failed(mc_http_stream_t *s, int failure, int status);
static void send_upstream(mc_http_stream_t *s);
static void read_response_head(mc_http_stream_t *s);
static void arm_route_timeout(mc_http_stream_t *s);

static const mc_retry_policy_t *retry_policy(const mc_http_stream_t *s)
{
    if (!s->conn)
        return NULL; /* a mirror is fire-and-forget */
    if (s->route && s->route->has_retry)
        return &s->route->retry;
    if (s->vhost && s->vhost->has_retry)
        return &s->vhost->retry;
    return NULL;
}

/* ---- resources held by a request ---------------------------------------------- */

static void leave_pending(mc_http_stream_t *s)
{
    if (s->try_state == TRY_PENDING) {
        mc_list_remove(&s->pending_link);
        mc_stat_add(STATS(s), s->c->scope, MC_CLUSTER_UPSTREAM_RQ_PENDING_ACTIVE, -1);
        s->try_state = TRY_NONE;
    }
    if (s->pending_slot) {
        mc_cb_release(&s->c->state->rq_pending);
        s->pending_slot = 0;
    }
}

/* Ends the current try: the connection goes back to the pool if the
 * exchange completed cleanly, else it is closed. */
static void end_try(mc_http_stream_t *s, int reusable)
{
    leave_pending(s);
    mc_timer_cancel(&s->w->loop.timers, &s->try_timer);
    if (s->retry_cs) {
        mc_cb_release(&s->retry_cs->rq_retry_active);
        s->retry_cs = NULL;
    }
    if (s->up) {
        mc_upconn_t *u = s->up;
        s->up = NULL;
        mc_stat_add(STATS(s), u->host_scope, MC_HOST_RQ_ACTIVE, -1);
        if (u->state == UP_CONNECTING)
            mc_upconn_close(u);
        else
            mc_upconn_release(u, reusable);
    }
    if (s->c && s->ep != UINT32_MAX && s->ep < s->c->n_endpoints) {
        s->ctx->clusters[s->cidx].active[s->ep]--;
        s->ep = UINT32_MAX;
    }
}

void mc_http_forward_abort(mc_http_stream_t *s)
{
    int clean = s->try_state == TRY_RESPONDING && s->resp_done && s->resp_ready == 0 && s->resp_keep_upstream &&
                s->req_done && s->req_ready == 0 && !s->early_response;
    if (s->c)
        end_try(s, clean);
    if (s->rq_slot) {
        mc_cb_release(&s->c->state->rq_active);
        mc_stat_add(STATS(s), s->c->scope, MC_CLUSTER_UPSTREAM_RQ_ACTIVE, -1);
        s->rq_slot = 0;
    }
}

/* ---- choosing ------------------------------------------------------------------- */

static uint32_t pick_split(mc_http_stream_t *s)
{
    const mc_route_t *r = s->route;
    if (r->n_clusters == 1)
        return r->cluster_idx[0];
    int64_t *cur = s->ctx->route_swrr[s->ch->gidx][r->swrr_slot]; /* per filter chain */
    mc_lb_skip_t given_up = {&s->tried_clusters, 1}; /* members past 64 are never given up on */
    /* Weights may be swapped by mc_engine_set_route_weights: one acquire
     * load, used for this pick only (engine/engine_incremental.c). */
    const uint32_t *weights = __atomic_load_n(&r->weights, __ATOMIC_ACQUIRE);
    uint32_t k = mc_lb_swrr(cur, weights, r->n_clusters, given_up);
    return r->cluster_idx[k];
}

static void set_cluster(mc_http_stream_t *s, uint32_t cidx)
{
    s->cidx = cidx;
    s->c = &s->ctx->snap->clusters[cidx];
}

/* Picks an endpoint of s->c; UINT32_MAX when the cluster is empty. */
static uint32_t pick_endpoint(mc_http_stream_t *s)
{
    const mc_retry_policy_t *rp = retry_policy(s);
    int previous_hosts = rp && rp->previous_hosts;
    mc_pick_t p = {.tried = s->tried, .n_tried = previous_hosts ? s->n_tried : 0, .hash = s->hash,
                   .has_hash = s->has_hash};
    return mc_pick_endpoint(s->c, &s->ctx->clusters[s->cidx], &s->w->rand, s->w->loop.now, &p);
}

/* Every host of the cluster tried (picks avoid tried hosts until none is
 * left, so the tries so far are distinct). */
static int all_tried(const mc_http_stream_t *s)
{
    uint32_t n = s->c->n_endpoints;
    return n == 0 || (n <= MC_TRIED_MAX && s->n_tried >= n);
}

/* ---- the request body -------------------------------------------------------- */

/* Moves scanned body bytes into `replay` while they fit (they can then be
 * resent by a retry); what does not fit is streamed from `in`. */
static int take_body(mc_http_stream_t *s)
{
    for (;;) {
        if (s->codec->scan_body(s) < 0)
            return -1;
        if (!s->req_ready || !s->buffered)
            return 0;
        uint32_t room = s->replay.cap - s->replay.end;
        if (room < s->req_ready || s->replay.cap != MC_HTTP_BUF) {
            s->buffered = 0; /* too big to keep: stream the rest */
            return 0;
        }
        memcpy(s->replay.data + s->replay.end, s->rx->data + s->rx->start, s->req_ready);
        s->replay.end += s->req_ready;
        s->bytes_rx += s->req_ready;
        s->rx->start += s->req_ready;
        s->req_ready = 0;
    }
}

static void maybe_mirror(mc_http_stream_t *s)
{
    if (!s->mirror.data || s->mirrored || !s->req_done)
        return;
    s->mirrored = 1;
    if (s->buffered) /* the whole body is in replay: the shadow can have it */
        mc_http_mirror(s);
    mc_hbuf_release(s->w, &s->mirror);
}

void mc_http_forward_shadow(mc_http_stream_t *sh)
{
    mc_stats_shard_t *st = STATS(sh);
    sh->ep = UINT32_MAX;
    if (mc_cb_acquire(&sh->c->state->rq_active, sh->c->max_requests) < 0) {
        mc_stat_inc(st, sh->c->scope, MC_CLUSTER_UPSTREAM_RQ_OVERFLOW);
        sh->codec->reset(sh);
        return;
    }
    sh->rq_slot = 1;
    mc_stat_inc(st, sh->c->scope, MC_CLUSTER_UPSTREAM_RQ_ACTIVE);
    mc_stat_inc(st, sh->c->scope, MC_CLUSTER_UPSTREAM_RQ_MIRRORED);
    arm_route_timeout(sh);
    start_try(sh);
}

static void body_error(mc_http_stream_t *s)
{
    mc_stat_inc(STATS(s), s->hcm->scope, MC_HTTP_DOWNSTREAM_CX_PROTOCOL_ERROR);
    if (s->try_state >= TRY_SENDING && s->body_sent) {
        s->codec->reset(s);
        return;
    }
    mc_http_local_reply(s, 400, "bad request: malformed chunked body\n", MC_RF_DPE);
}

/* ---- starting ---------------------------------------------------------------- */

/* The request is read whole: the route timeout starts (Envoy). */
static void arm_route_timeout(mc_http_stream_t *s)
{
    if (!s->rq_done_ns)
        s->rq_done_ns = s->w->loop.now;
    mc_http_stream_rearm(s);
}

static int roll(mc_http_stream_t *s, uint32_t ppm)
{
    return ppm && mc_rand_below(&s->w->rand, 1000000) < ppm;
}

void mc_http_forward(mc_http_stream_t *s)
{
    mc_worker_t *w = s->w;
    mc_stats_shard_t *st = STATS(s);
    const mc_route_t *r = s->route;
    s->ep = UINT32_MAX;
    set_cluster(s, pick_split(s));
    if (r->n_hash)
        s->has_hash = (uint8_t)mc_route_hash(r, &s->req, &s->peer->addr, &s->hash);

    /* The whole upstream request head, serialized while the parsed views
     * are valid; retries resend it from here. */
    if (mc_hbuf_reserve(w, &s->replay, MC_HTTP_BUF) < 0) {
        s->codec->reset(s);
        return;
    }
    long n = mc_http_write_request_head(s, s->replay.data, s->replay.cap, NULL);
    if (n < 0) { /* head larger than a buffer: one-off buffer, streamed body */
        mc_hbuf_release(w, &s->replay);
        uint32_t big = s->head_len * 2 + 4096;
        if (mc_hbuf_reserve(w, &s->replay, big) < 0) {
            s->codec->reset(s);
            return;
        }
        n = mc_http_write_request_head(s, s->replay.data, s->replay.cap, NULL);
        if (n < 0) {
            mc_http_local_reply(s, 431, "request head too large after rewriting\n", 0);
            return;
        }
    }
    s->replay.end = (uint32_t)n;
    s->replay_head = (uint32_t)n;
    s->buffered = 1;
    for (uint32_t i = 0; i < r->n_mirrors && !s->mirror.data; i++) {
        if (!roll(s, r->mirrors[i].ppm))
            continue;
        if (mc_hbuf_reserve(w, &s->mirror, MC_HTTP_BUF) == 0) {
            long m = mc_http_write_request_head(s, s->mirror.data, s->mirror.cap, "-shadow");
            if (m < 0) {
                mc_hbuf_release(w, &s->mirror);
            } else {
                s->mirror.end = (uint32_t)m;
                s->mirror_cluster = r->mirrors[i].cluster_idx;
            }
        }
    }
    /* From here on the request head in `in` is not needed. */
    if (take_body(s) < 0) {
        body_error(s);
        return;
    }

    /* max_requests: a circuit breaker on requests in flight per cluster. */
    if (mc_cb_acquire(&s->c->state->rq_active, s->c->max_requests) < 0) {
        mc_stat_inc(st, s->c->scope, MC_CLUSTER_UPSTREAM_RQ_OVERFLOW);
        mc_http_local_reply(s, 503, UPSTREAM_RESET "overflow", MC_RF_UO);
        return;
    }
    s->rq_slot = 1;
    mc_stat_inc(st, s->c->scope, MC_CLUSTER_UPSTREAM_RQ_ACTIVE);
    if (s->req_done)
        arm_route_timeout(s);

    /* envoy.filters.http.fault: the route's override, else the filter's. */
    const mc_fault_t *f = r->fault.present ? &r->fault : s->hcm->fault.present ? &s->hcm->fault : NULL;
    if (f && f->abort_status && roll(s, f->abort_ppm)) {
        mc_stat_inc(st, s->hcm->scope, MC_HTTP_FAULT_ABORTS_INJECTED);
        mc_http_local_reply(s, f->abort_status, "fault filter abort", MC_RF_FI);
        return;
    }
    maybe_mirror(s);
    if (f && f->delay_ns && roll(s, f->delay_ppm)) {
        mc_stat_inc(st, s->hcm->scope, MC_HTTP_FAULT_DELAYS_INJECTED);
        s->flags |= MC_RF_DI;
        s->try_state = TRY_BACKOFF;
        mc_timer_arm(&w->loop.timers, &s->try_timer, w->loop.now + f->delay_ns);
        return;
    }
    start_try(s);
}

/* Takes the max_pending_requests slot that a request waiting for its
 * connection holds (Envoy counts it pending). -1: overflow, answered. */
static int hold_pending(mc_http_stream_t *s, int cx_overflow)
{
    const mc_cluster_t *c = s->c;
    if (s->pending_slot)
        return 0;
    if (mc_cb_acquire(&c->state->rq_pending, c->max_pending_requests) < 0) {
        mc_stat_inc(STATS(s), c->scope, MC_CLUSTER_UPSTREAM_RQ_PENDING_OVERFLOW);
        if (cx_overflow)
            mc_stat_inc(STATS(s), c->scope, MC_CLUSTER_UPSTREAM_CX_OVERFLOW);
        end_try(s, 0);
        mc_http_local_reply(s, 503, UPSTREAM_RESET "overflow", MC_RF_UO);
        return -1;
    }
    s->pending_slot = 1;
    mc_stat_inc(STATS(s), c->scope, MC_CLUSTER_UPSTREAM_RQ_PENDING_TOTAL);
    return 0;
}

/* Gets a connection for the current try: pooled, new, or wait. HTTP/2: a
 * stream slot on a pooled or new session (proxy/h2_upstream.c). */
static void acquire(mc_http_stream_t *s)
{
    mc_worker_t *w = s->w;
    const mc_cluster_t *c = s->c;
    int h2 = mc_upconn_wants_h2(s), wait = 0;
    mc_upconn_t *u;
    if (h2) {
        u = mc_h2up_acquire(w, c, s->ep, s, &wait);
    } else {
        u = mc_upconn_take_idle(w, c->endpoints[s->ep].host);
        /* At max_connections, wait for a connection of this worker to come
         * free, unless the worker has none to wait for (then open one: a
         * worker is never starved by the others, as an Envoy pool is not). */
        wait = !u && __atomic_load_n(&c->state->cx_active, __ATOMIC_RELAXED) >= (int64_t)c->max_connections &&
               c->state->wconns[w->id] > 0 && !mc_upconn_shed_idle(w, c);
    }
    if (wait) { /* within max_pending_requests */
        if (hold_pending(s, 1) < 0)
            return;
        s->try_state = TRY_PENDING;
        mc_list_push(&c->state->wpending[w->id], &s->pending_link);
        mc_stat_inc(STATS(s), c->scope, MC_CLUSTER_UPSTREAM_RQ_PENDING_ACTIVE);
        return;
    }
    if (!u && !h2) {
        if (hold_pending(s, 0) < 0)
            return;
        u = mc_upconn_open(w, c, s->ep, s);
    }
    if (!u) {
        end_try(s, 0);
        mc_http_local_reply(s, 503, UPSTREAM_RESET "local resource exhaustion", MC_RF_UF);
        return;
    }
    s->up = u;
    if (u->state == UP_CONNECTING) {
        if (hold_pending(s, 0) == 0)
            s->try_state = TRY_CONNECTING;
        return;
    }
    leave_pending(s);
    u->owner = s;
    s->try_state = TRY_SENDING;
    u->requests++;
    send_upstream(s);
}

static void start_try(mc_http_stream_t *s)
{
    mc_worker_t *w = s->w;
    mc_stats_shard_t *st = STATS(s);
    const mc_retry_policy_t *rp = retry_policy(s);
    /* previous_hosts: once this split member has no untried host, move on
     * to another member (see the top of this file). */
    if (s->tries && rp && rp->previous_hosts && all_tried(s) && s->route->n_clusters > 1) {
        for (uint32_t k = 0; k < s->route->n_clusters && k < 64; k++)
            if (s->route->cluster_idx[k] == s->cidx)
                s->tried_clusters |= 1ull << k;
        uint32_t next = pick_split(s);
        if (next != s->cidx) {
            mc_cb_release(&s->c->state->rq_active);
            mc_stat_add(st, s->c->scope, MC_CLUSTER_UPSTREAM_RQ_ACTIVE, -1);
            s->rq_slot = 0;
            set_cluster(s, next);
            s->n_tried = 0;
            if (mc_cb_acquire(&s->c->state->rq_active, s->c->max_requests) == 0) {
                s->rq_slot = 1;
                mc_stat_inc(st, s->c->scope, MC_CLUSTER_UPSTREAM_RQ_ACTIVE);
            }
        }
    }
    uint32_t ep = pick_endpoint(s);
    if (ep == UINT32_MAX) {
        mc_http_local_reply(s, 503, "no healthy upstream", MC_RF_UH);
        return;
    }
    s->ep = ep;
    s->last_ep = ep;
    if (s->n_tried < MC_TRIED_MAX)
        s->tried[s->n_tried++] = ep;
    s->tries++;
    s->try_start_ns = mc_now_ns();
    s->replay_sent = 0;
    s->early_response = 0;
    s->ctx->clusters[s->cidx].active[ep]++;
    mc_stat_inc(st, s->c->scope, MC_CLUSTER_UPSTREAM_RQ_TOTAL); /* per try, as Envoy */
    mc_stat_inc(st, s->c->endpoints[ep].host_scope, MC_HOST_RQ_TOTAL);
    mc_stat_inc(st, s->c->endpoints[ep].host_scope, MC_HOST_RQ_ACTIVE);
    if (rp && rp->per_try_timeout_ns)
        mc_timer_arm(&w->loop.timers, &s->try_timer, w->loop.now + rp->per_try_timeout_ns);
    acquire(s);
}

void mc_http_pending_wake(mc_http_stream_t *s)
{
    /* Off the wait list (keeping the pending slot until connected), and
     * re-run from the loop, not from inside the pool's own call. */
    mc_list_remove(&s->pending_link);
    mc_stat_add(STATS(s), s->c->scope, MC_CLUSTER_UPSTREAM_RQ_PENDING_ACTIVE, -1);
    s->try_state = TRY_WOKEN;
    mc_loop_post(&s->w->loop, &s->task, s->task.cb);
}

void mc_http_forward_resume(mc_http_stream_t *s)
{
    if (s->state == ST_ACTIVE && s->try_state == TRY_WOKEN)
        acquire(s);
}

/* ---- sending -------------------------------------------------------------------- */

static void send_upstream(mc_http_stream_t *s)
{
    mc_upconn_t *u = s->up;
    mc_stats_shard_t *st = STATS(s);
    /* Store and forward: a request that may still fit in replay is sent
     * only once it is whole (a malformed body is then refused before the
     * upstream sees anything, and a retry can resend it). */
    while (s->buffered && !s->req_done) {
        if (take_body(s) < 0) {
            body_error(s);
            return;
        }
        if (!s->buffered || s->req_done)
            break; /* whole, or too big to keep: send */
        s->codec->read_body(s); /* read more of the body */
        if (s->state != ST_ACTIVE)
            return;
        if (!mc_hbuf_len(s->rx)) {
            if (!mc_http_duplex(s))
                return; /* wait for the client */
            /* A stream that pauses may be waiting for an answer: what is
             * here goes now, and stays in replay for a retry. */
            break;
        }
    }
    for (;;) {
        if (!u->writable)
            return;
        const char *p;
        uint32_t len;
        int from_in = 0;
        if (s->replay_sent < mc_hbuf_len(&s->replay)) {
            p = s->replay.data + s->replay.start + s->replay_sent;
            len = mc_hbuf_len(&s->replay) - s->replay_sent;
        } else {
            if (take_body(s) < 0) {
                body_error(s);
                return;
            }
            if (s->replay_sent < mc_hbuf_len(&s->replay))
                continue; /* more went into replay */
            if (!s->req_ready) {
                if (s->try_state == TRY_RESPONDING)
                    return; /* duplex: the response is already flowing */
                if (s->req_done) {
                    s->try_state = TRY_WAITING;
                    arm_route_timeout(s);
                    maybe_mirror(s);
                    read_response_head(s);
                    return;
                }
                /* Wait for the client's next body bytes. */
                s->codec->read_body(s);
                if (s->state != ST_ACTIVE)
                    return;
                if (!mc_hbuf_len(s->rx) || s->req_ready)
                    return;
                continue;
            }
            p = s->rx->data + s->rx->start;
            len = s->req_ready;
            from_in = 1;
        }
        ssize_t n = mc_upconn_write(u, p, len);
        if (n > 0) {
            mc_stat_add(st, u->cluster_scope, MC_CLUSTER_UPSTREAM_CX_TX_BYTES_TOTAL, n);
            if (from_in) {
                s->bytes_rx += (uint64_t)n;
                s->rx->start += (uint32_t)n;
                s->req_ready -= (uint32_t)n;
                s->body_sent = 1; /* not in replay: no retry from here on */
            } else {
                s->replay_sent += (uint32_t)n;
            }
            continue;
        }
        if (n == MC_IO_AGAIN) {
            u->writable = 0;
            return;
        }
        if (s->try_state == TRY_RESPONDING)
            return; /* duplex: the response side sees the reset */
        /* The upstream reset the connection: a response may still be there
         * (it answered early and closed); otherwise the try failed. */
        if (u->readable) {
            s->early_response = 1;
            read_response_head(s);
            return;
        }
        try_failed(s, mc_upconn_failure(u), 0);
        return;
    }
}

void mc_http_forward_progress(mc_http_stream_t *s)
{
    s->codec->read_body(s);
    if (s->state != ST_ACTIVE)
        return;
    if (s->up && (s->try_state == TRY_SENDING || (s->try_state == TRY_RESPONDING && mc_http_duplex(s)))) {
        send_upstream(s);
    } else if (s->try_state != TRY_RESPONDING) {
        if (take_body(s) < 0)
            body_error(s);
        else
            maybe_mirror(s);
    }
}

/* ---- the response head ----------------------------------------------------------- */

/* Whether a retry may start now; takes the retry circuit-breaker slot.
 * grpc: the grpc-status of a trailers-only response head, or -1. */
static int may_retry(mc_http_stream_t *s, int failure, int status, int grpc)
{
    const mc_retry_policy_t *rp = retry_policy(s);
    if (!rp || s->retries >= rp->num_retries || s->body_sent ||
        (!mc_retry_wanted(rp, status, failure) && !(grpc > 0 && mc_retry_wanted_grpc(rp, grpc))))
        return 0;
    if (mc_cb_acquire(&s->c->state->rq_retry_active, s->c->max_retries) < 0) {
        mc_stat_inc(STATS(s), s->c->scope, MC_CLUSTER_UPSTREAM_RQ_RETRY_OVERFLOW);
        return 0;
    }
    return 1;
}

static void schedule_retry(mc_http_stream_t *s)
{
    const mc_retry_policy_t *rp = retry_policy(s);
    s->retries++;
    s->retry_cs = s->c->state;
    mc_stat_inc(STATS(s), s->c->scope, MC_CLUSTER_UPSTREAM_RQ_RETRY);
    s->try_state = TRY_BACKOFF;
    uint64_t wait = mc_retry_backoff(rp, s->retries, &s->w->rand);
    mc_timer_arm(&s->w->loop.timers, &s->try_timer, s->w->loop.now + wait);
}

static void try_failed(mc_http_stream_t *s, int failure, int status)
{
    mc_stats_shard_t *st = STATS(s);
    mc_http_report_outlier(s, MC_OUTCOME_GATEWAY);
    int retry = may_retry(s, failure, status, -1);
    end_try(s, 0);
    if (retry) {
        schedule_retry(s);
        return;
    }
    mc_http_count_upstream_status(s, failure == MC_TRY_TIMEOUT ? 504 : 503); /* Envoy charges the final failure */
    const mc_retry_policy_t *rp = retry_policy(s);
    uint32_t urx = (rp && s->retries && s->retries >= rp->num_retries) ? MC_RF_URX : 0;
    if (urx)
        mc_stat_inc(st, s->c->scope, MC_CLUSTER_UPSTREAM_RQ_RETRY_LIMIT_EXCEEDED);
    switch (failure) {
    case MC_TRY_CONNECT_FAILURE:
        mc_http_local_reply(s, 503, UPSTREAM_RESET "connection failure", MC_RF_UF | urx);
        break;
    case MC_TRY_TIMEOUT:
        mc_stat_inc(st, s->hcm->scope, MC_HTTP_DOWNSTREAM_RQ_TIMEOUT);
        mc_http_local_reply(s, 504, "upstream request timeout", MC_RF_UT | urx);
        break;
    case MC_TRY_REMOTE_RESET: /* RST_STREAM, REFUSED_STREAM (HTTP/2) */
    case MC_TRY_REFUSED:
        mc_stat_inc(st, s->c->scope, MC_CLUSTER_UPSTREAM_RQ_RX_RESET);
        mc_http_local_reply(s, 503, failure == MC_TRY_REFUSED ? UPSTREAM_RESET "remote refused stream reset"
                                                               : UPSTREAM_RESET "remote reset", MC_RF_UR | urx);
        break;
    default:
        mc_stat_inc(st, s->c->scope, MC_CLUSTER_UPSTREAM_RQ_RX_RESET);
        mc_http_local_reply(s, 503, UPSTREAM_RESET "connection termination", MC_RF_UC | urx);
        break;
    }
}

static void commit_response(mc_http_stream_t *s, int head_len)
{
    mc_worker_t *w = s->w;
    const mc_h1_response_t *r = &s->resp;
    mc_timer_cancel(&w->loop.timers, &s->try_timer);
    if (s->retry_cs) {
        mc_cb_release(&s->retry_cs->rq_retry_active);
        s->retry_cs = NULL;
        mc_stat_inc(STATS(s), s->c->scope, MC_CLUSTER_UPSTREAM_RQ_RETRY_SUCCESS);
    }
    s->try_state = TRY_RESPONDING;
    s->resp_head_ns = mc_now_ns();
    mc_http_im_response_head(s);
    s->status = (uint16_t)r->status;
    s->resp_body = r->body;
    s->resp_remaining = r->content_length;
    mc_h1_chunked_init(&s->resp_chunked);
    s->resp_keep_upstream = r->keep_alive && r->body != MC_H1_BODY_UNTIL_CLOSE;
    s->resp_done = r->body == MC_H1_BODY_NONE || (r->body == MC_H1_BODY_LENGTH && r->content_length == 0);
    s->resp_ready = 0;
    mc_stat_hist(STATS(s), s->c->scope, MC_CLUSTER_H_UPSTREAM_RQ_TIME, (mc_now_ns() - s->try_start_ns) / 1000);
    uint64_t service_ms = (mc_now_ns() - s->try_start_ns) / 1000000;
    s->codec->response_head(s, (uint32_t)head_len, service_ms);
}

static void on_response_head(mc_http_stream_t *s, int head_len)
{
    mc_stats_shard_t *st = STATS(s);
    mc_upconn_t *u = s->up;
    int status = s->resp.status;
    if (status == 101 && s->upgrade) {
        mc_http_count_upstream_status(s, status); /* upstream_rq_101: the upgrade is accepted */
        mc_http_upgrade_commit(s);
        commit_response(s, head_len);
        return;
    }
    if (status < 200) {
        /* 1xx: we answered Expect ourselves; drop interim responses. */
        u->in.start += (uint32_t)head_len;
        read_response_head(s);
        return;
    }
    mc_http_count_upstream_status(s, status);
    mc_http_report_outlier(s, mc_http_outcome_of(status));
    int grpc = mc_http_grpc_status_of(&s->resp);
    if (grpc >= 0) {
        s->grpc_status = (int16_t)grpc;
        s->has_grpc_status = 1;
    }
    if (may_retry(s, MC_TRY_OK, status, grpc)) {
        /* Discard this response: close the connection rather than read a
         * body nobody wants. */
        end_try(s, 0);
        schedule_retry(s);
        return;
    }
    const mc_retry_policy_t *rp = retry_policy(s);
    if (rp && s->retries && s->retries >= rp->num_retries && mc_retry_wanted(rp, status, MC_TRY_OK)) {
        s->flags |= MC_RF_URX;
        mc_stat_inc(st, s->c->scope, MC_CLUSTER_UPSTREAM_RQ_RETRY_LIMIT_EXCEEDED);
    }
    commit_response(s, head_len);
}

static void read_response_head(mc_http_stream_t *s)
{
    mc_upconn_t *u = s->up;
    for (;;) {
        if (mc_hbuf_len(&u->in)) {
            s->resp.headers = s->resp_headers;
            s->resp.n_headers = MC_HTTP_MAX_HEADERS;
            const char *reason = NULL;
            unsigned flags = s->head_request ? MC_H1_TO_HEAD : 0;
            int rc = mc_h1_parse_response(u->in.data + u->in.start, mc_hbuf_len(&u->in), &s->resp, flags, NULL, &reason);
            if (rc > 0) {
                on_response_head(s, rc);
                return;
            }
            if (rc == MC_H1_ERROR) {
                mc_stat_inc(STATS(s), u->cluster_scope, MC_CLUSTER_UPSTREAM_CX_PROTOCOL_ERROR);
                end_try(s, 0);
                mc_http_local_reply(s, 502, "upstream sent a malformed response", MC_RF_UPE);
                return;
            }
        }
        if (!u->readable)
            return;
        if (u->in.data && u->in.cap - u->in.end == 0 && u->in.cap > MC_H1_DEFAULT_MAX_HEAD_BYTES) {
            end_try(s, 0);
            mc_http_local_reply(s, 502, "upstream response head too large", MC_RF_UPE);
            return;
        }
        uint32_t want = mc_hbuf_len(&u->in) + 4096 > MC_HTTP_BUF ? mc_hbuf_len(&u->in) : 4096;
        ssize_t n = mc_upconn_fill(u, want);
        if (n > 0) {
            if (!u->is_h2) /* an HTTP/2 session counts its own bytes */
                mc_stat_add(STATS(s), u->cluster_scope, MC_CLUSTER_UPSTREAM_CX_RX_BYTES_TOTAL, n);
            continue;
        }
        if (n == MC_IO_AGAIN)
            return;
        int failure = mc_upconn_failure(u);
        if (failure == MC_TRY_REFUSED && !s->body_sent && s->refused < 3) {
            /* GOAWAY or REFUSED_STREAM: the upstream never processed it, so
             * it goes again on another stream, as Envoy's pool does */
            s->refused++;
            end_try(s, 0);
            s->tries--;
            start_try(s);
            return;
        }
        /* Closed or reset before a response head. A reused connection that
         * the upstream closed while idle is retried once on a new one, as
         * the request never reached an application. */
        if (s->tries == 1 && u->requests > 1 && !s->body_sent && s->replay_sent == mc_hbuf_len(&s->replay) &&
            n == 0 && mc_hbuf_len(&u->in) == 0) {
            end_try(s, 0);
            s->tries = 0;
            start_try(s);
            return;
        }
        try_failed(s, failure, 0);
        return;
    }
}

/* ---- events ----------------------------------------------------------------------- */

void mc_http_upstream_event(mc_http_stream_t *s, mc_upconn_t *u, int event)
{
    if (s->state != ST_ACTIVE || s->up != u)
        return;
    mc_stats_shard_t *st = STATS(s);
    switch (event) {
    case UPEV_CONNECTED:
        leave_pending(s);
        s->try_state = TRY_SENDING;
        u->requests++;
        send_upstream(s);
        break;
    case UPEV_CONNECT_TIMEOUT:
        mc_stat_inc(st, s->c->scope, MC_CLUSTER_UPSTREAM_CX_CONNECT_TIMEOUT);
        /* fall through */
    case UPEV_CONNECT_FAILED:
        mc_stat_inc(st, s->c->scope, MC_CLUSTER_UPSTREAM_CX_CONNECT_FAIL);
        mc_stat_inc(st, s->c->endpoints[s->ep].host_scope, MC_HOST_CX_CONNECT_FAIL);
        try_failed(s, MC_TRY_CONNECT_FAILURE, 0);
        break;
    default:
        if (s->try_state == TRY_SENDING) {
            send_upstream(s);
            if (s->state == ST_ACTIVE && s->try_state == TRY_SENDING && s->up && s->up->readable) {
                /* An early response (e.g. 413 before the body is done), or
                 * a duplex stream's answer while its body flows on. */
                s->early_response = !mc_http_duplex(s);
                read_response_head(s);
            }
        } else if (s->try_state == TRY_WAITING) {
            read_response_head(s);
        } else if (s->try_state == TRY_RESPONDING) {
            if (mc_http_duplex(s) && !s->req_done)
                send_upstream(s); /* the upstream's window may have opened */
            if (s->state == ST_ACTIVE && s->try_state == TRY_RESPONDING)
                s->codec->send_response(s);
        }
        break;
    }
}

void mc_http_try_timer(mc_timer_t *t)
{
    mc_http_stream_t *s = mc_container_of(t, mc_http_stream_t, try_timer);
    if (s->state != ST_ACTIVE)
        return;
    if (s->try_state == TRY_BACKOFF) {
        start_try(s); /* after a retry back-off or an injected delay */
        return;
    }
    if (s->try_state >= TRY_PENDING && s->try_state < TRY_RESPONDING) {
        mc_stat_inc(STATS(s), s->c->scope, MC_CLUSTER_UPSTREAM_RQ_PER_TRY_TIMEOUT);
        try_failed(s, MC_TRY_TIMEOUT, 0);
    }
}
