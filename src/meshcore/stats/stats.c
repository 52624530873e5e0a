/*
 * Stats registry and shards. Registration takes a mutex (control thread,
 * rare); the hot path (stats/shard.h) and readers take none: a scope's entry
 * is fully written before the published count makes it visible.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "stats/response_flags.h"
#include "stats/shard.h"

typedef struct slot_def {
    const char *name;
    int gauge;
} slot_def_t;

/* Names from the MC_<KIND>_STATS tables (include/meshcore/stats.h), each
 * at its slot's index. */
#define COUNTER(id, name) [id] = {name, 0},
#define GAUGE(id, name) [id] = {name, 1},
#define HIST(id, name) [id] = name,
/* http.<prefix>.response_flag_<FLAG>, at MC_HTTP_RF_FIRST + its bit */
#define RF_COUNTER(code, meaning) [MC_HTTP_RF_FIRST + MC_RF_BIT_##code] = {"response_flag_" #code, 0},

static const slot_def_t server_slots[MC_SERVER__SLOTS] = {MC_SERVER_STATS(COUNTER, GAUGE)};
static const slot_def_t listener_slots[MC_LISTENER__SLOTS] = {MC_LISTENER_STATS(COUNTER, GAUGE)};
static const char *listener_hists[MC_LISTENER__HISTS] = {MC_LISTENER_HISTS(HIST)};
static const slot_def_t tcp_slots[MC_TCP__SLOTS] = {MC_TCP_STATS(COUNTER, GAUGE)};
static const slot_def_t conn_limit_slots[MC_CONN_LIMIT__SLOTS] = {MC_CONN_LIMIT_STATS(COUNTER, GAUGE)};
/* cluster.<name>.upstream_rq_<code>, at MC_CLUSTER_CODE_FIRST + its index */
#define CODE_COUNTER(code) [MC_CLUSTER_CODE_FIRST + MC_STAT_CODE_##code] = {"upstream_rq_" #code, 0},
static const slot_def_t cluster_slots[MC_CLUSTER__SLOTS] = {
    MC_CLUSTER_STATS(COUNTER, GAUGE)
    MC_STAT_CODES(CODE_COUNTER)
};
#undef CODE_COUNTER

/* status -> 1 + its index in MC_STAT_CODES, 0 for a code outside the set */
#define CODE_INDEX(code) [code] = MC_STAT_CODE_##code + 1,
static const uint8_t code_index[600] = {MC_STAT_CODES(CODE_INDEX)};
#undef CODE_INDEX

int mc_stats_code_index(int status)
{
    if (status < 0 || status >= (int)(sizeof(code_index) / sizeof(code_index[0])))
        return -1;
    return (int)code_index[status] - 1;
}
static const char *cluster_hists[MC_CLUSTER__HISTS] = {MC_CLUSTER_HISTS(HIST)};
static const slot_def_t host_slots[MC_HOST__SLOTS] = {MC_HOST_STATS(COUNTER, GAUGE)};
static const slot_def_t http_slots[MC_HTTP__SLOTS] = {
    MC_HTTP_STATS(COUNTER, GAUGE)
    MC_RESPONSE_FLAGS(RF_COUNTER)
};
static const char *http_hists[MC_HTTP__HISTS] = {MC_HTTP_HISTS(HIST)};

#undef COUNTER
#undef GAUGE
#undef HIST
#undef RF_COUNTER

_Static_assert(MC_HTTP_RESPONSE_FLAG_SLOTS == MC_RF__COUNT, "one http counter per response flag");

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
