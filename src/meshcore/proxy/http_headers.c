/*
 * Serializing heads: the request sent upstream, the response sent
 * downstream, and local replies. One pass over the parsed header views,
 * dropping hop-by-hop fields and re-emitting framing the proxy controls.
 *
 * Header manipulation follows Envoy: request/response_headers_to_remove and
 * _to_add at route, virtual host and route configuration level, applied in
 * that order, so for an overwrite the route configuration's value wins
 * (Envoy's default, most_specific_header_mutations_wins = false).
 */
#include <stdio.h>
#include <string.h>

#include "proxy/http_session.h"

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

static void put_u64(out_t *o, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)v);
    put(o, tmp, (size_t)n);
}

static void put_header(out_t *o, const char *name, size_t nlen, const char *value, size_t vlen)
{
    put(o, name, nlen);
    PUTS(o, ": ");
    put(o, value, vlen);
    PUTS(o, "\r\n");
}

static int name_is(const char *name, size_t len, const char *lit)
{
    size_t n = strlen(lit);
    return len == n && mc_h1_token_eq(name, len, lit, n);
}

/* The three levels of header operations, most specific first. */
typedef struct levels {
    const mc_header_ops_t *ops[3];
} levels_t;

static levels_t request_levels(const mc_http_session_t *s)
{
    levels_t l = {{s->route ? &s->route->req_ops : NULL, s->vhost ? &s->vhost->req_ops : NULL, &s->hcm->req_ops}};
    return l;
}

static levels_t response_levels(const mc_http_session_t *s)
{
    levels_t l = {{s->route ? &s->route->resp_ops : NULL, s->vhost ? &s->vhost->resp_ops : NULL,
                   &s->hcm->resp_ops}};
    return l;
}

/* 1 if an original header of this name must not be passed on: removed, or
 * replaced by an overwrite at some level. */
static int suppressed(const levels_t *lv, const char *name, size_t len)
{
    for (int i = 0; i < 3; i++) {
        const mc_header_ops_t *o = lv->ops[i];
        if (!o)
            continue;
        for (uint32_t k = 0; k < o->n_remove; k++)
            if (mc_h1_token_eq(o->remove[k], o->remove_len[k], name, len))
                return 1;
        for (uint32_t k = 0; k < o->n_add; k++)
            if ((o->add[k].action == MC_HDR_OVERWRITE_OR_ADD || o->add[k].action == MC_HDR_OVERWRITE_IF_EXISTS) &&
                mc_h1_token_eq(o->add[k].name, o->add[k].name_len, name, len))
                return 1;
    }
    return 0;
}

/* Whether a later level overwrites the same header (so this one is moot). */
static int overwritten_later(const levels_t *lv, int level, const mc_header_op_t *op)
{
    for (int i = level + 1; i < 3; i++) {
        const mc_header_ops_t *o = lv->ops[i];
        if (!o)
            continue;
        for (uint32_t k = 0; k < o->n_add; k++)
            if ((o->add[k].action == MC_HDR_OVERWRITE_OR_ADD || o->add[k].action == MC_HDR_OVERWRITE_IF_EXISTS) &&
                mc_h1_token_eq(o->add[k].name, o->add[k].name_len, op->name, op->name_len))
                return 1;
    }
    return 0;
}

static void put_adds(out_t *o, const levels_t *lv, const mc_h1_header_t *orig, size_t n_orig)
{
    for (int i = 0; i < 3; i++) {
        const mc_header_ops_t *ops = lv->ops[i];
        if (!ops)
            continue;
        for (uint32_t k = 0; k < ops->n_add; k++) {
            const mc_header_op_t *op = &ops->add[k];
            int present = mc_h1_find_header(orig, n_orig, op->name, op->name_len) != NULL;
            switch (op->action) {
            case MC_HDR_ADD_IF_ABSENT:
                if (present)
                    continue;
                break;
            case MC_HDR_OVERWRITE_IF_EXISTS:
                if (!present || overwritten_later(lv, i, op))
                    continue;
                break;
            case MC_HDR_OVERWRITE_OR_ADD:
                if (overwritten_later(lv, i, op))
                    continue;
                break;
            default:
                break;
            }
            put_header(o, op->name, op->name_len, op->value, op->value_len);
        }
    }
}

static void put_peer_ip(out_t *o, const mc_addr_t *a)
{
    char buf[64];
    mc_addr_format(a, buf, sizeof(buf));
    /* "ip:port" or "[ip]:port" -> ip */
    char *colon = strrchr(buf, ':');
    if (colon)
        *colon = '\0';
    char *ip = buf;
    if (*ip == '[') {
        ip++;
        char *end = strchr(ip, ']');
        if (end)
            *end = '\0';
    }
    put(o, ip, strlen(ip));
}

/* The path sent upstream: rewritten per route, origin-form. */
static void put_path(out_t *o, const mc_http_session_t *s)
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

long mc_http_write_request_head(const mc_http_session_t *s, char *buf, size_t cap, const char *host_suffix)
{
    out_t o = {buf, 0, cap, 0};
    const mc_h1_request_t *q = &s->req;
    const mc_hcm_t *hcm = s->hcm;
    levels_t lv = request_levels(s);
    put(&o, q->method, q->method_len);
    PUTS(&o, " ");
    put_path(&o, s);
    PUTS(&o, " HTTP/1.1\r\nhost: ");
    if (s->route && s->route->host_rewrite)
        put(&o, s->route->host_rewrite, s->route->host_rewrite_len);
    else
        put(&o, q->authority ? q->authority : "", q->authority ? q->authority_len : 0);
    if (host_suffix)
        put(&o, host_suffix, strlen(host_suffix));
    PUTS(&o, "\r\n");
    int have_xff = 0, have_xfp = 0, have_rid = 0;
    for (size_t i = 0; i < q->n_headers; i++) {
        const mc_h1_header_t *h = &q->headers[i];
        if (mc_h1_hop_by_hop(q->headers, q->n_headers, h->name, h->name_len) ||
            name_is(h->name, h->name_len, "host") || name_is(h->name, h->name_len, "content-length") ||
            name_is(h->name, h->name_len, "expect"))
            continue;
        if (suppressed(&lv, h->name, h->name_len))
            continue;
        if (!have_xff && name_is(h->name, h->name_len, "x-forwarded-for")) {
            have_xff = 1;
            put(&o, h->name, h->name_len);
            PUTS(&o, ": ");
            put(&o, h->value, h->value_len);
            PUTS(&o, ", ");
            put_peer_ip(&o, &s->peer);
            PUTS(&o, "\r\n");
            continue;
        }
        if (name_is(h->name, h->name_len, "x-forwarded-proto"))
            have_xfp = 1;
        if (name_is(h->name, h->name_len, "x-request-id"))
            have_rid = 1;
        put_header(&o, h->name, h->name_len, h->value, h->value_len);
    }
    if (!have_xff) {
        PUTS(&o, "x-forwarded-for: ");
        put_peer_ip(&o, &s->peer);
        PUTS(&o, "\r\n");
    }
    if (!have_xfp)
        PUTS(&o, "x-forwarded-proto: http\r\n");
    if (!have_rid && s->request_id_len)
        put_header(&o, "x-request-id", 12, s->request_id, s->request_id_len);
    if (s->req_body == MC_H1_BODY_LENGTH) {
        PUTS(&o, "content-length: ");
        put_u64(&o, q->content_length);
        PUTS(&o, "\r\n");
    } else if (s->req_body == MC_H1_BODY_CHUNKED) {
        PUTS(&o, "transfer-encoding: chunked\r\n");
    }
    (void)hcm;
    put_adds(&o, &lv, q->headers, q->n_headers);
    PUTS(&o, "\r\n");
    return o.overflow ? -1 : (long)o.len;
}

long mc_http_write_response_head(const mc_http_session_t *s, char *buf, size_t cap, uint64_t service_ms)
{
    out_t o = {buf, 0, cap, 0};
    const mc_h1_response_t *r = &s->resp;
    levels_t lv = response_levels(s);
    PUTS(&o, "HTTP/1.1 ");
    put_u64(&o, (uint64_t)r->status);
    PUTS(&o, " ");
    if (r->reason_len)
        put(&o, r->reason, r->reason_len);
    else {
        const char *reason = mc_http_reason(r->status);
        put(&o, reason, strlen(reason));
    }
    PUTS(&o, "\r\n");
    for (size_t i = 0; i < r->n_headers; i++) {
        const mc_h1_header_t *h = &r->headers[i];
        if (mc_h1_hop_by_hop(r->headers, r->n_headers, h->name, h->name_len) ||
            name_is(h->name, h->name_len, "content-length"))
            continue;
        if (s->hcm->server_name && name_is(h->name, h->name_len, "server"))
            continue;
        if (suppressed(&lv, h->name, h->name_len))
            continue;
        put_header(&o, h->name, h->name_len, h->value, h->value_len);
    }
    if (s->resp_body == MC_H1_BODY_CHUNKED) {
        PUTS(&o, "transfer-encoding: chunked\r\n");
    } else if (s->resp_body == MC_H1_BODY_LENGTH ||
               (s->resp_body == MC_H1_BODY_NONE &&
                mc_h1_find_header(r->headers, r->n_headers, "content-length", 14))) {
        PUTS(&o, "content-length: ");
        put_u64(&o, r->content_length);
        PUTS(&o, "\r\n");
    }
    PUTS(&o, "x-envoy-upstream-service-time: ");
    put_u64(&o, service_ms);
    PUTS(&o, "\r\n");
    if (s->hcm->server_name)
        put_header(&o, "server", 6, s->hcm->server_name, s->hcm->server_name_len);
    if (s->close_after)
        PUTS(&o, "connection: close\r\n");
    else if (s->req.minor_version == 0)
        PUTS(&o, "connection: keep-alive\r\n");
    put_adds(&o, &lv, r->headers, r->n_headers);
    PUTS(&o, "\r\n");
    return o.overflow ? -1 : (long)o.len;
}

long mc_http_write_local_reply(char *buf, size_t cap, int status, const char *body, size_t body_len, int close,
                               const char *request_id, size_t request_id_len)
{
    out_t o = {buf, 0, cap, 0};
    const char *reason = mc_http_reason(status);
    PUTS(&o, "HTTP/1.1 ");
    put_u64(&o, (uint64_t)status);
    PUTS(&o, " ");
    put(&o, reason, strlen(reason));
    PUTS(&o, "\r\ncontent-length: ");
    put_u64(&o, body_len);
    PUTS(&o, "\r\ncontent-type: text/plain\r\nserver: meshcore\r\n");
    if (request_id_len)
        put_header(&o, "x-request-id", 12, request_id, request_id_len);
    if (close)
        PUTS(&o, "connection: close\r\n");
    PUTS(&o, "\r\n");
    put(&o, body, body_len);
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
