/*
 * Engine: owns the workers, the stats registry, the listen-socket registry
 * and the current snapshot. Control operations are serialized by the
 * caller's thread (one at a time, see mc_engine_t) and hand changes to the
 * workers through the control block + an eventfd wake-up.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "engine/alog_writer.h"
#include "proxy/listener.h"
#include "engine/engine_internal.h"

#define ACK_TIMEOUT_S 5

void mc_engine_opts_default(mc_engine_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->splice = MC_SPLICE_AUTO;
}

mc_engine_t *mc_engine_new(const mc_engine_opts_t *opts, char *err, size_t errlen)
{
    mc_engine_t *e = calloc(1, sizeof(*e));
    if (!e) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    mc_engine_opts_default(&e->opts);
    if (opts)
        e->opts = *opts;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    e->n_workers = e->opts.concurrency ? e->opts.concurrency : (uint32_t)(ncpu > 0 ? ncpu : 1);
    e->opts.concurrency = e->n_workers;
    pthread_mutex_init(&e->ctl, NULL);
    pthread_mutex_init(&e->shared.lock, NULL);
    pthread_cond_init(&e->shared.acked, NULL);
    e->stats = mc_stats_new(e->n_workers);
    e->workers = calloc(e->n_workers, sizeof(*e->workers));
    e->alog = mc_alog_writer_new(e);
    if (!e->stats || !e->workers || !e->alog) {
        snprintf(err, errlen, "out of memory");
        mc_engine_free(e);
        return NULL;
    }
    e->server_scope = mc_stats_scope(e->stats, MC_SCOPE_SERVER, "server");
    e->clusters.n_workers = e->n_workers;
    for (uint32_t i = 0; i < e->n_workers; i++) {
        e->workers[i] = mc_worker_new(&e->shared, e->stats, e->server_scope, &e->opts, i, &mc_proxy_hooks, err, errlen);
        if (!e->workers[i]) {
            mc_engine_free(e);
            return NULL;
        }
    }
    /* A peer closing mid-write must be an EPIPE, not a process kill. */
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
        signal(SIGPIPE, SIG_IGN);
    return e;
}

static void wake_all(mc_engine_t *e)
{
    for (uint32_t i = 0; i < e->n_workers; i++)
        mc_worker_wake(e->workers[i]);
}

/* Waits (bounded) until every worker has seen generation gen; 0 if they
 * all did, -1 on the timeout. */
static int wait_acked(mc_engine_t *e, uint64_t gen)
{
    int rc = 0;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ACK_TIMEOUT_S;
    pthread_mutex_lock(&e->shared.lock);
    for (uint32_t i = 0; i < e->n_workers; i++) {
        while (e->workers[i]->acked_gen < gen) {
            if (pthread_cond_timedwait(&e->shared.acked, &e->shared.lock, &until) == ETIMEDOUT) {
                rc = -1;
                goto out;
            }
        }
    }
out:
    pthread_mutex_unlock(&e->shared.lock);
    return rc;
}

/* Bumps the generation, wakes the workers and waits for them: 0 once every
 * worker has passed a loop turn since (or none runs), -1 on the timeout. */
int mc_engine_publish(mc_engine_t *e, mc_snapshot_t *s, mc_snapshot_t **old)
{
    pthread_mutex_lock(&e->shared.lock);
    uint64_t gen = ++e->shared.generation;
    if (s) {
        s->generation = gen;
        *old = e->shared.current;
        e->shared.current = s;
    }
    pthread_mutex_unlock(&e->shared.lock);
    if (e->started && !e->joined) {
        wake_all(e);
        return wait_acked(e, gen);
    }
    return 0;
}

uint64_t mc_engine_bump(mc_engine_t *e)
{
    if (!e->started || e->joined)
        return 0;
    pthread_mutex_lock(&e->shared.lock);
    uint64_t gen = ++e->shared.generation;
    pthread_mutex_unlock(&e->shared.lock);
    wake_all(e);
    return gen;
}

uint64_t mc_engine_acked(mc_engine_t *e)
{
    if (!e->started || e->joined)
        return UINT64_MAX;
    uint64_t low = UINT64_MAX;
    pthread_mutex_lock(&e->shared.lock);
    for (uint32_t i = 0; i < e->n_workers; i++)
        if (e->workers[i]->acked_gen < low)
            low = e->workers[i]->acked_gen;
    pthread_mutex_unlock(&e->shared.lock);
    return low;
}

int mc_engine_start(mc_engine_t *e, char *err, size_t errlen)
{
    pthread_mutex_lock(&e->ctl);
    int rc = 0;
    if (e->started) {
        snprintf(err, errlen, "engine already started");
        rc = -1;
        goto out;
    }
    for (uint32_t i = 0; i < e->n_workers; i++) {
        if (mc_worker_start(e->workers[i]) < 0) {
            snprintf(err, errlen, "cannot start worker thread: %s", strerror(errno));
            /* Stop the ones that did start. */
            pthread_mutex_lock(&e->shared.lock);
            e->shared.stopping = 1;
            e->shared.generation++;
            pthread_mutex_unlock(&e->shared.lock);
            for (uint32_t j = 0; j < i; j++) {
                mc_worker_wake(e->workers[j]);
                mc_worker_join(e->workers[j]);
            }
            e->joined = 1;
            rc = -1;
            goto out;
        }
    }
    e->started = 1;
    /* Workers adopt a snapshot applied before start. */
    mc_engine_publish(e, NULL, NULL);
out:
    pthread_mutex_unlock(&e->ctl);
    return rc;
}

static int same_socket(const mc_lsock_t *ls, const mc_listener_t *l)
{
    if (!mc_addr_equal(&ls->addr, &l->addr))
        return 0;
    /* Port 0 means "any free port": only the same listener may keep it. */
    return mc_addr_port(&l->addr) != 0 || strcmp(ls->name, l->name) == 0;
}

static mc_lsock_t *registry_find(mc_engine_t *e, const mc_listener_t *l)
{
    for (uint32_t i = 0; i < e->n_registry; i++)
        if (same_socket(e->registry[i], l))
            return e->registry[i];
    return NULL;
}

static void listener_scope(mc_engine_t *e, mc_listener_t *l)
{
    char name[MC_STATS_NAME_MAX];
    if (l->stat_prefix) {
        snprintf(name, sizeof(name), "%s", l->stat_prefix);
    } else {
        /* Envoy names listener stats after the address, ':' as '_'. */
        mc_addr_format(l->ls ? &l->ls->bound : &l->addr, name, sizeof(name));
        char *colon = strrchr(name, ':');
        if (colon)
            *colon = '_';
    }
    l->scope = mc_stats_scope(e->stats, MC_SCOPE_LISTENER, name);
}

/* Gives every listener of s a socket set: the registry's when the address
 * is already bound, a new one otherwise. Rolls back on failure. */
static int bind_listeners(mc_engine_t *e, mc_snapshot_t *s, char *err, size_t errlen)
{
    for (uint32_t i = 0; i < s->n_listeners; i++) {
        mc_listener_t *l = &s->listeners[i];
        if (e->shared.drained)
            continue;
        mc_lsock_t *ls = registry_find(e, l);
        if (ls) {
            mc_lsock_ref(ls);
        } else {
            char msg[200];
            ls = mc_lsock_open(l->name, &l->addr, e->n_workers, (int)l->backlog, l->reuse_port, msg,
                               sizeof(msg));
            if (!ls) {
                snprintf(err, errlen, "listener \"%s\": %s", l->name, msg);
                for (uint32_t j = 0; j < i; j++) {
                    mc_lsock_unref(s->listeners[j].ls);
                    s->listeners[j].ls = NULL;
                }
                return -1;
            }
        }
        l->ls = ls;
    }
    for (uint32_t i = 0; i < s->n_listeners; i++)
        listener_scope(e, &s->listeners[i]);
    return 0;
}

/* Replaces the registry with the socket sets of s; returns (in *gone) the
 * old entries s does not use, to be closed once workers let go of them. */
static int swap_registry(mc_engine_t *e, mc_snapshot_t *s, mc_lsock_t ***gone, uint32_t *n_gone)
{
    mc_lsock_t **next = calloc(s->n_listeners + 1, sizeof(*next));
    mc_lsock_t **old = calloc(e->n_registry + 1, sizeof(*old));
    if (!next || !old) {
        free(next);
        free(old);
        return -1;
    }
    uint32_t n = 0, k = 0;
    for (uint32_t i = 0; i < s->n_listeners; i++) {
        if (s->listeners[i].ls) {
            mc_lsock_ref(s->listeners[i].ls);
            next[n++] = s->listeners[i].ls;
        }
    }
    for (uint32_t i = 0; i < e->n_registry; i++) {
        int kept = 0;
        for (uint32_t j = 0; j < n; j++)
            kept |= next[j] == e->registry[i];
        if (kept)
            mc_lsock_unref(e->registry[i]); /* next[] holds its own ref */
        else
            old[k++] = e->registry[i];
    }
    free(e->registry);
    e->registry = next;
    e->n_registry = e->cap_registry = n;
    *gone = old;
    *n_gone = k;
    return 0;
}

static void close_gone(mc_lsock_t **gone, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        mc_lsock_close(gone[i]);
        mc_lsock_unref(gone[i]);
    }
    free(gone);
}

int mc_engine_apply(mc_engine_t *e, mc_snapshot_builder_t *b, char *err, size_t errlen)
{
    pthread_mutex_lock(&e->ctl);
    int rc = -1;
    mc_snapshot_t *s = b->snap;
    if (!s) {
        snprintf(err, errlen, "snapshot builder already used");
        goto out;
    }
    if (e->joined) {
        snprintf(err, errlen, "engine is stopped");
        goto out;
    }
    if (mc_snapshot_finalize(s, e->stats, &e->clusters, err, errlen) < 0)
        goto out;
    if (bind_listeners(e, s, err, errlen) < 0)
        goto out;
    mc_lsock_t **gone;
    uint32_t n_gone;
    if (swap_registry(e, s, &gone, &n_gone) < 0) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    b->snap = NULL; /* the engine's reference now */
    mc_snapshot_t *old = NULL;
    mc_engine_publish(e, s, &old);
    close_gone(gone, n_gone); /* every worker has stopped polling them */
    mc_snapshot_unref(old);
    mc_cluster_registry_prune(&e->clusters);
    rc = 0;
out:
    pthread_mutex_unlock(&e->ctl);
    return rc;
}

int mc_engine_drain_listeners(mc_engine_t *e)
{
    pthread_mutex_lock(&e->ctl);
    pthread_mutex_lock(&e->shared.lock);
    e->shared.drained = 1;
    pthread_mutex_unlock(&e->shared.lock);
    mc_engine_publish(e, NULL, NULL);
    mc_lsock_t **gone = e->registry;
    uint32_t n = e->n_registry;
    e->registry = NULL;
    e->n_registry = e->cap_registry = 0;
    for (uint32_t i = 0; i < n; i++) {
        mc_lsock_close(gone[i]);
        mc_lsock_unref(gone[i]);
    }
    free(gone);
    pthread_mutex_unlock(&e->ctl);
    return 0;
}

int mc_engine_stop(mc_engine_t *e, uint32_t drain_timeout_ms)
{
    pthread_mutex_lock(&e->ctl);
    if (!e->started || e->joined) {
        pthread_mutex_unlock(&e->ctl);
        return 0;
    }
    pthread_mutex_lock(&e->shared.lock);
    e->shared.stopping = 1;
    e->shared.stop_deadline_ns = mc_now_ns() + (uint64_t)drain_timeout_ms * 1000000ull;
    uint64_t gen = ++e->shared.generation;
    pthread_mutex_unlock(&e->shared.lock);
    wake_all(e);
    /* Once every worker has stopped polling them, close the listen sockets
     * so new connections are refused now, not at the end of the drain. */
    wait_acked(e, gen);
    for (uint32_t i = 0; i < e->n_registry; i++) {
        mc_lsock_close(e->registry[i]);
        mc_lsock_unref(e->registry[i]);
    }
    free(e->registry);
    e->registry = NULL;
    e->n_registry = e->cap_registry = 0;
    for (uint32_t i = 0; i < e->n_workers; i++)
        mc_worker_join(e->workers[i]);
    mc_alog_writer_stop(e->alog); /* after the workers: their last records get written */
    e->joined = 1;
    pthread_mutex_unlock(&e->ctl);
    return 0;
}

void mc_engine_free(mc_engine_t *e)
{
    if (!e)
        return;
    mc_engine_stop(e, 0);
    mc_alog_writer_free(e->alog); /* stopped above, or never started */
    if (e->workers) {
        for (uint32_t i = 0; i < e->n_workers; i++)
            mc_worker_free(e->workers[i]);
    }
    free(e->workers);
    for (uint32_t i = 0; i < e->n_registry; i++)
        mc_lsock_unref(e->registry[i]);
    free(e->registry);
    mc_snapshot_unref(e->shared.current);
    for (uint32_t i = 0; i < e->n_retired; i++)
        free(e->retired[i].ptr); /* the workers are joined */
    free(e->retired);
    mc_cluster_registry_destroy(&e->clusters);
    mc_stats_free(e->stats);
    pthread_cond_destroy(&e->shared.acked);
    pthread_mutex_destroy(&e->shared.lock);
    pthread_mutex_destroy(&e->ctl);
    free(e);
}

uint32_t mc_engine_concurrency(const mc_engine_t *e)
{
    return e->n_workers;
}

uint64_t mc_engine_generation(mc_engine_t *e)
{
    pthread_mutex_lock(&e->shared.lock);
    uint64_t g = e->shared.generation;
    pthread_mutex_unlock(&e->shared.lock);
    return g;
}

mc_stats_t *mc_engine_stats(mc_engine_t *e)
{
    return e->stats;
}

uint64_t mc_engine_active_sessions(mc_engine_t *e)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < e->n_workers; i++)
        n += __atomic_load_n(&e->workers[i]->sessions.n, __ATOMIC_RELAXED);
    return n;
}

int mc_engine_host_outlier(mc_engine_t *e, const char *cluster, const char *ip, uint16_t port, int *ejected,
                           uint32_t *ejections)
{
    mc_addr_t a;
    if (mc_addr_parse(&a, ip, port) < 0)
        return -1;
    int rc = -1;
    pthread_mutex_lock(&e->ctl); /* the registry changes only under ctl (apply) */
    for (uint32_t i = 0; i < e->clusters.n; i++) {
        if (strcmp(e->clusters.states[i]->name, cluster) == 0) {
            rc = mc_cluster_state_host_outlier(e->clusters.states[i], &a, mc_now_ns(), ejected, ejections);
            break;
        }
    }
    pthread_mutex_unlock(&e->ctl);
    return rc;
}

/* ---- the log writer (worker/alog_writer.c) ------------------------------------ */

int mc_engine_alog_add_sink(mc_engine_t *e, uint32_t log_id, const char *path, int fd,
                            const mc_alog_segment_t *http, uint32_t n_http, const mc_alog_segment_t *tcp,
                            uint32_t n_tcp, char *err, size_t errlen)
{
    return mc_alog_writer_add_sink(e->alog, log_id, path, fd, http, n_http, tcp, n_tcp, err, errlen);
}

uint32_t mc_engine_drain_spans(mc_engine_t *e, mc_alog_record_t *out, uint32_t max, uint64_t *dropped)
{
    return mc_alog_writer_spans(e->alog, out, max, dropped);
}

void mc_engine_alog_flush(mc_engine_t *e)
{
    mc_alog_writer_flush(e->alog);
}

void mc_engine_alog_counters(mc_engine_t *e, uint64_t *ring_dropped, uint64_t *spans_dropped, uint64_t *write_errors)
{
    uint64_t ring = 0, ring_spans = 0, queue_spans = 0;
    for (uint32_t i = 0; i < e->n_workers; i++) {
        ring += __atomic_load_n(&e->workers[i]->alog.dropped, __ATOMIC_RELAXED);
        ring_spans += __atomic_load_n(&e->workers[i]->alog.dropped_spans, __ATOMIC_RELAXED);
    }
    *write_errors = mc_alog_writer_errors(e->alog, &queue_spans);
    *ring_dropped = ring;
    *spans_dropped = ring_spans + queue_spans;
}

size_t mc_engine_im_export(mc_engine_t *e, const double *duration_bounds, uint32_t n_duration,
                           const double *bytes_bounds, uint32_t n_bytes, mc_im_row_t *out, size_t cap)
{
    size_t n = 0;
    for (uint32_t i = 0; i < e->n_workers; i++)
        n += mc_im_table_export(&e->workers[i]->im, i, duration_bounds, n_duration, bytes_bounds, n_bytes,
                                out + (n < cap ? n : cap), n < cap ? cap - n : 0);
    return n;
}

static const mc_im_strings_t *im_strings(mc_engine_t *e, uint32_t worker, int principals)
{
    if (worker >= e->n_workers)
        return NULL;
    mc_im_table_t *t = &e->workers[worker]->im;
    return principals ? &t->principals : &t->peers;
}

const char *mc_engine_im_peer(mc_engine_t *e, uint32_t worker, uint32_t index, size_t *len)
{
    const mc_im_strings_t *st = im_strings(e, worker, 0);
    if (!st || index == 0 || index > __atomic_load_n(&st->n, __ATOMIC_ACQUIRE))
        return NULL;
    *len = st->len[index];
    return st->data[index];
}

const char *mc_engine_im_principal(mc_engine_t *e, uint32_t worker, uint32_t index)
{
    const mc_im_strings_t *st = im_strings(e, worker, 1);
    if (!st || index == 0 || index > __atomic_load_n(&st->n, __ATOMIC_ACQUIRE))
        return NULL;
    return st->data[index];
}

void mc_engine_im_overflow(mc_engine_t *e, uint64_t *sets, uint64_t *peers, uint64_t *principals)
{
    *sets = *peers = *principals = 0;
    for (uint32_t i = 0; i < e->n_workers; i++) {
        mc_im_table_t *t = &e->workers[i]->im;
        *sets += __atomic_load_n(&t->overflow, __ATOMIC_RELAXED);
        *peers += __atomic_load_n(&t->peers.overflow, __ATOMIC_RELAXED);
        *principals += __atomic_load_n(&t->principals.overflow, __ATOMIC_RELAXED);
    }
}

static mc_snapshot_t *current_ref(mc_engine_t *e)
{
    pthread_mutex_lock(&e->shared.lock);
    mc_snapshot_t *s = e->shared.current;
    if (s)
        mc_snapshot_ref(s);
    pthread_mutex_unlock(&e->shared.lock);
    return s;
}

uint32_t mc_engine_listener_count(mc_engine_t *e)
{
    mc_snapshot_t *s = current_ref(e);
    uint32_t n = s ? s->n_listeners : 0;
    mc_snapshot_unref(s);
    return n;
}

int mc_engine_listener_info(mc_engine_t *e, uint32_t i, char *name, size_t namelen, char *addr,
                            size_t addrlen, uint16_t *port)
{
    mc_snapshot_t *s = current_ref(e);
    if (!s || i >= s->n_listeners) {
        mc_snapshot_unref(s);
        return -1;
    }
    const mc_listener_t *l = &s->listeners[i];
    snprintf(name, namelen, "%s", l->name);
    /* Drained listeners report their configured address and port 0. */
    const mc_addr_t *a = l->ls && l->ls->fds[0] >= 0 ? &l->ls->bound : &l->addr;
    mc_addr_format(a, addr, addrlen);
    *port = l->ls && l->ls->fds[0] >= 0 ? mc_addr_port(&l->ls->bound) : 0;
    mc_snapshot_unref(s);
    return 0;
}
