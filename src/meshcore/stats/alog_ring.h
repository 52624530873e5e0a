/* The per-worker access-log ring; see include/meshcore/access_log.h. */
#ifndef MESHCORE_ALOG_RING_H
#define MESHCORE_ALOG_RING_H

#include <stdint.h>

#include "meshcore/access_log.h"

typedef struct mc_alog_ring {
    uint64_t head; /* written by the worker */
    uint64_t tail; /* written by the consumer */
    uint64_t dropped;
    uint64_t dropped_spans; /* dropped records that were spans (sampled requests) */
    mc_alog_record_t *slots; /* [MC_ALOG_RING], allocated on first use */
} mc_alog_ring_t;

/* A slot to fill, or NULL when the ring is full (the drop is counted). */
static inline mc_alog_record_t *mc_alog_reserve(mc_alog_ring_t *r)
{
    uint64_t head = r->head;
    if (!r->slots || head - __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE) >= MC_ALOG_RING) {
        __atomic_store_n(&r->dropped, r->dropped + 1, __ATOMIC_RELAXED);
        return 0;
    }
    return &r->slots[head % MC_ALOG_RING];
}

/* Publishes the slot returned by the last reserve. */
static inline void mc_alog_commit(mc_alog_ring_t *r)
{
    __atomic_store_n(&r->head, r->head + 1, __ATOMIC_RELEASE);
}

/* Consumer side: copies up to max records into out; returns the count. */
uint32_t mc_alog_drain(mc_alog_ring_t *r, mc_alog_record_t *out, uint32_t max);

#endif
