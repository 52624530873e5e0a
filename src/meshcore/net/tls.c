/* TLS contexts and peer identity; see net/tls.h. */
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/tls.h"

static int ex_ctx = -1;     /* SSL ex_data: the mc_tls_ctx_t the SSL was made from */
static int ex_reason = -1;  /* SSL ex_data: why our SAN check failed (static string) */
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init_once(void)
{
    OPENSSL_init_ssl(OPENSSL_INIT_LOAD_SSL_STRINGS | OPENSSL_INIT_LOAD_CRYPTO_STRINGS, NULL);
    ex_ctx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    ex_reason = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

void mc_tls_init(void)
{
    pthread_once(&once, init_once);
}

static int fail(char *err, size_t errlen, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[256] = "";
    if (e)
        ERR_error_string_n(e, buf, sizeof(buf));
    snprintf(err, errlen, "%s%s%s", what, e ? ": " : "", buf);
    ERR_clear_error();
    return -1;
}

/* The first URI SAN of a certificate into buf (NUL-terminated). */
size_t mc_tls_cert_uri(X509 *cert, char *buf, size_t len)
{
    buf[0] = '\0';
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    size_t n = 0;
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
        if (g->type != GEN_URI)
            continue;
        const unsigned char *p = ASN1_STRING_get0_data(g->d.uniformResourceIdentifier);
        int plen = ASN1_STRING_length(g->d.uniformResourceIdentifier);
        n = (size_t)plen < len - 1 ? (size_t)plen : len - 1;
        memcpy(buf, p, n);
        buf[n] = '\0';
        break;
    }
    GENERAL_NAMES_free(names);
    return n;
}

size_t mc_tls_peer_uri(SSL *ssl, char *buf, size_t len)
{
    buf[0] = '\0';
    X509 *peer = SSL_get0_peer_certificate(ssl);
    return peer ? mc_tls_cert_uri(peer, buf, len) : 0;
}

size_t mc_pem_uri_san(const char *pem, size_t pem_len, char *buf, size_t len)
{
    buf[0] = '\0';
    BIO *bio = BIO_new_mem_buf(pem, (int)pem_len);
    X509 *cert = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    size_t n = cert ? mc_tls_cert_uri(cert, buf, len) : 0;
    X509_free(cert);
    BIO_free(bio);
    ERR_clear_error();
    return n;
}

int mc_tls_check_leaf(X509 *leaf, const mc_str_match_t *sans, uint32_t n_sans, const char **why)
{
    GENERAL_NAMES *names = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
    int uris = 0, matched = 0;
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
        if (g->type != GEN_URI)
            continue;
        uris++;
        const char *uri = (const char *)ASN1_STRING_get0_data(g->d.uniformResourceIdentifier);
        size_t ulen = (size_t)ASN1_STRING_length(g->d.uniformResourceIdentifier);
        for (uint32_t k = 0; k < n_sans && !matched; k++)
            matched = mc_str_matches(&sans[k], uri, ulen, NULL);
    }
    GENERAL_NAMES_free(names);
    *why = NULL;
    if (uris > 1)
        *why = "peer certificate has more than one URI SAN (an X.509-SVID has exactly one)";
    else if (n_sans > 0 && !matched)
        *why = "peer identity (URI SAN) is not one of the expected identities";
    return *why == NULL;
}

/* Verify callback: OpenSSL's chain verification decides first; at the
 * leaf, mc_tls_check_leaf's rules. */
static int verify_cb(int ok, X509_STORE_CTX *store)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
    const mc_tls_ctx_t *t = SSL_get_ex_data(ssl, ex_ctx);
    if (!ok || !t || X509_STORE_CTX_get_error_depth(store) != 0)
        return ok;
    const char *why;
    if (!mc_tls_check_leaf(X509_STORE_CTX_get_current_cert(store), t->sans, t->n_sans, &why)) {
        SSL_set_ex_data(ssl, ex_reason, (void *)why);
        X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
        return 0;
    }
    return 1;
}

const char *mc_tls_failure(SSL *ssl)
{
    const char *ours = SSL_get_ex_data(ssl, ex_reason);
    if (ours)
        return ours;
    long v = SSL_get_verify_result(ssl);
    if (v != X509_V_OK)
        return X509_verify_cert_error_string(v);
    unsigned long e = ERR_peek_last_error();
    if (e) {
        const char *r = ERR_reason_error_string(e);
        return r ? r : "handshake failed";
    }
    return "handshake failed";
}

int mc_tls_failure_kind(SSL *ssl)
{
    if (SSL_get_ex_data(ssl, ex_reason))
        return MC_TLS_FAIL_SAN;
    if (SSL_get_verify_result(ssl) != X509_V_OK)
        return MC_TLS_FAIL_VERIFY;
    unsigned long e = ERR_peek_last_error();
    if (ERR_GET_REASON(e) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE)
        return MC_TLS_FAIL_NO_CERT;
    return MC_TLS_FAIL_OTHER;
}

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                       unsigned int inlen, void *arg)
{
    (void)arg;
    const mc_tls_ctx_t *t = SSL_get_ex_data(ssl, ex_ctx);
    if (!t)
        return SSL_TLSEXT_ERR_NOACK;
    /* Server preference order; no overlap means no ALPN, not a failure. */
    for (size_t i = 0; i < t->alpn_len; i += 1 + t->alpn[i]) {
        for (unsigned int j = 0; j < inlen; j += 1u + in[j]) {
            if (in[j] == t->alpn[i] && j + 1 + in[j] <= inlen && memcmp(in + j + 1, t->alpn + i + 1, in[j]) == 0) {
                *out = in + j + 1;
                *outlen = in[j];
                return SSL_TLSEXT_ERR_OK;
            }
        }
    }
    return SSL_TLSEXT_ERR_NOACK;
}

/* "h2,http/1.1" -> wire format (length-prefixed). */
static int alpn_wire(const char *list, unsigned char **out, size_t *outlen)
{
    size_t n = strlen(list);
    unsigned char *w = malloc(n + 2), *p = w;
    if (!w)
        return -1;
    const char *s = list;
    while (*s) {
        const char *e = strchr(s, ',');
        size_t l = e ? (size_t)(e - s) : strlen(s);
        if (l > 0 && l < 256) {
            *p++ = (unsigned char)l;
            memcpy(p, s, l);
            p += l;
        }
        s += l + (e ? 1 : 0);
    }
    *out = w;
    *outlen = (size_t)(p - w);
    return 0;
}

static int load_chain(SSL_CTX *ctx, const char *pem, size_t len, char *err, size_t errlen)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio)
        return fail(err, errlen, "out of memory");
    X509 *leaf = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    if (!leaf) {
        BIO_free(bio);
        return fail(err, errlen, "certificate_chain: no PEM certificate");
    }
    int rc = SSL_CTX_use_certificate(ctx, leaf);
    X509_free(leaf);
    if (rc != 1) {
        BIO_free(bio);
        return fail(err, errlen, "certificate_chain: unusable certificate");
    }
    X509 *c;
    while ((c = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (SSL_CTX_add0_chain_cert(ctx, c) != 1) {
            X509_free(c);
            BIO_free(bio);
            return fail(err, errlen, "certificate_chain: unusable intermediate");
        }
    }
    ERR_clear_error(); /* the loop ends on "no start line" */
    BIO_free(bio);
    return 0;
}

static int load_key(SSL_CTX *ctx, const char *pem, size_t len, char *err, size_t errlen)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio)
        return fail(err, errlen, "out of memory");
    EVP_PKEY *key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (!key)
        return fail(err, errlen, "private_key: no PEM private key");
    int rc = SSL_CTX_use_PrivateKey(ctx, key);
    EVP_PKEY_free(key);
    if (rc != 1)
        return fail(err, errlen, "private_key: unusable key");
    if (SSL_CTX_check_private_key(ctx) != 1)
        return fail(err, errlen, "private_key does not match the certificate");
    return 0;
}

static int load_trust(SSL_CTX *ctx, const char *pem, size_t len, char *err, size_t errlen)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio)
        return fail(err, errlen, "out of memory");
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    int n = 0;
    X509 *c;
    while ((c = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        X509_STORE_add_cert(store, c);
        X509_free(c);
        n++;
    }
    ERR_clear_error();
    BIO_free(bio);
    if (n == 0)
        return fail(err, errlen, "trusted_ca: no PEM certificate");
    return 0;
}

/* The OpenSSL context a spec describes: everything but the per-context
 * parts (SNI, accepted peer SANs of a client, handshake timeout), which live
 * in mc_tls_ctx_t and reach the callbacks through the SSL's ex_data. */
static SSL_CTX *ssl_ctx_new(const mc_sb_tls_t *s, char *err, size_t errlen)
{
    int server = s->downstream != 0;
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (!ctx) {
        fail(err, errlen, "cannot create a TLS context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, s->min_version ? s->min_version : TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx, s->max_version ? s->max_version : TLS1_3_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    /* Renegotiation has no place in a mesh and has a history of abuse. */
    /* A peer closing TCP without close_notify ends the stream (framing
     * above detects truncation, as in nginx and Envoy). */
    /* Read whole socket buffers, not a record header and then its body:
     * half the read syscalls for the small records of a mesh exchange. */
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF);
    if (s->cipher_list && *s->cipher_list && SSL_CTX_set_cipher_list(ctx, s->cipher_list) != 1) {
        fail(err, errlen, "cipher_suites: none usable for TLS 1.2");
        goto bad;
    }
    if (s->ciphersuites && *s->ciphersuites && SSL_CTX_set_ciphersuites(ctx, s->ciphersuites) != 1) {
        fail(err, errlen, "cipher_suites: none usable for TLS 1.3");
        goto bad;
    }
    if (s->cert_chain && (load_chain(ctx, s->cert_chain, s->cert_chain_len, err, errlen) < 0 ||
                          !s->private_key ||
                          load_key(ctx, s->private_key, s->private_key_len, err, errlen) < 0)) {
        if (!s->private_key)
            snprintf(err, errlen, "certificate without private_key");
        goto bad;
    }
    if (server && !s->cert_chain) {
        snprintf(err, errlen, "a downstream TLS context needs a certificate");
        goto bad;
    }
    if (s->trusted_ca && load_trust(ctx, s->trusted_ca, s->trusted_ca_len, err, errlen) < 0)
        goto bad;
    int mode = SSL_VERIFY_NONE;
    if (s->trusted_ca) {
        mode = SSL_VERIFY_PEER;
        if (server && s->require_client_certificate > 0)
            mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    }
    SSL_CTX_set_verify(ctx, mode, s->trusted_ca ? verify_cb : NULL);
    if (s->alpn && *s->alpn) {
        unsigned char *wire;
        size_t wire_len;
        if (alpn_wire(s->alpn, &wire, &wire_len) < 0) {
            snprintf(err, errlen, "out of memory");
            goto bad;
        }
        if (server)
            SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
        else
            SSL_CTX_set_alpn_protos(ctx, wire, (unsigned int)wire_len);
        free(wire);
    }
    if (!server) { /* resumption: sessions are kept per upstream host by the pool */
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    } else {
        /* Resumption needs a session id context when clients are verified
         * (OpenSSL refuses it with an internal_error alert otherwise). The
         * context's tickets are sealed with its own key, so a session from
         * an older context (before a rotation) is never resumed here: the
         * peer's verified identity of a resumed session is one this
         * context's checks accepted (a shared server context is shared only
         * by chains with the same SAN checks, see tls_cache.c). */
        static const unsigned char sid_ctx[] = "meshcore";
        SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
        /* One TLS 1.3 ticket per handshake, not OpenSSL's two: a client
         * sidecar keeps one session per upstream host and worker, and gets a
         * fresh ticket with each resumption. On OpenSSL 3.0 each ticket
         * (which copies the session with the peer's certificate) cost
         * ~0.3-0.5 ms of a ~2.5 ms full mutual handshake here. */
        SSL_CTX_set_num_tickets(ctx, 1);
    }
    return ctx;
bad:
    SSL_CTX_free(ctx);
    return NULL;
}

mc_tls_ctx_t *mc_tls_ctx_new_shared(const mc_sb_tls_t *s, mc_tls_cache_t *cache, char *err, size_t errlen)
{
    mc_tls_init();
    mc_tls_ctx_t *t = calloc(1, sizeof(*t));
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    t->refcnt = 1;
    t->server = (uint8_t)(s->downstream != 0);
    t->require_cert = (uint8_t)(s->require_client_certificate > 0);
    t->verify = s->trusted_ca != NULL;
    t->handshake_timeout_ns = (uint64_t)(s->handshake_timeout_ms ? s->handshake_timeout_ms : 10000) * 1000000ull;
    t->ctx = cache ? mc_tls_cache_get(cache, s, ssl_ctx_new, err, errlen) : ssl_ctx_new(s, err, errlen);
    if (!t->ctx)
        goto bad;
    if (s->n_sans) {
        t->sans = calloc(s->n_sans, sizeof(*t->sans));
        if (!t->sans) {
            snprintf(err, errlen, "out of memory");
            goto bad;
        }
        for (uint32_t i = 0; i < s->n_sans; i++) {
            if (s->sans[i].kind == MC_STR_REGEX) {
                snprintf(err, errlen, "match_subject_alt_names: safe_regex is not supported");
                goto bad;
            }
            t->n_sans++;
            if (mc_str_match_init(&t->sans[i], &s->sans[i], err, errlen) < 0)
                goto bad;
        }
    }
    if (s->alpn && *s->alpn && alpn_wire(s->alpn, &t->alpn, &t->alpn_len) < 0) {
        snprintf(err, errlen, "out of memory");
        goto bad;
    }
    if (s->sni && *s->sni)
        t->sni = strdup(s->sni);
    return t;
bad:
    mc_tls_ctx_unref(t);
    return NULL;
}

mc_tls_ctx_t *mc_tls_ctx_new(const mc_sb_tls_t *s, char *err, size_t errlen)
{
    return mc_tls_ctx_new_shared(s, NULL, err, errlen);
}

void mc_tls_ctx_ref(mc_tls_ctx_t *t)
{
    __atomic_add_fetch(&t->refcnt, 1, __ATOMIC_RELAXED);
}

void mc_tls_ctx_unref(mc_tls_ctx_t *t)
{
    if (!t || __atomic_sub_fetch(&t->refcnt, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    if (t->ctx)
        SSL_CTX_free(t->ctx);
    for (uint32_t i = 0; i < t->n_sans; i++)
        mc_str_match_free(&t->sans[i]);
    free(t->sans);
    free(t->sni);
    free(t->alpn);
    free(t);
}

SSL *mc_tls_new_ssl(mc_tls_ctx_t *t, int fd)
{
    SSL *ssl = SSL_new(t->ctx);
    if (!ssl)
        return NULL;
    /* The callbacks find this context's SAN checks and ALPN here: the
     * SSL_CTX may be shared by several contexts (tls_cache.c). */
    if (SSL_set_ex_data(ssl, ex_ctx, t) != 1 || SSL_set_fd(ssl, fd) != 1) {
        SSL_free(ssl);
        return NULL;
    }
    if (t->server) {
        SSL_set_accept_state(ssl);
    } else {
        SSL_set_connect_state(ssl);
        if (t->sni)
            SSL_set_tlsext_host_name(ssl, t->sni);
    }
    return ssl;
}
