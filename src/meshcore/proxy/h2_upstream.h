/*
 * HTTP/2 to upstream clusters (libnghttp2 client sessions).
 *
 * Two objects, as on the HTTP/1.1 side: a session (mc_h2up_t, private to
 * proxy/h2_upstream.c) owns the socket, its TLS and the nghttp2 session and
 * lives in its host's per-worker list; an exchange rides it as an
 * mc_upconn_t "handle" (u->h2 set, no socket of its own), so the stream code
 * (proxy/http_forward.c, the codecs) keeps one shape for both protocols.
 *
 * The adapter (proxy/h2_adapt.c) is the seam: the stream writes its request
 * HTTP/1.1-shaped (head + body) through mc_upconn_write, and the head becomes
 * HEADERS (RFC 9113 §8.3.1 pseudo-headers, §8.2.2 hop-by-hop fields
 * dropped), the body DATA with END_STREAM. The response comes back into
 * u->in HTTP/1.1-shaped: a status line and fields, a chunked body, and the
 * HTTP/2 trailers as the chunked trailer section (a response that ends on
 * its HEADERS, e.g. a gRPC trailers-only response, is a head with
 * content-length: 0). Response DATA waits in `raw` and is framed into `in`
 * only as the stream asks for more (mc_upconn_fill); only then is the
 * stream's receive window reopened, so a slow reader holds at most one
 * window of bytes per stream.
 */
#ifndef MESHCORE_PROXY_H2_UPSTREAM_H
#define MESHCORE_PROXY_H2_UPSTREAM_H

#include <stdint.h>
#include <sys/types.h>

#include "core/list.h"
#include "http/h1_chunked.h"
#include "proxy/http_buf.h"
#include "worker/worker.h"

typedef struct mc_h2up mc_h2up_t;
typedef struct mc_upconn mc_upconn_t;
typedef struct mc_http_stream mc_http_stream_t;
struct mc_cluster;

/* A handle's HTTP/2 stream state (in mc_upconn_t). */
typedef struct mc_h2up_stream {
    int32_t sid;          /* 0: HEADERS not submitted yet */
    mc_list_t link;       /* in the session's list of handles */
    mc_list_t ready_link; /* in the session's list of handles to notify */
    mc_hbuf_t out;        /* request bytes (HTTP/1.1) not yet framed */
    mc_hbuf_t raw;        /* response DATA not yet framed into u->in */
    mc_hbuf_t trailers;   /* the response trailers as a chunked trailer section */
    mc_h1_chunked_t req_chunked;
    uint64_t req_remaining; /* LENGTH body: bytes still to frame */
    int req_body;           /* MC_H1_BODY_* of the request */
    uint8_t req_end;        /* END_STREAM framed */
    uint8_t deferred;       /* the data source waits for request bytes */
    uint8_t head_request;
    uint8_t in_trailers;    /* receiving the trailing HEADERS */
    uint8_t head_done;      /* the final response head is in `in` */
    uint8_t body_end;       /* END_STREAM received */
    uint8_t tail_framed;    /* the last chunk and trailers are in `in` */
    uint8_t closed;         /* nghttp2 closed the stream */
    uint8_t dead;           /* the session went away under the stream */
    uint8_t refused;        /* REFUSED_STREAM or beyond GOAWAY: never processed */
    uint8_t notify;         /* in ready_link */
    uint8_t ev;             /* the UPEV_* to deliver then */
    uint16_t status;        /* of the response head being received */
    uint8_t kept_cl;        /* a HEAD response's content-length was kept */
    uint32_t reset_code;    /* RST_STREAM error code (0: none) */
    int16_t grpc_status;    /* from the trailers; -1: none */
} mc_h2up_stream_t;

/* Takes a stream slot on a session to endpoint `ep` of cluster c for owner:
 * an open session with room, or a new one. NULL with *pending = 1 when the
 * cluster is at max_connections and every session of this worker is full
 * (wait as for an HTTP/1.1 connection); NULL with *pending = 0 if out of
 * memory. The handle's state is UP_BUSY when the session is ready, else
 * UP_CONNECTING (then UPEV_CONNECTED / UPEV_CONNECT_* follow). */
mc_upconn_t *mc_h2up_acquire(mc_worker_t *w, const struct mc_cluster *c, uint32_t ep, mc_http_stream_t *owner,
                             int *pending);
/* Ends the handle's exchange (RST_STREAM if it is still open) and frees it. */
void mc_h2up_release(mc_upconn_t *u);
/* mc_upconn_write / mc_upconn_fill for a handle (same return conventions). */
ssize_t mc_h2up_write(mc_upconn_t *u, const char *p, uint32_t len);
ssize_t mc_h2up_fill(mc_upconn_t *u, uint32_t want);
/* Closes the worker's sessions to a host that carry no stream. */
void mc_h2up_close_idle(mc_list_t *sessions);
/* Closes every session in a worker's list (mc_proxy_worker_t.h2_sessions). */
void mc_h2up_close_all(mc_list_t *all);

#endif
