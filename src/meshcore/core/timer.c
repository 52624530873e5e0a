/* Binary min-heap of timers; see core/timer.h. */
#include <stdlib.h>

#include "core/timer.h"

int mc_timer_heap_init(mc_timer_heap_t *h, uint32_t cap)
{
    h->len = 0;
    h->cap = cap ? cap : 64;
    h->items = malloc(sizeof(*h->items) * h->cap);
    return h->items ? 0 : -1;
}

void mc_timer_heap_free(mc_timer_heap_t *h)
{
    free(h->items);
    h->items = NULL;
    h->len = h->cap = 0;
}

static void place(mc_timer_heap_t *h, uint32_t i, mc_timer_t *t)
{
    h->items[i] = t;
    t->slot = i;
}

static void sift_up(mc_timer_heap_t *h, uint32_t i)
{
    mc_timer_t *t = h->items[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (h->items[parent]->deadline <= t->deadline)
            break;
        place(h, i, h->items[parent]);
        i = parent;
    }
    place(h, i, t);
}

static void sift_down(mc_timer_heap_t *h, uint32_t i)
{
    mc_timer_t *t = h->items[i];
    for (;;) {
        uint32_t child = 2 * i + 1;
        if (child >= h->len)
            break;
        if (child + 1 < h->len && h->items[child + 1]->deadline < h->items[child]->deadline)
            child++;
        if (t->deadline <= h->items[child]->deadline)
            break;
        place(h, i, h->items[child]);
        i = child;
    }
    place(h, i, t);
}

int mc_timer_arm(mc_timer_heap_t *h, mc_timer_t *t, uint64_t deadline)
{
    if (mc_timer_armed(t)) {
        uint64_t old = t->deadline;
        t->deadline = deadline;
        if (deadline < old)
            sift_up(h, t->slot);
        else
            sift_down(h, t->slot);
        return 0;
    }
    if (h->len == h->cap) {
        uint32_t cap = h->cap ? h->cap * 2 : 64;
        mc_timer_t **items = realloc(h->items, sizeof(*items) * cap);
        if (!items)
            return -1;
        h->items = items;
        h->cap = cap;
    }
    t->deadline = deadline;
    place(h, h->len++, t);
    sift_up(h, t->slot);
    return 0;
}

void mc_timer_cancel(mc_timer_heap_t *h, mc_timer_t *t)
{
    if (!mc_timer_armed(t))
        return;
    uint32_t i = t->slot;
    t->slot = MC_TIMER_UNARMED;
    h->len--;
    if (i == h->len)
        return;
    mc_timer_t *last = h->items[h->len];
    place(h, i, last);
    if (i > 0 && h->items[(i - 1) / 2]->deadline > last->deadline)
        sift_up(h, i);
    else
        sift_down(h, i);
}

uint32_t mc_timer_run(mc_timer_heap_t *h, uint64_t now)
{
    uint32_t fired = 0;
    while (h->len && h->items[0]->deadline <= now) {
        mc_timer_t *t = h->items[0];
        mc_timer_cancel(h, t);
        fired++;
        t->cb(t);
    }
    return fired;
}
