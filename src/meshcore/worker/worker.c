/*
 * Worker thread: runs its loop, accepts on its listen sockets, and adopts
 * new snapshots when the engine wakes it. See worker/worker.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/clock.h"
#include "meshcore/balancer.h"
#include "meshcore/overload.h"
#include "worker/control.h"
#include "worker/worker.h"

#define ACCEPT_BATCH 64
#define SHARED_ACCEPT_BATCH 1

/* ---- per-snapshot context --------------------------------------------- */

static void ctx_free(mc_wctx_t *c)
{
    mc_snapshot_t *s = c->snap;
    for (uint32_t i = 0; i < s->n_clusters; i++) {
        free(c->clusters[i].swrr);
        free(c->clusters[i].active);
        free(c->clusters[i].skip);
    }
    for (uint32_t i = 0; i < s->n_listeners; i++) {
        for (uint32_t j = 0; j < s->listeners[i].n_chains; j++) {
            const mc_chain_t *ch = &s->listeners[i].chains[j];
            free(c->tcp_swrr[ch->gidx]);
            if (c->route_swrr[ch->gidx]) {
                for (uint32_t k = 0; k < ch->hcm.rt.n_swrr_slots; k++)
                    free(c->route_swrr[ch->gidx][k]);
                free(c->route_swrr[ch->gidx]);
            }
        }
    }
    free(c->clusters);
    free(c->tcp_swrr);
    free(c->route_swrr);
    free(c->listeners);
    mc_snapshot_unref(s);
    free(c);
}

static void on_accept(mc_io_t *io, uint32_t ev);
static void follow_overload(mc_worker_t *w);

/* Takes over the caller's snapshot reference. */
static mc_wctx_t *ctx_new(mc_worker_t *w, mc_snapshot_t *s)
{
    mc_wctx_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->snap = s;
    c->w = w;
    c->clusters = calloc(s->n_clusters ? s->n_clusters : 1, sizeof(*c->clusters));
    c->tcp_swrr = calloc(s->n_chains ? s->n_chains : 1, sizeof(*c->tcp_swrr));
    c->route_swrr = calloc(s->n_chains ? s->n_chains : 1, sizeof(*c->route_swrr));
    c->listeners = calloc(s->n_listeners ? s->n_listeners : 1, sizeof(*c->listeners));
    if (!c->clusters || !c->tcp_swrr || !c->route_swrr || !c->listeners)
        goto fail;
    for (uint32_t i = 0; i < s->n_clusters; i++) {
        uint32_t n = s->clusters[i].n_endpoints ? s->clusters[i].n_endpoints : 1;
        c->clusters[i].swrr = calloc(n, sizeof(int64_t));
        c->clusters[i].active = calloc(n, sizeof(uint32_t));
        c->clusters[i].skip = calloc(mc_lb_skip_words(n), sizeof(uint64_t));
        if (!c->clusters[i].swrr || !c->clusters[i].active || !c->clusters[i].skip)
            goto fail;
    }
    for (uint32_t i = 0; i < s->n_listeners; i++) {
        for (uint32_t j = 0; j < s->listeners[i].n_chains; j++) {
            const mc_chain_t *ch = &s->listeners[i].chains[j];
            uint32_t n = ch->tcp.n_clusters ? ch->tcp.n_clusters : 1;
            c->tcp_swrr[ch->gidx] = calloc(n, sizeof(int64_t));
            if (!c->tcp_swrr[ch->gidx])
                goto fail;
            const mc_route_table_t *rt = &ch->hcm.rt;
            if (rt->n_swrr_slots) {
                c->route_swrr[ch->gidx] = calloc(rt->n_swrr_slots, sizeof(int64_t *));
                if (!c->route_swrr[ch->gidx])
                    goto fail;
                for (uint32_t k = 0; k < rt->n_swrr_slots; k++) {
                    c->route_swrr[ch->gidx][k] = calloc(rt->swrr_slot_size[k], sizeof(int64_t));
                    if (!c->route_swrr[ch->gidx][k])
                        goto fail;
                }
            }
        }
        c->listeners[i] = (mc_wlistener_t){.io = {.fd = -1, .cb = on_accept}, .ctx = c, .index = i};
    }
    return c;
fail:
    mc_snapshot_ref(s); /* ctx_free drops one; the caller keeps its own */
    ctx_free(c);
    return NULL;
}

static void ctx_free_task(mc_task_t *t)
{
    mc_wctx_t *c = mc_container_of(t, mc_wctx_t, free_task);
    if (c->users > 0) {
        /* An accept fetched in the batch that retired it started a session
         * on it: it is freed when that session unpins it. */
        c->next_retired = c->w->retired;
        c->w->retired = c;
        return;
    }
    ctx_free(c);
}

/* Frees c after the current event batch: events already fetched in it may
 * still point at c's listeners (their fds were re-pointed to the new
 * context, but epoll_wait returned before that). */
static void free_after_batch(mc_worker_t *w, mc_wctx_t *c)
{
    mc_loop_post(&w->loop, &c->free_task, ctx_free_task);
}

static void retire(mc_worker_t *w, mc_wctx_t *c)
{
    if (!c)
        return;
    if (c->users == 0) {
        free_after_batch(w, c);
        return;
    }
    c->next_retired = w->retired;
    w->retired = c;
}

void mc_wctx_unpin(mc_wctx_t *c)
{
    mc_worker_t *w = c->w;
    if (--c->users > 0 || c == w->ctx)
        return;
    for (mc_wctx_t **p = &w->retired; *p; p = &(*p)->next_retired) {
        if (*p == c) {
            *p = c->next_retired;
            break;
        }
    }
    free_after_batch(w, c);
}

/* ---- listeners ---------------------------------------------------------- */

static void on_accept(mc_io_t *io, uint32_t ev)
{
    (void)ev;
    mc_wlistener_t *wl = mc_container_of(io, mc_wlistener_t, io);
    mc_wctx_t *c = wl->ctx;
    mc_worker_t *w = c->w;
    if (mc_overload_on(w->ctl, MC_OA_STOP_ACCEPTING_CONNECTIONS)) {
        follow_overload(w); /* before the sampler's wake-up arrives */
        return;
    }
    /* On a socket the workers share, one accept per wake-up: the workers all
     * wake, and a burst of connections is spread over them instead of going
     * to whichever woke first. */
    const mc_lsock_t *ls = c->snap->listeners[wl->index].ls;
    int batch = ls && ls->shared ? SHARED_ACCEPT_BATCH : ACCEPT_BATCH;
    for (int i = 0; i < batch; i++) {
        mc_addr_t peer;
        peer.len = sizeof(peer.ss);
        int fd = accept4(io->fd, (struct sockaddr *)&peer.ss, &peer.len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if ((errno == EMFILE || errno == ENFILE) && w->reserve_fd >= 0) {
                /* Out of descriptors: the queued connection would keep the
                 * listener readable forever. Free the spare descriptor,
                 * accept and close the connection, take the spare back. */
                close(w->reserve_fd);
                fd = accept4(io->fd, NULL, NULL, SOCK_CLOEXEC);
                if (fd >= 0)
                    close(fd);
                w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                mc_stat_inc(w->stats, c->snap->listeners[wl->index].scope,
                            MC_LISTENER_DOWNSTREAM_CX_OVERFLOW);
            }
            return;
        }
        w->hooks->accept(w, c, wl->index, fd, &peer);
    }
}

static void unregister_ctx(mc_worker_t *w, mc_wctx_t *c)
{
    if (!c)
        return;
    for (uint32_t i = 0; i < c->snap->n_listeners; i++) {
        mc_wlistener_t *wl = &c->listeners[i];
        if (wl->registered) {
            mc_loop_del(&w->loop, &wl->io);
            wl->registered = 0;
        }
    }
}

/* Idle pooled connections to hosts the new snapshot no longer has (a
 * removed cluster or endpoint) are closed now, not at their idle timeout. */
static void close_removed_idle(mc_worker_t *w, mc_wctx_t *old, mc_snapshot_t *s)
{
    if (!old)
        return;
    for (uint32_t i = 0; i < s->n_clusters; i++)
        for (uint32_t e = 0; e < s->clusters[i].n_endpoints; e++)
            s->clusters[i].endpoints[e].host->wpools[w->id].seen = s->generation;
    for (uint32_t i = 0; i < old->snap->n_clusters; i++) {
        const mc_cluster_t *c = &old->snap->clusters[i];
        for (uint32_t e = 0; e < c->n_endpoints; e++) {
            mc_host_wpool_t *p = &c->endpoints[e].host->wpools[w->id];
            if (p->seen == s->generation)
                continue;
            w->hooks->close_idle(p);
        }
    }
}

static void unregister_all(mc_worker_t *w)
{
    unregister_ctx(w, w->ctx);
}

/* envoy.overload_actions.stop_accepting_connections: the listeners leave the
 * poll set, so new connections wait in the kernel's backlog, and come back
 * when the action ends (the sampler wakes the workers on each change). */
static void follow_overload(mc_worker_t *w)
{
    int pause = mc_overload_on(w->ctl, MC_OA_STOP_ACCEPTING_CONNECTIONS);
    if (!w->listening || !w->ctx) { /* nothing registered (stopping, drained or no config yet) */
        w->accept_paused = w->listening && pause;
        return;
    }
    if (pause == w->accept_paused)
        return;
    w->accept_paused = pause;
    if (pause) {
        unregister_ctx(w, w->ctx);
        return;
    }
    mc_wctx_t *c = w->ctx;
    for (uint32_t i = 0; i < c->snap->n_listeners; i++) {
        mc_lsock_t *ls = c->snap->listeners[i].ls;
        mc_wlistener_t *wl = &c->listeners[i];
        if (!ls || ls->fds[w->id] < 0 || wl->registered)
            continue;
        wl->io.fd = ls->fds[w->id];
        wl->registered = mc_loop_add_lt(&w->loop, &wl->io) == 0;
    }
}

/* Moves listener registrations from the old context to the new one: an fd
 * kept by both is re-pointed (never dropped, so no accept is missed), old
 * ones are removed, new ones added. */
static void adopt(mc_worker_t *w, mc_snapshot_t *s)
{
    if (s->access_logs && !w->alog.slots) {
        /* First config that logs: the ring, once (published to the drainer). */
        mc_alog_record_t *slots = calloc(MC_ALOG_RING, sizeof(*slots));
        if (slots)
            __atomic_store_n(&w->alog.slots, slots, __ATOMIC_RELEASE);
    }
    mc_wctx_t *nc = ctx_new(w, s);
    if (!nc) {
        mc_snapshot_unref(s);
        return; /* keep serving the old snapshot */
    }
    mc_wctx_t *oc = w->ctx;
    for (uint32_t i = 0; w->listening && !w->accept_paused && i < s->n_listeners; i++) {
        mc_lsock_t *ls = s->listeners[i].ls;
        if (!ls || ls->fds[w->id] < 0)
            continue;
        mc_wlistener_t *nl = &nc->listeners[i];
        nl->io.fd = ls->fds[w->id];
        int moved = 0;
        for (uint32_t j = 0; oc && j < oc->snap->n_listeners; j++) {
            mc_wlistener_t *ol = &oc->listeners[j];
            if (ol->registered && ol->io.fd == nl->io.fd) {
                moved = mc_loop_repoint(&w->loop, &nl->io, 1) == 0;
                ol->registered = 0;
                break;
            }
        }
        if (!moved)
            moved = mc_loop_add_lt(&w->loop, &nl->io) == 0;
        nl->registered = moved;
    }
    unregister_ctx(w, oc); /* what was not moved */
    w->ctx = nc;
    close_removed_idle(w, oc, s);
    retire(w, oc);
}

/* ---- control ------------------------------------------------------------ */

static void close_idle_upstreams(mc_worker_t *w, mc_wctx_t *c);

/* Stopping: sessions that can finish early do (an idle keep-alive client
 * connection closes now, one with a request in flight after its response,
 * as Envoy drains HTTP connections); pooled upstream connections close so
 * the next hop's drain does not wait for them. The rest get the drain
 * timeout. */
static void drain_sessions(mc_worker_t *w)
{
    mc_session_list_drain(&w->sessions);
    close_idle_upstreams(w, w->ctx);
}

static void on_wake(mc_io_t *io, uint32_t ev)
{
    (void)ev;
    mc_worker_t *w = mc_container_of(io, mc_worker_t, wake);
    mc_worker_control_t *e = w->ctl;
    uint64_t v;
    while (read(io->fd, &v, sizeof(v)) < 0 && errno == EINTR) {
    }
    pthread_mutex_lock(&e->lock);
    uint64_t gen = e->generation;
    mc_snapshot_t *s = e->current;
    if (s && (!w->ctx || w->ctx->snap != s))
        mc_snapshot_ref(s);
    else
        s = NULL;
    int stop = e->stopping, drained = e->drained;
    uint64_t deadline = e->stop_deadline_ns;
    pthread_mutex_unlock(&e->lock);

    if (stop || drained) {
        unregister_all(w);
        w->listening = 0;
    }
    if (s)
        adopt(w, s);
    follow_overload(w);
    if (stop && !w->stopping) {
        w->stopping = 1;
        w->stop_deadline = deadline;
        drain_sessions(w);
    }
    pthread_mutex_lock(&e->lock);
    w->acked_gen = gen;
    pthread_cond_broadcast(&e->acked);
    pthread_mutex_unlock(&e->lock);
}

void mc_worker_wake(mc_worker_t *w)
{
    uint64_t one = 1;
    while (write(w->wake.fd, &one, sizeof(one)) < 0 && errno == EINTR) {
    }
}

/* Pooled upstream connections are not sessions: close them on the way out
 * so upstreams see the FIN now, not when the process exits. */
static void close_idle_upstreams(mc_worker_t *w, mc_wctx_t *c)
{
    if (!c)
        return;
    for (uint32_t i = 0; i < c->snap->n_clusters; i++) {
        const mc_cluster_t *cl = &c->snap->clusters[i];
        for (uint32_t e = 0; e < cl->n_endpoints; e++) {
            w->hooks->close_idle(&cl->endpoints[e].host->wpools[w->id]);
        }
    }
}

static void *worker_main(void *arg)
{
    mc_worker_t *w = arg;
    /* Signals belong to the embedding program's main thread. */
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    char name[16];
    snprintf(name, sizeof(name), "mc-worker-%u", w->id);
    pthread_setname_np(pthread_self(), name);
    mc_stat_inc(w->stats, w->server_scope, MC_SERVER_WORKERS_STARTED);

    for (;;) {
        mc_loop_turn(&w->loop, w->stopping ? 50 : -1);
        if (!w->stopping)
            continue;
        if (mc_session_list_empty(&w->sessions))
            break;
        if (w->loop.now >= w->stop_deadline)
            mc_session_list_abort(&w->sessions);
    }
    close_idle_upstreams(w, w->ctx);
    for (mc_wctx_t *c = w->retired; c; c = c->next_retired)
        close_idle_upstreams(w, c);
    if (w->hooks->close_upstreams)
        w->hooks->close_upstreams(w);
    /* Run the deferred frees the last closes posted. */
    while (w->loop.tasks_head)
        mc_loop_turn(&w->loop, 0);
    return NULL;
}

mc_worker_t *mc_worker_new(mc_worker_control_t *ctl, mc_stats_t *stats, uint32_t server_scope,
                          const mc_engine_opts_t *opts, uint32_t id, const mc_worker_hooks_t *hooks, char *err,
                          size_t errlen)
{
    mc_worker_t *w = calloc(1, sizeof(*w));
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->id = id;
    w->ctl = ctl;
    w->hooks = hooks;
    mc_im_table_init(&w->im);
    w->reserve_fd = -1;
    w->wake.fd = -1;
    if (mc_loop_init(&w->loop) < 0) {
        snprintf(err, errlen, "epoll: %s", strerror(errno));
        free(w);
        return NULL;
    }
    w->wake.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    w->wake.cb = on_wake;
    if (w->wake.fd < 0 || mc_loop_add_lt(&w->loop, &w->wake) < 0) {
        snprintf(err, errlen, "eventfd: %s", strerror(errno));
        mc_worker_free(w);
        return NULL;
    }
    w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    w->stats = mc_stats_shard(stats, id);
    w->server_scope = server_scope;
    mc_rand_seed(&w->rand, mc_now_ns() ^ ((uint64_t)(id + 1) * 0x9E3779B97F4A7C15ull));
    w->splice = opts->splice;
    mc_pool_init(&w->bufs, MC_WORKER_SCRATCH, 16, 0);
    /* Room for 31 capture groups: more than any route regex needs. */
    w->match_data = pcre2_match_data_create(32, NULL);
    mc_pipe_pool_init(&w->pipes);
    mc_session_list_init(&w->sessions);
    if (hooks->init(w, opts->max_connections_per_worker) < 0) {
        snprintf(err, errlen, "out of memory");
        mc_worker_free(w);
        return NULL;
    }
    w->listening = 1;
    return w;
}

int mc_worker_start(mc_worker_t *w)
{
    return pthread_create(&w->thread, NULL, worker_main, w) == 0 ? 0 : -1;
}

void mc_worker_join(mc_worker_t *w)
{
    pthread_join(w->thread, NULL);
}

void mc_worker_free(mc_worker_t *w)
{
    if (!w)
        return;
    unregister_all(w);
    if (w->ctx) { /* the loop has stopped: free it with the retired ones */
        w->ctx->next_retired = w->retired;
        w->retired = w->ctx;
        w->ctx = NULL;
    }
    while (w->retired) { /* only if sessions were leaked; free anyway */
        mc_wctx_t *c = w->retired;
        w->retired = c->next_retired;
        ctx_free(c);
    }
    mc_pipe_pool_destroy(&w->pipes);
    if (w->hooks)
        w->hooks->fini(w);
    mc_pool_destroy(&w->bufs);
    if (w->match_data)
        pcre2_match_data_free(w->match_data);
    free(w->alog.slots);
    mc_im_table_free(&w->im);
    if (w->wake.fd >= 0)
        close(w->wake.fd);
    if (w->reserve_fd >= 0)
        close(w->reserve_fd);
    mc_loop_destroy(&w->loop);
    free(w);
}
