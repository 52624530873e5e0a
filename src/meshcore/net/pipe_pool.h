/*
 * Per-worker pool of pipes for splice(2). Creating a pipe is two syscalls
 * and a kernel allocation; reusing drained pipes keeps that off the
 * per-connection path. A pipe that still holds bytes is closed, not reused.
 */
#ifndef MESHCORE_PIPE_POOL_H
#define MESHCORE_PIPE_POOL_H

#include <stdint.h>

#define MC_PIPE_POOL_KEEP 64

typedef struct mc_pipe {
    int r, w;
} mc_pipe_t;

typedef struct mc_pipe_pool {
    uint32_t n;
    mc_pipe_t free[MC_PIPE_POOL_KEEP];
} mc_pipe_pool_t;

void mc_pipe_pool_init(mc_pipe_pool_t *p);
void mc_pipe_pool_destroy(mc_pipe_pool_t *p);
/* 0 on success, <0 (errno) if no pipe could be made. */
int mc_pipe_get(mc_pipe_pool_t *p, mc_pipe_t *out);
/* Returns a pipe; `empty` says whether it holds no data. */
void mc_pipe_put(mc_pipe_pool_t *p, mc_pipe_t *pipe, int empty);

#endif
