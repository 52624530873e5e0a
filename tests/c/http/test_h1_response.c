/*
 * http/h1_parser.h: response heads, and the header helpers the proxy uses on
 * a parsed head (token comparison, lookup, hop-by-hop and Connection lists).
 * Every valid response is checked field by field; every rejected one, and
 * each of its prefixes, must answer -2 or the rejection. (Requests:
 * test_h1_parser.c.)
 */
#include "h1_test_util.h"

static int n_resp_ok, n_resp_bad;

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

int main(void)
{
    test_responses();
    test_helpers();
    printf("h1 parser: %d valid responses, %d rejected responses\n", n_resp_ok, n_resp_bad);
    CHECK_DONE();
}
