/* Pipe reuse for splice; see net/pipe_pool.h. */
#include <fcntl.h>
#include <unistd.h>

#include "net/pipe_pool.h"

void mc_pipe_pool_init(mc_pipe_pool_t *p)
{
    p->n = 0;
}

void mc_pipe_pool_destroy(mc_pipe_pool_t *p)
{
    while (p->n) {
        p->n--;
        close(p->free[p->n].r);
        close(p->free[p->n].w);
    }
}

int mc_pipe_get(mc_pipe_pool_t *p, mc_pipe_t *out)
{
    if (p->n) {
        *out = p->free[--p->n];
        return 0;
    }
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0)
        return -1;
    out->r = fds[0];
    out->w = fds[1];
    return 0;
}

void mc_pipe_put(mc_pipe_pool_t *p, mc_pipe_t *pipe, int empty)
{
    if (pipe->r < 0)
        return;
    if (empty && p->n < MC_PIPE_POOL_KEEP) {
        p->free[p->n++] = *pipe;
    } else {
        close(pipe->r);
        close(pipe->w);
    }
    pipe->r = pipe->w = -1;
}
