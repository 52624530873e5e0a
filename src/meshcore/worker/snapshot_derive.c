/*
 * Derived snapshots: a config change that touches only some clusters'
 * endpoints (an EDS update, a scale-up) becomes a new snapshot that shares
 * everything else with the current one instead of a full compile.
 *
 * Snapshots stay immutable: nothing of `base` is written. The new snapshot
 * gets its own cluster array (a shallow copy of base's) in which the changed
 * clusters own new endpoint arrays, rings and references, and the unchanged
 * ones point at their owner's arrays. The listeners array (chains, route
 * tables, sockets) is base's owner's. Every borrow holds a reference on the
 * snapshot that OWNS the memory, not on base, so a long run of derived
 * snapshots never chains: once no snapshot borrows from an old one, it is
 * freed as usual.
 *
 * Route tables refer to clusters by index; the cluster set and order are
 * base's, so those indexes stay true. The new snapshot is published like
 * any other (mc_engine_set_endpoints): workers make a context for it at
 * their next loop turn and connections pin the snapshot they run on.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker/snapshot.h"

static mc_snapshot_t *owner_of(mc_snapshot_t *base, uint32_t cluster)
{
    return base->cluster_owner && base->cluster_owner[cluster] ? base->cluster_owner[cluster] : base;
}

/* Replaces the borrowed cluster c with an owned one holding `ch`'s endpoints. */
static int own_endpoints(mc_cluster_t *c, const mc_sb_cluster_endpoints_t *ch, char *err, size_t errlen)
{
    uint32_t n = ch->n_endpoints;
    /* First make every pointer owned or NULL, so a failure below frees cleanly. */
    c->name = strdup(c->name);
    if (c->tls)
        mc_tls_ctx_ref(c->tls);
    c->state = NULL;
    c->ring_hashes = NULL;
    c->ring_endpoints = NULL;
    c->ring_size = 0;
    c->n_endpoints = 0;
    c->endpoints = calloc(n ? n : 1, sizeof(*c->endpoints));
    c->weights = calloc(n ? n : 1, sizeof(*c->weights));
    c->cum_weights = calloc(n ? n : 1, sizeof(*c->cum_weights));
    c->cap_endpoints = n ? n : 1;
    if (!c->name || !c->endpoints || !c->weights || !c->cum_weights) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (uint32_t e = 0; e < n; e++) {
        const mc_sb_endpoint_t *in = &ch->endpoints[e];
        mc_endpoint_t *out = &c->endpoints[e];
        if (!in->ip || mc_addr_parse(&out->addr, in->ip, in->port) < 0) {
            snprintf(err, errlen, "cluster \"%s\": endpoints[%u]: address \"%s\" is not an IP literal", c->name, e,
                     in->ip ? in->ip : "");
            return -1;
        }
        if (in->port == 0) {
            snprintf(err, errlen, "cluster \"%s\": endpoints[%u]: %s has port 0", c->name, e, in->ip);
            return -1;
        }
        mc_addr_format(&out->addr, out->name, sizeof(out->name));
        c->weights[e] = in->weight ? in->weight : 1;
        c->n_endpoints = e + 1;
    }
    return 0;
}

mc_snapshot_t *mc_snapshot_with_endpoints(mc_snapshot_t *base, const mc_sb_cluster_endpoints_t *changes, uint32_t n,
                                          mc_stats_t *stats, mc_cluster_registry_t *clusters, char *err,
                                          size_t errlen)
{
    /* Names first: an unknown cluster refuses the whole change. */
    for (uint32_t k = 0; k < n; k++) {
        if (mc_snapshot_find_cluster(base, changes[k].cluster) < 0) {
            snprintf(err, errlen, "cluster \"%s\": not in the running config", changes[k].cluster);
            return NULL;
        }
    }
    mc_snapshot_t *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->refcnt = 1;
    s->access_logs = base->access_logs;
    s->n_chains = base->n_chains;
    s->n_listeners = s->cap_listeners = base->n_listeners;
    s->listeners = base->listeners;
    s->listeners_owner = base->listeners_owner ? base->listeners_owner : base;
    mc_snapshot_ref(s->listeners_owner);
    uint32_t nc = base->n_clusters;
    s->clusters = malloc(sizeof(*s->clusters) * (nc ? nc : 1));
    s->cluster_owner = calloc(nc ? nc : 1, sizeof(*s->cluster_owner));
    s->cluster_index = malloc(sizeof(*s->cluster_index) * (base->index_cap ? base->index_cap : 1));
    if (!s->clusters || !s->cluster_owner || !s->cluster_index) {
        snprintf(err, errlen, "out of memory");
        goto bad;
    }
    memcpy(s->clusters, base->clusters, sizeof(*s->clusters) * nc);
    if (base->index_cap)
        memcpy(s->cluster_index, base->cluster_index, sizeof(*s->cluster_index) * base->index_cap);
    s->index_cap = base->index_cap;
    for (uint32_t i = 0; i < nc; i++) {
        s->cluster_owner[i] = owner_of(base, i);
        mc_snapshot_ref(s->cluster_owner[i]);
    }
    s->n_clusters = s->cap_clusters = nc;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t i = (uint32_t)mc_snapshot_find_cluster(s, changes[k].cluster);
        if (s->cluster_owner[i]) { /* a cluster named twice: the last list wins */
            mc_snapshot_unref(s->cluster_owner[i]);
            s->cluster_owner[i] = NULL;
        } else {
            mc_cluster_t *c = &s->clusters[i];
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
            s->clusters[i] = base->clusters[i];
        }
        if (own_endpoints(&s->clusters[i], &changes[k], err, errlen) < 0 ||
            mc_snapshot_finalize_cluster(&s->clusters[i], stats, clusters, err, errlen) < 0)
            goto bad;
    }
    return s;
bad:
    mc_snapshot_unref(s);
    return NULL;
}
