/*
 * mc_h1_parse_request (http/h1_parser.h) with the default limits on any
 * bytes. Besides the sanitizers: a complete head's length is within the
 * input and parsing just those bytes gives the same length; a prefix never
 * yields a different verdict than the whole (it yields -2 or the same
 * answer); every view points into the buffer; the lookups over a parsed
 * head (find_header, list_has_token, hop_by_hop) stay inside it.
 */
#include "fuzz_util.h"
#include "http/h1_parser.h"

#define MAXH 128

static int parse(const char *buf, size_t len, mc_h1_request_t *req, mc_h1_header_t *hs, int *status)
{
    memset(req, 0, sizeof(*req));
    req->headers = hs;
    req->n_headers = MAXH;
    const char *reason = NULL;
    *status = 0;
    int n = mc_h1_parse_request(buf, len, req, NULL, status, &reason);
    if (n == MC_H1_ERROR) {
        FUZZ_ASSERT(reason != NULL, "error without a reason");
        FUZZ_ASSERT(*status >= 400 && *status <= 505, "status %d", *status);
    }
    return n;
}

static void check_views(const mc_h1_request_t *r, const char *buf, size_t n)
{
    FUZZ_ASSERT(fuzz_within(r->method, r->method_len, buf, n), "method");
    FUZZ_ASSERT(r->method_len > 0, "empty method");
    FUZZ_ASSERT(fuzz_within(r->target, r->target_len, buf, n), "target");
    if (r->path && !(r->path_len == 1 && r->path[0] == '/' && !fuzz_within(r->path, 1, buf, n)))
        FUZZ_ASSERT(fuzz_within(r->path, r->path_len, buf, n), "path");
    if (r->query)
        FUZZ_ASSERT(fuzz_within(r->query, r->query_len, buf, n), "query");
    if (r->authority)
        FUZZ_ASSERT(fuzz_within(r->authority, r->authority_len, buf, n), "authority");
    if (r->scheme)
        FUZZ_ASSERT(fuzz_within(r->scheme, r->scheme_len, buf, n), "scheme");
    FUZZ_ASSERT(r->minor_version == 0 || r->minor_version == 1, "minor %d", r->minor_version);
    FUZZ_ASSERT(r->n_headers <= MC_H1_DEFAULT_MAX_HEADERS, "%zu headers", r->n_headers);
    for (size_t i = 0; i < r->n_headers; i++) {
        FUZZ_ASSERT(fuzz_within(r->headers[i].name, r->headers[i].name_len, buf, n), "header name %zu", i);
        FUZZ_ASSERT(r->headers[i].value_len == 0 ||
                        fuzz_within(r->headers[i].value, r->headers[i].value_len, buf, n),
                    "header value %zu", i);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static mc_h1_header_t hs[MAXH];
    mc_h1_request_t req;
    int status;
    const char *buf = (const char *)data;
    int n = parse(buf, size, &req, hs, &status);
    FUZZ_ASSERT(n == MC_H1_ERROR || n == MC_H1_NEED_MORE || (n > 0 && (size_t)n <= size), "n=%d size=%zu", n,
                size);
    if (n > 0) {
        check_views(&req, buf, (size_t)n);
        for (size_t i = 0; i < req.n_headers; i++) {
            const mc_h1_header_t *h = &req.headers[i];
            FUZZ_ASSERT(mc_h1_find_header(req.headers, req.n_headers, h->name, h->name_len) != NULL, "find");
            (void)mc_h1_list_has_token(h->value, h->value_len, "close", 5);
            (void)mc_h1_hop_by_hop(req.headers, req.n_headers, h->name, h->name_len);
        }
        /* Exactly the head, in an exact-size buffer: the same length. */
        char *head = fuzz_copy(buf, (size_t)n);
        mc_h1_request_t again;
        static mc_h1_header_t hs2[MAXH];
        int m = parse(head, (size_t)n, &again, hs2, &status);
        FUZZ_ASSERT(m == n, "head alone: %d, with the rest: %d", m, n);
        free(head);
    }
    /* A prefix: -2, or the whole input's answer. */
    if (size > 1) {
        size_t cut = (size_t)data[size - 1] * 131u % size;
        char *pre = fuzz_copy(buf, cut);
        mc_h1_request_t p;
        static mc_h1_header_t hs3[MAXH];
        int k = parse(pre, cut, &p, hs3, &status);
        FUZZ_ASSERT(k == MC_H1_NEED_MORE || k == n, "prefix of %zu/%zu bytes: %d, whole: %d", cut, size, k, n);
        free(pre);
    }
    return 0;
}
