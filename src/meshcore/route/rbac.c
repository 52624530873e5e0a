/* RBAC evaluation; see route/rbac.h. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "route/rbac.h"

static int fail(char *err, size_t errlen, const char *msg)
{
    snprintf(err, errlen, "%s", msg);
    return -1;
}

void mc_rbac_free(mc_rbac_t *r)
{
    if (!r)
        return;
    for (uint32_t i = 0; i < r->n_nodes; i++)
        if (r->nodes[i].m.name)
            mc_matcher_free(&r->nodes[i].m);
    for (uint32_t i = 0; i < r->n_policies; i++)
        free(r->policies[i].name);
    free(r->nodes);
    free(r->kids);
    free(r->policies);
    free(r);
}

static int parse_cidr(mc_rbac_node_t *n, const char *ip, uint32_t prefix)
{
    if (inet_pton(AF_INET, ip, n->addr) == 1) {
        n->family = AF_INET;
        n->prefix_len = prefix > 32 ? 32 : prefix;
        return 0;
    }
    if (inet_pton(AF_INET6, ip, n->addr) == 1) {
        n->family = AF_INET6;
        n->prefix_len = prefix > 128 ? 128 : prefix;
        return 0;
    }
    return -1;
}

mc_rbac_t *mc_rbac_new(const mc_sb_rbac_t *s, char *err, size_t errlen)
{
    mc_rbac_t *r = calloc(1, sizeof(*r));
    if (!r) {
        fail(err, errlen, "out of memory");
        return NULL;
    }
    r->action = (uint8_t)s->action;
    uint32_t kids = 0;
    for (uint32_t i = 0; i < s->n_nodes; i++)
        kids += s->nodes[i].n_children;
    r->nodes = calloc(s->n_nodes ? s->n_nodes : 1, sizeof(*r->nodes));
    r->kids = calloc(kids ? kids : 1, sizeof(*r->kids));
    r->policies = calloc(s->n_policies ? s->n_policies : 1, sizeof(*r->policies));
    if (!r->nodes || !r->kids || !r->policies) {
        fail(err, errlen, "out of memory");
        goto bad;
    }
    for (uint32_t i = 0; i < s->n_nodes; i++) {
        const mc_sb_rbac_node_t *in = &s->nodes[i];
        mc_rbac_node_t *n = &r->nodes[i];
        r->n_nodes++;
        n->kind = (uint8_t)in->kind;
        n->first = r->n_kids;
        n->count = in->n_children;
        for (uint32_t k = 0; k < in->n_children; k++) {
            if (in->children[k] >= s->n_nodes) {
                fail(err, errlen, "rule refers to a missing node");
                goto bad;
            }
            r->kids[r->n_kids++] = in->children[k];
        }
        switch (in->kind) {
        case MC_RBAC_HEADER:
        case MC_RBAC_PATH:
        case MC_RBAC_SNI:
        case MC_RBAC_AUTHENTICATED:
            if (mc_matcher_init(&n->m, &in->match, in->kind == MC_RBAC_HEADER, err, errlen) < 0)
                goto bad;
            break;
        case MC_RBAC_DEST_IP:
        case MC_RBAC_SOURCE_IP:
            if (!in->ip || parse_cidr(n, in->ip, in->prefix_len) < 0) {
                snprintf(err, errlen, "\"%s\" is not an IP address", in->ip ? in->ip : "");
                goto bad;
            }
            break;
        case MC_RBAC_DEST_PORT:
            n->port_lo = in->port_lo;
            n->port_hi = in->port_hi;
            break;
        default:
            break;
        }
    }
    for (uint32_t i = 0; i < s->n_policies; i++) {
        const mc_sb_rbac_policy_t *p = &s->policies[i];
        if (p->permissions >= s->n_nodes || p->principals >= s->n_nodes) {
            fail(err, errlen, "policy refers to a missing node");
            goto bad;
        }
        r->policies[i].name = strdup(p->name ? p->name : "");
        r->policies[i].permissions = p->permissions;
        r->policies[i].principals = p->principals;
        r->n_policies++;
    }
    return r;
bad:
    mc_rbac_free(r);
    return NULL;
}

static int in_cidr(const mc_rbac_node_t *n, const mc_addr_t *a)
{
    if (!a)
        return 0;
    const uint8_t *ip;
    if (a->ss.ss_family == AF_INET && n->family == AF_INET)
        ip = (const uint8_t *)&((const struct sockaddr_in *)&a->ss)->sin_addr;
    else if (a->ss.ss_family == AF_INET6 && n->family == AF_INET6)
        ip = (const uint8_t *)&((const struct sockaddr_in6 *)&a->ss)->sin6_addr;
    else
        return 0;
    uint32_t bits = n->prefix_len, full = bits / 8, rest = bits % 8;
    if (memcmp(ip, n->addr, full) != 0)
        return 0;
    if (rest) {
        uint8_t mask = (uint8_t)(0xff << (8 - rest));
        return (ip[full] & mask) == (n->addr[full] & mask);
    }
    return 1;
}

static int eval(const mc_rbac_t *r, uint32_t i, const mc_rbac_ctx_t *c)
{
    const mc_rbac_node_t *n = &r->nodes[i];
    switch (n->kind) {
    case MC_RBAC_AND:
        for (uint32_t k = 0; k < n->count; k++)
            if (!eval(r, r->kids[n->first + k], c))
                return 0;
        return 1;
    case MC_RBAC_OR:
        for (uint32_t k = 0; k < n->count; k++)
            if (eval(r, r->kids[n->first + k], c))
                return 1;
        return 0;
    case MC_RBAC_NOT:
        return n->count ? !eval(r, r->kids[n->first], c) : 1;
    case MC_RBAC_ANY:
        return 1;
    case MC_RBAC_HEADER:
        return c->rq && mc_router_header_matches(&n->m, c->rq, c->md);
    case MC_RBAC_PATH:
        return c->rq && mc_str_matches(&n->m.m, c->rq->path, c->rq->path_len, c->md);
    case MC_RBAC_DEST_IP:
        return in_cidr(n, c->local);
    case MC_RBAC_SOURCE_IP:
        return in_cidr(n, c->peer);
    case MC_RBAC_DEST_PORT: {
        if (!c->local)
            return 0;
        uint32_t port = mc_addr_port(c->local);
        return port >= n->port_lo && port <= n->port_hi;
    }
    case MC_RBAC_AUTHENTICATED:
        if (!c->authenticated)
            return 0;
        if (n->m.m.kind == MC_STR_PRESENT)
            return 1;
        return mc_str_matches(&n->m.m, c->principal, strlen(c->principal), c->md);
    case MC_RBAC_SNI:
    case MC_RBAC_NEVER:
    default:
        return 0;
    }
}

int mc_rbac_allows(const mc_rbac_t *r, const mc_rbac_ctx_t *c, const char **policy)
{
    *policy = NULL;
    for (uint32_t i = 0; i < r->n_policies; i++) {
        const mc_rbac_policy_t *p = &r->policies[i];
        if (eval(r, p->permissions, c) && eval(r, p->principals, c)) {
            *policy = p->name;
            return r->action != MC_RBAC_DENY;
        }
    }
    /* No policy matched: ALLOW denies (including with no policies at all),
     * DENY and LOG allow. */
    return r->action != MC_RBAC_ALLOW;
}
