/* net/tls_sniff.c: a ClientHello's first bytes are TLS, anything else plaintext. */
#include <string.h>

#include "check.h"
#include "net/tls_sniff.h"

static int sniff(const char *hex)
{
    uint8_t b[64];
    size_t n = strlen(hex) / 2;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        b[i] = (uint8_t)v;
    }
    return mc_tls_sniff(b, n);
}

int main(void)
{
    /* A TLS 1.2/1.3 ClientHello (record 3.1, 512 bytes, handshake type 1) and its prefixes. */
    CHECK_EQ(sniff("160301020001000200"), MC_TLS_SNIFF_TLS);
    CHECK_EQ(sniff("160301020001"), MC_TLS_SNIFF_TLS);
    CHECK_EQ(sniff("1603010200"), MC_TLS_SNIFF_NEED_MORE);
    CHECK_EQ(sniff("16"), MC_TLS_SNIFF_NEED_MORE);
    CHECK_EQ(sniff(""), MC_TLS_SNIFF_NEED_MORE);
    CHECK_EQ(sniff("160300002f01"), MC_TLS_SNIFF_TLS); /* SSL 3.0 record version */
    /* Plaintext, decided as early as the bytes allow. */
    CHECK_EQ(sniff("474554"), MC_TLS_SNIFF_RAW);         /* "GET" */
    CHECK_EQ(sniff("1647"), MC_TLS_SNIFF_RAW);           /* 0x16 then not 3.x */
    CHECK_EQ(sniff("160305"), MC_TLS_SNIFF_RAW);         /* version 3.5 */
    CHECK_EQ(sniff("1603010000"), MC_TLS_SNIFF_RAW);     /* an empty record */
    CHECK_EQ(sniff("16030148ff"), MC_TLS_SNIFF_RAW);     /* longer than any record */
    CHECK_EQ(sniff("160301020002"), MC_TLS_SNIFF_RAW);   /* ServerHello, not ClientHello */
    CHECK_EQ(sniff("150301000201"), MC_TLS_SNIFF_RAW);   /* an alert record */
    CHECK_DONE();
}
