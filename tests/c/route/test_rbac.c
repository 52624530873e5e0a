/*
 * route/rbac.c: RBAC filters built by mc_rbac_new from the compiler's
 * flattened rule trees (mc_sb_rbac_t), evaluated against requests parsed
 * from real HTTP/1.1 heads and socket addresses: ALLOW / DENY / LOG, the
 * deciding policy's name, principals (exact, prefix, any authenticated),
 * paths, headers, destination ports, source and destination CIDRs (v4, v6,
 * prefixes off byte boundaries), not / and / or, the network filter (no
 * request: header and path rules never match) and bad specs.
 */
#include <string.h>

#include "check.h"
#include "route/rbac.h"

static pcre2_match_data *md;

#define ADMIN "spiffe://td/ns/prod/sa/admin"
#define WEB "spiffe://td/ns/prod/sa/web"
#define OTHER_NS "spiffe://td/ns/dev/sa/admin"

/* A request and addresses to decide on. */
typedef struct who {
    const char *head;      /* HTTP/1.1 head; NULL: the network filter (no request) */
    const char *principal; /* "" when not authenticated */
    const char *peer_ip;
    const char *local_ip;
    uint16_t local_port;
} who_t;

static int decide(const mc_sb_rbac_t *spec, who_t w, char *policy, size_t policy_len)
{
    char err[200];
    mc_rbac_t *r = mc_rbac_new(spec, err, sizeof(err));
    CHECK(r != NULL);
    if (!r) {
        fprintf(stderr, "mc_rbac_new: %s\n", err);
        return -1;
    }
    mc_h1_header_t hs[16];
    mc_h1_request_t h1;
    mc_route_req_t rq;
    memset(&h1, 0, sizeof(h1));
    h1.headers = hs;
    h1.n_headers = 16;
    if (w.head) {
        int status = 0;
        const char *reason = NULL;
        CHECK_EQ(mc_h1_parse_request(w.head, strlen(w.head), &h1, &mc_h1_default_limits, &status, &reason),
                 (int)strlen(w.head));
        mc_route_req_from_h1(&rq, &h1);
    }
    mc_addr_t peer, local;
    CHECK_EQ(mc_addr_parse(&peer, w.peer_ip ? w.peer_ip : "10.1.2.3", 40000), 0);
    CHECK_EQ(mc_addr_parse(&local, w.local_ip ? w.local_ip : "127.0.0.1", w.local_port ? w.local_port : 8080), 0);
    const char *principal = w.principal ? w.principal : "";
    mc_rbac_ctx_t c = {.rq = w.head ? &rq : NULL, .principal = principal, .authenticated = principal[0] != 0,
                       .peer = &peer, .local = &local, .md = md};
    const char *name = (const char *)1;
    int ok = mc_rbac_allows(r, &c, &name);
    snprintf(policy, policy_len, "%s", name ? name : "(none)");
    mc_rbac_free(r);
    return ok;
}

#define CHECK_DECISION(spec, who, want_allowed, want_policy)                                           \
    do {                                                                                               \
        char _p[64];                                                                                   \
        int _ok = decide((spec), (who), _p, sizeof(_p));                                               \
        if (_ok != (want_allowed) || strcmp(_p, (want_policy)) != 0) {                                 \
            fprintf(stderr, "%s:%d: decision: got %s by %s, want %s by %s\n", __FILE__, __LINE__,      \
                    _ok ? "allow" : "deny", _p, (want_allowed) ? "allow" : "deny", (want_policy));     \
            check_failures++;                                                                          \
        }                                                                                              \
    } while (0)

#define REQ(method, target, extra) method " " target " HTTP/1.1\r\nHost: svc\r\n" extra "\r\n"
#define KIDS(...) .children = (const uint32_t[]){__VA_ARGS__}, .n_children = sizeof((uint32_t[]){__VA_ARGS__}) / 4
#define NODES(...) .nodes = (const mc_sb_rbac_node_t[]){__VA_ARGS__}, \
                   .n_nodes = sizeof((mc_sb_rbac_node_t[]){__VA_ARGS__}) / sizeof(mc_sb_rbac_node_t)
#define POLICIES(...) .policies = (const mc_sb_rbac_policy_t[]){__VA_ARGS__}, \
                      .n_policies = sizeof((mc_sb_rbac_policy_t[]){__VA_ARGS__}) / sizeof(mc_sb_rbac_policy_t)

static void test_allow_principals(void)
{
    /* ALLOW: admins anywhere; anyone in namespace prod on GET. */
    mc_sb_rbac_t spec = {
        .action = MC_RBAC_ALLOW,
        NODES({.kind = MC_RBAC_ANY},                                                                 /* 0 */
              {.kind = MC_RBAC_AUTHENTICATED, .match = {.kind = MC_STR_EXACT, .value = ADMIN}},      /* 1 */
              {.kind = MC_RBAC_HEADER, .match = {.name = ":method", .kind = MC_STR_EXACT, .value = "GET"}}, /* 2 */
              {.kind = MC_RBAC_AUTHENTICATED, .match = {.kind = MC_STR_PREFIX, .value = "spiffe://td/ns/prod/"}}), /* 3 */
        POLICIES({"admins", 0, 1}, {"prod-readers", 2, 3}),
    };
    CHECK_DECISION(&spec, ((who_t){.head = REQ("DELETE", "/x", ""), .principal = ADMIN}), 1, "admins");
    CHECK_DECISION(&spec, ((who_t){.head = REQ("GET", "/x", ""), .principal = ADMIN}), 1, "admins"); /* first */
    CHECK_DECISION(&spec, ((who_t){.head = REQ("GET", "/x", ""), .principal = WEB}), 1, "prod-readers");
    CHECK_DECISION(&spec, ((who_t){.head = REQ("POST", "/x", "Content-Length: 0\r\n"), .principal = WEB}), 0,
                   "(none)");
    CHECK_DECISION(&spec, ((who_t){.head = REQ("GET", "/x", ""), .principal = OTHER_NS}), 0, "(none)");
    CHECK_DECISION(&spec, ((who_t){.head = REQ("GET", "/x", ""), .principal = ""}), 0, "(none)");
    CHECK_DECISION(&spec, ((who_t){.head = REQ("GET", "/x", ""), .principal = ADMIN "/x"}), 1, "prod-readers");

    /* kind PRESENT: any authenticated peer. */
    mc_sb_rbac_t any_peer = {
        .action = MC_RBAC_ALLOW,
        NODES({.kind = MC_RBAC_ANY}, {.kind = MC_RBAC_AUTHENTICATED, .match = {.kind = MC_STR_PRESENT}}),
        POLICIES({"mtls", 0, 1}),
    };
    CHECK_DECISION(&any_peer, ((who_t){.head = REQ("GET", "/", ""), .principal = OTHER_NS}), 1, "mtls");
    CHECK_DECISION(&any_peer, ((who_t){.head = REQ("GET", "/", ""), .principal = ""}), 0, "(none)");
}

static void test_deny_and_log(void)
{
    /* DENY /admin (path without the query) to everyone but admins. */
    mc_sb_rbac_t spec = {
        .action = MC_RBAC_DENY,
        NODES({.kind = MC_RBAC_PATH, .match = {.kind = MC_STR_PREFIX, .value = "/admin"}},          /* 0 */
              {.kind = MC_RBAC_AUTHENTICATED, .match = {.kind = MC_STR_EXACT, .value = ADMIN}},      /* 1 */
              {.kind = MC_RBAC_NOT, KIDS(1)}),                                                        /* 2 */
        POLICIES({"block-admin", 0, 2}),
    };
    CHECK_DECISION(&spec, ((who_t){.head = REQ("GET", "/admin/users", ""), .principal = WEB}), 0, "block-admin");
    CHECK_DECISION(&spec, ((who_t){.head = REQ("GET", "/admin?x=1", ""), .principal = ""}), 0, "block-admin");
    CHECK_DECISION(&spec, ((who_t){.head = REQ("GET", "/admin/users", ""), .principal = ADMIN}), 1, "(none)");
    CHECK_DECISION(&spec, ((who_t){.head = REQ("GET", "/public?/admin", ""), .principal = WEB}), 1, "(none)");

    /* LOG never denies; the matching policy is still reported. */
    spec.action = MC_RBAC_LOG;
    CHECK_DECISION(&spec, ((who_t){.head = REQ("GET", "/admin/users", ""), .principal = WEB}), 1, "block-admin");
    CHECK_DECISION(&spec, ((who_t){.head = REQ("GET", "/public", ""), .principal = WEB}), 1, "(none)");

    /* No policies: ALLOW denies everything, DENY allows everything. */
    mc_sb_rbac_t empty = {.action = MC_RBAC_ALLOW};
    CHECK_DECISION(&empty, ((who_t){.head = REQ("GET", "/", ""), .principal = ADMIN}), 0, "(none)");
    empty.action = MC_RBAC_DENY;
    CHECK_DECISION(&empty, ((who_t){.head = REQ("GET", "/", ""), .principal = ADMIN}), 1, "(none)");
}

static void test_ports_and_cidrs(void)
{
    mc_sb_rbac_t spec = {
        .action = MC_RBAC_ALLOW,
        NODES({.kind = MC_RBAC_DEST_PORT, .port_lo = 8080, .port_hi = 8080},                         /* 0 */
              {.kind = MC_RBAC_SOURCE_IP, .ip = "10.0.0.0", .prefix_len = 8},                         /* 1 */
              {.kind = MC_RBAC_DEST_PORT, .port_lo = 9000, .port_hi = 9100},                         /* 2 */
              {.kind = MC_RBAC_SOURCE_IP, .ip = "172.16.0.0", .prefix_len = 12},                      /* 3 */
              {.kind = MC_RBAC_ANY},                                                                  /* 4 */
              {.kind = MC_RBAC_SOURCE_IP, .ip = "fd00::", .prefix_len = 8},                           /* 5 */
              {.kind = MC_RBAC_DEST_IP, .ip = "192.0.2.7", .prefix_len = 32}),                        /* 6 */
        POLICIES({"8080-from-10/8", 0, 1}, {"9000s-from-172.16/12", 2, 3}, {"v6-ula", 4, 5}, {"to-.7", 6, 4}),
    };
    who_t w = {.head = REQ("GET", "/", ""), .peer_ip = "10.200.0.1", .local_port = 8080};
    CHECK_DECISION(&spec, w, 1, "8080-from-10/8");
    w.peer_ip = "11.0.0.1";
    CHECK_DECISION(&spec, w, 0, "(none)");
    w.peer_ip = "10.0.0.1", w.local_port = 8081;
    CHECK_DECISION(&spec, w, 0, "(none)");

    w.local_port = 9000, w.peer_ip = "172.31.255.255";
    CHECK_DECISION(&spec, w, 1, "9000s-from-172.16/12");
    w.local_port = 9100;
    CHECK_DECISION(&spec, w, 1, "9000s-from-172.16/12");
    w.local_port = 9101;
    CHECK_DECISION(&spec, w, 0, "(none)");
    w.local_port = 9050, w.peer_ip = "172.32.0.0"; /* just outside the /12 */
    CHECK_DECISION(&spec, w, 0, "(none)");
    w.peer_ip = "172.15.255.255";
    CHECK_DECISION(&spec, w, 0, "(none)");

    w.peer_ip = "fd12::1", w.local_ip = "::1", w.local_port = 1;
    CHECK_DECISION(&spec, w, 1, "v6-ula");
    w.peer_ip = "fe80::1";
    CHECK_DECISION(&spec, w, 0, "(none)");
    w.peer_ip = "::ffff:10.0.0.1", w.local_port = 8080; /* a v6 address never matches a v4 rule */
    CHECK_DECISION(&spec, w, 0, "(none)");

    w.peer_ip = "203.0.113.1", w.local_ip = "192.0.2.7", w.local_port = 1;
    CHECK_DECISION(&spec, w, 1, "to-.7");
    w.local_ip = "192.0.2.8";
    CHECK_DECISION(&spec, w, 0, "(none)");
}

static void test_not_and_or(void)
{
    /* permissions: under /api/ and not DELETE, or X-User alice; principals: 10/8 or the admin. */
    mc_sb_rbac_t spec = {
        .action = MC_RBAC_ALLOW,
        NODES({.kind = MC_RBAC_PATH, .match = {.kind = MC_STR_PREFIX, .value = "/api/"}},           /* 0 */
              {.kind = MC_RBAC_HEADER, .match = {.name = ":method", .kind = MC_STR_EXACT, .value = "DELETE"}}, /* 1 */
              {.kind = MC_RBAC_NOT, KIDS(1)},                                                         /* 2 */
              {.kind = MC_RBAC_AND, KIDS(0, 2)},                                                      /* 3 */
              {.kind = MC_RBAC_SOURCE_IP, .ip = "10.0.0.0", .prefix_len = 8},                         /* 4 */
              {.kind = MC_RBAC_AUTHENTICATED, .match = {.kind = MC_STR_EXACT, .value = ADMIN}},      /* 5 */
              {.kind = MC_RBAC_OR, KIDS(4, 5)},                                                       /* 6 */
              {.kind = MC_RBAC_HEADER, .match = {.name = "X-User", .kind = MC_STR_EXACT, .value = "alice"}}, /* 7 */
              {.kind = MC_RBAC_OR, KIDS(3, 7)}),                                                      /* 8 */
        POLICIES({"api", 8, 6}),
    };
    who_t w = {.head = REQ("GET", "/api/x", ""), .peer_ip = "10.0.0.9"};
    CHECK_DECISION(&spec, w, 1, "api");
    w.head = REQ("DELETE", "/api/x", "");
    CHECK_DECISION(&spec, w, 0, "(none)"); /* not DELETE */
    w.head = REQ("DELETE", "/api/x", "x-user: alice\r\n");
    CHECK_DECISION(&spec, w, 1, "api"); /* or the header (names compare case-insensitively) */
    w.head = REQ("GET", "/other", "");
    CHECK_DECISION(&spec, w, 0, "(none)"); /* and the path */
    w.head = REQ("GET", "/api/x", ""), w.peer_ip = "192.168.0.1";
    CHECK_DECISION(&spec, w, 0, "(none)"); /* principals: neither */
    w.principal = ADMIN;
    CHECK_DECISION(&spec, w, 1, "api"); /* principals: the second */

    /* Empty AND is true, empty OR false, as Envoy's and_rules/or_rules. */
    mc_sb_rbac_t empty = {
        .action = MC_RBAC_ALLOW,
        NODES({.kind = MC_RBAC_AND}, {.kind = MC_RBAC_OR}, {.kind = MC_RBAC_ANY}),
        POLICIES({"empty-or", 1, 2}, {"empty-and", 0, 2}),
    };
    CHECK_DECISION(&empty, ((who_t){.head = REQ("GET", "/", "")}), 1, "empty-and");
}

static void test_network_filter(void)
{
    /* No request (envoy.filters.network.rbac): header and path rules never
     * match, so only the address rule can. */
    mc_sb_rbac_t spec = {
        .action = MC_RBAC_ALLOW,
        NODES({.kind = MC_RBAC_PATH, .match = {.kind = MC_STR_PREFIX, .value = "/"}},                /* 0 */
              {.kind = MC_RBAC_ANY},                                                                  /* 1 */
              {.kind = MC_RBAC_HEADER, .match = {.name = "x", .kind = MC_STR_PRESENT}},               /* 2 */
              {.kind = MC_RBAC_NOT, KIDS(0)},                                                         /* 3 */
              {.kind = MC_RBAC_SOURCE_IP, .ip = "10.0.0.0", .prefix_len = 8},                         /* 4 */
              {.kind = MC_RBAC_SNI, .match = {.kind = MC_STR_PRESENT}},                               /* 5 */
              {.kind = MC_RBAC_NEVER}),                                                               /* 6 */
        POLICIES({"path", 0, 1}, {"header", 2, 1}, {"sni", 5, 1}, {"never", 6, 1}, {"not-path", 3, 4}),
    };
    CHECK_DECISION(&spec, ((who_t){.head = NULL, .peer_ip = "10.9.9.9"}), 1, "not-path");
    CHECK_DECISION(&spec, ((who_t){.head = NULL, .peer_ip = "11.9.9.9"}), 0, "(none)");
    /* With a request the path rule matches first. */
    CHECK_DECISION(&spec, ((who_t){.head = REQ("GET", "/", ""), .peer_ip = "11.9.9.9"}), 1, "path");
}

static void test_bad_specs(void)
{
    char err[200];
    mc_sb_rbac_t missing_child = {.action = MC_RBAC_ALLOW, NODES({.kind = MC_RBAC_AND, KIDS(0, 5)})};
    err[0] = '\0';
    CHECK(mc_rbac_new(&missing_child, err, sizeof(err)) == NULL);
    CHECK(strcmp(err, "rule refers to a missing node") == 0);

    mc_sb_rbac_t missing_root = {.action = MC_RBAC_ALLOW, NODES({.kind = MC_RBAC_ANY}), POLICIES({"p", 0, 1})};
    err[0] = '\0';
    CHECK(mc_rbac_new(&missing_root, err, sizeof(err)) == NULL);
    CHECK(strcmp(err, "policy refers to a missing node") == 0);

    mc_sb_rbac_t bad_ip = {
        .action = MC_RBAC_ALLOW,
        NODES({.kind = MC_RBAC_AUTHENTICATED, .match = {.kind = MC_STR_EXACT, .value = ADMIN}},
              {.kind = MC_RBAC_SOURCE_IP, .ip = "10.0.0.300", .prefix_len = 8}),
    };
    err[0] = '\0';
    CHECK(mc_rbac_new(&bad_ip, err, sizeof(err)) == NULL); /* the matcher before it is freed (ASan) */
    CHECK(strcmp(err, "\"10.0.0.300\" is not an IP address") == 0);

    mc_sb_rbac_t bad_regex = {
        .action = MC_RBAC_ALLOW,
        NODES({.kind = MC_RBAC_HEADER, .match = {.name = "x", .kind = MC_STR_REGEX, .value = "(("}}),
    };
    err[0] = '\0';
    CHECK(mc_rbac_new(&bad_regex, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "regex \"((\"") != NULL);
}

int main(void)
{
    md = pcre2_match_data_create(32, NULL);
    test_allow_principals();
    test_deny_and_log();
    test_ports_and_cidrs();
    test_not_and_or();
    test_network_filter();
    test_bad_specs();
    pcre2_match_data_free(md);
    CHECK_DONE();
}
