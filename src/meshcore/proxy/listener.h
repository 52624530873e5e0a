/*
 * The listener layer, shared by every proxy: what happens to an accepted
 * connection before its terminal filter (tcp_proxy or
 * http_connection_manager) sees a byte, and the bookkeeping every
 * downstream connection does the same way.
 *
 *   accept (worker) -> tls_inspector (chains that differ by transport)
 *     -> filter chain chosen -> connection-limit admission
 *     -> the chain's proxy (TCP or HTTP) -> [downstream TLS handshake]
 *     -> network RBAC, once the peer is known -> bytes or requests
 *
 * It is also the proxies' side of the worker (mc_proxy_hooks): the worker
 * calls up into this layer only through those hooks.
 */
#ifndef MESHCORE_PROXY_LISTENER_H
#define MESHCORE_PROXY_LISTENER_H

#include <openssl/ssl.h>
#include <stdint.h>

#include "core/block_cache.h"
#include "proxy/h2_mem.h"
#include "worker/worker.h"

/* The proxies' per-worker state (w->proxy). */
typedef struct mc_proxy_worker {
    mc_pool_t tcp_sessions; /* TCP proxy sessions */
    mc_pool_t http_conns;   /* HTTP downstream connections */
    mc_pool_t http_streams; /* HTTP exchanges (requests and mirrors) */
    mc_pool_t upconns;      /* HTTP upstream connections */
    mc_block_cache_t blocks; /* nghttp2's small allocations */
    nghttp2_mem h2mem;       /* what the worker's HTTP/2 sessions allocate with */
    mc_list_t h2_sessions;   /* every upstream HTTP/2 session of the worker */
    mc_worker_t *w;
    mc_timer_t trim;        /* gives pooled memory back after a flood */
} mc_proxy_worker_t;

static inline mc_proxy_worker_t *mc_proxy_of(mc_worker_t *w)
{
    return (mc_proxy_worker_t *)w->proxy;
}

/* What the worker calls: accept, per-worker set-up, pooled connections. */
extern const mc_worker_hooks_t mc_proxy_hooks;

/* A connection counted against its listener's connection limit (and the
 * listener's gauges), released once when it closes. */
typedef struct mc_admission {
    uint8_t global;  /* counted in the global downstream connection count */
    uint8_t limited; /* counted against the listener's connection_limit */
    uint64_t start_ns;
} mc_admission_t;

/* Starts the chain's proxy on an accepted connection (after the TLS
 * inspector, if any). Consumes fd. */
void mc_listener_start_chain(mc_worker_t *w, mc_wctx_t *c, uint32_t listener, uint32_t chain, int fd,
                             const mc_addr_t *peer);
/* proxy/tls_inspector.c: waits for a connection's first bytes to pick its chain. */
void mc_tls_inspector_start(mc_worker_t *w, mc_wctx_t *c, uint32_t listener, int fd, const mc_addr_t *peer);

/* A proxy could not take the admitted connection (its pool is exhausted):
 * counts the overflow, undoes the admission and closes fd. */
void mc_listener_overflow(mc_worker_t *w, const mc_listener_t *l, mc_admission_t *a, int fd);
/* The connection opened (listener gauges) / closed (gauges, length, limit). */
void mc_listener_cx_open(mc_worker_t *w, const mc_listener_t *l);
void mc_listener_cx_close(mc_worker_t *w, const mc_listener_t *l, mc_admission_t *a);

/* envoy.filters.network.rbac, decided once, when the peer is known: 1
 * allowed, 0 denied (*denied_by: the deciding policy, "" for none).
 * rbac.allowed / rbac.denied are counted in the chain's terminal filter's
 * scope. */
int mc_listener_net_rbac(mc_worker_t *w, const mc_listener_t *l, const mc_chain_t *ch, const mc_addr_t *peer,
                         const char *principal, const char **denied_by);

/* A failed TLS handshake, counted by kind on a listener (downstream) or a
 * cluster (upstream) scope, including ssl.connection_error; returns the
 * reason for logs. Clears OpenSSL's error queue. */
enum { MC_TLS_DOWNSTREAM, MC_TLS_UPSTREAM };
const char *mc_tls_count_failure(mc_stats_shard_t *st, uint32_t scope, SSL *ssl, int side);

#endif
