# The access-log formatter, exposed for tests (meshcore/access_log.h).


cdef void _fill_str(char *dst, size_t cap, value):
    cdef bytes b = (value or "").encode() if isinstance(value or "", str) else value
    n = min(len(b), cap - 1)
    memcpy(dst, <const char *>b, n)
    dst[n] = 0


def _render(fmt, record):
    """A record dict (the fields _record returns) through a compiled format."""
    cdef mc_alog_record_t *r = <mc_alog_record_t *>calloc(1, sizeof(mc_alog_record_t))
    cdef _Arena a = _Arena()
    cdef mc_alog_segment_t *segs = <mc_alog_segment_t *>a.alloc(len(fmt) or 1, sizeof(mc_alog_segment_t))
    cdef char *buf = <char *>a.alloc(65536, 1)
    cdef size_t n
    if r == NULL:
        raise MemoryError()
    try:
        for i, (op, style, text) in enumerate(fmt):
            segs[i].op = op
            segs[i].style = style
            if text is None:
                segs[i].text = NULL
                segs[i].len = 0
            else:
                raw = _b(text)
                segs[i].text = a.s(raw)
                segs[i].len = len(raw)
        g = record.get
        r.kind = MC_ALOG_HTTP if g("kind", "http") == "http" else MC_ALOG_TCP
        r.http_minor = g("http_minor", 1)
        r.status = g("status", 0)
        r.flags = g("flags", 0)
        r.attempts = g("attempts", 0)
        r.start_us = g("start_us", 0)
        r.duration_us = g("duration_us", 0)
        r.upstream_service_us = g("upstream_service_us", -1)
        r.bytes_rx = g("bytes_rx", 0)
        r.bytes_tx = g("bytes_tx", 0)
        _fill_str(r.method, sizeof(r.method), g("method"))
        _fill_str(r.authority, sizeof(r.authority), g("authority"))
        _fill_str(r.path, sizeof(r.path), g("path"))
        _fill_str(r.user_agent, sizeof(r.user_agent), g("user_agent"))
        _fill_str(r.request_id, sizeof(r.request_id), g("request_id"))
        _fill_str(r.forwarded_for, sizeof(r.forwarded_for), g("forwarded_for"))
        _fill_str(r.route, sizeof(r.route), g("route"))
        _fill_str(r.upstream_cluster, sizeof(r.upstream_cluster), g("upstream_cluster"))
        _fill_str(r.upstream_host, sizeof(r.upstream_host), g("upstream_host"))
        _fill_str(r.downstream_peer, sizeof(r.downstream_peer), g("downstream_peer"))
        _fill_str(r.trace_id, sizeof(r.trace_id), g("trace_id"))
        _fill_str(r.downstream_principal, sizeof(r.downstream_principal), g("downstream_principal"))
        _fill_str(r.upstream_principal, sizeof(r.upstream_principal), g("upstream_principal"))
        _fill_str(r.details, sizeof(r.details), g("details"))
        n = mc_alog_render(segs, len(fmt), r, buf, 65536)
        return buf[:n]
    finally:
        free(r)
