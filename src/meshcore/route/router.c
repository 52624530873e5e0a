/* Route matching; see route/router.h. Linear over routes, as Envoy: route
 * order is the user's priority order, and tables are small enough that the
 * match itself (a few memcmp per route) dominates, not the walk. */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "route/router.h"

void mc_route_req_from_h1(mc_route_req_t *rq, const mc_h1_request_t *req)
{
    memset(rq, 0, sizeof(*rq));
    rq->method = req->method;
    rq->method_len = req->method_len;
    rq->path = req->path ? req->path : "";
    rq->path_len = req->path ? req->path_len : 0;
    rq->query = req->query;
    rq->query_len = req->query_len;
    /* In the target the query follows the path after a '?'; only then is
     * "path?query" one contiguous view (not for an absolute-form target
     * whose empty path the parser reports as a static "/"). */
    rq->full_path = rq->path;
    rq->full_path_len = rq->path_len;
    if (req->query && req->path && req->query == req->path + req->path_len + 1)
        rq->full_path_len = req->path_len + 1 + req->query_len;
    rq->authority = req->authority ? req->authority : "";
    rq->authority_len = req->authority ? req->authority_len : 0;
    rq->scheme = "http";
    rq->scheme_len = 4;
    rq->headers = req->headers;
    rq->n_headers = req->n_headers;
}

static int ieq(const char *a, const char *b, size_t n)
{
    return strncasecmp(a, b, n) == 0;
}

static int eq(const char *a, const char *b, size_t n, int ignore_case)
{
    return ignore_case ? ieq(a, b, n) : memcmp(a, b, n) == 0;
}

int mc_router_header_matches(const mc_matcher_t *h, const mc_route_req_t *rq, pcre2_match_data *md)
{
    const char *v = NULL;
    size_t len = 0;
    int found = 1, hit = 0;
    switch (h->field) {
    case MC_FIELD_METHOD:
        v = rq->method, len = rq->method_len;
        break;
    case MC_FIELD_AUTHORITY:
        v = rq->authority, len = rq->authority_len;
        break;
    case MC_FIELD_PATH:
        v = rq->full_path, len = rq->full_path_len;
        break;
    case MC_FIELD_SCHEME:
        v = rq->scheme, len = rq->scheme_len;
        break;
    default: {
        /* A repeated header is matched as its values joined with ",", as
         * Envoy does (HeaderUtility::getAllOfHeaderAsString). */
        char joined[4096];
        size_t jlen = 0;
        const mc_h1_header_t *one = NULL;
        found = 0;
        for (size_t i = 0; i < rq->n_headers; i++) {
            const mc_h1_header_t *x = &rq->headers[i];
            if (x->name_len != h->name_len || !ieq(x->name, h->name, h->name_len))
                continue;
            if (found++ == 0) {
                one = x;
                continue;
            }
            if (found == 2) {
                if (one->value_len > sizeof(joined))
                    return h->m.invert; /* too long to match: treat as no match */
                memcpy(joined, one->value, one->value_len);
                jlen = one->value_len;
            }
            if (jlen + 1 + x->value_len > sizeof(joined))
                return h->m.invert;
            joined[jlen++] = ',';
            memcpy(joined + jlen, x->value, x->value_len);
            jlen += x->value_len;
        }
        if (!found) /* absent: only an inverted presence check matches */
            return h->m.kind == MC_STR_PRESENT && h->m.invert;
        hit = found == 1 ? mc_str_matches(&h->m, one->value, one->value_len, md)
                         : mc_str_matches(&h->m, joined, jlen, md);
        return hit != h->m.invert;
    }
    }
    (void)found;
    return mc_str_matches(&h->m, v, len, md) != h->m.invert;
}

/* Finds `name` in a query string; sets *v to its raw value. */
static int query_param(const char *q, size_t qlen, const char *name, size_t nlen, const char **v, size_t *vlen)
{
    size_t i = 0;
    while (i <= qlen && q) {
        size_t end = i;
        while (end < qlen && q[end] != '&')
            end++;
        size_t eqpos = i;
        while (eqpos < end && q[eqpos] != '=')
            eqpos++;
        if (eqpos - i == nlen && memcmp(q + i, name, nlen) == 0) {
            *v = eqpos < end ? q + eqpos + 1 : q + end;
            *vlen = eqpos < end ? end - eqpos - 1 : 0;
            return 1;
        }
        i = end + 1;
    }
    return 0;
}

static int route_matches(const mc_route_t *r, const mc_route_req_t *rq, pcre2_match_data *md)
{
    int ci = !r->case_sensitive;
    switch (r->path_kind) {
    case MC_PATH_PREFIX:
        if (rq->full_path_len < r->path_len || !eq(rq->full_path, r->path, r->path_len, ci))
            return 0;
        break;
    case MC_PATH_EXACT:
        if (rq->path_len != r->path_len || !eq(rq->path, r->path, r->path_len, ci))
            return 0;
        break;
    case MC_PATH_REGEX:
        if (!md || pcre2_match(r->path_re, (PCRE2_SPTR)rq->path, rq->path_len, 0, 0, md, NULL) < 0)
            return 0;
        break;
    case MC_PATH_SEPARATED_PREFIX:
        if (rq->path_len < r->path_len || !eq(rq->path, r->path, r->path_len, ci))
            return 0;
        if (rq->path_len > r->path_len && rq->path[r->path_len] != '/')
            return 0;
        break;
    }
    for (uint32_t i = 0; i < r->n_headers; i++)
        if (!mc_router_header_matches(&r->headers[i], rq, md))
            return 0;
    for (uint32_t i = 0; i < r->n_query; i++) {
        const mc_matcher_t *q = &r->query[i];
        const char *v;
        size_t vlen;
        if (!query_param(rq->query, rq->query_len, q->name, q->name_len, &v, &vlen))
            return 0;
        if (!mc_str_matches(&q->m, v, vlen, md))
            return 0;
    }
    return 1;
}

const mc_route_t *mc_router_match(const mc_vhost_t *v, const mc_route_req_t *rq, pcre2_match_data *md)
{
    for (uint32_t i = 0; i < v->n_routes; i++)
        if (route_matches(&v->routes[i], rq, md))
            return &v->routes[i];
    return NULL;
}

static const mc_vhost_t *lookup(const mc_route_table_t *rt, const char *host, size_t len)
{
    /* exact: binary search over the sorted, lower-cased patterns */
    uint32_t lo = 0, hi = rt->n_exact;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        const mc_domain_t *d = &rt->domains[mid];
        size_t n = d->len < len ? d->len : len;
        int c = memcmp(d->pattern, host, n);
        if (c == 0)
            c = d->len < len ? -1 : d->len > len ? 1 : 0;
        if (c == 0)
            return &rt->vhosts[d->vhost];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (uint32_t i = rt->n_exact; i < rt->n_domains; i++) {
        const mc_domain_t *d = &rt->domains[i];
        if (len <= d->len)
            continue; /* a wildcard never matches the empty string */
        if (d->kind == MC_DOMAIN_SUFFIX && memcmp(host + len - d->len, d->pattern, d->len) == 0)
            return &rt->vhosts[d->vhost];
        if (d->kind == MC_DOMAIN_PREFIX && memcmp(host, d->pattern, d->len) == 0)
            return &rt->vhosts[d->vhost];
    }
    return NULL;
}

const mc_vhost_t *mc_router_vhost(const mc_route_table_t *rt, const char *authority, size_t len)
{
    char host[256];
    if (len < sizeof(host)) {
        for (size_t i = 0; i < len; i++)
            host[i] = (char)tolower((unsigned char)authority[i]);
        const mc_vhost_t *v = lookup(rt, host, len);
        if (v)
            return v;
        /* "host:port" (not an IPv6 literal's colons) without the port */
        const char *colon = memrchr(host, ':', len);
        if (colon && !memchr(colon, ']', (size_t)(host + len - colon)) && (host[0] != '[' || colon[-1] == ']')) {
            v = lookup(rt, host, (size_t)(colon - host));
            if (v)
                return v;
        }
    }
    return rt->any_vhost >= 0 ? &rt->vhosts[rt->any_vhost] : NULL;
}
