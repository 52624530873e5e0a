/*
 * http/h1_parser.h: request heads (responses and the header helpers:
 * test_h1_response.c).
 *
 * Table-driven: every valid message is checked field by field, then again
 * with a pipelined request after it (the head length must not move), then
 * fed one byte longer at a time (-2 until the last byte). Every rejection is
 * checked for its exact status, and every prefix of it must answer -2 or
 * that same rejection. Each parse runs on an exact-size heap copy so ASan
 * catches a read past len.
 */
#include <time.h>

#include "h1_test_util.h"

static int n_ok, n_bad;

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
    time_typical_request();
    printf("h1 parser: %d valid requests, %d rejected requests\n", n_ok, n_bad);
    CHECK_DONE();
}
