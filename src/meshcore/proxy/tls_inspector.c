/*
 * Listener filter chain selection by a connection's first bytes (Envoy's
 * tls_inspector + filter_chain_match.transport_protocol): a TLS ClientHello
 * (net/tls_sniff.h) or plaintext. This is what PERMISSIVE mTLS needs: TLS
 * and plaintext clients on the same port.
 *
 * The bytes are peeked, never consumed: the chosen session (TLS handshake
 * or plaintext) reads them itself. A connection that sends nothing within
 * the listener filters timeout (15 s, Envoy's default) is closed.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/tls_sniff.h"
#include "proxy/listener.h"

#define INSPECT_TIMEOUT_NS (15ull * 1000000000ull)

typedef struct inspect {
    mc_io_t io;
    mc_worker_t *w;
    mc_wctx_t *ctx;
    uint32_t listener;
    mc_addr_t peer;
    mc_timer_t timer;
    mc_task_t task;
    int done;
} inspect_t;

static void free_task(mc_task_t *t)
{
    inspect_t *in = mc_container_of(t, inspect_t, task);
    mc_wctx_unpin(in->ctx);
    free(in);
}

static uint32_t scope_of(const inspect_t *in)
{
    return in->ctx->snap->listeners[in->listener].scope;
}

/* Ends the inspection; `why` is the counter of a connection closed here,
 * or -1 when it goes on to a chain. */
static void finish(inspect_t *in, int why)
{
    mc_stats_shard_t *st = in->w->stats;
    mc_stat_add(st, scope_of(in), MC_LISTENER_DOWNSTREAM_PRE_CX_ACTIVE, -1);
    if (why >= 0)
        mc_stat_inc(st, scope_of(in), (uint32_t)why);
    int close_fd = why >= 0;
    in->done = 1;
    mc_timer_cancel(&in->w->loop.timers, &in->timer);
    mc_loop_del(&in->w->loop, &in->io);
    if (close_fd)
        close(in->io.fd);
    mc_loop_post(&in->w->loop, &in->task, free_task);
}

static void on_timer(mc_timer_t *t)
{
    inspect_t *in = mc_container_of(t, inspect_t, timer);
    if (!in->done)
        finish(in, MC_LISTENER_DOWNSTREAM_PRE_CX_TIMEOUT);
}

static void on_io(mc_io_t *io, uint32_t ev)
{
    inspect_t *in = mc_container_of(io, inspect_t, io);
    if (in->done)
        return;
    uint8_t b[MC_TLS_SNIFF_BYTES];
    ssize_t n = recv(io->fd, b, sizeof(b), MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        finish(in, MC_LISTENER_DOWNSTREAM_LISTENER_FILTER_REMOTE_CLOSE);
        return;
    }
    int tls = mc_tls_sniff(b, (size_t)n);
    if (tls == MC_TLS_SNIFF_NEED_MORE) { /* maybe TLS: wait for the rest of the header */
        if (ev & (EPOLLRDHUP | EPOLLHUP)) /* ... unless no more can come */
            finish(in, MC_LISTENER_DOWNSTREAM_LISTENER_FILTER_REMOTE_CLOSE);
        return;
    }
    const mc_listener_t *l = &in->ctx->snap->listeners[in->listener];
    int chosen = -1;
    for (uint32_t k = 0; k < l->n_chains && chosen < 0; k++) {
        uint8_t t = l->chains[k].transport;
        if (t == MC_CHAIN_ANY || (t == MC_CHAIN_TLS) == tls)
            chosen = (int)k;
    }
    int fd = io->fd;
    /* no chain for this transport: close, as Envoy */
    finish(in, chosen < 0 ? MC_LISTENER_NO_FILTER_CHAIN_MATCH : -1);
    if (chosen >= 0)
        mc_listener_start_chain(in->w, in->ctx, in->listener, (uint32_t)chosen, fd, &in->peer);
}

void mc_tls_inspector_start(mc_worker_t *w, mc_wctx_t *c, uint32_t listener, int fd, const mc_addr_t *peer)
{
    /* Rare and short-lived next to sessions: a plain allocation is fine. */
    uint32_t scope = c->snap->listeners[listener].scope;
    inspect_t *in = calloc(1, sizeof(*in));
    if (!in) {
        mc_stat_inc(w->stats, scope, MC_LISTENER_DOWNSTREAM_LISTENER_FILTER_ERROR);
        close(fd);
        return;
    }
    in->io = (mc_io_t){.fd = fd, .cb = on_io};
    in->w = w;
    in->ctx = c;
    mc_wctx_pin(c);
    in->listener = listener;
    if (peer)
        in->peer = *peer;
    mc_timer_init(&in->timer, on_timer);
    if (mc_loop_add_et(&w->loop, &in->io) < 0) {
        mc_stat_inc(w->stats, scope, MC_LISTENER_DOWNSTREAM_LISTENER_FILTER_ERROR);
        close(fd);
        mc_wctx_unpin(c);
        free(in);
        return;
    }
    mc_stat_inc(w->stats, scope, MC_LISTENER_DOWNSTREAM_PRE_CX_ACTIVE);
    mc_timer_arm(&w->loop.timers, &in->timer, w->loop.now + INSPECT_TIMEOUT_NS);
}
