/* Retry decisions and back-off; see route/retry.h. Semantics follow Envoy's
 * RetryStateImpl: a reset or failed connect is retried by 5xx,
 * gateway-error and reset (connect-failure only for failed connects); a
 * per-try timeout counts as a 504. */
#include "route/retry.h"

int mc_retry_wanted(const mc_retry_policy_t *p, int status, int failure)
{
    uint32_t on = p->retry_on;
    if (!on)
        return 0;
    if (failure == MC_TRY_CONNECT_FAILURE)
        return (on & (MC_SB_RETRY_5XX | MC_SB_RETRY_GATEWAY_ERROR | MC_SB_RETRY_RESET |
                      MC_SB_RETRY_CONNECT_FAILURE)) != 0;
    if (failure == MC_TRY_RESET || failure == MC_TRY_REMOTE_RESET)
        return (on & (MC_SB_RETRY_5XX | MC_SB_RETRY_GATEWAY_ERROR | MC_SB_RETRY_RESET)) != 0;
    if (failure == MC_TRY_REFUSED)
        return (on & (MC_SB_RETRY_5XX | MC_SB_RETRY_GATEWAY_ERROR | MC_SB_RETRY_RESET |
                      MC_SB_RETRY_REFUSED_STREAM)) != 0;
    if (failure == MC_TRY_TIMEOUT)
        status = 504;
    if ((on & MC_SB_RETRY_5XX) && status >= 500 && status <= 599)
        return 1;
    if ((on & MC_SB_RETRY_GATEWAY_ERROR) && status >= 502 && status <= 504)
        return 1;
    if ((on & MC_SB_RETRY_RETRIABLE_4XX) && status == 409)
        return 1;
    if (on & MC_SB_RETRY_RETRIABLE_STATUS_CODES) {
        for (uint32_t i = 0; i < p->n_codes; i++)
            if (p->codes[i] == status)
                return 1;
    }
    return 0;
}

int mc_retry_wanted_grpc(const mc_retry_policy_t *p, int grpc_status)
{
    /* grpc-status codes: 1 CANCELLED, 4 DEADLINE_EXCEEDED, 8 RESOURCE_EXHAUSTED,
     * 13 INTERNAL, 14 UNAVAILABLE */
    switch (grpc_status) {
    case 1:
        return (p->retry_on & MC_SB_RETRY_GRPC_CANCELLED) != 0;
    case 4:
        return (p->retry_on & MC_SB_RETRY_GRPC_DEADLINE_EXCEEDED) != 0;
    case 8:
        return (p->retry_on & MC_SB_RETRY_GRPC_RESOURCE_EXHAUSTED) != 0;
    case 13:
        return (p->retry_on & MC_SB_RETRY_GRPC_INTERNAL) != 0;
    case 14:
        return (p->retry_on & MC_SB_RETRY_GRPC_UNAVAILABLE) != 0;
    default:
        return 0;
    }
}

uint64_t mc_retry_backoff(const mc_retry_policy_t *p, uint32_t n, mc_rand_t *r)
{
    uint64_t base = p->base_interval_ns ? p->base_interval_ns : 25000000ull;
    uint64_t max = p->max_interval_ns ? p->max_interval_ns : base * 10;
    uint64_t mult = n >= 32 ? UINT32_MAX : ((1ull << n) - 1);
    uint64_t upper = (mult && base > max / mult) ? max : base * mult;
    if (upper > max)
        upper = max;
    return upper ? mc_rand_below(r, upper) : 0;
}
