/* Pool-backed byte buffers: see proxy/http_buf.h. */
#include <stdlib.h>
#include <string.h>

#include "proxy/http_buf.h"

int mc_hbuf_reserve(mc_worker_t *w, mc_hbuf_t *b, uint32_t need)
{
    if (b->data && b->cap - b->end >= need)
        return 0;
    if (b->data && b->start > 0) {
        mc_hbuf_compact(b);
        if (b->cap - b->end >= need)
            return 0;
    }
    uint32_t len = b->data ? b->end - b->start : 0;
    if (!b->data && need <= MC_HTTP_BUF) {
        b->data = mc_pool_get_raw(&w->bufs);
        if (!b->data)
            return -1;
        b->cap = MC_HTTP_BUF;
        b->start = b->end = 0;
        return 0;
    }
    /* Grow past the pool size: a one-off allocation (large heads only). */
    uint32_t cap = len + need;
    char *p = malloc(cap);
    if (!p)
        return -1;
    if (len)
        memcpy(p, b->data + b->start, len);
    mc_hbuf_release(w, b);
    b->data = p;
    b->cap = cap;
    b->start = 0;
    b->end = len;
    return 0;
}

void mc_hbuf_release(mc_worker_t *w, mc_hbuf_t *b)
{
    if (b->data) {
        if (b->cap == MC_HTTP_BUF)
            mc_pool_put(&w->bufs, b->data);
        else
            free(b->data);
    }
    b->data = NULL;
    b->cap = b->start = b->end = 0;
}

void mc_hbuf_compact(mc_hbuf_t *b)
{
    if (b->start == 0)
        return;
    uint32_t len = b->end - b->start;
    if (len)
        memmove(b->data, b->data + b->start, len);
    b->start = 0;
    b->end = len;
}

int mc_hbuf_write(mc_worker_t *w, mc_hbuf_t *b, mc_stream_t *st, uint8_t *writable, uint64_t *sent)
{
    *sent = 0;
    while (mc_hbuf_len(b)) {
        if (!*writable)
            return 0;
        ssize_t n = mc_stream_write(st, b->data + b->start, mc_hbuf_len(b));
        if (n > 0) {
            b->start += (uint32_t)n;
            *sent += (uint64_t)n;
        } else if (n == MC_IO_AGAIN) {
            *writable = 0;
            return 0;
        } else {
            return -1;
        }
    }
    mc_hbuf_release(w, b);
    return 1;
}
