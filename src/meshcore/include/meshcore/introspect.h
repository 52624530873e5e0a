/*
 * Entry points for tests: the core's RBAC engine and policies run on
 * inputs from Python, outside any worker. Nothing here is on
 * the data path.
 */
#ifndef MESHCORE_INTROSPECT_H
#define MESHCORE_INTROSPECT_H

#include <stddef.h>
#include <stdint.h>

#include "meshcore/snapshot.h"

/* Evaluates the last network RBAC filter added to a builder's listener
 * against one request (http != 0: method/path/authority/headers apply) or
 * connection. Returns 1 allowed, 0 denied, -1 on bad input; *policy gets
 * the deciding policy's name (or "" when none matched), truncated. */
int mc_rbac_probe(mc_snapshot_builder_t *b, int listener, const char *principal, const char *method,
                  const char *path, const char *authority, const char *const *header_names,
                  const char *const *header_values, size_t n_headers, const char *source_ip,
                  const char *destination_ip, uint16_t destination_port, int http, char *policy,
                  size_t policy_len);

/* The retry back-off the core would wait before retry n (1-based), with a
 * PRNG in state *rng (xorshift64*, advanced). ns. */
uint64_t mc_probe_retry_backoff(uint64_t *rng, uint64_t base_ns, uint64_t max_ns, uint32_t n);

/* Next value of the core's per-worker PRNG from state *rng (advanced). */
uint64_t mc_probe_rand_next(uint64_t *rng);

#endif
