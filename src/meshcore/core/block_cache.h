/*
 * A cache of small heap blocks by size class, for one thread: malloc/free
 * for a library that allocates per frame or per header (nghttp2), with the
 * steady state served from free lists. glibc's per-thread cache holds 7
 * blocks per size; a worker ending hundreds of HTTP/2 streams in one loop
 * turn frees far more than that, and the rest went through _int_free and
 * came back through _int_malloc.
 *
 * Classes are powers of two from 16 B to 4 KiB; larger blocks go straight
 * to malloc. Every block carries a 16-byte header naming its class, so
 * free needs no size. Each class keeps at most MC_BC_CLASS_BYTES of free
 * blocks (headers counted); what a whole trim period left unused goes back
 * (mc_bc_trim).
 * Single owner, no locking.
 */
#ifndef MESHCORE_BLOCK_CACHE_H
#define MESHCORE_BLOCK_CACHE_H

#include <stddef.h>
#include <stdint.h>

#define MC_BC_MIN_SHIFT 4 /* 16 B */
#define MC_BC_CLASSES 9   /* 16 B .. 4 KiB */
#define MC_BC_CLASS_BYTES (1u << 20) /* free bytes kept per class */

typedef struct mc_block_cache {
    void *free[MC_BC_CLASSES];
    uint32_t len[MC_BC_CLASSES]; /* free blocks held */
    uint32_t low[MC_BC_CLASSES]; /* fewest held since the last trim */
} mc_block_cache_t;

void mc_bc_init(mc_block_cache_t *bc);
/* Frees every cached block. Blocks still in use must not come back to the
 * cache after this (their owners are gone first). */
void mc_bc_destroy(mc_block_cache_t *bc);
void *mc_bc_alloc(mc_block_cache_t *bc, size_t size);
void *mc_bc_calloc(mc_block_cache_t *bc, size_t n, size_t size);
void *mc_bc_realloc(mc_block_cache_t *bc, void *ptr, size_t size);
void mc_bc_free(mc_block_cache_t *bc, void *ptr);
/* Gives back the blocks no allocation needed since the last call (all of
 * them when `all`); returns the bytes freed. For a timer, not per request. */
size_t mc_bc_trim(mc_block_cache_t *bc, int all);

#endif
