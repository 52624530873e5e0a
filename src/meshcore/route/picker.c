#include "route/picker.h"

static uint32_t ring_pick(const mc_cluster_t *c, uint64_t hash, mc_lb_skip_t skip)
{
    uint32_t lo = 0, hi = c->ring_size;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (c->ring_hashes[mid] < hash)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (uint32_t k = 0; k < c->ring_size; k++) {
        uint32_t ep = c->ring_endpoints[(lo + k) % c->ring_size];
        if (!mc_lb_excluded(skip, ep))
            return ep;
    }
    return c->ring_endpoints[lo % c->ring_size];
}

uint32_t mc_pick_endpoint(const mc_cluster_t *c, mc_lb_state_t *lb, mc_rand_t *rand, uint64_t now_ns,
                          const mc_pick_t *p)
{
    uint32_t n = c->n_endpoints;
    if (n == 0)
        return UINT32_MAX;
    mc_lb_skip_t skip = mc_lb_skip_of(lb->skip, n, p->tried, p->n_tried);
    /* No host ejected (the usual case): nothing to look at. */
    if (c->outlier.enabled && __atomic_load_n(&c->state->n_ejected, __ATOMIC_RELAXED)) {
        uint32_t ejected = 0;
        for (uint32_t i = 0; i < n; i++) {
            if (mc_outlier_ejected(c->state, c->endpoints[i].host, now_ns)) {
                ejected++;
                mc_lb_skip_set(lb->skip, i);
            }
        }
        if ((uint64_t)(n - ejected) * 140 < (uint64_t)n * 50) /* panic: only the tried ones again */
            skip = mc_lb_skip_of(lb->skip, n, p->tried, p->n_tried);
    }
    switch (c->lb_policy) {
    case MC_LB_RANDOM:
        return mc_lb_random(rand, c->cum_weights, n, skip);
    case MC_LB_LEAST_REQUEST:
        return mc_lb_least_request(rand, lb->swrr, c->weights, lb->active, n, skip);
    case MC_LB_RING_HASH:
        if (p->has_hash && c->ring_size)
            return ring_pick(c, p->hash, skip);
        return mc_lb_random(rand, c->cum_weights, n, skip);
    default:
        return mc_lb_swrr(lb->swrr, c->weights, n, skip);
    }
}
