/*
 * The HTTP/1.1 codec's side of a stream (mc_http_codec_t for HTTP/1.1): local
 * replies, 100 Continue, response heads and bodies toward the client,
 * request bodies from it. The connection itself is proxy/h1_server.c.
 *
 * Response bodies are passed through: bytes go from the upstream
 * connection's buffer to the client's socket with no copy (HTTP/1.1 on both
 * sides keeps the framing; an HTTP/1.0 client gets chunked bodies decoded).
 */
#include <string.h>

#include "proxy/h1_server.h"

#define STATS(c) ((c)->w->stats)

/* ---- the codec: responses ---------------------------------------------------- */

static void h1_reply(mc_http_stream_t *s, int status, const char *body, size_t body_len, uint32_t flags,
                     const char *location)
{
    mc_http_conn_t *c = s->conn;
    mc_http_local_t r = {.status = status, .body = body, .body_len = body_len, .close = s->close_after,
                         .head = s->head_request, .request_id = s->request_id, .request_id_len = s->request_id_len,
                         .server = s->hcm->server_name, .server_len = s->hcm->server_name_len, .location = location};
    if (s->route && s->route->action != MC_ACTION_ROUTE && !flags) {
        r.ops[0] = &s->route->resp_ops;
        r.ops[1] = s->vhost ? &s->vhost->resp_ops : NULL;
        r.ops[2] = &s->hcm->resp_ops;
    }
    const mc_im_cfg_t *im = &s->ch->im;
    if (im->exchange && im->reporter == MC_IM_DESTINATION && s->im_peer_present) {
        r.peer_md_id = im->exchange_id;
        r.peer_md_id_len = im->exchange_id_len;
        r.peer_md = im->exchange;
        r.peer_md_len = im->exchange_len;
    }
    uint32_t need = (uint32_t)body_len + 1024 + (location ? (uint32_t)strlen(location) : 0) + (uint32_t)r.peer_md_id_len +
                    (uint32_t)r.peer_md_len;
    if (mc_hbuf_reserve(c->w, &c->out, need) < 0) {
        mc_h1_conn_close(c);
        return;
    }
    long n = mc_http_write_local_reply(c->out.data + c->out.end, c->out.cap - c->out.end, &r);
    if (n < 0) {
        mc_h1_conn_close(c);
        return;
    }
    c->out.end += (uint32_t)n;
    mc_http_forward_abort(s);
    s->resp_done = 1;
    s->try_state = TRY_RESPONDING;
    mc_h1_send_response(s);
}

static int h1_send_continue(mc_http_stream_t *s)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    mc_http_conn_t *c = s->conn;
    mc_h1_queue_out(c, cont, sizeof(cont) - 1);
    if (mc_h1_flush_out(c) < 0) {
        mc_h1_conn_close(c);
        return -1;
    }
    return 0;
}

/* Response body bytes already here join the head in `out`, so a small
 * response leaves in one write (one TLS record) instead of two. Bounded by
 * the room left in `out`; a larger body streams from the upstream buffer. */
static int coalesce_body(mc_http_stream_t *s, mc_http_conn_t *c, mc_upconn_t *u)
{
    if (!u || s->resp_done || !mc_hbuf_len(&c->out))
        return 0;
    if (!s->resp_ready && mc_hbuf_len(&u->in) && mc_http_scan_response(s, u) < 0)
        return -1;
    uint32_t n = s->resp_ready;
    if (!n || n > c->out.cap - c->out.end)
        return 0;
    memcpy(c->out.data + c->out.end, u->in.data + u->in.start, n);
    c->out.end += n;
    u->in.start += n;
    s->resp_ready = 0;
    s->bytes_tx += n;
    return 0;
}

static void upstream_protocol_error(mc_http_stream_t *s, mc_upconn_t *u)
{
    s->flags |= MC_RF_UPE;
    mc_stat_inc(STATS(s), u->cluster_scope, MC_CLUSTER_UPSTREAM_CX_PROTOCOL_ERROR);
    mc_h1_conn_close(s->conn);
}

void mc_h1_send_response(mc_http_stream_t *s)
{
    if (mc_http_upgrade_tunnel(s)) { /* after a 101: bytes both ways (proxy/http_upgrade.c) */
        mc_h1_tunnel_pump(s);
        return;
    }
    mc_http_conn_t *c = s->conn;
    size_t budget = 1u << 20; /* then yield to other connections */
    for (;;) {
        if (coalesce_body(s, c, s->up) < 0) {
            upstream_protocol_error(s, s->up);
            return;
        }
        if (s->resp_done && s->resp_ready == 0 && !s->accounted)
            mc_http_stream_account(s); /* before the last write: see mc_http_stream_account */
        int r = mc_h1_flush_out(c);
        if (r < 0) {
            mc_h1_conn_close(c);
            return;
        }
        if (r == 0)
            return; /* socket full: EPOLLOUT resumes */
        mc_upconn_t *u = s->up;
        if (s->resp_done && s->resp_ready == 0) {
            mc_http_stream_finish(s);
            return;
        }
        if (!u)
            return;
        if (s->resp_ready) {
            /* Straight from the upstream buffer: no copy. Whatever the client
             * does not take waits there; the upstream is not read meanwhile. */
            if (!c->writable)
                return;
            ssize_t n = mc_stream_write(&c->st, u->in.data + u->in.start, s->resp_ready);
            if (n > 0) {
                s->last_activity = c->w->loop.now;
                u->in.start += (uint32_t)n;
                s->resp_ready -= (uint32_t)n;
                s->bytes_tx += (uint64_t)n;
                mc_stat_add(STATS(c), c->hcm->scope, MC_HTTP_DOWNSTREAM_CX_TX_BYTES_TOTAL, n);
                if ((size_t)n >= budget) {
                    mc_loop_post(&c->w->loop, &s->task, s->task.cb);
                    return;
                }
                budget -= (size_t)n;
                continue;
            }
            if (n == MC_IO_AGAIN) {
                c->writable = 0;
                return;
            }
            mc_h1_conn_close(c);
            return;
        }
        if (mc_hbuf_len(&u->in) && !s->resp_done) {
            if (mc_http_scan_response(s, u) < 0) {
                upstream_protocol_error(s, u);
                return;
            }
            if (s->resp_ready || s->resp_done)
                continue;
        }
        /* Need more from upstream. */
        int more = mc_http_read_response(s, u);
        if (more > 0)
            continue;
        if (more == 0)
            return;
        /* Upstream went away mid-body: the client cannot get a whole
         * response any more; close it so it sees a truncated message. */
        s->flags |= MC_RF_UC;
        mc_h1_conn_close(c);
        return;
    }
}

static void h1_response_head(mc_http_stream_t *s, uint32_t head_len, uint64_t service_ms)
{
    mc_http_conn_t *c = s->conn;
    mc_upconn_t *u = s->up;
    /* An HTTP/1.0 client knows no chunked coding (RFC 9112 6.1): it gets
     * the decoded body, ended by closing the connection. */
    s->resp_dechunk = s->resp.body == MC_H1_BODY_CHUNKED && s->req.minor_version == 0;
    if (s->resp.body == MC_H1_BODY_UNTIL_CLOSE || s->early_response || s->resp_dechunk)
        s->close_after = 1; /* the client cannot tell where it ends otherwise */
    /* Written straight into the client's buffer, sized for the head (which
     * may be up to the parser's limit, larger than a pooled buffer). */
    long n = -1;
    for (uint32_t room = head_len + 1024; n < 0 && room <= 4u * head_len + 8192; room *= 2) {
        if (mc_hbuf_reserve(c->w, &c->out, room) < 0)
            break;
        n = mc_http_write_response_head(s, c->out.data + c->out.end, c->out.cap - c->out.end, service_ms);
    }
    u->in.start += head_len; /* the views are no longer needed */
    if (n < 0) {
        s->flags |= MC_RF_UPE;
        mc_h1_conn_close(c);
        return;
    }
    c->out.end += (uint32_t)n;
    mc_h1_send_response(s);
}

/* ---- the codec: request bodies --------------------------------------------------- */

/* Scans downstream bytes for body: sets req_ready / req_done. */
static int h1_scan_body(mc_http_stream_t *s)
{
    if (s->req_ready || s->req_done)
        return 0;
    mc_hbuf_t *in = s->rx;
    uint32_t avail = mc_hbuf_len(in);
    if (!avail)
        return 0;
    if (s->req_body == MC_H1_BODY_LENGTH) {
        uint64_t n = avail < s->req_remaining ? avail : s->req_remaining;
        s->req_ready = (uint32_t)n;
        s->req_remaining -= n;
        s->req_done = s->req_remaining == 0;
        return 0;
    }
    int done = 0;
    const char *reason = NULL;
    ssize_t n = mc_h1_chunked_scan(&s->req_chunked, in->data + in->start, avail, &done, &reason);
    if (n < 0)
        return -1;
    s->req_ready = (uint32_t)n;
    s->req_done = (uint8_t)done;
    return 0;
}

/* Reads more request body from the client into `in` (bounded). */
static void h1_read_body(mc_http_stream_t *s)
{
    mc_http_conn_t *c = s->conn;
    /* Only body bytes are wanted; the forwarder takes them and calls back
     * here when it has room for more. */
    if (c->state != DS_ACTIVE || s->req_done || !c->readable)
        return;
    /* Backpressure: body bytes the upstream has not taken yet cap what we
     * read, so a slow upstream costs one buffer, never more. */
    if (mc_hbuf_len(&c->in) >= MC_HTTP_BUF / 2)
        return;
    if (mc_hbuf_len(&c->in) == 0)
        c->in.start = c->in.end = 0;
    if (mc_hbuf_reserve(c->w, &c->in, MC_HTTP_BUF / 2) < 0) {
        mc_h1_conn_close(c);
        return;
    }
    uint32_t room = c->in.cap - c->in.end;
    ssize_t n = mc_stream_read(&c->st, c->in.data + c->in.end, room);
    if (n > 0) {
        c->in.end += (uint32_t)n;
        s->last_activity = c->w->loop.now;
        mc_stat_add(STATS(c), c->hcm->scope, MC_HTTP_DOWNSTREAM_CX_RX_BYTES_TOTAL, n);
        if ((uint32_t)n < room && !c->rdhup && mc_stream_short_read_drains(&c->st))
            c->readable = 0;
        return;
    }
    if (n == MC_IO_AGAIN) {
        c->readable = 0;
        return;
    }
    /* The client closed before sending its whole body. */
    mc_h1_conn_close(c);
}

static void h1_reset(mc_http_stream_t *s)
{
    mc_h1_conn_close(s->conn);
}

const mc_http_codec_t mc_h1_codec = {
    .name = "http/1.1",
    .reply = h1_reply,
    .send_continue = h1_send_continue,
    .response_head = h1_response_head,
    .send_response = mc_h1_send_response,
    .scan_body = h1_scan_body,
    .read_body = h1_read_body,
    .reset = h1_reset,
    .done = mc_h1_conn_done,
};
