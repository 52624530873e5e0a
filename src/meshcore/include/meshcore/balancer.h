/*
 * Load-balancing choices over a weighted list: endpoints of a cluster, or
 * clusters of a weighted split. Pure functions over arrays plus the caller's
 * per-worker state, so each worker balances without locks and the policies
 * can be checked against a Python reference in the tests.
 *
 * `exclude` is a bit mask of indices (< 64) not to pick, used so a retry goes
 * to another endpoint; if every candidate is excluded the mask is ignored.
 * All functions return an index < n, or UINT32_MAX when n == 0.
 */
#ifndef MESHCORE_BALANCER_H
#define MESHCORE_BALANCER_H

#include <stdint.h>

#include "meshcore/rand.h"

enum { MC_LB_ROUND_ROBIN = 0, MC_LB_LEAST_REQUEST = 1, MC_LB_RANDOM = 2, MC_LB_RING_HASH = 3 };

static inline int mc_lb_excluded(uint64_t exclude, uint32_t i)
{
    return i < 64 && (exclude >> i) & 1;
}

/* Smooth weighted round robin (nginx): deterministic, and interleaves picks
 * (5,1,1 gives a a b a c a a, not a a a a a b c). cur[] starts zeroed. */
uint32_t mc_lb_swrr(int64_t *cur, const uint32_t *weights, uint32_t n, uint64_t exclude);

/* Weighted random; cum[i] = weights[0] + ... + weights[i]. */
uint32_t mc_lb_random(mc_rand_t *r, const uint64_t *cum, uint32_t n, uint64_t exclude);

/* Least request, as Envoy's: with equal weights, power of two choices (two
 * uniform candidates, fewer active requests wins); with unequal weights, a
 * smooth weighted round robin over weight / (active + 1) in cur[], so idle
 * endpoints share by weight and busy ones are avoided in proportion. */
uint32_t mc_lb_least_request(mc_rand_t *r, int64_t *cur, const uint32_t *weights, const uint32_t *active,
                             uint32_t n, uint64_t exclude);

#endif
