/*
 * An HTTP/2 upstream session (private to proxy/h2_upstream.c and
 * proxy/h2_adapt.c): one socket, its TLS and an nghttp2 client session,
 * shared by many streams (handles) to one host, owned by one worker.
 */
#ifndef MESHCORE_PROXY_H2_SESSION_H
#define MESHCORE_PROXY_H2_SESSION_H

#include <nghttp2/nghttp2.h>

#include "proxy/h2_keepalive.h"
#include "proxy/http_stream.h"

enum { H2_CONNECTING = 1, H2_HANDSHAKE, H2_READY, H2_CLOSED };

struct mc_h2up {
    mc_io_t io;
    mc_stream_t st;
    mc_tls_ctx_t *tls;
    mc_worker_t *w;
    nghttp2_session *ng;
    mc_list_t link;    /* in the host's per-worker list of sessions */
    mc_list_t wlink;   /* in the worker's list of every session (closed on the way out) */
    mc_list_t streams; /* handles riding this session */
    mc_list_t ready;   /* handles with news for their owner */
    mc_host_state_t *host;
    mc_cluster_state_t *cstate;
    uint32_t cluster_scope, host_scope;
    uint64_t idle_timeout_ns, last_used, connect_start;
    uint32_t max_streams;  /* our cap (max_concurrent_streams), 0: none */
    uint32_t max_requests; /* max_requests_per_connection, 0: none */
    uint32_t n_active, n_total;
    uint32_t stream_window, conn_window;
    uint8_t state;
    uint8_t readable, writable, rdhup, failed, goaway;
    mc_hbuf_t wbuf;  /* frames nghttp2 produced that the socket did not take */
    mc_timer_t timer; /* connect and handshake timeouts, then the idle timeout */
    mc_h2_keepalive_t ka; /* PING keepalive (connection_keepalive) */
    mc_task_t task;   /* flush, then free once closed */
    char principal[128];
};

/* h2_adapt.c: the nghttp2 callbacks and the HTTP/1.1 <-> HTTP/2 shapes. */
void mc_h2up_set_callbacks(nghttp2_session_callbacks *cb);
/* Queues news for a handle's owner (delivered after nghttp2 returns). */
void mc_h2up_notify(mc_h2up_t *h, mc_upconn_t *u, int event);
/* Sends what nghttp2 has, soon (from the loop, never inside a callback). */
void mc_h2up_kick(mc_h2up_t *h);

#endif
