/*
 * A worker's table of Istio metric label sets (see meshcore/istio_metrics.h
 * for what the exporter sees).
 *
 * Single writer (the worker); the exporter reads concurrently. Entries are
 * appended and never move or go away while the engine lives: a new one is
 * filled in, then published by a release store of the count, so a reader
 * that loads the count with acquire sees whole entries; counters are read
 * with relaxed loads and may be a moment stale. Storage for label sets
 * comes in chunks, allocated the first time a chunk is needed (a new label
 * set is a cold path); counting on a known set allocates nothing.
 */
#ifndef MESHCORE_ISTIO_TABLE_H
#define MESHCORE_ISTIO_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "meshcore/istio_metrics.h"

/* Compact log-linear histogram: 8 sub-buckets per power of two (a value is
 * known to within 1/8), exact below 8, clamped at 2^37 - 1 (38 hours in
 * microseconds, 128 GiB in bytes). */
#define MC_IM_HIST_SUB_BITS 3
#define MC_IM_HIST_MAX_EXP 36
#define MC_IM_HIST_BUCKETS ((1u << MC_IM_HIST_SUB_BITS) * (MC_IM_HIST_MAX_EXP - MC_IM_HIST_SUB_BITS + 2))

typedef struct mc_im_hist {
    uint64_t sum;
    uint64_t buckets[MC_IM_HIST_BUCKETS];
} mc_im_hist_t;

typedef struct mc_im_set {
    mc_im_key_t key;
    uint64_t tcp_opened, tcp_closed, tcp_sent, tcp_received;
    mc_im_hist_t duration_us, request_bytes, response_bytes;
} mc_im_set_t;

#define MC_IM_CHUNK 32
#define MC_IM_SET_SLOTS 2048 /* open addressing, at most half full */
#define MC_IM_STR_SLOTS 512

/* Interned byte strings (peer metadata, principals): index 0 is "none". */
typedef struct mc_im_strings {
    uint16_t slots[MC_IM_STR_SLOTS]; /* index, 0 = empty */
    uint64_t hash[256];
    char *data[256];
    uint32_t len[256];
    uint32_t n; /* entries 1..n are valid (published with release) */
    uint32_t max;
    uint64_t overflow;
} mc_im_strings_t;

typedef struct mc_im_table {
    uint16_t slots[MC_IM_SET_SLOTS]; /* set index + 1, 0 = empty */
    mc_im_set_t *chunks[MC_IM_MAX_SETS / MC_IM_CHUNK];
    uint32_t n_sets; /* published with release */
    uint64_t overflow;
    mc_im_strings_t peers, principals;
} mc_im_table_t;

void mc_im_table_init(mc_im_table_t *t);
void mc_im_table_free(mc_im_table_t *t);

/* The label set for a key, created the first time; NULL when the table is
 * full (counted) or memory ran out. */
mc_im_set_t *mc_im_find(mc_im_table_t *t, const mc_im_key_t *key);

/* Worker-local index of a peer's metadata / principal (0 for an empty
 * value, or when the table is full: counted). */
uint16_t mc_im_peer(mc_im_table_t *t, const char *value, size_t len);
uint16_t mc_im_principal(mc_im_table_t *t, const char *value, size_t len);

static inline mc_im_set_t *mc_im_set_at(const mc_im_table_t *t, uint32_t i)
{
    return &t->chunks[i / MC_IM_CHUNK][i % MC_IM_CHUNK];
}

/* One finished HTTP request. */
void mc_im_record_http(mc_im_set_t *s, uint64_t duration_us, uint64_t request_bytes, uint64_t response_bytes);

static inline void mc_im_add(uint64_t *counter, uint64_t n)
{
    __atomic_store_n(counter, *counter + n, __ATOMIC_RELAXED); /* single writer */
}

/* Adds this table's sets to rows (export); see mc_engine_im_export. */
size_t mc_im_table_export(const mc_im_table_t *t, uint32_t worker, const double *dbounds, uint32_t nd,
                          const double *bbounds, uint32_t nb, mc_im_row_t *out, size_t cap);

/* For tests: the log-linear bucket of a value and its inclusive upper end. */
uint32_t mc_im_hist_bucket(uint64_t v);
uint64_t mc_im_hist_bucket_max(uint32_t b);

#endif
