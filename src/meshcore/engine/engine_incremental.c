/*
 * Incremental config changes: new endpoints for some clusters, new weights
 * for weighted routes, without compiling a whole snapshot (see
 * include/meshcore/engine.h). Both run under the engine's control lock, as
 * an apply does.
 *
 * Endpoints: a derived snapshot (worker/snapshot_derive.c) is published as
 * any snapshot is; nothing already published changes.
 *
 * Weights are the one thing changed in place, read-copy-update style:
 *   - a route's `weights` pointer is the only shared word written. The new
 *     array is filled first, then swapped in with a release exchange;
 *     workers load the pointer with acquire, once per pick
 *     (proxy/http_forward.c, pick_split), so a worker sees either the whole
 *     old array or the whole new one, never a mix, and n_clusters (which
 *     does not change) bounds both;
 *   - no worker keeps the pointer past the pick (one event handler; the
 *     loop runs one handler at a time), so once a worker has handled a wake
 *     -up that came after the swap it cannot read the old array. The swap is
 *     followed by a generation bump (under the shared lock) and a wake-up;
 *     each worker acknowledges the generation under the same lock in its
 *     wake handler. The old array is kept with that generation and freed by
 *     a later change (or the engine's end) once every worker acknowledged it:
 *     the caller never waits for the workers.
 * Per-worker smooth-WRR state (the running "current" weights) is kept: the
 * split moves to the new ratios within a round.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"

int mc_engine_set_endpoints(mc_engine_t *e, const mc_sb_cluster_endpoints_t *changes, uint32_t n, char *err,
                            size_t errlen)
{
    pthread_mutex_lock(&e->ctl);
    int rc = -1;
    mc_snapshot_t *cur = e->shared.current;
    if (e->joined) {
        snprintf(err, errlen, "engine is stopped");
        goto out;
    }
    if (!cur) {
        snprintf(err, errlen, "no config applied yet");
        goto out;
    }
    mc_snapshot_t *s = mc_snapshot_with_endpoints(cur, changes, n, e->stats, &e->clusters, err, errlen);
    if (!s)
        goto out;
    mc_snapshot_t *old = NULL;
    mc_engine_publish(e, s, &old);
    mc_snapshot_unref(old);
    mc_cluster_registry_prune(&e->clusters);
    rc = 0;
out:
    pthread_mutex_unlock(&e->ctl);
    return rc;
}

/* Frees the replaced weight arrays no worker can still read. */
static void reap(mc_engine_t *e)
{
    uint64_t acked = mc_engine_acked(e);
    uint32_t k = 0;
    for (uint32_t i = 0; i < e->n_retired; i++) {
        if (e->retired[i].gen <= acked)
            free(e->retired[i].ptr);
        else
            e->retired[k++] = e->retired[i];
    }
    e->n_retired = k;
}

/* The route a change names in s, or NULL with the reason in err. */
static mc_route_t *find_route(mc_snapshot_t *s, const mc_route_weights_t *c, char *err, size_t errlen)
{
    mc_listener_t *l = NULL;
    for (uint32_t i = 0; i < s->n_listeners && !l; i++)
        if (strcmp(s->listeners[i].name, c->listener) == 0)
            l = &s->listeners[i];
    if (!l) {
        snprintf(err, errlen, "listener \"%s\": not in the running config", c->listener);
        return NULL;
    }
    if (c->chain >= l->n_chains || !l->chains[c->chain].hcm.present) {
        snprintf(err, errlen, "listener \"%s\": filter_chains[%u]: no http_connection_manager", l->name, c->chain);
        return NULL;
    }
    mc_route_table_t *rt = &l->chains[c->chain].hcm.rt;
    if (c->vhost >= rt->n_vhosts || c->route >= rt->vhosts[c->vhost].n_routes) {
        snprintf(err, errlen, "listener \"%s\": virtual_hosts[%u].routes[%u]: no such route", l->name, c->vhost,
                 c->route);
        return NULL;
    }
    mc_route_t *r = &rt->vhosts[c->vhost].routes[c->route];
    if (r->n_clusters != c->n) {
        snprintf(err, errlen, "listener \"%s\": virtual_hosts[%u].routes[%u]: %u weights for %u clusters", l->name,
                 c->vhost, c->route, c->n, r->n_clusters);
        return NULL;
    }
    return r;
}

int mc_engine_set_route_weights(mc_engine_t *e, const mc_route_weights_t *changes, uint32_t n, char *err,
                                size_t errlen)
{
    pthread_mutex_lock(&e->ctl);
    int rc = -1;
    mc_snapshot_t *s = e->shared.current;
    mc_route_t **routes = calloc(n ? n : 1, sizeof(*routes));
    uint32_t **arrays = calloc(n ? n : 1, sizeof(*arrays));
    if (!routes || !arrays) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (e->joined) {
        snprintf(err, errlen, "engine is stopped");
        goto out;
    }
    if (!s) {
        snprintf(err, errlen, "no config applied yet");
        goto out;
    }
    /* Every change is checked and its array made before any is swapped in. */
    for (uint32_t k = 0; k < n; k++) {
        routes[k] = find_route(s, &changes[k], err, errlen);
        arrays[k] = routes[k] ? malloc(sizeof(uint32_t) * (changes[k].n ? changes[k].n : 1)) : NULL;
        if (!routes[k])
            goto out;
        if (!arrays[k]) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
        for (uint32_t i = 0; i < changes[k].n; i++)
            arrays[k][i] = changes[k].weights[i] ? changes[k].weights[i] : 1;
    }
    if (e->n_retired + n > e->cap_retired) {
        uint32_t cap = (e->n_retired + n) * 2;
        struct mc_retired *p = realloc(e->retired, sizeof(*p) * cap);
        if (!p) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
        e->retired = p;
        e->cap_retired = cap;
    }
    for (uint32_t k = 0; k < n; k++) /* arrays[k] is the old one from here on */
        arrays[k] = __atomic_exchange_n(&routes[k]->weights, arrays[k], __ATOMIC_ACQ_REL);
    uint64_t gen = mc_engine_bump(e);
    for (uint32_t k = 0; k < n; k++) {
        e->retired[e->n_retired++] = (struct mc_retired){gen, arrays[k]};
        arrays[k] = NULL;
    }
    reap(e);
    rc = 0;
out:
    for (uint32_t k = 0; arrays && k < n; k++)
        free(arrays[k]);
    free(arrays);
    free(routes);
    pthread_mutex_unlock(&e->ctl);
    return rc;
}
