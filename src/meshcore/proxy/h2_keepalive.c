/*
 * HTTP/2 PING keepalive: see proxy/h2_keepalive.h.
 */
#include <string.h>

#include "proxy/h2_keepalive.h"

#define MS(x) ((uint64_t)(x) * 1000000ull)

void mc_h2_ka_init(mc_h2_keepalive_t *k, const mc_sb_h2_keepalive_t *cfg, mc_timer_cb cb)
{
    memset(k, 0, sizeof(*k));
    mc_timer_init(&k->timer, cb);
    if (cfg && cfg->timeout_ms)
        k->cfg = *cfg;
}

/* The next PING: interval after now, plus jitter (Envoy: random % jitter). */
static void arm_interval(mc_h2_keepalive_t *k, mc_worker_t *w)
{
    if (!k->cfg.interval_ms) {
        mc_timer_cancel(&w->loop.timers, &k->timer);
        return;
    }
    uint64_t at = w->loop.now + MS(k->cfg.interval_ms);
    if (k->cfg.jitter_ms)
        at += mc_rand_below(&w->rand, MS(k->cfg.jitter_ms));
    mc_timer_arm(&w->loop.timers, &k->timer, at);
}

void mc_h2_ka_start(mc_h2_keepalive_t *k, mc_worker_t *w)
{
    if (!k->cfg.timeout_ms)
        return;
    k->last_rx = w->loop.now;
    arm_interval(k, w);
}

static int ping(mc_h2_keepalive_t *k, mc_worker_t *w, nghttp2_session *ng)
{
    if (k->awaiting) /* the PING out will tell */
        return 0;
    uint8_t opaque[8];
    memcpy(opaque, &w->loop.now, sizeof(opaque)); /* any payload: the ACK echoes it */
    if (nghttp2_submit_ping(ng, NGHTTP2_FLAG_NONE, opaque) != 0)
        return 0;
    k->awaiting = 1;
    k->sent_at = w->loop.now;
    mc_timer_arm(&w->loop.timers, &k->timer, k->sent_at + MS(k->cfg.timeout_ms));
    return 1;
}

int mc_h2_ka_fire(mc_h2_keepalive_t *k, mc_worker_t *w, nghttp2_session *ng)
{
    if (!k->cfg.timeout_ms || !ng)
        return MC_H2_KA_NOTHING;
    if (!k->awaiting)
        return ping(k, w, ng) ? MC_H2_KA_FLUSH : MC_H2_KA_NOTHING;
    /* frames kept arriving: the ACK may be queued behind them */
    uint64_t from = k->last_rx > k->sent_at ? k->last_rx : k->sent_at;
    uint64_t at = from + MS(k->cfg.timeout_ms);
    if (at > w->loop.now) {
        mc_timer_arm(&w->loop.timers, &k->timer, at);
        return MC_H2_KA_NOTHING;
    }
    return MC_H2_KA_TIMEOUT;
}

void mc_h2_ka_frame(mc_h2_keepalive_t *k, mc_worker_t *w, const nghttp2_frame *f)
{
    if (!k->cfg.timeout_ms)
        return;
    k->last_rx = w->loop.now; /* the timer is not moved per frame: mc_h2_ka_fire looks */
    if (f->hd.type == NGHTTP2_PING && (f->hd.flags & NGHTTP2_FLAG_ACK) && k->awaiting) {
        k->awaiting = 0;
        arm_interval(k, w);
    }
}

int mc_h2_ka_idle_ping(mc_h2_keepalive_t *k, mc_worker_t *w, nghttp2_session *ng)
{
    if (!k->cfg.timeout_ms || !k->cfg.idle_interval_ms || !ng)
        return 0;
    if (w->loop.now - k->last_rx < MS(k->cfg.idle_interval_ms))
        return 0;
    return ping(k, w, ng);
}

void mc_h2_ka_stop(mc_h2_keepalive_t *k, mc_worker_t *w)
{
    mc_timer_cancel(&w->loop.timers, &k->timer);
    k->awaiting = 0;
}
