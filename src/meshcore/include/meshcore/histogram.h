/*
 * Log-linear latency histogram.
 *
 * Values (microseconds by convention) below 16 get a bucket each; above that
 * every power of two is split into 16 linear sub-buckets, so any recorded
 * value is known to within 1/16 (6.25%) of itself. That is fine enough to
 * re-bucket into Prometheus/Istio bucket boundaries on export and coarse
 * enough that a whole histogram is 5 KiB. Recording is a shift, a count of
 * leading zeros and two adds: no branches on the value range, no locks. A
 * histogram has exactly one writer (its worker); readers sum shards with
 * relaxed loads and accept a slightly stale view.
 */
#ifndef MESHCORE_HISTOGRAM_H
#define MESHCORE_HISTOGRAM_H

#include <stdint.h>

#define MC_HIST_SUB_BITS 4
#define MC_HIST_SUB (1u << MC_HIST_SUB_BITS)
#define MC_HIST_MAX_EXP 40 /* exact up to 2^41-1 us (~25 days); larger values clamp */
#define MC_HIST_BUCKETS (MC_HIST_SUB + (MC_HIST_MAX_EXP - MC_HIST_SUB_BITS + 1) * MC_HIST_SUB)

typedef struct mc_hist {
    uint64_t count;
    uint64_t sum;
    uint64_t buckets[MC_HIST_BUCKETS];
} mc_hist_t;

/* Bucket index for a value; total function, values past the range clamp. */
uint32_t mc_hist_bucket(uint64_t value);

/* Inclusive lower and exclusive upper bound of a bucket. */
uint64_t mc_hist_bucket_lower(uint32_t bucket);
uint64_t mc_hist_bucket_upper(uint32_t bucket);

/* Single-writer record. */
void mc_hist_record(mc_hist_t *h, uint64_t value);

/* Adds src into dst reading src with relaxed atomic loads (src may be live). */
void mc_hist_accumulate(mc_hist_t *dst, const mc_hist_t *src);

#endif
