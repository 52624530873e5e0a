/*
 * request_mirror_policies: a shadow copy of a request sent to another
 * cluster, fire and forget. The shadow is a stream with no connection: it
 * goes through the same forwarder (pool, circuit breakers, timeouts), never
 * retries (no retry policy without a client), and its codec discards the
 * response. Only requests held whole in the replay buffer are mirrored (the
 * shadow needs the body after the client's copy is gone); Host gets Envoy's
 * "-shadow" suffix.
 */
#include <string.h>

#include "core/clock.h"
#include "proxy/http_stream.h"

/* The shadow is over, however it ended: nobody is told. */
static void shadow_end(mc_http_stream_t *sh)
{
    if (sh->state == ST_CLOSED)
        return;
    mc_session_list_remove(&sh->w->sessions, &sh->base);
    mc_http_forward_abort(sh); /* returns a cleanly finished connection to the pool */
    mc_http_stream_free(sh);
}

static void shadow_reply(mc_http_stream_t *sh, int status, const char *body, size_t body_len, uint32_t flags,
                         const char *location)
{
    (void)status, (void)body, (void)body_len, (void)flags, (void)location;
    shadow_end(sh);
}

/* Reads and drops the response body until it is complete. */
static void shadow_send_response(mc_http_stream_t *sh)
{
    mc_upconn_t *u = sh->up;
    for (;;) {
        if (mc_hbuf_len(&u->in) && !sh->resp_done && mc_http_scan_response(sh, u) < 0) {
            mc_stat_inc(sh->w->stats, u->cluster_scope, MC_CLUSTER_UPSTREAM_CX_PROTOCOL_ERROR);
            shadow_end(sh);
            return;
        }
        u->in.start += sh->resp_ready;
        sh->resp_ready = 0;
        if (sh->resp_done) {
            shadow_end(sh);
            return;
        }
        int more = mc_http_read_response(sh, u);
        if (more == 0)
            return;
        if (more < 0) {
            shadow_end(sh);
            return;
        }
    }
}

static void shadow_response_head(mc_http_stream_t *sh, uint32_t head_len, uint64_t service_ms)
{
    (void)service_ms;
    sh->up->in.start += head_len;
    shadow_send_response(sh);
}

static int shadow_scan_body(mc_http_stream_t *sh)
{
    (void)sh; /* the whole request is in replay */
    return 0;
}

static void shadow_read_body(mc_http_stream_t *sh)
{
    (void)sh;
}

static void shadow_abort(mc_session_t *base)
{
    shadow_end(mc_container_of(base, mc_http_stream_t, base));
}

static const mc_http_codec_t shadow_codec = {
    .name = "shadow",
    .reply = shadow_reply,
    .response_head = shadow_response_head,
    .send_response = shadow_send_response,
    .scan_body = shadow_scan_body,
    .read_body = shadow_read_body,
    .reset = shadow_end,
    .done = shadow_end,
};

void mc_http_mirror(mc_http_stream_t *s)
{
    mc_worker_t *w = s->w;
    uint32_t body = mc_hbuf_len(&s->replay) - s->replay_head;
    mc_http_stream_t *sh = mc_http_stream_new(s->conn);
    if (!sh)
        return;
    if (mc_hbuf_reserve(w, &sh->replay, mc_hbuf_len(&s->mirror) + body) < 0) {
        mc_http_stream_free(sh);
        return;
    }
    memcpy(sh->replay.data, s->mirror.data + s->mirror.start, mc_hbuf_len(&s->mirror));
    memcpy(sh->replay.data + mc_hbuf_len(&s->mirror), s->replay.data + s->replay.start + s->replay_head, body);
    sh->replay.end = mc_hbuf_len(&s->mirror) + body;
    sh->replay_head = mc_hbuf_len(&s->mirror);
    /* No connection from here on: its own copy of who asked. */
    sh->conn = NULL;
    sh->codec = &shadow_codec;
    sh->rx = NULL;
    sh->own_peer = *s->peer;
    sh->peer = &sh->own_peer;
    sh->base.abort = shadow_abort;
    sh->state = ST_ACTIVE;
    sh->route = s->route;
    sh->vhost = s->vhost;
    sh->cidx = s->mirror_cluster;
    sh->c = &s->ctx->snap->clusters[sh->cidx];
    sh->req_done = 1;
    sh->buffered = 1;
    sh->head_request = s->head_request;
    sh->rq_start_ns = mc_now_ns();
    sh->last_activity = w->loop.now;
    mc_session_list_add(&w->sessions, &sh->base);
    mc_http_forward_shadow(sh);
}
