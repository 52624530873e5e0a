/*
 * Envoy's response flags: why a request ended the way it did, as short
 * codes in access logs and stats (UF = upstream connection failure, ...).
 * A request may carry several; bit order = the http.<prefix>.response_flag_*
 * counters' order (stats/stats.c).
 */
#ifndef MESHCORE_RESPONSE_FLAGS_H
#define MESHCORE_RESPONSE_FLAGS_H

#include <stddef.h>
#include <stdint.h>

enum {
    MC_RF_UH = 1u << 0,    /* no healthy upstream */
    MC_RF_UF = 1u << 1,    /* upstream connection failure */
    MC_RF_UO = 1u << 2,    /* upstream overflow (circuit breaker) */
    MC_RF_NR = 1u << 3,    /* no route */
    MC_RF_URX = 1u << 4,   /* upstream retry limit exceeded */
    MC_RF_UT = 1u << 5,    /* upstream request timeout */
    MC_RF_DC = 1u << 6,    /* downstream connection termination */
    MC_RF_UC = 1u << 7,    /* upstream connection termination */
    MC_RF_DI = 1u << 8,    /* delay injected */
    MC_RF_FI = 1u << 9,    /* fault (abort) injected */
    MC_RF_UPE = 1u << 10,  /* upstream protocol error */
    MC_RF_DPE = 1u << 11,  /* downstream protocol error */
    MC_RF_LR = 1u << 12,   /* local reset */
    MC_RF_UR = 1u << 13,   /* upstream remote reset */
    MC_RF_SI = 1u << 14,   /* stream idle timeout */
    MC_RF_UAEX = 1u << 15, /* unauthorized (external authorization / RBAC) */
    MC_RF__COUNT = 16
};

/* Writes the flags as Envoy prints them ("UF,URX", or "-" when none) into
 * buf; returns the length. */
size_t mc_response_flags_format(uint32_t flags, char *buf, size_t len);

#endif
