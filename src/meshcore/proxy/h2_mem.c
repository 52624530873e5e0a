/* nghttp2_mem over a worker's block cache; see proxy/h2_mem.h. */
#include "proxy/h2_mem.h"

static void *mem_malloc(size_t size, void *bc)
{
    return mc_bc_alloc(bc, size);
}

static void mem_free(void *ptr, void *bc)
{
    mc_bc_free(bc, ptr);
}

static void *mem_calloc(size_t n, size_t size, void *bc)
{
    return mc_bc_calloc(bc, n, size);
}

static void *mem_realloc(void *ptr, size_t size, void *bc)
{
    return mc_bc_realloc(bc, ptr, size);
}

void mc_h2_mem_init(nghttp2_mem *mem, mc_block_cache_t *bc)
{
    mem->mem_user_data = bc;
    mem->malloc = mem_malloc;
    mem->free = mem_free;
    mem->calloc = mem_calloc;
    mem->realloc = mem_realloc;
}
