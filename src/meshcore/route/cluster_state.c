/* Shared cluster/host state: circuit breakers and outlier detection. See
 * route/cluster_state.h. */
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "route/cluster_state.h"

mc_cluster_state_t *mc_cluster_state_new(const char *name, uint32_t n_workers)
{
    mc_cluster_state_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->refcnt = 1;
    c->n_workers = n_workers;
    c->wpending = calloc(n_workers ? n_workers : 1, sizeof(*c->wpending));
    c->wconns = calloc(n_workers ? n_workers : 1, sizeof(*c->wconns));
    if (!c->wpending || !c->wconns) {
        free(c->wpending);
        free(c->wconns);
        free(c);
        return NULL;
    }
    for (uint32_t w = 0; w < n_workers; w++)
        mc_list_init(&c->wpending[w]);
    snprintf(c->name, sizeof(c->name), "%s", name);
    pthread_mutex_init(&c->lock, NULL);
    return c;
}

void mc_cluster_state_ref(mc_cluster_state_t *c)
{
    __atomic_add_fetch(&c->refcnt, 1, __ATOMIC_RELAXED);
}

void mc_host_state_unref(mc_host_state_t *h)
{
    if (h && __atomic_sub_fetch(&h->refcnt, 1, __ATOMIC_ACQ_REL) == 0) {
        for (uint32_t w = 0; h->wpools && w < h->n_workers; w++)
            if (h->wpools[w].tls_session)
                SSL_SESSION_free(h->wpools[w].tls_session);
        free(h->wpools);
        free(h);
    }
}

void mc_cluster_state_unref(mc_cluster_state_t *c)
{
    if (!c || __atomic_sub_fetch(&c->refcnt, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    for (uint32_t i = 0; i < c->n_hosts; i++)
        mc_host_state_unref(c->hosts[i]);
    free(c->hosts);
    free(c->wpending);
    free(c->wconns);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

mc_host_state_t *mc_cluster_state_host(mc_cluster_state_t *c, const mc_addr_t *addr)
{
    pthread_mutex_lock(&c->lock);
    mc_host_state_t *h = NULL;
    for (uint32_t i = 0; i < c->n_hosts; i++) {
        if (mc_addr_equal(&c->hosts[i]->addr, addr)) {
            h = c->hosts[i];
            break;
        }
    }
    if (!h) {
        if (c->n_hosts == c->cap_hosts) {
            uint32_t cap = c->cap_hosts ? c->cap_hosts * 2 : 8;
            mc_host_state_t **hosts = realloc(c->hosts, sizeof(*hosts) * cap);
            if (!hosts)
                goto out;
            c->hosts = hosts;
            c->cap_hosts = cap;
        }
        h = calloc(1, sizeof(*h));
        if (!h)
            goto out;
        h->wpools = calloc(c->n_workers ? c->n_workers : 1, sizeof(*h->wpools));
        if (!h->wpools) {
            free(h);
            h = NULL;
            goto out;
        }
        for (uint32_t w = 0; w < c->n_workers; w++) {
            mc_list_init(&h->wpools[w].idle);
            mc_list_init(&h->wpools[w].h2);
        }
        h->refcnt = 1; /* the cluster state's */
        h->n_workers = c->n_workers;
        h->addr = *addr;
        c->hosts[c->n_hosts++] = h;
    }
    __atomic_add_fetch(&h->refcnt, 1, __ATOMIC_RELAXED);
out:
    pthread_mutex_unlock(&c->lock);
    return h;
}

int mc_cb_acquire(int64_t *gauge, uint32_t max)
{
    int64_t n = __atomic_add_fetch(gauge, 1, __ATOMIC_RELAXED);
    if (n > (int64_t)max) {
        __atomic_sub_fetch(gauge, 1, __ATOMIC_RELAXED);
        return -1;
    }
    return 0;
}

void mc_cb_release(int64_t *gauge)
{
    __atomic_sub_fetch(gauge, 1, __ATOMIC_RELAXED);
}

static int try_eject(mc_cluster_state_t *c, mc_host_state_t *h, const mc_outlier_cfg_t *cfg,
                     uint32_t n_hosts, uint64_t now)
{
    if (__atomic_load_n(&h->ejected_until_ns, __ATOMIC_RELAXED))
        return 0;
    /* As Envoy: eject only while the ejected share is below the maximum, so
     * with the default 10% the first host of a small cluster can go. */
    uint32_t ejected = __atomic_load_n(&c->n_ejected, __ATOMIC_RELAXED);
    if (n_hosts == 0 || (uint64_t)ejected * 100 >= (uint64_t)cfg->max_ejection_percent * n_hosts)
        return 0;
    uint32_t k = __atomic_add_fetch(&h->num_ejections, 1, __ATOMIC_RELAXED);
    uint64_t span = cfg->base_ejection_ns * k;
    if (cfg->max_ejection_ns && span > cfg->max_ejection_ns)
        span = cfg->max_ejection_ns;
    uint64_t expected = 0;
    if (!__atomic_compare_exchange_n(&h->ejected_until_ns, &expected, now + span, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_RELAXED))
        return 0; /* another worker ejected it first */
    __atomic_add_fetch(&c->n_ejected, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&h->ejections_total, 1, __ATOMIC_RELAXED);
    __atomic_store_n(&h->consecutive_5xx, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&h->consecutive_gw, 0, __ATOMIC_RELAXED);
    return 1;
}

int mc_outlier_report(mc_cluster_state_t *c, mc_host_state_t *h, const mc_outlier_cfg_t *cfg, int outcome,
                      uint32_t n_hosts, uint64_t now)
{
    if (!cfg->enabled)
        return 0;
    if (outcome == MC_OUTCOME_SUCCESS) {
        /* Plain stores: a success ends the run of failures. */
        if (__atomic_load_n(&h->consecutive_5xx, __ATOMIC_RELAXED))
            __atomic_store_n(&h->consecutive_5xx, 0, __ATOMIC_RELAXED);
        if (__atomic_load_n(&h->consecutive_gw, __ATOMIC_RELAXED))
            __atomic_store_n(&h->consecutive_gw, 0, __ATOMIC_RELAXED);
        return 0;
    }
    /* Every gateway failure is also a 5xx (Envoy: local-origin failures
     * count as 5xx unless split_external_local_origin_errors). */
    uint32_t n5 = __atomic_add_fetch(&h->consecutive_5xx, 1, __ATOMIC_RELAXED);
    if (cfg->consecutive_5xx && n5 >= cfg->consecutive_5xx)
        return try_eject(c, h, cfg, n_hosts, now);
    if (outcome == MC_OUTCOME_GATEWAY) {
        uint32_t ng = __atomic_add_fetch(&h->consecutive_gw, 1, __ATOMIC_RELAXED);
        if (cfg->consecutive_gateway_failure && ng >= cfg->consecutive_gateway_failure)
            return try_eject(c, h, cfg, n_hosts, now);
    }
    return 0;
}

int mc_cluster_state_host_outlier(mc_cluster_state_t *c, const mc_addr_t *addr, uint64_t now, int *ejected,
                                  uint32_t *ejections)
{
    int rc = -1;
    pthread_mutex_lock(&c->lock);
    for (uint32_t i = 0; i < c->n_hosts; i++) {
        mc_host_state_t *h = c->hosts[i];
        if (mc_addr_equal(&h->addr, addr)) {
            *ejected = now < __atomic_load_n(&h->ejected_until_ns, __ATOMIC_RELAXED);
            *ejections = __atomic_load_n(&h->num_ejections, __ATOMIC_RELAXED);
            rc = 0;
            break;
        }
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

int mc_outlier_ejected(mc_cluster_state_t *c, mc_host_state_t *h, uint64_t now)
{
    uint64_t until = __atomic_load_n(&h->ejected_until_ns, __ATOMIC_RELAXED);
    if (until == 0)
        return 0;
    if (now < until)
        return 1;
    /* Time is up: whoever clears it first returns the host to rotation. */
    if (__atomic_compare_exchange_n(&h->ejected_until_ns, &until, 0, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
        __atomic_sub_fetch(&c->n_ejected, 1, __ATOMIC_RELAXED);
    return 0;
}

/* The index slot of name: its state's, or the empty one where it goes. A
 * hash index: an apply of 1,000 clusters looks each one up. */
static uint32_t *registry_slot(const mc_cluster_registry_t *r, const char *name)
{
    uint32_t mask = r->index_cap - 1;
    for (uint32_t pos = (uint32_t)mc_xxh64(name, strlen(name), 0) & mask;; pos = (pos + 1) & mask) {
        uint32_t *slot = &r->index[pos];
        if (*slot == 0 || strcmp(r->states[*slot - 1]->name, name) == 0)
            return slot;
    }
}

static int registry_reindex(mc_cluster_registry_t *r, uint32_t room)
{
    uint32_t cap = r->index_cap ? r->index_cap : 16;
    while (cap < 2 * room)
        cap *= 2;
    uint32_t *idx = calloc(cap, sizeof(*idx));
    if (!idx)
        return -1;
    free(r->index);
    r->index = idx;
    r->index_cap = cap;
    for (uint32_t i = 0; i < r->n; i++)
        *registry_slot(r, r->states[i]->name) = i + 1;
    return 0;
}

mc_cluster_state_t *mc_cluster_registry_get(mc_cluster_registry_t *r, const char *name)
{
    if (r->index_cap) {
        uint32_t *slot = registry_slot(r, name);
        if (*slot) {
            mc_cluster_state_ref(r->states[*slot - 1]);
            return r->states[*slot - 1];
        }
    }
    if (r->n == r->cap) {
        uint32_t cap = r->cap ? r->cap * 2 : 8;
        mc_cluster_state_t **p = realloc(r->states, sizeof(*p) * cap);
        if (!p)
            return NULL;
        r->states = p;
        r->cap = cap;
    }
    if (2 * (r->n + 1) > r->index_cap && registry_reindex(r, r->n + 1) < 0)
        return NULL;
    mc_cluster_state_t *c = mc_cluster_state_new(name, r->n_workers);
    if (!c)
        return NULL;
    *registry_slot(r, name) = r->n + 1;
    r->states[r->n++] = c;
    mc_cluster_state_ref(c);
    return c;
}

void mc_cluster_registry_prune(mc_cluster_registry_t *r)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < r->n; i++) {
        if (__atomic_load_n(&r->states[i]->refcnt, __ATOMIC_ACQUIRE) == 1)
            mc_cluster_state_unref(r->states[i]);
        else
            r->states[k++] = r->states[i];
    }
    if (k != r->n && r->index_cap) {
        r->n = k;
        memset(r->index, 0, sizeof(*r->index) * r->index_cap);
        for (uint32_t i = 0; i < r->n; i++)
            *registry_slot(r, r->states[i]->name) = i + 1;
    }
    r->n = k;
}

void mc_cluster_registry_destroy(mc_cluster_registry_t *r)
{
    for (uint32_t i = 0; i < r->n; i++)
        mc_cluster_state_unref(r->states[i]);
    free(r->states);
    free(r->index);
    r->states = NULL;
    r->index = NULL;
    r->n = r->cap = r->index_cap = 0;
}
