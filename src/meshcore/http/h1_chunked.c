/*
 * Chunked body scanner; see http/h1_chunked.h for the grammar it accepts.
 *
 * Theory of operation: one state per position in the grammar, advanced one
 * byte at a time, except chunk data, which is skipped in bulk. Every verdict
 * is taken on the byte that decides it, with no lookahead, so the same
 * bytes give the same answer however they are split across calls. The only
 * memory is the state, the chunk size (or the data left in the chunk) and a
 * byte count bounding the current chunk-size line or the trailer section;
 * nothing grows with the input.
 *
 * Trailer fields are checked like header fields (token name, colon right
 * after it, no obs-fold, no CTL but HTAB in values, CRLF only) but not
 * interpreted: the proxy forwards them as they are.
 */
#include "http/h1_chunked.h"
#include "http/h1_parser.h"

enum {
    /* chunk-size line; the line limit applies to these states */
    S_SIZE0,      /* first hex digit */
    S_SIZE,       /* hex digit, ';' or CR */
    S_EXT_NAME0,  /* first tchar of an extension name */
    S_EXT_NAME,   /* tchar, '=', ';' or CR */
    S_EXT_VAL0,   /* tchar or '"' */
    S_EXT_TOKEN,  /* tchar, ';' or CR */
    S_EXT_QUOTED, /* qdtext, '\\' or '"' */
    S_EXT_QPAIR,  /* the escaped byte */
    S_EXT_AFTERQ, /* ';' or CR */
    S_SIZE_LF,
    S_DATA,
    S_DATA_CR,
    S_DATA_LF,
    /* trailer section; the trailer limit applies from here to S_END_LF */
    S_TR_LINE0, /* tchar starts a field, CR ends the section */
    S_TR_NAME,  /* tchar or ':' */
    S_TR_VALUE, /* field bytes or CR */
    S_TR_LF,
    S_END_LF,
    S_DONE,
    S_ERROR
};

#define IS(ch, cls) (mc_h1_ctype[(ch)] & (cls))

void mc_h1_chunked_init(mc_h1_chunked_t *c)
{
    c->remaining = 0;
    c->data_bytes = 0;
    c->count = 0;
    c->max_line = MC_H1_CHUNKED_MAX_LINE;
    c->max_trailer = MC_H1_CHUNKED_MAX_TRAILER;
    c->state = S_SIZE0;
    c->error = NULL;
}

uint64_t mc_h1_chunked_data_next(const mc_h1_chunked_t *c)
{
    return c->state == S_DATA ? c->remaining : 0;
}

int mc_h1_chunked_in_trailers(const mc_h1_chunked_t *c)
{
    return c->state >= S_TR_LINE0 && c->state <= S_END_LF;
}

static inline uint64_t hexval(uint8_t ch)
{
    return ch <= '9' ? (uint64_t)(ch - '0') : (uint64_t)((ch | 0x20) - 'a' + 10);
}

/* Shared verdict for a byte that ends a chunk-size line token wrongly. */
static inline const char *line_error(uint8_t ch, const char *what)
{
    return ch == '\n' ? "bare LF in chunk-size line" : what;
}

ssize_t mc_h1_chunked_scan(mc_h1_chunked_t *c, const char *buf, size_t len, int *done, const char **reason)
{
    const uint8_t *p = (const uint8_t *)buf, *end = p + len;
    unsigned st = c->state;
    const char *why;
    *done = 0;
    if (st == S_ERROR) {
        why = c->error;
        goto fail;
    }
    while (p < end && st != S_DONE) {
        if (st == S_DATA) {
            size_t avail = (size_t)(end - p);
            size_t n = c->remaining < avail ? (size_t)c->remaining : avail;
            p += n;
            c->remaining -= n;
            c->data_bytes += n;
            if (c->remaining == 0)
                st = S_DATA_CR;
            continue;
        }
        uint8_t ch = *p++;
        if (st < S_SIZE_LF) {
            if (ch != '\r' && ++c->count > c->max_line) {
                why = "chunk-size line too long";
                goto fail;
            }
        } else if (st >= S_TR_LINE0 && ++c->count > c->max_trailer) {
            why = "trailer section too large";
            goto fail;
        }
        switch (st) {
        case S_SIZE0:
            if (!IS(ch, MC_H1_CT_HEX)) {
                why = line_error(ch, "invalid chunk size");
                goto fail;
            }
            c->remaining = hexval(ch);
            st = S_SIZE;
            break;
        case S_SIZE:
            if (IS(ch, MC_H1_CT_HEX)) {
                uint64_t d = hexval(ch);
                if (c->remaining > (MC_H1_CHUNKED_MAX_SIZE - d) >> 4) {
                    why = "chunk size too large";
                    goto fail;
                }
                c->remaining = c->remaining << 4 | d;
            } else if (ch == ';') {
                st = S_EXT_NAME0;
            } else if (ch == '\r') {
                st = S_SIZE_LF;
            } else {
                why = line_error(ch, "invalid chunk size");
                goto fail;
            }
            break;
        case S_EXT_NAME0:
            if (!IS(ch, MC_H1_CT_TCHAR)) {
                why = line_error(ch, "invalid chunk extension");
                goto fail;
            }
            st = S_EXT_NAME;
            break;
        case S_EXT_NAME:
        case S_EXT_TOKEN:
            if (IS(ch, MC_H1_CT_TCHAR))
                break;
            if (ch == '=' && st == S_EXT_NAME) {
                st = S_EXT_VAL0;
                break;
            }
            /* fall through */
        case S_EXT_AFTERQ:
            if (ch == ';') {
                st = S_EXT_NAME0;
            } else if (ch == '\r') {
                st = S_SIZE_LF;
            } else {
                why = line_error(ch, "invalid chunk extension");
                goto fail;
            }
            break;
        case S_EXT_VAL0:
            if (IS(ch, MC_H1_CT_TCHAR)) {
                st = S_EXT_TOKEN;
            } else if (ch == '"') {
                st = S_EXT_QUOTED;
            } else {
                why = line_error(ch, "invalid chunk extension");
                goto fail;
            }
            break;
        case S_EXT_QUOTED:
            if (ch == '"') {
                st = S_EXT_AFTERQ;
            } else if (ch == '\\') {
                st = S_EXT_QPAIR;
            } else if (!IS(ch, MC_H1_CT_QDTEXT)) {
                why = line_error(ch, "invalid chunk extension");
                goto fail;
            }
            break;
        case S_EXT_QPAIR:
            if (!IS(ch, MC_H1_CT_FIELD)) {
                why = line_error(ch, "invalid chunk extension");
                goto fail;
            }
            st = S_EXT_QUOTED;
            break;
        case S_SIZE_LF:
            if (ch != '\n') {
                why = "CR not followed by LF";
                goto fail;
            }
            c->count = 0;
            st = c->remaining ? S_DATA : S_TR_LINE0;
            break;
        case S_DATA_CR:
            if (ch != '\r') {
                why = "chunk data not followed by CRLF";
                goto fail;
            }
            st = S_DATA_LF;
            break;
        case S_DATA_LF:
            if (ch != '\n') {
                why = "chunk data not followed by CRLF";
                goto fail;
            }
            c->count = 0;
            st = S_SIZE0;
            break;
        case S_TR_LINE0:
            if (IS(ch, MC_H1_CT_TCHAR)) {
                st = S_TR_NAME;
            } else if (ch == '\r') {
                st = S_END_LF;
            } else {
                why = ch == ' ' || ch == '\t' ? "obs-fold or whitespace before a trailer field"
                    : ch == '\n'              ? "bare LF in trailer section"
                    : ch == ':'               ? "empty trailer field name"
                                              : "invalid character in trailer field name";
                goto fail;
            }
            break;
        case S_TR_NAME:
            if (ch == ':') {
                st = S_TR_VALUE;
            } else if (!IS(ch, MC_H1_CT_TCHAR)) {
                why = ch == ' ' || ch == '\t' ? "whitespace between trailer field name and colon"
                                              : "invalid character in trailer field name";
                goto fail;
            }
            break;
        case S_TR_VALUE:
            if (ch == '\r') {
                st = S_TR_LF;
            } else if (!IS(ch, MC_H1_CT_FIELD)) {
                why = ch == '\n' ? "bare LF in trailer section" : "invalid character in trailer field value";
                goto fail;
            }
            break;
        case S_TR_LF:
        case S_END_LF:
            if (ch != '\n') {
                why = "CR not followed by LF";
                goto fail;
            }
            st = st == S_TR_LF ? S_TR_LINE0 : S_DONE;
            break;
        }
    }
    c->state = (uint8_t)st;
    *done = st == S_DONE;
    return (ssize_t)((const char *)p - buf);

fail:
    c->state = S_ERROR;
    c->error = why;
    if (reason)
        *reason = why;
    return -1;
}
