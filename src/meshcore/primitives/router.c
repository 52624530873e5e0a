/*
 * The router for embedders; see include/meshcore/primitives.h. A compiled
 * route table (built by the snapshot builder from xDS, as for the proxy)
 * matched by route/router.c with one PCRE2 match data of its own, so a
 * match allocates nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meshcore/primitives.h"
#include "route/router.h"
#include "worker/snapshot.h"

struct mc_prim_router {
    mc_route_table_t *rt;
    pcre2_match_data *md;
};

mc_prim_router_t *mc_prim_router_new(mc_snapshot_builder_t *b, int listener, char *err, size_t errlen)
{
    if (listener < 0 || (uint32_t)listener >= b->snap->n_listeners) {
        snprintf(err, errlen, "no listener %d", listener);
        return NULL;
    }
    mc_listener_t *l = &b->snap->listeners[listener];
    mc_chain_t *ch = &l->chains[l->n_chains - 1];
    if (!ch->hcm.present) {
        snprintf(err, errlen, "listener %d has no http_connection_manager", listener);
        return NULL;
    }
    mc_prim_router_t *r = calloc(1, sizeof(*r));
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    r->rt = &ch->hcm.rt;
    mc_route_table_seal(r->rt);
    r->md = pcre2_match_data_create(r->rt->max_captures < 32 ? 32 : r->rt->max_captures + 1, NULL); /* as a worker */
    if (!r->md) {
        free(r);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    return r;
}

void mc_prim_router_free(mc_prim_router_t *r)
{
    if (!r)
        return;
    pcre2_match_data_free(r->md);
    free(r);
}

int mc_prim_router_match(mc_prim_router_t *r, const char *method, size_t method_len, const char *authority,
                         size_t authority_len, const char *path, size_t path_len, const mc_prim_field_t *headers,
                         size_t n_headers, int *vhost, int *route)
{
    mc_route_req_t rq;
    memset(&rq, 0, sizeof(rq));
    rq.method = method, rq.method_len = method_len;
    rq.full_path = path, rq.full_path_len = path_len;
    const char *q = memchr(path, '?', path_len);
    rq.path = path;
    rq.path_len = q ? (size_t)(q - path) : path_len;
    rq.query = q ? q + 1 : NULL;
    rq.query_len = q ? path_len - rq.path_len - 1 : 0;
    rq.authority = authority, rq.authority_len = authority_len;
    rq.scheme = "http", rq.scheme_len = 4;
    rq.headers = (const mc_h1_header_t *)headers; /* same layout, checked in primitives/h1.c */
    rq.n_headers = n_headers;
    *vhost = *route = -1;
    const mc_vhost_t *v = mc_router_vhost(r->rt, authority, authority_len);
    if (!v)
        return -1;
    *vhost = (int)(v - r->rt->vhosts);
    const mc_route_t *m = mc_router_match(v, &rq, r->md);
    if (!m)
        return -1;
    *route = (int)(m - v->routes);
    return 0;
}

int mc_prim_router_vhosts(const mc_prim_router_t *r)
{
    return (int)r->rt->n_vhosts;
}

int mc_prim_router_routes(const mc_prim_router_t *r, int vhost)
{
    if (vhost < 0 || (uint32_t)vhost >= r->rt->n_vhosts)
        return -1;
    return (int)r->rt->vhosts[vhost].n_routes;
}

const char *mc_prim_router_vhost_name(const mc_prim_router_t *r, int vhost)
{
    if (vhost < 0 || (uint32_t)vhost >= r->rt->n_vhosts)
        return NULL;
    return r->rt->vhosts[vhost].name;
}

int mc_prim_router_route_info(const mc_prim_router_t *r, int vhost, int route, mc_prim_route_info_t *info)
{
    if (mc_prim_router_routes(r, vhost) <= route || route < 0)
        return -1;
    const mc_route_t *m = &r->rt->vhosts[vhost].routes[route];
    memset(info, 0, sizeof(*info));
    info->name = m->name;
    info->action = m->action;
    info->n_clusters = m->n_clusters;
    info->clusters = (const char *const *)m->cluster_names;
    info->weights = m->weights;
    info->redirect_scheme = m->redirect_scheme;
    info->redirect_host = m->redirect_host;
    info->redirect_path = m->redirect_path;
    info->redirect_prefix = m->redirect_prefix;
    info->redirect_port = m->redirect_port;
    info->redirect_code = m->redirect_code;
    info->strip_query = m->strip_query;
    info->direct_status = m->direct_status;
    info->direct_body = m->direct_body;
    info->direct_body_len = m->direct_body_len;
    return 0;
}
