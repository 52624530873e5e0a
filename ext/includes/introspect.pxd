from libc.stdint cimport uint16_t, uint32_t, uint64_t

from includes.snapshot cimport mc_snapshot_builder_t

cdef extern from "meshcore/introspect.h" nogil:
    uint64_t mc_probe_retry_backoff(uint64_t *rng, uint64_t base_ns, uint64_t max_ns, uint32_t n)
    uint64_t mc_probe_rand_next(uint64_t *rng)
    int mc_rbac_probe(mc_snapshot_builder_t *b, int listener, const char *principal, const char *method,
                      const char *path, const char *authority, const char *const *header_names,
                      const char *const *header_values, size_t n_headers, const char *source_ip,
                      const char *destination_ip, uint16_t destination_port, int http, char *policy,
                      size_t policy_len)
