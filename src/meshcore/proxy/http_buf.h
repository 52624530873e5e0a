/*
 * Byte buffers of the HTTP proxy: data[start, end) is unread. Backed by the
 * worker's pool of 16 KiB buffers; a head larger than that gets a one-off
 * larger allocation (cap != MC_HTTP_BUF), returned when released.
 */
#ifndef MESHCORE_PROXY_HTTP_BUF_H
#define MESHCORE_PROXY_HTTP_BUF_H

#include <stdint.h>

#include "net/stream.h"
#include "worker/worker.h"

#define MC_HTTP_BUF 16384u /* the worker's pooled buffer size */

typedef struct mc_hbuf {
    char *data;
    uint32_t cap, start, end;
} mc_hbuf_t;

/* Room for `need` more bytes after `end` (compacting or growing). */
int mc_hbuf_reserve(mc_worker_t *w, mc_hbuf_t *b, uint32_t need);
void mc_hbuf_release(mc_worker_t *w, mc_hbuf_t *b);
static inline uint32_t mc_hbuf_len(const mc_hbuf_t *b)
{
    return b->end - b->start;
}
/* Writes the unread bytes to st until none are left (the buffer goes back:
 * 1) or the socket is full (*writable cleared: 0); -1 on an error. *sent:
 * the bytes written, for the caller's counter. */
int mc_hbuf_write(mc_worker_t *w, mc_hbuf_t *b, mc_stream_t *st, uint8_t *writable, uint64_t *sent);
/* Moves unread bytes to the front so `end` has room to grow. */
void mc_hbuf_compact(mc_hbuf_t *b);

#endif
