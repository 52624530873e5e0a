/*
 * Stats registry and shards. Registration takes a mutex (control thread,
 * rare); the hot path (stats/shard.h) and readers take none: a scope's entry
 * is fully written before the published count makes it visible.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "stats/shard.h"

typedef struct slot_def {
    const char *name;
    int gauge;
} slot_def_t;

static const slot_def_t server_slots[MC_SERVER__SLOTS] = {
    {"workers_started", 0}, {"conn_pool_exhausted", 0}, {"splice_fallback", 0},
};
static const slot_def_t listener_slots[MC_LISTENER__SLOTS] = {
    {"downstream_cx_total", 0}, {"downstream_cx_active", 1},
    {"downstream_cx_destroy", 0}, {"downstream_cx_overflow", 0},
    {"ssl.handshake", 0}, {"ssl.connection_error", 0}, {"ssl.fail_verify_error", 0},
    {"ssl.fail_verify_san", 0}, {"ssl.no_certificate", 0},
};
static const char *listener_hists[MC_LISTENER__HISTS] = {"downstream_cx_length_ms"};
static const slot_def_t tcp_slots[MC_TCP__SLOTS] = {
    {"downstream_cx_total", 0}, {"downstream_cx_no_route", 0},
    {"downstream_cx_rx_bytes_total", 0}, {"downstream_cx_tx_bytes_total", 0},
    {"idle_timeout", 0}, {"upstream_flush_total", 0}, {"spliced_bytes_total", 0},
    {"rbac.allowed", 0}, {"rbac.denied", 0},
};
static const slot_def_t conn_limit_slots[MC_CONN_LIMIT__SLOTS] = {
    {"active_connections", 1}, {"limited_connections", 0},
};
static const slot_def_t cluster_slots[MC_CLUSTER__SLOTS] = {
    {"upstream_cx_total", 0}, {"upstream_cx_active", 1},
    {"upstream_cx_connect_fail", 0}, {"upstream_cx_connect_timeout", 0},
    {"upstream_cx_connect_attempts_exceeded", 0}, {"upstream_cx_connect_retry", 0},
    {"upstream_cx_none_healthy", 0}, {"upstream_cx_destroy", 0},
    {"upstream_cx_rx_bytes_total", 0}, {"upstream_cx_tx_bytes_total", 0},
    {"upstream_cx_overflow", 0}, {"upstream_cx_idle_timeout", 0},
    {"upstream_rq_total", 0}, {"upstream_rq_active", 1},
    {"upstream_rq_pending_total", 0}, {"upstream_rq_pending_active", 1},
    {"upstream_rq_pending_overflow", 0},
    {"upstream_rq_1xx", 0}, {"upstream_rq_2xx", 0}, {"upstream_rq_3xx", 0},
    {"upstream_rq_4xx", 0}, {"upstream_rq_5xx", 0},
    {"upstream_rq_timeout", 0}, {"upstream_rq_per_try_timeout", 0},
    {"upstream_rq_retry", 0}, {"upstream_rq_retry_success", 0},
    {"upstream_rq_retry_overflow", 0}, {"upstream_rq_retry_limit_exceeded", 0},
    {"upstream_rq_overflow", 0}, {"upstream_rq_rx_reset", 0}, {"upstream_rq_tx_reset", 0},
    {"upstream_cx_protocol_error", 0}, {"upstream_cx_reused", 0},
    {"outlier_detection.ejections_enforced_total", 0}, {"upstream_rq_mirrored", 0},
    {"ssl.handshake", 0}, {"ssl.connection_error", 0}, {"ssl.fail_verify_error", 0},
    {"ssl.fail_verify_san", 0}, {"ssl.session_reused", 0},
};
static const char *cluster_hists[MC_CLUSTER__HISTS] = {
    "upstream_cx_connect_ms", "upstream_cx_length_ms", "upstream_rq_time",
};
static const slot_def_t host_slots[MC_HOST__SLOTS] = {
    {"cx_total", 0}, {"cx_active", 1}, {"cx_connect_fail", 0}, {"rq_total", 0}, {"rq_active", 1},
    {"rq_error", 0}, {"rq_success", 0},
};
static const slot_def_t http_slots[MC_HTTP__SLOTS] = {
    {"downstream_cx_total", 0}, {"downstream_cx_active", 1},
    {"downstream_cx_rx_bytes_total", 0}, {"downstream_cx_tx_bytes_total", 0},
    {"downstream_cx_protocol_error", 0}, {"downstream_cx_idle_timeout", 0},
    {"downstream_rq_total", 0}, {"downstream_rq_active", 1},
    {"downstream_rq_1xx", 0}, {"downstream_rq_2xx", 0}, {"downstream_rq_3xx", 0},
    {"downstream_rq_4xx", 0}, {"downstream_rq_5xx", 0},
    {"downstream_rq_timeout", 0}, {"downstream_rq_rx_reset", 0}, {"downstream_rq_tx_reset", 0},
    {"downstream_rq_idle_timeout", 0}, {"no_route", 0}, {"rq_direct_response", 0}, {"rq_redirect", 0},
    {"fault.delays_injected", 0}, {"fault.aborts_injected", 0},
    {"rbac.allowed", 0}, {"rbac.denied", 0},
    /* response flags, MC_RF_* order (stats/response_flags.h) */
    {"response_flag_UH", 0}, {"response_flag_UF", 0}, {"response_flag_UO", 0}, {"response_flag_NR", 0},
    {"response_flag_URX", 0}, {"response_flag_UT", 0}, {"response_flag_DC", 0}, {"response_flag_UC", 0},
    {"response_flag_DI", 0}, {"response_flag_FI", 0}, {"response_flag_UPE", 0}, {"response_flag_DPE", 0},
    {"response_flag_LR", 0}, {"response_flag_UR", 0}, {"response_flag_SI", 0}, {"response_flag_UAEX", 0},
};
static const char *http_hists[MC_HTTP__HISTS] = {"downstream_rq_time"};

static const struct kind_def {
    const char *name;
    const slot_def_t *slots;
    uint32_t n_slots;
    const char **hists;
    uint32_t n_hists;
} kinds[MC_SCOPE__COUNT] = {
    [MC_SCOPE_OVERFLOW] = {"overflow", NULL, 0, NULL, 0},
    [MC_SCOPE_SERVER] = {"server", server_slots, MC_SERVER__SLOTS, NULL, 0},
    [MC_SCOPE_LISTENER] = {"listener", listener_slots, MC_LISTENER__SLOTS, listener_hists, MC_LISTENER__HISTS},
    [MC_SCOPE_TCP] = {"tcp", tcp_slots, MC_TCP__SLOTS, NULL, 0},
    [MC_SCOPE_CONN_LIMIT] = {"connection_limit", conn_limit_slots, MC_CONN_LIMIT__SLOTS, NULL, 0},
    [MC_SCOPE_CLUSTER] = {"cluster", cluster_slots, MC_CLUSTER__SLOTS, cluster_hists, MC_CLUSTER__HISTS},
    [MC_SCOPE_HOST] = {"host", host_slots, MC_HOST__SLOTS, NULL, 0},
    [MC_SCOPE_HTTP] = {"http", http_slots, MC_HTTP__SLOTS, http_hists, MC_HTTP__HISTS},
};
_Static_assert(MC_HTTP__SLOTS <= MC_STATS_SLOTS, "http slots fit");

_Static_assert(MC_CLUSTER__SLOTS <= MC_STATS_SLOTS, "cluster slots fit");
_Static_assert(MC_CLUSTER__HISTS <= MC_STATS_HISTS, "cluster hists fit");

typedef struct scope_entry {
    mc_scope_kind_t kind;
    char name[MC_STATS_NAME_MAX];
} scope_entry_t;

#define INDEX_SIZE (MC_STATS_MAX_SCOPES * 2) /* open addressing, load <= 0.5 */

struct mc_stats {
    pthread_mutex_t lock;
    uint32_t n_shards;
    uint32_t count; /* published with release, read with acquire */
    scope_entry_t *scopes;
    uint32_t *index; /* hash -> id + 1, 0 = empty */
    mc_stats_shard_t *shards;
};

static uint64_t hash_scope(mc_scope_kind_t kind, const char *name)
{
    uint64_t h = 1469598103934665603ull ^ (uint64_t)kind; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return h;
}

mc_stats_t *mc_stats_new(uint32_t n_shards)
{
    mc_stats_t *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    pthread_mutex_init(&st->lock, NULL);
    st->n_shards = n_shards;
    st->scopes = calloc(MC_STATS_MAX_SCOPES, sizeof(*st->scopes));
    st->index = calloc(INDEX_SIZE, sizeof(*st->index));
    st->shards = calloc(n_shards, sizeof(*st->shards));
    if (!st->scopes || !st->index || !st->shards)
        goto fail;
    for (uint32_t i = 0; i < n_shards; i++) {
        /* Large calloc is mmap-backed: untouched scopes cost no RSS. */
        st->shards[i].slots = calloc(MC_STATS_MAX_SCOPES, sizeof(*st->shards[i].slots));
        st->shards[i].hists = calloc((size_t)MC_STATS_MAX_SCOPES * MC_STATS_HISTS, sizeof(mc_hist_t *));
        if (!st->shards[i].slots || !st->shards[i].hists)
            goto fail;
    }
    st->scopes[0].kind = MC_SCOPE_OVERFLOW;
    strcpy(st->scopes[0].name, "overflow");
    st->count = 1;
    return st;
fail:
    mc_stats_free(st);
    return NULL;
}

void mc_stats_free(mc_stats_t *st)
{
    if (!st)
        return;
    if (st->shards) {
        for (uint32_t i = 0; i < st->n_shards; i++) {
            if (st->shards[i].hists) {
                for (size_t j = 0; j < (size_t)MC_STATS_MAX_SCOPES * MC_STATS_HISTS; j++)
                    free(st->shards[i].hists[j]);
            }
            free(st->shards[i].hists);
            free(st->shards[i].slots);
        }
    }
    free(st->shards);
    free(st->index);
    free(st->scopes);
    pthread_mutex_destroy(&st->lock);
    free(st);
}

mc_stats_shard_t *mc_stats_shard(mc_stats_t *st, uint32_t worker)
{
    return &st->shards[worker];
}

uint32_t mc_stats_scope(mc_stats_t *st, mc_scope_kind_t kind, const char *name)
{
    if (kind <= MC_SCOPE_OVERFLOW || kind >= MC_SCOPE__COUNT || strlen(name) >= MC_STATS_NAME_MAX)
        return 0;
    pthread_mutex_lock(&st->lock);
    uint64_t h = hash_scope(kind, name);
    uint32_t pos = (uint32_t)(h % INDEX_SIZE), id = 0;
    while (st->index[pos]) {
        scope_entry_t *e = &st->scopes[st->index[pos] - 1];
        if (e->kind == kind && strcmp(e->name, name) == 0) {
            id = st->index[pos] - 1;
            goto out;
        }
        pos = (pos + 1) % INDEX_SIZE;
    }
    if (st->count >= MC_STATS_MAX_SCOPES)
        goto out; /* full: overflow scope */
    id = st->count;
    for (uint32_t h_i = 0; h_i < kinds[kind].n_hists; h_i++) {
        for (uint32_t s = 0; s < st->n_shards; s++) {
            mc_hist_t *hist = calloc(1, sizeof(*hist));
            if (!hist) { /* leave the scope without this histogram */
                continue;
            }
            st->shards[s].hists[(size_t)id * MC_STATS_HISTS + h_i] = hist;
        }
    }
    st->scopes[id].kind = kind;
    strcpy(st->scopes[id].name, name);
    st->index[pos] = id + 1;
    __atomic_store_n(&st->count, id + 1, __ATOMIC_RELEASE);
out:
    pthread_mutex_unlock(&st->lock);
    return id;
}

uint32_t mc_stats_scope_count(const mc_stats_t *st)
{
    return __atomic_load_n(&st->count, __ATOMIC_ACQUIRE);
}

int mc_stats_scope_info(const mc_stats_t *st, uint32_t id, mc_scope_kind_t *kind,
                        char *name, size_t namelen)
{
    if (id >= mc_stats_scope_count(st))
        return -1;
    *kind = st->scopes[id].kind;
    if (name && namelen) {
        strncpy(name, st->scopes[id].name, namelen - 1);
        name[namelen - 1] = '\0';
    }
    return 0;
}

void mc_stats_sum(const mc_stats_t *st, uint32_t id, int64_t out[MC_STATS_SLOTS])
{
    memset(out, 0, sizeof(int64_t) * MC_STATS_SLOTS);
    if (id >= mc_stats_scope_count(st))
        return;
    for (uint32_t s = 0; s < st->n_shards; s++)
        for (uint32_t i = 0; i < MC_STATS_SLOTS; i++)
            out[i] += __atomic_load_n(&st->shards[s].slots[id][i], __ATOMIC_RELAXED);
}

int mc_stats_sum_hist(const mc_stats_t *st, uint32_t id, uint32_t h, mc_hist_t *out)
{
    memset(out, 0, sizeof(*out));
    if (id >= mc_stats_scope_count(st) || h >= MC_STATS_HISTS)
        return -1;
    int found = -1;
    for (uint32_t s = 0; s < st->n_shards; s++) {
        const mc_hist_t *src = st->shards[s].hists[(size_t)id * MC_STATS_HISTS + h];
        if (src) {
            mc_hist_accumulate(out, src);
            found = 0;
        }
    }
    return found;
}

uint32_t mc_stats_slot_count(mc_scope_kind_t kind)
{
    return kind < MC_SCOPE__COUNT ? kinds[kind].n_slots : 0;
}

const char *mc_stats_slot_name(mc_scope_kind_t kind, uint32_t slot)
{
    return slot < mc_stats_slot_count(kind) ? kinds[kind].slots[slot].name : NULL;
}

int mc_stats_slot_is_gauge(mc_scope_kind_t kind, uint32_t slot)
{
    return slot < mc_stats_slot_count(kind) ? kinds[kind].slots[slot].gauge : 0;
}

uint32_t mc_stats_hist_count(mc_scope_kind_t kind)
{
    return kind < MC_SCOPE__COUNT ? kinds[kind].n_hists : 0;
}

const char *mc_stats_hist_name(mc_scope_kind_t kind, uint32_t h)
{
    return h < mc_stats_hist_count(kind) ? kinds[kind].hists[h] : NULL;
}

const char *mc_stats_kind_name(mc_scope_kind_t kind)
{
    return kind < MC_SCOPE__COUNT ? kinds[kind].name : NULL;
}
