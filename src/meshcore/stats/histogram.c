/* Log-linear histogram; see include/meshcore/histogram.h for the layout. */
#include "meshcore/histogram.h"

uint32_t mc_hist_bucket(uint64_t v)
{
    if (v < MC_HIST_SUB)
        return (uint32_t)v;
    uint32_t e = 63u - (uint32_t)__builtin_clzll(v); /* floor(log2 v), >= SUB_BITS */
    if (e > MC_HIST_MAX_EXP)
        return MC_HIST_BUCKETS - 1;
    uint32_t sub = (uint32_t)(v >> (e - MC_HIST_SUB_BITS)) & (MC_HIST_SUB - 1);
    return MC_HIST_SUB + (e - MC_HIST_SUB_BITS) * MC_HIST_SUB + sub;
}

uint64_t mc_hist_bucket_lower(uint32_t b)
{
    if (b < MC_HIST_SUB)
        return b;
    uint32_t e = (b - MC_HIST_SUB) / MC_HIST_SUB + MC_HIST_SUB_BITS;
    uint64_t sub = (b - MC_HIST_SUB) % MC_HIST_SUB;
    return (MC_HIST_SUB + sub) << (e - MC_HIST_SUB_BITS);
}

uint64_t mc_hist_bucket_upper(uint32_t b)
{
    if (b < MC_HIST_SUB)
        return (uint64_t)b + 1;
    uint32_t e = (b - MC_HIST_SUB) / MC_HIST_SUB + MC_HIST_SUB_BITS;
    return mc_hist_bucket_lower(b) + (1ull << (e - MC_HIST_SUB_BITS));
}

/* Plain load + relaxed store: one writer, so no read-modify-write atomics
 * (no lock prefix on the hot path), yet readers never see a torn value. */
#define BUMP(field, by) __atomic_store_n(&(field), (field) + (by), __ATOMIC_RELAXED)

void mc_hist_record(mc_hist_t *h, uint64_t v)
{
    BUMP(h->buckets[mc_hist_bucket(v)], 1);
    BUMP(h->count, 1);
    BUMP(h->sum, v);
}

void mc_hist_accumulate(mc_hist_t *dst, const mc_hist_t *src)
{
    for (uint32_t i = 0; i < MC_HIST_BUCKETS; i++)
        dst->buckets[i] += __atomic_load_n(&src->buckets[i], __ATOMIC_RELAXED);
    dst->count += __atomic_load_n(&src->count, __ATOMIC_RELAXED);
    dst->sum += __atomic_load_n(&src->sum, __ATOMIC_RELAXED);
}
