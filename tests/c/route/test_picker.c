/*
 * route/picker.c: the endpoint picker shared by the TCP and HTTP proxies.
 * Round robin order, previous-host skipping, ejected hosts skipped, panic
 * (too few healthy hosts: every host is a candidate again), ring hash with
 * and without a key, and an empty cluster.
 */
#include <arpa/inet.h>
#include <string.h>

#include "check.h"
#include "route/picker.h"

#define N 4
#define SEC 1000000000ull

typedef struct fixture {
    mc_cluster_t c;
    mc_endpoint_t eps[N];
    uint32_t weights[N];
    uint64_t cum[N];
    int64_t swrr[N];
    uint32_t active[N];
    uint64_t skip[1];
    mc_lb_state_t lb;
    mc_rand_t rand;
} fixture_t;

static void setup(fixture_t *f, uint32_t policy)
{
    memset(f, 0, sizeof(*f));
    f->c.name = "c";
    f->c.lb_policy = policy;
    f->c.n_endpoints = N;
    f->c.endpoints = f->eps;
    f->c.weights = f->weights;
    f->c.cum_weights = f->cum;
    f->c.state = mc_cluster_state_new("c", 1);
    f->c.outlier = (mc_outlier_cfg_t){.enabled = 1, .consecutive_5xx = 1, .base_ejection_ns = 30 * SEC,
                                      .max_ejection_ns = 300 * SEC, .max_ejection_percent = 100};
    for (uint32_t i = 0; i < N; i++) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&f->eps[i].addr.ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)(8000 + i));
        sin->sin_addr.s_addr = htonl(0x7f000001);
        f->eps[i].addr.len = sizeof(*sin);
        f->eps[i].host = mc_cluster_state_host(f->c.state, &f->eps[i].addr);
        f->weights[i] = 1;
        f->cum[i] = i + 1;
    }
    f->lb = (mc_lb_state_t){.swrr = f->swrr, .active = f->active, .skip = f->skip};
    mc_rand_seed(&f->rand, 7);
}

static void teardown(fixture_t *f)
{
    for (uint32_t i = 0; i < N; i++)
        mc_host_state_unref(f->eps[i].host);
    mc_cluster_state_unref(f->c.state);
}

static uint32_t pick(fixture_t *f, const mc_pick_t *p, uint64_t now)
{
    return mc_pick_endpoint(&f->c, &f->lb, &f->rand, now, p);
}

static void eject(fixture_t *f, uint32_t i, uint64_t now)
{
    CHECK(mc_outlier_report(f->c.state, f->eps[i].host, &f->c.outlier, MC_OUTCOME_5XX, N, now) == 1);
}

static void test_round_robin_and_tried(void)
{
    fixture_t f;
    setup(&f, MC_LB_ROUND_ROBIN);
    mc_pick_t none = {0};
    uint32_t seen[N] = {0};
    for (int i = 0; i < 4 * N; i++)
        seen[pick(&f, &none, SEC)]++;
    for (uint32_t i = 0; i < N; i++)
        CHECK_EQ(seen[i], 4); /* equal weights: each host in turn */
    /* A retry avoids the hosts already tried while others are left... */
    uint32_t tried[3] = {0, 1, 2};
    mc_pick_t p = {.tried = tried, .n_tried = 3};
    for (int i = 0; i < 8; i++)
        CHECK_EQ(pick(&f, &p, SEC), 3);
    /* ...and when every host was tried, any host may be picked again. */
    uint32_t all[N] = {0, 1, 2, 3};
    mc_pick_t q = {.tried = all, .n_tried = N};
    CHECK(pick(&f, &q, SEC) < N);
    teardown(&f);
}

static void test_ejection_and_panic(void)
{
    fixture_t f;
    setup(&f, MC_LB_ROUND_ROBIN);
    mc_pick_t none = {0};
    uint64_t now = SEC;
    eject(&f, 1, now);
    for (int i = 0; i < 3 * N; i++)
        CHECK(pick(&f, &none, now) != 1); /* 3 of 4 healthy: the ejected host is skipped */
    eject(&f, 2, now);
    /* 2 of 4 healthy: 50% x 1.4 = 70% is above the 50% panic threshold */
    for (int i = 0; i < 3 * N; i++) {
        uint32_t e = pick(&f, &none, now);
        CHECK(e == 0 || e == 3);
    }
    eject(&f, 3, now);
    /* 1 of 4 healthy: 25% x 1.4 = 35% < 50%, panic: every host again */
    uint32_t seen[N] = {0};
    for (int i = 0; i < 4 * N; i++)
        seen[pick(&f, &none, now)]++;
    for (uint32_t i = 0; i < N; i++)
        CHECK(seen[i] > 0);
    /* The ejection ends on its own. */
    uint64_t later = now + 31 * SEC;
    uint32_t back[N] = {0};
    for (int i = 0; i < 4 * N; i++)
        back[pick(&f, &none, later)]++;
    for (uint32_t i = 0; i < N; i++)
        CHECK_EQ(back[i], 4);
    teardown(&f);
}

static void test_ring_hash(void)
{
    fixture_t f;
    setup(&f, MC_LB_RING_HASH);
    uint64_t hashes[8] = {100, 200, 300, 400, 500, 600, 700, 800};
    uint32_t owners[8] = {0, 1, 2, 3, 0, 1, 2, 3};
    f.c.ring_hashes = hashes;
    f.c.ring_endpoints = owners;
    f.c.ring_size = 8;
    mc_pick_t p = {.has_hash = 1, .hash = 250};
    for (int i = 0; i < 5; i++)
        CHECK_EQ(pick(&f, &p, SEC), 2); /* the first point at or after the key */
    p.hash = 900;
    CHECK_EQ(pick(&f, &p, SEC), 0); /* wraps around */
    uint32_t tried[1] = {2};
    mc_pick_t r = {.has_hash = 1, .hash = 250, .tried = tried, .n_tried = 1};
    CHECK_EQ(pick(&f, &r, SEC), 3); /* a retry walks on along the ring */
    mc_pick_t nokey = {0};
    CHECK(pick(&f, &nokey, SEC) < N); /* no key: random */
    teardown(&f);
}

static void test_empty(void)
{
    fixture_t f;
    setup(&f, MC_LB_LEAST_REQUEST);
    f.c.n_endpoints = 0;
    mc_pick_t none = {0};
    CHECK_EQ(pick(&f, &none, SEC), UINT32_MAX);
    f.c.n_endpoints = N;
    teardown(&f);
}

int main(void)
{
    test_round_robin_and_tried();
    test_ejection_and_panic();
    test_ring_hash();
    test_empty();
    CHECK_DONE();
}
