/* The listener layer: see proxy/listener.h. */
#include <malloc.h>
#include <stdlib.h>
#include <unistd.h>

#include <openssl/err.h>

#include "meshcore/overload.h"
#include "proxy/http_conn.h"
#include "proxy/http_stream.h"
#include "proxy/http_upstream.h"
#include "proxy/listener.h"
#include "proxy/tcp_proxy.h"
#include "worker/control.h"

/* ---- admission -------------------------------------------------------------- */

static void unadmit(mc_worker_t *w, const mc_listener_t *l, mc_admission_t *a)
{
    if (a->global) {
        a->global = 0;
        __atomic_sub_fetch(&w->ctl->downstream_cx, 1, __ATOMIC_RELAXED);
        mc_stat_add(w->stats, w->server_scope, MC_SERVER_TOTAL_CONNECTIONS, -1);
    }
    if (!a->limited)
        return;
    a->limited = 0;
    __atomic_sub_fetch(&l->ls->active_cx, 1, __ATOMIC_RELAXED);
    mc_stat_add(w->stats, l->conn_limit_scope, MC_CONN_LIMIT_ACTIVE_CONNECTIONS, -1);
}

/* The overload manager's global limit (every listener, every worker), then
 * envoy.filters.network.connection_limit: 0 admitted, -1 refused (counted).
 * Every admitted connection is in the global count, limited or not, so a
 * limit applied later starts from the true number. */
static int admit(mc_worker_t *w, const mc_snapshot_t *snap, const mc_listener_t *l, mc_admission_t *a)
{
    mc_stats_shard_t *st = w->stats;
    a->limited = 0;
    a->global = 0;
    a->start_ns = w->loop.now;
    if (mc_overload_on(w->ctl, MC_OA_REJECT_INCOMING_CONNECTIONS)) {
        mc_stat_inc(st, l->scope, MC_LISTENER_DOWNSTREAM_CX_OVERLOAD_REJECT);
        return -1;
    }
    int64_t g = __atomic_add_fetch(&w->ctl->downstream_cx, 1, __ATOMIC_RELAXED);
    if (snap->max_downstream_cx && g > (int64_t)snap->max_downstream_cx) {
        __atomic_sub_fetch(&w->ctl->downstream_cx, 1, __ATOMIC_RELAXED);
        mc_stat_inc(st, l->scope, MC_LISTENER_DOWNSTREAM_GLOBAL_CX_OVERFLOW);
        return -1;
    }
    a->global = 1;
    mc_stat_inc(st, w->server_scope, MC_SERVER_TOTAL_CONNECTIONS);
    if (!l->conn_limit)
        return 0;
    int64_t n = __atomic_add_fetch(&l->ls->active_cx, 1, __ATOMIC_RELAXED);
    if (n > (int64_t)l->conn_limit) {
        __atomic_sub_fetch(&l->ls->active_cx, 1, __ATOMIC_RELAXED);
        mc_stat_inc(st, l->conn_limit_scope, MC_CONN_LIMIT_LIMITED_CONNECTIONS);
        mc_stat_inc(st, l->scope, MC_LISTENER_DOWNSTREAM_CX_OVERFLOW);
        unadmit(w, l, a);
        return -1;
    }
    a->limited = 1;
    mc_stat_inc(st, l->conn_limit_scope, MC_CONN_LIMIT_ACTIVE_CONNECTIONS);
    return 0;
}

void mc_listener_overflow(mc_worker_t *w, const mc_listener_t *l, mc_admission_t *a, int fd)
{
    unadmit(w, l, a);
    mc_stat_inc(w->stats, w->server_scope, MC_SERVER_CONN_POOL_EXHAUSTED);
    mc_stat_inc(w->stats, l->scope, MC_LISTENER_DOWNSTREAM_CX_OVERFLOW);
    close(fd);
}

void mc_listener_cx_open(mc_worker_t *w, const mc_listener_t *l)
{
    mc_stat_inc(w->stats, l->scope, MC_LISTENER_DOWNSTREAM_CX_TOTAL);
    mc_stat_inc(w->stats, l->scope, MC_LISTENER_DOWNSTREAM_CX_ACTIVE);
}

void mc_listener_cx_close(mc_worker_t *w, const mc_listener_t *l, mc_admission_t *a)
{
    mc_stats_shard_t *st = w->stats;
    mc_stat_add(st, l->scope, MC_LISTENER_DOWNSTREAM_CX_ACTIVE, -1);
    mc_stat_inc(st, l->scope, MC_LISTENER_DOWNSTREAM_CX_DESTROY);
    mc_stat_hist(st, l->scope, MC_LISTENER_H_DOWNSTREAM_CX_LENGTH_MS, (w->loop.now - a->start_ns) / 1000);
    unadmit(w, l, a);
}

void mc_listener_start_chain(mc_worker_t *w, mc_wctx_t *c, uint32_t li, uint32_t chain, int fd,
                             const mc_addr_t *peer)
{
    const mc_listener_t *l = &c->snap->listeners[li];
    const mc_chain_t *ch = &l->chains[chain];
    mc_admission_t a;
    if (admit(w, c->snap, l, &a) < 0) {
        close(fd);
        return;
    }
    if (ch->hcm.present)
        mc_h1_server_accept(w, c, l, ch, fd, peer, &a);
    else
        mc_tcp_proxy_accept(w, c, l, ch, fd, peer, &a);
}

/* ---- network RBAC ----------------------------------------------------------- */

int mc_listener_net_rbac(mc_worker_t *w, const mc_listener_t *l, const mc_chain_t *ch, const mc_addr_t *peer,
                         const char *principal, const char **denied_by)
{
    if (!ch->n_net_rbac)
        return 1;
    uint32_t scope = ch->hcm.present ? ch->hcm.scope : ch->tcp.scope;
    uint32_t allowed = ch->hcm.present ? MC_HTTP_RBAC_ALLOWED : MC_TCP_RBAC_ALLOWED;
    uint32_t denied = ch->hcm.present ? MC_HTTP_RBAC_DENIED : MC_TCP_RBAC_DENIED;
    mc_rbac_ctx_t c = {.principal = principal, .authenticated = principal[0] != 0, .peer = peer,
                       .local = l->ls ? &l->ls->bound : &l->addr, .md = w->match_data};
    for (uint32_t i = 0; i < ch->n_net_rbac; i++) {
        const char *policy;
        if (!mc_rbac_allows(ch->net_rbac[i], &c, &policy)) {
            *denied_by = policy ? policy : "";
            mc_stat_inc(w->stats, scope, denied);
            return 0;
        }
    }
    mc_stat_inc(w->stats, scope, allowed);
    return 1;
}

/* ---- TLS failures ------------------------------------------------------------- */

const char *mc_tls_count_failure(mc_stats_shard_t *st, uint32_t scope, SSL *ssl, int side)
{
    int kind = mc_tls_failure_kind(ssl);
    const char *why = mc_tls_failure(ssl);
    if (side == MC_TLS_DOWNSTREAM) {
        mc_stat_inc(st, scope, MC_LISTENER_SSL_CONNECTION_ERROR);
        if (kind == MC_TLS_FAIL_SAN)
            mc_stat_inc(st, scope, MC_LISTENER_SSL_FAIL_VERIFY_SAN);
        else if (kind == MC_TLS_FAIL_VERIFY)
            mc_stat_inc(st, scope, MC_LISTENER_SSL_FAIL_VERIFY_ERROR);
        else if (kind == MC_TLS_FAIL_NO_CERT)
            mc_stat_inc(st, scope, MC_LISTENER_SSL_NO_CERTIFICATE);
    } else {
        mc_stat_inc(st, scope, MC_CLUSTER_SSL_CONNECTION_ERROR);
        if (kind == MC_TLS_FAIL_SAN)
            mc_stat_inc(st, scope, MC_CLUSTER_SSL_FAIL_VERIFY_SAN);
        else if (kind == MC_TLS_FAIL_VERIFY)
            mc_stat_inc(st, scope, MC_CLUSTER_SSL_FAIL_VERIFY_ERROR);
    }
    ERR_clear_error();
    return why;
}

/* ---- the worker's hooks --------------------------------------------------------- */

static void on_accept(mc_worker_t *w, mc_wctx_t *c, uint32_t li, int fd, const mc_addr_t *peer)
{
    if (c->snap->listeners[li].inspect)
        mc_tls_inspector_start(w, c, li, fd, peer);
    else
        mc_listener_start_chain(w, c, li, 0, fd, peer);
}

/* ---- memory after a flood ------------------------------------------------------ */

#define TRIM_PERIOD_NS (5ull * 1000000000ull)

/* A pool at most half used gives back its wholly free slabs, keeping room
 * for as many objects again as are in use (so a steady load never trims
 * what it will allocate again). 0 when nothing went back. */
static size_t trim_pool(mc_pool_t *p)
{
    if (p->in_use * 2 > p->n_objs)
        return 0;
    return mc_pool_trim(p, p->per_slab + p->in_use);
}

/* envoy.overload_actions.shrink_heap: every wholly free slab goes back,
 * however full the pool, and malloc_trim runs each period. */
static size_t shrink_pool(mc_pool_t *p)
{
    return mc_pool_trim(p, 0);
}

/* Every 5 s: pooled objects and buffers a flood left behind go back to the
 * allocator, and the allocator gives free pages back to the kernel
 * (malloc_trim), so RSS returns near its level before the flood. */
static void on_trim(mc_timer_t *t)
{
    mc_proxy_worker_t *p = mc_container_of(t, mc_proxy_worker_t, trim);
    mc_worker_t *w = p->w;
    int shrink = mc_overload_on(w->ctl, MC_OA_SHRINK_HEAP);
    size_t (*trim)(mc_pool_t *) = shrink ? shrink_pool : trim_pool;
    size_t freed = trim(&p->tcp_sessions) + trim(&p->http_conns) + trim(&p->http_streams) + trim(&p->upconns) +
                   trim(&w->bufs) + mc_bc_trim(&p->blocks, shrink);
    if (freed || shrink)
        malloc_trim(0);
    mc_timer_arm(&w->loop.timers, &p->trim, w->loop.now + TRIM_PERIOD_NS);
}

static int worker_init(mc_worker_t *w, uint32_t max_connections)
{
    mc_proxy_worker_t *p = calloc(1, sizeof(*p));
    if (!p)
        return -1;
    mc_pool_init(&p->tcp_sessions, mc_tcp_proxy_session_size(), 256, max_connections);
    mc_pool_init(&p->http_conns, mc_http_conn_size(), 64, max_connections);
    mc_pool_init(&p->http_streams, mc_http_stream_size(), 64, 0);
    mc_pool_init(&p->upconns, mc_upconn_size(), 64, 0);
    mc_bc_init(&p->blocks);
    mc_h2_mem_init(&p->h2mem, &p->blocks);
    mc_list_init(&p->h2_sessions);
    p->w = w;
    mc_timer_init(&p->trim, on_trim);
    mc_timer_arm(&w->loop.timers, &p->trim, w->loop.now + TRIM_PERIOD_NS);
    w->proxy = p;
    return 0;
}

static void worker_fini(mc_worker_t *w)
{
    mc_proxy_worker_t *p = w->proxy;
    if (!p)
        return;
    mc_timer_cancel(&w->loop.timers, &p->trim);
    mc_pool_destroy(&p->tcp_sessions);
    mc_pool_destroy(&p->http_conns);
    mc_pool_destroy(&p->http_streams);
    mc_pool_destroy(&p->upconns);
    mc_bc_destroy(&p->blocks);
    free(p);
    w->proxy = NULL;
}

static void close_idle(mc_host_wpool_t *p)
{
    while (!mc_list_empty(&p->idle))
        mc_upconn_close(mc_container_of(p->idle.next, mc_upconn_t, link));
    mc_h2up_close_idle(&p->h2);
}

/* A session to a host no snapshot names any more, busy when its cluster
 * went and idle since, is in no host pool the worker still walks. */
static void close_upstreams(mc_worker_t *w)
{
    mc_h2up_close_all(&mc_proxy_of(w)->h2_sessions);
}

const mc_worker_hooks_t mc_proxy_hooks = {
    .accept = on_accept,
    .init = worker_init,
    .fini = worker_fini,
    .close_idle = close_idle,
    .close_upstreams = close_upstreams,
};
