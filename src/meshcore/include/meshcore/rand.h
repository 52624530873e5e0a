/* Per-worker pseudo-random numbers (xorshift64*): no shared state, no lock,
 * good enough for load balancing and jitter, not for cryptography. */
#ifndef MESHCORE_RAND_H
#define MESHCORE_RAND_H

#include <stdint.h>

typedef struct mc_rand {
    uint64_t s;
} mc_rand_t;

static inline void mc_rand_seed(mc_rand_t *r, uint64_t seed)
{
    r->s = seed ? seed : 0x9E3779B97F4A7C15ull;
}

static inline uint64_t mc_rand_next(mc_rand_t *r)
{
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* Uniform in [0, n) without modulo bias worth caring about (Lemire). */
static inline uint64_t mc_rand_below(mc_rand_t *r, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)mc_rand_next(r) * n) >> 64);
}

#endif
