/*
 * HTTP/1.1 heads and chunked bodies for embedders; see
 * include/meshcore/primitives.h. A thin copy-out over http/h1_parser.c and
 * http/h1_chunked.c: the verdicts are the proxy's, only the struct differs.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "http/h1_chunked.h"
#include "http/h1_parser.h"
#include "meshcore/primitives.h"

/* Header slots are handed to the parser as they are. */
_Static_assert(sizeof(mc_prim_field_t) == sizeof(mc_h1_header_t), "field layout");
_Static_assert(offsetof(mc_prim_field_t, value) == offsetof(mc_h1_header_t, value), "field layout");
_Static_assert(offsetof(mc_prim_field_t, value_len) == offsetof(mc_h1_header_t, value_len), "field layout");
_Static_assert((int)MC_PRIM_BODY_CHUNKED == (int)MC_H1_BODY_CHUNKED && (int)MC_PRIM_BODY_UNTIL_CLOSE == (int)MC_H1_BODY_UNTIL_CLOSE,
               "body kinds");

void mc_prim_default_limits(mc_prim_limits_t *l)
{
    l->max_head_bytes = mc_h1_default_limits.max_head_bytes;
    l->max_target_bytes = mc_h1_default_limits.max_target_bytes;
    l->max_headers = mc_h1_default_limits.max_headers;
}

static void limits_of(mc_h1_limits_t *out, const mc_prim_limits_t *lim)
{
    *out = mc_h1_default_limits;
    if (lim) {
        out->max_head_bytes = lim->max_head_bytes;
        out->max_target_bytes = lim->max_target_bytes;
        out->max_headers = lim->max_headers;
    }
}

int mc_prim_parse_request(const char *buf, size_t len, const mc_prim_limits_t *lim, mc_prim_field_t *fields,
                          size_t cap, mc_prim_head_t *h)
{
    mc_h1_request_t req;
    mc_h1_limits_t l;
    limits_of(&l, lim);
    memset(h, 0, sizeof(*h));
    req.headers = (mc_h1_header_t *)fields;
    req.n_headers = cap;
    int status = 400;
    const char *reason = NULL;
    int rc = mc_h1_parse_request(buf, len, &req, &l, &status, &reason);
    if (rc == MC_H1_ERROR) {
        h->error_status = status;
        h->error_reason = reason ? reason : "malformed request";
    }
    if (rc <= 0)
        return rc;
    h->method = req.method, h->method_len = req.method_len;
    h->target = req.target, h->target_len = req.target_len;
    h->scheme = req.scheme, h->scheme_len = req.scheme_len;
    h->path = req.path, h->path_len = req.path_len;
    h->query = req.query, h->query_len = req.query_len, h->has_query = req.query != NULL;
    h->authority = req.authority, h->authority_len = req.authority_len, h->has_authority = req.authority != NULL;
    h->minor_version = req.minor_version;
    h->form = req.form;
    h->n_fields = req.n_headers;
    h->body = req.body;
    h->content_length = req.content_length;
    h->keep_alive = req.keep_alive;
    h->expect_continue = req.expect_continue;
    h->upgrade = req.upgrade;
    h->connect = req.connect;
    h->te_trailers = req.te_trailers;
    return rc;
}

int mc_prim_parse_response(const char *buf, size_t len, const mc_prim_limits_t *lim, int to_head, int to_connect,
                           mc_prim_field_t *fields, size_t cap, mc_prim_head_t *h)
{
    mc_h1_response_t resp;
    mc_h1_limits_t l;
    limits_of(&l, lim);
    memset(h, 0, sizeof(*h));
    resp.headers = (mc_h1_header_t *)fields;
    resp.n_headers = cap;
    const char *reason = NULL;
    unsigned flags = (to_head ? MC_H1_TO_HEAD : 0u) | (to_connect ? MC_H1_TO_CONNECT : 0u);
    int rc = mc_h1_parse_response(buf, len, &resp, flags, &l, &reason);
    if (rc == MC_H1_ERROR) {
        h->error_status = 502; /* what the proxy answers its client */
        h->error_reason = reason ? reason : "malformed response";
    }
    if (rc <= 0)
        return rc;
    h->minor_version = resp.minor_version;
    h->status = resp.status;
    h->reason = resp.reason, h->reason_len = resp.reason_len;
    h->n_fields = resp.n_headers;
    h->body = resp.body;
    h->content_length = resp.content_length;
    h->keep_alive = resp.keep_alive;
    h->upgrade = resp.upgrade;
    return rc;
}

struct mc_prim_chunked {
    mc_h1_chunked_t c;
};

mc_prim_chunked_t *mc_prim_chunked_new(void)
{
    mc_prim_chunked_t *c = malloc(sizeof(*c));
    if (c)
        mc_h1_chunked_init(&c->c);
    return c;
}

void mc_prim_chunked_free(mc_prim_chunked_t *c)
{
    free(c);
}

/* As the proxy's dechunking (proxy/http_upstream.c): chunk data is scanned
 * in runs, framing one byte at a time so a run never crosses into it. */
ssize_t mc_prim_chunked_decode(mc_prim_chunked_t *c, const char *in, size_t len, char *out, size_t *out_len,
                               int *done, const char **reason)
{
    size_t off = 0, n_out = 0;
    *done = 0;
    while (off < len && !*done) {
        uint64_t data = mc_h1_chunked_data_next(&c->c);
        size_t want = data ? (data < len - off ? (size_t)data : len - off) : 1;
        ssize_t n = mc_h1_chunked_scan(&c->c, in + off, want, done, reason);
        if (n < 0) {
            *out_len = n_out;
            return -1;
        }
        if (data) {
            memcpy(out + n_out, in + off, (size_t)n);
            n_out += (size_t)n;
        }
        off += (size_t)n;
        if (n == 0)
            break;
    }
    *out_len = n_out;
    return (ssize_t)off;
}
