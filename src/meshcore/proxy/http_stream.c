/*
 * An HTTP stream's life: started by its codec with a parsed request head,
 * decided (HTTP RBAC, route match, direct responses, redirects), forwarded
 * (proxy/http_forward.c), counted once its response is known, and handed
 * back to the codec when done. See proxy/http_stream.h.
 */
#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "meshcore/overload.h"
#include "worker/control.h"
#include "proxy/http_stream.h"

#define STATS(s) ((s)->w->stats)
#define HTTP_SCOPE(s) ((s)->hcm->scope)

size_t mc_http_stream_size(void)
{
    return sizeof(mc_http_stream_t);
}

static void on_timer(mc_timer_t *t);

static void task_run(mc_task_t *t)
{
    mc_http_stream_t *s = mc_container_of(t, mc_http_stream_t, task);
    if (s->state != ST_ACTIVE)
        return;
    if (s->try_state == TRY_RESPONDING)
        s->codec->send_response(s);
    else if (s->try_state == TRY_WOKEN)
        mc_http_forward_resume(s);
}

mc_http_stream_t *mc_http_stream_new(mc_http_conn_t *conn)
{
    mc_worker_t *w = conn->w;
    mc_http_stream_t *s = mc_pool_get_raw(&mc_proxy_of(w)->http_streams);
    if (!s)
        return NULL;
    /* The parser slots at the end need no zeroing. */
    memset(s, 0, offsetof(mc_http_stream_t, headers));
    s->task.cb = task_run;
    s->w = w;
    s->ctx = conn->ctx;
    mc_wctx_pin(s->ctx);
    s->l = conn->l;
    s->ch = conn->ch;
    s->hcm = conn->hcm;
    s->conn = conn;
    s->codec = conn->codec;
    s->peer = &conn->peer;
    s->rx = &conn->in;
    s->ep = UINT32_MAX;
    mc_list_init(&s->pending_link);
    mc_timer_init(&s->timer, on_timer);
    mc_timer_init(&s->try_timer, mc_http_try_timer);
    return s;
}

static void free_task(mc_task_t *t)
{
    mc_http_stream_t *s = mc_container_of(t, mc_http_stream_t, task);
    mc_worker_t *w = s->w;
    mc_wctx_unpin(s->ctx);
    mc_pool_put(&mc_proxy_of(w)->http_streams, s);
}

void mc_http_stream_free(mc_http_stream_t *s)
{
    mc_worker_t *w = s->w;
    s->state = ST_CLOSED;
    mc_http_upgrade_end(s);
    mc_timer_cancel(&w->loop.timers, &s->timer);
    mc_timer_cancel(&w->loop.timers, &s->try_timer);
    mc_hbuf_release(w, &s->replay);
    mc_hbuf_release(w, &s->mirror);
    mc_hbuf_release(w, &s->h2.hdr); /* HTTP/2's buffers (none on HTTP/1.1) */
    mc_hbuf_release(w, &s->h2.rx);
    mc_hbuf_release(w, &s->h2.tx);
    /* Events for its upstream may still be in this loop turn's batch. */
    mc_loop_post(&w->loop, &s->task, free_task);
}

void mc_http_count_status(mc_worker_t *w, const mc_hcm_t *h, int status)
{
    static const int slots[6] = {0, MC_HTTP_DOWNSTREAM_RQ_1XX, MC_HTTP_DOWNSTREAM_RQ_2XX, MC_HTTP_DOWNSTREAM_RQ_3XX,
                                 MC_HTTP_DOWNSTREAM_RQ_4XX, MC_HTTP_DOWNSTREAM_RQ_5XX};
    int cls = status / 100;
    if (cls >= 1 && cls <= 5)
        mc_stat_inc(w->stats, h->scope, (uint32_t)slots[cls]);
}

static void count_flags(mc_http_stream_t *s)
{
    for (uint32_t i = 0; i < MC_RF__COUNT; i++)
        if (s->flags & (1u << i))
            mc_stat_inc(STATS(s), HTTP_SCOPE(s), MC_HTTP_RF_FIRST + i);
}

/* The request's stats, access-log record / span and Istio metrics, once
 * its whole response is known (the last bytes may still be on their way
 * out, as when Envoy logs a stream): a client that has read its response
 * then finds it counted. A mirror is counted by its cluster only. */
void mc_http_stream_account(mc_http_stream_t *s)
{
    if (s->accounted || !s->conn)
        return;
    s->accounted = 1;
    mc_stats_shard_t *st = STATS(s);
    mc_http_count_status(s->w, s->hcm, s->status);
    mc_stat_add(st, HTTP_SCOPE(s), MC_HTTP_DOWNSTREAM_RQ_ACTIVE, -1);
    mc_stat_hist(st, HTTP_SCOPE(s), MC_HTTP_H_DOWNSTREAM_RQ_TIME, (mc_now_ns() - s->rq_start_ns) / 1000);
    count_flags(s);
    mc_http_alog_end(s);
    mc_http_im_end(s);
}

void mc_http_stream_finish(mc_http_stream_t *s)
{
    mc_http_stream_account(s);
    mc_http_forward_abort(s); /* returns the upstream connection (reused when clean) */
    s->codec->done(s);
}

void mc_http_stream_abort(mc_http_stream_t *s)
{
    if (s->state == ST_ACTIVE && !s->accounted && s->conn) {
        /* Mid-request: we reset the client's stream because of the
         * upstream or a timeout (the flag says which), or the client left. */
        mc_stats_shard_t *st = STATS(s);
        if (s->flags & (MC_RF_UC | MC_RF_UT | MC_RF_UPE | MC_RF_UF | MC_RF_LR | MC_RF_SI | MC_RF_DT)) {
            mc_stat_inc(st, HTTP_SCOPE(s), MC_HTTP_DOWNSTREAM_RQ_TX_RESET);
        } else {
            s->flags |= MC_RF_DC;
            mc_stat_inc(st, HTTP_SCOPE(s), MC_HTTP_DOWNSTREAM_RQ_RX_RESET);
        }
        count_flags(s);
        mc_http_alog_end(s);
        mc_http_im_end(s);
        mc_stat_add(st, HTTP_SCOPE(s), MC_HTTP_DOWNSTREAM_RQ_ACTIVE, -1);
        s->accounted = 1;
    }
    if (s->state == ST_ACTIVE)
        mc_http_forward_abort(s);
    mc_http_stream_free(s);
}

/* ---- timeouts ---------------------------------------------------------------------- */

enum { T_NONE, T_REQUEST, T_ROUTE, T_STREAM_IDLE, T_DURATION };

static mc_deadline_t next_deadline(const mc_http_stream_t *s)
{
    const mc_hcm_t *h = s->hcm;
    mc_deadline_t d = MC_DEADLINE_NONE;
    if (!s->req_done && h->request_timeout_ns)
        mc_deadline_consider(&d, s->head_start_ns + h->request_timeout_ns, T_REQUEST);
    /* Envoy's route timeout runs from the end of the downstream request
     * to the end of the upstream response. */
    /* a tunnel (Upgrade) has only its idle timeout once the 101 came */
    uint64_t route_timeout = s->rq_done_ns && s->route && !mc_http_upgrade_tunnel(s) ? mc_http_route_timeout_ns(s) : 0;
    if (route_timeout)
        mc_deadline_consider(&d, s->rq_done_ns + route_timeout, T_ROUTE);
    if (h->stream_idle_timeout_ns && s->conn)
        mc_deadline_consider(&d, s->last_activity + h->stream_idle_timeout_ns, T_STREAM_IDLE);
    uint64_t duration = s->conn && s->route ? mc_http_stream_duration_ns(s) : 0;
    if (duration)
        mc_deadline_consider(&d, s->head_start_ns + duration, T_DURATION);
    return d;
}

void mc_http_stream_rearm(mc_http_stream_t *s)
{
    mc_deadline_t d = next_deadline(s);
    if (d.kind == T_NONE)
        mc_timer_cancel(&s->w->loop.timers, &s->timer);
    else
        mc_timer_arm(&s->w->loop.timers, &s->timer, d.at);
}

static void on_timer(mc_timer_t *t)
{
    mc_http_stream_t *s = mc_container_of(t, mc_http_stream_t, timer);
    mc_stats_shard_t *st = STATS(s);
    if (s->state != ST_ACTIVE)
        return;
    mc_deadline_t d = next_deadline(s);
    if (d.kind == T_NONE)
        return;
    if (d.at > s->w->loop.now) { /* activity since arming: sleep the rest */
        mc_timer_arm(&s->w->loop.timers, &s->timer, d.at);
        return;
    }
    int which = d.kind;
    if (which == T_DURATION) {
        mc_http_stream_duration_reached(s);
        return;
    }
    if (which == T_ROUTE) {
        /* The route timeout: the whole request (all tries) took too long. */
        mc_stat_inc(st, HTTP_SCOPE(s), MC_HTTP_DOWNSTREAM_RQ_TIMEOUT);
        if (s->c)
            mc_stat_inc(st, s->c->scope, MC_CLUSTER_UPSTREAM_RQ_TIMEOUT);
        if (s->try_state >= TRY_RESPONDING) { /* too late for a reply */
            s->flags |= MC_RF_UT;
            s->codec->reset(s);
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
        s->codec->reset(s);
        return;
    }
    mc_http_local_reply(s, 408, which == T_STREAM_IDLE ? "stream timeout" : "request timeout", 0);
}

/* ---- local replies ------------------------------------------------------------------ */

void mc_http_reply(mc_http_stream_t *s, int status, const char *body, size_t body_len, uint32_t flags,
                   const char *location)
{
    s->flags |= flags;
    s->status = (uint16_t)status;
    /* A request body we have not read would be taken for the next request. */
    if (!s->req_done)
        s->close_after = 1;
    s->bytes_tx = s->head_request ? 0 : body_len;
    s->codec->reply(s, status, body, body_len, flags, location);
}

void mc_http_local_reply(mc_http_stream_t *s, int status, const char *body, uint32_t flags)
{
    mc_http_reply(s, status, body ? body : "", body ? strlen(body) : 0, flags, NULL);
}

static void new_request_id(mc_http_stream_t *s)
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

static void redirect(mc_http_stream_t *s, const mc_route_t *r)
{
    mc_route_req_t rq;
    mc_route_req_from_h1(&rq, &s->req);
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
static int rbac_allows(mc_http_stream_t *s, const mc_route_req_t *rq)
{
    const mc_hcm_t *h = s->hcm;
    if (!h->n_rbac)
        return 1;
    const char *principal = s->peer->principal;
    mc_rbac_ctx_t c = {.rq = rq, .principal = principal, .authenticated = principal[0] != 0,
                       .peer = &s->peer->addr, .local = s->l->ls ? &s->l->ls->bound : &s->l->addr,
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

/* ---- starting ------------------------------------------------------------------------ */

/* The HCM's path normalization, before anything reads the path (RBAC,
 * routing, the upstream request head, the access log). Normalizing only
 * ever shortens a path, so it is done in place, in the request target's
 * own bytes (the connection's read buffer, which the parser's views point
 * into): the normalized path, then "?query" moved up behind it, and the
 * views shortened to match. No copy, no allocation, no limit but the
 * parser's max_target_bytes. Returns MC_PATH_*. */
static int normalize_path(mc_http_stream_t *s)
{
    mc_h1_request_t *q = &s->req;
    const mc_path_norm_t *o = &s->hcm->path_norm;
    if (!mc_path_norm_enabled(o) || !q->path || !mc_path_needs_normalize(q->path, q->path_len, o))
        return MC_PATH_UNCHANGED;
    /* only a path within the target's bytes (not the parser's static "/") */
    if (!q->target || q->path < q->target || q->path + q->path_len > q->target + q->target_len)
        return MC_PATH_UNCHANGED;
    char *p = (char *)(uintptr_t)q->path; /* the read buffer's bytes: writable */
    size_t n = q->path_len;
    int rc = mc_path_normalize(p, &n, o);
    if (rc == MC_PATH_REJECT)
        return rc;
    size_t removed = q->path_len - n;
    if (q->query && removed && q->query == q->path + q->path_len + 1) {
        memmove(p + n + 1, q->query, q->query_len);
        p[n] = '?';
        q->query = p + n + 1;
    }
    q->path_len = n;
    q->target_len -= removed;
    return rc;
}

/* UNESCAPE_AND_REDIRECT: 307 to the unescaped, normalized path (and query). */
static void redirect_normalized(mc_http_stream_t *s)
{
    const mc_h1_request_t *q = &s->req;
    char loc[8192]; /* the parser's default max_target_bytes */
    int n = q->query ? snprintf(loc, sizeof(loc), "%.*s?%.*s", (int)q->path_len, q->path, (int)q->query_len, q->query)
                     : snprintf(loc, sizeof(loc), "%.*s", (int)q->path_len, q->path);
    if (n < 0 || (size_t)n >= sizeof(loc)) {
        mc_stat_inc(STATS(s), HTTP_SCOPE(s), MC_HTTP_RQ_FAILED_PATH_NORMALIZATION);
        s->details = "path_too_long_to_redirect";
        mc_http_local_reply(s, 400, "Bad Request", 0);
        return;
    }
    mc_stat_inc(STATS(s), HTTP_SCOPE(s), MC_HTTP_RQ_REDIRECTED_NORMALIZED_PATH);
    mc_http_reply(s, 307, "", 0, 0, loc);
}

void mc_http_stream_start(mc_http_stream_t *s)
{
    mc_stats_shard_t *st = STATS(s);
    const mc_h1_request_t *q = &s->req;
    s->state = ST_ACTIVE;
    s->rq_start_ns = mc_now_ns();
    s->last_ep = UINT32_MAX;
    mc_http_stream_rearm(s);
    mc_stat_inc(st, HTTP_SCOPE(s), MC_HTTP_DOWNSTREAM_RQ_TOTAL);
    mc_stat_inc(st, HTTP_SCOPE(s), MC_HTTP_DOWNSTREAM_RQ_ACTIVE);

    const mc_h1_header_t *rid = mc_h1_find_header(q->headers, q->n_headers, "x-request-id", 12);
    if (rid && rid->value_len && rid->value_len < sizeof(s->request_id)) {
        memcpy(s->request_id, rid->value, rid->value_len);
        s->request_id_len = (uint8_t)rid->value_len;
    } else if (s->hcm->generate_request_id) {
        new_request_id(s);
    }
    s->head_request = q->method_len == 4 && memcmp(q->method, "HEAD", 4) == 0;
    int norm = q->connect ? MC_PATH_UNCHANGED : normalize_path(s);
    mc_http_trace_begin(s);
    mc_http_alog_begin(s);
    mc_http_im_request_head(s);
    mc_http_grpc_request(s);

    if (mc_overload_on(s->w->ctl, MC_OA_STOP_ACCEPTING_REQUESTS)) {
        mc_stat_inc(st, HTTP_SCOPE(s), MC_HTTP_DOWNSTREAM_RQ_OVERLOAD_CLOSE);
        s->details = "overload";
        mc_http_local_reply(s, 503, "envoy overloaded", MC_RF_OL);
        return;
    }
    if (q->connect) {
        mc_http_local_reply(s, 405, "CONNECT is not supported\n", 0);
        return;
    }
    if (q->upgrade && mc_http_upgrade_check(s) < 0)
        return; /* an upgrade the HCM does not enable: answered before any filter */
    if (norm == MC_PATH_REJECT) {
        mc_stat_inc(st, HTTP_SCOPE(s), MC_HTTP_RQ_FAILED_PATH_NORMALIZATION);
        s->details = "path_normalization_failed";
        mc_http_local_reply(s, 400, "Bad Request", 0);
        return;
    }
    if (norm == MC_PATH_REDIRECT) {
        redirect_normalized(s);
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
    s->route = s->vhost ? mc_router_match(s->vhost, &rq, s->w->match_data) : NULL;
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
    mc_http_stream_rearm(s); /* routed: the route's max_stream_duration applies */
    /* Envoy's default: answer 100 Continue here and strip Expect, so the
     * client starts its body without waiting on the upstream. */
    if (q->expect_continue && !s->req_done && s->codec->send_continue(s) < 0)
        return;
    mc_http_forward(s);
}
