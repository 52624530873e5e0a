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
    free(p->slab_objs);
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
        uint32_t *objs = realloc(p->slab_objs, sizeof(*objs) * cap);
        if (!objs)
            return -1;
        p->slab_objs = objs;
        p->slab_cap = cap;
    }
    char *slab = malloc(p->obj_size * n);
    if (!slab)
        return -1;
    p->slab_objs[p->n_slabs] = n;
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

/* ---- trimming ---------------------------------------------------------------- */

typedef struct slab_ref {
    char *base;
    uint32_t index, free;
} slab_ref_t;

static int cmp_base(const void *a, const void *b)
{
    const slab_ref_t *x = a, *y = b;
    return x->base < y->base ? -1 : x->base > y->base;
}

/* The slab holding obj (refs sorted by base). */
static slab_ref_t *slab_of(const mc_pool_t *p, slab_ref_t *refs, uint32_t n, const char *obj)
{
    uint32_t lo = 0, hi = n;
    while (hi - lo > 1) {
        uint32_t mid = (lo + hi) / 2;
        if (refs[mid].base <= obj)
            lo = mid;
        else
            hi = mid;
    }
    slab_ref_t *r = &refs[lo];
    return obj >= r->base && obj < r->base + (size_t)p->slab_objs[r->index] * p->obj_size ? r : NULL;
}

size_t mc_pool_trim(mc_pool_t *p, uint32_t keep)
{
    uint32_t n = p->n_slabs;
    if (n == 0 || p->n_objs - p->in_use <= keep)
        return 0;
    slab_ref_t *refs = malloc(sizeof(*refs) * n);
    uint8_t *drop = calloc(n, 1);
    uint32_t *pos = malloc(sizeof(*pos) * n); /* slab index -> its place in refs */
    if (!refs || !drop || !pos) {
        free(refs);
        free(drop);
        free(pos);
        return 0;
    }
    for (uint32_t i = 0; i < n; i++)
        refs[i] = (slab_ref_t){.base = p->slabs[i], .index = i};
    qsort(refs, n, sizeof(*refs), cmp_base);
    for (uint32_t k = 0; k < n; k++)
        pos[refs[k].index] = k;
    for (void *o = p->free_list; o; o = *(void **)o) {
        slab_ref_t *r = slab_of(p, refs, n, o);
        if (r)
            r->free++;
    }
    /* Drop wholly free slabs, newest first (the oldest stay warm), down to `keep` free objects. */
    uint32_t spare = p->n_objs - p->in_use;
    for (uint32_t i = n; i-- > 0;) {
        const slab_ref_t *r = &refs[pos[i]];
        if (r->free == p->slab_objs[i] && spare - r->free >= keep) {
            drop[i] = 1;
            spare -= r->free;
        }
    }
    /* Unlink the dropped slabs' objects from the free list. */
    void **link = &p->free_list;
    while (*link) {
        slab_ref_t *r = slab_of(p, refs, n, *link);
        if (r && drop[r->index])
            *link = *(void **)*link;
        else
            link = (void **)*link;
    }
    size_t freed = 0;
    uint32_t kept = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (drop[i]) {
            freed += (size_t)p->slab_objs[i] * p->obj_size;
            p->n_objs -= p->slab_objs[i];
            free(p->slabs[i]);
            continue;
        }
        p->slab_objs[kept] = p->slab_objs[i];
        p->slabs[kept++] = p->slabs[i];
    }
    p->n_slabs = kept;
    free(refs);
    free(drop);
    free(pos);
    return freed;
}
