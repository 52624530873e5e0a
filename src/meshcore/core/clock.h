/* Monotonic time in nanoseconds. Workers read it once per loop turn and
 * pass the cached value around; this is the only clock the core uses. */
#ifndef MESHCORE_CLOCK_H
#define MESHCORE_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t mc_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#define MC_MS(ms) ((uint64_t)(ms) * 1000000ull)

#endif
