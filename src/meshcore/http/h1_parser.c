/*
 * HTTP/1.1 head parser; see http/h1_parser.h for the API.
 *
 * Why we write it: the proxy's hot path owns the HTTP/1.1 codec: zero-copy
 * views into the read buffer, no allocation, strictness that closes
 * request-smuggling holes (RFC 9110/9112), and the framing decision in one
 * place.
 *
 * Rules it keeps:
 * - One left-to-right pass; every verdict depends only on bytes already
 *   read, so a prefix of a message answers -2 or exactly what the whole
 *   message answers, and limits fire the moment they are crossed.
 * - CRLF only: a bare LF or a CR without LF anywhere in the head is a 400.
 * - Framing is decided once, after the last field line: Content-Length and
 *   Transfer-Encoding together, a Transfer-Encoding other than exactly
 *   "chunked", differing Content-Lengths or TE on HTTP/1.0 never pass. The
 *   proxy then forwards what it validated, so a peer cannot frame the same
 *   bytes differently.
 * - Field values may hold obs-text (0x80-0xFF) but no CTL except HTAB, and
 *   no DEL; obs-fold, whitespace before the colon and non-token names are
 *   rejected (RFC 9112 §5).
 *
 * Choices where the RFCs leave room:
 * - '#' in a request-target is rejected (a fragment is never part of a
 *   request-target, RFC 9112 §3.2; Envoy rejects it too): the router and the
 *   upstream must not see different paths.
 * - Expect other than 100-continue on HTTP/1.1 is answered 417 (RFC 9110
 *   §10.1.1 allows it): the proxy cannot promise an expectation it does not
 *   know the upstream meets. Expect on HTTP/1.0 is ignored (MUST, same §).
 * - A request transfer coding other than chunked is a 501 (we implement
 *   none, like Envoy) when chunked is absent or last ("gzip", "gzip,
 *   chunked"); RFC 9112 §6.3 would say 400 for a bare "gzip". Either way the
 *   request is refused and the connection closed. "chunked" before another
 *   coding, or twice, is a 400.
 * - Transfer-Encoding list elements must not be empty (stricter than the
 *   #rule tolerance); Connection and Expect lists tolerate empty elements.
 * - Up to MC_H1_MAX_LEADING_CRLF empty lines are skipped before a status
 *   line too (a stray CRLF after a body must not cost a 502).
 * - CONNECT carrying Transfer-Encoding or a non-zero Content-Length is a 400:
 *   its bytes after the head are tunnel bytes, never a body.
 * - Content-Length above 2^63-1 is a 400 (it must fit an off_t).
 * - Responses: the SP after the status code may be missing ("HTTP/1.1
 *   200\r\n", common in the wild); any transfer coding but chunked is
 *   rejected (we do not decode codings, so we cannot re-frame them).
 *
 * Speed: character classes are one table lookup; field values and targets
 * are skipped eight bytes at a time (SWAR) until a byte needs a closer look.
 */
#include <limits.h>
#include <string.h>

#include "http/h1_parser.h"

const mc_h1_limits_t mc_h1_default_limits = {
    .max_head_bytes = MC_H1_DEFAULT_MAX_HEAD_BYTES,
    .max_target_bytes = MC_H1_DEFAULT_MAX_TARGET_BYTES,
    .max_headers = MC_H1_DEFAULT_MAX_HEADERS,
};

/* ---- character tables, built by the preprocessor ---- */

#define IS_DIGIT(c) ((c) >= '0' && (c) <= '9')
#define IS_ALPHA(c) (((c) | 0x20) >= 'a' && ((c) | 0x20) <= 'z')
#define IS_HEX(c) (IS_DIGIT(c) || (((c) | 0x20) >= 'a' && ((c) | 0x20) <= 'f'))
#define IS_TCHAR(c)                                                                            \
    (IS_DIGIT(c) || IS_ALPHA(c) || (c) == '!' || (c) == '#' || (c) == '$' || (c) == '%' ||      \
     (c) == '&' || (c) == '\'' || (c) == '*' || (c) == '+' || (c) == '-' || (c) == '.' ||        \
     (c) == '^' || (c) == '_' || (c) == '`' || (c) == '|' || (c) == '~')
#define IS_FIELD(c) ((c) == '\t' || ((c) >= 0x20 && (c) != 0x7f))
#define IS_TARGET(c) ((c) > 0x20 && (c) < 0x7f && (c) != '#')
#define IS_HOST(c)                                                                             \
    (IS_DIGIT(c) || IS_ALPHA(c) || (c) == '-' || (c) == '.' || (c) == '_' || (c) == '~' ||     \
     (c) == '!' || (c) == '$' || (c) == '&' || (c) == '\'' || (c) == '(' || (c) == ')' ||       \
     (c) == '*' || (c) == '+' || (c) == ',' || (c) == ';' || (c) == '=' || (c) == '%')
#define IS_QDTEXT(c)                                                                           \
    ((c) == '\t' || (c) == ' ' || (c) == 0x21 || ((c) >= 0x23 && (c) <= 0x5b) ||               \
     ((c) >= 0x5d && (c) <= 0x7e) || (c) >= 0x80)

#define CT(c)                                                                                  \
    ((IS_TCHAR(c) ? MC_H1_CT_TCHAR : 0) | (IS_FIELD(c) ? MC_H1_CT_FIELD : 0) |                 \
     (IS_TARGET(c) ? MC_H1_CT_TARGET : 0) | (IS_HOST(c) ? MC_H1_CT_HOST : 0) |                 \
     (IS_HEX(c) ? MC_H1_CT_HEX : 0) | (IS_DIGIT(c) ? MC_H1_CT_DIGIT : 0) |                     \
     (IS_QDTEXT(c) ? MC_H1_CT_QDTEXT : 0))
#define LOW(c) (((c) >= 'A' && (c) <= 'Z') ? (c) + 32 : (c))

#define ROW4(F, c) F(c), F((c) + 1), F((c) + 2), F((c) + 3)
#define ROW16(F, c) ROW4(F, c), ROW4(F, (c) + 4), ROW4(F, (c) + 8), ROW4(F, (c) + 12)
#define ROW64(F, c) ROW16(F, c), ROW16(F, (c) + 16), ROW16(F, (c) + 32), ROW16(F, (c) + 48)
#define ROW256(F) ROW64(F, 0), ROW64(F, 64), ROW64(F, 128), ROW64(F, 192)

const uint8_t mc_h1_ctype[256] = {ROW256(CT)};
static const uint8_t lower[256] = {ROW256(LOW)};

#define U8(c) ((uint8_t)(c))
#define HAS(c, cls) (mc_h1_ctype[U8(c)] & (cls))

/* ---- scanning ---- */

#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

static inline uint64_t load8(const char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* Non-zero iff some byte of x is below n (n <= 128). */
static inline uint64_t has_less(uint64_t x, uint64_t n)
{
    return (x - ONES * n) & ~x & HIGHS;
}

/* Non-zero iff some byte of x equals b. */
static inline uint64_t has_byte(uint64_t x, uint64_t b)
{
    uint64_t y = x ^ (ONES * b);
    return (y - ONES) & ~y & HIGHS;
}

static inline const char *scan_tchar(const char *p, const char *end)
{
    while (p < end && HAS(*p, MC_H1_CT_TCHAR))
        p++;
    return p;
}

static inline const char *scan_field(const char *p, const char *end)
{
    while (end - p >= 8) {
        uint64_t v = load8(p);
        if (has_less(v, 0x20) | has_byte(v, 0x7f))
            break;
        p += 8;
    }
    while (p < end && HAS(*p, MC_H1_CT_FIELD))
        p++;
    return p;
}

static inline const char *scan_target(const char *p, const char *end)
{
    while (end - p >= 8) {
        uint64_t v = load8(p);
        if ((v & HIGHS) | has_less(v, 0x21) | has_byte(v, 0x7f) | has_byte(v, '#'))
            break;
        p += 8;
    }
    while (p < end && HAS(*p, MC_H1_CT_TARGET))
        p++;
    return p;
}

static inline const char *skip_ows(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

/* p at '"': returns the byte after the closing quote, or NULL. */
static const char *skip_quoted(const char *p, const char *end)
{
    for (p++; p < end; p++) {
        if (*p == '"')
            return p + 1;
        if (*p == '\\') {
            if (++p == end || !HAS(*p, MC_H1_CT_FIELD))
                return NULL;
        } else if (!HAS(*p, MC_H1_CT_QDTEXT)) {
            return NULL;
        }
    }
    return NULL;
}

/* s (n bytes) equals the lowercase literal lit, ignoring case. */
static inline int name_is(const char *s, const char *lit, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (lower[U8(s[i])] != U8(lit[i]))
            return 0;
    return 1;
}

int mc_h1_token_eq(const char *a, size_t a_len, const char *b, size_t b_len)
{
    if (a_len != b_len)
        return 0;
    for (size_t i = 0; i < a_len; i++)
        if (lower[U8(a[i])] != lower[U8(b[i])])
            return 0;
    return 1;
}

/* Next element of a comma list (empty elements skipped, commas inside
 * quoted-strings kept), trimmed. Returns 0 when the list is exhausted. */
static int next_element(const char **pp, const char *end, const char **el, size_t *el_len)
{
    const char *p = *pp;
    while (p < end && (*p == ',' || *p == ' ' || *p == '\t'))
        p++;
    if (p == end) {
        *pp = p;
        return 0;
    }
    const char *s = p;
    int quoted = 0;
    for (; p < end; p++) {
        if (quoted) {
            if (*p == '\\' && p + 1 < end)
                p++;
            else if (*p == '"')
                quoted = 0;
        } else if (*p == '"') {
            quoted = 1;
        } else if (*p == ',') {
            break;
        }
    }
    const char *t = p;
    while (t > s && (t[-1] == ' ' || t[-1] == '\t'))
        t--;
    *el = s;
    *el_len = (size_t)(t - s);
    *pp = p;
    return 1;
}

int mc_h1_list_has_token(const char *value, size_t value_len, const char *tok, size_t tok_len)
{
    const char *p = value, *end = value + value_len, *el;
    size_t n;
    while (next_element(&p, end, &el, &n)) {
        const char *t = scan_tchar(el, el + n);
        if (!mc_h1_token_eq(el, (size_t)(t - el), tok, tok_len))
            continue;
        t = skip_ows(t, el + n);
        if (t == el + n || *t == ';')
            return 1;
    }
    return 0;
}

const mc_h1_header_t *mc_h1_find_header(const mc_h1_header_t *headers, size_t n, const char *name,
                                        size_t name_len)
{
    for (size_t i = 0; i < n; i++)
        if (mc_h1_token_eq(headers[i].name, headers[i].name_len, name, name_len))
            return &headers[i];
    return NULL;
}

int mc_h1_is_hop_by_hop(const char *name, size_t n)
{
    switch (n) {
    case 2:
        return name_is(name, "te", 2);
    case 7:
        return name_is(name, "trailer", 7) || name_is(name, "upgrade", 7);
    case 10:
        return name_is(name, "connection", 10) || name_is(name, "keep-alive", 10);
    case 16:
        return name_is(name, "proxy-connection", 16);
    case 17:
        return name_is(name, "transfer-encoding", 17);
    }
    return 0;
}

int mc_h1_connection_lists(const mc_h1_header_t *headers, size_t n, const char *name, size_t name_len)
{
    for (size_t i = 0; i < n; i++)
        if (headers[i].name_len == 10 && name_is(headers[i].name, "connection", 10) &&
            mc_h1_list_has_token(headers[i].value, headers[i].value_len, name, name_len))
            return 1;
    return 0;
}

int mc_h1_hop_by_hop(const mc_h1_header_t *headers, size_t n, const char *name, size_t name_len)
{
    return mc_h1_is_hop_by_hop(name, name_len) || mc_h1_connection_lists(headers, n, name, name_len);
}

/* ---- parse state ---- */

typedef struct perr {
    int status;
    const char *reason;
} perr_t;

#define FAIL(e, st, why)                                                                       \
    do {                                                                                       \
        (e)->status = (st);                                                                    \
        (e)->reason = (why);                                                                   \
        return MC_H1_ERROR;                                                                    \
    } while (0)
#define NEED(p, end)                                                                           \
    do {                                                                                       \
        if ((p) == (end))                                                                      \
            return MC_H1_NEED_MORE;                                                            \
    } while (0)

/* What the semantic fields said, gathered across the header section. */
typedef struct fields {
    uint64_t cl;
    const char *host;
    size_t host_len;
    uint32_t te_count, te_chunked, host_count;
    unsigned cl_seen : 1, te_last_chunked : 1, te_other : 1;
    unsigned conn_close : 1, conn_ka : 1, conn_upgrade : 1, conn_options : 1;
    unsigned has_upgrade : 1, expect_continue : 1, expect_other : 1, te_trailers : 1;
} fields_t;

static int skip_empty_lines(const char **pp, const char *end, perr_t *e)
{
    const char *p = *pp;
    for (int n = 0;; n++) {
        NEED(p, end);
        if (*p == '\n')
            FAIL(e, 400, "bare LF line ending");
        if (*p != '\r')
            break;
        NEED(p + 1, end);
        if (p[1] != '\n')
            FAIL(e, 400, "CR not followed by LF");
        if (n == MC_H1_MAX_LEADING_CRLF)
            FAIL(e, 400, "too many empty lines before the start line");
        p += 2;
    }
    *pp = p;
    return 0;
}

/* "HTTP/" DIGIT "." DIGIT; *ver = major * 10 + minor. */
static int parse_version(const char **pp, const char *end, int *ver, perr_t *e)
{
    const char *p = *pp;
    for (int i = 0; i < 8; i++, p++) {
        NEED(p, end);
        if (i == 5 || i == 7) {
            if (!IS_DIGIT(*p))
                FAIL(e, 400, "malformed HTTP version");
        } else if (*p != "HTTP/1.1"[i]) {
            FAIL(e, 400, "malformed HTTP version");
        }
    }
    *ver = (p[-3] - '0') * 10 + (p[-1] - '0');
    *pp = p;
    return 0;
}

/* CRLF ending the start line; what names the error for any other byte. */
static int parse_eol(const char **pp, const char *end, const char *what, perr_t *e)
{
    const char *p = *pp;
    NEED(p, end);
    if (*p != '\r')
        FAIL(e, 400, *p == '\n' ? "bare LF line ending" : what);
    NEED(p + 1, end);
    if (p[1] != '\n')
        FAIL(e, 400, "CR not followed by LF");
    *pp = p + 2;
    return 0;
}

/* host [ ":" port ], host = IP-literal / reg-name (IPv4 is a reg-name). */
static int valid_authority(const char *p, size_t n, int need_port)
{
    const char *end = p + n, *s;
    if (p < end && *p == '[') {
        int colon = 0;
        for (s = ++p; p < end && *p != ']'; p++) {
            if (!HAS(*p, MC_H1_CT_HEX) && *p != ':' && *p != '.')
                return 0;
            colon |= *p == ':';
        }
        if (p == end || !colon || p - s < 2)
            return 0;
        p++;
    } else {
        for (s = p; p < end && HAS(*p, MC_H1_CT_HOST);) {
            if (*p == '%') {
                if (end - p < 3 || !HAS(p[1], MC_H1_CT_HEX) || !HAS(p[2], MC_H1_CT_HEX))
                    return 0;
                p += 3;
            } else {
                p++;
            }
        }
        if (p == s)
            return 0;
    }
    if (p == end)
        return !need_port;
    if (*p++ != ':' || end - p > 5)
        return 0;
    if (p == end)
        return !need_port;
    uint32_t port = 0;
    for (; p < end; p++) {
        if (!IS_DIGIT(*p))
            return 0;
        port = port * 10 + (uint32_t)(*p - '0');
    }
    return port <= 65535;
}

static int on_content_length(fields_t *f, const char *p, const char *end, perr_t *e)
{
    for (;;) {
        if (p == end || !IS_DIGIT(*p))
            FAIL(e, 400, "invalid Content-Length");
        uint64_t x = 0;
        for (; p < end && IS_DIGIT(*p); p++) {
            uint64_t d = (uint64_t)(*p - '0');
            if (x > ((uint64_t)INT64_MAX - d) / 10)
                FAIL(e, 400, "Content-Length too large");
            x = x * 10 + d;
        }
        if (f->cl_seen && x != f->cl)
            FAIL(e, 400, "conflicting Content-Length values");
        f->cl = x;
        f->cl_seen = 1;
        if (p == end)
            return 0;
        p = skip_ows(p, end);
        if (p == end || *p != ',')
            FAIL(e, 400, "invalid Content-Length");
        p = skip_ows(p + 1, end);
    }
}

/* 1#transfer-coding, coding = token *( OWS ";" OWS token BWS "=" BWS
 * ( token / quoted-string ) ). Only the list's shape is judged here; which
 * codings pass is decided in te_verdict once all field lines are in. */
static int on_transfer_encoding(fields_t *f, const char *p, const char *end, perr_t *e)
{
    for (;;) {
        const char *tok = p;
        p = scan_tchar(p, end);
        if (p == tok)
            FAIL(e, 400, "invalid Transfer-Encoding");
        int chunked = p - tok == 7 && name_is(tok, "chunked", 7), params = 0;
        p = skip_ows(p, end);
        while (p < end && *p == ';') {
            params = 1;
            const char *s = p = skip_ows(p + 1, end);
            if ((p = scan_tchar(p, end)) == s)
                FAIL(e, 400, "invalid Transfer-Encoding");
            p = skip_ows(p, end);
            if (p == end || *p != '=')
                FAIL(e, 400, "invalid Transfer-Encoding");
            s = p = skip_ows(p + 1, end);
            if (p < end && *p == '"')
                p = skip_quoted(p, end);
            else if ((p = scan_tchar(p, end)) == s)
                p = NULL;
            if (!p)
                FAIL(e, 400, "invalid Transfer-Encoding");
            p = skip_ows(p, end);
        }
        if (chunked && params)
            FAIL(e, 400, "chunked with parameters");
        f->te_count++;
        f->te_chunked += (uint32_t)chunked;
        f->te_other |= !chunked;
        f->te_last_chunked = (unsigned)chunked;
        if (p == end)
            return 0;
        if (*p != ',')
            FAIL(e, 400, "invalid Transfer-Encoding");
        p = skip_ows(p + 1, end);
    }
}

static int te_verdict(const fields_t *f, perr_t *e)
{
    if (f->te_chunked > 1)
        FAIL(e, 400, "chunked applied more than once");
    if (f->te_chunked && !f->te_last_chunked)
        FAIL(e, 400, "chunked is not the final transfer coding");
    if (f->te_other)
        FAIL(e, 501, "unsupported transfer coding");
    return 0;
}

static int on_connection(fields_t *f, const char *p, const char *end, perr_t *e)
{
    const char *el;
    size_t n;
    while (next_element(&p, end, &el, &n)) {
        if (scan_tchar(el, el + n) != el + n)
            FAIL(e, 400, "invalid Connection header");
        if (n == 5 && name_is(el, "close", 5))
            f->conn_close = 1;
        else if (n == 10 && name_is(el, "keep-alive", 10))
            f->conn_ka = 1;
        else if (n == 7 && name_is(el, "upgrade", 7))
            f->conn_upgrade = 1;
        else
            f->conn_options = 1;
    }
    return 0;
}

static void on_expect(fields_t *f, const char *p, const char *end)
{
    const char *el;
    size_t n;
    while (next_element(&p, end, &el, &n)) {
        if (n == 12 && name_is(el, "100-continue", 12))
            f->expect_continue = 1;
        else
            f->expect_other = 1;
    }
}

static int on_host(fields_t *f, const char *v, size_t n, perr_t *e)
{
    if (++f->host_count > 1)
        FAIL(e, 400, "multiple Host headers");
    if (n && !valid_authority(v, n, 0))
        FAIL(e, 400, "invalid Host header");
    f->host = v;
    f->host_len = n;
    return 0;
}

/* Dispatch on the fields that steer framing and connection handling. */
static int on_field(fields_t *f, const mc_h1_header_t *h, int is_request, perr_t *e)
{
    const char *v = h->value, *end = h->value + h->value_len;
    switch (h->name_len) {
    case 2:
        if (is_request && name_is(h->name, "te", 2))
            f->te_trailers |= (unsigned)mc_h1_list_has_token(v, h->value_len, "trailers", 8);
        break;
    case 4:
        if (is_request && name_is(h->name, "host", 4))
            return on_host(f, v, h->value_len, e);
        break;
    case 6:
        if (is_request && name_is(h->name, "expect", 6))
            on_expect(f, v, end);
        break;
    case 7:
        if (name_is(h->name, "upgrade", 7))
            f->has_upgrade = 1;
        break;
    case 10:
        if (name_is(h->name, "connection", 10))
            return on_connection(f, v, end, e);
        break;
    case 14:
        if (name_is(h->name, "content-length", 14))
            return on_content_length(f, v, end, e);
        break;
    case 17:
        if (name_is(h->name, "transfer-encoding", 17))
            return on_transfer_encoding(f, v, end, e);
        break;
    }
    return 0;
}

/* Field lines up to and including the empty line. */
static int parse_fields(const char **pp, const char *end, mc_h1_header_t *hdrs, size_t cap, size_t *count,
                        fields_t *f, int is_request, perr_t *e)
{
    const char *p = *pp;
    size_t n = 0;
    for (;;) {
        NEED(p, end);
        const char *name = p;
        if (!HAS(*p, MC_H1_CT_TCHAR)) {
            switch (*p) {
            case '\r':
                NEED(p + 1, end);
                if (p[1] != '\n')
                    FAIL(e, 400, "CR not followed by LF");
                *pp = p + 2;
                *count = n;
                return 0;
            case ' ':
            case '\t':
                FAIL(e, 400, "obs-fold or whitespace before a field line");
            case '\n':
                FAIL(e, 400, "bare LF line ending");
            case ':':
                FAIL(e, 400, "empty field name");
            default:
                FAIL(e, 400, "invalid character in field name");
            }
        }
        if (n == cap)
            FAIL(e, 431, "too many header fields");
        p = scan_tchar(p + 1, end);
        NEED(p, end);
        if (*p != ':') {
            if (*p == ' ' || *p == '\t')
                FAIL(e, 400, "whitespace between field name and colon");
            if (*p == '\r' || *p == '\n')
                FAIL(e, 400, "field line without a colon");
            FAIL(e, 400, "invalid character in field name");
        }
        mc_h1_header_t *h = &hdrs[n++];
        h->name = name;
        h->name_len = (size_t)(p - name);
        const char *v = skip_ows(p + 1, end);
        p = scan_field(v, end);
        NEED(p, end);
        if (*p != '\r')
            FAIL(e, 400, *p == '\n' ? "bare LF line ending" : "invalid character in field value");
        const char *ve = p;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        NEED(p + 1, end);
        if (p[1] != '\n')
            FAIL(e, 400, "CR not followed by LF");
        p += 2;
        h->value = v;
        h->value_len = (size_t)(ve - v);
        if (on_field(f, h, is_request, e))
            return MC_H1_ERROR;
    }
}

/* ---- requests ---- */

static const char root_path[] = "/";

static void split_path(mc_h1_request_t *req, const char *p, const char *end)
{
    const char *q = memchr(p, '?', (size_t)(end - p));
    req->path = p;
    req->path_len = (size_t)((q ? q : end) - p);
    if (q) {
        req->query = q + 1;
        req->query_len = (size_t)(end - q - 1);
    }
}

/* The four target forms (RFC 9112 §3.2), each tied to its method. */
static int parse_target(mc_h1_request_t *req, perr_t *e)
{
    const char *t = req->target, *end = t + req->target_len;
    size_t n = req->target_len;
    req->scheme = req->path = req->query = req->authority = NULL;
    req->scheme_len = req->path_len = req->query_len = req->authority_len = 0;
    req->connect = req->method_len == 7 && memcmp(req->method, "CONNECT", 7) == 0;
    if (req->connect) {
        if (!valid_authority(t, n, 1))
            FAIL(e, 400, "CONNECT needs an authority-form target");
        req->form = MC_H1_FORM_AUTHORITY;
        req->authority = t;
        req->authority_len = n;
        return 0;
    }
    if (*t == '/') {
        req->form = MC_H1_FORM_ORIGIN;
        split_path(req, t, end);
        return 0;
    }
    if (n == 1 && *t == '*') {
        if (req->method_len != 7 || memcmp(req->method, "OPTIONS", 7) != 0)
            FAIL(e, 400, "asterisk-form target is only for OPTIONS");
        req->form = MC_H1_FORM_ASTERISK;
        req->path = t;
        req->path_len = 1;
        return 0;
    }
    size_t sl;
    if (n > 7 && name_is(t, "http://", 7))
        sl = 4;
    else if (n > 8 && name_is(t, "https://", 8))
        sl = 5;
    else
        FAIL(e, 400, "invalid request-target");
    const char *a = t + sl + 3, *p = a;
    while (p < end && *p != '/' && *p != '?')
        p++;
    if (!valid_authority(a, (size_t)(p - a), 0))
        FAIL(e, 400, "invalid authority in request-target");
    req->form = MC_H1_FORM_ABSOLUTE;
    req->scheme = t;
    req->scheme_len = sl;
    req->authority = a;
    req->authority_len = (size_t)(p - a);
    if (p < end && *p == '/') {
        split_path(req, p, end);
    } else {
        req->path = root_path; /* RFC 9112 §3.2.2: an empty path is "/" */
        req->path_len = 1;
        if (p < end) {
            req->query = p + 1;
            req->query_len = (size_t)(end - p - 1);
        }
    }
    return 0;
}

static int finish_request(mc_h1_request_t *req, const fields_t *f, perr_t *e)
{
    int v11 = req->minor_version == 1;
    if (v11 && f->host_count == 0)
        FAIL(e, 400, "missing Host header");
    req->body = MC_H1_BODY_NONE;
    req->content_length = 0;
    if (f->te_count) {
        if (!v11)
            FAIL(e, 400, "Transfer-Encoding in an HTTP/1.0 request");
        if (f->cl_seen)
            FAIL(e, 400, "both Content-Length and Transfer-Encoding");
        if (te_verdict(f, e))
            return MC_H1_ERROR;
        req->body = MC_H1_BODY_CHUNKED;
    } else if (f->cl_seen) {
        req->body = MC_H1_BODY_LENGTH;
        req->content_length = f->cl;
    }
    if (req->connect && (f->te_count || f->cl))
        FAIL(e, 400, "CONNECT with a body");
    if (v11 && f->expect_other)
        FAIL(e, 417, "unsupported expectation");
    if (req->form == MC_H1_FORM_ORIGIN || req->form == MC_H1_FORM_ASTERISK) {
        req->authority = f->host;
        req->authority_len = f->host_len;
    }
    req->keep_alive = v11 ? !f->conn_close : (f->conn_ka && !f->conn_close);
    req->expect_continue = v11 && f->expect_continue;
    req->upgrade = v11 && f->conn_upgrade && f->has_upgrade;
    req->te_trailers = f->te_trailers;
    req->conn_options = f->conn_options;
    return 0;
}

static int parse_request(const char *buf, const char *end, mc_h1_request_t *req, const mc_h1_limits_t *lim,
                         perr_t *e)
{
    const char *p = buf;
    int r, ver;
    if ((r = skip_empty_lines(&p, end, e)) != 0)
        return r;

    const char *m = p;
    p = scan_tchar(p, end);
    NEED(p, end);
    if (*p != ' ' || p == m)
        FAIL(e, 400, "invalid method");
    req->method = m;
    req->method_len = (size_t)(p - m);

    /* Scan at most max_target_bytes, so an overlong target is a 414 the
     * moment its next byte arrives. */
    const char *t = ++p;
    const char *tend = (size_t)(end - t) > lim->max_target_bytes ? t + lim->max_target_bytes : end;
    p = scan_target(t, tend);
    if (p == end)
        return MC_H1_NEED_MORE;
    if (p == tend && HAS(*p, MC_H1_CT_TARGET))
        FAIL(e, 414, "request-target too long");
    if (*p != ' ' || p == t)
        FAIL(e, 400, p == t ? "empty request-target" : "invalid character in request-target");
    req->target = t;
    req->target_len = (size_t)(p - t);
    p++;

    if ((r = parse_version(&p, end, &ver, e)) != 0 || (r = parse_eol(&p, end, "malformed HTTP version", e)) != 0)
        return r;
    if (ver != 10 && ver != 11)
        FAIL(e, 505, "unsupported HTTP version");
    req->minor_version = ver - 10;
    if ((r = parse_target(req, e)) != 0)
        return r;

    fields_t f;
    memset(&f, 0, sizeof(f));
    size_t cap = req->n_headers < lim->max_headers ? req->n_headers : lim->max_headers, n;
    if ((r = parse_fields(&p, end, req->headers, cap, &n, &f, 1, e)) != 0)
        return r;
    if (finish_request(req, &f, e))
        return MC_H1_ERROR;
    req->n_headers = n;
    return (int)(p - buf);
}

/* The whole buffer is never scanned past the head limit: a head that is
 * not complete within it is too large, whatever follows. */
static const char *head_end(const char *buf, size_t len, const mc_h1_limits_t *lim, int *over)
{
    size_t max = lim->max_head_bytes < INT_MAX ? lim->max_head_bytes : INT_MAX;
    *over = len > max;
    return buf + (*over ? max : len);
}

int mc_h1_parse_request(const char *buf, size_t len, mc_h1_request_t *req, const mc_h1_limits_t *limits,
                        int *status, const char **reason)
{
    perr_t e = {0, NULL};
    int over;
    if (!limits)
        limits = &mc_h1_default_limits;
    int r = parse_request(buf, head_end(buf, len, limits, &over), req, limits, &e);
    if (r == MC_H1_NEED_MORE && over) {
        e.status = 431;
        e.reason = "request head too large";
        r = MC_H1_ERROR;
    }
    if (r == MC_H1_ERROR) {
        if (status)
            *status = e.status;
        if (reason)
            *reason = e.reason;
    }
    return r;
}

/* ---- responses ---- */

static int parse_response(const char *buf, const char *end, mc_h1_response_t *resp, unsigned flags,
                          const mc_h1_limits_t *lim, perr_t *e)
{
    const char *p = buf;
    int r, ver, st = 0;
    if ((r = skip_empty_lines(&p, end, e)) != 0 || (r = parse_version(&p, end, &ver, e)) != 0)
        return r;
    if (ver != 10 && ver != 11)
        FAIL(e, 502, "unsupported HTTP version");
    NEED(p, end);
    if (*p++ != ' ')
        FAIL(e, 502, "malformed status line");
    for (int i = 0; i < 3; i++, p++) {
        NEED(p, end);
        if (!IS_DIGIT(*p))
            FAIL(e, 502, "malformed status code");
        st = st * 10 + (*p - '0');
    }
    if (st < 100 || st > 599)
        FAIL(e, 502, "status code out of range");
    NEED(p, end);
    const char *rs = p;
    if (*p == ' ') /* else CRLF must follow: "HTTP/1.1 200\r\n" */
        p = scan_field(rs = p + 1, end);
    if ((r = parse_eol(&p, end, "invalid character in status line", e)) != 0)
        return r;
    resp->minor_version = ver - 10;
    resp->status = st;
    resp->reason = rs;
    resp->reason_len = (size_t)(p - 2 - rs);

    fields_t f;
    memset(&f, 0, sizeof(f));
    size_t cap = resp->n_headers < lim->max_headers ? resp->n_headers : lim->max_headers, n;
    if ((r = parse_fields(&p, end, resp->headers, cap, &n, &f, 0, e)) != 0)
        return r;

    int v11 = ver == 11;
    if (f.te_count) {
        if (!v11)
            FAIL(e, 502, "Transfer-Encoding in an HTTP/1.0 response");
        if (f.cl_seen)
            FAIL(e, 502, "both Content-Length and Transfer-Encoding");
        if (te_verdict(&f, e))
            return MC_H1_ERROR;
    }
    int no_body = (flags & MC_H1_TO_HEAD) || st < 200 || st == 204 || st == 304 ||
                  ((flags & MC_H1_TO_CONNECT) && st < 300);
    resp->content_length = f.cl;
    resp->body = no_body ? MC_H1_BODY_NONE
               : f.te_count ? MC_H1_BODY_CHUNKED
               : f.cl_seen ? MC_H1_BODY_LENGTH
                           : MC_H1_BODY_UNTIL_CLOSE;
    resp->keep_alive = resp->body != MC_H1_BODY_UNTIL_CLOSE &&
                       (v11 ? !f.conn_close : (f.conn_ka && !f.conn_close));
    resp->upgrade = st == 101;
    resp->conn_options = f.conn_options;
    resp->n_headers = n;
    return (int)(p - buf);
}

int mc_h1_parse_response(const char *buf, size_t len, mc_h1_response_t *resp, unsigned request_flags,
                         const mc_h1_limits_t *limits, const char **reason)
{
    perr_t e = {0, NULL};
    int over;
    if (!limits)
        limits = &mc_h1_default_limits;
    int r = parse_response(buf, head_end(buf, len, limits, &over), resp, request_flags, limits, &e);
    if (r == MC_H1_NEED_MORE && over) {
        e.reason = "response head too large";
        r = MC_H1_ERROR;
    }
    if (r == MC_H1_ERROR && reason)
        *reason = e.reason;
    return r;
}
