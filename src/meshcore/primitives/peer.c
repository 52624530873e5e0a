/*
 * TLS peer identity for embedders; see include/meshcore/primitives.h. The
 * rule is net/tls.c's mc_tls_check_leaf, the one the proxy's handshakes run.
 */
#include <openssl/err.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/match.h"
#include "meshcore/primitives.h"
#include "net/tls.h"

struct mc_prim_peer_policy {
    mc_str_match_t *sans;
    uint32_t n;
};

mc_prim_peer_policy_t *mc_prim_peer_policy_new(const mc_sb_matcher_t *sans, uint32_t n, char *err, size_t errlen)
{
    mc_prim_peer_policy_t *p = calloc(1, sizeof(*p));
    if (!p || !(p->sans = calloc(n ? n : 1, sizeof(*p->sans)))) {
        free(p);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    for (uint32_t i = 0; i < n; i++) {
        p->n = i + 1; /* freed with the rest, even half-built */
        if (mc_str_match_init(&p->sans[i], &sans[i], err, errlen) < 0) {
            mc_prim_peer_policy_free(p);
            return NULL;
        }
    }
    p->n = n;
    return p;
}

void mc_prim_peer_policy_free(mc_prim_peer_policy_t *p)
{
    if (!p)
        return;
    for (uint32_t i = 0; i < p->n; i++)
        mc_str_match_free(&p->sans[i]);
    free(p->sans);
    free(p);
}

int mc_prim_peer_check(const mc_prim_peer_policy_t *p, const unsigned char *der, size_t der_len, char *uri,
                       size_t uri_len, const char **why)
{
    const unsigned char *q = der;
    X509 *cert = d2i_X509(NULL, &q, (long)der_len);
    if (!cert) {
        ERR_clear_error();
        uri[0] = '\0';
        *why = "not a DER certificate";
        return -1;
    }
    mc_tls_cert_uri(cert, uri, uri_len);
    int ok = mc_tls_check_leaf(cert, p->sans, p->n, why);
    X509_free(cert);
    return ok;
}
