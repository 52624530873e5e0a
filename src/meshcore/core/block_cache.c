/* Size-class block cache; see core/block_cache.h. */
#include <stdlib.h>
#include <string.h>

#include "core/block_cache.h"

/* Under AddressSanitizer a cached block is poisoned until it is handed out
 * again, so a use after free of nghttp2's memory is still caught. */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* The header: the class, and (while cached) the next free block, so a
 * cached payload is never touched. 16 bytes keep the payload aligned as
 * malloc's is. */
typedef struct header {
    unsigned k;
    void *next;
} header_t;
#define HEADER 16u
_Static_assert(sizeof(header_t) <= HEADER, "block header");
#define LARGE 0xffu
#define MAX_SIZE ((size_t)1 << (MC_BC_MIN_SHIFT + MC_BC_CLASSES - 1))

/* The smallest class holding `size`, or LARGE. */
static unsigned class_of(size_t size)
{
    if (size > MAX_SIZE)
        return LARGE;
    if (size <= (1u << MC_BC_MIN_SHIFT))
        return 0;
    unsigned bits = 64u - (unsigned)__builtin_clzll((unsigned long long)(size - 1));
    return bits - MC_BC_MIN_SHIFT;
}

static size_t class_size(unsigned k)
{
    return (size_t)1 << (k + MC_BC_MIN_SHIFT);
}

static header_t *header_of(void *ptr)
{
    return (header_t *)(void *)((char *)ptr - HEADER);
}

/* What a cached block of class k holds of the per-class budget. */
static size_t cost(unsigned k)
{
    return class_size(k) + HEADER;
}

/* The first cached block of class k, off its list (and usable again). */
static void *pop(mc_block_cache_t *bc, unsigned k)
{
    void *p = bc->free[k];
    bc->free[k] = header_of(p)->next;
    bc->len[k]--;
    UNPOISON(p, class_size(k));
    return p;
}

void mc_bc_init(mc_block_cache_t *bc)
{
    memset(bc, 0, sizeof(*bc));
}

static size_t drop(mc_block_cache_t *bc, unsigned k, uint32_t n)
{
    for (uint32_t i = 0; i < n && bc->free[k]; i++)
        free(header_of(pop(bc, k)));
    if (bc->low[k] > bc->len[k])
        bc->low[k] = bc->len[k];
    return (size_t)n * cost(k);
}

void mc_bc_destroy(mc_block_cache_t *bc)
{
    mc_bc_trim(bc, 1);
}

void *mc_bc_alloc(mc_block_cache_t *bc, size_t size)
{
    unsigned k = class_of(size);
    if (k != LARGE && bc->free[k]) {
        void *p = pop(bc, k);
        if (bc->len[k] < bc->low[k])
            bc->low[k] = bc->len[k];
        return p;
    }
    if (size > SIZE_MAX - HEADER)
        return NULL;
    header_t *h = malloc(HEADER + (k == LARGE ? size : class_size(k)));
    if (!h)
        return NULL;
    h->k = k;
    return (char *)h + HEADER;
}

void *mc_bc_calloc(mc_block_cache_t *bc, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    void *p = mc_bc_alloc(bc, n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

void mc_bc_free(mc_block_cache_t *bc, void *ptr)
{
    if (!ptr)
        return;
    unsigned k = header_of(ptr)->k;
    if (k == LARGE || (size_t)bc->len[k] * cost(k) >= MC_BC_CLASS_BYTES) {
        free(header_of(ptr));
        return;
    }
    header_of(ptr)->next = bc->free[k];
    bc->free[k] = ptr;
    bc->len[k]++;
    POISON(ptr, class_size(k));
}

void *mc_bc_realloc(mc_block_cache_t *bc, void *ptr, size_t size)
{
    if (!ptr)
        return mc_bc_alloc(bc, size);
    unsigned k = header_of(ptr)->k;
    if (k == LARGE && class_of(size) == LARGE) {
        if (size > SIZE_MAX - HEADER)
            return NULL;
        header_t *h = realloc(header_of(ptr), HEADER + size);
        return h ? (char *)h + HEADER : NULL;
    }
    if (k != LARGE && size <= class_size(k))
        return ptr; /* still fits its block */
    void *p = mc_bc_alloc(bc, size);
    if (!p)
        return NULL;
    /* a LARGE block is bigger than any class: copy what the new one holds */
    size_t keep = k == LARGE ? size : class_size(k);
    memcpy(p, ptr, keep < size ? keep : size);
    mc_bc_free(bc, ptr);
    return p;
}

size_t mc_bc_trim(mc_block_cache_t *bc, int all)
{
    size_t freed = 0;
    for (unsigned k = 0; k < MC_BC_CLASSES; k++) {
        uint32_t n = all ? bc->len[k] : bc->low[k];
        if (n)
            freed += drop(bc, k, n);
        bc->low[k] = bc->len[k];
    }
    return freed;
}
