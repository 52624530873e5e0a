/* Per-address listen socket sets; see net/listener.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/listener.h"

mc_lsock_t *mc_lsock_open(const char *name, const mc_addr_t *addr, uint32_t n, int backlog,
                          int reuse_port, char *err, size_t errlen)
{
    mc_lsock_t *ls = calloc(1, sizeof(*ls) + sizeof(int) * n);
    if (!ls) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    ls->refcnt = 1;
    snprintf(ls->name, sizeof(ls->name), "%s", name);
    ls->addr = *addr;
    ls->bound = *addr;
    ls->n_fds = n;
    ls->shared = !reuse_port;
    for (uint32_t i = 0; i < n; i++)
        ls->fds[i] = -1;
    char buf[64];
    for (uint32_t i = 0; i < n; i++) {
        /* The first bind resolves port 0; the others join that port, or
         * share the first socket when the port is the engine's alone. */
        if (i == 0 || reuse_port)
            ls->fds[i] = mc_sock_listen(&ls->bound, backlog, reuse_port);
        else
            ls->fds[i] = fcntl(ls->fds[0], F_DUPFD_CLOEXEC, 0);
        if (ls->fds[i] < 0) {
            snprintf(err, errlen, "cannot listen on %s: %s", mc_addr_format(addr, buf, sizeof(buf)),
                     strerror(errno));
            mc_lsock_close(ls);
            free(ls);
            return NULL;
        }
        if (i == 0) {
            ls->bound.len = sizeof(ls->bound.ss);
            getsockname(ls->fds[0], (struct sockaddr *)&ls->bound.ss, &ls->bound.len);
        }
    }
    return ls;
}

void mc_lsock_ref(mc_lsock_t *ls)
{
    __atomic_add_fetch(&ls->refcnt, 1, __ATOMIC_RELAXED);
}

void mc_lsock_unref(mc_lsock_t *ls)
{
    if (ls && __atomic_sub_fetch(&ls->refcnt, 1, __ATOMIC_ACQ_REL) == 0) {
        mc_lsock_close(ls);
        free(ls);
    }
}

void mc_lsock_close(mc_lsock_t *ls)
{
    for (uint32_t i = 0; i < ls->n_fds; i++) {
        if (ls->fds[i] >= 0)
            close(ls->fds[i]);
        ls->fds[i] = -1;
    }
}
