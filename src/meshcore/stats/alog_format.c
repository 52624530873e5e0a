/*
 * Access-log formatting: a record rendered through a compiled format (see
 * include/meshcore/access_log.h). Runs on the log writer thread only.
 *
 * Output is bounded by the caller's buffer: a line that does not fit is
 * cut (the writer's buffer holds far more than a record's fields). JSON
 * strings are escaped per RFC 8259; bytes that are not valid UTF-8 become
 * U+FFFD, so a line is always valid JSON whatever a client sent.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "meshcore/access_log.h"
#include "stats/response_flags.h"

typedef struct out {
    char *p;
    size_t len, cap;
} out_t;

static void put(out_t *o, const char *s, size_t n)
{
    if (n > o->cap - o->len)
        n = o->cap - o->len;
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

#define PUTS(o, lit) put((o), (lit), sizeof(lit) - 1)

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t k;
    unsigned min;
    if (c < 0x80)
        return 1;
    if ((c & 0xE0) == 0xC0) {
        k = 2;
        min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        k = 3;
        min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        k = 4;
        min = 0x10000;
    } else {
        return 0;
    }
    if (k > n)
        return 0;
    unsigned cp = c & (0x7Fu >> k);
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return k;
}

static void put_json_chars(out_t *o, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        size_t run = i; /* plain ASCII goes out in one copy */
        while (run < n && p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' && p[run] != '\\')
            run++;
        if (run > i) {
            put(o, s + i, run - i);
            i = run;
            continue;
        }
        unsigned char c = p[i];
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            put(o, esc, 2);
            i++;
        } else if (c < 0x20) {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            put(o, esc, 6);
            i++;
        } else {
            size_t k = utf8_len(p + i, n - i);
            if (k == 0) {
                PUTS(o, "\\ufffd");
                i++;
            } else {
                put(o, s + i, k);
                i += k;
            }
        }
    }
}

/* A value: a string (num = 0) or a number (num = 1, already printed in s). */
static void put_value(out_t *o, int style, const char *s, size_t n, int num)
{
    int absent = s == NULL || n == 0;
    switch (style) {
    case MC_ALOG_STYLE_JSON_VALUE:
        if (absent) {
            PUTS(o, "null");
        } else if (num) {
            put(o, s, n);
        } else {
            PUTS(o, "\"");
            put_json_chars(o, s, n);
            PUTS(o, "\"");
        }
        break;
    case MC_ALOG_STYLE_JSON_STRING:
        if (absent)
            PUTS(o, "-");
        else
            put_json_chars(o, s, n);
        break;
    default:
        if (absent)
            PUTS(o, "-");
        else
            put(o, s, n);
        break;
    }
}

static void put_str(out_t *o, int style, const char *s)
{
    put_value(o, style, s, s ? strlen(s) : 0, 0);
}

static size_t u64_dec(char *end, unsigned long long v)
{
    char *p = end;
    do
        *--p = (char)('0' + v % 10);
    while (v /= 10);
    return (size_t)(end - p);
}

static void put_num(out_t *o, int style, unsigned long long v)
{
    char tmp[24];
    size_t n = u64_dec(tmp + sizeof(tmp), v);
    put_value(o, style, tmp + sizeof(tmp) - n, n, 1);
}

/* START_TIME: strftime in UTC with Envoy's %3f / %6f / %9f (sub-second
 * digits); the default is Envoy's 2006-01-02T15:04:05.000Z. */
static void put_time(out_t *o, int style, uint64_t us, const char *fmt, size_t fmt_len)
{
    time_t secs = (time_t)(us / 1000000u);
    unsigned sub = (unsigned)(us % 1000000u);
    if (!fmt || !fmt_len) {
        /* Envoy's default format, the common case: the date and time of
         * day are formatted once a second (the writer is one thread). */
        static __thread time_t cached_secs = -1;
        static __thread char cached[32];
        if (secs != cached_secs) {
            struct tm tm;
            gmtime_r(&secs, &tm);
            strftime(cached, sizeof(cached), "%Y-%m-%dT%H:%M:%S.", &tm);
            cached_secs = secs;
        }
        char tmp[40];
        size_t k = strlen(cached);
        memcpy(tmp, cached, k);
        tmp[k++] = (char)('0' + sub / 100000);
        tmp[k++] = (char)('0' + sub / 10000 % 10);
        tmp[k++] = (char)('0' + sub / 1000 % 10);
        tmp[k++] = 'Z';
        put_value(o, style, tmp, k, 0);
        return;
    }
    struct tm tm;
    gmtime_r(&secs, &tm);
    char pattern[256];
    size_t k = 0;
    for (size_t i = 0; i < fmt_len && k + 12 < sizeof(pattern); i++) {
        if (fmt[i] == '%' && i + 1 < fmt_len && fmt[i + 1] == '%') { /* %% stays for strftime */
            pattern[k++] = '%';
            pattern[k++] = '%';
            i++;
        } else if (fmt[i] == '%' && i + 2 < fmt_len && fmt[i + 2] == 'f' &&
                   (fmt[i + 1] == '3' || fmt[i + 1] == '6' || fmt[i + 1] == '9')) {
            char digits[16];
            snprintf(digits, sizeof(digits), "%06u000", sub); /* microseconds; no nanoseconds kept */
            size_t nd = (size_t)(fmt[i + 1] - '0');
            memcpy(pattern + k, digits, nd);
            k += nd;
            i += 2;
        } else {
            pattern[k++] = fmt[i];
        }
    }
    pattern[k] = '\0';
    char tmp[256];
    size_t n = strftime(tmp, sizeof(tmp), pattern, &tm);
    put_value(o, style, tmp, n, 0);
}

static const char *protocol(const mc_alog_record_t *r)
{
    if (r->kind != MC_ALOG_HTTP)
        return NULL;
    if (r->http_minor == MC_ALOG_HTTP2)
        return "HTTP/2";
    return r->http_minor == 0 ? "HTTP/1.0" : "HTTP/1.1";
}

/* %GRPC_STATUS%: Envoy's names for the 17 gRPC codes, camel and snake. */
static void put_grpc_status(out_t *o, int st, const mc_alog_record_t *r, const char *fmt, size_t fmt_len)
{
    static const char *const camel[17] = {
        "Ok", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound", "AlreadyExists",
        "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange", "Unimplemented",
        "Internal", "Unavailable", "DataLoss", "Unauthenticated"};
    static const char *const snake[17] = {
        "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
        "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
        "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};
    if (r->kind != MC_ALOG_HTTP || r->grpc_status == 0) {
        put_value(o, st, NULL, 0, 0);
        return;
    }
    unsigned code = r->grpc_status - 1u;
    if (fmt && fmt_len == 6 && memcmp(fmt, "NUMBER", 6) == 0)
        put_num(o, st, code);
    else if (code > 16)
        put_num(o, st, code); /* not a code Envoy names: its number */
    else
        put_str(o, st, fmt && fmt_len == 12 && memcmp(fmt, "SNAKE_STRING", 12) == 0 ? snake[code] : camel[code]);
}

static void put_op(out_t *o, const mc_alog_segment_t *seg, const mc_alog_record_t *r)
{
    int st = seg->style;
    int http = r->kind == MC_ALOG_HTTP;
    switch (seg->op) {
    case MC_ALOG_START_TIME:
        put_time(o, st, r->start_us, seg->text, seg->len);
        break;
    case MC_ALOG_PROTOCOL:
        put_str(o, st, protocol(r));
        break;
    case MC_ALOG_PROTOCOL_OR_TCP:
        put_str(o, st, http ? protocol(r) : "TCP");
        break;
    case MC_ALOG_RESPONSE_CODE:
        put_num(o, st, r->status);
        break;
    case MC_ALOG_RESPONSE_FLAGS: {
        char flags[80];
        size_t n = mc_response_flags_format(r->flags, flags, sizeof(flags));
        put_value(o, st, flags, n, 0);
        break;
    }
    case MC_ALOG_RESPONSE_CODE_DETAILS:
        put_str(o, st, r->details[0] ? r->details : NULL);
        break;
    case MC_ALOG_BYTES_RECEIVED:
        put_num(o, st, r->bytes_rx);
        break;
    case MC_ALOG_BYTES_SENT:
        put_num(o, st, r->bytes_tx);
        break;
    case MC_ALOG_DURATION:
        put_num(o, st, r->duration_us / 1000);
        break;
    case MC_ALOG_DURATION_MS_FLOAT: {
        char tmp[32];
        unsigned frac = (unsigned)(r->duration_us % 1000);
        size_t n = u64_dec(tmp + 24, r->duration_us / 1000);
        char *p = tmp + 24 - n;
        tmp[24] = '.';
        tmp[25] = (char)('0' + frac / 100);
        tmp[26] = (char)('0' + frac / 10 % 10);
        tmp[27] = (char)('0' + frac % 10);
        put_value(o, st, p, n + 4, 1);
        break;
    }
    case MC_ALOG_UPSTREAM_HOST:
        put_str(o, st, r->upstream_host[0] ? r->upstream_host : NULL);
        break;
    case MC_ALOG_UPSTREAM_CLUSTER:
        put_str(o, st, r->upstream_cluster[0] ? r->upstream_cluster : NULL);
        break;
    case MC_ALOG_ROUTE_NAME:
        put_str(o, st, r->route[0] ? r->route : NULL);
        break;
    case MC_ALOG_DOWNSTREAM_REMOTE_ADDRESS:
        put_str(o, st, r->downstream_peer[0] ? r->downstream_peer : NULL);
        break;
    case MC_ALOG_DOWNSTREAM_PEER_URI_SAN:
        put_str(o, st, r->downstream_principal[0] ? r->downstream_principal : NULL);
        break;
    case MC_ALOG_UPSTREAM_PEER_URI_SAN:
        put_str(o, st, r->upstream_principal[0] ? r->upstream_principal : NULL);
        break;
    case MC_ALOG_UPSTREAM_REQUEST_ATTEMPT_COUNT:
        put_num(o, st, r->attempts);
        break;
    case MC_ALOG_TRACE_ID:
        put_str(o, st, r->trace_id[0] ? r->trace_id : NULL);
        break;
    case MC_ALOG_REQ_METHOD:
        put_str(o, st, http && r->method[0] ? r->method : NULL);
        break;
    case MC_ALOG_REQ_PATH:
        put_str(o, st, http && r->path[0] ? r->path : NULL);
        break;
    case MC_ALOG_REQ_AUTHORITY:
        put_str(o, st, http && r->authority[0] ? r->authority : NULL);
        break;
    case MC_ALOG_REQ_USER_AGENT:
        put_str(o, st, http && r->user_agent[0] ? r->user_agent : NULL);
        break;
    case MC_ALOG_REQ_REQUEST_ID:
        put_str(o, st, http && r->request_id[0] ? r->request_id : NULL);
        break;
    case MC_ALOG_REQ_FORWARDED_FOR:
        put_str(o, st, http && r->forwarded_for[0] ? r->forwarded_for : NULL);
        break;
    case MC_ALOG_RESP_UPSTREAM_SERVICE_TIME:
        if (r->upstream_service_us < 0)
            put_value(o, st, NULL, 0, 1);
        else
            put_num(o, st, (unsigned long long)r->upstream_service_us / 1000);
        break;
    case MC_ALOG_GRPC_STATUS:
        put_grpc_status(o, st, r, seg->text, seg->len);
        break;
    default:
        put_value(o, st, NULL, 0, 0);
        break;
    }
}

size_t mc_alog_render(const mc_alog_segment_t *seg, uint32_t n, const mc_alog_record_t *r, char *buf, size_t cap)
{
    out_t o = {buf, 0, cap};
    for (uint32_t i = 0; i < n; i++) {
        if (seg[i].op == MC_ALOG_LITERAL)
            put(&o, seg[i].text, seg[i].len);
        else
            put_op(&o, &seg[i], r);
    }
    return o.len;
}
