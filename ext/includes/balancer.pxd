from libc.stdint cimport int64_t, uint32_t, uint64_t

cdef extern from "meshcore/rand.h" nogil:
    ctypedef struct mc_rand_t:
        uint64_t s
    void mc_rand_seed(mc_rand_t *r, uint64_t seed)

cdef extern from "meshcore/balancer.h" nogil:
    enum:
        MC_LB_ROUND_ROBIN
        MC_LB_LEAST_REQUEST
        MC_LB_RANDOM
        MC_LB_RING_HASH
    ctypedef struct mc_lb_skip_t:
        const uint64_t *words
        uint32_t n_words
    uint32_t mc_lb_swrr(int64_t *cur, const uint32_t *weights, uint32_t n, mc_lb_skip_t skip)
    uint32_t mc_lb_random(mc_rand_t *r, const uint64_t *cum, uint32_t n, mc_lb_skip_t skip)
    uint32_t mc_lb_least_request(mc_rand_t *r, const uint32_t *weights, const uint64_t *cum,
                                 const uint32_t *active, uint32_t n, mc_lb_skip_t skip)
