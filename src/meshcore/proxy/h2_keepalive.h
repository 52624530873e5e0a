/*
 * HTTP/2 PING keepalive (Envoy's Http2ProtocolOptions.connection_keepalive),
 * shared by the upstream sessions (proxy/h2_upstream.c) and the downstream
 * connections (proxy/h2_server.c).
 *
 * A PING goes out `interval` (plus up to `jitter`) after the previous ACK;
 * when no ACK arrives within `timeout` the owner closes the connection and
 * counts http2.keepalive_timeout. Any frame received meanwhile pushes the
 * deadline to timeout after that frame (as Envoy: a busy connection's ACK may
 * wait behind DATA). One timer, embedded in the owner: it waits for either
 * the next PING or the ACK, never both. Nothing is allocated per PING beyond
 * nghttp2's outbound item (from the worker's nghttp2_mem).
 */
#ifndef MESHCORE_PROXY_H2_KEEPALIVE_H
#define MESHCORE_PROXY_H2_KEEPALIVE_H

#include <nghttp2/nghttp2.h>

#include "core/timer.h"
#include "meshcore/snapshot.h"
#include "worker/worker.h"

typedef struct mc_h2_keepalive {
    mc_timer_t timer;
    mc_sb_h2_keepalive_t cfg; /* a copy: an upstream session outlives its snapshot */
    uint64_t sent_at;         /* when the unanswered PING went out */
    uint64_t last_rx;         /* when the last frame arrived */
    uint8_t awaiting;         /* a PING is unanswered */
} mc_h2_keepalive_t;

/* What mc_h2_ka_fire asks of the owner. */
enum { MC_H2_KA_NOTHING = 0, MC_H2_KA_FLUSH, MC_H2_KA_TIMEOUT };

/* Sets the timer up (always, so mc_h2_ka_stop is safe); cfg NULL or with
 * timeout_ms 0: keepalive off. */
void mc_h2_ka_init(mc_h2_keepalive_t *k, const mc_sb_h2_keepalive_t *cfg, mc_timer_cb cb);
/* The session speaks HTTP/2 now: the first PING after an interval. */
void mc_h2_ka_start(mc_h2_keepalive_t *k, mc_worker_t *w);
/* From the owner's timer callback: a PING submitted (flush it), the ACK
 * overdue (close and count), or nothing (re-armed). */
int mc_h2_ka_fire(mc_h2_keepalive_t *k, mc_worker_t *w, nghttp2_session *ng);
/* From nghttp2's on_frame_recv: a sign of life; a PING ACK ends the wait. */
void mc_h2_ka_frame(mc_h2_keepalive_t *k, mc_worker_t *w, const nghttp2_frame *f);
/* connection_idle_interval: before a new stream, a PING if nothing arrived
 * for that long and none is out. 1: submitted (flush it). */
int mc_h2_ka_idle_ping(mc_h2_keepalive_t *k, mc_worker_t *w, nghttp2_session *ng);
/* The connection closes: no timer may fire on it. */
void mc_h2_ka_stop(mc_h2_keepalive_t *k, mc_worker_t *w);

#endif
