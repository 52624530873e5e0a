/* The engine's overload manager (engine/overload.c, meshcore/overload.h). */
#ifndef MESHCORE_ENGINE_OVERLOAD_H
#define MESHCORE_ENGINE_OVERLOAD_H

#include "meshcore/overload.h"

typedef struct mc_overload mc_overload_t;

/* Stops the sampler and frees its state (mc_engine_free, before the workers go). */
void mc_overload_free(mc_engine_t *e);

#endif
