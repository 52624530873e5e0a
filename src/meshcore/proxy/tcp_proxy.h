/* envoy.filters.network.tcp_proxy: an accepted downstream connection is
 * joined to an upstream endpoint and bytes flow both ways until both sides
 * have closed. */
#ifndef MESHCORE_TCP_PROXY_H
#define MESHCORE_TCP_PROXY_H

#include "proxy/listener.h"

/* Takes ownership of fd, admitted by the listener layer (adm). */
void mc_tcp_proxy_accept(mc_worker_t *w, mc_wctx_t *ctx, const mc_listener_t *l, const mc_chain_t *ch, int fd,
                         const mc_addr_t *peer, const mc_admission_t *adm);

/* Size of a session, for the worker's pool. */
size_t mc_tcp_proxy_session_size(void);

#endif
