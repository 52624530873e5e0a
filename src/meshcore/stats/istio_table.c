/*
 * A worker's Istio metric label sets; see stats/istio_table.h.
 */
#include "stats/istio_table.h"

#include <stdlib.h>
#include <string.h>

#include "core/hash.h"

void mc_im_table_init(mc_im_table_t *t)
{
    memset(t, 0, sizeof(*t));
    t->peers.max = MC_IM_MAX_PEERS;
    t->principals.max = MC_IM_MAX_PRINCIPALS;
}

void mc_im_table_free(mc_im_table_t *t)
{
    for (uint32_t i = 0; i < MC_IM_MAX_SETS / MC_IM_CHUNK; i++)
        free(t->chunks[i]);
    mc_im_strings_t *lists[2] = {&t->peers, &t->principals};
    for (int k = 0; k < 2; k++)
        for (uint32_t i = 1; i <= lists[k]->n; i++)
            free(lists[k]->data[i]);
    memset(t, 0, sizeof(*t));
}

/* ---- label sets ------------------------------------------------------------- */

mc_im_set_t *mc_im_find(mc_im_table_t *t, const mc_im_key_t *key)
{
    uint64_t h = mc_xxh64(key, sizeof(*key), 0x15710);
    uint32_t mask = MC_IM_SET_SLOTS - 1;
    for (uint32_t i = (uint32_t)h & mask;; i = (i + 1) & mask) {
        uint16_t slot = t->slots[i];
        if (slot) {
            mc_im_set_t *s = mc_im_set_at(t, slot - 1u);
            if (memcmp(&s->key, key, sizeof(*key)) == 0)
                return s;
            continue;
        }
        /* A new label set: the cold path. */
        uint32_t n = t->n_sets;
        if (n == MC_IM_MAX_SETS) {
            __atomic_add_fetch(&t->overflow, 1, __ATOMIC_RELAXED);
            return NULL;
        }
        if (!t->chunks[n / MC_IM_CHUNK]) {
            t->chunks[n / MC_IM_CHUNK] = calloc(MC_IM_CHUNK, sizeof(mc_im_set_t));
            if (!t->chunks[n / MC_IM_CHUNK]) {
                __atomic_add_fetch(&t->overflow, 1, __ATOMIC_RELAXED);
                return NULL;
            }
        }
        mc_im_set_t *s = mc_im_set_at(t, n);
        s->key = *key;
        t->slots[i] = (uint16_t)(n + 1);
        __atomic_store_n(&t->n_sets, n + 1, __ATOMIC_RELEASE);
        return s;
    }
}

/* ---- interned strings --------------------------------------------------------- */

static uint16_t intern(mc_im_strings_t *st, const char *v, size_t len, size_t max_len)
{
    if (!len)
        return 0;
    if (len > max_len) {
        __atomic_add_fetch(&st->overflow, 1, __ATOMIC_RELAXED);
        return 0;
    }
    uint64_t h = mc_xxh64(v, len, 0x9ee4);
    uint32_t mask = MC_IM_STR_SLOTS - 1;
    for (uint32_t i = (uint32_t)h & mask;; i = (i + 1) & mask) {
        uint16_t idx = st->slots[i];
        if (idx) {
            if (st->hash[idx] == h && st->len[idx] == len && memcmp(st->data[idx], v, len) == 0)
                return idx;
            continue;
        }
        uint32_t n = st->n + 1;
        char *copy = n <= st->max ? malloc(len + 1) : NULL;
        if (!copy) {
            __atomic_add_fetch(&st->overflow, 1, __ATOMIC_RELAXED);
            return 0;
        }
        memcpy(copy, v, len);
        copy[len] = '\0';
        st->hash[n] = h;
        st->data[n] = copy;
        st->len[n] = (uint32_t)len;
        st->slots[i] = (uint16_t)n;
        __atomic_store_n(&st->n, n, __ATOMIC_RELEASE);
        return (uint16_t)n;
    }
}

uint16_t mc_im_peer(mc_im_table_t *t, const char *value, size_t len)
{
    return intern(&t->peers, value, len, MC_IM_MAX_PEER_BYTES);
}

uint16_t mc_im_principal(mc_im_table_t *t, const char *value, size_t len)
{
    return intern(&t->principals, value, len, 1024);
}

/* ---- histograms ----------------------------------------------------------------- */

uint32_t mc_im_hist_bucket(uint64_t v)
{
    const uint32_t sub = 1u << MC_IM_HIST_SUB_BITS;
    if (v < sub)
        return (uint32_t)v;
    uint32_t e = 63u - (uint32_t)__builtin_clzll(v);
    if (e > MC_IM_HIST_MAX_EXP)
        return MC_IM_HIST_BUCKETS - 1;
    return sub + (e - MC_IM_HIST_SUB_BITS) * sub + (uint32_t)((v >> (e - MC_IM_HIST_SUB_BITS)) & (sub - 1));
}

uint64_t mc_im_hist_bucket_max(uint32_t b)
{
    const uint32_t sub = 1u << MC_IM_HIST_SUB_BITS;
    if (b < sub)
        return b;
    if (b >= MC_IM_HIST_BUCKETS - 1)
        return UINT64_MAX;
    uint32_t e = (b - sub) / sub + MC_IM_HIST_SUB_BITS;
    uint64_t lo = ((uint64_t)(sub + (b - sub) % sub)) << (e - MC_IM_HIST_SUB_BITS);
    return lo + (1ull << (e - MC_IM_HIST_SUB_BITS)) - 1;
}

static inline void hist_record(mc_im_hist_t *h, uint64_t v)
{
    mc_im_add(&h->buckets[mc_im_hist_bucket(v)], 1);
    mc_im_add(&h->sum, v);
}

void mc_im_record_http(mc_im_set_t *s, uint64_t duration_us, uint64_t request_bytes, uint64_t response_bytes)
{
    hist_record(&s->duration_us, duration_us);
    hist_record(&s->request_bytes, request_bytes);
    hist_record(&s->response_bytes, response_bytes);
}

/* ---- export ----------------------------------------------------------------------- */

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

/* Cumulative counts per bound: each bucket goes to the first bound at or
 * above the largest value it holds. */
static uint64_t rebucket(const mc_im_hist_t *h, const double *bounds, uint32_t n, uint64_t *out, uint64_t *sum)
{
    memset(out, 0, sizeof(uint64_t) * MC_IM_MAX_BOUNDS);
    uint64_t total = 0;
    uint32_t k = 0;
    for (uint32_t b = 0; b < MC_IM_HIST_BUCKETS; b++) {
        uint64_t c = LOAD(h->buckets[b]);
        if (!c)
            continue;
        total += c;
        double top = (double)mc_im_hist_bucket_max(b);
        while (k < n && bounds[k] < top)
            k++;
        if (k < n)
            out[k] += c;
    }
    for (uint32_t i = 1; i < n; i++)
        out[i] += out[i - 1];
    *sum = LOAD(h->sum);
    return total; /* the +Inf bucket: consistent with the others even while counting goes on */
}

size_t mc_im_table_export(const mc_im_table_t *t, uint32_t worker, const double *dbounds, uint32_t nd,
                          const double *bbounds, uint32_t nb, mc_im_row_t *out, size_t cap)
{
    uint32_t n = __atomic_load_n(&t->n_sets, __ATOMIC_ACQUIRE);
    if (nd > MC_IM_MAX_BOUNDS)
        nd = MC_IM_MAX_BOUNDS;
    if (nb > MC_IM_MAX_BOUNDS)
        nb = MC_IM_MAX_BOUNDS;
    for (uint32_t i = 0; i < n && i < cap; i++) {
        const mc_im_set_t *s = mc_im_set_at(t, i);
        mc_im_row_t *r = &out[i];
        r->key = s->key;
        r->worker = worker;
        r->tcp_opened = LOAD(s->tcp_opened);
        r->tcp_closed = LOAD(s->tcp_closed);
        r->tcp_sent = LOAD(s->tcp_sent);
        r->tcp_received = LOAD(s->tcp_received);
        r->requests = rebucket(&s->duration_us, dbounds, nd, r->duration, &r->duration_sum_us);
        r->request_bytes_count = rebucket(&s->request_bytes, bbounds, nb, r->request_bytes, &r->request_bytes_sum);
        r->response_bytes_count =
            rebucket(&s->response_bytes, bbounds, nb, r->response_bytes, &r->response_bytes_sum);
    }
    return n;
}
