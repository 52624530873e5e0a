/*
 * An HTTP stream: one request/response exchange (the part of Envoy's
 * http_connection_manager and router filter that is per request).
 *
 * A stream is started by its connection's codec once a request head is
 * parsed (proxy/h1_server.c). It is routed (RBAC, route match, redirects,
 * direct responses: proxy/http_stream.c), then forwarded in tries
 * (proxy/http_forward.c): each try takes an upstream connection from the
 * worker's pool for the chosen host (or opens one), sends the request and
 * reads the response head; a failed try may be retried on another host
 * after a jittered back-off. Once a response head has been passed to the
 * codec, the stream is committed to that try.
 *
 * A mirror (request_mirror_policies) is a stream with no connection: its
 * codec discards the response (proxy/http_mirror.c).
 *
 * A request whose head and body fit in MC_HTTP_REPLAY_MAX is read whole
 * before it is sent (store-and-forward: one packet on the wire either way
 * for typical mesh requests), which is what makes retries and mirroring
 * possible; a larger body is streamed with bounded memory and can only be
 * retried before its first byte left.
 */
#ifndef MESHCORE_PROXY_HTTP_STREAM_H
#define MESHCORE_PROXY_HTTP_STREAM_H

#include <stdint.h>

#include "http/h1_chunked.h"
#include "http/h1_parser.h"
#include "http/path_normalize.h"
#include "meshcore/balancer.h"
#include "proxy/http_conn.h"
#include "proxy/http_upstream.h"
#include "route/router.h"
#include "stats/response_flags.h"

#define MC_HTTP_REPLAY_MAX MC_HTTP_BUF /* head + body kept for retries/mirrors */
#define MC_HTTP_MAX_HEADERS 128        /* parser slots (the limit is in mc_h1_limits_t) */

/* Request fields an access log needs after the head's bytes are gone:
 * copied at the start of a request, only when the listener logs. */
typedef struct mc_http_logreq {
    char method[16];
    char authority[128];
    char path[256];
    char user_agent[128];
    char forwarded_for[64];
    uint64_t start_us;
} mc_http_logreq_t;

enum { ST_ACTIVE = 1, ST_CLOSED };

/* Where the current try is. */
enum {
    TRY_NONE = 0,
    TRY_BACKOFF,   /* waiting before a retry (or an injected delay) */
    TRY_PENDING,   /* waiting for a connection (pool full) */
    TRY_WOKEN,     /* was pending; a connection may be free: acquire again */
    TRY_CONNECTING,
    TRY_SENDING,   /* request head/body going out */
    TRY_WAITING,   /* request sent, no response head yet */
    TRY_RESPONDING /* response head sent downstream, body streaming */
};

/* A stream's HTTP/2 side (proxy/h2_server.c, proxy/h2_codec.c); zero on HTTP/1.1. */
typedef struct mc_h2_side {
    int32_t id;          /* the HTTP/2 stream id (0: HTTP/1.1) */
    uint8_t attached;    /* nghttp2's stream points at this stream */
    uint8_t started;     /* the request head went to mc_http_stream_start */
    uint8_t end_stream;  /* the client's END_STREAM arrived */
    uint8_t chunked;     /* no content-length: the body is framed chunked for the upstream */
    uint8_t grpc;        /* content-type application/grpc*: local replies are trailers-only */
    uint8_t overflow;    /* the header list went past the HCM's limits: 431 */
    uint8_t deferred;    /* the response data provider waits for upstream bytes */
    uint8_t eof;         /* the whole response body is handed to nghttp2 */
    uint8_t local;       /* a local reply: its body is in `tx` */
    uint8_t has_cl;      /* the request has content-length */
    uint8_t ws;          /* extended CONNECT (RFC 8441): a tunnel once upstream says 101 (proxy/h2_tunnel.c) */
    uint8_t ws_flags;    /* H2WS_*: the tunnel's half-closes */
    uint8_t trailers;    /* request trailers are being framed into rx (a chunked trailer section) */
    uint32_t hdr_bytes;  /* request header list size so far (names + values) */
    uint32_t unconsumed; /* DATA bytes received and not yet given back to the client's windows */
    mc_hbuf_t hdr;       /* request header names and values: the views in `req` point here */
    mc_hbuf_t rx;        /* request body, framed for the HTTP/1.1 upstream (s->rx) */
    mc_hbuf_t tx;        /* a local reply's body; the upstream's trailer section */
    mc_list_t link;      /* in the session's streams */
} mc_h2_side_t;

struct mc_http_stream {
    mc_session_t base; /* a mirror's: a stream with a connection is in its connection's */
    mc_task_t task;
    mc_timer_t timer;     /* request / route / stream idle timeouts */
    mc_timer_t try_timer; /* per-try timeout, back-off, fault delay */
    mc_list_t pending_link; /* in the cluster's pending list (this worker) */
    mc_worker_t *w;
    mc_wctx_t *ctx; /* pinned by the stream */
    const mc_listener_t *l;
    const mc_chain_t *ch;
    const mc_hcm_t *hcm;
    mc_http_conn_t *conn; /* NULL: a mirror */
    const mc_http_codec_t *codec;
    mc_http_peer_t *peer;
    mc_hbuf_t *rx; /* request body bytes from the client (the connection's buffer for HTTP/1.1) */
    uint8_t state; /* ST_* */
    uint8_t close_after; /* the connection closes once this response is written */
    uint8_t accounted;   /* this request's stats, log record and metrics are written */
    const char *details;   /* response code details for the access log, or NULL */
    const char *denied_by; /* the RBAC policy that refused the request */
    uint64_t last_activity;

    /* the request */
    mc_h1_request_t req;
    uint32_t head_len;
    int req_body;                /* MC_H1_BODY_* of the downstream request */
    uint64_t req_remaining;      /* LENGTH: body bytes not yet consumed */
    mc_h1_chunked_t req_chunked; /* CHUNKED */
    uint8_t req_done;            /* whole request read from downstream */
    uint8_t buffered;            /* head + body held in `replay` (retriable) */
    uint8_t body_sent;           /* streamed body bytes left for upstream: no retry */
    uint8_t head_request;
    uint32_t req_ready; /* body bytes at the front of *rx, scanned, not yet forwarded */
    char request_id[40];
    uint8_t request_id_len;
    uint64_t head_start_ns, rq_start_ns, rq_done_ns;

    /* routing and tries */
    const mc_route_t *route;
    const mc_vhost_t *vhost;
    uint32_t cidx; /* cluster in the snapshot */
    const struct mc_cluster *c;
    uint32_t ep;                  /* endpoint of the current try */
    uint32_t tried[MC_TRIED_MAX]; /* endpoints tried (previous_hosts): the first MC_TRIED_MAX */
    uint8_t n_tried;
    uint64_t tried_clusters; /* split members given up on */
    uint32_t tries, retries;
    mc_cluster_state_t *retry_cs; /* holds a max_retries slot of this cluster */
    uint8_t rq_slot;              /* holds a max_requests slot */
    uint8_t pending_slot;         /* holds a max_pending_requests slot */
    uint8_t try_state;
    uint8_t mirrored;
    uint8_t has_hash;
    uint8_t early_response; /* the response came before the request was all sent */
    uint32_t flags;         /* MC_RF_* */
    uint16_t status;        /* response status sent downstream */
    uint64_t hash;          /* ring hash key of this request */
    mc_hbuf_t replay;       /* the serialized upstream request: head + body while it fits */
    uint32_t replay_sent;   /* bytes of replay written by the current try */
    uint32_t replay_head;   /* length of the head at the start of replay */
    mc_hbuf_t mirror;       /* the shadow copy's head (host "-shadow") */
    uint32_t mirror_cluster;
    mc_upconn_t *up;
    uint64_t try_start_ns;
    uint32_t last_ep; /* endpoint of the last try (access log) */

    /* the response */
    mc_h1_response_t resp;
    int resp_body;
    uint64_t resp_remaining;
    uint32_t resp_ready; /* response body bytes at the front of up->in, not yet sent */
    mc_h1_chunked_t resp_chunked;
    uint8_t resp_done;
    uint8_t resp_keep_upstream;
    uint8_t resp_dechunk; /* chunked upstream response to an HTTP/1.0 client: strip the framing */
    uint64_t resp_head_ns; /* when the committed response head arrived */
    int16_t grpc_status;     /* from the response head or its trailers, once has_grpc_status */
    uint8_t has_grpc_status;
    uint8_t refused;         /* tries restarted after an HTTP/2 REFUSED_STREAM or GOAWAY */
    uint8_t grpc_request;    /* content-type application/grpc* */
    uint64_t grpc_timeout_ns; /* the request's grpc-timeout, 0: none */
    uint64_t bytes_rx, bytes_tx;

    /* telemetry */
    mc_http_logreq_t logreq;
    uint16_t im_peer;        /* the peer's metadata, this request (0: none) */
    uint8_t im_peer_present; /* the request carried peer metadata: answer with ours */
    uint64_t trace_hi, trace_lo; /* trace id (trace_hi 0: a 64-bit B3 id) */
    uint64_t span_id;            /* this hop's span */
    uint64_t parent_span_id;     /* the caller's span, 0: this hop is the root */
    uint8_t trace_active;        /* the listener traces: context is propagated */
    uint8_t trace_sampled;       /* and this request records a span */
    uint8_t trace_b3;            /* MC_TRACE_B3_*: the B3 form the caller used */

    mc_http_peer_t own_peer; /* a mirror's copy of its parent's peer */
    mc_h2_side_t h2;

    /* HTTP/1.1 Upgrade (proxy/http_upgrade.c) */
    uint8_t upgrade; /* a WebSocket upgrade the HCM allows: sent with its Upgrade field */
    uint8_t tunnel;  /* the upstream answered 101: the connections are a byte tunnel (TUN_* bits) */

    /* Parser slots, last: a new stream zeroes what comes before them only
     * (the parser fills these and says how many it filled). */
    mc_h1_header_t headers[MC_HTTP_MAX_HEADERS];
    mc_h1_header_t resp_headers[MC_HTTP_MAX_HEADERS];
};

/* HTTP/2 on both sides: the request body keeps flowing while the response
 * does (gRPC bidirectional calls answer message by message; a paused body
 * is sent as far as it came, and kept for a retry while it fits). With an
 * HTTP/1.1 side the early-response rule holds: the rest is dropped. */
static inline int mc_http_duplex(const mc_http_stream_t *s)
{
    return s->h2.id && s->up && s->up->is_h2;
}

/* proxy/http_stream.c: the stream's life */
size_t mc_http_stream_size(void);
/* A stream for conn's next request (NULL: out of memory); mc_http_stream_start once its head is parsed. */
mc_http_stream_t *mc_http_stream_new(mc_http_conn_t *conn);
/* The request head is parsed (s->req, head_len bytes): route and forward it. */
void mc_http_stream_start(mc_http_stream_t *s);
/* Counts the exchange (stats, access log, span, Istio metrics) once its
 * whole response is known. */
void mc_http_stream_account(mc_http_stream_t *s);
/* The response is written: account, release the try, hand back to the codec. */
void mc_http_stream_finish(mc_http_stream_t *s);
/* Ends the stream however far it got (a reset, or its connection closing). */
void mc_http_stream_abort(mc_http_stream_t *s);
/* Frees a stream that is over (after the current event batch). */
void mc_http_stream_free(mc_http_stream_t *s);
/* Arms s->timer for the nearest of the request, route and stream idle timeouts. */
void mc_http_stream_rearm(mc_http_stream_t *s);
/* Sends a locally generated response; ends the request. */
void mc_http_local_reply(mc_http_stream_t *s, int status, const char *body, uint32_t flags);
/* The same with a body of any bytes and an optional Location. */
void mc_http_reply(mc_http_stream_t *s, int status, const char *body, size_t body_len, uint32_t flags,
                   const char *location);
/* http.<prefix>.downstream_rq_<class>xx for a response status. */
void mc_http_count_status(mc_worker_t *w, const mc_hcm_t *h, int status);

/* proxy/http_forward.c: the router filter */
void mc_http_forward(mc_http_stream_t *s);          /* route chosen: start the first try */
void mc_http_forward_progress(mc_http_stream_t *s); /* downstream sent more body bytes */
void mc_http_forward_resume(mc_http_stream_t *s);   /* TRY_WOKEN: acquire a connection again */
/* Starts a mirror stream: its request is whole in `replay`. */
void mc_http_forward_shadow(mc_http_stream_t *sh);
void mc_http_try_timer(mc_timer_t *t);
void mc_http_forward_abort(mc_http_stream_t *s); /* release the try's resources */
/* A pending request may find a connection now (called by the pool). */
void mc_http_pending_wake(mc_http_stream_t *s);

/* proxy/http_outcome.c: a try's result, for its cluster */
void mc_http_count_upstream_status(mc_http_stream_t *s, int status); /* upstream_rq_<class>xx / _<code> */
int mc_http_outcome_of(int status);                                 /* MC_OUTCOME_* of a response status */
void mc_http_report_outlier(mc_http_stream_t *s, int outcome);       /* to the outlier detector */

/* proxy/http_headers.c: head serialization. Each returns the bytes written,
 * or -1 if cap is too small. */
long mc_http_write_request_head(const mc_http_stream_t *s, char *buf, size_t cap, const char *host_suffix);
long mc_http_write_response_head(const mc_http_stream_t *s, char *buf, size_t cap, uint64_t service_ms);
/* A locally generated response. */
typedef struct mc_http_local {
    int status;
    const char *body;
    size_t body_len;
    int close; /* add connection: close */
    int head;  /* answering HEAD: no body */
    const char *request_id;
    size_t request_id_len;
    const char *server; /* http_connection_manager server_name, or NULL */
    size_t server_len;
    const char *location; /* redirects */
    /* inbound istio.metadata_exchange: this workload's metadata, as on a
     * proxied response, so the caller labels local replies (an RBAC 403, a
     * 503) with the destination workload too */
    const char *peer_md_id, *peer_md;
    size_t peer_md_id_len, peer_md_len;
    const mc_header_ops_t *ops[3]; /* response header operations (route, vhost, config) or NULL */
} mc_http_local_t;
long mc_http_write_local_reply(char *buf, size_t cap, const mc_http_local_t *reply);
const char *mc_http_reason(int status);

/* proxy/http_alog.c: access-log records (no-ops unless the listener logs) */
void mc_http_alog_begin(mc_http_stream_t *s);
void mc_http_alog_end(mc_http_stream_t *s);

/* proxy/http_istio.c: Istio standard metrics and the peer metadata
 * exchange (no-ops unless the chain has istio.stats) */
int mc_http_im_header(const char *name, size_t len); /* x-envoy-peer-metadata(-id) */
void mc_http_im_request_head(mc_http_stream_t *s);
void mc_http_im_response_head(mc_http_stream_t *s);
void mc_http_im_end(mc_http_stream_t *s);

/* proxy/http_trace.c: trace context (no-ops unless the HCM traces) */
enum { MC_TRACE_B3_NONE = 0, MC_TRACE_B3_SINGLE = 1, MC_TRACE_B3_MULTI = 2 };
typedef struct mc_trace_out {
    char traceparent[56];
    size_t traceparent_len;
    char trace_id[32], span_id[16], parent_id[16];
    size_t trace_id_len;
    int has_parent;
    char b3[32 + 1 + 16 + 2 + 1 + 16];
    size_t b3_len;
} mc_trace_out_t;
void mc_http_trace_begin(mc_http_stream_t *s);          /* at the request head */
int mc_http_trace_header(const char *name, size_t len); /* traceparent, b3, x-b3-*: replaced upstream */
void mc_http_trace_outgoing(const mc_http_stream_t *s, mc_trace_out_t *o); /* the upstream request's */
size_t mc_http_trace_format_id(const mc_http_stream_t *s, char *out33);
size_t mc_http_trace_format_span(uint64_t span, char *out17);

/* proxy/http_upgrade.c: HTTP/1.1 Upgrade. check: at the request head, 0 go on, -1
 * answered (403: an upgrade the HCM has not enabled). commit: the upstream's
 * 101 makes the stream a tunnel. end: the stream is over (its upgrade gauge). */
int mc_http_upgrade_check(mc_http_stream_t *s);
void mc_http_upgrade_commit(mc_http_stream_t *s);
int mc_http_upgrade_tunnel(const mc_http_stream_t *s);
void mc_http_upgrade_end(mc_http_stream_t *s);
const mc_h1_header_t *mc_http_upgrade_header(const mc_h1_header_t *headers, size_t n);

/* proxy/http_grpc.c: gRPC over the stream */
/* The grpc-status of a response head (a trailers-only response), -1 if none. */
int mc_http_grpc_status_of(const mc_h1_response_t *r);
/* At the request head: notes a gRPC request (content-type application/grpc,
 * +proto...) and its grpc-timeout. */
void mc_http_grpc_request(mc_http_stream_t *s);
/* The route timeout for this request: the route's, or its grpc-timeout
 * under max_stream_duration.grpc_timeout_header_max or the deprecated
 * max_grpc_timeout. 0: none. */
uint64_t mc_http_route_timeout_ns(const mc_http_stream_t *s);

/* proxy/http_duration.c: Envoy's max_stream_duration */
/* The limit on this stream's life (from its start), 0: none. */
uint64_t mc_http_stream_duration_ns(const mc_http_stream_t *s);
/* The limit is reached: a local reply, or a reset once the response started. */
void mc_http_stream_duration_reached(mc_http_stream_t *s);

/* proxy/http_mirror.c: a shadow copy of s's request (whole in replay) */
void mc_http_mirror(mc_http_stream_t *s);

#endif
