/*
 * Istio's standard metrics (istio_requests_total, istio_request_duration_
 * milliseconds, istio_request_bytes, istio_response_bytes, istio_tcp_*):
 * what the exporter reads.
 *
 * Each worker keeps a table of label sets. A label set's key is a handful
 * of small integers: the ids the config compiler gave the cluster's service
 * labels, and worker-local indexes of the peer's metadata (the raw
 * x-envoy-peer-metadata value it sent) and of its principal (SPIFFE ID).
 * The exporter turns those back into strings and sums the workers.
 * Histograms are log-linear in C and re-bucketed on export to the bounds
 * the caller passes (Istio's are Envoy's default buckets).
 */
#ifndef MESHCORE_ISTIO_METRICS_H
#define MESHCORE_ISTIO_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct mc_engine mc_engine_t;

/* Which side of the exchange reports: the client's sidecar (outbound
 * listener) or the server's (inbound). NONE: the listener does not count. */
enum { MC_IM_REPORTER_NONE = 0, MC_IM_SOURCE = 1, MC_IM_DESTINATION = 2 };
enum { MC_IM_PROTO_HTTP = 0, MC_IM_PROTO_GRPC = 1, MC_IM_PROTO_TCP = 2 };
/* connection_security_policy: Istio reports "unknown" on the source side. */
enum { MC_IM_SEC_UNKNOWN = 0, MC_IM_SEC_NONE = 1, MC_IM_SEC_MUTUAL_TLS = 2 };

typedef struct mc_im_key {
    uint32_t service;   /* the cluster's service labels, an id from the compiler (0: unknown) */
    uint32_t flags;     /* response flags, a bit set of MC_RF_* (the access log's) */
    uint16_t peer;      /* worker-local index of the peer's metadata (0: none) */
    uint16_t principal; /* worker-local index of the peer's SPIFFE ID (0: none) */
    uint16_t code;      /* HTTP status; 0 for TCP or when no response was sent */
    uint8_t reporter, protocol, security;
    uint8_t grpc; /* grpc-status + 1 (grpc_response_status), 0: none (keys are hashed as bytes) */
} mc_im_key_t;

#define MC_IM_MAX_BOUNDS 32

/* One label set of one worker, histograms re-bucketed: duration[i] is the
 * number of requests that took <= bounds[i] (cumulative, as Prometheus
 * wants); each histogram's +Inf bucket is its count (requests for the
 * duration: istio_requests_total). */
typedef struct mc_im_row {
    mc_im_key_t key;
    uint32_t worker;
    uint64_t requests, request_bytes_count, response_bytes_count;
    uint64_t duration_sum_us, request_bytes_sum, response_bytes_sum;
    uint64_t duration[MC_IM_MAX_BOUNDS];
    uint64_t request_bytes[MC_IM_MAX_BOUNDS];
    uint64_t response_bytes[MC_IM_MAX_BOUNDS];
    uint64_t tcp_opened, tcp_closed, tcp_sent, tcp_received;
} mc_im_row_t;

/* Label sets a worker keeps at most; past that, observations are dropped
 * and counted (mc_engine_im_overflow). */
#define MC_IM_MAX_SETS 1024
#define MC_IM_MAX_PEERS 255
#define MC_IM_MAX_PRINCIPALS 255
#define MC_IM_MAX_PEER_BYTES 4096 /* longer peer metadata is not kept */

/* Reads every worker's label sets into out (at most cap rows); returns
 * how many there are in all (more than cap: call again with more room).
 * Duration bounds are in microseconds, byte bounds in bytes, ascending,
 * at most MC_IM_MAX_BOUNDS each. An observation is counted in the first
 * bound at or above its log-linear bucket's upper end: quantiles read
 * from the result are high by at most 1/8 of the value, never low. */
size_t mc_engine_im_export(mc_engine_t *e, const double *duration_bounds, uint32_t n_duration,
                           const double *bytes_bounds, uint32_t n_bytes, mc_im_row_t *out, size_t cap);
/* The peer metadata (as the peer sent it) behind a worker-local index, or
 * NULL. Valid while the engine lives. */
const char *mc_engine_im_peer(mc_engine_t *e, uint32_t worker, uint32_t index, size_t *len);
/* The principal behind a worker-local index, or NULL. */
const char *mc_engine_im_principal(mc_engine_t *e, uint32_t worker, uint32_t index);
/* Observations dropped because a table was full: label sets, peers,
 * principals (summed over workers). */
void mc_engine_im_overflow(mc_engine_t *e, uint64_t *sets, uint64_t *peers, uint64_t *principals);

#endif
