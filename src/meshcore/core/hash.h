/* xxHash64 (seed 0): the hash Envoy uses for ring hash and hash policies,
 * so a given key lands on a ring position the same way. */
#ifndef MESHCORE_HASH_H
#define MESHCORE_HASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t mc_xxh64(const void *data, size_t len, uint64_t seed);

#endif
