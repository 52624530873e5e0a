/*
 * The allocator every nghttp2 session of a worker is given (nghttp2_mem):
 * the worker's block cache, so HPACK header buffers, streams and outbound
 * frames come from free lists, not malloc, once a load is steady.
 */
#ifndef MESHCORE_PROXY_H2_MEM_H
#define MESHCORE_PROXY_H2_MEM_H

#include <nghttp2/nghttp2.h>

#include "core/block_cache.h"

/* mem's callbacks allocate from bc (which must outlive every session). */
void mc_h2_mem_init(nghttp2_mem *mem, mc_block_cache_t *bc);

#endif
