/*
 * The TLS inspector's ClientHello peek (net/tls_sniff.h, used by
 * proxy/tls_inspector.c on MSG_PEEKed bytes): the input is the first bytes
 * of a connection. Checks: a verdict from at least MC_TLS_SNIFF_BYTES is
 * never NEED_MORE; every prefix yields NEED_MORE or the whole input's
 * verdict (the inspector may decide on any prefix it peeks); TLS only for
 * a handshake record (22, 3.x) holding a ClientHello; bytes past the peek
 * size never change the verdict.
 */
#include "fuzz_util.h"
#include "net/tls_sniff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64)
        return 0;
    uint8_t *copy = (uint8_t *)fuzz_copy(data, size);
    int whole = mc_tls_sniff(copy, size);
    FUZZ_ASSERT(whole == MC_TLS_SNIFF_NEED_MORE || whole == MC_TLS_SNIFF_RAW || whole == MC_TLS_SNIFF_TLS,
                "verdict %d", whole);
    if (size >= MC_TLS_SNIFF_BYTES) {
        FUZZ_ASSERT(whole != MC_TLS_SNIFF_NEED_MORE, "%zu bytes are enough", size);
        FUZZ_ASSERT(mc_tls_sniff(copy, MC_TLS_SNIFF_BYTES) == whole, "bytes past the peek changed it");
    }
    if (whole == MC_TLS_SNIFF_TLS)
        FUZZ_ASSERT(copy[0] == 22 && copy[1] == 3 && copy[5] == 1, "TLS without a ClientHello record");
    for (size_t k = 0; k < size; k++) {
        uint8_t *pre = (uint8_t *)fuzz_copy(copy, k);
        int v = mc_tls_sniff(pre, k);
        free(pre);
        FUZZ_ASSERT(v == MC_TLS_SNIFF_NEED_MORE || v == whole, "prefix of %zu bytes: %d, whole: %d", k, v, whole);
    }
    free(copy);
    return 0;
}
