/*
 * A counter of a running engine, by scope kind, scope name and slot name:
 * what the C tests assert on (the sum over the workers' shards).
 */
#ifndef MESHCORE_TEST_ENGINE_STATS_H
#define MESHCORE_TEST_ENGINE_STATS_H

#include <stdint.h>

#include "meshcore/engine.h"

/* The value, or -1 when no such scope or slot exists. */
int64_t engine_stat(mc_engine_t *e, mc_scope_kind_t kind, const char *scope, const char *slot);

#endif
