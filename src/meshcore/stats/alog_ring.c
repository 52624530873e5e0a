/* Access-log ring consumer; see stats/alog_ring.h. */
#include <string.h>

#include "stats/alog_ring.h"

uint32_t mc_alog_drain(mc_alog_ring_t *r, mc_alog_record_t *out, uint32_t max)
{
    uint64_t tail = r->tail;
    uint64_t head = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
    uint32_t n = 0;
    while (tail < head && n < max) {
        memcpy(&out[n++], &r->slots[tail % MC_ALOG_RING], sizeof(*out));
        tail++;
    }
    __atomic_store_n(&r->tail, tail, __ATOMIC_RELEASE);
    return n;
}
