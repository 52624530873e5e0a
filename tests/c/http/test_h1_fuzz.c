/*
 * Deterministic mutation fuzzing of the HTTP/1.1 head parsers and the
 * chunked scanner (fixed seed, so a failure replays exactly).
 *
 * Each iteration takes a corpus message (valid and invalid requests,
 * responses, chunked bodies), applies a few random mutations biased toward
 * the bytes that matter to HTTP framing, and checks invariants rather than
 * answers:
 * - no read outside [buf, buf + len) (every input is an exact-size heap copy,
 *   so ASan reports the first byte past it);
 * - the result is -2, -1 with a known status and a reason, or a length in
 *   1..len; every view lies inside the head and every field is well formed;
 * - a prefix answers -2 or exactly what the whole answers (the same bytes
 *   fed in two pieces give the same result as fed at once); the head alone
 *   parses to the same length;
 * - the chunked scanner gives the same total, done flag, reason and
 *   data_bytes whether fed at once, in two pieces or one byte at a time.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "http/h1_chunked.h"
#include "http/h1_parser.h"
#include "meshcore/rand.h"

#ifndef ITERATIONS /* -DITERATIONS=... -DFUZZ_SEED=... for a longer run */
#define ITERATIONS 500000
#endif
#ifndef FUZZ_SEED
#define FUZZ_SEED 0x4d43483146555a5aull
#endif
#define MAXBUF 4096
#define NHDR 16

static const char *requests[] = {
    "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
    "GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: curl/8.4.0\r\nAccept: */*\r\n\r\n",
    "POST /submit HTTP/1.1\r\nHost: h\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nhello, world!",
    "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;e=v\r\nhello\r\n0\r\nT: 1\r\n\r\n",
    "PUT /up HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5, 5\r\n\r\n",
    "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    "GET http://example.com/x?y HTTP/1.1\r\nHost: other\r\n\r\n",
    "CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n",
    "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
    "\r\nGET /chat HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, X-Hop\r\nUpgrade: websocket\r\nX-Hop: 1\r\n\r\n",
    "POST /grpc.S/M HTTP/1.1\r\nHost: h\r\nTE: trailers\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: h\r\nCookie: a=0123456789abcdef0123456789abcdef\tb=caf\xc3\xa9\r\n\r\n",
    /* invalid ones, to mutate back toward validity */
    "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n",
    "GET / HTTP/1.1\nHost: h\n\n",
    "GET / HTTP/2.0\r\nHost: h\r\n\r\n",
    "GET /a#b HTTP/1.1\r\nHost : h\r\n\r\n",
    "GET / HTTP/1.1\r\nExpect: foo\r\nHost: h\r\nHost: h\r\n\r\n",
};

static const char *responses[] = {
    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n",
    "HTTP/1.0 200 OK\r\n\r\nbody until close",
    "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    "HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n",
    "HTTP/1.1 200\r\nContent-Length: 0, 0\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
};

static const char *bodies[] = {
    "0\r\n\r\n",
    "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    "5;name=value;x\r\nhello\r\n0;last=\"q \\\" s\"\r\n\r\n",
    "A\r\n0123456789\r\n0\r\nX-Checksum: abc\r\nGrpc-Status: 0\r\n\r\n",
    "0005\r\nhello\r\n000\r\n\r\nGET / HTTP/1.1\r\n",
    "1000000000000000\r\n",
    "5 \r\nhello\r\n0\r\n\r\n",
    "0\r\n X: y\r\n\r\n",
};

static const char interesting[] = {'\r', '\n', ' ', '\t', ':', ',', ';', '=', '"', '\\', '0', '9', 'a', 'f',
                                   'F', '\0', 0x7f, (char)0x80, (char)0xff, '#', '?', '/', '[', ']', '@', '%',
                                   '-', '*', 'x', 0x01};

static const char *tokens[] = {
    "\r\n", "\r\n\r\n", "Content-Length: ", "Transfer-Encoding: chunked\r\n", "Host: h\r\n", ", chunked",
    "HTTP/1.1", "HTTP/1.0", " ", "chunked", "gzip", "100-continue", "Connection: close\r\n", "0\r\n\r\n",
    ";a=\"b\"", "CONNECT ", "OPTIONS * ", "http://", "9223372036854775807", "ffffffffffffffff", "Expect: ",
    "Upgrade", "keep-alive", "[::1]:80", "5, 5", "\r\n ",
};

static mc_rand_t rng;
static long n_req_ok, n_req_err, n_req_more, n_resp_ok, n_resp_err, n_chunk_done, n_chunk_err;

static size_t rnd(size_t n)
{
    return n ? (size_t)mc_rand_below(&rng, n) : 0;
}

static size_t mutate(char *buf, size_t len)
{
    int rounds = 1 + (int)rnd(4);
    for (int m = 0; m < rounds; m++) {
        size_t at = rnd(len + 1);
        switch (rnd(7)) {
        case 0: /* flip a bit */
            if (len)
                buf[rnd(len)] ^= (char)(1u << rnd(8));
            break;
        case 1: /* replace with an interesting byte */
            if (len)
                buf[rnd(len)] = interesting[rnd(sizeof(interesting))];
            break;
        case 2: /* insert an interesting byte */
            if (len < MAXBUF) {
                memmove(buf + at + 1, buf + at, len - at);
                buf[at] = interesting[rnd(sizeof(interesting))];
                len++;
            }
            break;
        case 3: { /* delete a range */
            size_t n = 1 + rnd(8);
            if (at + n > len)
                n = len - at;
            memmove(buf + at, buf + at + n, len - at - n);
            len -= n;
            break;
        }
        case 4: { /* duplicate a range */
            size_t from = rnd(len + 1), n = rnd(32);
            if (from + n > len)
                n = len - from;
            if (len + n > MAXBUF)
                break;
            char tmp[32];
            memcpy(tmp, buf + from, n);
            memmove(buf + at + n, buf + at, len - at);
            memcpy(buf + at, tmp, n);
            len += n;
            break;
        }
        case 5: { /* insert a dictionary token */
            const char *t = tokens[rnd(sizeof(tokens) / sizeof(tokens[0]))];
            size_t n = strlen(t);
            if (len + n > MAXBUF)
                break;
            memmove(buf + at + n, buf + at, len - at);
            memcpy(buf + at, t, n);
            len += n;
            break;
        }
        default: /* truncate */
            len = at;
            break;
        }
    }
    return len;
}

static char *dup_exact(const char *s, size_t n)
{
    char *b = malloc(n ? n : 1);
    memcpy(b, s, n);
    return b;
}

static int inside(const char *p, size_t n, const char *lo, const char *hi)
{
    return p >= lo && p + n <= hi;
}

static int is_tchar(unsigned char c)
{
    return (mc_h1_ctype[c] & MC_H1_CT_TCHAR) != 0;
}

static void check_headers(const mc_h1_header_t *h, size_t n, const char *lo, const char *hi)
{
    for (size_t i = 0; i < n; i++) {
        CHECK(h[i].name_len > 0 && inside(h[i].name, h[i].name_len, lo, hi));
        CHECK(inside(h[i].value, h[i].value_len, lo, hi));
        for (size_t k = 0; k < h[i].name_len; k++)
            CHECK(is_tchar((unsigned char)h[i].name[k]));
        for (size_t k = 0; k < h[i].value_len; k++)
            CHECK(mc_h1_ctype[(unsigned char)h[i].value[k]] & MC_H1_CT_FIELD);
        if (h[i].value_len) {
            CHECK(h[i].value[0] != ' ' && h[i].value[0] != '\t');
            CHECK(h[i].value[h[i].value_len - 1] != ' ' && h[i].value[h[i].value_len - 1] != '\t');
        }
    }
}

static int req_parse(const char *s, size_t len, const mc_h1_limits_t *lim, mc_h1_request_t *req, mc_h1_header_t *h,
                     int *st, const char **why, int keep, char **out)
{
    char *b = dup_exact(s, len);
    memset(req, 0, sizeof(*req));
    req->headers = h;
    req->n_headers = NHDR;
    *st = 0;
    *why = NULL;
    int r = mc_h1_parse_request(b, len, req, lim, st, why);
    if (keep)
        *out = b;
    else
        free(b);
    return r;
}

static void scan_body(const char *s, size_t len);

static void fuzz_request(const char *s, size_t len)
{
    static const mc_h1_limits_t small = {.max_head_bytes = 120, .max_target_bytes = 16, .max_headers = 4};
    const mc_h1_limits_t *lim = rnd(4) ? NULL : &small;
    mc_h1_header_t h[NHDR], h2[NHDR];
    mc_h1_request_t req, req2;
    int st, st2;
    const char *why, *why2;
    char *b;
    int r = req_parse(s, len, lim, &req, h, &st, &why, 1, &b);
    CHECK(r == MC_H1_NEED_MORE || r == MC_H1_ERROR || (r > 0 && (size_t)r <= len));
    if (r == MC_H1_ERROR) {
        n_req_err++;
        CHECK(why != NULL);
        CHECK(st == 400 || st == 414 || st == 417 || st == 431 || st == 501 || st == 505);
    } else if (r == MC_H1_NEED_MORE) {
        n_req_more++;
    } else if (r > 0) {
        n_req_ok++;
        const char *end = b + r;
        CHECK((size_t)r <= (lim ? lim->max_head_bytes : MC_H1_DEFAULT_MAX_HEAD_BYTES));
        CHECK(req.method_len > 0 && inside(req.method, req.method_len, b, end));
        for (size_t k = 0; k < req.method_len; k++)
            CHECK(is_tchar((unsigned char)req.method[k]));
        CHECK(req.target_len > 0 && inside(req.target, req.target_len, b, end));
        CHECK(req.target_len <= (lim ? lim->max_target_bytes : MC_H1_DEFAULT_MAX_TARGET_BYTES));
        for (size_t k = 0; k < req.target_len; k++)
            CHECK(mc_h1_ctype[(unsigned char)req.target[k]] & MC_H1_CT_TARGET);
        CHECK(req.minor_version == 0 || req.minor_version == 1);
        CHECK(req.n_headers <= (lim ? lim->max_headers : NHDR));
        check_headers(h, req.n_headers, b, end);
        CHECK(req.path == NULL || (req.path_len == 1 && req.path[0] == '/') ||
              inside(req.path, req.path_len, req.target, req.target + req.target_len));
        CHECK(req.query == NULL || inside(req.query, req.query_len, req.target, req.target + req.target_len));
        CHECK(req.authority == NULL || inside(req.authority, req.authority_len, b, end));
        CHECK(req.form != MC_H1_FORM_AUTHORITY || req.connect);
        CHECK(req.body == MC_H1_BODY_NONE || req.body == MC_H1_BODY_LENGTH || req.body == MC_H1_BODY_CHUNKED);
        CHECK(req.body != MC_H1_BODY_CHUNKED || (req.minor_version == 1 && !req.connect));
        CHECK(req.content_length <= (uint64_t)INT64_MAX);
        CHECK(req.minor_version == 0 || mc_h1_find_header(h, req.n_headers, "host", 4));
        /* the head alone gives the same length; what follows is a body */
        CHECK(req_parse(s, (size_t)r, lim, &req2, h2, &st2, &why2, 0, NULL) == r);
        if (req.body == MC_H1_BODY_CHUNKED)
            scan_body(s + r, len - (size_t)r);
    }
    /* a prefix answers -2 or exactly the same */
    size_t k = rnd(len + 1);
    int rk = req_parse(s, k, lim, &req2, h2, &st2, &why2, 0, NULL);
    if (r > 0 && k < (size_t)r)
        CHECK(rk == MC_H1_NEED_MORE);
    else
        CHECK(rk == MC_H1_NEED_MORE || (rk == r && (r != MC_H1_ERROR || (st2 == st && why2 == why))));
    if (k == len)
        CHECK(rk == r);
    free(b);
}

static void fuzz_response(const char *s, size_t len)
{
    mc_h1_header_t h[NHDR];
    mc_h1_response_t resp;
    unsigned flags = (unsigned)rnd(4);
    char *b = dup_exact(s, len);
    const char *why = NULL, *why2 = NULL;
    memset(&resp, 0, sizeof(resp));
    resp.headers = h;
    resp.n_headers = NHDR;
    int r = mc_h1_parse_response(b, len, &resp, flags, NULL, &why);
    CHECK(r == MC_H1_NEED_MORE || r == MC_H1_ERROR || (r > 0 && (size_t)r <= len));
    if (r == MC_H1_ERROR) {
        n_resp_err++;
        CHECK(why != NULL);
    } else if (r > 0) {
        n_resp_ok++;
        CHECK(resp.status >= 100 && resp.status <= 599);
        CHECK(resp.minor_version == 0 || resp.minor_version == 1);
        CHECK(inside(resp.reason, resp.reason_len, b, b + r));
        check_headers(h, resp.n_headers, b, b + r);
        CHECK(resp.body != MC_H1_BODY_UNTIL_CLOSE || !resp.keep_alive);
        CHECK(!(flags & MC_H1_TO_HEAD) || resp.body == MC_H1_BODY_NONE);
        if (resp.body == MC_H1_BODY_CHUNKED)
            scan_body(s + r, len - (size_t)r);
    }
    size_t k = rnd(len + 1);
    char *p = dup_exact(s, k);
    memset(&resp, 0, sizeof(resp));
    resp.headers = h;
    resp.n_headers = NHDR;
    int rk = mc_h1_parse_response(p, k, &resp, flags, NULL, &why2);
    if (r > 0 && k < (size_t)r)
        CHECK(rk == MC_H1_NEED_MORE);
    else
        CHECK(rk == MC_H1_NEED_MORE || (rk == r && (r != MC_H1_ERROR || why2 == why)));
    free(p);
    free(b);
}

typedef struct scan_result {
    ssize_t total;
    int done;
    const char *why;
    uint64_t data;
} scan_result_t;

/* Feeds s in pieces ending at the given cut points, as the proxy would:
 * stop at the first error or at the end of the body. */
static scan_result_t scan_pieces(const char *s, size_t len, const size_t *cuts, size_t ncuts)
{
    mc_h1_chunked_t c;
    scan_result_t r = {0, 0, NULL, 0};
    mc_h1_chunked_init(&c);
    size_t at = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t to = i < ncuts ? cuts[i] : len;
        char *p = dup_exact(s + at, to - at);
        int done = 0;
        const char *why = NULL;
        ssize_t n = mc_h1_chunked_scan(&c, p, to - at, &done, &why);
        free(p);
        if (n < 0) {
            r.total = -1;
            r.why = why;
            CHECK(why != NULL);
            return r;
        }
        CHECK((size_t)n <= to - at);
        CHECK(done || (size_t)n == to - at);
        CHECK(c.data_bytes <= (size_t)(r.total + n));
        r.total += n;
        r.data = c.data_bytes;
        if (done) {
            r.done = 1;
            return r;
        }
        at = to;
    }
    return r;
}

static int same(scan_result_t a, scan_result_t b)
{
    return a.total == b.total && a.done == b.done && a.why == b.why && (a.total < 0 || a.data == b.data);
}

static void scan_body(const char *s, size_t len)
{
    scan_result_t whole = scan_pieces(s, len, NULL, 0);
    if (whole.total < 0)
        n_chunk_err++;
    else if (whole.done)
        n_chunk_done++;
    size_t cut = rnd(len + 1);
    CHECK(same(scan_pieces(s, len, &cut, 1), whole));
    if (rnd(16) == 0) {
        size_t cuts[MAXBUF];
        for (size_t i = 0; i + 1 < len; i++)
            cuts[i] = i + 1;
        CHECK(same(scan_pieces(s, len, cuts, len ? len - 1 : 0), whole));
    }
}

int main(void)
{
    static char buf[MAXBUF + 64];
    struct timespec a, b;
    mc_rand_seed(&rng, FUZZ_SEED); /* fixed: failures replay */
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long it = 0; it < ITERATIONS; it++) {
        int kind = (int)rnd(10);
        const char *seed;
        if (kind < 5)
            seed = requests[rnd(sizeof(requests) / sizeof(requests[0]))];
        else if (kind < 7)
            seed = responses[rnd(sizeof(responses) / sizeof(responses[0]))];
        else
            seed = bodies[rnd(sizeof(bodies) / sizeof(bodies[0]))];
        size_t len = strlen(seed);
        memcpy(buf, seed, len);
        len = mutate(buf, len);
        if (kind < 5)
            fuzz_request(buf, len);
        else if (kind < 7)
            fuzz_response(buf, len);
        else
            scan_body(buf, len);
        if (check_failures) {
            fprintf(stderr, "iteration %ld (kind %d), input of %zu bytes:\n", it, kind, len);
            fwrite(buf, 1, len, stderr);
            fprintf(stderr, "\n");
            break;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    printf("h1 fuzz: %d iterations in %.2fs; requests ok/err/more %ld/%ld/%ld, responses ok/err %ld/%ld, "
           "chunked done/err %ld/%ld\n",
           ITERATIONS, s, n_req_ok, n_req_err, n_req_more, n_resp_ok, n_resp_err, n_chunk_done, n_chunk_err);
    CHECK_DONE();
}
