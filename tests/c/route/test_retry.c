/*
 * route/retry.c and the policy route/route_builder.c makes from the
 * compiler's mc_sb_retry_t: what each retry_on bit (MC_SB_RETRY_*) retries,
 * for responses, failed connects, resets and per-try timeouts; and the
 * jittered exponential back-off's bounds (uniform in [0, min(max,
 * base * (2^n - 1))), defaults 25 ms and 10 x base). The back-off's
 * distribution is also checked against a Python reference
 * (tests/python/test_policies_reference.py).
 */
#include <string.h>

#include "check.h"
#include "route/route_config.h"

static mc_retry_policy_t policy(uint32_t retry_on, const uint16_t *codes, uint32_t n_codes)
{
    mc_sb_retry_t s = {.retry_on = retry_on, .num_retries = 2, .codes = codes, .n_codes = n_codes};
    mc_retry_policy_t p;
    mc_retry_from_spec(&p, &s);
    return p;
}

static void test_bits_are_distinct(void)
{
    const uint32_t bits[] = {MC_SB_RETRY_5XX, MC_SB_RETRY_GATEWAY_ERROR, MC_SB_RETRY_RESET,
                             MC_SB_RETRY_CONNECT_FAILURE, MC_SB_RETRY_RETRIABLE_4XX,
                             MC_SB_RETRY_RETRIABLE_STATUS_CODES, MC_SB_RETRY_GRPC_CANCELLED,
                             MC_SB_RETRY_GRPC_DEADLINE_EXCEEDED, MC_SB_RETRY_GRPC_INTERNAL,
                             MC_SB_RETRY_GRPC_RESOURCE_EXHAUSTED, MC_SB_RETRY_GRPC_UNAVAILABLE,
                             MC_SB_RETRY_REFUSED_STREAM};
    uint32_t all = 0;
    for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); i++) {
        CHECK_EQ(bits[i] & (bits[i] - 1), 0); /* one bit each */
        CHECK_EQ(all & bits[i], 0);           /* none shared */
        all |= bits[i];
    }
}

static void test_from_spec(void)
{
    uint16_t codes[20];
    for (int i = 0; i < 20; i++)
        codes[i] = (uint16_t)(400 + i);
    mc_sb_retry_t s = {.retry_on = MC_SB_RETRY_5XX | MC_SB_RETRY_RESET,
                       .num_retries = 3,
                       .per_try_timeout_ms = 250,
                       .base_interval_ms = 10,
                       .max_interval_ms = 70,
                       .codes = codes,
                       .n_codes = 20,
                       .previous_hosts = 5,
                       .host_selection_max_attempts = 4};
    mc_retry_policy_t p;
    memset(&p, 0xab, sizeof(p));
    mc_retry_from_spec(&p, &s);
    CHECK_EQ(p.retry_on, MC_SB_RETRY_5XX | MC_SB_RETRY_RESET);
    CHECK_EQ(p.num_retries, 3);
    CHECK_EQ(p.per_try_timeout_ns, 250000000ull);
    CHECK_EQ(p.base_interval_ns, 10000000ull);
    CHECK_EQ(p.max_interval_ns, 70000000ull);
    CHECK_EQ(p.n_codes, MC_RETRY_MAX_CODES); /* at most MC_RETRY_MAX_CODES codes kept */
    CHECK_EQ(p.codes[0], 400);
    CHECK_EQ(p.codes[MC_RETRY_MAX_CODES - 1], 400 + MC_RETRY_MAX_CODES - 1);
    CHECK_EQ(p.previous_hosts, 1);
    CHECK_EQ(p.host_selection_max_attempts, 4);
}

static void test_wanted_responses(void)
{
    mc_retry_policy_t none = policy(0, NULL, 0);
    CHECK_EQ(mc_retry_wanted(&none, 503, MC_TRY_OK), 0);
    CHECK_EQ(mc_retry_wanted(&none, 0, MC_TRY_CONNECT_FAILURE), 0);
    CHECK_EQ(mc_retry_wanted(&none, 0, MC_TRY_RESET), 0);

    mc_retry_policy_t p5xx = policy(MC_SB_RETRY_5XX, NULL, 0);
    CHECK_EQ(mc_retry_wanted(&p5xx, 500, MC_TRY_OK), 1);
    CHECK_EQ(mc_retry_wanted(&p5xx, 503, MC_TRY_OK), 1);
    CHECK_EQ(mc_retry_wanted(&p5xx, 599, MC_TRY_OK), 1);
    CHECK_EQ(mc_retry_wanted(&p5xx, 499, MC_TRY_OK), 0);
    CHECK_EQ(mc_retry_wanted(&p5xx, 200, MC_TRY_OK), 0);
    CHECK_EQ(mc_retry_wanted(&p5xx, 409, MC_TRY_OK), 0);

    mc_retry_policy_t gw = policy(MC_SB_RETRY_GATEWAY_ERROR, NULL, 0);
    CHECK_EQ(mc_retry_wanted(&gw, 501, MC_TRY_OK), 0);
    CHECK_EQ(mc_retry_wanted(&gw, 502, MC_TRY_OK), 1);
    CHECK_EQ(mc_retry_wanted(&gw, 503, MC_TRY_OK), 1);
    CHECK_EQ(mc_retry_wanted(&gw, 504, MC_TRY_OK), 1);
    CHECK_EQ(mc_retry_wanted(&gw, 505, MC_TRY_OK), 0);
    CHECK_EQ(mc_retry_wanted(&gw, 500, MC_TRY_OK), 0);

    mc_retry_policy_t r4xx = policy(MC_SB_RETRY_RETRIABLE_4XX, NULL, 0);
    CHECK_EQ(mc_retry_wanted(&r4xx, 409, MC_TRY_OK), 1);
    CHECK_EQ(mc_retry_wanted(&r4xx, 408, MC_TRY_OK), 0);
    CHECK_EQ(mc_retry_wanted(&r4xx, 503, MC_TRY_OK), 0);

    const uint16_t codes[] = {429, 418};
    mc_retry_policy_t sc = policy(MC_SB_RETRY_RETRIABLE_STATUS_CODES, codes, 2);
    CHECK_EQ(mc_retry_wanted(&sc, 429, MC_TRY_OK), 1);
    CHECK_EQ(mc_retry_wanted(&sc, 418, MC_TRY_OK), 1);
    CHECK_EQ(mc_retry_wanted(&sc, 503, MC_TRY_OK), 0);
    /* The codes count only with their bit. */
    mc_retry_policy_t codes_only = policy(MC_SB_RETRY_5XX, codes, 2);
    CHECK_EQ(mc_retry_wanted(&codes_only, 429, MC_TRY_OK), 0);

    /* Reset and connect-failure alone never retry a response. */
    mc_retry_policy_t rc = policy(MC_SB_RETRY_RESET | MC_SB_RETRY_CONNECT_FAILURE, NULL, 0);
    CHECK_EQ(mc_retry_wanted(&rc, 503, MC_TRY_OK), 0);
}

static void test_wanted_failures(void)
{
    /* Which bits retry a failed connect, a reset, a per-try timeout. */
    static const struct {
        uint32_t on;
        int connect_failure, reset, timeout;
    } cases[] = {
        {MC_SB_RETRY_5XX, 1, 1, 1},
        {MC_SB_RETRY_GATEWAY_ERROR, 1, 1, 1}, /* a timeout counts as a 504 */
        {MC_SB_RETRY_RESET, 1, 1, 0},
        {MC_SB_RETRY_CONNECT_FAILURE, 1, 0, 0},
        {MC_SB_RETRY_RETRIABLE_4XX, 0, 0, 0},
        {MC_SB_RETRY_RETRIABLE_STATUS_CODES, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        mc_retry_policy_t p = policy(cases[i].on, NULL, 0);
        CHECK_EQ(mc_retry_wanted(&p, 0, MC_TRY_CONNECT_FAILURE), cases[i].connect_failure);
        CHECK_EQ(mc_retry_wanted(&p, 0, MC_TRY_RESET), cases[i].reset);
        CHECK_EQ(mc_retry_wanted(&p, 0, MC_TRY_TIMEOUT), cases[i].timeout);
    }
    /* A timeout is a 504 for the status-code list too. */
    const uint16_t c504[] = {504};
    mc_retry_policy_t p = policy(MC_SB_RETRY_RETRIABLE_STATUS_CODES, c504, 1);
    CHECK_EQ(mc_retry_wanted(&p, 0, MC_TRY_TIMEOUT), 1);
}

static void test_wanted_grpc_and_http2(void)
{
    /* Each gRPC condition names exactly one grpc-status (Envoy's x-envoy-retry-grpc-on). */
    static const struct {
        uint32_t on;
        int code;
    } cases[] = {
        {MC_SB_RETRY_GRPC_CANCELLED, 1}, {MC_SB_RETRY_GRPC_DEADLINE_EXCEEDED, 4},
        {MC_SB_RETRY_GRPC_RESOURCE_EXHAUSTED, 8}, {MC_SB_RETRY_GRPC_INTERNAL, 13},
        {MC_SB_RETRY_GRPC_UNAVAILABLE, 14},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        mc_retry_policy_t p = policy(cases[i].on, NULL, 0);
        for (int code = 0; code <= 16; code++)
            CHECK_EQ(mc_retry_wanted_grpc(&p, code), code == cases[i].code);
        /* a gRPC condition never retries an HTTP status or a reset */
        CHECK_EQ(mc_retry_wanted(&p, 503, MC_TRY_OK), 0);
        CHECK_EQ(mc_retry_wanted(&p, 0, MC_TRY_RESET), 0);
    }
    mc_retry_policy_t http = policy(MC_SB_RETRY_5XX, NULL, 0);
    CHECK_EQ(mc_retry_wanted_grpc(&http, 14), 0);
    /* refused-stream retries a refused stream only; reset covers both HTTP/2 resets */
    mc_retry_policy_t refused = policy(MC_SB_RETRY_REFUSED_STREAM, NULL, 0);
    CHECK_EQ(mc_retry_wanted(&refused, 0, MC_TRY_REFUSED), 1);
    CHECK_EQ(mc_retry_wanted(&refused, 0, MC_TRY_REMOTE_RESET), 0);
    CHECK_EQ(mc_retry_wanted(&refused, 0, MC_TRY_RESET), 0);
    mc_retry_policy_t reset = policy(MC_SB_RETRY_RESET, NULL, 0);
    CHECK_EQ(mc_retry_wanted(&reset, 0, MC_TRY_REFUSED), 1);
    CHECK_EQ(mc_retry_wanted(&reset, 0, MC_TRY_REMOTE_RESET), 1);
}

/* Largest back-off seen over many draws, and that none reached `upper`. */
static uint64_t max_backoff(const mc_retry_policy_t *p, uint32_t n, uint64_t upper, mc_rand_t *r)
{
    uint64_t mx = 0;
    for (int i = 0; i < 20000; i++) {
        uint64_t b = mc_retry_backoff(p, n, r);
        if (b >= upper) {
            fprintf(stderr, "back-off %llu >= bound %llu (n=%u)\n", (unsigned long long)b,
                    (unsigned long long)upper, n);
            check_failures++;
            break;
        }
        if (b > mx)
            mx = b;
    }
    return mx;
}

static void test_backoff_bounds(void)
{
    mc_rand_t r;
    mc_rand_seed(&r, 42);
    const uint64_t ms = 1000000ull;

    /* Defaults: base 25 ms, max 250 ms. */
    mc_retry_policy_t d = policy(MC_SB_RETRY_5XX, NULL, 0);
    CHECK_EQ(mc_retry_backoff(&d, 0, &r), 0); /* no retry yet: no wait */
    uint64_t m1 = max_backoff(&d, 1, 25 * ms, &r);
    CHECK(m1 > 24 * ms); /* the whole range is used */
    uint64_t m2 = max_backoff(&d, 2, 75 * ms, &r);
    CHECK(m2 > 73 * ms);
    uint64_t m3 = max_backoff(&d, 3, 175 * ms, &r);
    CHECK(m3 > 170 * ms);
    uint64_t m4 = max_backoff(&d, 4, 250 * ms, &r); /* 375 ms capped at 250 */
    CHECK(m4 > 245 * ms);
    max_backoff(&d, 63, 250 * ms, &r); /* no overflow for large n */
    max_backoff(&d, 1000, 250 * ms, &r);

    /* Configured: base 10 ms, max 35 ms. */
    mc_sb_retry_t s = {.retry_on = MC_SB_RETRY_5XX, .base_interval_ms = 10, .max_interval_ms = 35};
    mc_retry_policy_t p;
    mc_retry_from_spec(&p, &s);
    CHECK(max_backoff(&p, 1, 10 * ms, &r) > 9 * ms);
    CHECK(max_backoff(&p, 2, 30 * ms, &r) > 29 * ms);
    CHECK(max_backoff(&p, 3, 35 * ms, &r) > 34 * ms);

    /* Only a base: max is 10 x base. */
    s = (mc_sb_retry_t){.retry_on = MC_SB_RETRY_5XX, .base_interval_ms = 2};
    mc_retry_from_spec(&p, &s);
    CHECK(max_backoff(&p, 10, 20 * ms, &r) > 19 * ms);

    /* The same seed gives the same back-offs (a worker's own PRNG). */
    mc_rand_t a, b;
    mc_rand_seed(&a, 7);
    mc_rand_seed(&b, 7);
    for (uint32_t n = 1; n < 6; n++)
        CHECK_EQ(mc_retry_backoff(&d, n, &a), mc_retry_backoff(&d, n, &b));
}

int main(void)
{
    test_bits_are_distinct();
    test_from_spec();
    test_wanted_responses();
    test_wanted_failures();
    test_wanted_grpc_and_http2();
    test_backoff_bounds();
    CHECK_DONE();
}
