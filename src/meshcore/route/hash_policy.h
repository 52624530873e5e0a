/*
 * route.v3 RouteAction.hash_policy: the key a RING_HASH cluster balances a
 * request on (a header, a cookie, or the source IP).
 */
#ifndef MESHCORE_ROUTE_HASH_POLICY_H
#define MESHCORE_ROUTE_HASH_POLICY_H

#include <stdint.h>

#include "net/sock.h"
#include "route/route_config.h"

/* The key from r's hash policies (the first that applies, combined as
 * Envoy does when several apply and none is terminal) into *out; 0 when no
 * policy applies (the pick is then random). */
int mc_route_hash(const mc_route_t *r, const mc_h1_request_t *q, const mc_addr_t *peer, uint64_t *out);

#endif
