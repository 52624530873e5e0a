/*
 * HTTP access-log records. The request's fields are copied when its head is
 * parsed (the head's bytes are reused later) and the record is written to
 * the worker's ring when the request ends, however it ends. Only listeners
 * with an access_log pay for any of it.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "proxy/http_stream.h"

/* Copies a view into a fixed field, truncated, NUL-terminated. */
static void copy(char *dst, size_t cap, const char *src, size_t len)
{
    if (!src)
        len = 0;
    if (len >= cap)
        len = cap - 1;
    if (len)
        memcpy(dst, src, len);
    dst[len] = '\0';
}

static void copy_header(char *dst, size_t cap, const mc_h1_request_t *q, const char *name)
{
    const mc_h1_header_t *h = mc_h1_find_header(q->headers, q->n_headers, name, strlen(name));
    copy(dst, cap, h ? h->value : NULL, h ? h->value_len : 0);
}

/* A record is written for an access log, or as the span of a sampled request. */
static int recorded(const mc_http_stream_t *s)
{
    return s->hcm->access_log_id || (s->trace_active && s->trace_sampled);
}

void mc_http_alog_begin(mc_http_stream_t *s)
{
    if (!recorded(s))
        return;
    const mc_h1_request_t *q = &s->req;
    mc_http_logreq_t *l = &s->logreq;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    l->start_us = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
    copy(l->method, sizeof(l->method), q->method, q->method_len);
    copy(l->authority, sizeof(l->authority), q->authority, q->authority_len);
    copy(l->path, sizeof(l->path), q->target, q->target_len);
    copy_header(l->user_agent, sizeof(l->user_agent), q, "user-agent");
    copy_header(l->forwarded_for, sizeof(l->forwarded_for), q, "x-forwarded-for");
}

void mc_http_alog_end(mc_http_stream_t *s)
{
    if (!recorded(s) || !s->conn || !s->logreq.start_us)
        return;
    mc_alog_record_t *r = mc_alog_reserve(&s->w->alog);
    if (!r) {
        if (s->trace_active && s->trace_sampled)
            __atomic_store_n(&s->w->alog.dropped_spans, s->w->alog.dropped_spans + 1, __ATOMIC_RELAXED);
        return;
    }
    const mc_http_logreq_t *l = &s->logreq;
    memset(r, 0, sizeof(*r));
    r->log_id = s->hcm->access_log_id;
    r->kind = MC_ALOG_HTTP;
    if (s->trace_active) {
        mc_http_trace_format_id(s, r->trace_id);
        mc_http_trace_format_span(s->span_id, r->span_id);
        if (s->parent_span_id)
            mc_http_trace_format_span(s->parent_span_id, r->parent_span_id);
        r->sampled = s->trace_sampled;
        if (s->trace_sampled) {
            r->tracer_id = s->hcm->tracer_id;
            r->span_kind = s->hcm->span_kind;
        }
    }
    r->http_minor = s->h2.id ? MC_ALOG_HTTP2 : (uint8_t)s->req.minor_version;
    r->status = s->status;
    r->grpc_status = s->has_grpc_status ? (uint8_t)(s->grpc_status + 1) : 0;
    r->flags = s->flags;
    r->attempts = s->tries;
    r->start_us = l->start_us;
    r->duration_us = (mc_now_ns() - s->rq_start_ns) / 1000;
    r->upstream_service_us = s->resp_head_ns ? (int64_t)((s->resp_head_ns - s->try_start_ns) / 1000) : -1;
    r->bytes_rx = s->bytes_rx;
    r->bytes_tx = s->bytes_tx;
    memcpy(r->method, l->method, sizeof(r->method));
    memcpy(r->authority, l->authority, sizeof(r->authority));
    memcpy(r->path, l->path, sizeof(r->path));
    memcpy(r->user_agent, l->user_agent, sizeof(r->user_agent));
    memcpy(r->forwarded_for, l->forwarded_for, sizeof(r->forwarded_for));
    copy(r->request_id, sizeof(r->request_id), s->request_id, s->request_id_len);
    if (s->route && s->route->name)
        copy(r->route, sizeof(r->route), s->route->name, strlen(s->route->name));
    if (s->c) {
        copy(r->upstream_cluster, sizeof(r->upstream_cluster), s->c->name, strlen(s->c->name));
        if (s->last_ep < s->c->n_endpoints) {
            const char *h = s->c->endpoints[s->last_ep].name;
            copy(r->upstream_host, sizeof(r->upstream_host), h, strlen(h));
        }
    }
    memcpy(r->downstream_peer, s->peer->text, sizeof(r->downstream_peer)); /* formatted at accept */
    memcpy(r->downstream_principal, s->peer->principal, sizeof(r->downstream_principal));
    if (s->up)
        memcpy(r->upstream_principal, s->up->principal, sizeof(r->upstream_principal));
    if (s->denied_by)
        snprintf(r->details, sizeof(r->details), "rbac_access_denied_matched_policy[%s]", s->denied_by);
    mc_alog_commit(&s->w->alog);
    s->logreq.start_us = 0;
}
