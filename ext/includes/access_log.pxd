from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t

from includes.engine cimport mc_engine_t

cdef extern from "meshcore/access_log.h" nogil:
    enum:
        MC_ALOG_HTTP
        MC_ALOG_TCP
        MC_SPAN_NONE
        MC_SPAN_SERVER
        MC_SPAN_CLIENT
        MC_ALOG_STYLE_TEXT
        MC_ALOG_STYLE_JSON_VALUE
        MC_ALOG_STYLE_JSON_STRING
        MC_ALOG_OP__COUNT
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

    ctypedef struct mc_alog_segment_t:
        int op
        int style
        const char *text
        size_t len
    int mc_engine_alog_add_sink(mc_engine_t *e, uint32_t log_id, const char *path, int fd,
                                const mc_alog_segment_t *http, uint32_t n_http, const mc_alog_segment_t *tcp,
                                uint32_t n_tcp, char *err, size_t errlen)
    uint32_t mc_engine_drain_spans(mc_engine_t *e, mc_alog_record_t *out, uint32_t max, uint64_t *dropped)
    void mc_engine_alog_flush(mc_engine_t *e)
    void mc_engine_alog_counters(mc_engine_t *e, uint64_t *ring_dropped, uint64_t *spans_dropped,
                                 uint64_t *write_errors)
    size_t mc_alog_render(const mc_alog_segment_t *seg, uint32_t n, const mc_alog_record_t *r, char *buf,
                          size_t cap)
