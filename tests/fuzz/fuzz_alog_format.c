/*
 * The access-log formatter (stats/alog_format.c, mc_alog_render) on fuzzed
 * records and formats: the input fills a record (numbers, then every string
 * field NUL-terminated, truncated to its size) and a format of up to 32
 * segments (operator, style, literal or argument bytes, e.g. START_TIME's
 * strftime pattern), rendered into an exact-size buffer of a fuzzed
 * capacity. Checks: never past the capacity (ASan sees the buffer's end),
 * and the same output again with a larger buffer truncated to the cap.
 */
#include "fuzz_util.h"
#include "meshcore/access_log.h"

#define FIELD(in, f)                                                                                        \
    do {                                                                                                    \
        size_t _l;                                                                                          \
        const char *_s = fuzz_field((in), '\x01', &_l);                                                     \
        if (_l >= sizeof(f))                                                                                \
            _l = sizeof(f) - 1;                                                                             \
        memcpy((f), _s, _l);                                                                                \
        (f)[_l] = '\0';                                                                                     \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16384)
        return 0;
    fuzz_in_t in = {data, size};
    static mc_alog_record_t r;
    memset(&r, 0, sizeof(r));
    r.kind = (fuzz_byte(&in) & 1) ? MC_ALOG_TCP : MC_ALOG_HTTP;
    r.span_kind = fuzz_byte(&in) % 3;
    r.http_minor = fuzz_byte(&in) & 1;
    r.status = (uint16_t)fuzz_u32(&in);
    r.flags = fuzz_u32(&in);
    r.attempts = fuzz_u32(&in);
    r.start_us = (uint64_t)fuzz_u32(&in) << 24 | fuzz_u32(&in);
    r.duration_us = (uint64_t)fuzz_u32(&in) << 8 | fuzz_byte(&in);
    r.upstream_service_us = (int64_t)(int32_t)fuzz_u32(&in);
    r.bytes_rx = (uint64_t)fuzz_u32(&in) << 32 | fuzz_u32(&in);
    r.bytes_tx = fuzz_u32(&in);
    r.sampled = fuzz_byte(&in) & 1;
    uint32_t cap = fuzz_u32(&in) % 4096;
    FIELD(&in, r.method);
    FIELD(&in, r.authority);
    FIELD(&in, r.path);
    FIELD(&in, r.user_agent);
    FIELD(&in, r.request_id);
    FIELD(&in, r.forwarded_for);
    FIELD(&in, r.route);
    FIELD(&in, r.upstream_cluster);
    FIELD(&in, r.upstream_host);
    FIELD(&in, r.downstream_peer);
    FIELD(&in, r.trace_id);
    FIELD(&in, r.span_id);
    FIELD(&in, r.parent_span_id);
    FIELD(&in, r.downstream_principal);
    FIELD(&in, r.upstream_principal);
    FIELD(&in, r.details);

    /* The format: [op][style][len][len bytes]..., the text kept in one exact-size copy. */
    mc_alog_segment_t seg[32];
    uint32_t n = 0;
    char *texts = fuzz_copy(in.p, in.n);
    size_t off = 0;
    while (in.n >= 3 && n < 32) {
        uint8_t op = fuzz_byte(&in), style = fuzz_byte(&in), len = fuzz_byte(&in);
        off += 3;
        if (len > in.n)
            len = (uint8_t)in.n;
        seg[n].op = op % (MC_ALOG_OP__COUNT + 1); /* one past the end: an unknown operator */
        seg[n].style = style % 3;
        /* A literal always has its bytes; an operator's argument may be absent. */
        seg[n].text = len || op & 0x80 || seg[n].op == MC_ALOG_LITERAL ? texts + off : NULL;
        seg[n].len = len;
        in.p += len;
        in.n -= len;
        off += len;
        n++;
    }
    char *out = malloc(cap ? cap : 1);
    size_t k = mc_alog_render(seg, n, &r, out, cap);
    FUZZ_ASSERT(k <= cap, "rendered %zu into %u", k, cap);
    /* Same again into a bigger buffer: the cut line is a prefix of the whole one. */
    size_t big_cap = 1u << 16;
    char *big = malloc(big_cap);
    size_t kb = mc_alog_render(seg, n, &r, big, big_cap);
    FUZZ_ASSERT(kb < big_cap, "a 32-segment line filled 64 KiB");
    FUZZ_ASSERT(k == (kb < cap ? kb : cap) && memcmp(out, big, k) == 0, "cut line %zu is not a prefix of %zu", k, kb);
    free(big);
    free(out);
    free(texts);
    return 0;
}
