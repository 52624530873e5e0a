from libc.stdint cimport uint32_t, uint64_t

cdef extern from "meshcore/histogram.h" nogil:
    enum: MC_HIST_BUCKETS
    ctypedef struct mc_hist_t:
        uint64_t count
        uint64_t sum
        uint64_t buckets[MC_HIST_BUCKETS]
    uint32_t mc_hist_bucket(uint64_t value)
    uint64_t mc_hist_bucket_lower(uint32_t bucket)
    uint64_t mc_hist_bucket_upper(uint32_t bucket)
