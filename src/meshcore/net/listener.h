/*
 * Listen sockets of one listener address, one descriptor per worker. By
 * default one socket without SO_REUSEPORT, its descriptor dup'ed for each
 * worker: nobody else (another engine, another process) can bind the port,
 * and the workers race for its accepts. With reuse_port (Envoy's
 * enable_reuse_port), one SO_REUSEPORT socket per worker so the kernel
 * spreads accepts with no shared queue -- and any SO_REUSEPORT socket of the
 * same user can join the port and take a share of its connections.
 *
 * A socket set outlives config snapshots: a reload that keeps an address
 * keeps its sockets, so nothing in the accept queue is lost. Refcounted (the
 * engine's registry and every snapshot that names it hold a reference); the
 * descriptors are closed by the engine when no current snapshot uses the
 * address any more, after every worker has stopped polling them.
 */
#ifndef MESHCORE_LISTENER_H
#define MESHCORE_LISTENER_H

#include <stdint.h>

#include "net/sock.h"

typedef struct mc_lsock {
    int refcnt;
    char name[128]; /* listener name: the identity of port-0 listeners */
    mc_addr_t addr;  /* as configured (port may be 0) */
    mc_addr_t bound; /* as bound (the real port) */
    int64_t active_cx; /* across workers, for connection_limit; atomic */
    uint8_t shared;    /* fds are one socket: workers race for its accepts */
    uint32_t n_fds;
    int fds[];
} mc_lsock_t;

/* Opens n descriptors on addr (see above for reuse_port); NULL with a
 * message in err on failure. */
mc_lsock_t *mc_lsock_open(const char *name, const mc_addr_t *addr, uint32_t n, int backlog,
                          int reuse_port, char *err, size_t errlen);
void mc_lsock_ref(mc_lsock_t *ls);
void mc_lsock_unref(mc_lsock_t *ls);
/* Closes the descriptors now (memory stays until the last unref). */
void mc_lsock_close(mc_lsock_t *ls);

#endif
