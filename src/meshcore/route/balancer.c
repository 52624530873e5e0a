/* Load-balancing policies; see include/meshcore/balancer.h. */
#include "meshcore/balancer.h"

static int all_excluded(uint32_t n, mc_lb_skip_t skip)
{
    if (mc_lb_skip_words(n) > skip.n_words)
        return 0;
    for (uint32_t k = 0; k < n / 64; k++)
        if (skip.words[k] != ~0ull)
            return 0;
    uint32_t rest = n % 64;
    return rest == 0 || (skip.words[n / 64] & ((1ull << rest) - 1)) == (1ull << rest) - 1;
}

uint32_t mc_lb_swrr(int64_t *cur, const uint32_t *weights, uint32_t n, mc_lb_skip_t skip)
{
    if (n == 0)
        return UINT32_MAX;
    if (n == 1)
        return 0;
    if (all_excluded(n, skip))
        skip = MC_LB_SKIP_NONE;
    uint32_t best = UINT32_MAX;
    int64_t total = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (mc_lb_excluded(skip, i))
            continue;
        cur[i] += weights[i];
        total += weights[i];
        if (best == UINT32_MAX || cur[i] > cur[best])
            best = i;
    }
    cur[best] -= total;
    return best;
}

static uint32_t pick_weighted(mc_rand_t *r, const uint64_t *cum, uint32_t n)
{
    uint64_t x = mc_rand_below(r, cum[n - 1]);
    uint32_t lo = 0, hi = n - 1; /* first i with cum[i] > x */
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (cum[mid] > x)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

static uint32_t pick_allowed(mc_rand_t *r, const uint64_t *cum, uint32_t n, mc_lb_skip_t skip)
{
    for (int tries = 0; tries < 8; tries++) {
        uint32_t i = pick_weighted(r, cum, n);
        if (!mc_lb_excluded(skip, i))
            return i;
    }
    /* Most weight is excluded: walk from a random start instead. */
    uint32_t start = (uint32_t)mc_rand_below(r, n);
    for (uint32_t k = 0; k < n; k++) {
        uint32_t i = (start + k) % n;
        if (!mc_lb_excluded(skip, i))
            return i;
    }
    return start;
}

uint32_t mc_lb_random(mc_rand_t *r, const uint64_t *cum, uint32_t n, mc_lb_skip_t skip)
{
    if (n == 0)
        return UINT32_MAX;
    if (all_excluded(n, skip))
        skip = MC_LB_SKIP_NONE;
    return pick_allowed(r, cum, n, skip);
}

static int equal_weights(const uint32_t *weights, uint32_t n)
{
    for (uint32_t i = 1; i < n; i++)
        if (weights[i] != weights[0])
            return 0;
    return 1;
}

static uint32_t pick_uniform(mc_rand_t *r, uint32_t n, mc_lb_skip_t skip)
{
    for (int tries = 0; tries < 8; tries++) {
        uint32_t i = (uint32_t)mc_rand_below(r, n);
        if (!mc_lb_excluded(skip, i))
            return i;
    }
    uint32_t start = (uint32_t)mc_rand_below(r, n);
    for (uint32_t k = 0; k < n; k++) {
        uint32_t i = (start + k) % n;
        if (!mc_lb_excluded(skip, i))
            return i;
    }
    return start;
}

#define LR_SCALE 1000000 /* fixed point for weight / (active + 1) */

uint32_t mc_lb_least_request(mc_rand_t *r, int64_t *cur, const uint32_t *weights, const uint32_t *active,
                             uint32_t n, mc_lb_skip_t skip)
{
    if (n == 0)
        return UINT32_MAX;
    if (n == 1)
        return 0;
    if (all_excluded(n, skip))
        skip = MC_LB_SKIP_NONE;
    if (equal_weights(weights, n)) {
        uint32_t a = pick_uniform(r, n, skip);
        uint32_t b = pick_uniform(r, n, skip);
        return active[b] < active[a] ? b : a;
    }
    uint32_t best = UINT32_MAX;
    int64_t total = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (mc_lb_excluded(skip, i))
            continue;
        int64_t eff = (int64_t)weights[i] * LR_SCALE / ((int64_t)active[i] + 1);
        cur[i] += eff;
        total += eff;
        if (best == UINT32_MAX || cur[i] > cur[best])
            best = i;
    }
    cur[best] -= total;
    return best;
}
