/*
 * HTTP/1.1 message heads (RFC 9110/9112): request line or status line plus
 * the header section, parsed in one pass into zero-copy views.
 *
 * Ownership: every pointer the parser fills in (method, target, path, query,
 * authority, header names and values, reason phrase) points into the
 * caller's buffer, except the path of an absolute-form target with an empty
 * path, which points at a static "/". The views live as long as the buffer.
 * Header slots come from the caller; nothing is allocated.
 *
 * The parsers are stateless, picohttpparser-style: call again on the whole
 * buffer when more bytes arrive. A prefix of a message never yields a
 * different verdict than the whole message: it yields -2 or the same answer.
 *
 * Returns (both parsers): the head's length in bytes (> 0, including leading
 * empty lines and the final CRLF) when the head is complete; MC_H1_NEED_MORE
 * (-2) when more bytes are needed; MC_H1_ERROR (-1) when the head is
 * malformed, too large or unsupported. Output fields are meaningful only on a
 * positive return.
 */
#ifndef MESHCORE_H1_PARSER_H
#define MESHCORE_H1_PARSER_H

#include <stddef.h>
#include <stdint.h>

#define MC_H1_ERROR (-1)
#define MC_H1_NEED_MORE (-2)

/* Defaults: Envoy's max_request_headers_kb (60) and max_headers_count (100);
 * 8 KiB for the request-target, like nginx's large_client_header_buffers
 * and Apache's LimitRequestLine. */
#define MC_H1_DEFAULT_MAX_HEAD_BYTES (60 * 1024)
#define MC_H1_DEFAULT_MAX_TARGET_BYTES (8 * 1024)
#define MC_H1_DEFAULT_MAX_HEADERS 100
/* Empty lines (CRLF) tolerated before a request or status line (RFC 9112
 * §2.2); one more is an error. */
#define MC_H1_MAX_LEADING_CRLF 4

typedef struct mc_h1_header {
    const char *name;
    size_t name_len;
    const char *value; /* leading and trailing OWS removed */
    size_t value_len;
} mc_h1_header_t;

typedef struct mc_h1_limits {
    size_t max_head_bytes;   /* whole head incl. leading CRLFs; over it: 431 (502 upstream) */
    size_t max_target_bytes; /* request-target; over it: 414 */
    size_t max_headers;      /* header fields; over it: 431 (502 upstream) */
} mc_h1_limits_t;

/* Used when a parser is given NULL limits. */
extern const mc_h1_limits_t mc_h1_default_limits;

enum {
    MC_H1_BODY_NONE,
    MC_H1_BODY_LENGTH,     /* content_length bytes follow (may be 0) */
    MC_H1_BODY_CHUNKED,    /* scan with h1_chunked.h */
    MC_H1_BODY_UNTIL_CLOSE /* responses only: body ends when upstream closes */
};

enum {
    MC_H1_FORM_ORIGIN,    /* /path?query */
    MC_H1_FORM_ABSOLUTE,  /* http://authority/path?query */
    MC_H1_FORM_AUTHORITY, /* host:port, CONNECT only */
    MC_H1_FORM_ASTERISK   /* *, OPTIONS only */
};

typedef struct mc_h1_request {
    const char *method;
    size_t method_len;
    const char *target; /* as sent */
    size_t target_len;
    const char *scheme; /* absolute-form only ("http"/"https" as sent), else NULL */
    size_t scheme_len;
    const char *path; /* without the query; "*" for asterisk-form, NULL for authority-form */
    size_t path_len;
    const char *query; /* after '?', without it; NULL when the target has no '?' */
    size_t query_len;
    const char *authority; /* from the target (absolute/authority-form), else the Host value; */
    size_t authority_len;  /* may be empty; NULL for an HTTP/1.0 request without Host */
    int minor_version;     /* 0 or 1 */
    int form;              /* MC_H1_FORM_* */
    mc_h1_header_t *headers;
    size_t n_headers; /* in: capacity of headers[]; out (only on success): count */
    int body;         /* MC_H1_BODY_NONE, _LENGTH or _CHUNKED */
    uint64_t content_length;
    unsigned keep_alive : 1;
    unsigned expect_continue : 1; /* Expect: 100-continue on HTTP/1.1 */
    unsigned upgrade : 1;         /* HTTP/1.1, Connection: upgrade and an Upgrade header */
    unsigned connect : 1;         /* method is CONNECT */
    unsigned te_trailers : 1;     /* TE: trailers (gRPC) */
    unsigned conn_options : 1;    /* Connection names more than close/keep-alive/upgrade:
                                     strip those fields too (mc_h1_connection_lists) */
} mc_h1_request_t;

/* Parses a request head. Limits may be NULL (defaults); the effective header
 * limit is min(limits->max_headers, req->n_headers). On MC_H1_ERROR, *status
 * is the status to answer (400, 414, 417, 431, 501 or 505) and *reason a
 * static string saying why; both out params may be NULL. A limit is enforced
 * as soon as it is crossed, without waiting for the rest of the line. */
int mc_h1_parse_request(const char *buf, size_t len, mc_h1_request_t *req, const mc_h1_limits_t *limits,
                        int *status, const char **reason);

typedef struct mc_h1_response {
    int minor_version;
    int status; /* 100-599 */
    const char *reason;
    size_t reason_len;
    mc_h1_header_t *headers;
    size_t n_headers; /* in: capacity; out (only on success): count */
    int body;         /* MC_H1_BODY_* */
    uint64_t content_length; /* the header's value even when body is NONE (HEAD, 304) */
    unsigned keep_alive : 1;
    unsigned upgrade : 1; /* 101 Switching Protocols: the connection is now a tunnel */
    unsigned conn_options : 1;
} mc_h1_response_t;

/* What the response answers, for framing (RFC 9112 §6.3). 1 means "HEAD",
 * so a plain boolean head_request works. */
#define MC_H1_TO_HEAD 1u
#define MC_H1_TO_CONNECT 2u /* a 2xx then has no body: it opens the tunnel */

/* Parses a response head. On MC_H1_ERROR the proxy answers 502; *reason
 * (may be NULL) says why. 1xx/204/304 and responses to HEAD have no body; no
 * Content-Length and no Transfer-Encoding means MC_H1_BODY_UNTIL_CLOSE (and
 * keep_alive = 0). */
int mc_h1_parse_response(const char *buf, size_t len, mc_h1_response_t *resp, unsigned request_flags,
                         const mc_h1_limits_t *limits, const char **reason);

/* ASCII case-insensitive equality of two tokens. */
int mc_h1_token_eq(const char *a, size_t a_len, const char *b, size_t b_len);

/* First header named name (case-insensitive), or NULL. */
const mc_h1_header_t *mc_h1_find_header(const mc_h1_header_t *headers, size_t n, const char *name,
                                        size_t name_len);

/* 1 if the comma-separated list value contains tok as an element (an
 * element's leading token, case-insensitive; parameters ignored). */
int mc_h1_list_has_token(const char *value, size_t value_len, const char *tok, size_t tok_len);

/* 1 if name is one of the fixed hop-by-hop fields: Connection, Keep-Alive,
 * Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade. */
int mc_h1_is_hop_by_hop(const char *name, size_t name_len);

/* 1 if some Connection header among headers lists name as an option (so the
 * field is hop-by-hop for this message). Only needed when conn_options. */
int mc_h1_connection_lists(const mc_h1_header_t *headers, size_t n, const char *name, size_t name_len);

/* Both of the above: the proxy must not forward this field. */
int mc_h1_hop_by_hop(const mc_h1_header_t *headers, size_t n, const char *name, size_t name_len);

/* Character classes shared with h1_chunked.c (one table lookup per byte). */
#define MC_H1_CT_TCHAR 0x01  /* token character (RFC 9110 §5.6.2) */
#define MC_H1_CT_FIELD 0x02  /* allowed in a field value: HTAB, SP, VCHAR, obs-text */
#define MC_H1_CT_TARGET 0x04 /* request-target: 0x21-0x7E except '#' */
#define MC_H1_CT_HOST 0x08   /* reg-name: unreserved, sub-delims, '%' */
#define MC_H1_CT_HEX 0x10
#define MC_H1_CT_DIGIT 0x20
#define MC_H1_CT_QDTEXT 0x40 /* inside a quoted-string, unescaped */
extern const uint8_t mc_h1_ctype[256];

#endif
