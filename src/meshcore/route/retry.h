/*
 * Retry policy (route.retry_policy): which outcomes are retried and how long
 * to back off between tries. Pure functions over a compiled policy and the
 * worker's PRNG, so the tests can check them against a Python reference.
 */
#ifndef MESHCORE_RETRY_H
#define MESHCORE_RETRY_H

#include <stdint.h>

#include "meshcore/rand.h"
#include "meshcore/snapshot.h" /* MC_SB_RETRY_*: the retry_on bits, defined once for compiler and core */

/* How a try ended when it produced no response head. */
enum {
    MC_TRY_OK = 0,
    MC_TRY_CONNECT_FAILURE,
    MC_TRY_RESET,
    MC_TRY_TIMEOUT,
    MC_TRY_REMOTE_RESET, /* HTTP/2 RST_STREAM from the upstream */
    MC_TRY_REFUSED,      /* HTTP/2 REFUSED_STREAM, or past a GOAWAY: never processed */
};

#define MC_RETRY_MAX_CODES 16

typedef struct mc_retry_policy {
    uint32_t retry_on;        /* MC_SB_RETRY_* bits; 0 = no retries */
    uint32_t num_retries;     /* Envoy default 1 when a policy is present */
    uint64_t per_try_timeout_ns; /* 0 = only the route timeout */
    uint64_t base_interval_ns;   /* default 25 ms */
    uint64_t max_interval_ns;    /* default 10 x base */
    uint16_t codes[MC_RETRY_MAX_CODES];
    uint32_t n_codes;
    uint8_t previous_hosts;   /* envoy.retry_host_predicates.previous_hosts */
    uint32_t host_selection_max_attempts;
} mc_retry_policy_t;

/* 1 if a try that ended with `status` (an HTTP status, or 0 when there was
 * no response) and `failure` (MC_TRY_*) should be retried under p. */
int mc_retry_wanted(const mc_retry_policy_t *p, int status, int failure);

/* 1 if a response head carrying grpc-status `grpc_status` (a trailers-only
 * gRPC response) should be retried under p's gRPC conditions. */
int mc_retry_wanted_grpc(const mc_retry_policy_t *p, int grpc_status);

/* Back-off before retry number `n` (1 for the first retry): Envoy's jittered
 * exponential back-off, uniform in [0, min(max, base * (2^n - 1))). */
uint64_t mc_retry_backoff(const mc_retry_policy_t *p, uint32_t n, mc_rand_t *r);

#endif
