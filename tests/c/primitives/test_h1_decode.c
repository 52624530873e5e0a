/* The embedders' chunked decoder: same bytes out whatever the split, the
 * end found exactly, malformed framing refused and sticky. */
#include <string.h>

#include "check.h"
#include "meshcore/primitives.h"

static const char BODY[] = "5\r\nhello\r\n1;ext=v\r\n \r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\nGET";

/* Feeds BODY in pieces of `step` bytes; returns decoded length, *used the input consumed. */
static size_t decode_in_steps(size_t step, char *out, size_t *used, int *done)
{
    mc_prim_chunked_t *c = mc_prim_chunked_new();
    size_t len = sizeof(BODY) - 1, off = 0, n_out = 0;
    *done = 0;
    while (off < len && !*done) {
        size_t n = len - off < step ? len - off : step, got;
        const char *why = NULL;
        ssize_t r = mc_prim_chunked_decode(c, BODY + off, n, out + n_out, &got, done, &why);
        CHECK(r >= 0);
        if (r < 0)
            break;
        n_out += got;
        off += (size_t)r;
        if ((size_t)r < n)
            break;
    }
    *used = off;
    mc_prim_chunked_free(c);
    return n_out;
}

int main(void)
{
    for (size_t step = 1; step <= sizeof(BODY); step++) {
        char out[sizeof(BODY)];
        size_t used;
        int done;
        size_t n = decode_in_steps(step, out, &used, &done);
        CHECK_EQ(n, 12);
        CHECK(memcmp(out, "hello  world", 12) == 0);
        CHECK(done);
        CHECK_EQ(used, sizeof(BODY) - 1 - 3); /* "GET" is the next message */
    }

    const char *bad[] = {"5 \r\nhello\r\n0\r\n\r\n", "x\r\n", "5\r\nhelloX\r\n", "-1\r\n",
                         "5\nhello\r\n0\r\n\r\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        mc_prim_chunked_t *c = mc_prim_chunked_new();
        char out[64];
        size_t got;
        int done;
        const char *why = NULL;
        CHECK_EQ(mc_prim_chunked_decode(c, bad[i], strlen(bad[i]), out, &got, &done, &why), -1);
        CHECK(why != NULL);
        CHECK_EQ(mc_prim_chunked_decode(c, "0\r\n\r\n", 5, out, &got, &done, &why), -1); /* sticky */
        mc_prim_chunked_free(c);
    }

    mc_prim_head_t h;
    mc_prim_field_t f[8];
    const char *rq = "POST /a?b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    CHECK_EQ(mc_prim_parse_request(rq, strlen(rq), NULL, f, 8, &h), (int)strlen(rq));
    CHECK_EQ(h.body, MC_PRIM_BODY_CHUNKED);
    CHECK_EQ(h.n_fields, 2);
    CHECK(h.has_query && h.query_len == 1);
    const char *smuggle = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n";
    CHECK_EQ(mc_prim_parse_request(smuggle, strlen(smuggle), NULL, f, 8, &h), -1);
    CHECK_EQ(h.error_status, 400);
    CHECK_EQ(mc_prim_parse_request(rq, 10, NULL, f, 8, &h), -2);
    const char *resp = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
    CHECK_EQ(mc_prim_parse_response(resp, strlen(resp), NULL, 1, 0, f, 8, &h), (int)strlen(resp));
    CHECK_EQ(h.body, MC_PRIM_BODY_NONE); /* an answer to HEAD */
    CHECK_EQ(h.status, 200);
    CHECK_DONE();
}
