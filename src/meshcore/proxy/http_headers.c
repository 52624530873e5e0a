/*
 * Serializing heads: the request sent upstream, the response sent
 * downstream, and local replies.
 *
 * A head is built as a list of (name, value) views: the message's fields
 * minus hop-by-hop ones, then the fields the connection manager sets
 * (x-forwarded-for, x-forwarded-proto, x-request-id), then Envoy's header
 * operations level by level: route, virtual host, route configuration, each
 * level removing then adding against the list as the previous levels left
 * it (Envoy's default order, most_specific_header_mutations_wins = false:
 * the route configuration has the last word). Framing (Content-Length /
 * Transfer-Encoding) is the proxy's and is written last. Views point into
 * the parsed message or the config; nothing is allocated.
 */
#include <stdio.h>
#include <string.h>

#include "proxy/http_stream.h"

#define MAX_FIELDS 256

typedef struct field {
    const char *name, *value;
    size_t name_len, value_len;
} field_t;

typedef struct list {
    field_t f[MAX_FIELDS];
    uint32_t n;
    int overflow;
} list_t;

static void push(list_t *l, const char *name, size_t nlen, const char *value, size_t vlen)
{
    if (l->n == MAX_FIELDS) {
        l->overflow = 1;
        return;
    }
    l->f[l->n++] = (field_t){name, value, nlen, vlen};
}

static int find(const list_t *l, const char *name, size_t len)
{
    for (uint32_t i = 0; i < l->n; i++)
        if (mc_h1_token_eq(l->f[i].name, l->f[i].name_len, name, len))
            return (int)i;
    return -1;
}

static void remove_all(list_t *l, const char *name, size_t len)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < l->n; i++)
        if (!mc_h1_token_eq(l->f[i].name, l->f[i].name_len, name, len))
            l->f[k++] = l->f[i];
    l->n = k;
}

/* One level of header operations: removes, then adds, in config order. */
static void apply_ops(list_t *l, const mc_header_ops_t *ops)
{
    if (!ops)
        return;
    for (uint32_t k = 0; k < ops->n_remove; k++)
        remove_all(l, ops->remove[k], ops->remove_len[k]);
    for (uint32_t k = 0; k < ops->n_add; k++) {
        const mc_header_op_t *op = &ops->add[k];
        int at = find(l, op->name, op->name_len);
        switch (op->action) {
        case MC_HDR_ADD_IF_ABSENT:
            if (at < 0)
                push(l, op->name, op->name_len, op->value, op->value_len);
            break;
        case MC_HDR_OVERWRITE_IF_EXISTS:
            if (at >= 0) {
                remove_all(l, op->name, op->name_len);
                push(l, op->name, op->name_len, op->value, op->value_len);
            }
            break;
        case MC_HDR_OVERWRITE_OR_ADD:
            remove_all(l, op->name, op->name_len);
            push(l, op->name, op->name_len, op->value, op->value_len);
            break;
        default: /* APPEND_IF_EXISTS_OR_ADD */
            push(l, op->name, op->name_len, op->value, op->value_len);
            break;
        }
    }
}

static void apply_levels(list_t *l, const mc_header_ops_t *route, const mc_header_ops_t *vhost,
                         const mc_header_ops_t *config)
{
    apply_ops(l, route);
    apply_ops(l, vhost);
    apply_ops(l, config);
}

/* ---- writing ------------------------------------------------------------------ */

typedef struct out {
    char *p;
    size_t len, cap;
    int overflow;
} out_t;

static void put(out_t *o, const char *s, size_t n)
{
    if (o->len + n > o->cap) {
        o->overflow = 1;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

#define PUTS(o, lit) put((o), (lit), sizeof(lit) - 1)

/* Decimal digits of v ending at end; returns their count (no snprintf on the hot path). */
static size_t u64_digits(char *end, uint64_t v)
{
    char *p = end;
    do
        *--p = (char)('0' + v % 10);
    while (v /= 10);
    return (size_t)(end - p);
}

static void put_u64(out_t *o, uint64_t v)
{
    char tmp[24];
    size_t n = u64_digits(tmp + sizeof(tmp), v);
    put(o, tmp + sizeof(tmp) - n, n);
}

static void put_fields(out_t *o, const list_t *l)
{
    for (uint32_t i = 0; i < l->n; i++) {
        put(o, l->f[i].name, l->f[i].name_len);
        PUTS(o, ": ");
        put(o, l->f[i].value, l->f[i].value_len);
        PUTS(o, "\r\n");
    }
}

/* A field name against a literal: the length first, no strlen. */
#define name_is(name, len, lit) ((len) == sizeof(lit) - 1 && mc_h1_token_eq((name), (len), (lit), sizeof(lit) - 1))

/* The path sent upstream: rewritten per route, origin-form. */
static void put_path(out_t *o, const mc_http_stream_t *s)
{
    const mc_h1_request_t *q = &s->req;
    const mc_route_t *r = s->route;
    mc_route_req_t rq;
    mc_route_req_from_h1(&rq, q);
    if (r && r->prefix_rewrite && r->path_kind != MC_PATH_REGEX && rq.full_path_len >= r->path_len) {
        put(o, r->prefix_rewrite, r->prefix_rewrite_len);
        put(o, rq.full_path + r->path_len, rq.full_path_len - r->path_len);
        return;
    }
    if (r && r->rewrite_re && s->w->match_data) {
        char tmp[8192];
        PCRE2_SIZE outlen = sizeof(tmp);
        int rc = pcre2_substitute(r->rewrite_re, (PCRE2_SPTR)rq.path, rq.path_len, 0, PCRE2_SUBSTITUTE_GLOBAL,
                                  s->w->match_data, NULL, (PCRE2_SPTR)r->rewrite_sub, PCRE2_ZERO_TERMINATED,
                                  (PCRE2_UCHAR *)tmp, &outlen);
        if (rc >= 0) {
            put(o, tmp, outlen);
            if (rq.query) {
                PUTS(o, "?");
                put(o, rq.query, rq.query_len);
            }
            return;
        }
    }
    if (rq.full_path_len)
        put(o, rq.full_path, rq.full_path_len);
    else
        PUTS(o, "/");
}

/* host + suffix, the suffix before any port ("svc-shadow:8080", as Envoy). */
static size_t host_with_suffix(char *buf, size_t cap, const char *host, size_t len, const char *suffix)
{
    size_t port_at = len;
    const char *colon = memrchr(host, ':', len);
    if (colon && !memchr(colon, ']', (size_t)(host + len - colon)))
        port_at = (size_t)(colon - host);
    return (size_t)snprintf(buf, cap, "%.*s%s%.*s", (int)port_at, host, suffix, (int)(len - port_at), host + port_at);
}

long mc_http_write_request_head(const mc_http_stream_t *s, char *buf, size_t cap, const char *host_suffix)
{
    const mc_h1_request_t *q = &s->req;
    static __thread list_t l; /* 6 KiB of views: per worker thread, not per call */
    l.n = 0;
    l.overflow = 0;
    const char *host = q->authority ? q->authority : "";
    size_t host_len = q->authority ? q->authority_len : 0;
    if (s->route && s->route->host_rewrite) {
        host = s->route->host_rewrite;
        host_len = s->route->host_rewrite_len;
    }
    char shadow_host[512];
    if (host_suffix) {
        host_len = host_with_suffix(shadow_host, sizeof(shadow_host), host, host_len, host_suffix);
        host = shadow_host;
    }
    push(&l, "host", 4, host, host_len);
    char xff[512];
    const char *ip = s->peer->text + s->peer->ip_off;
    size_t ip_len = s->peer->ip_len;
    int have_xff = 0, have_xfp = 0, have_rid = 0;
    const mc_im_cfg_t *im = &s->ch->im;
    for (size_t i = 0; i < q->n_headers; i++) {
        const mc_h1_header_t *h = &q->headers[i];
        if (mc_h1_hop_by_hop(q->headers, q->n_headers, h->name, h->name_len) ||
            name_is(h->name, h->name_len, "host") || name_is(h->name, h->name_len, "content-length") ||
            name_is(h->name, h->name_len, "expect") || (im->exchange && mc_http_im_header(h->name, h->name_len)) ||
            (s->trace_active && mc_http_trace_header(h->name, h->name_len)))
            continue;
        if (!have_xff && name_is(h->name, h->name_len, "x-forwarded-for")) {
            /* The connection manager appends the client's address. */
            have_xff = 1;
            int n = snprintf(xff, sizeof(xff), "%.*s, %.*s", (int)h->value_len, h->value, (int)ip_len, ip);
            push(&l, h->name, h->name_len, xff, n > 0 && (size_t)n < sizeof(xff) ? (size_t)n : h->value_len);
            continue;
        }
        have_xfp |= name_is(h->name, h->name_len, "x-forwarded-proto");
        have_rid |= name_is(h->name, h->name_len, "x-request-id");
        push(&l, h->name, h->name_len, h->value, h->value_len);
    }
    if (q->te_trailers) /* the one TE value that crosses a hop (gRPC needs it; RFC 9113 §8.2.2) */
        push(&l, "te", 2, "trailers", 8);
    if (!have_xff)
        push(&l, "x-forwarded-for", 15, ip, ip_len);
    if (!have_xfp)
        push(&l, "x-forwarded-proto", 17, "http", 4);
    if (!have_rid && s->request_id_len)
        push(&l, "x-request-id", 12, s->request_id, s->request_id_len);
    if (im->exchange && im->reporter == MC_IM_SOURCE) {
        push(&l, "x-envoy-peer-metadata-id", 24, im->exchange_id, im->exchange_id_len);
        push(&l, "x-envoy-peer-metadata", 21, im->exchange, im->exchange_len);
    }
    mc_trace_out_t tr;
    if (s->trace_active) {
        mc_http_trace_outgoing(s, &tr);
        push(&l, "traceparent", 11, tr.traceparent, tr.traceparent_len);
        if (s->trace_b3 == MC_TRACE_B3_SINGLE) {
            push(&l, "b3", 2, tr.b3, tr.b3_len);
        } else {
            push(&l, "x-b3-traceid", 12, tr.trace_id, tr.trace_id_len);
            push(&l, "x-b3-spanid", 11, tr.span_id, 16);
            if (tr.has_parent)
                push(&l, "x-b3-parentspanid", 17, tr.parent_id, 16);
            push(&l, "x-b3-sampled", 12, s->trace_sampled ? "1" : "0", 1);
        }
    }
    apply_levels(&l, s->route ? &s->route->req_ops : NULL, s->vhost ? &s->vhost->req_ops : NULL, &s->hcm->req_ops);

    out_t o = {buf, 0, cap, l.overflow};
    put(&o, q->method, q->method_len);
    PUTS(&o, " ");
    put_path(&o, s);
    /* An HTTP/1.0 client cannot take a chunked response: ask the upstream
     * in HTTP/1.0 too, so it answers with a length or a close (nginx). */
    if (q->minor_version == 0)
        PUTS(&o, " HTTP/1.0\r\n");
    else
        PUTS(&o, " HTTP/1.1\r\n");
    put_fields(&o, &l);
    const mc_h1_header_t *up = s->upgrade && !host_suffix ? mc_http_upgrade_header(q->headers, q->n_headers) : NULL;
    if (up) { /* a WebSocket upgrade keeps its hop-by-hop fields (a shadow copy does not) */
        PUTS(&o, "connection: upgrade\r\nupgrade: ");
        put(&o, up->value, up->value_len);
        PUTS(&o, "\r\n");
    } else if (q->minor_version == 0) {
        PUTS(&o, "connection: keep-alive\r\n");
    }
    if (s->req_body == MC_H1_BODY_LENGTH) {
        PUTS(&o, "content-length: ");
        put_u64(&o, q->content_length);
        PUTS(&o, "\r\n");
    } else if (s->req_body == MC_H1_BODY_CHUNKED) {
        PUTS(&o, "transfer-encoding: chunked\r\n");
    }
    PUTS(&o, "\r\n");
    return o.overflow ? -1 : (long)o.len;
}

long mc_http_write_response_head(const mc_http_stream_t *s, char *buf, size_t cap, uint64_t service_ms)
{
    const mc_h1_response_t *r = &s->resp;
    static __thread list_t l;
    l.n = 0;
    l.overflow = 0;
    const mc_im_cfg_t *im = &s->ch->im;
    for (size_t i = 0; i < r->n_headers; i++) {
        const mc_h1_header_t *h = &r->headers[i];
        if (mc_h1_hop_by_hop(r->headers, r->n_headers, h->name, h->name_len) ||
            name_is(h->name, h->name_len, "content-length") || (im->exchange && mc_http_im_header(h->name, h->name_len)))
            continue;
        if ((s->hcm->server_name && name_is(h->name, h->name_len, "server")) ||
            name_is(h->name, h->name_len, "x-envoy-upstream-service-time")) /* ours replaces the next hop's */
            continue;
        push(&l, h->name, h->name_len, h->value, h->value_len);
    }
    char service_buf[24];
    size_t sn = u64_digits(service_buf + sizeof(service_buf), service_ms);
    push(&l, "x-envoy-upstream-service-time", 29, service_buf + sizeof(service_buf) - sn, sn);
    if (im->exchange && im->reporter == MC_IM_DESTINATION && s->im_peer_present) {
        push(&l, "x-envoy-peer-metadata-id", 24, im->exchange_id, im->exchange_id_len);
        push(&l, "x-envoy-peer-metadata", 21, im->exchange, im->exchange_len);
    }
    if (s->hcm->server_name)
        push(&l, "server", 6, s->hcm->server_name, s->hcm->server_name_len);
    apply_levels(&l, s->route ? &s->route->resp_ops : NULL, s->vhost ? &s->vhost->resp_ops : NULL,
                 &s->hcm->resp_ops);

    out_t o = {buf, 0, cap, l.overflow};
    PUTS(&o, "HTTP/1.1 ");
    put_u64(&o, (uint64_t)r->status);
    PUTS(&o, " ");
    if (r->reason_len) {
        put(&o, r->reason, r->reason_len);
    } else {
        const char *reason = mc_http_reason(r->status);
        put(&o, reason, strlen(reason));
    }
    PUTS(&o, "\r\n");
    put_fields(&o, &l);
    if (s->resp_body == MC_H1_BODY_CHUNKED && !s->resp_dechunk) {
        PUTS(&o, "transfer-encoding: chunked\r\n");
    } else if (s->resp_body == MC_H1_BODY_LENGTH ||
               (s->resp_body == MC_H1_BODY_NONE && mc_h1_find_header(r->headers, r->n_headers, "content-length", 14))) {
        PUTS(&o, "content-length: ");
        put_u64(&o, r->content_length);
        PUTS(&o, "\r\n");
    }
    const mc_h1_header_t *up = mc_http_upgrade_tunnel(s) ? mc_http_upgrade_header(r->headers, r->n_headers) : NULL;
    if (mc_http_upgrade_tunnel(s)) { /* 101: the client's connection becomes the tunnel */
        PUTS(&o, "connection: upgrade\r\n");
        if (up) {
            PUTS(&o, "upgrade: ");
            put(&o, up->value, up->value_len);
            PUTS(&o, "\r\n");
        }
    } else if (s->close_after) {
        PUTS(&o, "connection: close\r\n");
    } else if (s->req.minor_version == 0) {
        PUTS(&o, "connection: keep-alive\r\n");
    }
    PUTS(&o, "\r\n");
    return o.overflow ? -1 : (long)o.len;
}

long mc_http_write_local_reply(char *buf, size_t cap, const mc_http_local_t *r)
{
    static __thread list_t l;
    l.n = 0;
    l.overflow = 0;
    if (r->body_len)
        push(&l, "content-type", 12, "text/plain", 10);
    if (r->location)
        push(&l, "location", 8, r->location, strlen(r->location));
    if (r->server)
        push(&l, "server", 6, r->server, r->server_len);
    else
        push(&l, "server", 6, "meshcore", 8);
    if (r->request_id_len)
        push(&l, "x-request-id", 12, r->request_id, r->request_id_len);
    if (r->peer_md_len) {
        push(&l, "x-envoy-peer-metadata-id", 24, r->peer_md_id, r->peer_md_id_len);
        push(&l, "x-envoy-peer-metadata", 21, r->peer_md, r->peer_md_len);
    }
    /* direct_response and redirects get the route's response headers, as
     * Envoy finalizes them (Route::finalizeResponseHeaders). */
    apply_levels(&l, r->ops[0], r->ops[1], r->ops[2]);
    out_t o = {buf, 0, cap, l.overflow};
    const char *reason = mc_http_reason(r->status);
    PUTS(&o, "HTTP/1.1 ");
    put_u64(&o, (uint64_t)r->status);
    PUTS(&o, " ");
    put(&o, reason, strlen(reason));
    PUTS(&o, "\r\ncontent-length: ");
    put_u64(&o, r->body_len);
    PUTS(&o, "\r\n");
    put_fields(&o, &l);
    if (r->close)
        PUTS(&o, "connection: close\r\n");
    PUTS(&o, "\r\n");
    if (!r->head) /* a HEAD request gets the length, never the body */
        put(&o, r->body, r->body_len);
    return o.overflow ? -1 : (long)o.len;
}

const char *mc_http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 417: return "Expectation Failed";
    case 429: return "Too Many Requests";
    case 426: return "Upgrade Required";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return status < 200 ? "Informational" : status < 300 ? "Success" : status < 400 ? "Redirection"
                    : status < 500 ? "Client Error" : "Server Error";
    }
}
