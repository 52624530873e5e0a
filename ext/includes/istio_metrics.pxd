from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t

from includes.engine cimport mc_engine_t

cdef extern from "meshcore/istio_metrics.h" nogil:
    enum:
        MC_IM_REPORTER_NONE
        MC_IM_SOURCE
        MC_IM_DESTINATION
        MC_IM_PROTO_HTTP
        MC_IM_PROTO_GRPC
        MC_IM_PROTO_TCP
        MC_IM_SEC_UNKNOWN
        MC_IM_SEC_NONE
        MC_IM_SEC_MUTUAL_TLS
        MC_IM_MAX_BOUNDS
    ctypedef struct mc_im_key_t:
        uint32_t service
        uint32_t flags
        uint16_t peer
        uint16_t principal
        uint16_t code
        uint8_t reporter, protocol, security, grpc
    ctypedef struct mc_im_row_t:
        mc_im_key_t key
        uint32_t worker
        uint64_t requests, request_bytes_count, response_bytes_count
        uint64_t duration_sum_us, request_bytes_sum, response_bytes_sum
        uint64_t duration[32]
        uint64_t request_bytes[32]
        uint64_t response_bytes[32]
        uint64_t tcp_opened, tcp_closed, tcp_sent, tcp_received
    size_t mc_engine_im_export(mc_engine_t *e, const double *duration_bounds, uint32_t n_duration,
                               const double *bytes_bounds, uint32_t n_bytes, mc_im_row_t *out, size_t cap)
    const char *mc_engine_im_peer(mc_engine_t *e, uint32_t worker, uint32_t index, size_t *len)
    const char *mc_engine_im_principal(mc_engine_t *e, uint32_t worker, uint32_t index)
    void mc_engine_im_overflow(mc_engine_t *e, uint64_t *sets, uint64_t *peers, uint64_t *principals)
