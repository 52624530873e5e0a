/*
 * A downstream HTTP connection (envoy.filters.network.http_connection_manager
 * on one accepted socket): the socket and its TLS, the codec that frames
 * requests and responses on it, its buffers, keep-alive and the connection's
 * own timeouts. The exchanges it carries are streams (proxy/http_stream.h);
 * the router and forwarder work on streams and reach the client only through
 * the connection's codec (mc_http_codec_t), so a second codec (HTTP/2) can
 * carry many streams on one connection.
 *
 * HTTP/1.1 (proxy/h1_server.c) carries one stream at a time: pipelined
 * requests wait in `in` unparsed until the current response is complete,
 * so they are answered in order.
 */
#ifndef MESHCORE_PROXY_HTTP_CONN_H
#define MESHCORE_PROXY_HTTP_CONN_H

#include <stdint.h>

#include "net/stream.h"
#include "proxy/http_buf.h"
#include "proxy/listener.h"
#include "worker/worker.h"

typedef struct mc_http_stream mc_http_stream_t;
typedef struct mc_http_conn mc_http_conn_t;

/* Who is on the other end: fixed for the connection's life, read by every
 * stream on it (a mirror, which has no connection, carries a copy). */
typedef struct mc_http_peer {
    mc_addr_t addr;
    char text[64];          /* "ip:port" ("[ip]:port"), formatted once per connection */
    uint8_t ip_off, ip_len; /* the IP alone, within text (x-forwarded-for) */
    char principal[128];    /* the client's SPIFFE ID (mTLS), "" when none */
    uint16_t im_principal;  /* principal, interned for Istio metrics once im_principal_set */
    uint8_t im_principal_set;
} mc_http_peer_t;

/* Fills the peer's text and the IP's place in it from addr. */
void mc_http_peer_init(mc_http_peer_t *p, const mc_addr_t *addr);

/* What a stream asks of the side that talks to its client. Every call may
 * end the stream (and, for HTTP/1.1, close the connection): callers check
 * the stream's state afterwards. */
typedef struct mc_http_codec {
    const char *name;
    /* A locally generated response (status, body, optional Location). */
    void (*reply)(mc_http_stream_t *s, int status, const char *body, size_t body_len, uint32_t flags,
                  const char *location);
    /* 100 Continue before the request body (Expect: 100-continue). -1 if the client is gone. */
    int (*send_continue)(mc_http_stream_t *s);
    /* The committed upstream response head (s->resp, head_len bytes at the
     * front of the upstream buffer): encode it and start the body. */
    void (*response_head)(mc_http_stream_t *s, uint32_t head_len, uint64_t service_ms);
    /* More response bytes may move (upstream readable, client writable). */
    void (*send_response)(mc_http_stream_t *s);
    /* Request body bytes: frames what is in *s->rx (sets s->req_ready and
     * s->req_done; -1 on a malformed body), and reads more of it. */
    int (*scan_body)(mc_http_stream_t *s);
    void (*read_body)(mc_http_stream_t *s);
    /* The stream cannot complete: reset it (HTTP/1.1 closes the connection). */
    void (*reset)(mc_http_stream_t *s);
    /* The exchange completed and is accounted: release the stream. */
    void (*done)(mc_http_stream_t *s);
} mc_http_codec_t;

enum { DS_HANDSHAKE = 1, DS_READ_HEAD, DS_ACTIVE, DS_CLOSING, DS_CLOSED };

struct mc_http_conn {
    mc_session_t base;
    mc_task_t task;
    mc_timer_t timer; /* handshake, idle and request-head timeouts (no stream in flight) */
    mc_worker_t *w;
    mc_wctx_t *ctx;
    const mc_listener_t *l;
    const mc_chain_t *ch;
    const mc_hcm_t *hcm;
    const mc_http_codec_t *codec;
    mc_io_t io;
    mc_stream_t st; /* st.fd == io.fd */
    mc_admission_t adm;
    mc_http_peer_t peer;
    uint8_t readable, writable, rdhup;
    uint8_t state;
    uint8_t draining; /* the worker stops: every response closes the connection */
    mc_hbuf_t in;     /* downstream bytes: head, body, pipelined requests */
    mc_hbuf_t out;    /* bytes to downstream we generated (heads, local replies) */
    uint32_t requests;
    uint64_t last_activity;
    uint64_t head_start_ns;   /* first byte of the request being read (0: none yet) */
    mc_http_stream_t *stream; /* the exchange in flight, or the head being read */
    struct mc_h2_session *h2; /* HTTP/2 (proxy/h2_server.c): the session; NULL for HTTP/1.1 */
};

/* proxy/h1_server.c: the HTTP/1.1 codec on an accepted connection. */
void mc_h1_server_accept(mc_worker_t *w, mc_wctx_t *ctx, const mc_listener_t *l, const mc_chain_t *ch, int fd,
                         const mc_addr_t *peer, const mc_admission_t *adm);
size_t mc_http_conn_size(void);
/* Moves the connection to the worker's current config when its listener and
 * chain are still there (HTTP/1.1 between requests, HTTP/2 at each stream). */
void mc_http_conn_refresh(mc_http_conn_t *c);

/* proxy/h2_server.c: HTTP/2 on a downstream connection. mc_h2_wanted says
 * whether a connection whose peer is known starts as HTTP/2 (codec_type
 * HTTP2, or ALPN "h2"); mc_h2_preface whether the bytes read so far are
 * (1) or may become (-2) the client preface, else 0; mc_h2_start hands the
 * connection, with what it has read, to the HTTP/2 codec. */
int mc_h2_wanted(const mc_http_conn_t *c);
int mc_h2_preface(const char *p, size_t len);
void mc_h2_start(mc_http_conn_t *c);

#endif
