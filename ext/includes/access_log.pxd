from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t

cdef extern from "meshcore/access_log.h" nogil:
    enum:
        MC_ALOG_HTTP
        MC_ALOG_TCP
        MC_SPAN_NONE
        MC_SPAN_SERVER
        MC_SPAN_CLIENT
    ctypedef struct mc_alog_record_t:
        uint32_t log_id
        uint32_t tracer_id
        uint8_t span_kind
        uint8_t kind
        uint8_t http_minor
        uint16_t status
        uint32_t flags
        uint32_t attempts
        uint64_t start_us
        uint64_t duration_us
        int64_t upstream_service_us
        uint64_t bytes_rx
        uint64_t bytes_tx
        char method[16]
        char authority[128]
        char path[256]
        char user_agent[128]
        char request_id[40]
        char forwarded_for[64]
        char route[64]
        char upstream_cluster[96]
        char upstream_host[64]
        char downstream_peer[64]
        char trace_id[33]
        char span_id[17]
        char parent_span_id[17]
        uint8_t sampled
        char downstream_principal[128]
        char upstream_principal[128]
        char details[160]
