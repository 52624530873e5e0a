/*
 * gRPC over a stream: the grpc-status of a response (a trailers-only
 * response carries it in its head; otherwise proxy/h2_adapt.c takes it from
 * the trailers), read for retries (retry_on cancelled, unavailable, ...),
 * access logs (%GRPC_STATUS%) and Istio's grpc_response_status label.
 */
#include <string.h>

#include "proxy/http_stream.h"

int mc_http_grpc_status_of(const mc_h1_response_t *r)
{
    const mc_h1_header_t *h = mc_h1_find_header(r->headers, r->n_headers, "grpc-status", 11);
    if (!h || h->value_len == 0 || h->value_len > 2)
        return -1;
    int st = 0;
    for (size_t i = 0; i < h->value_len; i++) {
        if (h->value[i] < '0' || h->value[i] > '9')
            return -1;
        st = st * 10 + (h->value[i] - '0');
    }
    return st;
}

/* grpc-timeout: TimeoutValue TimeoutUnit, at most 8 digits (gRPC over
 * HTTP/2). 0 if absent or malformed (then the route timeout applies). */
static uint64_t grpc_timeout_ns(const char *v, size_t n)
{
    if (n < 2 || n > 9)
        return 0;
    uint64_t x = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return 0;
        x = x * 10 + (uint64_t)(v[i] - '0');
    }
    switch (v[n - 1]) {
    case 'H':
        return x * 3600ull * 1000000000ull;
    case 'M':
        return x * 60ull * 1000000000ull;
    case 'S':
        return x * 1000000000ull;
    case 'm':
        return x * 1000000ull;
    case 'u':
        return x * 1000ull;
    case 'n':
        return x;
    default:
        return 0;
    }
}

void mc_http_grpc_request(mc_http_stream_t *s)
{
    const mc_h1_request_t *q = &s->req;
    const mc_h1_header_t *ct = mc_h1_find_header(q->headers, q->n_headers, "content-type", 12);
    s->grpc_request = ct && ct->value_len >= 16 && strncasecmp(ct->value, "application/grpc", 16) == 0 &&
                      (ct->value_len == 16 || ct->value[16] == '+' || ct->value[16] == ';');
    const mc_h1_header_t *t = mc_h1_find_header(q->headers, q->n_headers, "grpc-timeout", 12);
    s->grpc_timeout_ns = t ? grpc_timeout_ns(t->value, t->value_len) : 0;
}

/* Envoy's router (FilterUtility::finalTimeout) for the deprecated
 * max_grpc_timeout: a gRPC call's grpc-timeout less grpc_timeout_offset
 * (when that leaves time), then capped at max_grpc_timeout; no header is
 * no deadline, so the cap applies (0: none at all). */
static uint64_t max_grpc_timeout_ns(const mc_http_stream_t *s)
{
    const mc_route_t *r = s->route;
    uint64_t t = s->grpc_timeout_ns;
    if (r->grpc_offset_ns < t)
        t -= r->grpc_offset_ns;
    if (r->max_grpc_timeout_ns && (t == 0 || t > r->max_grpc_timeout_ns))
        t = r->max_grpc_timeout_ns;
    return t;
}

uint64_t mc_http_route_timeout_ns(const mc_http_stream_t *s)
{
    const mc_route_t *r = s->route;
    if (r->max_grpc_timeout && s->grpc_request)
        return max_grpc_timeout_ns(s);
    if (!r->grpc_timeout_header || !s->grpc_timeout_ns)
        return r->timeout_ns;
    /* Envoy: the header's value, capped at grpc_timeout_header_max (0: no
     * cap), less grpc_timeout_header_offset when that leaves time */
    uint64_t t = s->grpc_timeout_ns;
    if (r->grpc_timeout_max_ns && t > r->grpc_timeout_max_ns)
        t = r->grpc_timeout_max_ns;
    if (r->grpc_timeout_offset_ns < t)
        t -= r->grpc_timeout_offset_ns;
    return t;
}
