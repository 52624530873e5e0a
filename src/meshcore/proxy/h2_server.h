/*
 * HTTP/2 downstream connections: what the session (proxy/h2_server.c), its
 * requests (proxy/h2_request.c) and its codec (proxy/h2_codec.c) share. Not
 * for use outside them.
 */
#ifndef MESHCORE_PROXY_H2_SERVER_H
#define MESHCORE_PROXY_H2_SERVER_H

#include <nghttp2/nghttp2.h>

#include "proxy/h2_keepalive.h"
#include "proxy/http_stream.h"

/* The limits docs/http2.md prints (the configurable ones are in mc_hcm_t). */
#define MC_H2_PREMATURE_RESET_MIN 100 /* streams before the premature-reset ratio is judged */
#define MC_H2_RESET_BURST 1000        /* nghttp2's RST_STREAM token bucket: burst, */
#define MC_H2_RESET_RATE 33           /* and refill per second (CVE-2023-44487) */
#define MC_H2_MAX_CONTINUATIONS 8     /* CONTINUATION frames per header block (CVE-2024-27316 family) */
#define MC_H2_MAX_SETTINGS 32         /* entries in one SETTINGS frame */
#define MC_H2_PRIORITY_PER_STREAM 100 /* Envoy's max_inbound_priority_frames_per_stream */
#define MC_H2_WINDOW_UPDATES_PER_DATA 10 /* Envoy's max_inbound_window_update_frames_per_data_frame_sent */
#define MC_H2_READ_BUDGET (256u * 1024) /* bytes read per event before other connections run */
#define MC_H2_DIRECT 4096u /* a frame this large is written from nghttp2's buffer, not gathered */

typedef struct mc_h2_session {
    nghttp2_session *ng;
    mc_http_conn_t *c;
    mc_task_t task;     /* writes what the codec submitted; frees the session after close */
    mc_h2_keepalive_t ka; /* PING keepalive (connection_keepalive) */
    mc_list_t streams;  /* mc_http_stream_t.h2.link: streams attached to nghttp2's */
    uint32_t n_streams;
    uint32_t streams_total, premature_resets;
    uint32_t empty_frames; /* consecutive DATA frames with no payload and no END_STREAM */
    uint64_t priority_frames, window_updates, data_frames_sent; /* the flood ratios' terms */
    uint8_t dead;          /* closed: the task only frees */
    uint8_t calmed;        /* a flood was found: GOAWAY(ENHANCE_YOUR_CALM) is on its way */
} mc_h2_session_t;

extern const mc_http_codec_t mc_h2_codec;

/* proxy/h2_server.c */
/* Writes soon (after the current event batch): the codec calls it after submitting frames. */
void mc_h2_want_write(mc_h2_session_t *h);
/* Takes a stream off nghttp2's and the session's books (its leftover DATA
 * bytes go back to the connection window). */
void mc_h2_detach(mc_http_stream_t *s);

/* proxy/h2_request.c: nghttp2's callbacks for request heads and bodies */
int mc_h2_on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *user);
int mc_h2_on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                    const uint8_t *value, size_t vlen, uint8_t flags, void *user);
int mc_h2_on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                        void *user);
/* Copies a and b, one after the other, into the stream's header buffer (the
 * views in s->req follow it if it moves); NULL when out of memory. */
char *mc_h2_store(mc_http_stream_t *s, const void *a, size_t alen, const void *b, size_t blen);
/* The head is whole (HEADERS, END_HEADERS): the stream starts, or gets its 431. */
void mc_h2_request_ready(mc_h2_session_t *h, mc_http_stream_t *s, int end_stream);
/* The client's END_STREAM: the body is whole. */
void mc_h2_end_stream(mc_http_stream_t *s);

/* proxy/h2_codec.c */
/* nghttp2's data provider for a response body (proxied or local). */
ssize_t mc_h2_read_body(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length, uint32_t *flags,
                        nghttp2_data_source *src, void *user);
/* The request's body, given back to the client's windows once forwarded. */
void mc_h2_settle(mc_http_stream_t *s);
/* Submits a bare status (431, 503...) on a stream that never started. */
void mc_h2_reply_bare(mc_h2_session_t *h, int32_t id, int status);

/* proxy/h2_tunnel.c: WebSocket over HTTP/2 (RFC 8441). prepare: the
 * extended CONNECT becomes an HTTP/1.1 upgrade request (-1: out of memory).
 * read: nghttp2's data provider once the upstream said 101 (upstream bytes
 * as DATA). pump: client DATA to the upstream, half-closes. */
enum { H2WS_DOWN_EOF = 1, H2WS_UP_SHUT = 2, H2WS_UP_EOF = 4 };
int mc_h2_ws_prepare(mc_http_stream_t *s);
ssize_t mc_h2_tunnel_read(mc_http_stream_t *s, uint8_t *buf, size_t length, uint32_t *flags);
void mc_h2_tunnel_pump(mc_http_stream_t *s);

#endif
