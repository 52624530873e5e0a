/* Test and benchmark entry points; see include/meshcore/introspect.h. */
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "meshcore/introspect.h"
#include "route/retry.h"
#include "route/router.h"
#include "worker/snapshot.h"

double mc_bench_h1_parse(const char *buf, size_t len, uint64_t iterations, int *status)
{
    mc_h1_header_t headers[128];
    mc_h1_request_t req;
    *status = 0;
    uint64_t t0 = mc_now_ns();
    for (uint64_t i = 0; i < (iterations ? iterations : 1); i++) {
        req.headers = headers;
        req.n_headers = 128;
        int rc = mc_h1_parse_request(buf, len, &req, NULL, status, NULL);
        if (rc != (int)len)
            return -1;
    }
    uint64_t t1 = mc_now_ns();
    return (double)(t1 - t0) / (double)(iterations ? iterations : 1);
}

int mc_route_probe(mc_snapshot_builder_t *b, int listener, const char *authority, const char *method,
                   const char *path, const char *const *header_names, const char *const *header_values,
                   size_t n_headers, uint64_t iterations, int *vhost, double *ns)
{
    *vhost = -1;
    if (listener < 0 || (uint32_t)listener >= b->snap->n_listeners)
        return -1;
    mc_listener_t *l = &b->snap->listeners[listener];
    mc_chain_t *ch = &l->chains[l->n_chains - 1];
    if (!ch->hcm.present)
        return -1;
    mc_route_table_t *rt = &ch->hcm.rt;
    mc_route_table_seal(rt);
    mc_h1_header_t *hs = calloc(n_headers ? n_headers : 1, sizeof(*hs));
    pcre2_match_data *md = pcre2_match_data_create(32, NULL);
    if (!hs || !md) {
        free(hs);
        if (md)
            pcre2_match_data_free(md);
        return -1;
    }
    for (size_t i = 0; i < n_headers; i++) {
        hs[i].name = header_names[i];
        hs[i].name_len = strlen(header_names[i]);
        hs[i].value = header_values[i];
        hs[i].value_len = strlen(header_values[i]);
    }
    mc_route_req_t rq;
    memset(&rq, 0, sizeof(rq));
    rq.method = method;
    rq.method_len = strlen(method);
    rq.full_path = path;
    rq.full_path_len = strlen(path);
    const char *q = strchr(path, '?');
    rq.path = path;
    rq.path_len = q ? (size_t)(q - path) : rq.full_path_len;
    rq.query = q ? q + 1 : NULL;
    rq.query_len = q ? strlen(q + 1) : 0;
    rq.authority = authority;
    rq.authority_len = strlen(authority);
    rq.scheme = "http";
    rq.scheme_len = 4;
    rq.headers = hs;
    rq.n_headers = n_headers;

    const mc_vhost_t *v = mc_router_vhost(rt, rq.authority, rq.authority_len);
    const mc_route_t *r = v ? mc_router_match(v, &rq, md) : NULL;
    if (iterations && ns) {
        uint64_t t0 = mc_now_ns();
        for (uint64_t i = 0; i < iterations; i++) {
            const mc_vhost_t *vv = mc_router_vhost(rt, rq.authority, rq.authority_len);
            const mc_route_t *rr = vv ? mc_router_match(vv, &rq, md) : NULL;
            __asm__ volatile("" : : "r"(rr) : "memory"); /* keep the loop */
        }
        *ns = (double)(mc_now_ns() - t0) / (double)iterations;
    }
    free(hs);
    pcre2_match_data_free(md);
    if (!v)
        return -1;
    *vhost = (int)(v - rt->vhosts);
    return r ? (int)(r - v->routes) : -1;
}

int mc_rbac_probe(mc_snapshot_builder_t *b, int listener, const char *principal, const char *method,
                  const char *path, const char *authority, const char *const *header_names,
                  const char *const *header_values, size_t n_headers, const char *source_ip,
                  const char *destination_ip, uint16_t destination_port, int http, char *policy,
                  size_t policy_len)
{
    policy[0] = '\0';
    if (listener < 0 || (uint32_t)listener >= b->snap->n_listeners)
        return -1;
    mc_listener_t *l = &b->snap->listeners[listener];
    mc_chain_t *ch = &l->chains[l->n_chains - 1];
    if (!ch->n_net_rbac)
        return -1;
    mc_addr_t peer, local;
    if (mc_addr_parse(&peer, source_ip, 40000) < 0 || mc_addr_parse(&local, destination_ip, destination_port) < 0)
        return -1;
    mc_h1_header_t hs[64];
    size_t nh = n_headers < 64 ? n_headers : 64;
    for (size_t i = 0; i < nh; i++)
        hs[i] = (mc_h1_header_t){header_names[i], strlen(header_names[i]), header_values[i], strlen(header_values[i])};
    mc_route_req_t rq;
    memset(&rq, 0, sizeof(rq));
    rq.method = method;
    rq.method_len = strlen(method);
    rq.full_path = path;
    rq.full_path_len = strlen(path);
    const char *q = strchr(path, '?');
    rq.path = path;
    rq.path_len = q ? (size_t)(q - path) : rq.full_path_len;
    rq.query = q ? q + 1 : NULL;
    rq.query_len = q ? strlen(q + 1) : 0;
    rq.authority = authority;
    rq.authority_len = strlen(authority);
    rq.scheme = "http";
    rq.scheme_len = 4;
    rq.headers = hs;
    rq.n_headers = nh;
    pcre2_match_data *md = pcre2_match_data_create(32, NULL);
    mc_rbac_ctx_t c = {.rq = http ? &rq : NULL, .principal = principal, .authenticated = principal[0] != 0,
                       .peer = &peer, .local = &local, .md = md};
    const char *name = NULL;
    int ok = mc_rbac_allows(ch->net_rbac[ch->n_net_rbac - 1], &c, &name);
    pcre2_match_data_free(md);
    snprintf(policy, policy_len, "%s", name ? name : "");
    return ok;
}

uint64_t mc_probe_retry_backoff(uint64_t *rng, uint64_t base_ns, uint64_t max_ns, uint32_t n)
{
    mc_retry_policy_t p;
    memset(&p, 0, sizeof(p));
    p.base_interval_ns = base_ns;
    p.max_interval_ns = max_ns;
    mc_rand_t r = {*rng};
    uint64_t v = mc_retry_backoff(&p, n, &r);
    *rng = r.s;
    return v;
}

uint64_t mc_probe_rand_next(uint64_t *rng)
{
    mc_rand_t r = {*rng};
    uint64_t v = mc_rand_next(&r);
    *rng = r.s;
    return v;
}
