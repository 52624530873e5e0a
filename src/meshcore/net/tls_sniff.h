/*
 * Is this connection TLS? Decided from its first bytes, which the TLS
 * inspector peeks (never consumes): a TLS ClientHello opens with a
 * handshake record header (type 22, version 3.x, a plausible length) whose
 * first message is a ClientHello (type 1). Anything else is plaintext.
 *
 * Stateless and monotone: a prefix of the bytes yields NEED_MORE or the
 * answer the whole input gives; at MC_TLS_SNIFF_BYTES or more it never
 * says NEED_MORE.
 */
#ifndef MESHCORE_NET_TLS_SNIFF_H
#define MESHCORE_NET_TLS_SNIFF_H

#include <stddef.h>
#include <stdint.h>

/* Record header (5) + handshake type (1). */
#define MC_TLS_SNIFF_BYTES 6

enum { MC_TLS_SNIFF_NEED_MORE = -2, MC_TLS_SNIFF_RAW = 0, MC_TLS_SNIFF_TLS = 1 };

/* Reads at most MC_TLS_SNIFF_BYTES of b[0..n). */
int mc_tls_sniff(const uint8_t *b, size_t n);

#endif
