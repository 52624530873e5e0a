/* Shared by the HTTP/1.1 parser's tests (test_h1_parser.c: requests;
 * test_h1_response.c: responses and the header helpers): each parse runs on
 * an exact-size heap copy so ASan catches a read past len. */
#ifndef MESHCORE_TEST_H1_UTIL_H
#define MESHCORE_TEST_H1_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "http/h1_parser.h"

#define CASE_CHECK(cond, name)                                                                     \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: case %s: CHECK failed: %s\n", __FILE__, __LINE__, name, #cond); \
            check_failures++;                                                                      \
        }                                                                                          \
    } while (0)

#define NHDR 128

/* Equal to the expected C string; NULL expects NULL. */
static inline int eqs(const char *p, size_t n, const char *want)
{
    if (!want)
        return p == NULL;
    return p && n == strlen(want) && memcmp(p, want, n) == 0;
}

static inline char *dup_exact(const char *s, size_t n)
{
    char *b = malloc(n ? n : 1);
    memcpy(b, s, n);
    return b;
}

static inline int preq(const char *s, size_t n, mc_h1_request_t *req, mc_h1_header_t *h, size_t cap,
                const mc_h1_limits_t *lim, int *status, const char **reason)
{
    char *b = dup_exact(s, n);
    memset(req, 0, sizeof(*req));
    req->headers = h;
    req->n_headers = cap;
    *status = 0;
    *reason = NULL;
    int r = mc_h1_parse_request(b, n, req, lim, status, reason);
    free(b); /* only return values and statuses survive this helper */
    return r;
}

static inline int presp(const char *s, size_t n, mc_h1_response_t *resp, mc_h1_header_t *h, unsigned flags,
                 const char **reason)
{
    char *b = dup_exact(s, n);
    memset(resp, 0, sizeof(*resp));
    resp->headers = h;
    resp->n_headers = NHDR;
    *reason = NULL;
    int r = mc_h1_parse_response(b, n, resp, flags, NULL, reason);
    free(b);
    return r;
}

#endif
