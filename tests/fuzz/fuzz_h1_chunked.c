/*
 * mc_h1_chunked_scan (http/h1_chunked.h): a body scanned whole, then again
 * in pieces whose sizes come from the input, must give the same verdict
 * (malformed, complete after the same number of bytes, or still incomplete
 * with every byte taken). Header byte: bit 0 lowers the line and trailer
 * limits (so they are reached), the other bits seed the split sizes.
 */
#include <sys/types.h>

#include "fuzz_util.h"
#include "http/h1_chunked.h"

typedef struct verdict {
    int error;
    int done;
    size_t taken;
} verdict_t;

static void init(mc_h1_chunked_t *c, uint8_t hdr)
{
    mc_h1_chunked_init(c);
    if (hdr & 1) {
        c->max_line = 16;
        c->max_trailer = 64;
    }
}

static verdict_t scan(const char *b, size_t n, uint8_t hdr, const uint8_t *splits, size_t n_splits)
{
    mc_h1_chunked_t c;
    init(&c, hdr);
    verdict_t v = {0, 0, 0};
    size_t off = 0, si = 0;
    while (off < n && !v.done) {
        size_t piece = n - off;
        if (splits && n_splits) {
            piece = (size_t)splits[si++ % n_splits] % 17u + 1u;
            if (piece > n - off)
                piece = n - off;
        }
        char *copy = fuzz_copy(b + off, piece); /* exact size: ASan sees overreads */
        int done = 0;
        const char *reason = NULL;
        ssize_t k = mc_h1_chunked_scan(&c, copy, piece, &done, &reason);
        free(copy);
        if (k < 0) {
            FUZZ_ASSERT(reason != NULL, "error without a reason");
            v.error = 1;
            return v;
        }
        FUZZ_ASSERT((size_t)k <= piece, "took %zd of %zu", k, piece);
        FUZZ_ASSERT(done || (size_t)k == piece, "not done, took %zd of %zu", k, piece);
        (void)mc_h1_chunked_data_next(&c);
        off += (size_t)k;
        v.done = done;
    }
    v.taken = off;
    if (v.done) { /* after the end: 0, done */
        int done = 0;
        FUZZ_ASSERT(mc_h1_chunked_scan(&c, "0\r\n", 3, &done, NULL) == 0 && done, "bytes after the end");
    }
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t hdr = data[0];
    const char *body = (const char *)data + 1;
    size_t n = size - 1;
    verdict_t whole = scan(body, n, hdr, NULL, 0);
    /* Split sizes: from the body bytes themselves (a different walk each input). */
    uint8_t seed[8];
    for (int i = 0; i < 8; i++)
        seed[i] = (uint8_t)(hdr * (i + 1) + (n > (size_t)i ? (uint8_t)body[n - 1 - i] : 0));
    verdict_t split = scan(body, n, hdr, seed, 8);
    verdict_t bytes = scan(body, n, hdr, (const uint8_t[]){0}, 1); /* one byte at a time */
    FUZZ_ASSERT(whole.error == split.error && whole.done == split.done && (whole.error || whole.taken == split.taken),
                "whole: error %d done %d taken %zu; split: error %d done %d taken %zu", whole.error, whole.done,
                whole.taken, split.error, split.done, split.taken);
    FUZZ_ASSERT(whole.error == bytes.error && whole.done == bytes.done && (whole.error || whole.taken == bytes.taken),
                "whole: error %d done %d taken %zu; bytewise: error %d done %d taken %zu", whole.error, whole.done,
                whole.taken, bytes.error, bytes.done, bytes.taken);
    return 0;
}
