/*
 * http/h1_parser.h: request and response heads.
 *
 * Table-driven: every valid message is checked field by field, then again
 * with a pipelined request after it (the head length must not move), then
 * fed one byte longer at a time (-2 until the last byte). Every rejection is
 * checked for its exact status, and every prefix of it must answer -2 or
 * that same rejection. Each parse runs on an exact-size heap copy so ASan
 * catches a read past len.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

static int n_ok, n_bad, n_resp_ok, n_resp_bad;

/* Equal to the expected C string; NULL expects NULL. */
static int eqs(const char *p, size_t n, const char *want)
{
    if (!want)
        return p == NULL;
    return p && n == strlen(want) && memcmp(p, want, n) == 0;
}

static char *dup_exact(const char *s, size_t n)
{
    char *b = malloc(n ? n : 1);
    memcpy(b, s, n);
    return b;
}

static int preq(const char *s, size_t n, mc_h1_request_t *req, mc_h1_header_t *h, size_t cap,
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

static int presp(const char *s, size_t n, mc_h1_response_t *resp, mc_h1_header_t *h, unsigned flags,
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

/* ---- valid requests ---- */

typedef struct rq_ok {
    const char *msg;
    const char *method, *path, *query, *authority, *scheme;
    int minor, form, body;
    uint64_t cl;
    int ka, expect, upgrade, te_trailers, conn_options;
    size_t nh;
    const char *hdr[8]; /* name, value pairs to check in order */
} rq_ok_t;

#define H11 " HTTP/1.1\r\nHost: h\r\n"

static const rq_ok_t ok_cases[] = {
    {.msg = "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", .method = "GET", .path = "/",
     .authority = "example.com", .minor = 1, .ka = 1, .nh = 1, .hdr = {"Host", "example.com"}},
    {.msg = "GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: curl/8.4.0\r\n"
            "Accept: */*\r\n\r\n",
     .method = "GET", .path = "/a/b", .query = "x=1&y=2", .authority = "example.com:8080", .minor = 1,
     .ka = 1, .nh = 3, .hdr = {"Host", "example.com:8080", "User-Agent", "curl/8.4.0", "Accept", "*/*"}},
    {.msg = "GET /p?" H11 "\r\n", .method = "GET", .path = "/p", .query = "", .authority = "h", .minor = 1,
     .ka = 1, .nh = 1},
    {.msg = "GET /p?a?b=/c" H11 "\r\n", .method = "GET", .path = "/p", .query = "a?b=/c", .authority = "h",
     .minor = 1, .ka = 1, .nh = 1},
    {.msg = "GET //double/slash" H11 "\r\n", .method = "GET", .path = "//double/slash", .authority = "h",
     .minor = 1, .ka = 1, .nh = 1},
    {.msg = "GET /a%20b/{c}|d^e`f\"g<h>[i]\\j" H11 "\r\n", .method = "GET",
     .path = "/a%20b/{c}|d^e`f\"g<h>[i]\\j", .authority = "h", .minor = 1, .ka = 1, .nh = 1},
    {.msg = "POST /submit" H11 "Content-Length: 13\r\n\r\n", .method = "POST", .path = "/submit",
     .authority = "h", .minor = 1, .body = MC_H1_BODY_LENGTH, .cl = 13, .ka = 1, .nh = 2},
    {.msg = "POST /" H11 "Transfer-Encoding: chunked\r\n\r\n", .method = "POST", .path = "/", .authority = "h",
     .minor = 1, .body = MC_H1_BODY_CHUNKED, .ka = 1, .nh = 2},
    {.msg = "POST /" H11 "Transfer-Encoding:   ChUnKeD \t\r\n\r\n", .method = "POST", .path = "/",
     .authority = "h", .minor = 1, .body = MC_H1_BODY_CHUNKED, .ka = 1, .nh = 2,
     .hdr = {"Host", "h", "Transfer-Encoding", "ChUnKeD"}},
    {.msg = "POST /" H11 "content-length: 5, 5\r\n\r\n", .method = "POST", .path = "/", .authority = "h",
     .minor = 1, .body = MC_H1_BODY_LENGTH, .cl = 5, .ka = 1, .nh = 2},
    {.msg = "POST /" H11 "Content-Length: 5 ,\t5 , 5\r\n\r\n", .method = "POST", .path = "/",
     .authority = "h", .minor = 1, .body = MC_H1_BODY_LENGTH, .cl = 5, .ka = 1, .nh = 2},
    {.msg = "POST /" H11 "Content-Length: 42\r\nX: y\r\nCONTENT-LENGTH: 42\r\n\r\n", .method = "POST",
     .path = "/", .authority = "h", .minor = 1, .body = MC_H1_BODY_LENGTH, .cl = 42, .ka = 1, .nh = 4},
    {.msg = "POST /" H11 "Content-Length: 0\r\n\r\n", .method = "POST", .path = "/", .authority = "h",
     .minor = 1, .body = MC_H1_BODY_LENGTH, .cl = 0, .ka = 1, .nh = 2},
    {.msg = "POST /" H11 "Content-Length: 007\r\n\r\n", .method = "POST", .path = "/", .authority = "h",
     .minor = 1, .body = MC_H1_BODY_LENGTH, .cl = 7, .ka = 1, .nh = 2},
    {.msg = "PUT /big" H11 "Content-Length: 9223372036854775807\r\n\r\n", .method = "PUT", .path = "/big",
     .authority = "h", .minor = 1, .body = MC_H1_BODY_LENGTH, .cl = 9223372036854775807ull, .ka = 1, .nh = 2},
    {.msg = "GET / HTTP/1.0\r\n\r\n", .method = "GET", .path = "/", .minor = 0, .ka = 0, .nh = 0},
    {.msg = "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", .method = "GET", .path = "/", .minor = 0,
     .ka = 1, .nh = 1},
    {.msg = "GET / HTTP/1.0\r\nConnection: Keep-Alive, close\r\n\r\n", .method = "GET", .path = "/",
     .minor = 0, .ka = 0, .nh = 1},
    {.msg = "GET / HTTP/1.0\r\nHost: legacy\r\nContent-Length: 3\r\n\r\n", .method = "GET", .path = "/",
     .authority = "legacy", .minor = 0, .body = MC_H1_BODY_LENGTH, .cl = 3, .ka = 0, .nh = 2},
    {.msg = "GET /" H11 "Connection: close\r\n\r\n", .method = "GET", .path = "/", .authority = "h",
     .minor = 1, .ka = 0, .nh = 2},
    {.msg = "GET /" H11 "Connection: , CLOSE ,,\r\n\r\n", .method = "GET", .path = "/", .authority = "h",
     .minor = 1, .ka = 0, .nh = 2},
    {.msg = "GET /" H11 "Connection: Keep-Alive\r\nKeep-Alive: timeout=5\r\n\r\n", .method = "GET",
     .path = "/", .authority = "h", .minor = 1, .ka = 1, .nh = 3},
    {.msg = "GET /chat" H11 "Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n", .method = "GET",
     .path = "/chat", .authority = "h", .minor = 1, .ka = 1, .upgrade = 1, .nh = 3},
    {.msg = "GET /chat" H11 "Connection: upgrade\r\n\r\n", .method = "GET", .path = "/chat",
     .authority = "h", .minor = 1, .ka = 1, .upgrade = 0, .nh = 2},
    {.msg = "GET /chat HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n", .method = "GET",
     .path = "/chat", .minor = 0, .ka = 0, .upgrade = 0, .nh = 2},
    {.msg = "GET /" H11 "Connection: close, X-Secret\r\nX-Secret: 1\r\n\r\n", .method = "GET", .path = "/",
     .authority = "h", .minor = 1, .ka = 0, .conn_options = 1, .nh = 3},
    {.msg = "PUT /up" H11 "Expect: 100-Continue\r\nContent-Length: 10\r\n\r\n", .method = "PUT",
     .path = "/up", .authority = "h", .minor = 1, .body = MC_H1_BODY_LENGTH, .cl = 10, .ka = 1, .expect = 1,
     .nh = 3},
    {.msg = "PUT /up" H11 "Expect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n", .method = "PUT",
     .path = "/up", .authority = "h", .minor = 1, .body = MC_H1_BODY_CHUNKED, .ka = 1, .expect = 1, .nh = 3},
    {.msg = "PUT /up HTTP/1.0\r\nExpect: something-else\r\n\r\n", .method = "PUT", .path = "/up", .minor = 0,
     .ka = 0, .expect = 0, .nh = 1},
    {.msg = "PUT /up HTTP/1.0\r\nExpect: 100-continue\r\n\r\n", .method = "PUT", .path = "/up", .minor = 0,
     .ka = 0, .expect = 0, .nh = 1},
    {.msg = "POST /grpc.Svc/M" H11 "TE: trailers\r\nContent-Type: application/grpc\r\n\r\n", .method = "POST",
     .path = "/grpc.Svc/M", .authority = "h", .minor = 1, .ka = 1, .te_trailers = 1, .nh = 3},
    {.msg = "GET http://example.com/x?y HTTP/1.1\r\nHost: other\r\n\r\n", .method = "GET", .path = "/x",
     .query = "y", .authority = "example.com", .scheme = "http", .minor = 1, .form = MC_H1_FORM_ABSOLUTE,
     .ka = 1, .nh = 1},
    {.msg = "GET HTTPS://Example.com:443 HTTP/1.1\r\nHost: h\r\n\r\n", .method = "GET", .path = "/",
     .authority = "Example.com:443", .scheme = "HTTPS", .minor = 1, .form = MC_H1_FORM_ABSOLUTE, .ka = 1,
     .nh = 1},
    {.msg = "GET http://a.b?q=1 HTTP/1.1\r\nHost:\r\n\r\n", .method = "GET", .path = "/", .query = "q=1",
     .authority = "a.b", .scheme = "http", .minor = 1, .form = MC_H1_FORM_ABSOLUTE, .ka = 1, .nh = 1},
    {.msg = "GET http://[2001:db8::1]:8080/p HTTP/1.0\r\n\r\n", .method = "GET", .path = "/p",
     .authority = "[2001:db8::1]:8080", .scheme = "http", .minor = 0, .form = MC_H1_FORM_ABSOLUTE, .ka = 0,
     .nh = 0},
    {.msg = "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", .method = "CONNECT",
     .authority = "example.com:443", .minor = 1, .form = MC_H1_FORM_AUTHORITY, .ka = 1, .nh = 1},
    {.msg = "CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\nContent-Length: 0\r\n\r\n",
     .method = "CONNECT", .authority = "[::1]:8443", .minor = 1, .form = MC_H1_FORM_AUTHORITY,
     .body = MC_H1_BODY_LENGTH, .ka = 1, .nh = 2},
    {.msg = "CONNECT 10.0.0.1:80 HTTP/1.0\r\n\r\n", .method = "CONNECT", .authority = "10.0.0.1:80",
     .minor = 0, .form = MC_H1_FORM_AUTHORITY, .ka = 0, .nh = 0},
    {.msg = "OPTIONS *" H11 "\r\n", .method = "OPTIONS", .path = "*", .authority = "h", .minor = 1,
     .form = MC_H1_FORM_ASTERISK, .ka = 1, .nh = 1},
    {.msg = "OPTIONS /x" H11 "\r\n", .method = "OPTIONS", .path = "/x", .authority = "h", .minor = 1, .ka = 1,
     .nh = 1},
    {.msg = "\r\nGET /" H11 "\r\n", .method = "GET", .path = "/", .authority = "h", .minor = 1, .ka = 1,
     .nh = 1},
    {.msg = "\r\n\r\n\r\n\r\nGET /" H11 "\r\n", .method = "GET", .path = "/", .authority = "h", .minor = 1,
     .ka = 1, .nh = 1},
    {.msg = "GET / HTTP/1.1\r\nHost:\r\n\r\n", .method = "GET", .path = "/", .authority = "", .minor = 1,
     .ka = 1, .nh = 1, .hdr = {"Host", ""}},
    {.msg = "GET / HTTP/1.1\r\nHOST: 10.1.2.3:80\r\n\r\n", .method = "GET", .path = "/",
     .authority = "10.1.2.3:80", .minor = 1, .ka = 1, .nh = 1},
    {.msg = "GET / HTTP/1.1\r\nhost: [2001:db8::1]\r\n\r\n", .method = "GET", .path = "/",
     .authority = "[2001:db8::1]", .minor = 1, .ka = 1, .nh = 1},
    {.msg = "GET / HTTP/1.1\r\nHost: \t svc.ns.svc.cluster.local:9080 \t\r\n\r\n", .method = "GET",
     .path = "/", .authority = "svc.ns.svc.cluster.local:9080", .minor = 1, .ka = 1, .nh = 1},
    {.msg = "GET / HTTP/1.1\r\nHost: a-b_c~d%41!$&'()*+,;=:\r\n\r\n", .method = "GET", .path = "/",
     .authority = "a-b_c~d%41!$&'()*+,;=:", .minor = 1, .ka = 1, .nh = 1},
    {.msg = "GET /" H11 "X-Name: caf\xc3\xa9 \xff\r\n\r\n", .method = "GET", .path = "/", .authority = "h",
     .minor = 1, .ka = 1, .nh = 2, .hdr = {"Host", "h", "X-Name", "caf\xc3\xa9 \xff"}},
    {.msg = "GET /" H11 "X: a\tb  c\r\nX-Empty:\r\nX-Blank:   \r\n\r\n", .method = "GET", .path = "/",
     .authority = "h", .minor = 1, .ka = 1, .nh = 4,
     .hdr = {"Host", "h", "X", "a\tb  c", "X-Empty", "", "X-Blank", ""}},
    {.msg = "GET /" H11 "X-!#$%&'*+-.^_`|~09az: v\r\n\r\n", .method = "GET", .path = "/", .authority = "h",
     .minor = 1, .ka = 1, .nh = 2, .hdr = {"Host", "h", "X-!#$%&'*+-.^_`|~09az", "v"}},
    {.msg = "GET /" H11 "Cookie: session=0123456789abcdef0123456789abcdef; theme=dark;\tlang=en-US\r\n\r\n",
     .method = "GET", .path = "/", .authority = "h", .minor = 1, .ka = 1, .nh = 2,
     .hdr = {"Host", "h", "Cookie", "session=0123456789abcdef0123456789abcdef; theme=dark;\tlang=en-US"}},
    {.msg = "PURGE /cache" H11 "\r\n", .method = "PURGE", .path = "/cache", .authority = "h", .minor = 1,
     .ka = 1, .nh = 1},
    {.msg = "M-SEARCH /upnp" H11 "\r\n", .method = "M-SEARCH", .path = "/upnp", .authority = "h", .minor = 1,
     .ka = 1, .nh = 1},
    {.msg = "HEAD /index.html" H11 "\r\n", .method = "HEAD", .path = "/index.html", .authority = "h",
     .minor = 1, .ka = 1, .nh = 1},
    {.msg = "DELETE /x/1" H11 "Content-Length: 0\r\n\r\n", .method = "DELETE", .path = "/x/1",
     .authority = "h", .minor = 1, .body = MC_H1_BODY_LENGTH, .ka = 1, .nh = 2},
    {.msg = "GET /" H11 "Set-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n", .method = "GET", .path = "/",
     .authority = "h", .minor = 1, .ka = 1, .nh = 3,
     .hdr = {"Host", "h", "Set-Cookie", "a=1", "Set-Cookie", "b=2"}},
    {.msg = "GET /" H11 "Expect:\r\n\r\n", .method = "GET", .path = "/", .authority = "h", .minor = 1,
     .ka = 1, .nh = 2},
};

static void check_req_fields(const rq_ok_t *c, const mc_h1_request_t *r)
{
    const char *m = c->msg;
    CASE_CHECK(eqs(r->method, r->method_len, c->method), m);
    CASE_CHECK(eqs(r->path, r->path_len, c->path), m);
    CASE_CHECK(eqs(r->query, r->query_len, c->query), m);
    CASE_CHECK(eqs(r->authority, r->authority_len, c->authority), m);
    CASE_CHECK(eqs(r->scheme, r->scheme_len, c->scheme), m);
    CASE_CHECK(r->minor_version == c->minor, m);
    CASE_CHECK(r->form == c->form, m);
    CASE_CHECK(r->body == c->body, m);
    CASE_CHECK(r->content_length == c->cl, m);
    CASE_CHECK(r->keep_alive == (unsigned)c->ka, m);
    CASE_CHECK(r->expect_continue == (unsigned)c->expect, m);
    CASE_CHECK(r->upgrade == (unsigned)c->upgrade, m);
    CASE_CHECK(r->te_trailers == (unsigned)c->te_trailers, m);
    CASE_CHECK(r->conn_options == (unsigned)c->conn_options, m);
    CASE_CHECK(r->connect == (c->form == MC_H1_FORM_AUTHORITY), m);
    CASE_CHECK(r->n_headers == c->nh, m);
    for (size_t i = 0; i < 4 && c->hdr[2 * i] && i < r->n_headers; i++) {
        CASE_CHECK(eqs(r->headers[i].name, r->headers[i].name_len, c->hdr[2 * i]), m);
        CASE_CHECK(eqs(r->headers[i].value, r->headers[i].value_len, c->hdr[2 * i + 1]), m);
    }
}

static const char pipelined[] = "GET /next HTTP/1.1\r\nHost: h\r\n\r\n";

static void test_valid_requests(void)
{
    mc_h1_header_t h[NHDR];
    mc_h1_request_t req;
    char buf[1024];
    int st;
    const char *why;
    for (size_t i = 0; i < sizeof(ok_cases) / sizeof(ok_cases[0]); i++) {
        const rq_ok_t *c = &ok_cases[i];
        size_t len = strlen(c->msg);
        /* in place, so the views can be checked */
        memset(&req, 0, sizeof(req));
        req.headers = h;
        req.n_headers = NHDR;
        int r = mc_h1_parse_request(c->msg, len, &req, NULL, &st, &why);
        CASE_CHECK(r == (int)len, c->msg);
        if (r != (int)len) {
            fprintf(stderr, "  -> r=%d status=%d reason=%s\n", r, st, why ? why : "-");
            continue;
        }
        check_req_fields(c, &req);
        CASE_CHECK(req.target == c->msg + (req.method_len + 1 + (size_t)(req.method - c->msg)), c->msg);

        /* with the next request right behind it */
        memcpy(buf, c->msg, len);
        memcpy(buf + len, pipelined, sizeof(pipelined));
        memset(&req, 0, sizeof(req));
        req.headers = h;
        req.n_headers = NHDR;
        r = mc_h1_parse_request(buf, len + sizeof(pipelined) - 1, &req, NULL, &st, &why);
        CASE_CHECK(r == (int)len, c->msg);
        if (r == (int)len)
            check_req_fields(c, &req);

        /* one byte at a time */
        for (size_t k = 0; k < len; k++) {
            r = preq(c->msg, k, &req, h, NHDR, NULL, &st, &why);
            CASE_CHECK(r == MC_H1_NEED_MORE, c->msg);
        }
        CASE_CHECK(preq(c->msg, len, &req, h, NHDR, NULL, &st, &why) == (int)len, c->msg);
        n_ok++;
    }
}

/* ---- rejected requests ---- */

typedef struct rq_bad {
    const char *msg;
    int status;
} rq_bad_t;

static const rq_bad_t bad_cases[] = {
    /* framing */
    {"POST /" H11 "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
    {"POST /" H11 "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400},
    {"POST /" H11 "Transfer-Encoding: gzip\r\nContent-Length: 5\r\n\r\n", 400},
    {"POST /" H11 "Content-Length: abc\r\n\r\n", 400},
    {"POST /" H11 "Content-Length: -5\r\n\r\n", 400},
    {"POST /" H11 "Content-Length: +5\r\n\r\n", 400},
    {"POST /" H11 "Content-Length: 5 5\r\n\r\n", 400},
    {"POST /" H11 "Content-Length:\r\n\r\n", 400},
    {"POST /" H11 "Content-Length: \r\n\r\n", 400},
    {"POST /" H11 "Content-Length: 5,\r\n\r\n", 400},
    {"POST /" H11 "Content-Length: ,5\r\n\r\n", 400},
    {"POST /" H11 "Content-Length: 5,,5\r\n\r\n", 400},
    {"POST /" H11 "Content-Length: 0x10\r\n\r\n", 400},
    {"POST /" H11 "Content-Length: 5.0\r\n\r\n", 400},
    {"POST /" H11 "Content-Length: 5;\r\n\r\n", 400},
    {"POST /" H11 "Content-Length: \"5\"\r\n\r\n", 400},
    {"POST /" H11 "Content-Length: 9223372036854775808\r\n\r\n", 400},
    {"POST /" H11 "Content-Length: 18446744073709551616\r\n\r\n", 400},
    {"POST /" H11 "Content-Length: 99999999999999999999999999\r\n\r\n", 400},
    {"POST /" H11 "Content-Length: 5, 6\r\n\r\n", 400},
    {"POST /" H11 "Content-Length: 5\r\nContent-Length: 6\r\n\r\n", 400},
    {"POST /" H11 "Content-Length: 5\r\nContent-Length: 5, 0\r\n\r\n", 400},
    {"POST /" H11 "Transfer-Encoding: chunked, gzip\r\n\r\n", 400},
    {"POST /" H11 "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n", 400},
    {"POST /" H11 "Transfer-Encoding: gzip\r\n\r\n", 501},
    {"POST /" H11 "Transfer-Encoding: gzip, chunked\r\n\r\n", 501},
    {"POST /" H11 "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", 501},
    {"POST /" H11 "Transfer-Encoding: identity\r\n\r\n", 501},
    {"POST /" H11 "Transfer-Encoding: x-unknown\r\n\r\n", 501},
    {"POST /" H11 "Transfer-Encoding: gzip;q=0.5, chunked\r\n\r\n", 501},
    {"POST /" H11 "Transfer-Encoding: foo;a=\"x, y\", chunked\r\n\r\n", 501},
    {"POST /" H11 "Transfer-Encoding: chunked, chunked\r\n\r\n", 400},
    {"POST /" H11 "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
    {"POST /" H11 "Transfer-Encoding:\r\n\r\n", 400},
    {"POST /" H11 "Transfer-Encoding: chunked,\r\n\r\n", 400},
    {"POST /" H11 "Transfer-Encoding: ,chunked\r\n\r\n", 400},
    {"POST /" H11 "Transfer-Encoding: chunked;x=1\r\n\r\n", 400},
    {"POST /" H11 "Transfer-Encoding: \"chunked\"\r\n\r\n", 400},
    {"POST /" H11 "Transfer-Encoding: chunked gzip\r\n\r\n", 400},
    {"POST /" H11 "Transfer-Encoding: gzip;q\r\n\r\n", 400},
    {"POST /" H11 "Transfer-Encoding: gzip;q=\"x\r\n\r\n", 400},
    {"POST /" H11 "Transfer-Encoding: chunked\x0b\r\n\r\n", 400},
    {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
    {"POST / HTTP/1.0\r\nTransfer-Encoding: gzip\r\n\r\n", 400},
    {"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
    {"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\nContent-Length: 5\r\n\r\n", 400},
    /* field lines */
    {"GET /" H11 "X: a\r\n b\r\n\r\n", 400},
    {"GET /" H11 "X: a\r\n\tb\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\n Host: h\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost\t: h\r\n\r\n", 400},
    {"GET /" H11 ": v\r\n\r\n", 400},
    {"GET /" H11 "X: a\rb\r\n\r\n", 400},
    {"GET /" H11 "X: a\nb\r\n\r\n", 400},
    {"GET /" H11 "X: a\x01" "b\r\n\r\n", 400},
    {"GET /" H11 "X: a\x1f\r\n\r\n", 400},
    {"GET /" H11 "X: a\x7f\r\n\r\n", 400},
    {"GET /" H11 "X(y): v\r\n\r\n", 400},
    {"GET /" H11 "X y: v\r\n\r\n", 400},
    {"GET /" H11 "X\"y: v\r\n\r\n", 400},
    {"GET /" H11 "X@y: v\r\n\r\n", 400},
    {"GET /" H11 "X/y: v\r\n\r\n", 400},
    {"GET /" H11 "X\xc3\xa9: v\r\n\r\n", 400},
    {"GET /" H11 "\x80: v\r\n\r\n", 400},
    {"GET /" H11 "NoColon\r\n\r\n", 400},
    {"GET /" H11 "X: v\r\n\x7f\r\n\r\n", 400},
    /* request line */
    {" / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"G(ET / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"GET /  HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400},
    {"GET /\r\n\r\n", 400},
    {"GET / \r\n\r\n", 400},
    {"GET /a#frag HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"GET /a\x80 HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"GET /a\x7f HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"GET /a\tb HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"GET a/b HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"GET ftp://x/ HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"GET http:// HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"GET http:///path HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"GET http://user@host/ HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"GET http:/x/ HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"GET example.com:80 HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"CONNECT / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"CONNECT example.com HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"CONNECT example.com: HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"CONNECT http://a:1/ HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"CONNECT * HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"GET * HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"OPTIONS *x HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    /* version */
    {"GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505},
    {"GET / HTTP/1.2\r\nHost: h\r\n\r\n", 505},
    {"GET / HTTP/0.9\r\nHost: h\r\n\r\n", 505},
    {"GET / HTTP/3.0\r\n\r\n", 505},
    {"GET / HTTP/1.10\r\nHost: h\r\n\r\n", 400},
    {"GET / HTTP/1\r\nHost: h\r\n\r\n", 400},
    {"GET / HTTP/11\r\nHost: h\r\n\r\n", 400},
    {"GET / http/1.1\r\nHost: h\r\n\r\n", 400},
    {"GET / HTTP/1.x\r\nHost: h\r\n\r\n", 400},
    {"GET / HTTPS/1.1\r\nHost: h\r\n\r\n", 400},
    {"GET / HTTP/1,1\r\nHost: h\r\n\r\n", 400},
    /* line endings */
    {"GET / HTTP/1.1\nHost: h\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: h\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: h\r\n\n", 400},
    {"\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"\r\n\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"\rGET / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"GET / HTTP/1.1\rHost: h\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: h\r\n\rX", 400},
    {"GET / HTTP/1.1\r\nHost: h\r\r\n\r\n", 400},
    {"\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    /* Host */
    {"GET / HTTP/1.1\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nX: y\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: a\r\nhost:\r\n\r\n", 400},
    {"GET http://a/ HTTP/1.1\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: a, b\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: a:http\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: a:123456\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: a:65536\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: a:1:2\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: [zz]\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: []\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: user@a\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: :80\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: a%zz\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: a%4\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: caf\xc3\xa9\r\n\r\n", 400},
    /* Connection, Expect */
    {"GET /" H11 "Connection: close;x\r\n\r\n", 400},
    {"GET /" H11 "Connection: a b\r\n\r\n", 400},
    {"GET /" H11 "Expect: foo\r\n\r\n", 417},
    {"GET /" H11 "Expect: 100-continue, foo\r\n\r\n", 417},
    {"GET /" H11 "Expect: 100-continue;x=1\r\n\r\n", 417},
    {"GET /" H11 "Expect: 200-ok\r\n\r\n", 417},
};

static void check_rejected(const char *msg, size_t len, int want, const mc_h1_limits_t *lim, size_t cap)
{
    mc_h1_header_t h[NHDR];
    mc_h1_request_t req;
    int st, st0 = 0;
    const char *why, *why0 = NULL;
    int r = preq(msg, len, &req, h, cap, lim, &st0, &why0);
    CASE_CHECK(r == MC_H1_ERROR, msg);
    CASE_CHECK(st0 == want, msg);
    CASE_CHECK(why0 != NULL, msg);
    if (r != MC_H1_ERROR || st0 != want)
        fprintf(stderr, "  -> r=%d status=%d (want %d) reason=%s\n", r, st0, want, why0 ? why0 : "-");
    for (size_t k = 0; k < len; k++) {
        r = preq(msg, k, &req, h, cap, lim, &st, &why);
        CASE_CHECK(r == MC_H1_NEED_MORE || (r == MC_H1_ERROR && st == st0 && why == why0), msg);
    }
}

static void test_rejected_requests(void)
{
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        check_rejected(bad_cases[i].msg, strlen(bad_cases[i].msg), bad_cases[i].status, NULL, NHDR);
        n_bad++;
    }
    /* NUL in a field value, in a target, in a name: strlen cannot carry these */
    static const char nul_value[] = "GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n";
    static const char nul_target[] = "GET /a\0b HTTP/1.1\r\nHost: h\r\n\r\n";
    static const char nul_name[] = "GET / HTTP/1.1\r\nHost: h\r\nX\0Y: v\r\n\r\n";
    check_rejected(nul_value, sizeof(nul_value) - 1, 400, NULL, NHDR);
    check_rejected(nul_target, sizeof(nul_target) - 1, 400, NULL, NHDR);
    check_rejected(nul_name, sizeof(nul_name) - 1, 400, NULL, NHDR);
    n_bad += 3;
}

/* A bad byte at every offset of a long value and of a long target: the
 * eight-bytes-at-a-time scanners must not step over it. */
static void test_bad_byte_every_offset(void)
{
    static const char bad_value[] = {0x00, 0x01, '\n', 0x1f, 0x7f};
    static const char bad_target[] = {'#', ' ', 0x7f, (char)0x80, (char)0xff, 0x00, '\t'};
    char msg[256];
    mc_h1_header_t h[NHDR];
    mc_h1_request_t req;
    int st;
    const char *why;
    for (size_t off = 0; off < 40; off++) {
        for (size_t b = 0; b < sizeof(bad_value); b++) {
            char val[48];
            memset(val, 'v', 40);
            val[off] = bad_value[b];
            int n = snprintf(msg, sizeof(msg), "GET / HTTP/1.1\r\nHost: h\r\nX-Long: ");
            memcpy(msg + n, val, 40);
            memcpy(msg + n + 40, "\r\n\r\n", 4);
            int r = preq(msg, (size_t)n + 44, &req, h, NHDR, NULL, &st, &why);
            CHECK(r == MC_H1_ERROR && st == 400);
        }
        for (size_t b = 0; b < sizeof(bad_target); b++) {
            char tgt[48];
            tgt[0] = '/';
            memset(tgt + 1, 't', 39);
            if (off)
                tgt[off] = bad_target[b];
            else
                continue;
            int n = snprintf(msg, sizeof(msg), "GET ");
            memcpy(msg + n, tgt, 40);
            int m = snprintf(msg + n + 40, sizeof(msg) - (size_t)n - 40, " HTTP/1.1\r\nHost: h\r\n\r\n");
            int r = preq(msg, (size_t)(n + 40 + m), &req, h, NHDR, NULL, &st, &why);
            CHECK(r == MC_H1_ERROR && st == 400);
        }
    }
    /* and every allowed value byte passes at every offset */
    for (int c = 0; c < 256; c++) {
        if (c != '\t' && (c < 0x20 || c == 0x7f))
            continue;
        char val[24];
        memset(val, 'v', sizeof(val));
        val[c % 24] = (char)c;
        val[0] = 'v'; /* leading OWS would be trimmed */
        val[23] = 'v';
        int n = snprintf(msg, sizeof(msg), "GET / HTTP/1.1\r\nHost: h\r\nX: ");
        memcpy(msg + n, val, sizeof(val));
        memcpy(msg + n + 24, "\r\n\r\n", 4);
        int r = preq(msg, (size_t)n + 28, &req, h, NHDR, NULL, &st, &why);
        CHECK_EQ(r, n + 28);
    }
}

/* ---- limits ---- */

/* "GET <target> HTTP/1.1\r\nHost: h\r\n" + nh "Xn: v" lines + padding header
 * so that the whole head is exactly total bytes (when total > 0). */
static size_t build(char *out, size_t target_len, size_t nh, size_t total)
{
    size_t n = 0;
    n += (size_t)sprintf(out + n, "GET /");
    memset(out + n, 'a', target_len - 1);
    n += target_len - 1;
    n += (size_t)sprintf(out + n, " HTTP/1.1\r\nHost: h\r\n");
    for (size_t i = 0; i < nh; i++)
        n += (size_t)sprintf(out + n, "X%zu: v\r\n", i);
    if (total) {
        size_t pad = total - n - 7; /* "P: " + pad + "\r\n", then the final CRLF */
        n += (size_t)sprintf(out + n, "P: ");
        memset(out + n, 'p', pad);
        n += pad;
        n += (size_t)sprintf(out + n, "\r\n");
    }
    n += (size_t)sprintf(out + n, "\r\n");
    return n;
}

static void test_limits(void)
{
    static char msg[128 * 1024];
    mc_h1_header_t h[NHDR + 8];
    mc_h1_request_t req;
    int st;
    const char *why;
    const mc_h1_limits_t small = {.max_head_bytes = 256, .max_target_bytes = 32, .max_headers = 4};

    /* target: at the limit passes, one more byte is 414, even mid-line */
    size_t n = build(msg, 32, 0, 0);
    CHECK_EQ(preq(msg, n, &req, h, NHDR, &small, &st, &why), n);
    CHECK_EQ(req.target_len, 32);
    n = build(msg, 33, 0, 0);
    CHECK_EQ(preq(msg, n, &req, h, NHDR, &small, &st, &why), MC_H1_ERROR);
    CHECK_EQ(st, 414);
    CHECK_EQ(preq(msg, 4 + 33, &req, h, NHDR, &small, &st, &why), MC_H1_ERROR); /* "GET " + 33, no SP yet */
    CHECK_EQ(st, 414);
    CHECK_EQ(preq(msg, 4 + 32, &req, h, NHDR, &small, &st, &why), MC_H1_NEED_MORE);
    check_rejected(msg, n, 414, &small, NHDR);

    /* head bytes */
    n = build(msg, 1, 0, 256);
    CHECK_EQ(n, 256);
    CHECK_EQ(preq(msg, n, &req, h, NHDR, &small, &st, &why), 256);
    n = build(msg, 1, 0, 257);
    CHECK_EQ(n, 257);
    CHECK_EQ(preq(msg, n, &req, h, NHDR, &small, &st, &why), MC_H1_ERROR);
    CHECK_EQ(st, 431);
    CHECK_EQ(preq(msg, 256, &req, h, NHDR, &small, &st, &why), MC_H1_NEED_MORE);
    check_rejected(msg, n, 431, &small, NHDR);
    /* leading empty lines count toward the head */
    memmove(msg + 2, msg, 254);
    memcpy(msg, "\r\n", 2);
    CHECK_EQ(preq(msg, 256, &req, h, NHDR, &small, &st, &why), MC_H1_NEED_MORE);
    CHECK_EQ(preq(msg, 257, &req, h, NHDR, &small, &st, &why), MC_H1_ERROR);

    /* header count: Host + 3 = 4 passes, Host + 4 is 431 */
    n = build(msg, 1, 3, 0);
    CHECK_EQ(preq(msg, n, &req, h, NHDR, &small, &st, &why), n);
    CHECK_EQ(req.n_headers, 4);
    n = build(msg, 1, 4, 0);
    CHECK_EQ(preq(msg, n, &req, h, NHDR, &small, &st, &why), MC_H1_ERROR);
    CHECK_EQ(st, 431);
    check_rejected(msg, n, 431, &small, NHDR);
    /* the caller's array is a limit too */
    n = build(msg, 1, 2, 0);
    CHECK_EQ(preq(msg, n, &req, h, 3, NULL, &st, &why), n);
    CHECK_EQ(preq(msg, n, &req, h, 2, NULL, &st, &why), MC_H1_ERROR);
    CHECK_EQ(st, 431);

    /* the defaults */
    n = build(msg, MC_H1_DEFAULT_MAX_TARGET_BYTES, 0, 0);
    CHECK_EQ(preq(msg, n, &req, h, NHDR, NULL, &st, &why), n);
    n = build(msg, MC_H1_DEFAULT_MAX_TARGET_BYTES + 1, 0, 0);
    CHECK_EQ(preq(msg, n, &req, h, NHDR, NULL, &st, &why), MC_H1_ERROR);
    CHECK_EQ(st, 414);
    n = build(msg, 1, 0, MC_H1_DEFAULT_MAX_HEAD_BYTES);
    CHECK_EQ(preq(msg, n, &req, h, NHDR, NULL, &st, &why), n);
    n = build(msg, 1, 0, MC_H1_DEFAULT_MAX_HEAD_BYTES + 1);
    CHECK_EQ(preq(msg, n, &req, h, NHDR, NULL, &st, &why), MC_H1_ERROR);
    CHECK_EQ(st, 431);
    n = build(msg, 1, MC_H1_DEFAULT_MAX_HEADERS - 1, 0);
    CHECK_EQ(preq(msg, n, &req, h, NHDR + 8, NULL, &st, &why), n);
    CHECK_EQ(req.n_headers, MC_H1_DEFAULT_MAX_HEADERS);
    n = build(msg, 1, MC_H1_DEFAULT_MAX_HEADERS, 0);
    CHECK_EQ(preq(msg, n, &req, h, NHDR + 8, NULL, &st, &why), MC_H1_ERROR);
    CHECK_EQ(st, 431);
}

/* ---- responses ---- */

typedef struct rs_ok {
    const char *msg;
    unsigned flags;
    int minor, status;
    const char *reason;
    int body;
    uint64_t cl;
    int ka, upgrade;
    size_t nh;
} rs_ok_t;

static const rs_ok_t resp_ok[] = {
    {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", 0, 1, 200, "OK", MC_H1_BODY_LENGTH, 5, 1, 0, 1},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 0, 1, 200, "OK", MC_H1_BODY_CHUNKED, 0, 1, 0, 1},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked \r\nConnection: close\r\n\r\n", 0, 1, 200, "OK",
     MC_H1_BODY_CHUNKED, 0, 0, 0, 2},
    {"HTTP/1.1 200 OK\r\n\r\n", 0, 1, 200, "OK", MC_H1_BODY_UNTIL_CLOSE, 0, 0, 0, 0},
    {"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\n", 0, 0, 200, "OK", MC_H1_BODY_LENGTH, 3, 0, 0, 1},
    {"HTTP/1.0 200 OK\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\n", 0, 0, 200, "OK",
     MC_H1_BODY_LENGTH, 3, 1, 0, 2},
    {"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n", 0, 0, 200, "OK", MC_H1_BODY_UNTIL_CLOSE, 0, 0, 0, 1},
    {"HTTP/1.1 204 No Content\r\n\r\n", 0, 1, 204, "No Content", MC_H1_BODY_NONE, 0, 1, 0, 0},
    {"HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n", 0, 1, 304, "Not Modified", MC_H1_BODY_NONE,
     100, 1, 0, 1},
    {"HTTP/1.1 100 Continue\r\n\r\n", 0, 1, 100, "Continue", MC_H1_BODY_NONE, 0, 1, 0, 0},
    {"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n", 0, 1, 103, "Early Hints",
     MC_H1_BODY_NONE, 0, 1, 0, 1},
    {"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", 0, 1, 101,
     "Switching Protocols", MC_H1_BODY_NONE, 0, 1, 1, 2},
    {"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n", MC_H1_TO_HEAD, 1, 200, "OK", MC_H1_BODY_NONE, 1234, 1,
     0, 1},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", MC_H1_TO_HEAD, 1, 200, "OK", MC_H1_BODY_NONE, 0,
     1, 0, 1},
    {"HTTP/1.1 200 OK\r\n\r\n", MC_H1_TO_HEAD, 1, 200, "OK", MC_H1_BODY_NONE, 0, 1, 0, 0},
    {"HTTP/1.1 200 Connection established\r\n\r\n", MC_H1_TO_CONNECT, 1, 200, "Connection established",
     MC_H1_BODY_NONE, 0, 1, 0, 0},
    {"HTTP/1.1 407 Proxy Auth\r\nContent-Length: 2\r\n\r\n", MC_H1_TO_CONNECT, 1, 407, "Proxy Auth",
     MC_H1_BODY_LENGTH, 2, 1, 0, 1},
    {"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", 0, 1, 200, "", MC_H1_BODY_LENGTH, 0, 1, 0, 1},
    {"HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n", 0, 1, 200, "", MC_H1_BODY_LENGTH, 0, 1, 0, 1},
    {"HTTP/1.1 404 Nicht  Gef\xfcnden\t\r\nContent-Length: 0\r\n\r\n", 0, 1, 404, "Nicht  Gef\xfcnden\t",
     MC_H1_BODY_LENGTH, 0, 1, 0, 1},
    {"HTTP/1.1 599 Whatever\r\nContent-Length: 0, 0\r\n\r\n", 0, 1, 599, "Whatever", MC_H1_BODY_LENGTH, 0, 1,
     0, 1},
    {"\r\nHTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n", 0, 1, 500,
     "Internal Server Error", MC_H1_BODY_LENGTH, 0, 1, 0, 1},
    {"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 1\r\n\r\n", 0, 1, 200, "OK",
     MC_H1_BODY_LENGTH, 1, 1, 0, 3},
    {"HTTP/1.1 200 OK\r\nHost: ignored in responses\r\nExpect: ignored\r\nContent-Length: 1\r\n\r\n", 0, 1,
     200, "OK", MC_H1_BODY_LENGTH, 1, 1, 0, 3},
};

static const char *resp_bad[] = {
    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
    "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
    "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
    "HTTP/1.1 99 Low\r\n\r\n",
    "HTTP/1.1 099 Low\r\n\r\n",
    "HTTP/1.1 600 High\r\n\r\n",
    "HTTP/1.1 2000 OK\r\n\r\n",
    "HTTP/1.1 20x OK\r\n\r\n",
    "HTTP/1.1 200OK\r\n\r\n",
    "HTTP/1.1  200 OK\r\n\r\n",
    "HTTP/1.1\t200 OK\r\n\r\n",
    "HTTP/2.0 200 OK\r\n\r\n",
    "HTTP/1.2 200 OK\r\n\r\n",
    "HTTP/0.9 200 OK\r\n\r\n",
    "http/1.1 200 OK\r\n\r\n",
    "ICY 200 OK\r\n\r\n",
    "HTTP/1.1 200 OK\n\r\n",
    "HTTP/1.1 200 OK\r\n\n",
    "HTTP/1.1 200 OK\r\nX: a\n\r\n",
    "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n",
    "HTTP/1.1 200 O\x01K\r\n\r\n",
    "HTTP/1.1 200 OK\r\nX : a\r\n\r\n",
    "HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n",
    "HTTP/1.1 200 OK\r\nX: a\x7f\r\n\r\n",
    "HTTP/1.1 200 OK\r\n: a\r\n\r\n",
    "HTTP/1.1 200 OK\r\nConnection: a b\r\n\r\n",
    "\r\n\r\n\r\n\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
};

static void check_resp(const rs_ok_t *c, const mc_h1_response_t *r)
{
    const char *m = c->msg;
    CASE_CHECK(r->minor_version == c->minor, m);
    CASE_CHECK(r->status == c->status, m);
    CASE_CHECK(eqs(r->reason, r->reason_len, c->reason), m);
    CASE_CHECK(r->body == c->body, m);
    CASE_CHECK(r->content_length == c->cl, m);
    CASE_CHECK(r->keep_alive == (unsigned)c->ka, m);
    CASE_CHECK(r->upgrade == (unsigned)c->upgrade, m);
    CASE_CHECK(r->n_headers == c->nh, m);
}

static void test_responses(void)
{
    mc_h1_header_t h[NHDR];
    mc_h1_response_t resp;
    const char *why;
    char buf[1024];
    static const char next[] = "HTTP/1.1 200 OK\r\n\r\n";
    for (size_t i = 0; i < sizeof(resp_ok) / sizeof(resp_ok[0]); i++) {
        const rs_ok_t *c = &resp_ok[i];
        size_t len = strlen(c->msg);
        memset(&resp, 0, sizeof(resp));
        resp.headers = h;
        resp.n_headers = NHDR;
        int r = mc_h1_parse_response(c->msg, len, &resp, c->flags, NULL, &why);
        CASE_CHECK(r == (int)len, c->msg);
        if (r != (int)len) {
            fprintf(stderr, "  -> r=%d reason=%s\n", r, r == -1 ? why : "-");
            continue;
        }
        check_resp(c, &resp);
        memcpy(buf, c->msg, len);
        memcpy(buf + len, next, sizeof(next));
        memset(&resp, 0, sizeof(resp));
        resp.headers = h;
        resp.n_headers = NHDR;
        CASE_CHECK(mc_h1_parse_response(buf, len + sizeof(next) - 1, &resp, c->flags, NULL, &why) == (int)len,
                   c->msg);
        check_resp(c, &resp);
        for (size_t k = 0; k < len; k++)
            CASE_CHECK(presp(c->msg, k, &resp, h, c->flags, &why) == MC_H1_NEED_MORE, c->msg);
        n_resp_ok++;
    }
    for (size_t i = 0; i < sizeof(resp_bad) / sizeof(resp_bad[0]); i++) {
        const char *m = resp_bad[i], *why0 = NULL;
        size_t len = strlen(m);
        int r = presp(m, len, &resp, h, 0, &why0);
        CASE_CHECK(r == MC_H1_ERROR && why0, m);
        if (r != MC_H1_ERROR)
            fprintf(stderr, "  -> r=%d\n", r);
        for (size_t k = 0; k < len; k++) {
            r = presp(m, k, &resp, h, 0, &why);
            CASE_CHECK(r == MC_H1_NEED_MORE || (r == MC_H1_ERROR && why == why0), m);
        }
        n_resp_bad++;
    }
    /* head limit and header count on the response side */
    static char big[70 * 1024];
    size_t n = (size_t)sprintf(big, "HTTP/1.1 200 OK\r\nX: ");
    memset(big + n, 'x', sizeof(big) - n);
    CHECK_EQ(presp(big, MC_H1_DEFAULT_MAX_HEAD_BYTES, &resp, h, 0, &why), MC_H1_NEED_MORE);
    CHECK_EQ(presp(big, MC_H1_DEFAULT_MAX_HEAD_BYTES + 1, &resp, h, 0, &why), MC_H1_ERROR);
    n = (size_t)sprintf(big, "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i < MC_H1_DEFAULT_MAX_HEADERS; i++)
        n += (size_t)sprintf(big + n, "X: y\r\n");
    memcpy(big + n, "\r\nX: y\r\n\r\n", 10);
    CHECK_EQ(presp(big, n + 2, &resp, h, 0, &why), n + 2); /* 100 fields */
    memcpy(big + n, "X: y\r\n\r\n", 8);
    CHECK_EQ(presp(big, n + 8, &resp, h, 0, &why), MC_H1_ERROR); /* 101 */
}

/* ---- helpers ---- */

static void test_helpers(void)
{
    CHECK(mc_h1_token_eq("Content-Length", 14, "content-length", 14));
    CHECK(!mc_h1_token_eq("Content-Length", 14, "content-lengtx", 14));
    CHECK(!mc_h1_token_eq("a", 1, "ab", 2));
    CHECK(!mc_h1_token_eq("\r", 1, "-", 1)); /* not a naive | 0x20 */

    static const char msg[] =
        "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nX-Keep: 2\r\n"
        "Connection: x-other\r\nKeep-Alive: timeout=5\r\nTE: trailers, deflate;q=0.5\r\n\r\n";
    mc_h1_header_t h[16];
    mc_h1_request_t req;
    memset(&req, 0, sizeof(req));
    req.headers = h;
    req.n_headers = 16;
    int st;
    const char *why;
    CHECK_EQ(mc_h1_parse_request(msg, sizeof(msg) - 1, &req, NULL, &st, &why), sizeof(msg) - 1);
    CHECK(req.conn_options);
    CHECK(req.te_trailers);
    const mc_h1_header_t *x = mc_h1_find_header(h, req.n_headers, "x-KEEP", 6);
    CHECK(x && eqs(x->value, x->value_len, "2"));
    CHECK(mc_h1_find_header(h, req.n_headers, "x-kee", 5) == NULL);
    CHECK(mc_h1_find_header(h, req.n_headers, "Connection", 10) == &h[1]);

    static const char *hop[] = {"Connection", "keep-alive", "PROXY-CONNECTION", "te", "Trailer",
                                "transfer-encoding", "Upgrade"};
    for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++) {
        CHECK(mc_h1_is_hop_by_hop(hop[i], strlen(hop[i])));
        CHECK(mc_h1_hop_by_hop(h, req.n_headers, hop[i], strlen(hop[i])));
    }
    CHECK(!mc_h1_is_hop_by_hop("Host", 4));
    CHECK(!mc_h1_is_hop_by_hop("Trailers", 8));
    CHECK(!mc_h1_is_hop_by_hop("Content-Length", 14));
    CHECK(!mc_h1_is_hop_by_hop("X-Hop", 5));
    CHECK(mc_h1_connection_lists(h, req.n_headers, "x-hop", 5));
    CHECK(mc_h1_connection_lists(h, req.n_headers, "X-Other", 7));
    CHECK(!mc_h1_connection_lists(h, req.n_headers, "X-Keep", 6));
    CHECK(mc_h1_hop_by_hop(h, req.n_headers, "X-HOP", 5));
    CHECK(!mc_h1_hop_by_hop(h, req.n_headers, "X-Keep", 6));
    CHECK(!mc_h1_hop_by_hop(h, req.n_headers, "Host", 4));

    CHECK(mc_h1_list_has_token("a, b ,c", 7, "C", 1));
    CHECK(mc_h1_list_has_token(",,trailers;q=1,", 15, "trailers", 8));
    CHECK(!mc_h1_list_has_token("trailersx", 9, "trailers", 8));
    CHECK(!mc_h1_list_has_token("x=\"a, trailers\"", 15, "trailers", 8));
    CHECK(!mc_h1_list_has_token("", 0, "a", 1));
}

/* ---- timing (informational, never asserted) ---- */

static void time_typical_request(void)
{
    static const char msg[] =
        "GET /api/v1/reviews/12345?include=ratings&lang=en HTTP/1.1\r\n"
        "Host: reviews.default.svc.cluster.local:9080\r\n"
        "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)\r\n"
        "Accept: application/json, text/plain, */*\r\n"
        "Accept-Encoding: gzip, deflate, br\r\n"
        "Accept-Language: en-US,en;q=0.9\r\n"
        "Cookie: session=6f1c2a9e0b7d4e3f8a5c; theme=dark\r\n"
        "X-Request-Id: 3f2b6c1e-8d4a-4b7e-9c0f-1a2b3c4d5e6f\r\n"
        "X-B3-TraceId: 80f198ee56343ba864fe8b2a57d3eff7\r\n"
        "Connection: keep-alive\r\n\r\n";
    mc_h1_header_t h[32];
    mc_h1_request_t req;
    int st;
    const char *why;
    const int iters = 200000;
    long sum = 0;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < iters; i++) {
        req.headers = h;
        req.n_headers = 32;
        sum += mc_h1_parse_request(msg, sizeof(msg) - 1, &req, NULL, &st, &why);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ns = ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / iters;
    CHECK_EQ(sum, (long)iters * (long)(sizeof(msg) - 1));
    printf("h1 request parse: %zu bytes, %zu headers, %.0f ns/parse (%.2f ns/byte)\n", sizeof(msg) - 1,
           req.n_headers, ns, ns / (double)(sizeof(msg) - 1));
}

int main(void)
{
    test_valid_requests();
    test_rejected_requests();
    test_bad_byte_every_offset();
    test_limits();
    test_responses();
    test_helpers();
    time_typical_request();
    printf("h1 parser: %d valid requests, %d rejected requests, %d valid responses, %d rejected responses\n",
           n_ok, n_bad, n_resp_ok, n_resp_bad);
    CHECK_DONE();
}
