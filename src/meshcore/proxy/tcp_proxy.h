/* envoy.filters.network.tcp_proxy: an accepted downstream connection is
 * joined to an upstream endpoint and bytes flow both ways until both sides
 * have closed. */
#ifndef MESHCORE_TCP_PROXY_H
#define MESHCORE_TCP_PROXY_H

#include "worker/worker.h"

/* Takes ownership of fd (accepted on listener `listener` of ctx). */
void mc_tcp_proxy_accept(mc_worker_t *w, mc_wctx_t *ctx, uint32_t listener, uint32_t chain, int fd,
                         const mc_addr_t *peer);

/* Size of a session, for the worker's pool. */
size_t mc_tcp_proxy_session_size(void);

#endif
