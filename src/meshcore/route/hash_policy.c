/* Route hash policies: see route/hash_policy.h. */
#include <string.h>

#include "core/hash.h"
#include "route/hash_policy.h"

/* The ring hash key from the route's hash policies (first that applies,
 * combined as Envoy does when several apply and none is terminal). */
int mc_route_hash(const mc_route_t *r, const mc_h1_request_t *q, const mc_addr_t *peer, uint64_t *out)
{
    uint64_t h = 0;
    int have = 0;
    for (uint32_t i = 0; i < r->n_hash; i++) {
        const mc_hash_policy_t *p = &r->hash[i];
        uint64_t x;
        if (p->kind == MC_HASH_HEADER) {
            const mc_h1_header_t *hd = mc_h1_find_header(q->headers, q->n_headers, p->name, p->name_len);
            if (!hd)
                continue;
            x = mc_xxh64(hd->value, hd->value_len, 0);
        } else if (p->kind == MC_HASH_COOKIE) {
            const mc_h1_header_t *hd = mc_h1_find_header(q->headers, q->n_headers, "cookie", 6);
            if (!hd)
                continue;
            const char *v = hd->value, *end = v + hd->value_len, *found = NULL;
            size_t flen = 0;
            while (v < end && !found) {
                while (v < end && (*v == ' ' || *v == ';'))
                    v++;
                const char *eq = memchr(v, '=', (size_t)(end - v));
                const char *semi = memchr(v, ';', (size_t)(end - v));
                if (!semi)
                    semi = end;
                if (eq && eq < semi && (size_t)(eq - v) == p->name_len && memcmp(v, p->name, p->name_len) == 0) {
                    found = eq + 1;
                    flen = (size_t)(semi - found);
                }
                v = semi;
            }
            if (!found)
                continue;
            x = mc_xxh64(found, flen, 0);
        } else {
            char ip[64];
            mc_addr_format(peer, ip, sizeof(ip));
            char *colon = strrchr(ip, ':');
            size_t n = colon ? (size_t)(colon - ip) : strlen(ip);
            x = mc_xxh64(ip, n, 0);
        }
        h = have ? ((h << 1) | (h >> 63)) ^ x : x;
        have = 1;
        if (p->terminal)
            break;
    }
    *out = h;
    return have;
}
