/*
 * Upstream HTTP/1.1 connections and the worker's per-host pools.
 *
 * A connection carries one stream's exchange at a time (`owner`); between
 * exchanges it sits in its host's idle list. What the stream reads of the
 * response (head, body framing) lives in the stream; the connection owns
 * the socket, its TLS, its read buffer and its place in the pool.
 */
#ifndef MESHCORE_PROXY_HTTP_UPSTREAM_H
#define MESHCORE_PROXY_HTTP_UPSTREAM_H

#include <stdint.h>

#include "net/stream.h"
#include "net/tls.h"
#include "proxy/h2_upstream.h"
#include "proxy/http_buf.h"
#include "worker/worker.h"

typedef struct mc_http_stream mc_http_stream_t;

enum { UP_CONNECTING = 1, UP_HANDSHAKE, UP_IDLE, UP_BUSY, UP_CLOSED };

typedef struct mc_upconn {
    mc_io_t io;
    mc_stream_t st; /* st.fd == io.fd; TLS when the cluster has a transport socket */
    mc_tls_ctx_t *tls;
    mc_worker_t *w;
    mc_list_t link; /* in the host's idle list while idle */
    mc_host_state_t *host;
    mc_cluster_state_t *cstate;
    uint32_t cluster_scope, host_scope;
    uint64_t idle_timeout_ns;
    uint32_t max_requests;
    uint32_t requests; /* requests started on this connection */
    uint8_t state;
    uint8_t readable, writable, rdhup;
    uint8_t failed; /* the connect failed before it started */
    mc_hbuf_t in;
    mc_http_stream_t *owner; /* while busy or connecting */
    mc_timer_t timer;        /* connect timeout, then idle timeout */
    mc_task_t task;
    uint64_t connect_start, last_used;
    char principal[128];   /* the upstream's SPIFFE ID (TLS) */
    uint16_t im_principal; /* principal, interned for Istio metrics once im_principal_set */
    uint8_t im_principal_set;
    /* HTTP/2: this is a stream on a shared session (proxy/h2_upstream.h),
     * with no socket of its own; h2 turns NULL if the session dies first */
    mc_h2up_t *h2;
    uint8_t is_h2;
    mc_h2up_stream_t h2s;
} mc_upconn_t;

/* Events a connection reports to its owner (proxy/http_forward.c). */
enum { UPEV_CONNECTED, UPEV_CONNECT_FAILED, UPEV_CONNECT_TIMEOUT, UPEV_IO };
void mc_http_upstream_event(mc_http_stream_t *s, mc_upconn_t *u, int event);

size_t mc_upconn_size(void);
/* Opens a connection for owner to endpoint e of cluster c (circuit breaker
 * checked by the caller). NULL if the socket could not even be created. */
mc_upconn_t *mc_upconn_open(mc_worker_t *w, const mc_cluster_t *c, uint32_t endpoint, mc_http_stream_t *owner);
/* An idle connection to the host, or NULL. */
mc_upconn_t *mc_upconn_take_idle(mc_worker_t *w, mc_host_state_t *h);
/* Returns a connection after a complete exchange: to the idle list when it
 * can be reused, else closed. Either way the first request pending on the
 * cluster (this worker) is woken to try again. */
void mc_upconn_release(mc_upconn_t *u, int reusable);
void mc_upconn_close(mc_upconn_t *u);
/* Closes one idle connection of any host of this cluster (to free a
 * circuit-breaker slot for a pending request). 1 if one was closed. */
int mc_upconn_shed_idle(mc_worker_t *w, const mc_cluster_t *c);
/* Reads what the socket has into `in` (at least `want` bytes of room):
 * > 0 bytes read, 0 end of stream, MC_IO_AGAIN, MC_IO_ERROR (or no memory). */
ssize_t mc_upconn_fill(mc_upconn_t *u, uint32_t want);
/* Writes request bytes (HTTP/1.1-shaped, for either protocol): > 0 bytes
 * taken, MC_IO_AGAIN (writable cleared), MC_IO_ERROR. */
ssize_t mc_upconn_write(mc_upconn_t *u, const char *p, uint32_t len);
/* How a try's exchange broke before its response head: MC_TRY_RESET, or
 * for HTTP/2 MC_TRY_REFUSED (never processed: GOAWAY, REFUSED_STREAM) or
 * MC_TRY_REMOTE_RESET (RST_STREAM). */
int mc_upconn_failure(const mc_upconn_t *u);
/* Whether the stream's cluster speaks HTTP/2 to this request's upstream. */
int mc_upconn_wants_h2(const mc_http_stream_t *s);

/* The committed response's body in u->in (HTTP/1.1 framing): scans what is
 * there, setting s->resp_ready (bytes at the front of u->in that belong to
 * the body, framing included unless s->resp_dechunk) and s->resp_done. -1 on
 * a malformed chunked body. */
int mc_http_scan_response(mc_http_stream_t *s, mc_upconn_t *u);
/* Reads more of the response: 1 bytes came (or the body ended at EOF),
 * 0 wait for readiness, -1 the upstream went away mid-body (counted). */
int mc_http_read_response(mc_http_stream_t *s, mc_upconn_t *u);

#endif
