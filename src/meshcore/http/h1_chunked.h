/*
 * Chunked body scanner (RFC 9112 §7.1): validates a chunked message body as
 * it streams through, so the proxy can forward the bytes verbatim and know
 * exactly where the body ends. No allocation, no buffering: the state is a
 * few integers, and input may be split anywhere (one byte at a time works).
 *
 * Grammar accepted, nothing more:
 *   chunked-body = *chunk last-chunk trailer-section CRLF
 *   chunk        = 1*HEXDIG *chunk-ext CRLF chunk-data CRLF
 *   last-chunk   = 1*"0" *chunk-ext CRLF
 *   chunk-ext    = ";" token [ "=" ( token / quoted-string ) ]
 *   trailer      = *( field-name ":" OWS field-value OWS CRLF )
 * No whitespace anywhere in a chunk-size line (the BWS RFC 9112 tolerates
 * around ';' and '=' is rejected: lenient chunk-size parsing is a classic
 * smuggling vector). Chunk sizes above 2^60 are rejected, as are chunk-size
 * lines over max_line bytes and trailer sections over max_trailer bytes.
 */
#ifndef MESHCORE_H1_CHUNKED_H
#define MESHCORE_H1_CHUNKED_H

#include <stdint.h>
#include <sys/types.h>

#define MC_H1_CHUNKED_MAX_SIZE (1ull << 60)
#define MC_H1_CHUNKED_MAX_LINE 4096u            /* chunk-size line incl. extensions, excl. CRLF */
#define MC_H1_CHUNKED_MAX_TRAILER (60u * 1024u) /* trailer section incl. its final CRLF */

typedef struct mc_h1_chunked {
    uint64_t remaining;   /* chunk size being read, then data bytes left in the chunk */
    uint64_t data_bytes;  /* decoded data bytes so far (stats) */
    uint32_t count;       /* bytes of the current chunk-size line / of the trailer section */
    uint32_t max_line;    /* limits, set by init; the caller may lower them after */
    uint32_t max_trailer;
    uint8_t state;
    const char *error; /* sticky reason once malformed */
} mc_h1_chunked_t;

void mc_h1_chunked_init(mc_h1_chunked_t *c);

/* Scans the next len bytes of a chunked body. Returns how many of them
 * belong to the body (<= len): all of them until the body ends; when it
 * ends, *done is set and the count stops right after the final CRLF, so
 * pipelined bytes after it are left alone. Further calls after the end
 * return 0 with *done set. Returns -1 if the body is malformed, with *reason
 * (may be NULL) a static string saying why; the error is sticky. */
ssize_t mc_h1_chunked_scan(mc_h1_chunked_t *c, const char *buf, size_t len, int *done, const char **reason);

/* Chunk-data bytes that come next in the input before any framing byte: 0
 * while the scanner is inside a chunk-size line, a CRLF or the trailers.
 * A decoder uses it to tell payload from framing (see the proxy's
 * HTTP/1.0 dechunking). */
uint64_t mc_h1_chunked_data_next(const mc_h1_chunked_t *c);

/* 1 while the scanner is inside the trailer section (the next byte belongs
 * to it): an HTTP/2 codec collects the trailer fields from there. */
int mc_h1_chunked_in_trailers(const mc_h1_chunked_t *c);

#endif
