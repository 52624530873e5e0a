/*
 * Role-based access control: envoy.filters.http.rbac and
 * envoy.filters.network.rbac, evaluated in the core.
 *
 * A policy matches when any of its permissions and any of its principals
 * match; permissions and principals are rule trees (and / or / not over
 * leaves: headers, path, ports, addresses, the authenticated peer
 * identity). The trees are flattened into one node array with children
 * listed in a side array, so evaluation is a walk over two arrays, no
 * pointers, no allocation. Header and path leaves never match on the
 * network filter (there is no request), as in Envoy.
 */
#ifndef MESHCORE_RBAC_H
#define MESHCORE_RBAC_H

#include <stdint.h>

#include "core/match.h"
#include "meshcore/snapshot.h"
#include "net/sock.h"
#include "route/router.h"

typedef struct mc_rbac_node {
    uint8_t kind; /* MC_RBAC_* */
    uint32_t first, count; /* children: kids[first .. first+count) */
    mc_matcher_t m;        /* HEADER (name + value matcher); PATH, SNI, AUTHENTICATED (matcher) */
    uint8_t family;        /* CIDR leaves: AF_INET / AF_INET6 */
    uint8_t addr[16];
    uint32_t prefix_len;
    uint32_t port_lo, port_hi;
} mc_rbac_node_t;

typedef struct mc_rbac_policy {
    char *name;
    uint32_t permissions; /* root nodes (OR over the policy's lists) */
    uint32_t principals;
} mc_rbac_policy_t;

typedef struct mc_rbac {
    uint8_t action; /* MC_RBAC_ALLOW, _DENY, _LOG */
    mc_rbac_node_t *nodes;
    uint32_t n_nodes;
    uint32_t *kids;
    uint32_t n_kids;
    mc_rbac_policy_t *policies;
    uint32_t n_policies;
} mc_rbac_t;

/* What a decision looks at. rq is NULL for the network filter. */
typedef struct mc_rbac_ctx {
    const mc_route_req_t *rq;
    const char *principal; /* the peer's SPIFFE ID, "" when not authenticated */
    int authenticated;     /* a verified peer certificate was presented */
    const mc_addr_t *peer;  /* source address */
    const mc_addr_t *local; /* destination address (ip, port) */
    pcre2_match_data *md;
} mc_rbac_ctx_t;

/* From the compiler's spec; NULL with err on a bad spec. */
mc_rbac_t *mc_rbac_new(const mc_sb_rbac_t *spec, char *err, size_t errlen);
void mc_rbac_free(mc_rbac_t *r);

/* 1 = allowed, 0 = denied. *policy: the policy that decided (the matching
 * DENY policy, or the matching ALLOW one), NULL when none matched. */
int mc_rbac_allows(const mc_rbac_t *r, const mc_rbac_ctx_t *c, const char **policy);

#endif
