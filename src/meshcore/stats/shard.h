/*
 * The hot-path side of stats: one shard per worker, written by that worker
 * only. A bump is a plain load, add and relaxed store: readers on other
 * threads never see a torn value, and there is no lock-prefixed instruction.
 */
#ifndef MESHCORE_STATS_SHARD_H
#define MESHCORE_STATS_SHARD_H

#include "meshcore/stats.h"

typedef struct mc_stats_shard {
    int64_t (*slots)[MC_STATS_SLOTS]; /* [MC_STATS_MAX_SCOPES] */
    mc_hist_t **hists;                /* [MC_STATS_MAX_SCOPES * MC_STATS_HISTS] */
} mc_stats_shard_t;

mc_stats_shard_t *mc_stats_shard(mc_stats_t *st, uint32_t worker);

static inline void mc_stat_add(mc_stats_shard_t *sh, uint32_t scope, uint32_t slot, int64_t by)
{
    int64_t *p = &sh->slots[scope][slot];
    __atomic_store_n(p, *p + by, __ATOMIC_RELAXED);
}

static inline void mc_stat_inc(mc_stats_shard_t *sh, uint32_t scope, uint32_t slot)
{
    mc_stat_add(sh, scope, slot, 1);
}

static inline void mc_stat_hist(mc_stats_shard_t *sh, uint32_t scope, uint32_t h, uint64_t v)
{
    mc_hist_t *hist = sh->hists[scope * MC_STATS_HISTS + h];
    if (hist)
        mc_hist_record(hist, v);
}

#endif
