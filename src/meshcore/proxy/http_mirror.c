/*
 * request_mirror_policies: a shadow copy of a request sent to another
 * cluster, fire and forget. The shadow is a session without a client: it
 * reuses the forwarder (pool, circuit breakers, timeouts), never retries,
 * and discards its response. Only requests held whole in the replay buffer
 * are mirrored (the shadow needs the body after the client's copy is gone);
 * Host gets Envoy's "-shadow" suffix.
 */
#include <string.h>

#include "core/clock.h"
#include "proxy/http_session.h"

void mc_http_mirror(mc_http_session_t *s)
{
    mc_worker_t *w = s->w;
    uint32_t body = mc_hbuf_len(&s->replay) - s->replay_head;
    mc_http_session_t *sh = mc_pool_get(&w->http_sessions);
    if (!sh)
        return;
    if (mc_hbuf_reserve(w, &sh->replay, mc_hbuf_len(&s->mirror) + body) < 0) {
        mc_pool_put(&w->http_sessions, sh);
        return;
    }
    memcpy(sh->replay.data, s->mirror.data + s->mirror.start, mc_hbuf_len(&s->mirror));
    memcpy(sh->replay.data + mc_hbuf_len(&s->mirror), s->replay.data + s->replay.start + s->replay_head, body);
    sh->replay.end = mc_hbuf_len(&s->mirror) + body;
    sh->replay_head = mc_hbuf_len(&s->mirror);
    sh->shadow = 1;
    sh->base.abort = s->base.abort;
    sh->base.drain = s->base.drain;
    sh->task.cb = s->task.cb;
    sh->w = w;
    sh->ctx = s->ctx;
    mc_wctx_pin(sh->ctx);
    sh->l = s->l;
    sh->ch = s->ch;
    sh->hcm = s->hcm;
    sh->io.fd = -1;
    sh->st.fd = -1;
    sh->writable = 1;
    sh->state = DS_ACTIVE;
    sh->peer = s->peer;
    memcpy(sh->peer_text, s->peer_text, sizeof(sh->peer_text));
    sh->peer_ip_off = s->peer_ip_off;
    sh->peer_ip_len = s->peer_ip_len;
    sh->route = s->route;
    sh->vhost = s->vhost;
    sh->cidx = s->mirror_cluster;
    sh->c = &s->ctx->snap->clusters[sh->cidx];
    sh->req_done = 1;
    sh->buffered = 1;
    sh->head_request = s->head_request;
    sh->rq_start_ns = mc_now_ns();
    sh->last_activity = w->loop.now;
    mc_list_init(&sh->pending_link);
    mc_timer_init(&sh->timer, s->timer.cb);
    mc_timer_init(&sh->try_timer, s->try_timer.cb);
    mc_worker_session_add(w, &sh->base);
    mc_http_forward_shadow(sh);
}
