/*
 * HTTP/2 on a downstream connection (RFC 9113) with libnghttp2: the session,
 * the frames it reads, its streams' request heads and bodies, and the
 * connection's own limits. The codec the streams talk through (responses,
 * local replies, trailers) is proxy/h2_codec.c; limits are in docs/http2.md.
 *
 * Theory of operation. A connection starts as HTTP/1.1 (proxy/h1_server.c)
 * and is handed over here once it is known to speak HTTP/2: codec_type
 * HTTP2, ALPN "h2", or (codec_type AUTO) the client preface as its first
 * bytes. nghttp2 runs inside the worker's loop: bytes read from the socket
 * go to nghttp2_session_mem_recv, frames to send come from
 * nghttp2_session_mem_send and are written straight from nghttp2's buffer
 * (a short write keeps the rest in `out`). The codec only submits frames
 * and asks for a write (mc_h2_want_write), which runs after the event
 * batch: nghttp2 is never entered from inside its own callbacks.
 *
 * Each HTTP/2 stream is an mc_http_stream_t, its request head and body
 * taken from nghttp2's callbacks by proxy/h2_request.c.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "proxy/h1_server.h"
#include "proxy/h2_server.h"

#define STATS(c) ((c)->w->stats)
#define SCOPE(c) ((c)->hcm->scope)

static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

int mc_h2_preface(const char *p, size_t len)
{
    size_t n = sizeof(preface) - 1;
    if (len >= n)
        return memcmp(p, preface, n) == 0;
    return memcmp(p, preface, len) == 0 ? -2 : 0;
}

int mc_h2_wanted(const mc_http_conn_t *c)
{
    if (c->hcm->codec_type == MC_CODEC_HTTP2)
        return 1;
    if (c->hcm->codec_type != MC_CODEC_AUTO || !c->st.ssl)
        return 0;
    const unsigned char *alpn = NULL;
    unsigned int len = 0;
    SSL_get0_alpn_selected(c->st.ssl, &alpn, &len);
    return len == 2 && memcmp(alpn, "h2", 2) == 0;
}

/* ---- the session's books ---------------------------------------------------- */

static void arm_idle(mc_http_conn_t *c)
{
    if (c->hcm->idle_timeout_ns)
        mc_timer_arm(&c->w->loop.timers, &c->timer, c->last_activity + c->hcm->idle_timeout_ns);
}

void mc_h2_detach(mc_http_stream_t *s)
{
    mc_http_conn_t *c = s->conn;
    mc_h2_session_t *h = c->h2;
    if (!s->h2.attached || !h) /* h NULL: the connection is gone (a stream that was complete finishes) */
        return;
    s->h2.attached = 0;
    mc_list_remove(&s->h2.link);
    h->n_streams--;
    if (h->ng) {
        nghttp2_session_set_stream_user_data(h->ng, s->h2.id, NULL);
        if (s->h2.unconsumed) /* DATA nobody will forward: the connection window gets it back */
            nghttp2_session_consume(h->ng, s->h2.id, s->h2.unconsumed);
    }
    s->h2.unconsumed = 0;
    if (!h->n_streams) {
        c->last_activity = c->w->loop.now;
        arm_idle(c);
    }
}

/* ---- frames ------------------------------------------------------------------------- */

static void calm_down(mc_h2_session_t *h, uint32_t stat)
{
    if (h->calmed) /* nghttp2 reads on to the end of the buffer: count the connection once */
        return;
    h->calmed = 1;
    mc_stat_inc(STATS(h->c), SCOPE(h->c), stat);
    nghttp2_session_terminate_session(h->ng, NGHTTP2_ENHANCE_YOUR_CALM);
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *user)
{
    mc_h2_session_t *h = user;
    mc_http_conn_t *c = h->c;
    mc_http_stream_t *s = f->hd.stream_id ? nghttp2_session_get_stream_user_data(ng, f->hd.stream_id) : NULL;
    mc_h2_ka_frame(&h->ka, c->w, f);
    /* PINGs (keepalive ACKs among them) do not hold an idle connection open, as in Envoy */
    if (f->hd.type != NGHTTP2_PING)
        c->last_activity = c->w->loop.now;
    switch (f->hd.type) {
    case NGHTTP2_DATA:
        /* Envoy's max_consecutive_inbound_frames_with_empty_payload */
        if (f->hd.length == 0 && !(f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
            if (++h->empty_frames > c->hcm->h2_max_empty_frames) {
                calm_down(h, MC_HTTP2_INBOUND_EMPTY_FRAMES_FLOOD);
                return 0;
            }
        } else {
            h->empty_frames = 0;
        }
        if (s && (f->hd.flags & NGHTTP2_FLAG_END_STREAM))
            mc_h2_end_stream(s);
        break;
    case NGHTTP2_HEADERS:
        if (!s)
            break;
        if (!s->h2.started)
            mc_h2_request_ready(h, s, (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0);
        else if (f->hd.flags & NGHTTP2_FLAG_END_STREAM)
            mc_h2_end_stream(s); /* request trailers end the body (proxy/h2_request.c frames them) */
        break;
    case NGHTTP2_PRIORITY: /* CVE-2019-9513 family: frames that cost work and open nothing */
        if (++h->priority_frames > MC_H2_PRIORITY_PER_STREAM * (1ull + h->streams_total))
            calm_down(h, MC_HTTP2_INBOUND_PRIORITY_FLOOD);
        break;
    case NGHTTP2_WINDOW_UPDATE: /* CVE-2019-9517 family; Envoy's ProtocolConstraints bound: a
                                 * client may open each stream's window before any DATA flows */
        if (++h->window_updates > 5 + 2 * (h->streams_total + MC_H2_WINDOW_UPDATES_PER_DATA * h->data_frames_sent))
            calm_down(h, MC_HTTP2_INBOUND_WINDOW_UPDATE_FLOOD);
        break;
    case NGHTTP2_RST_STREAM:
        mc_stat_inc(STATS(c), SCOPE(c), MC_HTTP2_RX_RESET);
        if (s) /* reset before we answered: Rapid Reset is many of these */
            h->premature_resets++;
        if (h->streams_total >= MC_H2_PREMATURE_RESET_MIN && h->premature_resets * 2 >= h->streams_total)
            calm_down(h, MC_HTTP2_PREMATURE_RESETS);
        break;
    default:
        break;
    }
    return 0;
}

static int on_frame_send(nghttp2_session *ng, const nghttp2_frame *f, void *user)
{
    (void)ng;
    mc_h2_session_t *h = user;
    mc_http_conn_t *c = h->c;
    if (f->hd.type == NGHTTP2_DATA) {
        h->data_frames_sent++;
    } else if (f->hd.type == NGHTTP2_GOAWAY) {
        mc_stat_inc(STATS(c), SCOPE(c), MC_HTTP2_GOAWAY_SENT);
        if (f->goaway.error_code != NGHTTP2_NO_ERROR)
            mc_stat_inc(STATS(c), SCOPE(c), MC_HTTP_DOWNSTREAM_CX_PROTOCOL_ERROR);
    } else if (f->hd.type == NGHTTP2_RST_STREAM) {
        mc_stat_inc(STATS(c), SCOPE(c), MC_HTTP2_TX_RESET);
        if (f->rst_stream.error_code == NGHTTP2_PROTOCOL_ERROR)
            mc_stat_inc(STATS(c), SCOPE(c), MC_HTTP2_RX_MESSAGING_ERROR);
        else if (f->rst_stream.error_code == NGHTTP2_REFUSED_STREAM)
            mc_stat_inc(STATS(c), SCOPE(c), MC_HTTP2_STREAM_REFUSED);
    }
    return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t error_code, void *user)
{
    (void)user;
    (void)error_code;
    mc_http_stream_t *s = nghttp2_session_get_stream_user_data(ng, id);
    if (!s)
        return 0;
    int complete = s->h2.eof; /* all of the response went out: its task finishes the stream */
    mc_h2_detach(s);
    if (!complete)
        mc_http_stream_abort(s); /* a reset, by the client or by nghttp2 for a stream error */
    return 0;
}

static nghttp2_session_callbacks *callbacks;
static pthread_once_t callbacks_once = PTHREAD_ONCE_INIT;

static void make_callbacks(void)
{
    if (nghttp2_session_callbacks_new(&callbacks) != 0)
        return;
    nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, mc_h2_on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(callbacks, mc_h2_on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, mc_h2_on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(callbacks, on_frame_send);
}

/* ---- the connection: reading, writing, closing -------------------------------------- */

static void session_task(mc_task_t *t);

static void h2_close(mc_http_conn_t *c)
{
    if (c->state == DS_CLOSED)
        return;
    mc_h2_session_t *h = c->h2;
    while (!mc_list_empty(&h->streams)) {
        mc_http_stream_t *s = mc_container_of(h->streams.next, mc_http_stream_t, h2.link);
        mc_h2_detach(s);
        mc_http_stream_abort(s);
    }
    mc_h2_ka_stop(&h->ka, c->w);
    nghttp2_session_del(h->ng);
    h->ng = NULL;
    h->dead = 1;
    mc_loop_post(&c->w->loop, &h->task, session_task); /* frees h after this batch */
    mc_stat_add(STATS(c), SCOPE(c), MC_HTTP_DOWNSTREAM_CX_HTTP2_ACTIVE, -1);
    c->h2 = NULL;
    mc_h1_conn_close(c);
}

/* nghttp2 refused the input as a whole (bad preface, a flood): count why,
 * send the GOAWAY it may have queued, and close. */
static void fatal(mc_http_conn_t *c, ssize_t rv)
{
    uint32_t stat = MC_HTTP_DOWNSTREAM_CX_PROTOCOL_ERROR;
    if (rv == NGHTTP2_ERR_FLOODED)
        stat = MC_HTTP2_OUTBOUND_CONTROL_FLOOD;
    else if (rv == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS)
        stat = MC_HTTP2_TOO_MANY_CONTINUATIONS;
    else if (rv == NGHTTP2_ERR_TOO_MANY_SETTINGS)
        stat = MC_HTTP2_TOO_MANY_SETTINGS;
    mc_stat_inc(STATS(c), SCOPE(c), stat);
    if (rv != NGHTTP2_ERR_BAD_CLIENT_MAGIC && rv != NGHTTP2_ERR_FLOODED) {
        /* one try at telling the client why; nothing is waited for */
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(c->h2->ng, &data);
        if (n > 0 && c->writable && !mc_hbuf_len(&c->out)) /* never into a half-written frame */
            (void)mc_stream_write(&c->st, data, (size_t)n);
    }
    h2_close(c);
}

static int feed(mc_http_conn_t *c, const char *p, size_t n)
{
    mc_h2_session_t *h = c->h2;
    ssize_t rv = nghttp2_session_mem_recv(h->ng, (const uint8_t *)p, n);
    if (rv < 0) {
        fatal(c, rv);
        return -1;
    }
    return 0;
}

/* Writes nghttp2's pending frames. nghttp2_session_mem_send hands out about
 * one frame per call, so frames are gathered in `out` and written together:
 * one send(2) per connection per loop turn, not one per frame (the syscall,
 * not the copy, is what a small response costs). A frame of MC_H2_DIRECT or
 * more finding `out` empty is written straight from nghttp2's buffer. */
static void do_write(mc_http_conn_t *c)
{
    mc_h2_session_t *h = c->h2;
    int r = mc_h1_flush_out(c);
    if (r < 0)
        goto fail;
    if (r == 0)
        return;
    size_t budget = 1u << 20; /* then yield to other connections */
    for (;;) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(h->ng, &data);
        if (n < 0)
            goto fail;
        if (n == 0)
            break;
        size_t off = 0;
        if (mc_hbuf_len(&c->out) && mc_hbuf_len(&c->out) + (size_t)n > MC_HTTP_BUF) {
            r = mc_h1_flush_out(c); /* the gathered frames go first */
            if (r < 0)
                goto fail;
        }
        if (!mc_hbuf_len(&c->out) && (size_t)n >= MC_H2_DIRECT) {
            /* TLS writes a record at a time: a short write is not a full socket */
            while (off < (size_t)n && c->writable) {
                ssize_t wn = mc_stream_write(&c->st, data + off, (size_t)n - off);
                if (wn == MC_IO_ERROR)
                    goto fail;
                if (wn == MC_IO_AGAIN) {
                    c->writable = 0;
                    break;
                }
                mc_stat_add(STATS(c), SCOPE(c), MC_HTTP_DOWNSTREAM_CX_TX_BYTES_TOTAL, wn);
                off += (size_t)wn;
            }
        }
        if (off < (size_t)n && mc_h1_queue_out(c, (const char *)data + off, (size_t)n - off) < 0)
            goto fail;
        if (!c->writable) /* socket full: `out` waits for EPOLLOUT */
            return;
        if ((size_t)n >= budget) {
            mc_h2_want_write(h);
            break;
        }
        budget -= (size_t)n;
    }
    if (mc_h1_flush_out(c) < 0)
        goto fail;
    return;
fail:
    h2_close(c);
}

static void do_read(mc_http_conn_t *c)
{
    size_t budget = MC_H2_READ_BUDGET;
    while (c->readable && c->state != DS_CLOSED) {
        if (mc_hbuf_reserve(c->w, &c->in, MC_HTTP_BUF / 2) < 0) {
            h2_close(c);
            return;
        }
        uint32_t room = c->in.cap - c->in.end;
        ssize_t n = mc_stream_read(&c->st, c->in.data + c->in.end, room);
        if (n > 0) {
            mc_stat_add(STATS(c), SCOPE(c), MC_HTTP_DOWNSTREAM_CX_RX_BYTES_TOTAL, n);
            if ((uint32_t)n < room && !c->rdhup && mc_stream_short_read_drains(&c->st))
                c->readable = 0;
            c->in.start = c->in.end = 0; /* nghttp2 takes all it is given */
            if (feed(c, c->in.data, (size_t)n) < 0)
                return;
            if ((size_t)n >= budget) {
                mc_h2_want_write(c->h2); /* the task reads on */
                return;
            }
            budget -= (size_t)n;
            continue;
        }
        if (n == MC_IO_AGAIN) {
            c->readable = 0;
            mc_hbuf_release(c->w, &c->in);
            return;
        }
        h2_close(c); /* the client went away (or reset) */
        return;
    }
}

/* Reads, writes, and closes once nghttp2 wants neither (after a GOAWAY). */
static void run(mc_http_conn_t *c)
{
    if (c->readable && c->state != DS_CLOSED)
        do_read(c);
    if (c->state != DS_CLOSED)
        do_write(c);
    if (c->state != DS_CLOSED && !nghttp2_session_want_read(c->h2->ng) &&
        !nghttp2_session_want_write(c->h2->ng) && !mc_hbuf_len(&c->out)) {
        mc_stream_shutdown(&c->st);
        h2_close(c);
    }
}

static void session_task(mc_task_t *t)
{
    mc_h2_session_t *h = mc_container_of(t, mc_h2_session_t, task);
    if (h->dead) {
        free(h);
        return;
    }
    run(h->c);
}

void mc_h2_want_write(mc_h2_session_t *h)
{
    if (h && !h->dead) /* NULL: the connection closed under a stream finishing its last task */
        mc_loop_post(&h->c->w->loop, &h->task, session_task);
}

static void on_io(mc_io_t *io, uint32_t ev)
{
    mc_http_conn_t *c = mc_container_of(io, mc_http_conn_t, io);
    if (c->state == DS_CLOSED)
        return;
    if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        c->readable = 1;
    if (ev & (EPOLLRDHUP | EPOLLHUP))
        c->rdhup = 1;
    if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))
        c->writable = 1;
    if (ev & EPOLLERR) {
        h2_close(c);
        return;
    }
    run(c);
}

static void on_timer(mc_timer_t *t)
{
    mc_http_conn_t *c = mc_container_of(t, mc_http_conn_t, timer);
    if (c->state == DS_CLOSED || c->h2->n_streams || !c->hcm->idle_timeout_ns)
        return;
    uint64_t at = c->last_activity + c->hcm->idle_timeout_ns;
    if (at > c->w->loop.now) {
        mc_timer_arm(&c->w->loop.timers, &c->timer, at);
        return;
    }
    mc_stat_inc(STATS(c), SCOPE(c), MC_HTTP_DOWNSTREAM_CX_IDLE_TIMEOUT);
    nghttp2_session_terminate_session(c->h2->ng, NGHTTP2_NO_ERROR); /* GOAWAY, then close */
    run(c);
}

static void on_keepalive(mc_timer_t *t)
{
    mc_h2_session_t *h = mc_container_of(t, mc_h2_session_t, ka.timer);
    if (h->dead)
        return;
    mc_http_conn_t *c = h->c;
    int r = mc_h2_ka_fire(&h->ka, c->w, h->ng);
    if (r == MC_H2_KA_FLUSH) {
        mc_h2_want_write(h);
    } else if (r == MC_H2_KA_TIMEOUT) {
        mc_stat_inc(STATS(c), SCOPE(c), MC_HTTP2_KEEPALIVE_TIMEOUT);
        h2_close(c); /* the peer is gone or stuck: nothing more is sent */
    }
}

static void abort_conn(mc_session_t *base)
{
    h2_close(mc_container_of(base, mc_http_conn_t, base));
}

/* The worker drains: GOAWAY now, streams in flight finish, then close. */
static void drain_conn(mc_session_t *base)
{
    mc_http_conn_t *c = mc_container_of(base, mc_http_conn_t, base);
    if (c->state == DS_CLOSED || c->draining)
        return;
    c->draining = 1;
    nghttp2_submit_goaway(c->h2->ng, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(c->h2->ng),
                          NGHTTP2_NO_ERROR, NULL, 0);
    mc_h2_want_write(c->h2);
}

void mc_h2_start(mc_http_conn_t *c)
{
    mc_worker_t *w = c->w;
    const mc_hcm_t *hcm = c->hcm;
    pthread_once(&callbacks_once, make_callbacks);
    mc_h2_session_t *h = calloc(1, sizeof(*h));
    nghttp2_option *opt = NULL;
    if (!h || !callbacks || nghttp2_option_new(&opt) != 0) {
        free(h);
        mc_h1_conn_close(c);
        return;
    }
    nghttp2_option_set_no_auto_window_update(opt, 1); /* consumed once forwarded: end-to-end flow control */
    nghttp2_option_set_max_outbound_ack(opt, hcm->h2_max_control_frames);
    nghttp2_option_set_max_settings(opt, MC_H2_MAX_SETTINGS);
    nghttp2_option_set_stream_reset_rate_limit(opt, MC_H2_RESET_BURST, MC_H2_RESET_RATE);
    nghttp2_option_set_max_continuations(opt, MC_H2_MAX_CONTINUATIONS);
    nghttp2_option_set_no_closed_streams(opt, 1);
    int rv = nghttp2_session_server_new3(&h->ng, callbacks, h, opt, &mc_proxy_of(w)->h2mem);
    nghttp2_option_del(opt);
    if (rv != 0) {
        free(h);
        mc_h1_conn_close(c);
        return;
    }
    h->c = c;
    mc_list_init(&h->streams);
    mc_h2_ka_init(&h->ka, &hcm->h2_keepalive, on_keepalive);
    mc_h2_ka_start(&h->ka, w);
    c->h2 = h;
    c->codec = &mc_h2_codec;
    c->io.cb = on_io;
    c->base.abort = abort_conn;
    c->base.drain = drain_conn;
    c->state = DS_ACTIVE;
    mc_timer_cancel(&w->loop.timers, &c->timer);
    mc_timer_init(&c->timer, on_timer);
    mc_stat_inc(STATS(c), SCOPE(c), MC_HTTP_DOWNSTREAM_CX_HTTP2_TOTAL);
    mc_stat_inc(STATS(c), SCOPE(c), MC_HTTP_DOWNSTREAM_CX_HTTP2_ACTIVE);
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, hcm->h2_max_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, hcm->h2_stream_window},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)hcm->limits.max_head_bytes},
        {NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1}, /* RFC 8441, last: left out below without websocket */
    };
    /* Without websocket upgrades, :protocol is nghttp2's stream error (PROTOCOL_ERROR). */
    size_t n_iv = sizeof(iv) / sizeof(iv[0]) - (hcm->upgrade_websocket ? 0 : 1);
    nghttp2_submit_settings(h->ng, NGHTTP2_FLAG_NONE, iv, n_iv);
    if (hcm->h2_conn_window > 65535)
        nghttp2_session_set_local_window_size(h->ng, NGHTTP2_FLAG_NONE, 0, (int32_t)hcm->h2_conn_window);
    c->last_activity = w->loop.now;
    arm_idle(c);
    /* What was read while the codec was being chosen (the preface, maybe more). */
    uint32_t n = mc_hbuf_len(&c->in);
    if (n) {
        mc_hbuf_compact(&c->in);
        c->in.start = c->in.end = 0;
        if (feed(c, c->in.data, n) < 0)
            return;
    }
    run(c);
}
