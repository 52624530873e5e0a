/*
 * Listener filter chain selection by a connection's first bytes (Envoy's
 * tls_inspector + filter_chain_match.transport_protocol): a TLS ClientHello
 * starts with a handshake record (0x16, version 3.x), anything else is
 * plaintext. This is what PERMISSIVE mTLS needs: TLS and plaintext clients
 * on the same port.
 *
 * The bytes are peeked, never consumed: the chosen session (TLS handshake
 * or plaintext) reads them itself. A connection that sends nothing within
 * the listener filters timeout (15 s, Envoy's default) is closed.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

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

static void finish(inspect_t *in, int close_fd)
{
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
        finish(in, 1);
}

static void on_io(mc_io_t *io, uint32_t ev)
{
    (void)ev;
    inspect_t *in = mc_container_of(io, inspect_t, io);
    if (in->done)
        return;
    unsigned char b[3];
    ssize_t n = recv(io->fd, b, sizeof(b), MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        finish(in, 1);
        return;
    }
    if (n < 3 && b[0] == 0x16) /* maybe TLS: wait for the record header */
        return;
    int tls = b[0] == 0x16 && (n < 2 || b[1] == 3);
    const mc_listener_t *l = &in->ctx->snap->listeners[in->listener];
    int chosen = -1;
    for (uint32_t k = 0; k < l->n_chains && chosen < 0; k++) {
        uint8_t t = l->chains[k].transport;
        if (t == MC_CHAIN_ANY || (t == MC_CHAIN_TLS) == tls)
            chosen = (int)k;
    }
    int fd = io->fd;
    finish(in, chosen < 0); /* no chain for this transport: close, as Envoy */
    if (chosen >= 0)
        mc_listener_start_chain(in->w, in->ctx, in->listener, (uint32_t)chosen, fd, &in->peer);
}

void mc_tls_inspector_start(mc_worker_t *w, mc_wctx_t *c, uint32_t listener, int fd, const mc_addr_t *peer)
{
    /* Rare and short-lived next to sessions: a plain allocation is fine. */
    inspect_t *in = calloc(1, sizeof(*in));
    if (!in) {
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
        close(fd);
        mc_wctx_unpin(c);
        free(in);
        return;
    }
    mc_timer_arm(&w->loop.timers, &in->timer, w->loop.now + INSPECT_TIMEOUT_NS);
}
