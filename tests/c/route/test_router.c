/*
 * route/router.c over tables built by route/route_builder.c from the
 * compiler's specs (mc_sb_route_t): the virtual host by authority (exact,
 * longest suffix wildcard, longest prefix wildcard, "*"; lower-cased; a
 * port stripped when nothing matches with it) and the first route whose
 * match accepts the request (path prefix/exact/regex/separated prefix,
 * case sensitivity, headers with invert and repeated values, query
 * parameters, :method and :authority). Requests are real HTTP/1.1 heads
 * through the h1 parser and mc_route_req_from_h1.
 */
#include <string.h>

#include "check.h"
#include "route/router.h"

static pcre2_match_data *md;
static const char *const CLUSTER[] = {"c"};

typedef struct req {
    mc_h1_header_t hs[16];
    mc_h1_request_t h1;
    mc_route_req_t rq;
} req_t;

static const mc_route_req_t *parse(req_t *r, const char *head)
{
    memset(r, 0, sizeof(*r));
    r->h1.headers = r->hs;
    r->h1.n_headers = 16;
    int status = 0;
    const char *reason = NULL;
    int n = mc_h1_parse_request(head, strlen(head), &r->h1, &mc_h1_default_limits, &status, &reason);
    CHECK_EQ(n, (int)strlen(head));
    mc_route_req_from_h1(&r->rq, &r->h1);
    return &r->rq;
}

static void init_hcm(mc_hcm_t *h)
{
    mc_sb_hcm_t spec = {.stat_prefix = "test"};
    char err[200];
    CHECK_EQ(mc_hcm_init(h, &spec, err, sizeof(err)), 0);
}

static int add_vhost(mc_hcm_t *h, const char *name, const char *const *domains, uint32_t n)
{
    char err[200];
    int v = mc_route_table_add_vhost(&h->rt, name, domains, n, NULL, NULL, NULL, err, sizeof(err));
    if (v < 0)
        fprintf(stderr, "add_vhost %s: %s\n", name, err);
    return v;
}

/* ---- virtual hosts ------------------------------------------------------- */

/* The name of the vhost an authority selects, "(none)" when none does. */
static const char *vhost_for(const mc_route_table_t *rt, const char *authority)
{
    const mc_vhost_t *v = mc_router_vhost(rt, authority, strlen(authority));
    return v ? v->name : "(none)";
}

#define CHECK_VHOST(rt, authority, want)                                                          \
    do {                                                                                          \
        const char *_got = vhost_for((rt), (authority));                                          \
        if (strcmp(_got, (want)) != 0) {                                                          \
            fprintf(stderr, "%s:%d: vhost for \"%s\": got %s, want %s\n", __FILE__, __LINE__,     \
                    (authority), _got, (want));                                                   \
            check_failures++;                                                                     \
        }                                                                                         \
    } while (0)

static void test_domains(void)
{
    mc_hcm_t h;
    init_hcm(&h);
    /* Added in an order unlike the lookup order: the seal sorts. */
    CHECK_EQ(add_vhost(&h, "any", (const char *const[]){"*"}, 1), 0);
    CHECK_EQ(add_vhost(&h, "prefix", (const char *const[]){"api.*"}, 1), 1);
    CHECK_EQ(add_vhost(&h, "suffix", (const char *const[]){"*.example.com"}, 1), 2);
    CHECK_EQ(add_vhost(&h, "longer-suffix", (const char *const[]){"*.b.example.com"}, 1), 3);
    CHECK_EQ(add_vhost(&h, "exact", (const char *const[]){"api.example.com", "Other.Example.ORG"}, 2), 4);
    mc_route_table_seal(&h.rt);
    const mc_route_table_t *rt = &h.rt;

    CHECK_VHOST(rt, "api.example.com", "exact");
    CHECK_VHOST(rt, "API.Example.Com", "exact");   /* authorities compare lower-cased */
    CHECK_VHOST(rt, "other.example.org", "exact"); /* patterns too */
    CHECK_VHOST(rt, "x.example.com", "suffix");
    CHECK_VHOST(rt, "x.b.example.com", "longer-suffix"); /* the most specific wildcard */
    CHECK_VHOST(rt, "api.foo.example.com", "suffix");    /* suffix wildcards before prefix ones */
    CHECK_VHOST(rt, "api.internal", "prefix");
    CHECK_VHOST(rt, "unknown.org", "any");
    CHECK_VHOST(rt, ".example.com", "any"); /* a wildcard never matches an empty part */
    CHECK_VHOST(rt, "api.", "any");
    CHECK_VHOST(rt, "", "any");
    char longname[300];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    memcpy(longname + sizeof(longname) - 1 - 12, ".example.com", 12);
    CHECK_VHOST(rt, longname, "any"); /* too long to look up: only "*" */
    mc_hcm_destroy(&h);
}

static void test_ports(void)
{
    mc_hcm_t h;
    init_hcm(&h);
    CHECK_EQ(add_vhost(&h, "svc", (const char *const[]){"svc.local"}, 1), 0);
    CHECK_EQ(add_vhost(&h, "svc-9090", (const char *const[]){"svc.local:9090"}, 1), 1);
    CHECK_EQ(add_vhost(&h, "v6", (const char *const[]){"[::1]"}, 1), 2);
    CHECK_EQ(add_vhost(&h, "wild", (const char *const[]){"*.mesh"}, 1), 3);
    mc_route_table_seal(&h.rt);
    const mc_route_table_t *rt = &h.rt;

    CHECK_VHOST(rt, "svc.local", "svc");
    CHECK_VHOST(rt, "svc.local:8080", "svc");     /* no match with the port: tried without */
    CHECK_VHOST(rt, "svc.local:9090", "svc-9090"); /* a domain with the port wins */
    CHECK_VHOST(rt, "[::1]", "v6");
    CHECK_VHOST(rt, "[::1]:15001", "v6");
    CHECK_VHOST(rt, "a.mesh:80", "wild");
    CHECK_VHOST(rt, "nothing.here:80", "(none)"); /* no "*" vhost: none */
    CHECK_VHOST(rt, "[::2]:80", "(none)");
    mc_hcm_destroy(&h);
}

static void test_domain_conflicts(void)
{
    mc_hcm_t h;
    init_hcm(&h);
    char err[200];
    CHECK_EQ(add_vhost(&h, "a", (const char *const[]){"*", "x.io"}, 2), 0);
    err[0] = '\0';
    CHECK(mc_route_table_add_vhost(&h.rt, "b", (const char *const[]){"*"}, 1, NULL, NULL, NULL, err,
                                   sizeof(err)) < 0);
    CHECK(strstr(err, "domain \"*\" is used by two virtual hosts") != NULL);
    err[0] = '\0';
    CHECK(mc_route_table_add_vhost(&h.rt, "c", (const char *const[]){"X.IO"}, 1, NULL, NULL, NULL, err,
                                   sizeof(err)) < 0);
    CHECK(strstr(err, "domain \"X.IO\" is used by two virtual hosts") != NULL);
    mc_hcm_destroy(&h);
}

/* ---- routes --------------------------------------------------------------- */

static void add_route(mc_hcm_t *h, uint32_t vhost, const char *name, int path_kind, const char *path,
                      int case_sensitive, const mc_sb_matcher_t *headers, uint32_t n_headers,
                      const mc_sb_matcher_t *query, uint32_t n_query)
{
    mc_sb_route_t r = {
        .name = name,
        .path_kind = path_kind,
        .path = path,
        .case_sensitive = case_sensitive,
        .headers = headers,
        .n_headers = n_headers,
        .query = query,
        .n_query = n_query,
        .action = MC_ACTION_ROUTE,
        .clusters = CLUSTER,
        .n_clusters = 1,
    };
    char err[200];
    int rc = mc_route_table_add_route(&h->rt, vhost, &r, err, sizeof(err));
    if (rc < 0)
        fprintf(stderr, "add_route %s: %s\n", name, err);
    CHECK(rc >= 0);
}

static const char *route_for(const mc_route_table_t *rt, const char *head)
{
    req_t r;
    const mc_route_req_t *rq = parse(&r, head);
    const mc_vhost_t *v = mc_router_vhost(rt, rq->authority, rq->authority_len);
    const mc_route_t *route = v ? mc_router_match(v, rq, md) : NULL;
    return route ? route->name : "(none)";
}

#define CHECK_ROUTE(rt, head, want)                                                                  \
    do {                                                                                             \
        const char *_got = route_for((rt), (head));                                                  \
        if (strcmp(_got, (want)) != 0) {                                                             \
            fprintf(stderr, "%s:%d: route for %.40s...: got %s, want %s\n", __FILE__, __LINE__,      \
                    (head), _got, (want));                                                           \
            check_failures++;                                                                        \
        }                                                                                            \
    } while (0)

#define GET(target, extra) "GET " target " HTTP/1.1\r\nHost: svc\r\n" extra "\r\n"

static void test_routes(void)
{
    mc_hcm_t h;
    init_hcm(&h);
    CHECK_EQ(add_vhost(&h, "svc", (const char *const[]){"svc"}, 1), 0);

    const mc_sb_matcher_t canary[] = {{.name = "X-Canary", .kind = MC_STR_EXACT, .value = "1"}};
    add_route(&h, 0, "canary", MC_PATH_PREFIX, "/api/v1", 1, canary, 1, NULL, 0);
    add_route(&h, 0, "items", MC_PATH_EXACT, "/api/v1/items", 1, NULL, 0, NULL, 0);
    add_route(&h, 0, "user", MC_PATH_REGEX, "/users/[0-9]+", 1, NULL, 0, NULL, 0);
    add_route(&h, 0, "docs", MC_PATH_SEPARATED_PREFIX, "/docs", 1, NULL, 0, NULL, 0);
    const mc_sb_matcher_t debug[] = {{.name = "debug", .kind = MC_STR_EXACT, .value = "1"}};
    add_route(&h, 0, "query", MC_PATH_PREFIX, "/q", 1, NULL, 0, debug, 1);
    const mc_sb_matcher_t post[] = {{.name = ":method", .kind = MC_STR_EXACT, .value = "POST"}};
    add_route(&h, 0, "method", MC_PATH_PREFIX, "/m", 1, post, 1, NULL, 0);
    add_route(&h, 0, "caseless", MC_PATH_PREFIX, "/ci", 0, NULL, 0, NULL, 0);
    const mc_sb_matcher_t not_blocked[] = {{.name = "x-block", .kind = MC_STR_PRESENT, .invert = 1}};
    add_route(&h, 0, "not-blocked", MC_PATH_PREFIX, "/inv", 1, not_blocked, 1, NULL, 0);
    const mc_sb_matcher_t joined[] = {{.name = "x-multi", .kind = MC_STR_EXACT, .value = "a,b"}};
    add_route(&h, 0, "joined", MC_PATH_PREFIX, "/j", 1, joined, 1, NULL, 0);
    const mc_sb_matcher_t not_v2[] = {{.name = "x-version", .kind = MC_STR_PREFIX, .value = "v2", .invert = 1}};
    add_route(&h, 0, "not-v2", MC_PATH_PREFIX, "/ver", 1, not_v2, 1, NULL, 0);
    const mc_sb_matcher_t two[] = {
        {.name = "x-a", .kind = MC_STR_EXACT, .value = "1"},
        {.name = ":authority", .kind = MC_STR_SUFFIX, .value = "vc"},
    };
    add_route(&h, 0, "all-headers", MC_PATH_PREFIX, "/two", 1, two, 2, NULL, 0);
    add_route(&h, 0, "default", MC_PATH_PREFIX, "/", 1, NULL, 0, NULL, 0);
    mc_route_table_seal(&h.rt);
    const mc_route_table_t *rt = &h.rt;

    /* First match wins: the canary route is listed before the exact one. */
    CHECK_ROUTE(rt, GET("/api/v1/items", "x-canary: 1\r\n"), "canary");
    CHECK_ROUTE(rt, GET("/api/v1/items", ""), "items");
    CHECK_ROUTE(rt, GET("/api/v1/items", "x-canary: 2\r\n"), "items");
    CHECK_ROUTE(rt, GET("/api/v1/items?page=2", ""), "items"); /* exact ignores the query */
    CHECK_ROUTE(rt, GET("/api/v1/items/", ""), "default");
    CHECK_ROUTE(rt, GET("/API/v1/items", ""), "default"); /* case-sensitive */

    CHECK_ROUTE(rt, GET("/users/42", ""), "user");
    CHECK_ROUTE(rt, GET("/users/42?x=1", ""), "user"); /* regex on the path without the query */
    CHECK_ROUTE(rt, GET("/users/4a", ""), "default");
    CHECK_ROUTE(rt, GET("/users/42/x", ""), "default"); /* a full match */

    CHECK_ROUTE(rt, GET("/docs", ""), "docs");
    CHECK_ROUTE(rt, GET("/docs/a", ""), "docs");
    CHECK_ROUTE(rt, GET("/docs?x", ""), "docs");
    CHECK_ROUTE(rt, GET("/docsx", ""), "default");

    CHECK_ROUTE(rt, GET("/q?debug=1", ""), "query");
    CHECK_ROUTE(rt, GET("/q?a=2&debug=1&b", ""), "query");
    CHECK_ROUTE(rt, GET("/q?debug=2", ""), "default");
    CHECK_ROUTE(rt, GET("/q?debug", ""), "default");
    CHECK_ROUTE(rt, GET("/q?xdebug=1", ""), "default");
    CHECK_ROUTE(rt, GET("/q", ""), "default");

    CHECK_ROUTE(rt, "POST /m HTTP/1.1\r\nHost: svc\r\nContent-Length: 0\r\n\r\n", "method");
    CHECK_ROUTE(rt, GET("/m", ""), "default");

    CHECK_ROUTE(rt, GET("/CI/x", ""), "caseless");
    CHECK_ROUTE(rt, GET("/ci", ""), "caseless");

    CHECK_ROUTE(rt, GET("/inv", ""), "not-blocked");
    CHECK_ROUTE(rt, GET("/inv", "X-Block: yes\r\n"), "default");

    /* A repeated header is matched as its values joined with ",". */
    CHECK_ROUTE(rt, GET("/j", "x-multi: a\r\nX-Multi: b\r\n"), "joined");
    CHECK_ROUTE(rt, GET("/j", "x-multi: a\r\n"), "default");
    CHECK_ROUTE(rt, GET("/j", "x-multi: a,b\r\n"), "joined");

    /* invert_match: a present header that does not match, or an absent one. */
    CHECK_ROUTE(rt, GET("/ver", "x-version: v1\r\n"), "not-v2");
    CHECK_ROUTE(rt, GET("/ver", "x-version: v2.1\r\n"), "default");
    CHECK_ROUTE(rt, GET("/ver", ""), "default"); /* absent: only an inverted presence check matches */

    /* Every header matcher must match (and :authority is the Host). */
    CHECK_ROUTE(rt, GET("/two", "x-a: 1\r\n"), "all-headers");
    CHECK_ROUTE(rt, GET("/two", "x-a: 2\r\n"), "default");
    CHECK_ROUTE(rt, "GET /two HTTP/1.1\r\nHost: SVC\r\nx-a: 1\r\n\r\n", "default"); /* value case kept */

    CHECK_ROUTE(rt, GET("/anything/else", ""), "default");
    CHECK_ROUTE(rt, "GET / HTTP/1.1\r\nHost: elsewhere\r\n\r\n", "(none)"); /* no vhost */
    mc_hcm_destroy(&h);
}

static void test_no_match_and_bad_specs(void)
{
    mc_hcm_t h;
    init_hcm(&h);
    CHECK_EQ(add_vhost(&h, "v", (const char *const[]){"*"}, 1), 0);
    add_route(&h, 0, "only-a", MC_PATH_PREFIX, "/a", 1, NULL, 0, NULL, 0);
    mc_route_table_seal(&h.rt);
    CHECK_ROUTE(&h.rt, GET("/b", ""), "(none)");
    CHECK_ROUTE(&h.rt, GET("/a/b", ""), "only-a");

    char err[300];
    mc_sb_route_t bad = {.name = "r", .path_kind = MC_PATH_REGEX, .path = "(", .action = MC_ACTION_ROUTE,
                         .clusters = CLUSTER, .n_clusters = 1};
    err[0] = '\0';
    CHECK(mc_route_table_add_route(&h.rt, 0, &bad, err, sizeof(err)) < 0);
    CHECK(strstr(err, "virtual host \"v\" route 1 (\"r\"): regex") != NULL);
    const mc_sb_matcher_t bad_header[] = {{.name = "x", .kind = MC_STR_REGEX, .value = "[z"}};
    bad = (mc_sb_route_t){.path_kind = MC_PATH_PREFIX, .path = "/", .headers = bad_header, .n_headers = 1,
                          .action = MC_ACTION_ROUTE, .clusters = CLUSTER, .n_clusters = 1};
    err[0] = '\0';
    CHECK(mc_route_table_add_route(&h.rt, 0, &bad, err, sizeof(err)) < 0);
    CHECK(strstr(err, "regex \"[z\"") != NULL);
    bad = (mc_sb_route_t){.path_kind = MC_PATH_PREFIX, .path = "/", .action = MC_ACTION_ROUTE};
    err[0] = '\0';
    CHECK(mc_route_table_add_route(&h.rt, 0, &bad, err, sizeof(err)) < 0);
    CHECK(strstr(err, "no cluster") != NULL);
    CHECK(mc_route_table_add_route(&h.rt, 7, &bad, err, sizeof(err)) < 0);
    CHECK(strstr(err, "no virtual host 7") != NULL);
    mc_hcm_destroy(&h); /* frees the failed routes' parts too (ASan) */
}

static void test_header_matches_directly(void)
{
    /* mc_router_header_matches with a matcher built as RBAC builds its own. */
    mc_sb_matcher_t spec = {.name = "Host", .kind = MC_STR_PREFIX, .value = "svc"};
    mc_matcher_t m;
    memset(&m, 0, sizeof(m));
    char err[200];
    CHECK_EQ(mc_matcher_init(&m, &spec, 1, err, sizeof(err)), 0);
    req_t r;
    CHECK_EQ(mc_router_header_matches(&m, parse(&r, "GET / HTTP/1.1\r\nHost: svc.ns\r\n\r\n"), md), 1);
    CHECK_EQ(mc_router_header_matches(&m, parse(&r, "GET / HTTP/1.1\r\nHost: x.svc\r\n\r\n"), md), 0);
    CHECK_EQ(mc_router_header_matches(&m, parse(&r, "GET http://svc.a/ HTTP/1.1\r\nHost: z\r\n\r\n"), md), 1);
    mc_matcher_free(&m);

    spec = (mc_sb_matcher_t){.name = ":path", .kind = MC_STR_EXACT, .value = "/p?q=1"};
    memset(&m, 0, sizeof(m));
    CHECK_EQ(mc_matcher_init(&m, &spec, 1, err, sizeof(err)), 0);
    CHECK_EQ(mc_router_header_matches(&m, parse(&r, GET("/p?q=1", "")), md), 1); /* :path keeps the query */
    CHECK_EQ(mc_router_header_matches(&m, parse(&r, GET("/p", "")), md), 0);
    mc_matcher_free(&m);

    spec = (mc_sb_matcher_t){.name = ":scheme", .kind = MC_STR_EXACT, .value = "http"};
    memset(&m, 0, sizeof(m));
    CHECK_EQ(mc_matcher_init(&m, &spec, 1, err, sizeof(err)), 0);
    CHECK_EQ(mc_router_header_matches(&m, parse(&r, GET("/", "")), md), 1);
    mc_matcher_free(&m);
}

int main(void)
{
    md = pcre2_match_data_create(32, NULL);
    test_domains();
    test_ports();
    test_domain_conflicts();
    test_routes();
    test_no_match_and_bad_specs();
    test_header_matches_directly();
    pcre2_match_data_free(md);
    CHECK_DONE();
}
