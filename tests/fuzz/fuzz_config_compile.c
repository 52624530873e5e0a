/*
 * The config compile path's C half: the snapshot builder entry points that
 * ext/compile*.pxi calls for each xDS resource (meshcore/snapshot.h), then
 * mc_snapshot_finalize as mc_engine_apply runs it (names resolved, weights,
 * rings, route tables, RBAC trees, stats scopes), then the snapshot freed.
 * The input is a program: each step is an opcode byte and its operands
 * (indexes, numbers, '\n'-terminated strings), so the fuzzer builds
 * listeners, chains, HCMs, vhosts, routes (every path kind, regexes,
 * rewrites, splits, direct responses, redirects), clusters, endpoints,
 * circuit breakers, RBAC trees and limits in any order, with dangling and
 * out-of-range references. Checks: every call returns its item's index, 0
 * or -1, and -1 always comes with a reason (mc_sb_error); finalize returns 0
 * or -1 with a reason; nothing leaks (ASan) and nothing is read out of
 * bounds, whatever the order.
 */
#include "fuzz_util.h"
#include "route/cluster_state.h"
#include "worker/snapshot.h"

#define MAXS 8

static mc_stats_t *stats;
static mc_cluster_registry_t registry;

typedef struct prog {
    fuzz_in_t in;
    char strs[64][64]; /* operand strings, NUL-terminated copies */
    uint32_t n_strs;
} prog_t;

static const char *str(prog_t *p)
{
    size_t len;
    const char *s = fuzz_field(&p->in, '\n', &len);
    if (p->n_strs == 64)
        return "x";
    char *out = p->strs[p->n_strs++];
    len = len < 63 ? len : 63;
    memcpy(out, s, len);
    out[len] = 0;
    return out;
}

static int idx(prog_t *p)
{
    return (int)fuzz_byte(&p->in) % 6 - 1; /* -1 .. 4: some out of range */
}

static void matcher(prog_t *p, mc_sb_matcher_t *m)
{
    m->name = str(p);
    m->kind = fuzz_byte(&p->in) % 7; /* one past MC_STR_PRESENT */
    m->value = str(p);
    m->ignore_case = fuzz_byte(&p->in) & 1;
    m->invert = fuzz_byte(&p->in) & 1;
}

static int route(prog_t *p, mc_snapshot_builder_t *b)
{
    const char *clusters[MAXS];
    uint32_t weights[MAXS];
    mc_sb_matcher_t hs[2], qs[1];
    mc_sb_route_t r;
    memset(&r, 0, sizeof(r));
    int listener = idx(p), vhost = idx(p);
    r.name = str(p);
    r.path_kind = fuzz_byte(&p->in) % 5;
    r.path = str(p);
    r.case_sensitive = fuzz_byte(&p->in) & 1;
    r.n_headers = fuzz_byte(&p->in) % 3;
    for (uint32_t i = 0; i < r.n_headers; i++)
        matcher(p, &hs[i]);
    r.headers = hs;
    r.n_query = fuzz_byte(&p->in) % 2;
    if (r.n_query)
        matcher(p, &qs[0]);
    r.query = qs;
    r.action = fuzz_byte(&p->in) % 4;
    r.n_clusters = fuzz_byte(&p->in) % (MAXS + 1);
    for (uint32_t i = 0; i < r.n_clusters; i++) {
        clusters[i] = str(p);
        weights[i] = fuzz_byte(&p->in);
    }
    r.clusters = clusters;
    r.weights = fuzz_byte(&p->in) & 1 ? weights : NULL;
    r.timeout_ms = fuzz_u32(&p->in);
    uint8_t opt = fuzz_byte(&p->in);
    if (opt & 1)
        r.prefix_rewrite = str(p);
    if (opt & 2) {
        r.regex_rewrite = str(p);
        r.regex_substitution = str(p);
    }
    if (opt & 4)
        r.host_rewrite = str(p);
    if (opt & 8) {
        r.redirect_scheme = str(p);
        r.redirect_host = str(p);
        r.redirect_path = str(p);
        r.redirect_port = fuzz_u32(&p->in);
        r.redirect_code = fuzz_u32(&p->in) % 600;
    }
    if (opt & 16) {
        r.direct_status = fuzz_u32(&p->in) % 700;
        r.direct_body = str(p);
        r.direct_body_len = strlen(r.direct_body);
    }
    if (opt & 32) {
        r.has_retry = 1;
        r.retry.retry_on = fuzz_byte(&p->in);
        r.retry.num_retries = fuzz_byte(&p->in);
        r.retry.base_interval_ms = fuzz_u32(&p->in);
        r.retry.max_interval_ms = fuzz_u32(&p->in);
    }
    return mc_sb_add_route(b, listener, vhost, &r);
}

static int rbac(prog_t *p, mc_snapshot_builder_t *b)
{
    mc_sb_rbac_node_t nodes[MAXS];
    uint32_t kids[MAXS][2];
    mc_sb_rbac_policy_t pols[2];
    memset(nodes, 0, sizeof(nodes));
    int listener = idx(p);
    uint8_t hdr = fuzz_byte(&p->in);
    uint32_t n = 1 + fuzz_byte(&p->in) % MAXS;
    for (uint32_t i = 0; i < n; i++) {
        mc_sb_rbac_node_t *nd = &nodes[i];
        nd->kind = fuzz_byte(&p->in) % 13;
        nd->n_children = fuzz_byte(&p->in) % 3;
        for (uint32_t k = 0; k < nd->n_children; k++)
            kids[i][k] = fuzz_byte(&p->in) % (MAXS + 2); /* may point anywhere, itself too */
        nd->children = kids[i];
        matcher(p, &nd->match);
        nd->ip = str(p);
        nd->prefix_len = fuzz_byte(&p->in);
        nd->port_lo = fuzz_u32(&p->in) & 0x1ffff;
        nd->port_hi = fuzz_u32(&p->in) & 0x1ffff;
    }
    uint32_t np = 1 + (hdr >> 2) % 2;
    for (uint32_t i = 0; i < np; i++) {
        pols[i].name = str(p);
        pols[i].permissions = fuzz_byte(&p->in) % (MAXS + 1);
        pols[i].principals = fuzz_byte(&p->in) % (MAXS + 1);
    }
    mc_sb_rbac_t rb = {.action = hdr % 4, .nodes = nodes, .n_nodes = n, .policies = pols, .n_policies = np};
    return hdr & 0x80 ? mc_sb_add_network_rbac(b, listener, &rb) : mc_sb_add_http_rbac(b, listener, &rb);
}

static int hcm(prog_t *p, mc_snapshot_builder_t *b)
{
    mc_sb_hcm_t h;
    memset(&h, 0, sizeof(h));
    int listener = idx(p);
    h.stat_prefix = str(p);
    h.idle_timeout_ms = fuzz_u32(&p->in);
    h.stream_idle_timeout_ms = fuzz_u32(&p->in);
    h.request_timeout_ms = fuzz_u32(&p->in);
    h.request_headers_timeout_ms = fuzz_u32(&p->in);
    h.max_request_headers_kb = fuzz_u32(&p->in) % 9000;
    h.max_headers_count = fuzz_u32(&p->in) % 300;
    uint8_t f = fuzz_byte(&p->in);
    h.generate_request_id = f & 1;
    h.accept_http_10 = f & 2;
    h.normalize_path = f & 4;
    h.merge_slashes = f & 8;
    if (f & 16)
        h.server_name = str(p);
    if (f & 32)
        h.default_host_for_http_10 = str(p);
    h.path_with_escaped_slashes_action = (int)(fuzz_byte(&p->in) % 7) - 1;
    h.headers_with_underscores_action = (int)(fuzz_byte(&p->in) % 5) - 1;
    h.fault.present = f & 64;
    h.fault.delay_ms = fuzz_u32(&p->in);
    h.fault.delay_ppm = fuzz_u32(&p->in);
    h.fault.abort_status = fuzz_u32(&p->in) % 700;
    h.fault.abort_ppm = fuzz_u32(&p->in);
    return mc_sb_set_hcm(b, listener, &h);
}

static int step(prog_t *p, mc_snapshot_builder_t *b)
{
    switch (fuzz_byte(&p->in) % 13) {
    case 0: {
        const char *name = str(p);
        return mc_sb_add_cluster(b, name, fuzz_byte(&p->in) % 6, fuzz_u32(&p->in));
    }
    case 1: {
        int c = idx(p);
        const char *ip = str(p);
        return mc_sb_add_endpoint(b, c, ip, (uint16_t)fuzz_u32(&p->in), fuzz_byte(&p->in));
    }
    case 2: {
        const char *name = str(p), *ip = str(p), *prefix = str(p);
        return mc_sb_add_listener(b, name, ip, 0, prefix, fuzz_u32(&p->in));
    }
    case 3: {
        int l = idx(p);
        const char *prefix = str(p);
        return mc_sb_set_connection_limit(b, l, prefix, fuzz_u32(&p->in) % 4);
    }
    case 4: {
        int l = idx(p);
        const char *prefix = str(p);
        return mc_sb_set_tcp_proxy(b, l, prefix, fuzz_u32(&p->in), fuzz_byte(&p->in));
    }
    case 5: {
        int l = idx(p);
        const char *c = str(p);
        return mc_sb_add_tcp_proxy_cluster(b, l, c, fuzz_byte(&p->in));
    }
    case 6:
        return hcm(p, b);
    case 7: {
        int l = idx(p);
        const char *name = str(p);
        const char *domains[3];
        uint32_t n = fuzz_byte(&p->in) % 4;
        for (uint32_t i = 0; i < n; i++)
            domains[i] = str(p);
        return mc_sb_add_vhost(b, l, name, domains, n, NULL, NULL, NULL);
    }
    case 8:
        return route(p, b);
    case 9: {
        int l = idx(p);
        return mc_sb_add_chain(b, l, fuzz_byte(&p->in) % 4);
    }
    case 10:
        return mc_sb_set_global_downstream_max_connections(b, fuzz_u32(&p->in) % 3);
    case 11:
        return rbac(p, b);
    default: {
        mc_sb_cluster_http_t h = {0};
        int c = idx(p);
        h.max_connections = fuzz_u32(&p->in);
        h.outlier = fuzz_byte(&p->in) & 1;
        h.consecutive_5xx = fuzz_byte(&p->in);
        h.interval_ms = fuzz_u32(&p->in);
        h.max_ejection_percent = fuzz_byte(&p->in);
        h.ring_min = fuzz_u32(&p->in) % 5000;
        h.ring_max = fuzz_u32(&p->in) % 5000;
        return mc_sb_set_cluster_http(b, c, &h);
    }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    if (!stats) {
        stats = mc_stats_new(1);
        registry.n_workers = 1;
    }
    char *copy = fuzz_copy(data, size);
    prog_t *p = calloc(1, sizeof(*p));
    p->in = (fuzz_in_t){(const uint8_t *)copy, size};
    mc_snapshot_builder_t *b = mc_sb_new();
    for (int steps = 0; p->in.n && steps < 64; steps++) {
        int rc = step(p, b);
        FUZZ_ASSERT(rc >= -1, "builder call returned %d", rc);
        if (rc == -1)
            FUZZ_ASSERT(mc_sb_error(b)[0] != 0, "an error without a reason");
    }
    char err[256] = "";
    int rc = mc_snapshot_finalize(b->snap, stats, &registry, err, sizeof(err));
    FUZZ_ASSERT(rc == 0 || (rc == -1 && err[0]), "finalize: %d (%s)", rc, err);
    mc_sb_free(b);
    mc_cluster_registry_prune(&registry);
    free(p);
    free(copy);
    return 0;
}
