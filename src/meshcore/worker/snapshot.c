/* Snapshot building, finishing and lifetime; see worker/snapshot.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
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

void mc_sb_set_tls_cache(mc_snapshot_builder_t *b, mc_tls_cache_t *cache)
{
    b->tls_cache = cache;
}

const char *mc_sb_error(const mc_snapshot_builder_t *b)
{
    return b->error;
}

/* Cluster names are looked up once per route target and per cluster added:
 * a hash index keeps a 1,000-cluster, 1,000-route compile linear. */
static uint32_t *index_slot(const mc_snapshot_t *s, const char *name)
{
    uint32_t mask = s->index_cap - 1;
    for (uint32_t pos = (uint32_t)mc_xxh64(name, strlen(name), 0) & mask;; pos = (pos + 1) & mask) {
        uint32_t *slot = &s->cluster_index[pos];
        if (*slot == 0 || strcmp(s->clusters[*slot - 1].name, name) == 0)
            return slot;
    }
}

int mc_snapshot_find_cluster(const mc_snapshot_t *s, const char *name)
{
    if (!s->index_cap)
        return -1;
    uint32_t *slot = index_slot(s, name);
    return *slot ? (int)(*slot - 1) : -1;
}

/* Room in the index for one more cluster (load factor at most 1/2). */
static int index_reserve(mc_snapshot_t *s)
{
    if ((s->n_clusters + 1) * 2 <= s->index_cap)
        return 0;
    uint32_t cap = s->index_cap ? s->index_cap * 2 : 16;
    uint32_t *idx = calloc(cap, sizeof(*idx));
    if (!idx)
        return -1;
    free(s->cluster_index);
    s->cluster_index = idx;
    s->index_cap = cap;
    for (uint32_t i = 0; i < s->n_clusters; i++)
        *index_slot(s, s->clusters[i].name) = i + 1;
    return 0;
}

int mc_sb_add_cluster(mc_snapshot_builder_t *b, const char *name, int lb_policy,
                      uint32_t connect_timeout_ms)
{
    mc_snapshot_t *s = b->snap;
    if (lb_policy < MC_LB_ROUND_ROBIN || lb_policy > MC_LB_RING_HASH)
        return fail(b, "cluster \"%s\": unknown lb policy %d", name, lb_policy);
    if (mc_snapshot_find_cluster(s, name) >= 0)
        return fail(b, "cluster \"%s\": duplicate name", name);
    if (index_reserve(s) < 0 ||
        reserve((void **)&s->clusters, &s->cap_clusters, s->n_clusters, sizeof(mc_cluster_t)) < 0)
        return fail(b, "out of memory");
    mc_cluster_t *c = &s->clusters[s->n_clusters];
    c->name = strdup(name);
    c->lb_policy = (uint32_t)lb_policy;
    c->connect_timeout_ns = (uint64_t)(connect_timeout_ms ? connect_timeout_ms : 5000) * 1000000ull;
    /* Envoy's defaults, for clusters the compiler says nothing more about. */
    c->max_connections = c->max_pending_requests = c->max_requests = 1024;
    c->max_retries = 3;
    c->idle_timeout_ns = 3600ull * 1000000000ull;
    c->ring_min = 1024;
    c->ring_max = 8u << 20;
    if (!c->name)
        return fail(b, "out of memory");
    *index_slot(s, name) = s->n_clusters + 1;
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
    if (reserve((void **)&l->chains, &l->cap_chains, 0, sizeof(mc_chain_t)) < 0)
        return fail(b, "out of memory");
    l->n_chains = 1; /* chain 0: MC_CHAIN_ANY until told otherwise */
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

int mc_sb_set_reuse_port(mc_snapshot_builder_t *b, int listener, int on)
{
    mc_listener_t *l = listener_at(b, listener);
    if (!l)
        return -1;
    l->reuse_port = on != 0;
    return listener;
}

int mc_sb_set_global_downstream_max_connections(mc_snapshot_builder_t *b, uint64_t max)
{
    if (max == 0)
        return fail(b, "global_downstream_max_connections: max_active_downstream_connections must be > 0");
    b->snap->max_downstream_cx = max;
    b->snap->max_downstream_cx_set = 1;
    return 0;
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
    mc_chain_t *ch = &l->chains[l->n_chains - 1];
    if (!stat_prefix || !*stat_prefix)
        return fail(b, "listener \"%s\": tcp_proxy stat_prefix is required", l->name);
    if (ch->hcm.present)
        return fail(b, "listener \"%s\": has an http_connection_manager already", l->name);
    free(ch->tcp.stat_prefix);
    ch->tcp.present = 1;
    ch->tcp.stat_prefix = strdup(stat_prefix);
    ch->tcp.idle_timeout_ns = (uint64_t)idle_timeout_ms * 1000000ull;
    ch->tcp.max_connect_attempts = max_connect_attempts ? max_connect_attempts : 1;
    return 0;
}

int mc_sb_add_tcp_proxy_cluster(mc_snapshot_builder_t *b, int listener, const char *cluster,
                                uint32_t weight)
{
    mc_listener_t *l = listener_at(b, listener);
    if (!l)
        return -1;
    mc_chain_t *ch = &l->chains[l->n_chains - 1];
    mc_tcp_proxy_t *t = &ch->tcp;
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

int mc_sb_set_cluster_http(mc_snapshot_builder_t *b, int cluster, const mc_sb_cluster_http_t *h)
{
    mc_snapshot_t *s = b->snap;
    if (cluster < 0 || (uint32_t)cluster >= s->n_clusters)
        return fail(b, "no cluster %d", cluster);
    mc_cluster_t *c = &s->clusters[cluster];
    c->max_connections = h->max_connections;
    c->max_pending_requests = h->max_pending_requests;
    c->max_requests = h->max_requests;
    c->max_retries = h->max_retries;
    c->outlier.enabled = (uint32_t)(h->outlier != 0);
    c->outlier.consecutive_5xx = h->consecutive_5xx;
    c->outlier.consecutive_gateway_failure = h->consecutive_gateway_failure;
    c->outlier.base_ejection_ns = (uint64_t)h->base_ejection_ms * 1000000ull;
    c->outlier.max_ejection_ns = (uint64_t)h->max_ejection_ms * 1000000ull;
    c->outlier.max_ejection_percent = h->max_ejection_percent;
    c->idle_timeout_ns = (uint64_t)h->idle_timeout_ms * 1000000ull;
    c->max_requests_per_connection = h->max_requests_per_connection;
    c->protocol = (uint8_t)h->protocol;
    c->h2_max_streams = h->h2_max_concurrent_streams;
    c->h2_stream_window = h->h2_initial_stream_window ? h->h2_initial_stream_window : 65535;
    c->h2_conn_window = h->h2_initial_connection_window ? h->h2_initial_connection_window : 1u << 20;
    c->h2_keepalive = h->h2_keepalive;
    if (h->ring_min)
        c->ring_min = h->ring_min;
    if (h->ring_max)
        c->ring_max = h->ring_max;
    if (c->ring_min > c->ring_max)
        return fail(b, "cluster \"%s\": ring hash minimum_ring_size exceeds maximum_ring_size", c->name);
    return 0;
}

int mc_sb_set_hcm(mc_snapshot_builder_t *b, int listener, const mc_sb_hcm_t *hcm)
{
    mc_listener_t *l = listener_at(b, listener);
    if (!l)
        return -1;
    mc_chain_t *ch = &l->chains[l->n_chains - 1];
    if (ch->tcp.present)
        return fail(b, "listener \"%s\": has a tcp_proxy already", l->name);
    mc_hcm_destroy(&ch->hcm);
    char err[200];
    if (mc_hcm_init(&ch->hcm, hcm, err, sizeof(err)) < 0) {
        mc_hcm_destroy(&ch->hcm);
        return fail(b, "listener \"%s\": %s", l->name, err);
    }
    return 0;
}

int mc_sb_add_vhost(mc_snapshot_builder_t *b, int listener, const char *name, const char *const *domains,
                    uint32_t n_domains, const mc_sb_header_ops_t *request_ops,
                    const mc_sb_header_ops_t *response_ops, const mc_sb_retry_t *retry)
{
    mc_listener_t *l = listener_at(b, listener);
    if (!l)
        return -1;
    mc_chain_t *ch = &l->chains[l->n_chains - 1];
    if (!ch->hcm.present)
        return fail(b, "listener \"%s\": no http_connection_manager", l->name);
    char err[200];
    int v = mc_route_table_add_vhost(&ch->hcm.rt, name, domains, n_domains, request_ops, response_ops, retry, err,
                                     sizeof(err));
    if (v < 0)
        return fail(b, "listener \"%s\": virtual host \"%s\": %s", l->name, name, err);
    return v;
}

int mc_sb_add_route(mc_snapshot_builder_t *b, int listener, int vhost, const mc_sb_route_t *route)
{
    mc_listener_t *l = listener_at(b, listener);
    if (!l)
        return -1;
    mc_chain_t *ch = &l->chains[l->n_chains - 1];
    if (!ch->hcm.present || vhost < 0)
        return fail(b, "listener \"%s\": no such virtual host", l->name);
    char err[256];
    int r = mc_route_table_add_route(&ch->hcm.rt, (uint32_t)vhost, route, err, sizeof(err));
    if (r < 0)
        return fail(b, "listener \"%s\": %s", l->name, err);
    return r;
}

int mc_sb_set_tcp_access_log(mc_snapshot_builder_t *b, int listener, uint32_t log_id)
{
    mc_listener_t *l = listener_at(b, listener);
    if (!l)
        return -1;
    mc_chain_t *ch = &l->chains[l->n_chains - 1];
    ch->tcp.access_log_id = log_id;
    return 0;
}

int mc_sb_set_istio_stats(mc_snapshot_builder_t *b, int listener, const mc_sb_istio_stats_t *cfg)
{
    mc_listener_t *l = listener_at(b, listener);
    if (!l)
        return -1;
    if (cfg->reporter != MC_IM_SOURCE && cfg->reporter != MC_IM_DESTINATION)
        return fail(b, "listener \"%s\": istio.stats: reporter %d", l->name, cfg->reporter);
    if (!cfg->peer_metadata != !cfg->peer_metadata_id)
        return fail(b, "listener \"%s\": istio.metadata_exchange: metadata and its id go together", l->name);
    mc_im_cfg_t *im = &l->chains[l->n_chains - 1].im;
    free(im->exchange);
    free(im->exchange_id);
    memset(im, 0, sizeof(*im));
    im->reporter = (uint8_t)cfg->reporter;
    if (cfg->peer_metadata) {
        im->exchange = strdup(cfg->peer_metadata);
        im->exchange_id = strdup(cfg->peer_metadata_id);
        if (!im->exchange || !im->exchange_id)
            return fail(b, "out of memory");
        im->exchange_len = strlen(im->exchange);
        im->exchange_id_len = strlen(im->exchange_id);
    }
    return 0;
}

int mc_sb_set_cluster_service(mc_snapshot_builder_t *b, int cluster, uint32_t service_id)
{
    mc_snapshot_t *s = b->snap;
    if (cluster < 0 || (uint32_t)cluster >= s->n_clusters)
        return fail(b, "no cluster %d", cluster);
    s->clusters[cluster].im_service = service_id;
    return 0;
}

int mc_sb_add_chain(mc_snapshot_builder_t *b, int listener, int transport)
{
    mc_listener_t *l = listener_at(b, listener);
    if (!l)
        return -1;
    if (transport < MC_CHAIN_ANY || transport > MC_CHAIN_RAW)
        return fail(b, "listener \"%s\": unknown transport match %d", l->name, transport);
    mc_chain_t *first = &l->chains[0];
    /* The chain mc_sb_add_listener made is taken by the first caller. */
    if (l->n_chains == 1 && !first->tcp.present && !first->hcm.present && !first->tls) {
        first->transport = (uint8_t)transport;
        return 0;
    }
    if (reserve((void **)&l->chains, &l->cap_chains, l->n_chains, sizeof(mc_chain_t)) < 0)
        return fail(b, "out of memory");
    l->chains[l->n_chains].transport = (uint8_t)transport;
    return (int)l->n_chains++;
}

int mc_sb_set_chain_tls(mc_snapshot_builder_t *b, int listener, const mc_sb_tls_t *tls)
{
    mc_listener_t *l = listener_at(b, listener);
    if (!l)
        return -1;
    mc_chain_t *ch = &l->chains[l->n_chains - 1];
    char err[300];
    mc_tls_ctx_t *t = mc_tls_ctx_new_shared(tls, b->tls_cache, err, sizeof(err));
    if (!t)
        return fail(b, "listener \"%s\": filter_chains[%u]: transport_socket: %s", l->name, l->n_chains - 1, err);
    mc_tls_ctx_unref(ch->tls);
    ch->tls = t;
    return 0;
}

int mc_sb_set_cluster_tls(mc_snapshot_builder_t *b, int cluster, const mc_sb_tls_t *tls)
{
    mc_snapshot_t *s = b->snap;
    if (cluster < 0 || (uint32_t)cluster >= s->n_clusters)
        return fail(b, "no cluster %d", cluster);
    mc_cluster_t *c = &s->clusters[cluster];
    char err[300];
    mc_tls_ctx_t *t = mc_tls_ctx_new_shared(tls, b->tls_cache, err, sizeof(err));
    if (!t)
        return fail(b, "cluster \"%s\": transport_socket: %s", c->name, err);
    mc_tls_ctx_unref(c->tls);
    c->tls = t;
    return 0;
}

/* Appends an RBAC filter to a list (filters are few: grow one at a time). */
static int push_rbac(mc_snapshot_builder_t *b, mc_rbac_t ***list, uint32_t *n, const mc_sb_rbac_t *spec,
                     const char *where)
{
    char err[200];
    mc_rbac_t *r = mc_rbac_new(spec, err, sizeof(err));
    if (!r)
        return fail(b, "%s: rbac: %s", where, err);
    mc_rbac_t **p = realloc(*list, sizeof(*p) * (*n + 1));
    if (!p) {
        mc_rbac_free(r);
        return fail(b, "out of memory");
    }
    p[(*n)++] = r;
    *list = p;
    return 0;
}

int mc_sb_add_http_rbac(mc_snapshot_builder_t *b, int listener, const mc_sb_rbac_t *rbac)
{
    mc_listener_t *l = listener_at(b, listener);
    if (!l)
        return -1;
    mc_chain_t *ch = &l->chains[l->n_chains - 1];
    if (!ch->hcm.present)
        return fail(b, "listener \"%s\": http rbac without an http_connection_manager", l->name);
    return push_rbac(b, &ch->hcm.rbac, &ch->hcm.n_rbac, rbac, l->name);
}

int mc_sb_add_network_rbac(mc_snapshot_builder_t *b, int listener, const mc_sb_rbac_t *rbac)
{
    mc_listener_t *l = listener_at(b, listener);
    if (!l)
        return -1;
    mc_chain_t *ch = &l->chains[l->n_chains - 1];
    return push_rbac(b, &ch->net_rbac, &ch->n_net_rbac, rbac, l->name);
}

typedef struct ring_point {
    uint64_t hash;
    uint32_t endpoint;
} ring_point_t;

static int cmp_point(const void *a, const void *b)
{
    const ring_point_t *x = a, *y = b;
    return x->hash < y->hash ? -1 : x->hash > y->hash ? 1 : (int)x->endpoint - (int)y->endpoint;
}

/* Envoy's ring (see worker/snapshot.h). */
int mc_cluster_build_ring(mc_cluster_t *c, uint64_t total_weight)
{
    if (c->n_endpoints == 0 || total_weight == 0)
        return 0;
    uint64_t min_w = UINT64_MAX;
    for (uint32_t e = 0; e < c->n_endpoints; e++)
        if (c->weights[e] < min_w)
            min_w = c->weights[e];
    /* As Envoy: scale so the lightest endpoint gets at least one point. */
    double scale = (double)c->ring_min / (double)total_weight;
    if (scale * (double)min_w < 1.0)
        scale = 1.0 / (double)min_w;
    if (scale * (double)total_weight > (double)c->ring_max)
        scale = (double)c->ring_max / (double)total_weight;
    uint64_t n = 0;
    for (uint32_t e = 0; e < c->n_endpoints; e++) {
        uint64_t k = (uint64_t)(scale * c->weights[e] + 0.5);
        n += k ? k : 1;
    }
    ring_point_t *pts = malloc(sizeof(*pts) * n);
    c->ring_hashes = malloc(sizeof(uint64_t) * n);
    c->ring_endpoints = malloc(sizeof(uint32_t) * n);
    if (!pts || !c->ring_hashes || !c->ring_endpoints) {
        free(pts);
        return -1;
    }
    uint64_t k = 0;
    char key[96];
    for (uint32_t e = 0; e < c->n_endpoints; e++) {
        uint64_t reps = (uint64_t)(scale * c->weights[e] + 0.5);
        if (!reps)
            reps = 1;
        for (uint64_t r = 0; r < reps; r++) {
            int len = snprintf(key, sizeof(key), "%s_%llu", c->endpoints[e].name, (unsigned long long)r);
            pts[k].hash = mc_xxh64(key, (size_t)len, 0);
            pts[k].endpoint = e;
            k++;
        }
    }
    qsort(pts, n, sizeof(*pts), cmp_point);
    for (uint64_t i = 0; i < n; i++) {
        c->ring_hashes[i] = pts[i].hash;
        c->ring_endpoints[i] = pts[i].endpoint;
    }
    c->ring_size = (uint32_t)n;
    free(pts);
    return 0;
}

/* Resolves the cluster names routes refer to. */
static int resolve_routes(mc_snapshot_t *s, mc_listener_t *l, mc_chain_t *ch, char *err, size_t errlen)
{
    mc_route_table_t *rt = &ch->hcm.rt;
    for (uint32_t v = 0; v < rt->n_vhosts; v++) {
        for (uint32_t i = 0; i < rt->vhosts[v].n_routes; i++) {
            mc_route_t *r = &rt->vhosts[v].routes[i];
            for (uint32_t k = 0; k < r->n_clusters; k++) {
                int idx = mc_snapshot_find_cluster(s, r->cluster_names[k]);
                if (idx < 0) {
                    snprintf(err, errlen, "listener \"%s\": virtual host \"%s\": unknown cluster \"%s\"",
                             l->name, rt->vhosts[v].name, r->cluster_names[k]);
                    return -1;
                }
                r->cluster_idx[k] = (uint32_t)idx;
            }
            for (uint32_t k = 0; k < r->n_mirrors; k++) {
                int idx = mc_snapshot_find_cluster(s, r->mirrors[k].cluster);
                if (idx < 0) {
                    snprintf(err, errlen, "listener \"%s\": virtual host \"%s\": unknown mirror cluster \"%s\"",
                             l->name, rt->vhosts[v].name, r->mirrors[k].cluster);
                    return -1;
                }
                r->mirrors[k].cluster_idx = (uint32_t)idx;
            }
        }
    }
    mc_route_table_seal(rt);
    return 0;
}

static int finalize_chain(mc_snapshot_t *s, mc_listener_t *l, mc_chain_t *ch, uint32_t k, mc_stats_t *stats,
                          char *err, size_t errlen)
{
    if (ch->hcm.access_log_id || ch->hcm.tracer_id || ch->tcp.access_log_id)
        s->access_logs = 1; /* the workers' record rings carry access-log records and spans */
    if (ch->hcm.present) {
        if (resolve_routes(s, l, ch, err, errlen) < 0)
            return -1;
        ch->hcm.scope = mc_stats_scope(stats, MC_SCOPE_HTTP, ch->hcm.stat_prefix);
        return 0;
    }
    if (!ch->tcp.present) {
        snprintf(err, errlen, "listener \"%s\": filter_chains[%u]: no tcp_proxy or http_connection_manager filter",
                 l->name, k);
        return -1;
    }
    if (ch->tcp.n_clusters == 0) {
        snprintf(err, errlen, "listener \"%s\": tcp_proxy has no cluster", l->name);
        return -1;
    }
    for (uint32_t j = 0; j < ch->tcp.n_clusters; j++) {
        int idx = mc_snapshot_find_cluster(s, ch->tcp.cluster_names[j]);
        if (idx < 0) {
            snprintf(err, errlen, "listener \"%s\": tcp_proxy: unknown cluster \"%s\"", l->name,
                     ch->tcp.cluster_names[j]);
            return -1;
        }
        ch->tcp.cluster_idx[j] = (uint32_t)idx;
    }
    ch->tcp.scope = mc_stats_scope(stats, MC_SCOPE_TCP, ch->tcp.stat_prefix);
    return 0;
}

int mc_snapshot_finalize_cluster(mc_cluster_t *c, mc_stats_t *stats, mc_cluster_registry_t *clusters, char *err,
                                 size_t errlen)
{
    char name[MC_STATS_NAME_MAX];
    uint64_t sum = 0;
    c->state = mc_cluster_registry_get(clusters, c->name);
    if (!c->state) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (uint32_t e = 0; e < c->n_endpoints; e++) {
        sum += c->weights[e];
        c->cum_weights[e] = sum;
        snprintf(name, sizeof(name), "%s::%s", c->name, c->endpoints[e].name);
        c->endpoints[e].host_scope = mc_stats_scope(stats, MC_SCOPE_HOST, name);
        c->endpoints[e].host = mc_cluster_state_host(c->state, &c->endpoints[e].addr);
        if (!c->endpoints[e].host) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    if (c->lb_policy == MC_LB_RING_HASH && mc_cluster_build_ring(c, sum) < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    c->scope = mc_stats_scope(stats, MC_SCOPE_CLUSTER, c->name);
    return 0;
}

int mc_snapshot_finalize(mc_snapshot_t *s, mc_stats_t *stats, mc_cluster_registry_t *clusters, char *err,
                         size_t errlen)
{
    for (uint32_t i = 0; i < s->n_clusters; i++)
        if (mc_snapshot_finalize_cluster(&s->clusters[i], stats, clusters, err, errlen) < 0)
            return -1;
    s->n_chains = 0;
    for (uint32_t i = 0; i < s->n_listeners; i++) {
        mc_listener_t *l = &s->listeners[i];
        int any = 0, tls = 0, raw = 0;
        for (uint32_t k = 0; k < l->n_chains; k++) {
            mc_chain_t *ch = &l->chains[k];
            ch->gidx = s->n_chains++;
            any |= ch->transport == MC_CHAIN_ANY;
            tls |= ch->transport == MC_CHAIN_TLS;
            raw |= ch->transport == MC_CHAIN_RAW;
            if (finalize_chain(s, l, ch, k, stats, err, errlen) < 0)
                return -1;
        }
        /* Only a listener whose chains differ by transport needs to look
         * at the first bytes (tls_inspector) before picking one. */
        l->inspect = (uint8_t)(l->n_chains > 1 && (tls || raw));
        if (l->n_chains > 1 && !l->inspect) {
            snprintf(err, errlen, "listener \"%s\": several filter chains without a transport_protocol to tell "
                     "them apart", l->name);
            return -1;
        }
        (void)any;
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
        if (s->cluster_owner && s->cluster_owner[i]) {
            mc_snapshot_unref(s->cluster_owner[i]); /* its arrays are the owner's */
            continue;
        }
        for (uint32_t e = 0; e < c->n_endpoints; e++)
            mc_host_state_unref(c->endpoints[e].host);
        mc_cluster_state_unref(c->state);
        mc_tls_ctx_unref(c->tls);
        free(c->ring_hashes);
        free(c->ring_endpoints);
        free(c->name);
        free(c->endpoints);
        free(c->weights);
        free(c->cum_weights);
    }
    free(s->clusters);
    free(s->cluster_index);
    free(s->cluster_owner);
    if (s->listeners_owner) {
        mc_snapshot_unref(s->listeners_owner);
        free(s);
        return;
    }
    for (uint32_t i = 0; i < s->n_listeners; i++) {
        mc_listener_t *l = &s->listeners[i];
        free(l->name);
        free(l->stat_prefix);
        free(l->conn_limit_prefix);
        for (uint32_t c = 0; c < l->n_chains; c++) {
            mc_chain_t *ch = &l->chains[c];
            free(ch->tcp.stat_prefix);
            for (uint32_t k = 0; k < ch->tcp.n_clusters; k++)
                free(ch->tcp.cluster_names[k]);
            free(ch->tcp.cluster_names);
            free(ch->tcp.cluster_idx);
            free(ch->tcp.weights);
            mc_hcm_destroy(&ch->hcm);
            free(ch->im.exchange);
            free(ch->im.exchange_id);
            mc_tls_ctx_unref(ch->tls);
            for (uint32_t k = 0; k < ch->n_net_rbac; k++)
                mc_rbac_free(ch->net_rbac[k]);
            free(ch->net_rbac);
        }
        free(l->chains);
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
