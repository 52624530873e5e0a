/*
 * Trace context: what a request's trace is, whether it is sampled, and the
 * span this hop records (HttpConnectionManager.tracing).
 *
 * Incoming context is read from W3C traceparent first, then B3 (the single
 * `b3` header, then the x-b3-* headers). A caller's sampling decision is
 * kept (traceparent's sampled flag, B3's sampled or debug flag); without
 * one, random_sampling decides. Each hop gets a new span id; the request
 * sent upstream carries this hop's span as the parent, in W3C form and in
 * the B3 form the caller used (x-b3-* when none), so applications that only
 * forward B3 headers keep the trace linked. tracestate passes through as an
 * ordinary header. Unsampled requests propagate too (flag 0) and record
 * nothing. Malformed context is ignored, as if absent: a new trace starts.
 */
#include <string.h>

#include "meshcore/rand.h"
#include "proxy/http_stream.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* n (<= 16) hex digits into *out; 0 on success. */
static int hex64(const char *p, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > 16)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int d = hexval(p[i]);
        if (d < 0)
            return -1;
        v = v << 4 | (uint64_t)d;
    }
    *out = v;
    return 0;
}

/* A 16- or 32-digit trace id; all zeros is invalid. */
static int trace_id(const char *p, size_t n, uint64_t *hi, uint64_t *lo)
{
    *hi = 0;
    if (n == 32) {
        if (hex64(p, 16, hi) < 0 || hex64(p + 16, 16, lo) < 0)
            return -1;
    } else if (n != 16 || hex64(p, 16, lo) < 0) {
        return -1;
    }
    return (*hi | *lo) ? 0 : -1;
}

static const mc_h1_header_t *header(const mc_h1_request_t *q, const char *name)
{
    return mc_h1_find_header(q->headers, q->n_headers, name, strlen(name));
}

/* traceparent: 00-<32 hex trace>-<16 hex parent>-<2 hex flags> */
static int parse_traceparent(mc_http_stream_t *s, const mc_h1_header_t *h)
{
    const char *v = h->value;
    uint64_t parent, flags;
    if (h->value_len < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-' || (h->value_len > 55 && v[55] != '-'))
        return -1;
    if ((v[0] == 'f' && v[1] == 'f') || trace_id(v + 3, 32, &s->trace_hi, &s->trace_lo) < 0 ||
        hex64(v + 36, 16, &parent) < 0 || !parent || hex64(v + 53, 2, &flags) < 0)
        return -1;
    s->parent_span_id = parent;
    s->trace_sampled = (uint8_t)(flags & 1);
    return 0;
}

static int sampling_state(const char *v, size_t n)
{
    if (n == 1 && (v[0] == '1' || v[0] == 'd'))
        return 1;
    if (n == 4 && strncasecmp(v, "true", 4) == 0)
        return 1;
    if ((n == 1 && v[0] == '0') || (n == 5 && strncasecmp(v, "false", 5) == 0))
        return 0;
    return -1;
}

/* b3: {trace}-{span}[-{sampled}[-{parent}]] or a lone sampling state. */
static int parse_b3_single(mc_http_stream_t *s, const mc_h1_header_t *h, int *decision)
{
    const char *v = h->value, *end = v + h->value_len;
    if (h->value_len == 1) {
        *decision = sampling_state(v, 1);
        return -1; /* no ids: a new trace with the caller's decision */
    }
    const char *d1 = memchr(v, '-', h->value_len);
    if (!d1)
        return -1;
    const char *d2 = memchr(d1 + 1, '-', (size_t)(end - d1 - 1));
    const char *span_end = d2 ? d2 : end;
    uint64_t span;
    if (trace_id(v, (size_t)(d1 - v), &s->trace_hi, &s->trace_lo) < 0 ||
        hex64(d1 + 1, (size_t)(span_end - d1 - 1), &span) < 0 || span_end - d1 - 1 != 16 || !span)
        return -1;
    s->parent_span_id = span;
    if (d2) {
        const char *d3 = memchr(d2 + 1, '-', (size_t)(end - d2 - 1));
        *decision = sampling_state(d2 + 1, (size_t)((d3 ? d3 : end) - d2 - 1));
    }
    return 0;
}

static int parse_b3_multi(mc_http_stream_t *s, const mc_h1_request_t *q, int *decision)
{
    const mc_h1_header_t *sampled = header(q, "x-b3-sampled"), *flags = header(q, "x-b3-flags");
    if (flags && flags->value_len == 1 && flags->value[0] == '1')
        *decision = 1;
    else if (sampled)
        *decision = sampling_state(sampled->value, sampled->value_len);
    const mc_h1_header_t *tid = header(q, "x-b3-traceid"), *sid = header(q, "x-b3-spanid");
    uint64_t span;
    if (!tid || !sid || trace_id(tid->value, tid->value_len, &s->trace_hi, &s->trace_lo) < 0 ||
        sid->value_len != 16 || hex64(sid->value, 16, &span) < 0 || !span)
        return -1;
    s->parent_span_id = span;
    return 0;
}

static uint64_t nonzero(mc_rand_t *r)
{
    uint64_t v;
    do
        v = mc_rand_next(r);
    while (!v);
    return v;
}

void mc_http_trace_begin(mc_http_stream_t *s)
{
    const mc_hcm_t *h = s->hcm;
    s->trace_active = 0;
    s->trace_sampled = 0;
    s->trace_b3 = 0;
    if (!h->tracer_id || !s->conn)
        return;
    const mc_h1_request_t *q = &s->req;
    mc_rand_t *rng = &s->w->rand;
    int decision = -1;
    const mc_h1_header_t *tp = header(q, "traceparent"), *b3 = header(q, "b3");
    /* The B3 form the caller used is kept whichever header carried the context. */
    if (b3)
        s->trace_b3 = MC_TRACE_B3_SINGLE;
    else if (header(q, "x-b3-traceid") || header(q, "x-b3-sampled") || header(q, "x-b3-flags"))
        s->trace_b3 = MC_TRACE_B3_MULTI;
    int have = tp && parse_traceparent(s, tp) == 0;
    if (have)
        decision = s->trace_sampled;
    else if (s->trace_b3 == MC_TRACE_B3_SINGLE)
        have = parse_b3_single(s, b3, &decision) == 0;
    else if (s->trace_b3 == MC_TRACE_B3_MULTI)
        have = parse_b3_multi(s, q, &decision) == 0;
    if (!have) {
        s->trace_hi = nonzero(rng);
        s->trace_lo = nonzero(rng);
        s->parent_span_id = 0;
    }
    if (decision < 0)
        decision = h->random_sampling && mc_rand_below(rng, 1000000) < h->random_sampling;
    s->trace_sampled = (uint8_t)decision;
    s->span_id = nonzero(rng);
    s->trace_active = 1;
}

int mc_http_trace_header(const char *name, size_t len)
{
    return (len == 11 && mc_h1_token_eq(name, len, "traceparent", 11)) || (len == 2 && mc_h1_token_eq(name, 2, "b3", 2)) ||
           (len > 5 && mc_h1_token_eq(name, 5, "x-b3-", 5));
}

static void hex(char *out, uint64_t v, int digits)
{
    static const char d[] = "0123456789abcdef";
    for (int i = digits - 1; i >= 0; i--, v >>= 4)
        out[i] = d[v & 15];
}

size_t mc_http_trace_format_id(const mc_http_stream_t *s, char *out33)
{
    hex(out33, s->trace_hi, 16);
    hex(out33 + 16, s->trace_lo, 16);
    out33[32] = '\0';
    return 32;
}

size_t mc_http_trace_format_span(uint64_t span, char *out17)
{
    hex(out17, span, 16);
    out17[16] = '\0';
    return 16;
}

void mc_http_trace_outgoing(const mc_http_stream_t *s, mc_trace_out_t *o)
{
    /* traceparent: 00-trace-span-flags */
    memcpy(o->traceparent, "00-", 3);
    hex(o->traceparent + 3, s->trace_hi, 16);
    hex(o->traceparent + 19, s->trace_lo, 16);
    o->traceparent[35] = '-';
    hex(o->traceparent + 36, s->span_id, 16);
    memcpy(o->traceparent + 52, s->trace_sampled ? "-01" : "-00", 3);
    o->traceparent_len = 55;
    /* B3 ids: 128-bit trace ids as 32 digits, 64-bit ones as 16 */
    int digits = s->trace_hi ? 32 : 16;
    if (s->trace_hi)
        hex(o->trace_id, s->trace_hi, 16);
    hex(o->trace_id + (digits - 16), s->trace_lo, 16);
    o->trace_id_len = (size_t)digits;
    hex(o->span_id, s->span_id, 16);
    o->has_parent = s->parent_span_id != 0;
    if (o->has_parent)
        hex(o->parent_id, s->parent_span_id, 16);
    /* b3: trace-span-sampled-parent */
    size_t n = 0;
    memcpy(o->b3 + n, o->trace_id, o->trace_id_len);
    n += o->trace_id_len;
    o->b3[n++] = '-';
    memcpy(o->b3 + n, o->span_id, 16);
    n += 16;
    o->b3[n++] = '-';
    o->b3[n++] = s->trace_sampled ? '1' : '0';
    if (o->has_parent) {
        o->b3[n++] = '-';
        memcpy(o->b3 + n, o->parent_id, 16);
        n += 16;
    }
    o->b3_len = n;
}
