/* First-bytes TLS detection: see net/tls_sniff.h. */
#include "net/tls_sniff.h"

#define REC_HANDSHAKE 22
#define HS_CLIENT_HELLO 1
/* TLSPlaintext.length may not exceed 2^14 (RFC 8446 §5.1); older stacks
 * allowed 2^14 + 2048 for compressed records: the looser bound. */
#define REC_MAX_LEN (16384 + 2048)

int mc_tls_sniff(const uint8_t *b, size_t n)
{
    if (n == 0)
        return MC_TLS_SNIFF_NEED_MORE;
    if (b[0] != REC_HANDSHAKE)
        return MC_TLS_SNIFF_RAW;
    if (n >= 2 && b[1] != 3) /* record version 3.x: SSL 3.0 to TLS 1.3 */
        return MC_TLS_SNIFF_RAW;
    if (n >= 3 && b[2] > 4)
        return MC_TLS_SNIFF_RAW;
    if (n >= 5) {
        unsigned len = (unsigned)b[3] << 8 | b[4];
        if (len < 4 || len > REC_MAX_LEN) /* room for a handshake message header */
            return MC_TLS_SNIFF_RAW;
    }
    if (n < MC_TLS_SNIFF_BYTES)
        return MC_TLS_SNIFF_NEED_MORE;
    return b[5] == HS_CLIENT_HELLO ? MC_TLS_SNIFF_TLS : MC_TLS_SNIFF_RAW;
}
