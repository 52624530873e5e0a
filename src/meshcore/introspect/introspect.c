/* Test entry points; see include/meshcore/introspect.h. */
#include <stdlib.h>
#include <string.h>

#include "meshcore/introspect.h"
#include "route/retry.h"
#include "route/router.h"
#include "worker/snapshot.h"

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
