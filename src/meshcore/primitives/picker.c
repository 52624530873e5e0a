/*
 * Load balancers for embedders; see include/meshcore/primitives.h. One
 * cluster's worth of the proxy's state (route/cluster.h, route/picker.h)
 * built by hand: endpoints, weights and their cumulative sums, the ring
 * (worker/snapshot.c builds it, as for a snapshot), the per-worker SWRR and
 * active counts. Picks run route/picker.c's mc_pick_endpoint, so every
 * policy behaves as in the proxy; unhealthy endpoints are its "tried" list.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "meshcore/primitives.h"
#include "route/picker.h"
#include "worker/snapshot.h"

struct mc_prim_picker {
    mc_cluster_t c;
    mc_lb_state_t lb;
    mc_rand_t rand;
    uint8_t *down;     /* per endpoint */
    uint32_t *tried;   /* the down ones, as a pick's avoid list */
    uint32_t n_tried;
};

static int bad(char *err, size_t errlen, const char *what)
{
    snprintf(err, errlen, "%s", what);
    return -1;
}

/* Weights into c (cumulative sums, ring). */
static int load_weights(mc_prim_picker_t *p, const uint32_t *weights, char *err, size_t errlen)
{
    mc_cluster_t *c = &p->c;
    uint64_t sum = 0;
    for (uint32_t i = 0; i < c->n_endpoints; i++) {
        if (weights[i] == 0 && (c->lb_policy == MC_LB_RING_HASH || c->lb_policy == MC_LB_LEAST_REQUEST))
            return bad(err, errlen, "weights must be at least 1 for this policy");
        sum += weights[i];
    }
    if (sum == 0)
        return bad(err, errlen, "the weights add up to 0");
    if (sum > UINT32_MAX)
        return bad(err, errlen, "the weights add up to more than 4294967295");
    sum = 0;
    for (uint32_t i = 0; i < c->n_endpoints; i++) {
        c->weights[i] = weights[i];
        c->cum_weights[i] = sum += weights[i];
    }
    if (c->lb_policy == MC_LB_RING_HASH) {
        free(c->ring_hashes);
        free(c->ring_endpoints);
        c->ring_hashes = NULL, c->ring_endpoints = NULL, c->ring_size = 0;
        if (mc_cluster_build_ring(c, sum) < 0)
            return bad(err, errlen, "out of memory");
    }
    return 0;
}

mc_prim_picker_t *mc_prim_picker_new(int policy, uint32_t n, const uint32_t *weights, const char *const *names,
                                     uint32_t ring_min, uint32_t ring_max, uint64_t seed, char *err, size_t errlen)
{
    if (n == 0) {
        bad(err, errlen, "no endpoints to pick from");
        return NULL;
    }
    if (policy < MC_LB_ROUND_ROBIN || policy > MC_LB_RING_HASH) {
        bad(err, errlen, "unknown load-balancing policy");
        return NULL;
    }
    mc_prim_picker_t *p = calloc(1, sizeof(*p));
    if (!p) {
        bad(err, errlen, "out of memory");
        return NULL;
    }
    mc_cluster_t *c = &p->c;
    c->lb_policy = (uint32_t)policy;
    c->n_endpoints = c->cap_endpoints = n;
    c->ring_min = ring_min ? ring_min : 1024;            /* Envoy's minimum_ring_size */
    c->ring_max = ring_max ? ring_max : 8 * 1024 * 1024; /* and maximum_ring_size */
    c->endpoints = calloc(n, sizeof(*c->endpoints));
    c->weights = calloc(n, sizeof(*c->weights));
    c->cum_weights = calloc(n, sizeof(*c->cum_weights));
    p->lb.swrr = calloc(n, sizeof(*p->lb.swrr));
    p->lb.active = calloc(n, sizeof(*p->lb.active));
    p->lb.skip = calloc(mc_lb_skip_words(n), sizeof(*p->lb.skip));
    p->down = calloc(n, 1);
    p->tried = calloc(n, sizeof(*p->tried));
    if (!c->endpoints || !c->weights || !c->cum_weights || !p->lb.swrr || !p->lb.active || !p->lb.skip ||
        !p->down || !p->tried) {
        bad(err, errlen, "out of memory");
        mc_prim_picker_free(p);
        return NULL;
    }
    if (c->ring_min > c->ring_max) {
        bad(err, errlen, "minimum ring size exceeds maximum ring size");
        mc_prim_picker_free(p);
        return NULL;
    }
    for (uint32_t i = 0; i < n; i++)
        snprintf(c->endpoints[i].name, sizeof(c->endpoints[i].name), "%s", names && names[i] ? names[i] : "");
    mc_rand_seed(&p->rand, seed);
    if (load_weights(p, weights, err, errlen) < 0) {
        mc_prim_picker_free(p);
        return NULL;
    }
    return p;
}

void mc_prim_picker_free(mc_prim_picker_t *p)
{
    if (!p)
        return;
    free(p->c.endpoints);
    free(p->c.weights);
    free(p->c.cum_weights);
    free(p->c.ring_hashes);
    free(p->c.ring_endpoints);
    free(p->lb.swrr);
    free(p->lb.active);
    free(p->lb.skip);
    free(p->down);
    free(p->tried);
    free(p);
}

int mc_prim_picker_set_weights(mc_prim_picker_t *p, const uint32_t *weights, char *err, size_t errlen)
{
    return load_weights(p, weights, err, errlen);
}

uint32_t mc_prim_picker_pick(mc_prim_picker_t *p, int has_hash, uint64_t hash)
{
    mc_pick_t pick = {.tried = p->tried, .n_tried = p->n_tried, .hash = hash, .has_hash = (uint8_t)!!has_hash};
    return mc_pick_endpoint(&p->c, &p->lb, &p->rand, 0, &pick);
}

void mc_prim_picker_set_healthy(mc_prim_picker_t *p, uint32_t i, int healthy)
{
    if (i >= p->c.n_endpoints || p->down[i] == !healthy)
        return;
    p->down[i] = (uint8_t)!healthy;
    p->n_tried = 0;
    for (uint32_t k = 0; k < p->c.n_endpoints; k++)
        if (p->down[k])
            p->tried[p->n_tried++] = k;
}

void mc_prim_picker_add_active(mc_prim_picker_t *p, uint32_t i, int delta)
{
    if (i >= p->c.n_endpoints)
        return;
    if (delta < 0 && p->lb.active[i] < (uint32_t)-delta)
        p->lb.active[i] = 0;
    else
        p->lb.active[i] += (uint32_t)delta;
}

uint32_t mc_prim_picker_active(const mc_prim_picker_t *p, uint32_t i)
{
    return i < p->c.n_endpoints ? p->lb.active[i] : 0;
}

uint64_t mc_prim_hash(const char *key, size_t len)
{
    return mc_xxh64(key, len, 0);
}
