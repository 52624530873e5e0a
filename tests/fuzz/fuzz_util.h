/*
 * Shared helpers for the libFuzzer targets in tests/fuzz/ (docs/fuzzing.md).
 * A broken invariant aborts with a message, which libFuzzer reports as a
 * crash and saves as a reproducer, like a sanitizer report.
 */
#ifndef MESHCORE_FUZZ_UTIL_H
#define MESHCORE_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_ASSERT(cond, ...)                                                                  \
    do {                                                                                        \
        if (!(cond)) {                                                                          \
            fprintf(stderr, "%s:%d: invariant broken: %s: ", __FILE__, __LINE__, #cond);        \
            fprintf(stderr, __VA_ARGS__);                                                       \
            fputc('\n', stderr);                                                                \
            abort();                                                                            \
        }                                                                                       \
    } while (0)

/* A byte reader over the fuzzer's input: bytes, then the rest. */
typedef struct fuzz_in {
    const uint8_t *p;
    size_t n;
} fuzz_in_t;

static inline uint8_t fuzz_byte(fuzz_in_t *in)
{
    if (!in->n)
        return 0;
    in->n--;
    return *in->p++;
}

static inline uint32_t fuzz_u32(fuzz_in_t *in)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v = v << 8 | fuzz_byte(in);
    return v;
}

/* The next field: bytes up to (not including) sep, or the rest. */
static inline const char *fuzz_field(fuzz_in_t *in, char sep, size_t *len)
{
    const char *s = (const char *)in->p;
    const uint8_t *e = in->n ? memchr(in->p, sep, in->n) : NULL;
    size_t k = e ? (size_t)(e - in->p) : in->n;
    *len = k;
    in->p += k + (e ? 1 : 0);
    in->n -= k + (e ? 1 : 0);
    return s;
}

/* An exact-size heap copy, so ASan sees any read past the end. */
static inline char *fuzz_copy(const void *p, size_t n)
{
    char *c = malloc(n ? n : 1);
    if (n)
        memcpy(c, p, n);
    return c;
}

/* Whether [p, p+n) lies inside [base, base+len). */
static inline int fuzz_within(const char *p, size_t n, const char *base, size_t len)
{
    return p >= base && n <= len && (size_t)(p - base) <= len - n;
}

#endif
