/* Response flag names; see stats/response_flags.h. */
#include <string.h>

#include "stats/response_flags.h"

#define NAME(code, meaning) [MC_RF_BIT_##code] = #code,
static const char *const names[MC_RF__COUNT] = {MC_RESPONSE_FLAGS(NAME)};
#undef NAME

size_t mc_response_flags_format(uint32_t flags, char *buf, size_t len)
{
    size_t n = 0;
    if (len == 0)
        return 0;
    for (uint32_t i = 0; i < MC_RF__COUNT; i++) {
        if (!(flags & (1u << i)))
            continue;
        size_t k = strlen(names[i]);
        if (n + k + 2 > len)
            break;
        if (n)
            buf[n++] = ',';
        memcpy(buf + n, names[i], k);
        n += k;
    }
    if (n == 0 && len > 1)
        buf[n++] = '-';
    buf[n] = '\0';
    return n;
}
