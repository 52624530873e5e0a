/*
 * Envoy's response flags: why a request ended the way it did, as short
 * codes in access logs and stats (UF = upstream connection failure, ...).
 * A request may carry several. The table below is the one definition: the
 * bit numbers (MC_RF_BIT_*), the masks (MC_RF_*), the printed codes and the
 * http.<prefix>.response_flag_<FLAG> counters (stats/stats.c) come from it.
 * Append only: the bits are in access-log records Python decodes
 * (python/meshcore/accesslog.py keeps the same list).
 */
#ifndef MESHCORE_RESPONSE_FLAGS_H
#define MESHCORE_RESPONSE_FLAGS_H

#include <stddef.h>
#include <stdint.h>

/* FLAG(code, meaning), in bit order. */
#define MC_RESPONSE_FLAGS(FLAG)                                               \
    FLAG(UH, "no healthy upstream")                                           \
    FLAG(UF, "upstream connection failure")                                   \
    FLAG(UO, "upstream overflow (circuit breaker)")                           \
    FLAG(NR, "no route")                                                      \
    FLAG(URX, "upstream retry limit exceeded")                                \
    FLAG(UT, "upstream request timeout")                                      \
    FLAG(DC, "downstream connection termination")                             \
    FLAG(UC, "upstream connection termination")                               \
    FLAG(DI, "delay injected")                                                \
    FLAG(FI, "fault (abort) injected")                                        \
    FLAG(UPE, "upstream protocol error")                                      \
    FLAG(DPE, "downstream protocol error")                                    \
    FLAG(LR, "local reset")                                                   \
    FLAG(UR, "upstream remote reset")                                         \
    FLAG(SI, "stream idle timeout")                                           \
    FLAG(UAEX, "unauthorized (external authorization / RBAC)")                \
    FLAG(OL, "overload manager")                                              \
    FLAG(DT, "max stream duration reached")

#define MC_RF_BIT_(code, meaning) MC_RF_BIT_##code,
enum { MC_RESPONSE_FLAGS(MC_RF_BIT_) MC_RF__COUNT };
#undef MC_RF_BIT_
#define MC_RF_MASK_(code, meaning) MC_RF_##code = 1u << MC_RF_BIT_##code,
enum { MC_RESPONSE_FLAGS(MC_RF_MASK_) };
#undef MC_RF_MASK_

/* Writes the flags as Envoy prints them ("UF,URX", or "-" when none) into
 * buf; returns the length. */
size_t mc_response_flags_format(uint32_t flags, char *buf, size_t len);

#endif
