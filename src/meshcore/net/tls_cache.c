/*
 * Sharing OpenSSL contexts between TLS contexts with the same material.
 *
 * A mesh config gives every outbound cluster its own UpstreamTlsContext, but
 * they all hold the same certificate, key and trust bundle and differ only
 * in SNI and the peer's expected SPIFFE ID. Building an SSL_CTX (decoding
 * the PEM key, filling an X509_STORE) costs ~0.7 ms with OpenSSL 3, so a
 * 1,000-cluster config spent most of its compile time there. An SSL_CTX is
 * immutable once built and refcounted (SSL_CTX_up_ref), so contexts with
 * the same material share one; what differs per cluster stays in
 * mc_tls_ctx_t (net/tls.h).
 *
 * The key is every input of ssl_ctx_new(): side, certificate, key, trust
 * bundle, versions, ciphers, ALPN, client-certificate requirement. A server
 * context's key also holds its SAN checks: a server SSL_CTX resumes sessions
 * it issued (tickets), and a session resumed on a chain with other SAN checks
 * would skip them. Client sessions are held per upstream host by the pool,
 * so client contexts share across SAN lists safely.
 *
 * The cache outlives one compile (the engine keeps one): an apply that keeps
 * the certificate makes no SSL_CTX at all. mc_tls_cache_begin() starts a
 * compile; an entry neither this compile nor the one before used is dropped
 * then (snapshots still using its SSL_CTX hold their own references).
 * A mutex makes it safe to compile on any thread.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "net/tls.h"

typedef struct entry {
    uint64_t hash;
    char *key;
    size_t key_len;
    SSL_CTX *ctx;
    uint64_t used; /* the epoch it was last used in */
} entry_t;

struct mc_tls_cache {
    pthread_mutex_t lock;
    entry_t *entries;
    uint32_t n, cap;
    uint64_t epoch;
    uint64_t hits, misses;
};

mc_tls_cache_t *mc_tls_cache_new(void)
{
    mc_tls_cache_t *c = calloc(1, sizeof(*c));
    if (c)
        pthread_mutex_init(&c->lock, NULL);
    return c;
}

static void drop(entry_t *e)
{
    SSL_CTX_free(e->ctx);
    free(e->key);
}

void mc_tls_cache_free(mc_tls_cache_t *c)
{
    if (!c)
        return;
    for (uint32_t i = 0; i < c->n; i++)
        drop(&c->entries[i]);
    free(c->entries);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

void mc_tls_cache_begin(mc_tls_cache_t *c)
{
    pthread_mutex_lock(&c->lock);
    uint32_t k = 0;
    for (uint32_t i = 0; i < c->n; i++) {
        if (c->entries[i].used + 1 >= c->epoch)
            c->entries[k++] = c->entries[i];
        else
            drop(&c->entries[i]);
    }
    c->n = k;
    c->epoch++;
    pthread_mutex_unlock(&c->lock);
}

void mc_tls_cache_counts(mc_tls_cache_t *c, uint32_t *entries, uint64_t *hits, uint64_t *misses)
{
    pthread_mutex_lock(&c->lock);
    *entries = c->n;
    *hits = c->hits;
    *misses = c->misses;
    pthread_mutex_unlock(&c->lock);
}

/* A growable byte string for the key. */
typedef struct keybuf {
    char *p;
    size_t len, cap;
    int oom;
} keybuf_t;

static void put(keybuf_t *k, const void *data, size_t len)
{
    if (k->oom)
        return;
    if (k->len + len + sizeof(size_t) > k->cap) {
        size_t cap = (k->cap ? k->cap * 2 : 4096) + len + sizeof(size_t);
        char *p = realloc(k->p, cap);
        if (!p) {
            k->oom = 1;
            return;
        }
        k->p = p;
        k->cap = cap;
    }
    memcpy(k->p + k->len, &len, sizeof(len)); /* length-prefixed: no two specs give one key */
    k->len += sizeof(len);
    if (len)
        memcpy(k->p + k->len, data, len);
    k->len += len;
}

static void put_str(keybuf_t *k, const char *s)
{
    put(k, s ? s : "", s ? strlen(s) + 1 : 0);
}

static void put_int(keybuf_t *k, int v)
{
    put(k, &v, sizeof(v));
}

static void make_key(keybuf_t *k, const mc_sb_tls_t *s)
{
    int server = s->downstream != 0;
    put_int(k, server);
    put_int(k, server && s->require_client_certificate > 0);
    put(k, s->cert_chain, s->cert_chain ? s->cert_chain_len : 0);
    put_int(k, s->cert_chain != NULL);
    put(k, s->private_key, s->private_key ? s->private_key_len : 0);
    put_int(k, s->private_key != NULL);
    put(k, s->trusted_ca, s->trusted_ca ? s->trusted_ca_len : 0);
    put_int(k, s->trusted_ca != NULL);
    put_int(k, s->min_version);
    put_int(k, s->max_version);
    put_str(k, s->cipher_list);
    put_str(k, s->ciphersuites);
    put_str(k, s->alpn);
    if (server) {
        put_int(k, (int)s->n_sans);
        for (uint32_t i = 0; i < s->n_sans; i++) {
            const mc_sb_matcher_t *m = &s->sans[i];
            put_int(k, m->kind);
            put_str(k, m->value);
            put_int(k, m->ignore_case);
            put_int(k, m->invert);
        }
    }
}

SSL_CTX *mc_tls_cache_get(mc_tls_cache_t *c, const mc_sb_tls_t *spec, mc_tls_ssl_ctx_maker_t make, char *err,
                          size_t errlen)
{
    keybuf_t k = {0};
    make_key(&k, spec);
    if (k.oom) {
        free(k.p);
        return make(spec, err, errlen); /* no sharing, still correct */
    }
    uint64_t h = mc_xxh64(k.p, k.len, 0);
    pthread_mutex_lock(&c->lock);
    for (uint32_t i = 0; i < c->n; i++) {
        entry_t *e = &c->entries[i];
        if (e->hash == h && e->key_len == k.len && memcmp(e->key, k.p, k.len) == 0) {
            e->used = c->epoch;
            c->hits++;
            SSL_CTX_up_ref(e->ctx);
            SSL_CTX *ctx = e->ctx;
            pthread_mutex_unlock(&c->lock);
            free(k.p);
            return ctx;
        }
    }
    c->misses++;
    pthread_mutex_unlock(&c->lock);
    /* Built outside the lock: it is the slow part. Two compiles racing for
     * the same material may both build one; the second is simply not kept. */
    SSL_CTX *ctx = make(spec, err, errlen);
    if (!ctx) {
        free(k.p);
        return NULL;
    }
    pthread_mutex_lock(&c->lock);
    if (c->n == c->cap) {
        uint32_t cap = c->cap ? c->cap * 2 : 8;
        entry_t *p = realloc(c->entries, sizeof(*p) * cap);
        if (!p) {
            pthread_mutex_unlock(&c->lock);
            free(k.p);
            return ctx;
        }
        c->entries = p;
        c->cap = cap;
    }
    SSL_CTX_up_ref(ctx);
    c->entries[c->n++] = (entry_t){h, k.p, k.len, ctx, c->epoch};
    pthread_mutex_unlock(&c->lock);
    return ctx;
}
