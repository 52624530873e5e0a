/* Slab-backed object pool; see core/pool.h. */
#include <stdlib.h>
#include <string.h>

#include "core/pool.h"

void mc_pool_init(mc_pool_t *p, size_t obj_size, uint32_t per_slab, uint32_t max_objs)
{
    memset(p, 0, sizeof(*p));
    /* Round up so every object is aligned for anything it may hold. */
    size_t size = obj_size < sizeof(void *) ? sizeof(void *) : obj_size;
    p->obj_size = (size + 15) & ~(size_t)15;
    p->per_slab = per_slab ? per_slab : 64;
    p->max_objs = max_objs;
}

void mc_pool_destroy(mc_pool_t *p)
{
    for (uint32_t i = 0; i < p->n_slabs; i++)
        free(p->slabs[i]);
    free(p->slabs);
    memset(p, 0, sizeof(*p));
}

static int grow(mc_pool_t *p)
{
    uint32_t n = p->per_slab;
    if (p->max_objs && p->n_objs + n > p->max_objs)
        n = p->max_objs - p->n_objs;
    if (n == 0)
        return -1;
    if (p->n_slabs == p->slab_cap) {
        uint32_t cap = p->slab_cap ? p->slab_cap * 2 : 8;
        void **slabs = realloc(p->slabs, sizeof(*slabs) * cap);
        if (!slabs)
            return -1;
        p->slabs = slabs;
        p->slab_cap = cap;
    }
    char *slab = malloc(p->obj_size * n);
    if (!slab)
        return -1;
    p->slabs[p->n_slabs++] = slab;
    for (uint32_t i = n; i-- > 0;) {
        void *obj = slab + (size_t)i * p->obj_size;
        *(void **)obj = p->free_list;
        p->free_list = obj;
    }
    p->n_objs += n;
    return 0;
}

void *mc_pool_get_raw(mc_pool_t *p)
{
    if (!p->free_list && grow(p) < 0)
        return NULL;
    void *obj = p->free_list;
    p->free_list = *(void **)obj;
    p->in_use++;
    return obj;
}

void *mc_pool_get(mc_pool_t *p)
{
    void *obj = mc_pool_get_raw(p);
    if (obj)
        memset(obj, 0, p->obj_size);
    return obj;
}

void mc_pool_put(mc_pool_t *p, void *obj)
{
    *(void **)obj = p->free_list;
    p->free_list = obj;
    p->in_use--;
}
