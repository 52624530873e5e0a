/*
 * Load-balancing choices over a weighted list: endpoints of a cluster, or
 * clusters of a weighted split. Pure functions over arrays plus the caller's
 * per-worker state, so each worker balances without locks and the policies
 * can be checked against a Python reference in the tests.
 *
 * `skip` is a set of indices not to pick (hosts already tried, ejected
 * hosts), any size: index i is bit i % 64 of words[i / 64], and indices past
 * its words are never skipped. If every candidate is skipped the set is
 * ignored. All functions return an index < n, or UINT32_MAX when n == 0.
 */
#ifndef MESHCORE_BALANCER_H
#define MESHCORE_BALANCER_H

#include <stdint.h>
#include <string.h>

#include "meshcore/rand.h"

enum { MC_LB_ROUND_ROBIN = 0, MC_LB_LEAST_REQUEST = 1, MC_LB_RANDOM = 2, MC_LB_RING_HASH = 3 };

typedef struct mc_lb_skip {
    const uint64_t *words;
    uint32_t n_words;
} mc_lb_skip_t;

#define MC_LB_SKIP_NONE ((mc_lb_skip_t){0})

static inline int mc_lb_excluded(mc_lb_skip_t skip, uint32_t i)
{
    return (i >> 6) < skip.n_words && (skip.words[i >> 6] >> (i & 63)) & 1;
}

/* The words a set over n indices needs. */
static inline uint32_t mc_lb_skip_words(uint32_t n)
{
    return (n + 63) / 64;
}

static inline void mc_lb_skip_set(uint64_t *words, uint32_t i)
{
    words[i >> 6] |= 1ull << (i & 63);
}

/* Hosts a session remembers having tried (a retry goes elsewhere); after
 * MC_TRIED_MAX tries the earliest ones are still avoided. */
#define MC_TRIED_MAX 8

/* A set over n indices in `words` (mc_lb_skip_words(n) of them), holding
 * the tried ones that are < n. */
static inline mc_lb_skip_t mc_lb_skip_of(uint64_t *words, uint32_t n, const uint32_t *tried, uint32_t n_tried)
{
    uint32_t nw = mc_lb_skip_words(n);
    memset(words, 0, nw * sizeof(*words));
    for (uint32_t i = 0; i < n_tried; i++)
        if (tried[i] < n)
            mc_lb_skip_set(words, tried[i]);
    return (mc_lb_skip_t){words, nw};
}

/* Smooth weighted round robin (nginx): deterministic, and interleaves picks
 * (5,1,1 gives a a b a c a a, not a a a a a b c). cur[] starts zeroed. */
uint32_t mc_lb_swrr(int64_t *cur, const uint32_t *weights, uint32_t n, mc_lb_skip_t skip);

/* Weighted random; cum[i] = weights[0] + ... + weights[i]. */
uint32_t mc_lb_random(mc_rand_t *r, const uint64_t *cum, uint32_t n, mc_lb_skip_t skip);

/* Least request, as Envoy's: with equal weights, power of two choices (two
 * uniform candidates, fewer active requests wins); with unequal weights, a
 * smooth weighted round robin over weight / (active + 1) in cur[], so idle
 * endpoints share by weight and busy ones are avoided in proportion. */
uint32_t mc_lb_least_request(mc_rand_t *r, int64_t *cur, const uint32_t *weights, const uint32_t *active,
                             uint32_t n, mc_lb_skip_t skip);

#endif
