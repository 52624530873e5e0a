/*
 * The endpoint picker: which endpoint of a cluster a new connection (TCP
 * proxy) or a request try (HTTP router) goes to. One function for every
 * proxy, so every load-balancing policy, outlier ejection, the panic
 * threshold and previous-host skipping behave the same everywhere.
 *
 * The policies themselves are the pure functions of meshcore/balancer.h;
 * this adds what depends on the cluster: its policy, its ejected hosts and
 * the worker's state for it (mc_lb_state_t).
 */
#ifndef MESHCORE_ROUTE_PICKER_H
#define MESHCORE_ROUTE_PICKER_H

#include <stdint.h>

#include "meshcore/balancer.h"
#include "meshcore/rand.h"
#include "route/cluster.h"

/* A worker's balancing state for one cluster of a snapshot. */
typedef struct mc_lb_state {
    int64_t *swrr;    /* smooth WRR state per endpoint */
    uint32_t *active; /* requests/connections per endpoint on this worker */
    uint64_t *skip;   /* scratch: endpoints a pick must avoid (mc_lb_skip_words(n) words) */
} mc_lb_state_t;

/* What a pick avoids and hashes on. */
typedef struct mc_pick {
    const uint32_t *tried; /* endpoints tried already: avoided while others are left */
    uint32_t n_tried;
    uint64_t hash; /* RING_HASH key, when has_hash */
    uint8_t has_hash;
} mc_pick_t;

/* An endpoint index of c, or UINT32_MAX when c has none. Ejected hosts are
 * skipped unless the cluster is in panic (Envoy's: healthy share x 1.4
 * below 50%, then every host is a candidate). RING_HASH without a key
 * picks at random, as Envoy does. */
uint32_t mc_pick_endpoint(const mc_cluster_t *c, mc_lb_state_t *lb, mc_rand_t *rand, uint64_t now_ns,
                          const mc_pick_t *p);

#endif
