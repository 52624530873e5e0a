/*
 * The router (route/router.h) over a small table built once through the
 * builder from mc_sb_* specs, as tests/c/route/test_router.c does: exact,
 * suffix, prefix and "*" domains; prefix, exact, regex and separated-prefix
 * paths, case-insensitive ones, header matchers of every kind (inverted,
 * pseudo-headers) and query matchers. The input, split at '\n': authority,
 * path (a '?' starts the query), method, a matcher value, then header lines
 * "name:value". Also the core/match.h matchers: the fixed ones and one built
 * from the input (non-regex kinds) against every fuzzed field.
 */
#include "fuzz_util.h"
#include "core/match.h"
#include "route/router.h"

#define MAXH 32

static mc_hcm_t hcm;
static pcre2_match_data *md;
static const char *const CLUSTER[] = {"c"};

static void add_route(uint32_t vhost, const char *name, int kind, const char *path, int cs,
                      const mc_sb_matcher_t *h, uint32_t nh, const mc_sb_matcher_t *q, uint32_t nq)
{
    mc_sb_route_t r = {.name = name, .path_kind = kind, .path = path, .case_sensitive = cs, .headers = h,
                       .n_headers = nh, .query = q, .n_query = nq, .action = MC_ACTION_ROUTE,
                       .clusters = CLUSTER, .n_clusters = 1};
    char err[256];
    if (mc_route_table_add_route(&hcm.rt, vhost, &r, err, sizeof(err)) < 0) {
        fprintf(stderr, "fuzz_router: add_route %s: %s\n", name, err);
        abort();
    }
}

static void add_vhost(const char *name, const char *const *d, uint32_t n)
{
    char err[256];
    if (mc_route_table_add_vhost(&hcm.rt, name, d, n, NULL, NULL, NULL, err, sizeof(err)) < 0) {
        fprintf(stderr, "fuzz_router: add_vhost %s: %s\n", name, err);
        abort();
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    mc_sb_hcm_t spec = {.stat_prefix = "fuzz"};
    char err[256];
    if (mc_hcm_init(&hcm, &spec, err, sizeof(err)) != 0)
        abort();
    add_vhost("exact", (const char *const[]){"api.example.com", "svc.ns.svc.cluster.local:8080", "[::1]"}, 3);
    add_vhost("suffix", (const char *const[]){"*.example.com", "*.b.example.com"}, 2);
    add_vhost("prefix", (const char *const[]){"api.*"}, 1);
    add_vhost("any", (const char *const[]){"*"}, 1);
    for (uint32_t v = 0; v < 4; v++) {
        const mc_sb_matcher_t canary[] = {{.name = "X-Canary", .kind = MC_STR_EXACT, .value = "1"},
                                          {.name = ":authority", .kind = MC_STR_SUFFIX, .value = ".com"}};
        add_route(v, "canary", MC_PATH_PREFIX, "/api/v1", 1, canary, 2, NULL, 0);
        add_route(v, "items", MC_PATH_EXACT, "/api/v1/items", 1, NULL, 0, NULL, 0);
        add_route(v, "user", MC_PATH_REGEX, "/users/([0-9]+)/(.*)", 1, NULL, 0, NULL, 0);
        add_route(v, "docs", MC_PATH_SEPARATED_PREFIX, "/docs", 0, NULL, 0, NULL, 0);
        const mc_sb_matcher_t q[] = {{.name = "debug", .kind = MC_STR_EXACT, .value = "1"},
                                     {.name = "v", .kind = MC_STR_REGEX, .value = "[a-z]+[0-9]?"},
                                     {.name = "p", .kind = MC_STR_PRESENT}};
        add_route(v, "query", MC_PATH_PREFIX, "/q", 1, NULL, 0, q, 3);
        const mc_sb_matcher_t hs[] = {
            {.name = ":method", .kind = MC_STR_EXACT, .value = "POST"},
            {.name = "x-block", .kind = MC_STR_PRESENT, .invert = 1},
            {.name = "x-version", .kind = MC_STR_PREFIX, .value = "V2", .ignore_case = 1, .invert = 1},
            {.name = "user-agent", .kind = MC_STR_CONTAINS, .value = "Mozilla", .ignore_case = 1},
            {.name = "x-multi", .kind = MC_STR_EXACT, .value = "a,b"},
            {.name = ":path", .kind = MC_STR_REGEX, .value = "/h/.*\\?x=[0-9]+"},
            {.name = ":scheme", .kind = MC_STR_EXACT, .value = "http"},
        };
        add_route(v, "headers", MC_PATH_PREFIX, "/h", 1, hs, 7, NULL, 0);
        add_route(v, "caseless", MC_PATH_EXACT, "/CI/Path", 0, NULL, 0, NULL, 0);
        add_route(v, "default", MC_PATH_PREFIX, "/", 1, NULL, 0, NULL, 0);
    }
    mc_route_table_seal(&hcm.rt);
    md = pcre2_match_data_create(hcm.rt.max_captures + 1 > 32 ? hcm.rt.max_captures + 1 : 32, NULL);
    return 0;
}

static const mc_sb_matcher_t FIXED[] = {
    {.kind = MC_STR_EXACT, .value = "api.example.com", .ignore_case = 1},
    {.kind = MC_STR_PREFIX, .value = "/api"},
    {.kind = MC_STR_SUFFIX, .value = ".LOCAL", .ignore_case = 1},
    {.kind = MC_STR_CONTAINS, .value = "%2f", .ignore_case = 1},
    {.kind = MC_STR_REGEX, .value = "(a|b)*c[^/]{0,8}$"},
    {.kind = MC_STR_PRESENT},
    {.kind = MC_STR_EXACT, .value = ""},
};
#define NFIXED (sizeof(FIXED) / sizeof(FIXED[0]))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192)
        return 0;
    char *copy = fuzz_copy(data, size);
    fuzz_in_t in = {(const uint8_t *)copy, size};
    mc_route_req_t rq;
    memset(&rq, 0, sizeof(rq));
    mc_h1_header_t hs[MAXH];
    size_t auth_len, full_len, method_len, value_len;
    const char *auth = fuzz_field(&in, '\n', &auth_len);
    const char *full = fuzz_field(&in, '\n', &full_len);
    const char *method = fuzz_field(&in, '\n', &method_len);
    const char *value = fuzz_field(&in, '\n', &value_len);
    rq.authority = auth;
    rq.authority_len = auth_len;
    rq.full_path = full;
    rq.full_path_len = full_len;
    const char *qm = memchr(full, '?', full_len);
    rq.path = full;
    rq.path_len = qm ? (size_t)(qm - full) : full_len;
    if (qm) {
        rq.query = qm + 1;
        rq.query_len = full_len - rq.path_len - 1;
    }
    rq.method = method;
    rq.method_len = method_len;
    rq.scheme = "http";
    rq.scheme_len = 4;
    size_t nh = 0;
    while (in.n && nh < MAXH) {
        size_t line_len;
        const char *line = fuzz_field(&in, '\n', &line_len);
        const char *colon = memchr(line, ':', line_len);
        hs[nh].name = line;
        hs[nh].name_len = colon ? (size_t)(colon - line) : line_len;
        hs[nh].value = colon ? colon + 1 : line + line_len;
        hs[nh].value_len = colon ? line_len - hs[nh].name_len - 1 : 0;
        nh++;
    }
    rq.headers = hs;
    rq.n_headers = nh;

    const mc_vhost_t *v = mc_router_vhost(&hcm.rt, auth, auth_len);
    FUZZ_ASSERT(v != NULL, "no vhost, but \"*\" is configured");
    const mc_route_t *r = mc_router_match(v, &rq, md);
    if (rq.path_len && rq.path[0] == '/')
        FUZZ_ASSERT(r != NULL, "no route, but \"/\" prefix is configured");

    /* The matchers on their own: fixed specs, and one from the input. */
    const char *subjects[] = {auth, full, method, value};
    size_t lens[] = {auth_len, full_len, method_len, value_len};
    char err[256];
    for (size_t i = 0; i < NFIXED; i++) {
        mc_str_match_t m;
        memset(&m, 0, sizeof(m));
        if (mc_str_match_init(&m, &FIXED[i], err, sizeof(err)) != 0)
            abort();
        for (size_t s = 0; s < 4; s++)
            (void)mc_str_matches(&m, subjects[s], lens[s], md);
        mc_str_match_free(&m);
    }
    char *val = malloc(value_len + 1);
    memcpy(val, value, value_len);
    val[value_len] = '\0';
    mc_sb_matcher_t spec = {.name = val, .kind = (int)(value_len % 4), .value = val,
                            .ignore_case = (int)(value_len / 4 % 2)};
    mc_str_match_t m;
    memset(&m, 0, sizeof(m));
    if (mc_str_match_init(&m, &spec, err, sizeof(err)) == 0) {
        for (size_t s = 0; s < 4; s++) {
            int a = mc_str_matches(&m, subjects[s], lens[s], md);
            FUZZ_ASSERT(a == 0 || a == 1, "match %d", a);
        }
        /* A value always matches itself as exact, prefix, suffix, contains (NUL-free). */
        if (!memchr(value, '\0', value_len))
            FUZZ_ASSERT(mc_str_matches(&m, value, value_len, md) == 1, "value does not match itself");
    }
    mc_str_match_free(&m);
    mc_matcher_t nm;
    memset(&nm, 0, sizeof(nm));
    if (mc_matcher_init(&nm, &spec, 1, err, sizeof(err)) == 0)
        (void)mc_router_header_matches(&nm, &rq, md);
    mc_matcher_free(&nm);
    free(val);
    free(copy);
    return 0;
}
