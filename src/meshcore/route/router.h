/*
 * Route matching (route.v3 semantics): the virtual host by authority, then
 * the first route of it whose match accepts the request. Pure functions over
 * an immutable route table; the only per-worker state is PCRE2 match data.
 */
#ifndef MESHCORE_ROUTER_H
#define MESHCORE_ROUTER_H

#include "route/route_config.h"

/* The request as routing sees it: views into the parsed head. */
typedef struct mc_route_req {
    const char *method;
    size_t method_len;
    const char *path; /* :path without the query */
    size_t path_len;
    const char *full_path; /* :path with the query */
    size_t full_path_len;
    const char *query; /* NULL when none */
    size_t query_len;
    const char *authority;
    size_t authority_len;
    const char *scheme;
    size_t scheme_len;
    const mc_h1_header_t *headers;
    size_t n_headers;
} mc_route_req_t;

/* Fills a route request from a parsed HTTP/1.1 head. */
void mc_route_req_from_h1(mc_route_req_t *rq, const mc_h1_request_t *req);

/* The virtual host for an authority: exact domain, then the longest suffix
 * wildcard, then the longest prefix wildcard, then "*"; an authority with a
 * port that matches nothing is tried again without it. NULL if none. */
const mc_vhost_t *mc_router_vhost(const mc_route_table_t *rt, const char *authority, size_t len);

/* The first route of v matching rq, or NULL. md: match data with room for
 * the table's captures (may be NULL when the table has no regex). */
const mc_route_t *mc_router_match(const mc_vhost_t *v, const mc_route_req_t *rq, pcre2_match_data *md);

/* A header matcher (route.v3 HeaderMatcher semantics) against a request. */
int mc_router_header_matches(const mc_matcher_t *h, const mc_route_req_t *rq, pcre2_match_data *md);

#endif
