/*
 * include/meshcore/histogram.h: the log-linear bucket layout and recording.
 *
 * The layout is checked both ways: from values (every sampled value lies in
 * its bucket's [lower, upper)) and from buckets (bounds are contiguous,
 * strictly increasing, at most 1/16 wide relative to their lower bound).
 * Values from 2^(MAX_EXP+1) on clamp into the last bucket.
 */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "meshcore/histogram.h"
#include "meshcore/rand.h"

/* First value past the exactly-bucketed range: the last bucket's upper. */
#define TOP (1ull << (MC_HIST_MAX_EXP + 1))

static int in_bucket(uint64_t v)
{
    uint32_t b = mc_hist_bucket(v);
    if (b >= MC_HIST_BUCKETS)
        return 0;
    return mc_hist_bucket_lower(b) <= v && v < mc_hist_bucket_upper(b);
}

static void test_values(void)
{
    /* Dense at the low end, across the linear/log seam at 16. */
    int bad = 0;
    for (uint64_t v = 0; v < 70000; v++)
        if (!in_bucket(v))
            bad++;
    CHECK_EQ(bad, 0);

    /* Each value below 16 has its own bucket. */
    for (uint64_t v = 0; v < MC_HIST_SUB; v++) {
        CHECK_EQ(mc_hist_bucket(v), v);
        CHECK_EQ(mc_hist_bucket_lower((uint32_t)v), v);
        CHECK_EQ(mc_hist_bucket_upper((uint32_t)v), v + 1);
    }

    /* Powers of two and their neighbours, up to the top of the range. */
    for (uint32_t k = 0; k <= MC_HIST_MAX_EXP; k++) {
        uint64_t p = 1ull << k;
        CHECK(in_bucket(p));
        CHECK(in_bucket(p - 1));
        CHECK(in_bucket(p + 1));
        if (k >= MC_HIST_SUB_BITS) {
            /* A power of two starts a bucket; p - 1 ends the previous one. */
            CHECK_EQ(mc_hist_bucket_lower(mc_hist_bucket(p)), p);
            CHECK_EQ(mc_hist_bucket(p - 1) + 1, mc_hist_bucket(p));
        }
    }
    CHECK(in_bucket(TOP - 1));
    CHECK(in_bucket(TOP - 2));
    CHECK_EQ(mc_hist_bucket(TOP - 1), MC_HIST_BUCKETS - 1);

    /* Random values of random bit widths (fixed seed). */
    mc_rand_t r;
    mc_rand_seed(&r, 0xB0C4E7);
    bad = 0;
    for (int i = 0; i < 200000; i++) {
        uint32_t bits = 1 + (uint32_t)mc_rand_below(&r, MC_HIST_MAX_EXP + 1); /* 1..41 */
        uint64_t v = mc_rand_next(&r) & ((1ull << bits) - 1);
        if (!in_bucket(v))
            bad++;
    }
    CHECK_EQ(bad, 0);

    /* Monotonic over increasing values, in steps that cross every bucket. */
    uint32_t prev = 0;
    bad = 0;
    for (uint64_t v = 0; v < TOP; v += 1 + v / 64) {
        uint32_t b = mc_hist_bucket(v);
        if (b < prev || b > prev + 1)
            bad++;
        prev = b;
    }
    CHECK_EQ(bad, 0);
    CHECK_EQ(prev, MC_HIST_BUCKETS - 1);
}

static void test_buckets(void)
{
    CHECK_EQ(MC_HIST_BUCKETS, MC_HIST_SUB + (MC_HIST_MAX_EXP - MC_HIST_SUB_BITS + 1) * MC_HIST_SUB);
    CHECK_EQ(mc_hist_bucket_lower(0), 0);
    CHECK(mc_hist_bucket_upper(MC_HIST_BUCKETS - 1) == TOP);
    int bad_contig = 0, bad_order = 0, bad_width = 0, bad_roundtrip = 0;
    for (uint32_t b = 0; b < MC_HIST_BUCKETS; b++) {
        uint64_t lo = mc_hist_bucket_lower(b), hi = mc_hist_bucket_upper(b);
        if (lo >= hi)
            bad_order++;
        if (b + 1 < MC_HIST_BUCKETS && hi != mc_hist_bucket_lower(b + 1))
            bad_contig++;
        /* Relative width <= 1/16 once buckets are no longer unit-wide. */
        if (lo >= MC_HIST_SUB && (hi - lo) * MC_HIST_SUB > lo)
            bad_width++;
        if (mc_hist_bucket(lo) != b || mc_hist_bucket(hi - 1) != b)
            bad_roundtrip++;
        if (b + 1 < MC_HIST_BUCKETS && mc_hist_bucket(hi) != b + 1)
            bad_roundtrip++;
    }
    CHECK_EQ(bad_order, 0);
    CHECK_EQ(bad_contig, 0);
    CHECK_EQ(bad_width, 0);
    CHECK_EQ(bad_roundtrip, 0);

    /* The bound is tight: the first bucket of each octave is exactly 1/16. */
    for (uint32_t k = MC_HIST_SUB_BITS; k <= MC_HIST_MAX_EXP; k++) {
        uint32_t b = mc_hist_bucket(1ull << k);
        CHECK((mc_hist_bucket_upper(b) - mc_hist_bucket_lower(b)) * MC_HIST_SUB ==
              mc_hist_bucket_lower(b));
    }
}

static void test_clamp(void)
{
    uint32_t last = MC_HIST_BUCKETS - 1;
    CHECK_EQ(mc_hist_bucket(TOP), last);
    CHECK_EQ(mc_hist_bucket(TOP + 1), last);
    CHECK_EQ(mc_hist_bucket(TOP * 2), last);
    CHECK_EQ(mc_hist_bucket(1ull << 50), last);
    CHECK_EQ(mc_hist_bucket(1ull << 63), last);
    CHECK_EQ(mc_hist_bucket(UINT64_MAX), last);
    CHECK_EQ(mc_hist_bucket(UINT64_MAX - 1), last);
}

static void test_record_accumulate(void)
{
    static mc_hist_t a, b, sum;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    memset(&sum, 0, sizeof(sum));

    static const uint64_t va[] = {0, 1, 15, 16, 17, 1000, 1000, 1023, 1024, 1ull << 40};
    static const uint64_t vb[] = {5, 1000, 123456789, TOP - 1, TOP, UINT64_MAX / 4};
    enum { NA = sizeof(va) / sizeof(va[0]), NB = sizeof(vb) / sizeof(vb[0]) };
    uint64_t sum_a = 0, sum_b = 0;
    for (uint32_t i = 0; i < NA; i++) {
        mc_hist_record(&a, va[i]);
        sum_a += va[i];
    }
    for (uint32_t i = 0; i < NB; i++) {
        mc_hist_record(&b, vb[i]);
        sum_b += vb[i];
    }
    CHECK_EQ(a.count, NA);
    CHECK(a.sum == sum_a);
    CHECK_EQ(b.count, NB);
    CHECK(b.sum == sum_b); /* clamped values still add their true value */
    CHECK_EQ(a.buckets[mc_hist_bucket(1000)], 3); /* 1000, 1000, 1023 */
    CHECK_EQ(a.buckets[0], 1);
    CHECK_EQ(a.buckets[15], 1);
    CHECK_EQ(a.buckets[16], 1);
    CHECK_EQ(a.buckets[17], 1);
    CHECK_EQ(b.buckets[MC_HIST_BUCKETS - 1], 3); /* TOP - 1, TOP, 2^62 - 1 */

    uint64_t total_a = 0;
    for (uint32_t i = 0; i < MC_HIST_BUCKETS; i++)
        total_a += a.buckets[i];
    CHECK_EQ(total_a, a.count);

    mc_hist_accumulate(&sum, &a);
    mc_hist_accumulate(&sum, &b);
    CHECK_EQ(sum.count, NA + NB);
    CHECK(sum.sum == sum_a + sum_b);
    int bad = 0;
    for (uint32_t i = 0; i < MC_HIST_BUCKETS; i++)
        if (sum.buckets[i] != a.buckets[i] + b.buckets[i])
            bad++;
    CHECK_EQ(bad, 0);
    CHECK_EQ(sum.buckets[mc_hist_bucket(1000)], 4);

    /* Accumulating again adds again (it is += , not a copy). */
    mc_hist_accumulate(&sum, &a);
    CHECK_EQ(sum.count, 2 * NA + NB);
    CHECK_EQ(sum.buckets[mc_hist_bucket(1000)], 7);
}

int main(void)
{
    test_values();
    test_buckets();
    test_clamp();
    test_record_accumulate();
    CHECK_DONE();
}
