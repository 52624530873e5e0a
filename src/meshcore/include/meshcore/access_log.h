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

#include <stdint.h>

#define MC_ALOG_RING 4096 /* records per worker */

enum { MC_ALOG_HTTP = 1, MC_ALOG_TCP = 2 };
/* A record is also a finished span when span_kind is set (tracing). */
enum { MC_SPAN_NONE = 0, MC_SPAN_SERVER = 1, MC_SPAN_CLIENT = 2 };

typedef struct mc_alog_record {
    uint32_t log_id;      /* which access_log configuration (assigned by the compiler); 0: none */
    uint32_t tracer_id;   /* which tracing provider gets the span; 0: not a span */
    uint8_t span_kind;    /* MC_SPAN_*: the span this hop records (sampled requests only) */
    uint8_t kind;         /* MC_ALOG_* */
    uint8_t http_minor;   /* HTTP/1.<minor> */
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
} mc_alog_record_t;

#endif
