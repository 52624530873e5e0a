/*
 * The engine's log writer: one thread that drains the workers' record
 * rings, formats access-log lines (stats/alog_format.c) into a buffer per
 * sink and writes them, and hands sampled requests' records (spans) to
 * Python through a bounded queue. Workers only ever copy a record into
 * their ring; everything else happens here, off the request path.
 *
 * The writer wakes every WRITER_PERIOD_MS while records come, less often
 * while none do; a flush runs a pass in the
 * caller's thread. A drain pass holds `mu` (the rings have one consumer:
 * whoever holds it). Files are opened O_APPEND and written whole buffers at a
 * time; a write error drops that buffer and is counted.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/alog_writer.h"
#include "engine/engine_internal.h"

/* The pause between passes: WRITER_PERIOD_MS while records come (a ring of
 * MC_ALOG_RING holds ~130 ms of one worker at 30k requests/s), doubling up
 * to WRITER_IDLE_MS while none do, so an idle proxy wakes ~12 times/s. */
#define WRITER_PERIOD_MS 10
#define WRITER_IDLE_MS 80
#define SINK_BUF (256u * 1024u)   /* formatted lines waiting for a write */
#define LINE_MAX_BYTES (16u * 1024u)
#define SPAN_QUEUE 2048           /* records waiting for Python's tracer */
#define BATCH 256

typedef struct sink {
    uint32_t log_id;
    int fd;
    mc_alog_segment_t *fmt[2]; /* [0] HTTP records, [1] TCP records */
    uint32_t n_fmt[2];
    char *buf;
    size_t len;
} sink_t;

struct mc_alog_writer {
    mc_engine_t *e;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    pthread_t thread;
    int running, stop;
    sink_t *sinks;
    uint32_t n_sinks, cap_sinks;
    mc_alog_record_t *spans; /* ring of SPAN_QUEUE, NULL until spans are asked for */
    uint64_t span_head, span_tail;
    uint64_t spans_dropped, write_errors;
    mc_alog_record_t *batch;      /* BATCH per worker: one round of every ring */
    const mc_alog_record_t **order; /* the round sorted by start time */
    char line[LINE_MAX_BYTES];
};

/* ---- formats ---------------------------------------------------------------------- */

static mc_alog_segment_t *copy_format(const mc_alog_segment_t *seg, uint32_t n)
{
    mc_alog_segment_t *out = calloc(n ? n : 1, sizeof(*out));
    if (!out)
        return NULL;
    for (uint32_t i = 0; i < n; i++) {
        out[i] = seg[i];
        out[i].text = NULL;
        if (seg[i].text) {
            char *t = malloc(seg[i].len + 1);
            if (!t)
                goto fail;
            memcpy(t, seg[i].text, seg[i].len);
            t[seg[i].len] = '\0';
            out[i].text = t;
        }
    }
    return out;
fail:
    for (uint32_t i = 0; i < n; i++)
        free((char *)out[i].text);
    free(out);
    return NULL;
}

static void free_format(mc_alog_segment_t *seg, uint32_t n)
{
    if (!seg)
        return;
    for (uint32_t i = 0; i < n; i++)
        free((char *)seg[i].text);
    free(seg);
}

/* ---- writing ---------------------------------------------------------------------- */

static void sink_flush(mc_alog_writer_t *w, sink_t *s)
{
    size_t off = 0;
    while (off < s->len) {
        ssize_t n = write(s->fd, s->buf + off, s->len - off);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        w->write_errors++; /* a full disk or a closed pipe: these lines are lost, the proxy is not */
        break;
    }
    s->len = 0;
}

static void sink_put(mc_alog_writer_t *w, sink_t *s, const mc_alog_record_t *r)
{
    int k = r->kind == MC_ALOG_HTTP ? 0 : 1;
    size_t n = mc_alog_render(s->fmt[k], s->n_fmt[k], r, w->line, sizeof(w->line));
    if (s->len + n > SINK_BUF)
        sink_flush(w, s);
    memcpy(s->buf + s->len, w->line, n);
    s->len += n;
}

static void span_put(mc_alog_writer_t *w, const mc_alog_record_t *r)
{
    if (!w->spans)
        return;
    if (w->span_head - w->span_tail >= SPAN_QUEUE) {
        w->spans_dropped++;
        return;
    }
    w->spans[w->span_head++ % SPAN_QUEUE] = *r;
}

static int by_start(const void *a, const void *b)
{
    uint64_t x = (*(const mc_alog_record_t *const *)a)->start_us, y = (*(const mc_alog_record_t *const *)b)->start_us;
    return (x > y) - (x < y);
}

/* Passes over every worker's ring until they are empty; `mu` held. Each
 * round takes up to BATCH records from each ring and writes them in start
 * order, so lines from different workers come out as the requests came in
 * (within a round: exactly; across rounds, which only a backlog makes,
 * nearly). */
static uint32_t drain_pass(mc_alog_writer_t *w)
{
    uint32_t records = 0;
    mc_engine_t *e = w->e;
    if (!w->batch) {
        w->batch = calloc((size_t)BATCH * e->n_workers, sizeof(*w->batch));
        w->order = calloc((size_t)BATCH * e->n_workers, sizeof(*w->order));
        if (!w->batch || !w->order)
            return 0; /* the rings keep their records (and drop when full, counted) */
    }
    for (int round = 0; round < 64; round++) { /* then let span readers and flushes in */
        uint32_t total = 0;
        for (uint32_t i = 0; i < e->n_workers; i++) {
            mc_alog_ring_t *ring = &e->workers[i]->alog;
            if (__atomic_load_n(&ring->slots, __ATOMIC_ACQUIRE))
                total += mc_alog_drain(ring, w->batch + total, BATCH);
        }
        if (total == 0)
            break;
        records += total;
        for (uint32_t k = 0; k < total; k++)
            w->order[k] = &w->batch[k];
        if (e->n_workers > 1)
            qsort(w->order, total, sizeof(*w->order), by_start);
        for (uint32_t k = 0; k < total; k++) {
            const mc_alog_record_t *r = w->order[k];
            if (r->log_id)
                for (uint32_t s = 0; s < w->n_sinks; s++)
                    if (w->sinks[s].log_id == r->log_id)
                        sink_put(w, &w->sinks[s], r);
            if (r->tracer_id)
                span_put(w, r);
        }
    }
    for (uint32_t s = 0; s < w->n_sinks; s++)
        if (w->sinks[s].len)
            sink_flush(w, &w->sinks[s]);
    return records;
}

static void *writer_main(void *arg)
{
    mc_alog_writer_t *w = arg;
    pthread_setname_np(pthread_self(), "mc-log-writer");
    /* SCHED_BATCH: the same share of the CPU, but its wake-ups do not preempt
     * a worker sharing the core mid-request; it runs when the worker waits
     * for I/O or at the end of its slice. Best effort: a refusal leaves the
     * default policy. */
    struct sched_param batch = {0};
    (void)sched_setscheduler(0, SCHED_BATCH, &batch);
    pthread_mutex_lock(&w->mu);
    long pause_ms = WRITER_PERIOD_MS;
    while (!w->stop) {
        if (drain_pass(w))
            pause_ms = WRITER_PERIOD_MS;
        else if (pause_ms < WRITER_IDLE_MS)
            pause_ms *= 2;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += pause_ms * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        if (!w->stop)
            pthread_cond_timedwait(&w->wake, &w->mu, &until);
    }
    drain_pass(w); /* the workers are joined: their last records */
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* ---- the engine's side ------------------------------------------------------------- */

mc_alog_writer_t *mc_alog_writer_new(mc_engine_t *e)
{
    mc_alog_writer_t *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->e = e;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->wake, NULL);
    return w;
}

/* Starts the thread once; mu held. */
static int ensure_running(mc_alog_writer_t *w)
{
    if (w->running)
        return 0;
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0)
        return -1;
    w->running = 1;
    return 0;
}

int mc_alog_writer_add_sink(mc_alog_writer_t *w, uint32_t log_id, const char *path, int fd,
                            const mc_alog_segment_t *http, uint32_t n_http, const mc_alog_segment_t *tcp,
                            uint32_t n_tcp, char *err, size_t errlen)
{
    int own = path ? open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644) : fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (own < 0) {
        snprintf(err, errlen, "%s: %s", path ? path : "access log stream", strerror(errno));
        return -1;
    }
    sink_t s = {.log_id = log_id, .fd = own};
    s.fmt[0] = copy_format(http, n_http);
    s.fmt[1] = copy_format(tcp, n_tcp);
    s.n_fmt[0] = n_http;
    s.n_fmt[1] = n_tcp;
    s.buf = malloc(SINK_BUF);
    pthread_mutex_lock(&w->mu);
    if (s.fmt[0] && s.fmt[1] && s.buf && w->n_sinks == w->cap_sinks) {
        uint32_t cap = w->cap_sinks ? w->cap_sinks * 2 : 8;
        sink_t *grown = realloc(w->sinks, cap * sizeof(*grown));
        if (grown) {
            w->sinks = grown;
            w->cap_sinks = cap;
        }
    }
    if (!s.fmt[0] || !s.fmt[1] || !s.buf || w->n_sinks == w->cap_sinks) {
        pthread_mutex_unlock(&w->mu);
        free_format(s.fmt[0], n_http);
        free_format(s.fmt[1], n_tcp);
        free(s.buf);
        close(own);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    w->sinks[w->n_sinks++] = s;
    int rc = ensure_running(w);
    pthread_mutex_unlock(&w->mu);
    if (rc < 0)
        snprintf(err, errlen, "cannot start the log writer thread");
    return rc;
}

uint32_t mc_alog_writer_spans(mc_alog_writer_t *w, mc_alog_record_t *out, uint32_t max, uint64_t *dropped)
{
    uint32_t n = 0;
    pthread_mutex_lock(&w->mu);
    if (!w->spans) {
        w->spans = calloc(SPAN_QUEUE, sizeof(*w->spans));
        if (w->spans)
            ensure_running(w);
    }
    while (w->span_tail < w->span_head && n < max)
        out[n++] = w->spans[w->span_tail++ % SPAN_QUEUE];
    if (dropped)
        *dropped = w->spans_dropped;
    pthread_mutex_unlock(&w->mu);
    return n;
}

void mc_alog_writer_flush(mc_alog_writer_t *w)
{
    pthread_mutex_lock(&w->mu);
    drain_pass(w); /* here, under mu: the writer thread waits meanwhile */
    pthread_mutex_unlock(&w->mu);
}

uint64_t mc_alog_writer_errors(mc_alog_writer_t *w, uint64_t *spans_dropped)
{
    pthread_mutex_lock(&w->mu);
    uint64_t n = w->write_errors;
    *spans_dropped = w->spans_dropped;
    pthread_mutex_unlock(&w->mu);
    return n;
}

void mc_alog_writer_stop(mc_alog_writer_t *w)
{
    pthread_mutex_lock(&w->mu);
    int running = w->running;
    w->stop = 1;
    pthread_cond_broadcast(&w->wake);
    pthread_mutex_unlock(&w->mu);
    if (running)
        pthread_join(w->thread, NULL);
    w->running = 0;
}

void mc_alog_writer_free(mc_alog_writer_t *w)
{
    if (!w)
        return;
    mc_alog_writer_stop(w);
    for (uint32_t i = 0; i < w->n_sinks; i++) {
        sink_t *s = &w->sinks[i];
        close(s->fd);
        free_format(s->fmt[0], s->n_fmt[0]);
        free_format(s->fmt[1], s->n_fmt[1]);
        free(s->buf);
    }
    free(w->sinks);
    free(w->spans);
    free(w->batch);
    free(w->order);
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->mu);
    free(w);
}
