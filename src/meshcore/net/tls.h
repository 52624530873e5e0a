/*
 * TLS contexts (OpenSSL 3, called directly): one per downstream filter chain
 * or upstream cluster, built from PEM held in memory (the Python layer reads
 * Secrets and files; the core never opens a certificate file).
 *
 * A context is immutable and refcounted; it belongs to a snapshot. A
 * certificate rotation is a new snapshot with new contexts: new handshakes
 * use them while established connections keep the SSL objects (and so the
 * context) they started with.
 *
 * Peer identity is the URI SAN of the verified peer certificate (a SPIFFE
 * ID). When a context lists expected identities, the check runs inside the
 * handshake's verify callback, so a mismatch fails the handshake itself
 * with a certificate alert, and the reason is kept for logs and stats.
 */
#ifndef MESHCORE_TLS_H
#define MESHCORE_TLS_H

#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>

#include "core/match.h"
#include "meshcore/snapshot.h"

typedef struct mc_tls_ctx {
    int refcnt;
    SSL_CTX *ctx;
    uint8_t server;
    uint8_t verify;       /* a trust bundle was given: verify the peer */
    uint8_t require_cert; /* server: clients must present a certificate */
    mc_str_match_t *sans; /* peer URI SAN must match one of these (if any) */
    uint32_t n_sans;
    char *sni;
    uint64_t handshake_timeout_ns;
    unsigned char *alpn; /* wire format, for the server's selection */
    size_t alpn_len;
} mc_tls_ctx_t;

/* A new context, or NULL with a reason in err. */
mc_tls_ctx_t *mc_tls_ctx_new(const mc_sb_tls_t *spec, char *err, size_t errlen);
/* The same, its SSL_CTX shared through cache with contexts of the same
 * material (net/tls_cache.c); cache may be NULL. */
mc_tls_ctx_t *mc_tls_ctx_new_shared(const mc_sb_tls_t *spec, mc_tls_cache_t *cache, char *err, size_t errlen);

/* The SSL_CTX for spec from the cache (a new reference), made with `make`
 * on a miss; NULL with a reason in err if make fails. */
typedef SSL_CTX *(*mc_tls_ssl_ctx_maker_t)(const mc_sb_tls_t *spec, char *err, size_t errlen);
SSL_CTX *mc_tls_cache_get(mc_tls_cache_t *cache, const mc_sb_tls_t *spec, mc_tls_ssl_ctx_maker_t make, char *err,
                          size_t errlen);
void mc_tls_ctx_ref(mc_tls_ctx_t *t);
void mc_tls_ctx_unref(mc_tls_ctx_t *t);

/* A new SSL for fd on this context (server or client side per the context),
 * or NULL. The caller owns it (SSL_free). */
SSL *mc_tls_new_ssl(mc_tls_ctx_t *t, int fd);

/* The first URI SAN of the peer's certificate (after a verified handshake)
 * into buf, NUL-terminated; returns its length, 0 when there is none. */
size_t mc_tls_peer_uri(SSL *ssl, char *buf, size_t len);

/* The first URI SAN of cert into buf (NUL-terminated); its length, 0 if none. */
size_t mc_tls_cert_uri(X509 *cert, char *buf, size_t len);

/* The peer-identity rule, at the leaf of a verified chain: at most one URI
 * SAN (X.509-SVID section 2: a SPIFFE identity is exactly one URI SAN;
 * Envoy accepts several, meshcore refuses them), and when sans are given it
 * must match one of them. 1 accepted; 0 refused with *why (static). */
int mc_tls_check_leaf(X509 *leaf, const mc_str_match_t *sans, uint32_t n_sans, const char **why);

/* Why the last handshake on ssl failed, for logs: a static or ssl-owned
 * string ("certificate has expired", "peer identity ... not accepted"). */
const char *mc_tls_failure(SSL *ssl);

/* How a failed handshake failed, for stats. */
enum { MC_TLS_FAIL_OTHER, MC_TLS_FAIL_VERIFY, MC_TLS_FAIL_SAN, MC_TLS_FAIL_NO_CERT };
int mc_tls_failure_kind(SSL *ssl);

/* Library-wide setup; idempotent, thread-safe. */
void mc_tls_init(void);

#endif
