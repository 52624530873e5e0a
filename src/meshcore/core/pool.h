/*
 * Fixed-size object pool: a free list over slabs. After warm-up, get/put
 * are a pointer swap: this is how the hot path avoids malloc per
 * connection. Slabs go back to the allocator only when mc_pool_trim is
 * called (off the hot path, after a flood). Single owner (one worker), no
 * locking.
 */
#ifndef MESHCORE_POOL_H
#define MESHCORE_POOL_H

#include <stddef.h>
#include <stdint.h>

typedef struct mc_pool {
    size_t obj_size;
    uint32_t per_slab;
    uint32_t max_objs; /* 0 = unbounded */
    uint32_t n_objs;   /* allocated in slabs */
    uint32_t in_use;
    void *free_list;
    void **slabs;
    uint32_t *slab_objs; /* objects in each slab (the last may be short at max_objs) */
    uint32_t n_slabs, slab_cap;
} mc_pool_t;

void mc_pool_init(mc_pool_t *p, size_t obj_size, uint32_t per_slab, uint32_t max_objs);
void mc_pool_destroy(mc_pool_t *p);
/* Returns zeroed memory, or NULL when max_objs is reached or memory is out. */
void *mc_pool_get(mc_pool_t *p);
/* The same, not zeroed: for byte buffers, whose users track lengths (a
 * 16 KiB memset per buffer was 7% of a proxy's CPU). */
void *mc_pool_get_raw(mc_pool_t *p);
void mc_pool_put(mc_pool_t *p, void *obj);
/* Frees every slab whose objects are all free, keeping at least `keep`
 * free objects; returns the bytes given back. O(free objects * log slabs):
 * for a timer after a flood, never per request. */
size_t mc_pool_trim(mc_pool_t *p, uint32_t keep);

#endif
