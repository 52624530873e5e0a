/*
 * HTTP/1.1 proxying (envoy.filters.network.http_connection_manager + the
 * router filter): the types shared by the http_*.c files.
 *
 * A session is one downstream connection. It carries at most one request
 * at a time (pipelined requests wait in the read buffer and are answered in
 * order). A request is forwarded in tries: each try takes an upstream
 * connection from the worker's pool for the chosen host (or opens one),
 * sends the request and reads the response head; a failed try may be
 * retried on another host after a jittered back-off. Once a response head
 * has been sent downstream, the request is committed to that try.
 *
 * Buffers come from the worker's 16 KiB pool; a head larger than that gets
 * a one-off larger buffer. A request whose head and body fit in
 * MC_HTTP_REPLAY_MAX is read whole before it is sent (store-and-forward:
 * one packet on the wire either way for typical mesh requests), which is
 * what makes retries and mirroring possible; a larger body is streamed
 * with bounded memory and can only be retried before its first byte left.
 */
#ifndef MESHCORE_HTTP_SESSION_H
#define MESHCORE_HTTP_SESSION_H

#include <stdint.h>

#include "http/h1_chunked.h"
#include "meshcore/balancer.h"
#include "net/stream.h"
#include "net/tls.h"
#include "http/h1_parser.h"
#include "stats/response_flags.h"
#include "route/router.h"
#include "worker/worker.h"

#define MC_HTTP_BUF 16384u          /* the worker's pooled buffer size */
#define MC_HTTP_REPLAY_MAX 16384u   /* head + body kept for retries/mirrors */
#define MC_HTTP_MAX_HEADERS 128     /* parser slots (the limit is in mc_h1_limits_t) */

/* A byte buffer: data[start, end) is unread. Pool-backed when cap ==
 * MC_HTTP_BUF, malloc-backed when larger. */
typedef struct mc_hbuf {
    char *data;
    uint32_t cap, start, end;
} mc_hbuf_t;

int mc_hbuf_reserve(mc_worker_t *w, mc_hbuf_t *b, uint32_t need);
void mc_hbuf_release(mc_worker_t *w, mc_hbuf_t *b);
static inline uint32_t mc_hbuf_len(const mc_hbuf_t *b)
{
    return b->end - b->start;
}
/* Moves unread bytes to the front so `end` has room to grow. */
void mc_hbuf_compact(mc_hbuf_t *b);

typedef struct mc_http_session mc_http_session_t;
typedef struct mc_upconn mc_upconn_t;

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

/* ---- upstream connections (proxy/http_upstream.c) ---------------------- */

enum { UP_CONNECTING = 1, UP_HANDSHAKE, UP_IDLE, UP_BUSY, UP_CLOSED };

struct mc_upconn {
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
    mc_http_session_t *owner; /* while busy or connecting */
    mc_timer_t timer;         /* connect timeout, then idle timeout */
    mc_task_t task;
    uint64_t connect_start, last_used;
    char principal[128]; /* the upstream's SPIFFE ID (TLS) */
    uint16_t im_principal; /* principal, interned for Istio metrics once im_principal_set */
    uint8_t im_principal_set;
};

/* Events a connection reports to its owner. */
enum { UPEV_CONNECTED, UPEV_CONNECT_FAILED, UPEV_CONNECT_TIMEOUT, UPEV_IO };
void mc_http_upstream_event(mc_http_session_t *s, mc_upconn_t *u, int event);

/* Opens a connection for owner to endpoint e of cluster c (circuit breaker
 * checked by the caller). NULL if the socket could not even be created. */
mc_upconn_t *mc_upconn_open(mc_worker_t *w, const struct mc_cluster *c, uint32_t endpoint, mc_http_session_t *owner);
/* An idle connection to the host, or NULL. */
mc_upconn_t *mc_upconn_take_idle(mc_worker_t *w, mc_host_state_t *h);
/* Returns a connection after a complete exchange: to the idle list when it
 * can be reused, else closed. Either way the first request pending on the
 * cluster (this worker) is woken to try again. */
void mc_upconn_release(mc_upconn_t *u, int reusable);
void mc_upconn_close(mc_upconn_t *u);
/* Closes one idle connection of any host of this cluster (to free a
 * circuit-breaker slot for a pending request). 1 if one was closed. */
int mc_upconn_shed_idle(mc_worker_t *w, const struct mc_cluster *c);

/* ---- the session --------------------------------------------------------- */

enum { DS_HANDSHAKE = 1, DS_READ_HEAD, DS_ACTIVE, DS_CLOSING, DS_CLOSED };

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

struct mc_http_session {
    mc_session_t base;
    mc_task_t task;
    mc_timer_t timer;     /* idle / request timeout */
    mc_timer_t try_timer; /* per-try timeout, back-off, fault delay */
    mc_list_t pending_link; /* in the cluster's pending list (this worker) */
    mc_worker_t *w;
    mc_wctx_t *ctx;
    const mc_listener_t *l;
    const mc_chain_t *ch;
    const mc_hcm_t *hcm;
    mc_io_t io;
    mc_stream_t st; /* st.fd == io.fd */
    char principal[128]; /* the client's SPIFFE ID (mTLS), "" when none */
    const char *details; /* response code details for the access log, or NULL */
    const char *denied_by;  /* the RBAC policy that refused the request */
    uint8_t readable, writable, rdhup;
    uint8_t state;
    uint8_t limited;
    uint8_t close_after; /* close once the current response is written */
    uint8_t draining;    /* the worker stops: every response closes the connection */
    uint8_t accounted;   /* this request's stats, log record and metrics are written */
    mc_addr_t peer;
    char peer_text[64]; /* "ip:port" ("[ip]:port"), formatted once per connection */
    uint8_t peer_ip_off, peer_ip_len; /* the IP alone, within peer_text (x-forwarded-for) */
    mc_hbuf_t in;  /* downstream bytes: head, body, pipelined requests */
    mc_hbuf_t out; /* bytes to downstream we generated (heads, local replies) */
    uint32_t requests;
    uint64_t last_activity;

    /* the request in flight */
    mc_h1_request_t req;
    mc_h1_header_t headers[MC_HTTP_MAX_HEADERS];
    uint32_t head_len;
    int req_body;                /* MC_H1_BODY_* of the downstream request */
    uint64_t req_remaining;      /* LENGTH: body bytes not yet consumed */
    mc_h1_chunked_t req_chunked; /* CHUNKED */
    uint8_t req_done;            /* whole request read from downstream */
    uint8_t buffered;            /* head + body held in `replay` (retriable) */
    uint8_t body_sent;           /* streamed body bytes left for upstream: no retry */
    uint8_t sent_100;
    const mc_route_t *route;
    const mc_vhost_t *vhost;
    uint32_t cidx;                /* cluster in the snapshot */
    const struct mc_cluster *c;
    uint32_t ep;                  /* endpoint of the current try */
    uint32_t tried[MC_TRIED_MAX]; /* endpoints tried (previous_hosts): the first MC_TRIED_MAX */
    uint8_t n_tried;
    uint64_t tried_clusters;      /* split members given up on */
    uint32_t tries, retries;
    mc_cluster_state_t *retry_cs; /* holds a max_retries slot of this cluster */
    uint8_t rq_slot;              /* holds a max_requests slot */
    uint8_t pending_slot;         /* holds a max_pending_requests slot */
    uint8_t try_state;
    uint8_t mirrored;
    uint32_t flags;               /* MC_RF_* */
    uint16_t status;              /* response status sent downstream */
    uint32_t req_ready;           /* body bytes at the front of `in`, scanned, not yet forwarded */
    mc_hbuf_t replay;             /* the serialized upstream request: head + body while it fits */
    uint32_t replay_sent;         /* bytes of replay written by the current try */
    mc_hbuf_t mirror;             /* the shadow copy's head (host "-shadow") */
    uint32_t mirror_cluster;
    uint32_t replay_head;         /* length of the head at the start of replay */
    uint8_t shadow;               /* a mirror request: no client, response discarded */
    uint64_t hash;                /* ring hash key of this request */
    uint8_t has_hash;
    uint8_t early_response;       /* the response came before the request was all sent */
    mc_upconn_t *up;
    /* the response */
    mc_h1_response_t resp;
    mc_h1_header_t resp_headers[MC_HTTP_MAX_HEADERS];
    int resp_body;
    uint64_t resp_remaining;
    uint32_t resp_ready;          /* response body bytes at the front of up->in, not yet sent */
    mc_h1_chunked_t resp_chunked;
    uint8_t resp_done;
    uint8_t head_request;
    uint8_t resp_keep_upstream;
    uint8_t resp_dechunk; /* chunked upstream response to an HTTP/1.0 client: strip the framing */
    char request_id[40];
    uint8_t request_id_len;
    uint64_t rq_start_ns, try_start_ns, rq_done_ns;
    uint64_t head_start_ns;       /* first byte of the request being read (0: none yet) */
    uint64_t resp_head_ns;        /* when the committed response head arrived */
    uint32_t last_ep;             /* endpoint of the last try (access log) */
    uint64_t bytes_rx, bytes_tx;
    mc_http_logreq_t logreq;
    /* Istio metrics (proxy/http_istio.c) */
    uint16_t im_peer;         /* the peer's metadata, this request (0: none) */
    uint8_t im_peer_present;  /* the request carried peer metadata: answer with ours */
    uint8_t im_principal_set; /* im_principal is the client's, interned (once per connection) */
    uint16_t im_principal;
    /* tracing (proxy/http_trace.c) */
    uint64_t trace_hi, trace_lo;  /* trace id (trace_hi 0: a 64-bit B3 id) */
    uint64_t span_id;             /* this hop's span */
    uint64_t parent_span_id;      /* the caller's span, 0: this hop is the root */
    uint8_t trace_active;         /* the listener traces: context is propagated */
    uint8_t trace_sampled;        /* and this request records a span */
    uint8_t trace_b3;             /* MC_TRACE_B3_*: the B3 form the caller used */
};

/* proxy/http_session.c */
void mc_http_peer_text(mc_http_session_t *s); /* fills peer_text and the IP's place in it */
void mc_http_accept(mc_worker_t *w, mc_wctx_t *ctx, uint32_t listener, uint32_t chain, int fd,
                    const mc_addr_t *peer);
size_t mc_http_session_size(void);
/* Sends a locally generated response; ends the request. */
void mc_http_local_reply(mc_http_session_t *s, int status, const char *body, uint32_t flags);
/* The same with a body of any bytes and an optional Location. */
void mc_http_reply(mc_http_session_t *s, int status, const char *body, size_t body_len, uint32_t flags,
                   const char *location);
/* Arms s->timer for the nearest of the connection manager's timeouts that
 * applies now (idle, request headers, request, route, stream idle). */
void mc_http_rearm(mc_http_session_t *s);
/* The request ended (response fully written or failed); next request or close. */
void mc_http_request_done(mc_http_session_t *s);
void mc_http_session_close(mc_http_session_t *s);
/* Writes s->out and then response body bytes; reads more as needed. */
void mc_http_pump_response(mc_http_session_t *s);
/* Reads more request body from downstream into `in` (bounded). */
void mc_http_pump_request(mc_http_session_t *s);

/* proxy/http_forward.c */
void mc_http_forward(mc_http_session_t *s);          /* route chosen: start the first try */
void mc_http_forward_progress(mc_http_session_t *s); /* downstream sent more body bytes */
void mc_http_forward_resume(mc_http_session_t *s);   /* TRY_WOKEN: acquire a connection again */
/* Starts a shadow request for cluster `cidx` carrying `request` (head and
 * body); used by proxy/http_mirror.c. */
void mc_http_forward_shadow(mc_http_session_t *sh);
void mc_http_try_timer(mc_timer_t *t);
void mc_http_forward_abort(mc_http_session_t *s);    /* release the try's resources */
/* A pending request may find a connection now (called by the pool). */
void mc_http_pending_wake(mc_http_session_t *s);

/* proxy/http_headers.c: head serialization. Each returns the bytes written,
 * or -1 if cap is too small. */
long mc_http_write_request_head(const mc_http_session_t *s, char *buf, size_t cap, const char *host_suffix);
long mc_http_write_response_head(const mc_http_session_t *s, char *buf, size_t cap, uint64_t service_ms);
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
void mc_http_alog_begin(mc_http_session_t *s);
void mc_http_alog_end(mc_http_session_t *s);

/* proxy/http_istio.c: Istio standard metrics and the peer metadata
 * exchange (no-ops unless the chain has istio.stats) */
int mc_http_im_header(const char *name, size_t len); /* x-envoy-peer-metadata(-id) */
void mc_http_im_request_head(mc_http_session_t *s);
void mc_http_im_response_head(mc_http_session_t *s);
void mc_http_im_end(mc_http_session_t *s);

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
void mc_http_trace_begin(mc_http_session_t *s);           /* at the request head */
int mc_http_trace_header(const char *name, size_t len);   /* traceparent, b3, x-b3-*: replaced upstream */
void mc_http_trace_outgoing(const mc_http_session_t *s, mc_trace_out_t *o); /* the upstream request's */
size_t mc_http_trace_format_id(const mc_http_session_t *s, char *out33);
size_t mc_http_trace_format_span(uint64_t span, char *out17);

/* proxy/http_mirror.c */
void mc_http_mirror(mc_http_session_t *s);

#endif
