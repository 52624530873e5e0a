/* A running engine's counters for the C tests (engine_stats.h). */
#include "engine_stats.h"

#include <string.h>

int64_t engine_stat(mc_engine_t *e, mc_scope_kind_t want_kind, const char *want, const char *slot)
{
    mc_stats_t *st = mc_engine_stats(e);
    for (uint32_t i = 1; i < mc_stats_scope_count(st); i++) {
        mc_scope_kind_t kind;
        char name[MC_STATS_NAME_MAX];
        mc_stats_scope_info(st, i, &kind, name, sizeof(name));
        if (kind != want_kind || strcmp(name, want) != 0)
            continue;
        int64_t v[MC_STATS_SLOTS];
        mc_stats_sum(st, i, v);
        for (uint32_t k = 0; k < mc_stats_slot_count(kind); k++)
            if (strcmp(mc_stats_slot_name(kind, k), slot) == 0)
                return v[k];
    }
    return -1;
}
