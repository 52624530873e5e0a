/*
 * stats/istio_table.h: a worker's Istio metric label sets.
 *
 * The compact log-linear layout (exact below 8, then 8 buckets per power of
 * two, each at most 1/8 of its values wide), re-bucketing to Istio's
 * bounds on export (cumulative, conservative: a value never lands below a
 * bound it exceeds), label-set interning and its bound, and interned
 * strings.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "meshcore/rand.h"
#include "stats/istio_table.h"

static void test_layout(void)
{
    for (uint64_t v = 0; v < 8; v++)
        CHECK_EQ(mc_im_hist_bucket(v), v);
    /* Contiguous, increasing buckets, each at most 1/8 as wide as its start. */
    uint64_t prev_max = 7;
    int bad = 0;
    for (uint32_t b = 8; b < MC_IM_HIST_BUCKETS - 1; b++) {
        uint64_t max = mc_im_hist_bucket_max(b), lo = prev_max + 1;
        if (max < lo || (max - lo + 1) * 8 > lo || mc_im_hist_bucket(lo) != b || mc_im_hist_bucket(max) != b)
            bad++;
        prev_max = max;
    }
    CHECK_EQ(bad, 0);
    /* Sampled values lie in their bucket. */
    mc_rand_t r;
    mc_rand_seed(&r, 42);
    for (int i = 0; i < 100000; i++) {
        uint64_t v = mc_rand_next(&r) >> (mc_rand_next(&r) % 64);
        uint32_t b = mc_im_hist_bucket(v);
        if (b >= MC_IM_HIST_BUCKETS || v > mc_im_hist_bucket_max(b) || (b && b < MC_IM_HIST_BUCKETS - 1 &&
                                                                       v <= mc_im_hist_bucket_max(b - 1)))
            bad++;
    }
    CHECK_EQ(bad, 0);
    /* Huge values clamp into the last bucket. */
    CHECK_EQ(mc_im_hist_bucket(UINT64_MAX), MC_IM_HIST_BUCKETS - 1);
    CHECK_EQ(mc_im_hist_bucket_max(MC_IM_HIST_BUCKETS - 1), UINT64_MAX);
}

static mc_im_key_t key(uint16_t code, uint32_t service)
{
    mc_im_key_t k;
    memset(&k, 0, sizeof(k));
    k.reporter = MC_IM_DESTINATION;
    k.code = code;
    k.service = service;
    return k;
}

static void test_sets_and_export(void)
{
    mc_im_table_t *t = malloc(sizeof(*t));
    mc_im_table_init(t);
    mc_im_key_t a = key(200, 1), b = key(503, 1);
    mc_im_set_t *sa = mc_im_find(t, &a);
    CHECK(sa != NULL);
    CHECK(mc_im_find(t, &a) == sa);
    CHECK(mc_im_find(t, &b) != sa);
    /* 1 ms, 3 ms, 7 ms, 400 us, 2 s */
    uint64_t durations[] = {1000, 3000, 7000, 400, 2000000};
    for (int i = 0; i < 5; i++)
        mc_im_record_http(sa, durations[i], 10 * (uint64_t)i, 100);
    const double bounds_us[] = {500, 1000, 5000, 10000, 25000};
    const double bytes[] = {0.5, 1, 5, 10, 25, 50};
    mc_im_row_t rows[4];
    size_t n = mc_im_table_export(t, 3, bounds_us, 5, bytes, 6, rows, 4);
    CHECK_EQ(n, 2);
    const mc_im_row_t *r = &rows[0];
    CHECK_EQ(r->worker, 3);
    CHECK_EQ(r->key.code, 200);
    CHECK_EQ(r->requests, 5);
    /* 400 us <= 0.5 ms. 1 ms is in the bucket [960, 1023] us, which tops
     * out above 1 ms: counted under le=5ms (conservative), not le=1ms. */
    CHECK_EQ(r->duration[0], 1);
    CHECK_EQ(r->duration[1], 1);
    CHECK_EQ(r->duration[2], 3);
    CHECK_EQ(r->duration[3], 4);
    CHECK_EQ(r->duration[4], 4); /* 2 s only in +Inf */
    CHECK_EQ(r->duration_sum_us, 1000 + 3000 + 7000 + 400 + 2000000);
    /* request bytes 0,10,20,30,40: le=0.5 gets the 0, le=10 the 10, le=50 all */
    CHECK_EQ(r->request_bytes[0], 1);
    CHECK_EQ(r->request_bytes[3], 2);
    CHECK_EQ(r->request_bytes[5], 5);
    CHECK_EQ(r->request_bytes_count, 5);
    CHECK_EQ(r->response_bytes[5], 0); /* 100 > 50 */
    CHECK_EQ(r->response_bytes_count, 5);
    /* Conservative: no observation is counted under a bound it exceeds. */
    mc_im_key_t c = key(201, 2);
    mc_im_set_t *sc = mc_im_find(t, &c);
    mc_rand_t rng;
    mc_rand_seed(&rng, 7);
    uint64_t under[5] = {0};
    for (int i = 0; i < 20000; i++) {
        uint64_t v = mc_rand_below(&rng, 30000);
        mc_im_record_http(sc, v, 0, 0);
        for (int k = 0; k < 5; k++)
            under[k] += v <= bounds_us[k];
    }
    n = mc_im_table_export(t, 0, bounds_us, 5, bytes, 6, rows, 4);
    CHECK_EQ(n, 3);
    for (int k = 0; k < 5; k++) {
        CHECK(rows[2].duration[k] <= under[k]);
        CHECK(rows[2].duration[k] * 100 >= under[k] * 85); /* and not far below it */
    }
    mc_im_table_free(t);
    free(t);
}

static void test_bounded(void)
{
    mc_im_table_t *t = malloc(sizeof(*t));
    mc_im_table_init(t);
    int made = 0;
    for (uint32_t i = 0; i < MC_IM_MAX_SETS + 10; i++) {
        mc_im_key_t k = key(200, i + 1);
        made += mc_im_find(t, &k) != NULL;
    }
    CHECK_EQ(made, MC_IM_MAX_SETS);
    CHECK_EQ(t->overflow, 10);
    /* every set is still found */
    int found = 0;
    for (uint32_t i = 0; i < MC_IM_MAX_SETS; i++) {
        mc_im_key_t k = key(200, i + 1);
        found += mc_im_find(t, &k) == mc_im_set_at(t, i);
    }
    CHECK_EQ(found, MC_IM_MAX_SETS);

    /* strings: 0 for empty, the same index for the same bytes, bounded */
    CHECK_EQ(mc_im_principal(t, "", 0), 0);
    uint16_t p1 = mc_im_principal(t, "spiffe://a/ns/x/sa/y", 20);
    CHECK(p1 != 0);
    CHECK_EQ(mc_im_principal(t, "spiffe://a/ns/x/sa/y", 20), p1);
    CHECK(mc_im_principal(t, "spiffe://a/ns/x/sa/z", 20) != p1);
    char buf[32];
    int kept = 0;
    for (int i = 0; i < MC_IM_MAX_PEERS + 5; i++) {
        int n = snprintf(buf, sizeof(buf), "peer-%d", i);
        kept += mc_im_peer(t, buf, (size_t)n) != 0;
    }
    CHECK_EQ(kept, MC_IM_MAX_PEERS);
    CHECK_EQ(t->peers.overflow, 5);
    CHECK_EQ(t->peers.len[1], 6);
    CHECK(memcmp(t->peers.data[1], "peer-0", 6) == 0);
    mc_im_table_free(t);
    free(t);
}

int main(void)
{
    test_layout();
    test_sets_and_export();
    test_bounded();
    CHECK_DONE();
}
