/*
 * http/h1_chunked.h: the streaming chunked-body scanner.
 *
 * Every valid body is scanned whole, with pipelined bytes after it (the
 * count must stop at the body's end), split in two at every point, in
 * three at every pair of points for short bodies, and one byte at a time;
 * each way must give the same length and data_bytes. Every invalid body
 * must fail however it is split, with the same reason, and stay failed.
 * Inputs live in exact-size heap copies so ASan sees any over-read.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "http/h1_chunked.h"

#define CASE_CHECK(cond, name)                                                                     \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: case %s: CHECK failed: %s\n", __FILE__, __LINE__, name, #cond); \
            check_failures++;                                                                      \
        }                                                                                          \
    } while (0)

static int n_valid, n_invalid;

typedef struct result {
    ssize_t total; /* bytes accepted, or -1 */
    int done;
    const char *reason;
    uint64_t data_bytes;
} result_t;

/* Feeds buf[0..len) cut at the given points (ascending); stops at the first
 * error or when done, as the proxy would. */
static result_t feed(const char *buf, size_t len, const size_t *cuts, size_t ncuts)
{
    mc_h1_chunked_t c;
    result_t r = {0, 0, NULL, 0};
    mc_h1_chunked_init(&c);
    size_t at = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t to = i < ncuts ? cuts[i] : len;
        char *piece = malloc(to - at ? to - at : 1);
        memcpy(piece, buf + at, to - at);
        int done = -1;
        const char *why = NULL;
        ssize_t n = mc_h1_chunked_scan(&c, piece, to - at, &done, &why);
        free(piece);
        if (n < 0) {
            r.total = -1;
            r.reason = why;
            /* sticky */
            CHECK(mc_h1_chunked_scan(&c, "0\r\n\r\n", 5, &done, &why) == -1 && why == r.reason);
            return r;
        }
        CHECK(done == 0 || done == 1);
        CHECK((size_t)n <= to - at);
        r.total += n;
        r.data_bytes = c.data_bytes;
        if (done) {
            r.done = 1;
            CHECK(mc_h1_chunked_scan(&c, "x", 1, &done, &why) == 0 && done == 1);
            return r;
        }
        CHECK((size_t)n == to - at); /* not done: every byte belongs to the body */
        at = to;
    }
    return r;
}

static result_t feed_bytewise(const char *buf, size_t len)
{
    size_t *cuts = malloc(sizeof(size_t) * (len ? len : 1));
    for (size_t i = 0; i + 1 < len; i++)
        cuts[i] = i + 1;
    result_t r = feed(buf, len, cuts, len ? len - 1 : 0);
    free(cuts);
    return r;
}

static int same(result_t a, result_t b)
{
    return a.total == b.total && a.done == b.done && a.reason == b.reason &&
           (a.total < 0 || a.data_bytes == b.data_bytes);
}

/* ---- valid ---- */

typedef struct ok {
    const char *body;
    size_t len; /* 0: strlen */
    uint64_t data;
} ok_t;

static const ok_t ok_cases[] = {
    {"0\r\n\r\n", 0, 0},
    {"000\r\n\r\n", 0, 0},
    {"5\r\nhello\r\n0\r\n\r\n", 0, 5},
    {"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", 0, 11},
    {"A\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n", 0, 20},
    {"0005\r\nhello\r\n000\r\n\r\n", 0, 5},
    {"1\r\n\r\r\n2\r\n\r\n\r\n4\r\n\r\n\r\n\r\n0\r\n\r\n", 0, 7},
    {"5;name=value\r\nhello\r\n0;last\r\n\r\n", 0, 5},
    {"5;a;b;c=d;e=f\r\nhello\r\n0\r\n\r\n", 0, 5},
    {"3;a=\"q \\\" s;=,\t\x80\";b\r\nabc\r\n0\r\n\r\n", 0, 3},
    {"3;a=\"\"\r\nabc\r\n0\r\n\r\n", 0, 3},
    {"3;!#$%&'*+-.^_`|~=!#$%&'*+-.^_`|~\r\nabc\r\n0\r\n\r\n", 0, 3},
    {"0\r\nX-Checksum: abc\r\nGrpc-Status: 0\r\n\r\n", 0, 0},
    {"2\r\nhi\r\n0\r\ngrpc-message:\r\nx:  \t a b\t\r\ny: caf\xc3\xa9\xff\r\n\r\n", 0, 2},
    {"0;ext=\"v\"\r\nT: v\r\n\r\n", 0, 0},
    {"3\r\n\0\x01\xff\r\n0\r\n\r\n", 13, 3},
};

static void check_valid(const char *body, size_t len, uint64_t data, const char *name)
{
    size_t cut[2];
    result_t whole = feed(body, len, NULL, 0);
    CASE_CHECK(whole.total == (ssize_t)len && whole.done && whole.data_bytes == data, name);
    if (!(whole.total == (ssize_t)len && whole.done))
        fprintf(stderr, "  -> total=%zd done=%d reason=%s\n", whole.total, whole.done,
                whole.reason ? whole.reason : "-");

    /* pipelined bytes after the body are not taken */
    static const char next[] = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
    char *buf = malloc(len + sizeof(next));
    memcpy(buf, body, len);
    memcpy(buf + len, next, sizeof(next));
    result_t pipe = feed(buf, len + sizeof(next) - 1, NULL, 0);
    CASE_CHECK(same(pipe, whole), name);
    for (size_t i = 0; i <= len + sizeof(next) - 1; i++) {
        cut[0] = i;
        CASE_CHECK(same(feed(buf, len + sizeof(next) - 1, cut, 1), whole), name);
    }
    free(buf);

    for (size_t i = 0; i <= len; i++) {
        cut[0] = i;
        CASE_CHECK(same(feed(body, len, cut, 1), whole), name);
        /* an incomplete prefix is accepted whole and not done */
        result_t pre = feed(body, i, NULL, 0);
        CASE_CHECK(i == len ? same(pre, whole) : (pre.total == (ssize_t)i && !pre.done), name);
    }
    if (len <= 64)
        for (size_t i = 0; i <= len; i++)
            for (size_t j = i; j <= len; j++) {
                cut[0] = i;
                cut[1] = j;
                CASE_CHECK(same(feed(body, len, cut, 2), whole), name);
            }
    CASE_CHECK(same(feed_bytewise(body, len), whole), name);
}

static void test_valid(void)
{
    for (size_t i = 0; i < sizeof(ok_cases) / sizeof(ok_cases[0]); i++) {
        const ok_t *c = &ok_cases[i];
        check_valid(c->body, c->len ? c->len : strlen(c->body), c->data, c->body);
        n_valid++;
    }
    /* big chunks, several of them, with extensions and trailers */
    static char big[20000];
    size_t n = 0;
    uint64_t data = 0;
    static const size_t sizes[] = {255, 1, 4096, 8191, 16};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        n += (size_t)sprintf(big + n, "%zx%s\r\n", sizes[i], i % 2 ? ";i=\"odd\"" : "");
        for (size_t k = 0; k < sizes[i]; k++)
            big[n + k] = (char)(k * 7 + i); /* includes CR, LF, NUL */
        n += sizes[i];
        data += sizes[i];
        n += (size_t)sprintf(big + n, "\r\n");
    }
    n += (size_t)sprintf(big + n, "0\r\nTrailer-A: 1\r\n\r\n");
    check_valid(big, n, data, "big");
    n_valid++;
}

/* ---- invalid ---- */

typedef struct bad {
    const char *body;
    size_t len; /* 0: strlen */
} bad_t;

static const bad_t bad_cases[] = {
    /* chunk-size */
    {"\r\n\r\n"},
    {" 5\r\nhello\r\n0\r\n\r\n"},
    {"5 \r\nhello\r\n0\r\n\r\n"},
    {"5\t\r\nhello\r\n0\r\n\r\n"},
    {"5 ;a\r\nhello\r\n0\r\n\r\n"},
    {"x\r\n"},
    {"-5\r\n"},
    {"+5\r\n"},
    {"0x5\r\n"},
    {"5g\r\n"},
    {"5,\r\n"},
    {"\0" "5\r\n", 4},
    {"5\0\r\n", 4},
    {"5\nhello\r\n0\r\n\r\n"},
    {"5\r hello"},
    {"5\r\r\n"},
    {"\n"},
    /* overflow: 2^60 is the largest accepted */
    {"1000000000000001\r\n"},
    {"1100000000000000\r\n"},
    {"10000000000000000\r\n"},
    {"FFFFFFFFFFFFFFFFFFFF\r\n"},
    {"00000000000000000000000000000000000000000001000000000000001\r\n"},
    /* chunk data must end in exactly CRLF */
    {"5\r\nhelloX\r\n0\r\n\r\n"},
    {"5\r\nhello\n0\r\n\r\n"},
    {"5\r\nhello\rX"},
    {"5\r\nhello\r\r\n"},
    {"5\r\nhello0\r\n\r\n"},
    {"5\r\nhell\r\n0\r\n\r\n"},
    /* extensions */
    {"5;\r\nhello\r\n0\r\n\r\n"},
    {"5;=x\r\nhello\r\n0\r\n\r\n"},
    {"5; a\r\nhello\r\n0\r\n\r\n"},
    {"5;a \r\nhello\r\n0\r\n\r\n"},
    {"5;a =b\r\nhello\r\n0\r\n\r\n"},
    {"5;a= b\r\nhello\r\n0\r\n\r\n"},
    {"5;a=\r\nhello\r\n0\r\n\r\n"},
    {"5;a=b=c\r\nhello\r\n0\r\n\r\n"},
    {"5;a=b c\r\nhello\r\n0\r\n\r\n"},
    {"5;a=\"unterminated\r\nhello\r\n0\r\n\r\n"},
    {"5;a=\"x\"y\r\nhello\r\n0\r\n\r\n"},
    {"5;a=\"x\" \r\nhello\r\n0\r\n\r\n"},
    {"5;a=\"\x01\"\r\nhello\r\n0\r\n\r\n"},
    {"5;a=\"\\\x01\"\r\nhello\r\n0\r\n\r\n"},
    {"5;a=\"\x7f\"\r\nhello\r\n0\r\n\r\n"},
    {"5;a\x7f\r\nhello\r\n0\r\n\r\n"},
    {"5;a(b)\r\nhello\r\n0\r\n\r\n"},
    {"5;a=b\nhello\r\n0\r\n\r\n"},
    {"5;a\nhello\r\n0\r\n\r\n"},
    {"5;a=\"b\"\nhello\r\n0\r\n\r\n"},
    {"5;a=\"b\nc\"\r\nhello\r\n0\r\n\r\n"},
    {"5;a=b;\r\nhello\r\n0\r\n\r\n"},
    {"5;;a\r\nhello\r\n0\r\n\r\n"},
    /* trailer section */
    {"0\r\n X: y\r\n\r\n"},
    {"0\r\n\tX: y\r\n\r\n"},
    {"0\r\nX: y\r\n z\r\n\r\n"},
    {"0\r\nX : y\r\n\r\n"},
    {"0\r\nX\t: y\r\n\r\n"},
    {"0\r\n: y\r\n\r\n"},
    {"0\r\nX: a\x01" "b\r\n\r\n"},
    {"0\r\nX: a\x7f\r\n\r\n"},
    {"0\r\nX: a\0b\r\n\r\n", 13},
    {"0\r\nX: a\nb\r\n\r\n"},
    {"0\r\nX: y\n\r\n"},
    {"0\r\nX: y\r\n\n"},
    {"0\r\nX\r\n\r\n"},
    {"0\r\nX(y): z\r\n\r\n"},
    {"0\r\nX\xc3\xa9: z\r\n\r\n"},
    {"0\r\n\rX"},
    {"0\r\nX: y\rZ"},
    {"0\r\n\n"},
    {"0\r\n\r\r"},
    {"0\r\nX: y\r\nhello\r\n\r\n"},
};

static void check_invalid(const char *body, size_t len, const char *name)
{
    size_t cut[2];
    result_t whole = feed(body, len, NULL, 0);
    CASE_CHECK(whole.total == -1 && whole.reason != NULL, name);
    if (whole.total != -1)
        fprintf(stderr, "  -> total=%zd done=%d\n", whole.total, whole.done);
    for (size_t i = 0; i <= len; i++) {
        cut[0] = i;
        CASE_CHECK(same(feed(body, len, cut, 1), whole), name);
    }
    if (len <= 64)
        for (size_t i = 0; i <= len; i++)
            for (size_t j = i; j <= len; j++) {
                cut[0] = i;
                cut[1] = j;
                CASE_CHECK(same(feed(body, len, cut, 2), whole), name);
            }
    CASE_CHECK(same(feed_bytewise(body, len), whole), name);
}

static void test_invalid(void)
{
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const bad_t *c = &bad_cases[i];
        check_invalid(c->body, c->len ? c->len : strlen(c->body), c->body);
        n_invalid++;
    }
}

/* ---- limits and counters ---- */

static void test_limits(void)
{
    static char buf[80 * 1024];
    mc_h1_chunked_t c;
    int done;
    const char *why;

    /* 2^60 exactly is accepted (the line, not the data) */
    mc_h1_chunked_init(&c);
    CHECK_EQ(mc_h1_chunked_scan(&c, "1000000000000000\r\n", 18, &done, &why), 18);
    CHECK(!done && c.remaining == MC_H1_CHUNKED_MAX_SIZE);

    /* chunk-size line: 4096 bytes before the CRLF pass, 4097 do not */
    size_t n = (size_t)sprintf(buf, "1;e=");
    memset(buf + n, 'v', MC_H1_CHUNKED_MAX_LINE - n);
    n = MC_H1_CHUNKED_MAX_LINE;
    n += (size_t)sprintf(buf + n, "\r\nx\r\n0\r\n\r\n");
    check_valid(buf, n, 1, "line at limit");
    n = (size_t)sprintf(buf, "1;e=");
    memset(buf + n, 'v', MC_H1_CHUNKED_MAX_LINE + 1 - n);
    n = MC_H1_CHUNKED_MAX_LINE + 1;
    n += (size_t)sprintf(buf + n, "\r\nx\r\n0\r\n\r\n");
    result_t r = feed(buf, n, NULL, 0);
    CHECK(r.total == -1 && r.reason && strstr(r.reason, "line"));
    /* the limit fires without waiting for the CR */
    mc_h1_chunked_init(&c);
    CHECK_EQ(mc_h1_chunked_scan(&c, buf, MC_H1_CHUNKED_MAX_LINE, &done, &why), MC_H1_CHUNKED_MAX_LINE);
    CHECK_EQ(mc_h1_chunked_scan(&c, buf + MC_H1_CHUNKED_MAX_LINE, 1, &done, &why), -1);
    /* the limit is per line: several long lines in one body are fine */
    n = 0;
    for (int i = 0; i < 3; i++) {
        n += (size_t)sprintf(buf + n, "1;e=");
        memset(buf + n, 'v', 3000);
        n += 3000;
        n += (size_t)sprintf(buf + n, "\r\nx\r\n");
    }
    n += (size_t)sprintf(buf + n, "0;e=");
    memset(buf + n, 'v', 3000);
    n += 3000;
    n += (size_t)sprintf(buf + n, "\r\n\r\n");
    r = feed(buf, n, NULL, 0);
    CHECK(r.total == (ssize_t)n && r.done && r.data_bytes == 3);
    /* leading zeros count toward the line too */
    memset(buf, '0', MC_H1_CHUNKED_MAX_LINE + 1);
    memcpy(buf + MC_H1_CHUNKED_MAX_LINE + 1, "\r\n\r\n", 4);
    CHECK_EQ(feed(buf, MC_H1_CHUNKED_MAX_LINE + 5, NULL, 0).total, -1);
    CHECK_EQ(feed(buf + 1, MC_H1_CHUNKED_MAX_LINE + 4, NULL, 0).total, MC_H1_CHUNKED_MAX_LINE + 4);

    /* trailer section: the bytes after the last-chunk line, final CRLF included */
    for (int over = 0; over < 2; over++) {
        n = (size_t)sprintf(buf, "0\r\n");
        size_t start = n, want = MC_H1_CHUNKED_MAX_TRAILER + (size_t)over;
        while (want - (n - start) > 300)
            n += (size_t)sprintf(buf + n, "X-Pad: %0200d\r\n", 0);
        size_t rest = want - (n - start) - 2; /* room for the final CRLF */
        n += (size_t)sprintf(buf + n, "Y: ");
        memset(buf + n, 'y', rest - 5);
        n += rest - 5;
        n += (size_t)sprintf(buf + n, "\r\n\r\n");
        CHECK_EQ(n - start, want);
        r = feed(buf, n, NULL, 0);
        if (over)
            CHECK(r.total == -1 && r.reason && strstr(r.reason, "trailer"));
        else
            CHECK(r.total == (ssize_t)n && r.done);
    }

    /* a lowered limit */
    mc_h1_chunked_init(&c);
    c.max_line = 3;
    CHECK_EQ(mc_h1_chunked_scan(&c, "abc\r\n", 5, &done, &why), 5);
    mc_h1_chunked_init(&c);
    c.max_line = 3;
    CHECK_EQ(mc_h1_chunked_scan(&c, "abcd\r\n", 6, &done, &why), -1);

    /* data_bytes across chunks and calls; empty input */
    mc_h1_chunked_init(&c);
    CHECK_EQ(mc_h1_chunked_scan(&c, "", 0, &done, &why), 0);
    CHECK(!done);
    CHECK_EQ(mc_h1_chunked_scan(&c, "3\r\nab", 5, &done, &why), 5);
    CHECK_EQ(c.data_bytes, 2);
    CHECK_EQ(mc_h1_chunked_scan(&c, "c\r\n2\r\nde\r\n0\r\n\r\nNEXT", 20, &done, &why), 15);
    CHECK(done);
    CHECK_EQ(c.data_bytes, 5);
}

int main(void)
{
    test_valid();
    test_invalid();
    test_limits();
    printf("h1 chunked: %d valid bodies, %d invalid bodies\n", n_valid, n_invalid);
    CHECK_DONE();
}
