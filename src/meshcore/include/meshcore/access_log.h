/*
 * Access log records: one per HTTP request (and per TCP connection), written
 * by workers into per-worker rings and drained by Python off the hot path.
 * The record of a sampled request is its span too (trace ids, timings):
 * one copy of the request's fields serves the access log and the tracer.
 *
 * Each ring has one producer (its worker) and one consumer (the drain
 * call); head and tail are atomics, a record is fully written before the
 * head moves past it. A full ring drops the record and counts the drop: the
 * hot path never waits for logging.
 */
#ifndef MESHCORE_ACCESS_LOG_H
#define MESHCORE_ACCESS_LOG_H

#include <stddef.h>
#include <stdint.h>

typedef struct mc_engine mc_engine_t;

#define MC_ALOG_RING 4096 /* records per worker */

enum { MC_ALOG_HTTP = 1, MC_ALOG_TCP = 2 };
/* A record is also a finished span when span_kind is set (tracing). */
enum { MC_SPAN_NONE = 0, MC_SPAN_SERVER = 1, MC_SPAN_CLIENT = 2 };

#define MC_ALOG_HTTP2 20 /* http_minor of an HTTP/2 request ("HTTP/2") */

typedef struct mc_alog_record {
    uint32_t log_id;      /* which access_log configuration (assigned by the compiler); 0: none */
    uint32_t tracer_id;   /* which tracing provider gets the span; 0: not a span */
    uint8_t span_kind;    /* MC_SPAN_*: the span this hop records (sampled requests only) */
    uint8_t kind;         /* MC_ALOG_* */
    uint8_t http_minor;   /* HTTP/1.<minor>; MC_ALOG_HTTP2 for HTTP/2 */
    uint16_t status;      /* response code, 0 if none was sent */
    uint32_t flags;       /* MC_RF_* response flags */
    uint32_t attempts;    /* upstream tries */
    uint64_t start_us;    /* wall clock, microseconds since the epoch */
    uint64_t duration_us;
    int64_t upstream_service_us; /* request sent -> response head; -1 if none */
    uint64_t bytes_rx, bytes_tx; /* body bytes (HTTP) or stream bytes (TCP) */
    char method[16];
    char authority[128];
    char path[256];
    char user_agent[128];
    char request_id[40];
    char forwarded_for[64];
    char route[64];
    char upstream_cluster[96];
    char upstream_host[64];
    char downstream_peer[64];
    char trace_id[33];
    char span_id[17];
    char parent_span_id[17];
    uint8_t sampled;
    char downstream_principal[128];
    char upstream_principal[128];
    char details[160]; /* response code details, e.g. rbac_access_denied_matched_policy[...] */
    uint8_t grpc_status; /* the response's grpc-status + 1 (head or trailers); 0: none */
} mc_alog_record_t;

/* ---- formats and sinks: the engine's log writer ----------------------------
 *
 * Records are formatted and written by one writer thread per engine, never
 * on a worker. A format is compiled by the caller into segments: literal
 * bytes, and command operators (Envoy's %RESPONSE_CODE%...) rendered in one
 * of three styles: TEXT (absent values print "-"), JSON_VALUE (a lone
 * operator in a json_format: numbers bare, strings quoted and escaped,
 * absent values null) and JSON_STRING (an operator inside a JSON string:
 * escaped, absent values "-"). Literal segments are written as given (the
 * caller escapes JSON literals). */
enum { MC_ALOG_STYLE_TEXT, MC_ALOG_STYLE_JSON_VALUE, MC_ALOG_STYLE_JSON_STRING };

typedef enum mc_alog_op {
    MC_ALOG_LITERAL = 0,
    MC_ALOG_START_TIME,          /* arg: strftime format with %3f/%6f/%9f, NULL: Envoy's default */
    MC_ALOG_PROTOCOL,            /* HTTP/1.1; "-" for TCP */
    MC_ALOG_RESPONSE_CODE,
    MC_ALOG_RESPONSE_FLAGS,
    MC_ALOG_RESPONSE_CODE_DETAILS,
    MC_ALOG_BYTES_RECEIVED,
    MC_ALOG_BYTES_SENT,
    MC_ALOG_DURATION,            /* milliseconds */
    MC_ALOG_UPSTREAM_HOST,
    MC_ALOG_UPSTREAM_CLUSTER,
    MC_ALOG_ROUTE_NAME,
    MC_ALOG_DOWNSTREAM_REMOTE_ADDRESS,
    MC_ALOG_DOWNSTREAM_PEER_URI_SAN,
    MC_ALOG_UPSTREAM_PEER_URI_SAN,
    MC_ALOG_UPSTREAM_REQUEST_ATTEMPT_COUNT,
    MC_ALOG_TRACE_ID,
    MC_ALOG_REQ_METHOD,          /* %REQ(...)% of the request fields a record keeps */
    MC_ALOG_REQ_PATH,
    MC_ALOG_REQ_AUTHORITY,
    MC_ALOG_REQ_USER_AGENT,
    MC_ALOG_REQ_REQUEST_ID,
    MC_ALOG_REQ_FORWARDED_FOR,
    MC_ALOG_RESP_UPSTREAM_SERVICE_TIME, /* %RESP(x-envoy-upstream-service-time)%, milliseconds */
    MC_ALOG_PROTOCOL_OR_TCP,     /* meshcore's default record: "TCP" for TCP */
    MC_ALOG_DURATION_MS_FLOAT,   /* meshcore's default record: milliseconds, 3 decimals */
    MC_ALOG_GRPC_STATUS,         /* arg: "NUMBER", "SNAKE_STRING" or NULL (CAMEL_STRING, Envoy's default) */
    MC_ALOG_OP__COUNT
} mc_alog_op_t;

typedef struct mc_alog_segment {
    int op;          /* mc_alog_op_t; MC_ALOG_LITERAL: `text` */
    int style;       /* MC_ALOG_STYLE_* */
    const char *text; /* literal bytes, or the operator's argument (may be NULL) */
    size_t len;
} mc_alog_segment_t;

/* Adds a sink for records with log_id: a file (appended to, created 0644)
 * or, with path NULL, fd (duplicated: 1 = stdout). http / tcp: the format
 * for each kind of record. Starts the writer on first use. 0, or -1 with
 * err filled. */
int mc_engine_alog_add_sink(mc_engine_t *e, uint32_t log_id, const char *path, int fd,
                            const mc_alog_segment_t *http, uint32_t n_http, const mc_alog_segment_t *tcp,
                            uint32_t n_tcp, char *err, size_t errlen);
/* Spans: sampled requests' records, handed over by the writer. Enables the
 * hand-over (and the writer) on first call. Returns how many were copied
 * into out (at most max); *dropped: records the hand-over queue had no
 * room for, in all. */
uint32_t mc_engine_drain_spans(mc_engine_t *e, mc_alog_record_t *out, uint32_t max, uint64_t *dropped);
/* Formats and writes every record the workers have produced so far. */
void mc_engine_alog_flush(mc_engine_t *e);
/* Records lost: rings full (per worker, summed), spans among them, and
 * lines a sink could not write. */
void mc_engine_alog_counters(mc_engine_t *e, uint64_t *ring_dropped, uint64_t *spans_dropped,
                             uint64_t *write_errors);

/* Renders one record with a format into buf; returns the length (the
 * line is cut at cap). For tests and the writer. */
size_t mc_alog_render(const mc_alog_segment_t *seg, uint32_t n, const mc_alog_record_t *r, char *buf,
                      size_t cap);

#endif
