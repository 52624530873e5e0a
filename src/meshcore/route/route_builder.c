/*
 * Building a route table from the compiler's specs (include/meshcore/
 * snapshot.h) into route/route_config.h structures: copies strings, compiles
 * regexes with PCRE2 (core/match.h, as every matcher), and converts Envoy
 * conventions once (RE2 `\1` group references, full-match semantics) so the
 * request path does no such work.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meshcore/access_log.h"
#include "route/rbac.h"
#include "route/route_config.h"

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static char *dup_opt(const char *s)
{
    return s && *s ? mc_str_dup(s, NULL) : NULL;
}

static void lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

static uint32_t captures(const pcre2_code *re)
{
    uint32_t n = 0;
    if (re)
        pcre2_pattern_info(re, PCRE2_INFO_CAPTURECOUNT, &n);
    return n;
}

static int matchers_init(mc_matcher_t **out, uint32_t *n_out, const mc_sb_matcher_t *in, uint32_t n,
                         int headers, char *err, size_t errlen)
{
    *n_out = 0;
    *out = NULL;
    if (!n)
        return 0;
    *out = calloc(n, sizeof(**out));
    if (!*out)
        return fail(err, errlen, "out of memory");
    for (uint32_t i = 0; i < n; i++) {
        (*n_out)++;
        if (mc_matcher_init(&(*out)[i], &in[i], headers, err, errlen) < 0)
            return -1;
    }
    return 0;
}

static void matchers_free(mc_matcher_t *m, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        mc_matcher_free(&m[i]);
    free(m);
}

static int header_ops_init(mc_header_ops_t *o, const mc_sb_header_ops_t *s, char *err, size_t errlen)
{
    memset(o, 0, sizeof(*o));
    if (!s)
        return 0;
    if (s->n_add) {
        o->add = calloc(s->n_add, sizeof(*o->add));
        if (!o->add)
            return fail(err, errlen, "out of memory");
        for (uint32_t i = 0; i < s->n_add; i++) {
            mc_header_op_t *op = &o->add[i];
            op->name = mc_str_dup(s->add[i].name, &op->name_len);
            op->value = mc_str_dup(s->add[i].value, &op->value_len);
            op->action = (uint8_t)s->add[i].action;
            o->n_add++;
            if (!op->name || !op->value)
                return fail(err, errlen, "out of memory");
        }
    }
    if (s->n_remove) {
        o->remove = calloc(s->n_remove, sizeof(*o->remove));
        o->remove_len = calloc(s->n_remove, sizeof(*o->remove_len));
        if (!o->remove || !o->remove_len)
            return fail(err, errlen, "out of memory");
        for (uint32_t i = 0; i < s->n_remove; i++) {
            o->remove[i] = mc_str_dup(s->remove[i], &o->remove_len[i]);
            o->n_remove++;
            if (!o->remove[i])
                return fail(err, errlen, "out of memory");
        }
    }
    return 0;
}

static void header_ops_free(mc_header_ops_t *o)
{
    for (uint32_t i = 0; i < o->n_add; i++) {
        free(o->add[i].name);
        free(o->add[i].value);
    }
    free(o->add);
    for (uint32_t i = 0; i < o->n_remove; i++)
        free(o->remove[i]);
    free(o->remove);
    free(o->remove_len);
}

static void fault_init(mc_fault_t *f, const mc_sb_fault_t *s)
{
    f->present = (uint8_t)(s->present != 0);
    f->delay_ns = (uint64_t)s->delay_ms * 1000000ull;
    f->delay_ppm = s->delay_ppm;
    f->abort_status = (uint16_t)s->abort_status;
    f->abort_ppm = s->abort_ppm;
}

void mc_retry_from_spec(mc_retry_policy_t *p, const mc_sb_retry_t *s)
{
    memset(p, 0, sizeof(*p));
    p->retry_on = s->retry_on;
    p->num_retries = s->num_retries;
    p->per_try_timeout_ns = (uint64_t)s->per_try_timeout_ms * 1000000ull;
    p->base_interval_ns = (uint64_t)s->base_interval_ms * 1000000ull;
    p->max_interval_ns = (uint64_t)s->max_interval_ms * 1000000ull;
    for (uint32_t i = 0; i < s->n_codes && i < MC_RETRY_MAX_CODES; i++)
        p->codes[p->n_codes++] = s->codes[i];
    p->previous_hosts = (uint8_t)(s->previous_hosts != 0);
    p->host_selection_max_attempts = s->host_selection_max_attempts;
}

int mc_hcm_init(mc_hcm_t *h, const mc_sb_hcm_t *s, char *err, size_t errlen)
{
    memset(h, 0, sizeof(*h));
    h->present = 1;
    h->rt.any_vhost = -1;
    if (!s->stat_prefix || !*s->stat_prefix)
        return fail(err, errlen, "http_connection_manager stat_prefix is required");
    h->stat_prefix = mc_str_dup(s->stat_prefix, NULL);
    h->idle_timeout_ns = (uint64_t)s->idle_timeout_ms * 1000000ull;
    h->stream_idle_timeout_ns = (uint64_t)s->stream_idle_timeout_ms * 1000000ull;
    h->request_timeout_ns = (uint64_t)s->request_timeout_ms * 1000000ull;
    h->request_headers_timeout_ns = (uint64_t)s->request_headers_timeout_ms * 1000000ull;
    h->max_stream_duration_ns = (uint64_t)s->max_stream_duration_ms * 1000000ull;
    h->max_requests_per_connection = s->max_requests_per_connection;
    h->limits = mc_h1_default_limits;
    if (s->max_request_headers_kb)
        h->limits.max_head_bytes = (size_t)s->max_request_headers_kb * 1024;
    if (s->max_headers_count)
        h->limits.max_headers = s->max_headers_count;
    h->generate_request_id = (uint8_t)(s->generate_request_id != 0);
    h->preserve_external_request_id = (uint8_t)(s->preserve_external_request_id != 0);
    h->use_remote_address = (uint8_t)(s->use_remote_address != 0);
    h->xff_num_trusted_hops = s->xff_num_trusted_hops;
    if (s->server_name && *s->server_name)
        h->server_name = mc_str_dup(s->server_name, &h->server_name_len);
    h->accept_http_10 = (uint8_t)(s->accept_http_10 != 0);
    h->upgrade_websocket = (uint8_t)(s->upgrade_websocket != 0);
    if (s->default_host_for_http_10 && *s->default_host_for_http_10)
        h->default_host_for_http_10 = mc_str_dup(s->default_host_for_http_10, &h->default_host_for_http_10_len);
    fault_init(&h->fault, &s->fault);
    h->path_norm.normalize_path = (uint8_t)(s->normalize_path != 0);
    h->path_norm.merge_slashes = (uint8_t)(s->merge_slashes != 0);
    if (s->path_with_escaped_slashes_action < 0 ||
        s->path_with_escaped_slashes_action > MC_SLASHES_UNESCAPE_AND_FORWARD)
        return fail(err, errlen, "path_with_escaped_slashes_action: unknown value");
    h->path_norm.escaped_slashes = (uint8_t)s->path_with_escaped_slashes_action;
    if (s->codec_type < MC_CODEC_AUTO || s->codec_type > MC_CODEC_HTTP2)
        return fail(err, errlen, "codec_type: only AUTO, HTTP1 and HTTP2 are supported");
    h->codec_type = (uint8_t)s->codec_type;
    h->h2_max_streams = s->h2_max_concurrent_streams ? s->h2_max_concurrent_streams : 100;
    h->h2_stream_window = s->h2_initial_stream_window ? s->h2_initial_stream_window : 65536;
    h->h2_conn_window = s->h2_initial_connection_window ? s->h2_initial_connection_window : 1u << 20;
    h->h2_max_control_frames = s->h2_max_outbound_control_frames ? s->h2_max_outbound_control_frames : 1000;
    h->h2_max_empty_frames = s->h2_max_empty_frames ? s->h2_max_empty_frames - 1 : 1;
    h->h2_keepalive = s->h2_keepalive;

    if (s->headers_with_underscores_action < MC_UNDERSCORES_ALLOW ||
        s->headers_with_underscores_action > MC_UNDERSCORES_DROP_HEADER)
        return fail(err, errlen, "headers_with_underscores_action: unknown value");
    h->underscores = (uint8_t)s->headers_with_underscores_action;
    h->access_log_id = s->access_log_id;
    h->tracer_id = s->tracer_id;
    h->random_sampling = s->random_sampling > 1000000 ? 1000000 : s->random_sampling;
    h->span_kind = (uint8_t)(s->span_kind == MC_SPAN_CLIENT ? MC_SPAN_CLIENT : MC_SPAN_SERVER);
    if (header_ops_init(&h->req_ops, &s->request_ops, err, errlen) < 0 ||
        header_ops_init(&h->resp_ops, &s->response_ops, err, errlen) < 0)
        return -1;
    return 0;
}

static int add_domain(mc_route_table_t *rt, const char *d, uint32_t vhost, char *err, size_t errlen)
{
    if (rt->n_domains == rt->cap_domains) {
        uint32_t cap = rt->cap_domains ? rt->cap_domains * 2 : 8;
        mc_domain_t *p = realloc(rt->domains, sizeof(*p) * cap);
        if (!p)
            return fail(err, errlen, "out of memory");
        rt->domains = p;
        rt->cap_domains = cap;
    }
    size_t n = strlen(d);
    mc_domain_t dom = {.vhost = vhost};
    if (n == 1 && d[0] == '*') {
        if (rt->any_vhost >= 0)
            return fail(err, errlen, "domain \"*\" is used by two virtual hosts");
        rt->any_vhost = (int32_t)vhost;
        return 0;
    }
    if (d[0] == '*') {
        dom.kind = MC_DOMAIN_SUFFIX;
        dom.pattern = mc_str_dup(d + 1, &dom.len);
    } else if (n > 1 && d[n - 1] == '*') {
        dom.kind = MC_DOMAIN_PREFIX;
        dom.pattern = mc_str_dup(d, NULL);
        dom.len = n - 1;
        if (dom.pattern)
            dom.pattern[n - 1] = '\0';
    } else {
        dom.kind = MC_DOMAIN_EXACT;
        dom.pattern = mc_str_dup(d, &dom.len);
    }
    if (!dom.pattern)
        return fail(err, errlen, "out of memory");
    lower(dom.pattern);
    for (uint32_t i = 0; i < rt->n_domains; i++) {
        if (rt->domains[i].kind == dom.kind && strcmp(rt->domains[i].pattern, dom.pattern) == 0) {
            free(dom.pattern);
            return fail(err, errlen, "domain \"%s\" is used by two virtual hosts", d);
        }
    }
    rt->domains[rt->n_domains++] = dom;
    return 0;
}

int mc_route_table_add_vhost(mc_route_table_t *rt, const char *name, const char *const *domains, uint32_t n,
                             const mc_sb_header_ops_t *req, const mc_sb_header_ops_t *resp,
                             const mc_sb_retry_t *retry, char *err, size_t errlen)
{
    if (rt->n_vhosts == rt->cap_vhosts) {
        uint32_t cap = rt->cap_vhosts ? rt->cap_vhosts * 2 : 4;
        mc_vhost_t *p = realloc(rt->vhosts, sizeof(*p) * cap);
        if (!p)
            return fail(err, errlen, "out of memory");
        memset(p + rt->cap_vhosts, 0, sizeof(*p) * (cap - rt->cap_vhosts));
        rt->vhosts = p;
        rt->cap_vhosts = cap;
    }
    uint32_t idx = rt->n_vhosts++;
    mc_vhost_t *v = &rt->vhosts[idx];
    v->name = mc_str_dup(name, NULL);
    if (retry) {
        v->has_retry = 1;
        mc_retry_from_spec(&v->retry, retry);
    }
    if (header_ops_init(&v->req_ops, req, err, errlen) < 0 || header_ops_init(&v->resp_ops, resp, err, errlen) < 0)
        return -1;
    for (uint32_t i = 0; i < n; i++)
        if (add_domain(rt, domains[i], idx, err, errlen) < 0)
            return -1;
    return (int)idx;
}

/* RE2's \1 group references become PCRE2's ${1}; a literal '$' becomes $$. */
static char *substitution_for_pcre2(const char *re2)
{
    size_t n = strlen(re2);
    char *out = malloc(n * 4 + 1), *o = out;
    if (!out)
        return NULL;
    for (const char *p = re2; *p; p++) {
        if (*p == '\\' && p[1] >= '0' && p[1] <= '9') {
            o += sprintf(o, "${%c}", p[1]);
            p++;
        } else if (*p == '\\' && p[1] == '\\') {
            *o++ = '\\';
            p++;
        } else if (*p == '$') {
            *o++ = '$';
            *o++ = '$';
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return out;
}

int mc_route_table_add_route(mc_route_table_t *rt, uint32_t vhost, const mc_sb_route_t *s, char *err,
                             size_t errlen)
{
    if (vhost >= rt->n_vhosts)
        return fail(err, errlen, "no virtual host %u", vhost);
    mc_vhost_t *v = &rt->vhosts[vhost];
    if (v->n_routes == v->cap_routes) {
        uint32_t cap = v->cap_routes ? v->cap_routes * 2 : 8;
        mc_route_t *p = realloc(v->routes, sizeof(*p) * cap);
        if (!p)
            return fail(err, errlen, "out of memory");
        memset(p + v->cap_routes, 0, sizeof(*p) * (cap - v->cap_routes));
        v->routes = p;
        v->cap_routes = cap;
    }
    mc_route_t *r = &v->routes[v->n_routes++];
    char label[200];
    snprintf(label, sizeof(label), "virtual host \"%s\" route %u%s%s%s", v->name, v->n_routes - 1,
             s->name && *s->name ? " (\"" : "", s->name && *s->name ? s->name : "",
             s->name && *s->name ? "\")" : "");
    r->name = mc_str_dup(s->name, NULL);
    r->path_kind = (uint8_t)s->path_kind;
    r->case_sensitive = (uint8_t)(s->case_sensitive != 0);
    r->path = mc_str_dup(s->path, &r->path_len);
    if (s->path_kind == MC_PATH_REGEX) {
        char e[200];
        r->path_re = mc_regex_compile(s->path ? s->path : "", 1, !s->case_sensitive, e, sizeof(e));
        if (!r->path_re)
            return fail(err, errlen, "%s: %s", label, e);
    }
    char e[200];
    if (matchers_init(&r->headers, &r->n_headers, s->headers, s->n_headers, 1, e, sizeof(e)) < 0 ||
        matchers_init(&r->query, &r->n_query, s->query, s->n_query, 0, e, sizeof(e)) < 0)
        return fail(err, errlen, "%s: %s", label, e);
    r->action = (uint8_t)s->action;
    if (s->action == MC_ACTION_ROUTE) {
        if (s->n_clusters == 0)
            return fail(err, errlen, "%s: no cluster", label);
        r->n_clusters = s->n_clusters;
        r->cluster_names = calloc(s->n_clusters, sizeof(char *));
        r->cluster_idx = calloc(s->n_clusters, sizeof(uint32_t));
        r->weights = calloc(s->n_clusters, sizeof(uint32_t));
        if (!r->cluster_names || !r->cluster_idx || !r->weights)
            return fail(err, errlen, "out of memory");
        for (uint32_t i = 0; i < s->n_clusters; i++) {
            r->cluster_names[i] = mc_str_dup(s->clusters[i], NULL);
            r->weights[i] = s->weights && s->weights[i] ? s->weights[i] : 1;
        }
        r->timeout_ns = (uint64_t)s->timeout_ms * 1000000ull;
        r->grpc_timeout_header = (uint8_t)(s->grpc_timeout_header != 0);
        r->grpc_timeout_max_ns = (uint64_t)s->grpc_timeout_max_ms * 1000000ull;
        r->grpc_timeout_offset_ns = (uint64_t)s->grpc_timeout_offset_ms * 1000000ull;
        r->max_grpc_timeout = (uint8_t)(s->max_grpc_timeout != 0);
        r->max_grpc_timeout_ns = (uint64_t)s->max_grpc_timeout_ms * 1000000ull;
        r->grpc_offset_ns = (uint64_t)s->grpc_offset_ms * 1000000ull;
        r->stream_duration = (uint8_t)(s->stream_duration != 0);
        r->stream_duration_ns = (uint64_t)s->stream_duration_ms * 1000000ull;
        if (s->has_retry) {
            r->has_retry = 1;
            mc_retry_from_spec(&r->retry, &s->retry);
        }
        r->prefix_rewrite = dup_opt(s->prefix_rewrite);
        r->prefix_rewrite_len = r->prefix_rewrite ? strlen(r->prefix_rewrite) : 0;
        if (s->regex_rewrite && *s->regex_rewrite) {
            r->rewrite_re = mc_regex_compile(s->regex_rewrite, 0, 0, e, sizeof(e));
            if (!r->rewrite_re)
                return fail(err, errlen, "%s: regex_rewrite: %s", label, e);
            r->rewrite_sub = substitution_for_pcre2(s->regex_substitution ? s->regex_substitution : "");
            uint32_t nc = captures(r->rewrite_re);
            if (nc > rt->max_captures)
                rt->max_captures = nc;
        }
        r->host_rewrite = dup_opt(s->host_rewrite);
        r->host_rewrite_len = r->host_rewrite ? strlen(r->host_rewrite) : 0;
        if (s->n_mirrors) {
            r->mirrors = calloc(s->n_mirrors, sizeof(*r->mirrors));
            if (!r->mirrors)
                return fail(err, errlen, "out of memory");
            for (uint32_t i = 0; i < s->n_mirrors; i++) {
                r->mirrors[i].cluster = mc_str_dup(s->mirrors[i].cluster, NULL);
                r->mirrors[i].ppm = s->mirrors[i].ppm;
                r->n_mirrors++;
            }
        }
        if (s->n_hash) {
            r->hash = calloc(s->n_hash, sizeof(*r->hash));
            if (!r->hash)
                return fail(err, errlen, "out of memory");
            for (uint32_t i = 0; i < s->n_hash; i++) {
                r->hash[i].kind = (uint8_t)s->hash[i].kind;
                r->hash[i].terminal = (uint8_t)(s->hash[i].terminal != 0);
                r->hash[i].name = mc_str_dup(s->hash[i].name, &r->hash[i].name_len);
                if (s->hash[i].kind == MC_HASH_HEADER)
                    lower(r->hash[i].name);
                r->n_hash++;
            }
        }
        fault_init(&r->fault, &s->fault);
    } else if (s->action == MC_ACTION_REDIRECT) {
        r->redirect_scheme = dup_opt(s->redirect_scheme);
        r->redirect_host = dup_opt(s->redirect_host);
        r->redirect_path = dup_opt(s->redirect_path);
        r->redirect_prefix = dup_opt(s->redirect_prefix);
        r->redirect_port = s->redirect_port;
        r->redirect_code = (uint16_t)(s->redirect_code ? s->redirect_code : 301);
        r->strip_query = (uint8_t)(s->strip_query != 0);
    } else if (s->action == MC_ACTION_DIRECT) {
        r->direct_status = (uint16_t)s->direct_status;
        if (s->direct_body_len) {
            r->direct_body = malloc(s->direct_body_len);
            if (!r->direct_body)
                return fail(err, errlen, "out of memory");
            memcpy(r->direct_body, s->direct_body, s->direct_body_len);
            r->direct_body_len = s->direct_body_len;
        }
    } else {
        return fail(err, errlen, "%s: unknown action %d", label, s->action);
    }
    if (header_ops_init(&r->req_ops, &s->request_ops, err, errlen) < 0 ||
        header_ops_init(&r->resp_ops, &s->response_ops, err, errlen) < 0)
        return -1;
    return (int)(v->n_routes - 1);
}

static int cmp_exact(const void *a, const void *b)
{
    const mc_domain_t *x = a, *y = b;
    if (x->kind != y->kind)
        return (int)x->kind - (int)y->kind;
    if (x->kind == MC_DOMAIN_EXACT)
        return strcmp(x->pattern, y->pattern);
    /* Wildcards: longest first, as Envoy picks the most specific. */
    if (x->len != y->len)
        return x->len > y->len ? -1 : 1;
    return strcmp(x->pattern, y->pattern);
}

void mc_route_table_seal(mc_route_table_t *rt)
{
    if (rt->n_domains) /* qsort's base must not be NULL, even for no elements */
        qsort(rt->domains, rt->n_domains, sizeof(*rt->domains), cmp_exact);
    rt->n_exact = 0;
    while (rt->n_exact < rt->n_domains && rt->domains[rt->n_exact].kind == MC_DOMAIN_EXACT)
        rt->n_exact++;
    uint32_t slots = 0;
    for (uint32_t v = 0; v < rt->n_vhosts; v++)
        for (uint32_t i = 0; i < rt->vhosts[v].n_routes; i++)
            if (rt->vhosts[v].routes[i].n_clusters > 1)
                slots++;
    free(rt->swrr_slot_size);
    rt->swrr_slot_size = calloc(slots ? slots : 1, sizeof(uint32_t));
    rt->n_swrr_slots = 0;
    for (uint32_t v = 0; v < rt->n_vhosts; v++) {
        for (uint32_t i = 0; i < rt->vhosts[v].n_routes; i++) {
            mc_route_t *r = &rt->vhosts[v].routes[i];
            if (r->n_clusters > 1 && rt->swrr_slot_size) {
                r->swrr_slot = rt->n_swrr_slots;
                rt->swrr_slot_size[rt->n_swrr_slots++] = r->n_clusters;
            }
        }
    }
}

static void route_free(mc_route_t *r)
{
    free(r->name);
    free(r->path);
    if (r->path_re)
        pcre2_code_free(r->path_re);
    matchers_free(r->headers, r->n_headers);
    matchers_free(r->query, r->n_query);
    for (uint32_t i = 0; i < r->n_clusters; i++)
        free(r->cluster_names ? r->cluster_names[i] : NULL);
    free(r->cluster_names);
    free(r->cluster_idx);
    free(r->weights);
    free(r->prefix_rewrite);
    if (r->rewrite_re)
        pcre2_code_free(r->rewrite_re);
    free(r->rewrite_sub);
    free(r->host_rewrite);
    for (uint32_t i = 0; i < r->n_mirrors; i++)
        free(r->mirrors[i].cluster);
    free(r->mirrors);
    for (uint32_t i = 0; i < r->n_hash; i++)
        free(r->hash[i].name);
    free(r->hash);
    free(r->redirect_scheme);
    free(r->redirect_host);
    free(r->redirect_path);
    free(r->redirect_prefix);
    free(r->direct_body);
    header_ops_free(&r->req_ops);
    header_ops_free(&r->resp_ops);
}

void mc_hcm_destroy(mc_hcm_t *h)
{
    mc_route_table_t *rt = &h->rt;
    for (uint32_t v = 0; v < rt->n_vhosts; v++) {
        mc_vhost_t *vh = &rt->vhosts[v];
        for (uint32_t i = 0; i < vh->n_routes; i++)
            route_free(&vh->routes[i]);
        free(vh->routes);
        free(vh->name);
        header_ops_free(&vh->req_ops);
        header_ops_free(&vh->resp_ops);
    }
    free(rt->vhosts);
    for (uint32_t i = 0; i < rt->n_domains; i++)
        free(rt->domains[i].pattern);
    free(rt->domains);
    free(rt->swrr_slot_size);
    for (uint32_t i = 0; i < h->n_rbac; i++)
        mc_rbac_free(h->rbac[i]);
    free(h->rbac);
    free(h->stat_prefix);
    free(h->server_name);
    free(h->default_host_for_http_10);
    header_ops_free(&h->req_ops);
    header_ops_free(&h->resp_ops);
    memset(h, 0, sizeof(*h));
}
