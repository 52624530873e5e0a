/* Snapshot building, finishing and lifetime; see worker/snapshot.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meshcore/balancer.h"
#include "worker/snapshot.h"

static int fail(mc_snapshot_builder_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->error, sizeof(b->error), fmt, ap);
    va_end(ap);
    return -1;
}

/* Grows *arr (of `size`-byte items) so index n fits. */
static int reserve(void **arr, uint32_t *cap, uint32_t n, size_t size)
{
    if (n < *cap)
        return 0;
    uint32_t ncap = *cap ? *cap * 2 : 4;
    void *p = realloc(*arr, ncap * size);
    if (!p)
        return -1;
    memset((char *)p + *cap * size, 0, (ncap - *cap) * size);
    *arr = p;
    *cap = ncap;
    return 0;
}

static char *dup_or_null(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

mc_snapshot_builder_t *mc_sb_new(void)
{
    mc_snapshot_builder_t *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->snap = calloc(1, sizeof(*b->snap));
    if (!b->snap) {
        free(b);
        return NULL;
    }
    b->snap->refcnt = 1;
    return b;
}

void mc_sb_free(mc_snapshot_builder_t *b)
{
    if (!b)
        return;
    mc_snapshot_unref(b->snap);
    free(b);
}

const char *mc_sb_error(const mc_snapshot_builder_t *b)
{
    return b->error;
}

int mc_sb_add_cluster(mc_snapshot_builder_t *b, const char *name, int lb_policy,
                      uint32_t connect_timeout_ms)
{
    mc_snapshot_t *s = b->snap;
    if (lb_policy < MC_LB_ROUND_ROBIN || lb_policy > MC_LB_RANDOM)
        return fail(b, "cluster \"%s\": unknown lb policy %d", name, lb_policy);
    for (uint32_t i = 0; i < s->n_clusters; i++)
        if (strcmp(s->clusters[i].name, name) == 0)
            return fail(b, "cluster \"%s\": duplicate name", name);
    if (reserve((void **)&s->clusters, &s->cap_clusters, s->n_clusters, sizeof(mc_cluster_t)) < 0)
        return fail(b, "out of memory");
    mc_cluster_t *c = &s->clusters[s->n_clusters];
    c->name = strdup(name);
    c->lb_policy = (uint32_t)lb_policy;
    c->connect_timeout_ns = (uint64_t)(connect_timeout_ms ? connect_timeout_ms : 5000) * 1000000ull;
    return (int)s->n_clusters++;
}

int mc_sb_add_endpoint(mc_snapshot_builder_t *b, int cluster, const char *ip, uint16_t port,
                       uint32_t weight)
{
    mc_snapshot_t *s = b->snap;
    if (cluster < 0 || (uint32_t)cluster >= s->n_clusters)
        return fail(b, "endpoint: no cluster %d", cluster);
    mc_cluster_t *c = &s->clusters[cluster];
    mc_addr_t addr;
    if (mc_addr_parse(&addr, ip, port) < 0)
        return fail(b, "cluster \"%s\": endpoint address \"%s\" is not an IP literal", c->name, ip);
    if (port == 0)
        return fail(b, "cluster \"%s\": endpoint %s has port 0", c->name, ip);
    uint32_t cap = c->cap_endpoints;
    if (reserve((void **)&c->endpoints, &cap, c->n_endpoints, sizeof(mc_endpoint_t)) < 0)
        return fail(b, "out of memory");
    cap = c->cap_endpoints;
    if (reserve((void **)&c->weights, &cap, c->n_endpoints, sizeof(uint32_t)) < 0)
        return fail(b, "out of memory");
    cap = c->cap_endpoints;
    if (reserve((void **)&c->cum_weights, &cap, c->n_endpoints, sizeof(uint64_t)) < 0)
        return fail(b, "out of memory");
    c->cap_endpoints = cap;
    mc_endpoint_t *e = &c->endpoints[c->n_endpoints];
    e->addr = addr;
    mc_addr_format(&addr, e->name, sizeof(e->name));
    c->weights[c->n_endpoints] = weight ? weight : 1;
    return (int)c->n_endpoints++;
}

int mc_sb_add_listener(mc_snapshot_builder_t *b, const char *name, const char *ip, uint16_t port,
                       const char *stat_prefix, uint32_t backlog)
{
    mc_snapshot_t *s = b->snap;
    mc_addr_t addr;
    if (mc_addr_parse(&addr, ip, port) < 0)
        return fail(b, "listener \"%s\": address \"%s\" is not an IP literal", name, ip);
    for (uint32_t i = 0; i < s->n_listeners; i++) {
        if (strcmp(s->listeners[i].name, name) == 0)
            return fail(b, "listener \"%s\": duplicate name", name);
        if (port && mc_addr_equal(&s->listeners[i].addr, &addr))
            return fail(b, "listener \"%s\": address %s:%u already used by listener \"%s\"", name,
                        ip, port, s->listeners[i].name);
    }
    if (reserve((void **)&s->listeners, &s->cap_listeners, s->n_listeners, sizeof(mc_listener_t)) < 0)
        return fail(b, "out of memory");
    mc_listener_t *l = &s->listeners[s->n_listeners];
    l->name = strdup(name);
    l->stat_prefix = dup_or_null(stat_prefix);
    l->addr = addr;
    l->backlog = backlog ? backlog : 1024;
    return (int)s->n_listeners++;
}

static mc_listener_t *listener_at(mc_snapshot_builder_t *b, int listener)
{
    if (listener < 0 || (uint32_t)listener >= b->snap->n_listeners) {
        fail(b, "no listener %d", listener);
        return NULL;
    }
    return &b->snap->listeners[listener];
}

int mc_sb_set_connection_limit(mc_snapshot_builder_t *b, int listener, const char *stat_prefix,
                               uint32_t max_connections)
{
    mc_listener_t *l = listener_at(b, listener);
    if (!l)
        return -1;
    if (max_connections == 0)
        return fail(b, "listener \"%s\": connection_limit max_connections must be > 0", l->name);
    free(l->conn_limit_prefix);
    l->conn_limit_prefix = strdup(stat_prefix && *stat_prefix ? stat_prefix : l->name);
    l->conn_limit = max_connections;
    return 0;
}

int mc_sb_set_tcp_proxy(mc_snapshot_builder_t *b, int listener, const char *stat_prefix,
                        uint32_t idle_timeout_ms, uint32_t max_connect_attempts)
{
    mc_listener_t *l = listener_at(b, listener);
    if (!l)
        return -1;
    if (!stat_prefix || !*stat_prefix)
        return fail(b, "listener \"%s\": tcp_proxy stat_prefix is required", l->name);
    free(l->tcp.stat_prefix);
    l->tcp.present = 1;
    l->tcp.stat_prefix = strdup(stat_prefix);
    l->tcp.idle_timeout_ns = (uint64_t)idle_timeout_ms * 1000000ull;
    l->tcp.max_connect_attempts = max_connect_attempts ? max_connect_attempts : 1;
    return 0;
}

int mc_sb_add_tcp_proxy_cluster(mc_snapshot_builder_t *b, int listener, const char *cluster,
                                uint32_t weight)
{
    mc_listener_t *l = listener_at(b, listener);
    if (!l)
        return -1;
    mc_tcp_proxy_t *t = &l->tcp;
    uint32_t cap = t->cap_clusters;
    if (reserve((void **)&t->cluster_names, &cap, t->n_clusters, sizeof(char *)) < 0)
        return fail(b, "out of memory");
    cap = t->cap_clusters;
    if (reserve((void **)&t->cluster_idx, &cap, t->n_clusters, sizeof(uint32_t)) < 0)
        return fail(b, "out of memory");
    cap = t->cap_clusters;
    if (reserve((void **)&t->weights, &cap, t->n_clusters, sizeof(uint32_t)) < 0)
        return fail(b, "out of memory");
    t->cap_clusters = cap;
    t->cluster_names[t->n_clusters] = strdup(cluster);
    t->weights[t->n_clusters] = weight ? weight : 1;
    return (int)t->n_clusters++;
}

static int find_cluster(const mc_snapshot_t *s, const char *name)
{
    for (uint32_t i = 0; i < s->n_clusters; i++)
        if (strcmp(s->clusters[i].name, name) == 0)
            return (int)i;
    return -1;
}

int mc_snapshot_finalize(mc_snapshot_t *s, mc_stats_t *stats, char *err, size_t errlen)
{
    char name[MC_STATS_NAME_MAX];
    for (uint32_t i = 0; i < s->n_clusters; i++) {
        mc_cluster_t *c = &s->clusters[i];
        uint64_t sum = 0;
        for (uint32_t e = 0; e < c->n_endpoints; e++) {
            sum += c->weights[e];
            c->cum_weights[e] = sum;
            snprintf(name, sizeof(name), "%s::%s", c->name, c->endpoints[e].name);
            c->endpoints[e].host_scope = mc_stats_scope(stats, MC_SCOPE_HOST, name);
        }
        c->scope = mc_stats_scope(stats, MC_SCOPE_CLUSTER, c->name);
    }
    for (uint32_t i = 0; i < s->n_listeners; i++) {
        mc_listener_t *l = &s->listeners[i];
        if (!l->tcp.present) {
            snprintf(err, errlen, "listener \"%s\": no tcp_proxy filter", l->name);
            return -1;
        }
        if (l->tcp.n_clusters == 0) {
            snprintf(err, errlen, "listener \"%s\": tcp_proxy has no cluster", l->name);
            return -1;
        }
        for (uint32_t k = 0; k < l->tcp.n_clusters; k++) {
            int idx = find_cluster(s, l->tcp.cluster_names[k]);
            if (idx < 0) {
                snprintf(err, errlen, "listener \"%s\": tcp_proxy: unknown cluster \"%s\"", l->name,
                         l->tcp.cluster_names[k]);
                return -1;
            }
            l->tcp.cluster_idx[k] = (uint32_t)idx;
        }
        l->tcp.scope = mc_stats_scope(stats, MC_SCOPE_TCP, l->tcp.stat_prefix);
        if (l->conn_limit)
            l->conn_limit_scope = mc_stats_scope(stats, MC_SCOPE_CONN_LIMIT, l->conn_limit_prefix);
    }
    return 0;
}

void mc_snapshot_ref(mc_snapshot_t *s)
{
    __atomic_add_fetch(&s->refcnt, 1, __ATOMIC_RELAXED);
}

static void free_snapshot(mc_snapshot_t *s)
{
    for (uint32_t i = 0; i < s->n_clusters; i++) {
        mc_cluster_t *c = &s->clusters[i];
        free(c->name);
        free(c->endpoints);
        free(c->weights);
        free(c->cum_weights);
    }
    free(s->clusters);
    for (uint32_t i = 0; i < s->n_listeners; i++) {
        mc_listener_t *l = &s->listeners[i];
        free(l->name);
        free(l->stat_prefix);
        free(l->conn_limit_prefix);
        free(l->tcp.stat_prefix);
        for (uint32_t k = 0; k < l->tcp.n_clusters; k++)
            free(l->tcp.cluster_names[k]);
        free(l->tcp.cluster_names);
        free(l->tcp.cluster_idx);
        free(l->tcp.weights);
        mc_lsock_unref(l->ls);
    }
    free(s->listeners);
    free(s);
}

void mc_snapshot_unref(mc_snapshot_t *s)
{
    if (s && __atomic_sub_fetch(&s->refcnt, 1, __ATOMIC_ACQ_REL) == 0)
        free_snapshot(s);
}
