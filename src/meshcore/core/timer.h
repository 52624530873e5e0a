/*
 * Timers: one binary min-heap per worker, keyed by absolute deadline (ns).
 * Each timer remembers its heap slot, so cancel and re-arm are O(log n)
 * without a search. Timers are embedded in their owners (connections), so
 * arming never allocates except when the heap array itself must grow, which
 * settles at the high-water mark.
 *
 * Idle timeouts do not re-arm on every byte: owners keep a last-activity
 * time and, when the timer fires early, re-arm for the remainder.
 */
#ifndef MESHCORE_TIMER_H
#define MESHCORE_TIMER_H

#include <stdint.h>

#define MC_TIMER_UNARMED UINT32_MAX

typedef struct mc_timer mc_timer_t;
typedef void (*mc_timer_cb)(mc_timer_t *t);

struct mc_timer {
    uint64_t deadline;
    uint32_t slot; /* index in the heap, MC_TIMER_UNARMED when not armed */
    mc_timer_cb cb;
};

typedef struct mc_timer_heap {
    mc_timer_t **items;
    uint32_t len, cap;
} mc_timer_heap_t;

int mc_timer_heap_init(mc_timer_heap_t *h, uint32_t cap);
void mc_timer_heap_free(mc_timer_heap_t *h);

static inline void mc_timer_init(mc_timer_t *t, mc_timer_cb cb)
{
    t->deadline = 0;
    t->slot = MC_TIMER_UNARMED;
    t->cb = cb;
}

static inline int mc_timer_armed(const mc_timer_t *t)
{
    return t->slot != MC_TIMER_UNARMED;
}

/* Arms or moves t to fire at deadline. Returns 0, or -1 if the heap could
 * not grow (the timer is then not armed). */
int mc_timer_arm(mc_timer_heap_t *h, mc_timer_t *t, uint64_t deadline);
void mc_timer_cancel(mc_timer_heap_t *h, mc_timer_t *t);

/* Earliest deadline, or UINT64_MAX when no timer is armed. */
static inline uint64_t mc_timer_next(const mc_timer_heap_t *h)
{
    return h->len ? h->items[0]->deadline : UINT64_MAX;
}

/* Fires (in deadline order) every timer whose deadline <= now; a callback
 * may arm or cancel any timer, but re-arming one for a deadline <= now makes
 * it fire again in this same run. Returns how many fired. */
uint32_t mc_timer_run(mc_timer_heap_t *h, uint64_t now);

/* The nearest of several deadlines and which one it is (kind 0: none). */
typedef struct mc_deadline {
    uint64_t at;
    int kind;
} mc_deadline_t;
#define MC_DEADLINE_NONE ((mc_deadline_t){UINT64_MAX, 0})
static inline void mc_deadline_consider(mc_deadline_t *d, uint64_t at, int kind)
{
    if (at < d->at) {
        d->at = at;
        d->kind = kind;
    }
}

#endif
