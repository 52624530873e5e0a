/*
 * mc_h1_parse_response (http/h1_parser.h), the default limits, on any
 * bytes; the first byte picks the request flags (HEAD, CONNECT). Checks as
 * for requests: the length within the input, the head alone parses to the
 * same length, a prefix yields -2 or the same answer, views in the buffer,
 * a status in 100-599.
 */
#include "fuzz_util.h"
#include "http/h1_parser.h"

#define MAXH 128

static int parse(const char *buf, size_t len, unsigned flags, mc_h1_response_t *resp, mc_h1_header_t *hs)
{
    memset(resp, 0, sizeof(*resp));
    resp->headers = hs;
    resp->n_headers = MAXH;
    const char *reason = NULL;
    int n = mc_h1_parse_response(buf, len, resp, flags, NULL, &reason);
    if (n == MC_H1_ERROR)
        FUZZ_ASSERT(reason != NULL, "error without a reason");
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned flags = data[0] & 3u;
    const char *buf = (const char *)data + 1;
    size_t len = size - 1;
    static mc_h1_header_t hs[MAXH], hs2[MAXH];
    mc_h1_response_t resp, again;
    int n = parse(buf, len, flags, &resp, hs);
    FUZZ_ASSERT(n == MC_H1_ERROR || n == MC_H1_NEED_MORE || (n > 0 && (size_t)n <= len), "n=%d len=%zu", n, len);
    if (n > 0) {
        FUZZ_ASSERT(resp.status >= 100 && resp.status <= 599, "status %d", resp.status);
        FUZZ_ASSERT(resp.body >= MC_H1_BODY_NONE && resp.body <= MC_H1_BODY_UNTIL_CLOSE, "body %d", resp.body);
        FUZZ_ASSERT(resp.body != MC_H1_BODY_UNTIL_CLOSE || !resp.keep_alive, "until-close kept alive");
        if (resp.reason_len)
            FUZZ_ASSERT(fuzz_within(resp.reason, resp.reason_len, buf, (size_t)n), "reason");
        for (size_t i = 0; i < resp.n_headers; i++) {
            FUZZ_ASSERT(fuzz_within(resp.headers[i].name, resp.headers[i].name_len, buf, (size_t)n), "name %zu", i);
            FUZZ_ASSERT(resp.headers[i].value_len == 0 ||
                            fuzz_within(resp.headers[i].value, resp.headers[i].value_len, buf, (size_t)n),
                        "value %zu", i);
        }
        char *head = fuzz_copy(buf, (size_t)n);
        int m = parse(head, (size_t)n, flags, &again, hs2);
        FUZZ_ASSERT(m == n, "head alone: %d, with the rest: %d", m, n);
        free(head);
    }
    if (len > 1) {
        size_t cut = (size_t)data[size - 1] * 131u % len;
        char *pre = fuzz_copy(buf, cut);
        int k = parse(pre, cut, flags, &again, hs2);
        FUZZ_ASSERT(k == MC_H1_NEED_MORE || k == n, "prefix of %zu/%zu bytes: %d, whole: %d", cut, len, k, n);
        free(pre);
    }
    return 0;
}
