/*
 * include/meshcore/balancer.h: smooth weighted round robin, weighted random
 * and power-of-two-choices least request, with the retry exclusion mask.
 *
 * Round robin is deterministic and checked exactly (the nginx sequence);
 * the random policies use a fixed-seed mc_rand_t and wide tolerances, so the
 * test is both reproducible and not tied to one generator's stream.
 */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "meshcore/balancer.h"
#include "meshcore/rand.h"

/* A set over indices < 64, from a mask. */
#define M(mask) ((mc_lb_skip_t){(const uint64_t[]){(mask)}, 1})

static void make_cum(const uint32_t *w, uint64_t *cum, uint32_t n)
{
    uint64_t s = 0;
    for (uint32_t i = 0; i < n; i++) {
        s += w[i];
        cum[i] = s;
    }
}

static void test_empty(void)
{
    mc_rand_t r;
    mc_rand_seed(&r, 1);
    int64_t cur[1] = {0};
    uint32_t w[1] = {1};
    uint64_t cum[1] = {1};
    uint32_t active[1] = {0};
    CHECK(mc_lb_swrr(cur, w, 0, M(0)) == UINT32_MAX);
    CHECK(mc_lb_swrr(cur, w, 0, M(~0ull)) == UINT32_MAX);
    CHECK(mc_lb_random(&r, cum, 0, M(0)) == UINT32_MAX);
    CHECK(mc_lb_least_request(&r, cur, w, active, 0, M(0)) == UINT32_MAX);

    /* A single entry is always picked, excluded or not. */
    CHECK_EQ(mc_lb_swrr(cur, w, 1, M(0)), 0);
    CHECK_EQ(mc_lb_swrr(cur, w, 1, M(1)), 0);
    CHECK_EQ(mc_lb_random(&r, cum, 1, M(0)), 0);
    CHECK_EQ(mc_lb_random(&r, cum, 1, M(1)), 0);
    CHECK_EQ(mc_lb_least_request(&r, cur, w, active, 1, M(0)), 0);
    CHECK_EQ(mc_lb_least_request(&r, cur, w, active, 1, M(1)), 0);
}

static void test_swrr_nginx_sequence(void)
{
    /* nginx's ngx_http_upstream_get_peer with weights a=5 b=1 c=1. */
    static const uint32_t w[3] = {5, 1, 1};
    static const uint32_t seq[7] = {0, 0, 1, 0, 2, 0, 0};
    int64_t cur[3] = {0, 0, 0};
    for (uint32_t i = 0; i < 7 * 10; i++) {
        uint32_t got = mc_lb_swrr(cur, w, 3, M(0));
        CHECK_EQ(got, seq[i % 7]);
        /* The running weights always sum to zero (nothing excluded). */
        CHECK_EQ(cur[0] + cur[1] + cur[2], 0);
        if (i % 7 == 6) { /* back to the start after every full cycle */
            CHECK_EQ(cur[0], 0);
            CHECK_EQ(cur[1], 0);
            CHECK_EQ(cur[2], 0);
        }
    }
}

static void test_swrr_counts(void)
{
    static const uint32_t w[3] = {1, 2, 3};
    int64_t cur[3] = {0, 0, 0};
    uint32_t count[3] = {0, 0, 0};
    int bad = 0;
    for (uint32_t i = 1; i <= 10000; i++) {
        uint32_t got = mc_lb_swrr(cur, w, 3, M(0));
        if (got >= 3) {
            bad++;
            continue;
        }
        count[got]++;
        /* After every full cycle of sum(w) picks, counts are exactly k*w. */
        if (i % 6 == 0 && (count[0] != i / 6 || count[1] != 2 * (i / 6) || count[2] != 3 * (i / 6)))
            bad++;
        /* In between, no entry strays more than one pick from its share. */
        for (uint32_t k = 0; k < 3; k++) {
            int64_t ideal6 = (int64_t)i * w[k]; /* 6 * ideal count */
            int64_t diff6 = (int64_t)count[k] * 6 - ideal6;
            if (diff6 <= -6 || diff6 >= 6)
                bad++;
        }
    }
    CHECK_EQ(bad, 0);
    CHECK_EQ(count[0] + count[1] + count[2], 10000);
    /* 10000 = 1666 * 6 + 4: the last partial cycle picks c, b, a, c. */
    CHECK_EQ(count[0], 1666 * 1 + 1);
    CHECK_EQ(count[1], 1666 * 2 + 1);
    CHECK_EQ(count[2], 1666 * 3 + 2);
}

static void test_swrr_exclude(void)
{
    static const uint32_t w[3] = {5, 1, 1};
    int64_t cur[3] = {0, 0, 0};

    /* a excluded (a retry after a failed): b and c alternate. */
    uint32_t count[3] = {0, 0, 0};
    for (uint32_t i = 0; i < 100; i++) {
        uint32_t got = mc_lb_swrr(cur, w, 3, M(1ull << 0));
        CHECK(got == 1 || got == 2);
        if (got < 3)
            count[got]++;
    }
    CHECK_EQ(count[0], 0);
    CHECK_EQ(count[1], 50);
    CHECK_EQ(count[2], 50);

    /* a and c excluded: only b. */
    for (uint32_t i = 0; i < 20; i++)
        CHECK_EQ(mc_lb_swrr(cur, w, 3, M((1ull << 0) | (1ull << 2))), 1);

    /* Bits at or past n do not count as excluding anything real. */
    memset(cur, 0, sizeof(cur));
    for (uint32_t i = 0; i < 7; i++)
        CHECK(mc_lb_swrr(cur, w, 3, M(~0ull << 3)) < 3);

    /* Everything excluded: the mask is ignored, so the picks are exactly
     * the unexcluded sequence. */
    static const uint32_t seq[7] = {0, 0, 1, 0, 2, 0, 0};
    memset(cur, 0, sizeof(cur));
    for (uint32_t i = 0; i < 14; i++)
        CHECK_EQ(mc_lb_swrr(cur, w, 3, M(0x7)), seq[i % 7]);
    memset(cur, 0, sizeof(cur));
    for (uint32_t i = 0; i < 14; i++)
        CHECK_EQ(mc_lb_swrr(cur, w, 3, M(~0ull)), seq[i % 7]);
}

/* 64 entries: the exclusion mask covers all of them. */
static void test_swrr_64(void)
{
    uint32_t w[64];
    int64_t cur[64];
    for (uint32_t i = 0; i < 64; i++)
        w[i] = 1;
    memset(cur, 0, sizeof(cur));
    /* Exclude all but entry 63. */
    for (uint32_t i = 0; i < 10; i++)
        CHECK_EQ(mc_lb_swrr(cur, w, 64, M(~0ull >> 1)), 63);
    /* Exclude all: ignored, every entry once per 64 picks. */
    memset(cur, 0, sizeof(cur));
    uint32_t seen[64] = {0};
    for (uint32_t i = 0; i < 64; i++) {
        uint32_t got = mc_lb_swrr(cur, w, 64, M(~0ull));
        CHECK(got < 64);
        if (got < 64)
            seen[got]++;
    }
    for (uint32_t i = 0; i < 64; i++)
        CHECK_EQ(seen[i], 1);
}

/* Sets of any size: a 200-entry list (four words) with everything but one
 * entry past the first word skipped, and the tried-hosts helper. */
static void test_skip_beyond_64(void)
{
    enum { N = 200 };
    uint32_t w[N];
    int64_t cur[N];
    uint64_t cum[N];
    uint32_t active[N];
    uint64_t words[4];
    mc_rand_t r;
    mc_rand_seed(&r, 7);
    for (uint32_t i = 0; i < N; i++) {
        w[i] = 1;
        cum[i] = i + 1;
        active[i] = 0;
    }
    memset(cur, 0, sizeof(cur));
    CHECK_EQ(mc_lb_skip_words(N), 4);
    memset(words, 0xff, sizeof(words));
    words[150 / 64] &= ~(1ull << (150 % 64));
    mc_lb_skip_t skip = {words, 4};
    CHECK(!mc_lb_excluded(skip, 150) && mc_lb_excluded(skip, 149) && mc_lb_excluded(skip, 199));
    for (uint32_t i = 0; i < 20; i++) {
        CHECK_EQ(mc_lb_swrr(cur, w, N, skip), 150);
        CHECK_EQ(mc_lb_random(&r, cum, N, skip), 150);
        CHECK_EQ(mc_lb_least_request(&r, cur, w, active, N, skip), 150);
    }
    /* A set shorter than the list: the indices past it are never skipped. */
    mc_lb_skip_t short_skip = {words, 1};
    CHECK(!mc_lb_excluded(short_skip, 130));
    /* Tried hosts 3, 70 and 199 (and one out of range, ignored). */
    const uint32_t tried[] = {3, 70, 199, 500};
    mc_lb_skip_t t = mc_lb_skip_of(words, N, tried, 4);
    CHECK_EQ(t.n_words, 4);
    for (uint32_t i = 0; i < N; i++)
        CHECK_EQ(mc_lb_excluded(t, i), i == 3 || i == 70 || i == 199);
    /* Everything skipped: ignored, every entry once per N picks. */
    memset(words, 0xff, sizeof(words));
    memset(cur, 0, sizeof(cur));
    uint32_t seen[N] = {0};
    for (uint32_t i = 0; i < N; i++) {
        uint32_t got = mc_lb_swrr(cur, w, N, skip);
        CHECK(got < N);
        if (got < N)
            seen[got]++;
    }
    for (uint32_t i = 0; i < N; i++)
        CHECK_EQ(seen[i], 1);
}

static void test_random(void)
{
    mc_rand_t r;
    mc_rand_seed(&r, 0x5EED);
    static const uint32_t w[2] = {1, 3};
    uint64_t cum[2];
    make_cum(w, cum, 2);

    enum { N = 100000 };
    uint32_t count[2] = {0, 0};
    for (uint32_t i = 0; i < N; i++) {
        uint32_t got = mc_lb_random(&r, cum, 2, M(0));
        CHECK(got < 2);
        if (got < 2)
            count[got]++;
    }
    /* Expect 25% / 75%; sigma ~ 137 picks, tolerance 1000 (> 7 sigma). */
    CHECK(count[0] > N / 4 - 1000 && count[0] < N / 4 + 1000);
    CHECK_EQ(count[0] + count[1], N);

    /* A zero-weight entry is never picked. */
    static const uint32_t wz[3] = {2, 0, 2};
    uint64_t cz[3];
    make_cum(wz, cz, 3);
    uint32_t cnt3[3] = {0, 0, 0};
    for (uint32_t i = 0; i < 10000; i++) {
        uint32_t got = mc_lb_random(&r, cz, 3, M(0));
        if (got < 3)
            cnt3[got]++;
    }
    CHECK_EQ(cnt3[1], 0);
    CHECK(cnt3[0] > 4500 && cnt3[2] > 4500);

    /* Exclusion: the heavy entry excluded always yields the light one,
     * also when the excluded entry holds almost all the weight. */
    for (uint32_t i = 0; i < 1000; i++)
        CHECK_EQ(mc_lb_random(&r, cum, 2, M(1ull << 1)), 0);
    static const uint32_t wh[3] = {1, 1000000, 1};
    uint64_t ch[3];
    make_cum(wh, ch, 3);
    uint32_t cnth[3] = {0, 0, 0};
    for (uint32_t i = 0; i < 1000; i++) {
        uint32_t got = mc_lb_random(&r, ch, 3, M(1ull << 1));
        CHECK(got == 0 || got == 2);
        if (got < 3)
            cnth[got]++;
    }
    CHECK(cnth[0] > 0 && cnth[2] > 0);

    /* Everything excluded: ignored, the distribution is the plain one. */
    count[0] = count[1] = 0;
    for (uint32_t i = 0; i < N; i++) {
        uint32_t got = mc_lb_random(&r, cum, 2, M(0x3));
        if (got < 2)
            count[got]++;
    }
    CHECK(count[0] > N / 4 - 1000 && count[0] < N / 4 + 1000);
    CHECK_EQ(count[0] + count[1], N);
}

static void test_least_request(void)
{
    mc_rand_t r;
    mc_rand_seed(&r, 77);
    enum { N = 100000 };
    int64_t cur[4] = {0, 0, 0, 0};

    /* Equal weights: power of two choices. Two entries, one busy: the idle
     * one wins every comparison it is in, so the busy one is only picked
     * when drawn twice (with replacement): 1/4 of the time. */
    static const uint32_t w[2] = {1, 1};
    static const uint32_t active[2] = {100, 0};
    uint32_t count[3] = {0, 0, 0};
    for (uint32_t i = 0; i < N; i++) {
        uint32_t got = mc_lb_least_request(&r, cur, w, active, 2, M(0));
        CHECK(got < 2);
        if (got < 2)
            count[got]++;
    }
    CHECK(count[1] > count[0] * 2);
    CHECK(count[0] > N / 4 - 1500 && count[0] < N / 4 + 1500);

    /* Four entries, one busy: picked only when both draws land on it
     * (1/16); each idle entry gets 5/16. */
    static const uint32_t w4[4] = {1, 1, 1, 1};
    static const uint32_t active4[4] = {0, 0, 50, 0};
    uint32_t count4[4] = {0, 0, 0, 0};
    for (uint32_t i = 0; i < N; i++) {
        uint32_t got = mc_lb_least_request(&r, cur, w4, active4, 4, M(0));
        if (got < 4)
            count4[got]++;
    }
    CHECK(count4[2] < N / 16 + 1000);
    for (uint32_t k = 0; k < 4; k++)
        if (k != 2)
            CHECK(count4[k] > 5 * N / 16 - 1500 && count4[k] < 5 * N / 16 + 1500);

    /* Exclusion: the idle entry excluded (it just failed), the busy one is
     * the only candidate. */
    for (uint32_t i = 0; i < 1000; i++)
        CHECK_EQ(mc_lb_least_request(&r, cur, w, active, 2, M(1ull << 1)), 0);
    /* Excluding the busy one: always the idle one. */
    for (uint32_t i = 0; i < 1000; i++)
        CHECK_EQ(mc_lb_least_request(&r, cur, w, active, 2, M(1ull << 0)), 1);
    /* All excluded: ignored, same preference for the idle entry. */
    count[0] = count[1] = 0;
    for (uint32_t i = 0; i < N; i++) {
        uint32_t got = mc_lb_least_request(&r, cur, w, active, 2, M(0x3));
        if (got < 2)
            count[got]++;
    }
    CHECK(count[1] > count[0] * 2);

    /* Unequal weights, all idle: exactly the weight shares (smooth WRR over
     * weight / (active + 1)), as Envoy splits idle traffic by weight. */
    static const uint32_t w3[3] = {1, 2, 7};
    static const uint32_t idle3[3] = {0, 0, 0};
    int64_t cur3[3] = {0, 0, 0};
    count[0] = count[1] = count[2] = 0;
    for (uint32_t i = 0; i < 10000; i++) {
        uint32_t got = mc_lb_least_request(&r, cur3, w3, idle3, 3, M(0));
        if (got < 3)
            count[got]++;
    }
    CHECK_EQ(count[0], 1000);
    CHECK_EQ(count[1], 2000);
    CHECK_EQ(count[2], 7000);

    /* Unequal weights under load: effective weight is weight / (active + 1).
     * Entry 0: 1 / 3; entry 1: 4 / 6 = 2 / 3, so entry 0 gets a third. */
    static const uint32_t ww[2] = {1, 4};
    static const uint32_t aw[2] = {2, 5};
    int64_t cur2[2] = {0, 0};
    count[0] = count[1] = 0;
    for (uint32_t i = 0; i < 30000; i++) {
        uint32_t got = mc_lb_least_request(&r, cur2, ww, aw, 2, M(0));
        if (got < 2)
            count[got]++;
    }
    CHECK(count[0] > 9990 && count[0] < 10010);
    /* Excluded entries are skipped in the weighted path too. */
    for (uint32_t i = 0; i < 100; i++)
        CHECK_EQ(mc_lb_least_request(&r, cur2, ww, aw, 2, M(1ull << 1)), 0);
}

int main(void)
{
    test_empty();
    test_swrr_nginx_sequence();
    test_swrr_counts();
    test_swrr_exclude();
    test_swrr_64();
    test_skip_beyond_64();
    test_random();
    test_least_request();
    CHECK_DONE();
}
