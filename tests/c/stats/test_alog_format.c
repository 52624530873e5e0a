/*
 * stats/alog_format.c: rendering stays within the buffer however small,
 * and escapes whatever bytes a record holds (run under ASan/UBSan too; the
 * formats' semantics are tested from Python, tests/python/test_accesslog_format.py).
 */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "meshcore/access_log.h"
#include "meshcore/rand.h"

static const mc_alog_segment_t FMT[] = {
    {MC_ALOG_LITERAL, MC_ALOG_STYLE_TEXT, "{\"p\":", 5},
    {MC_ALOG_REQ_PATH, MC_ALOG_STYLE_JSON_VALUE, NULL, 0},
    {MC_ALOG_LITERAL, MC_ALOG_STYLE_TEXT, ",\"s\":\"", 6},
    {MC_ALOG_REQ_USER_AGENT, MC_ALOG_STYLE_JSON_STRING, NULL, 0},
    {MC_ALOG_LITERAL, MC_ALOG_STYLE_TEXT, "\",\"t\":", 6},
    {MC_ALOG_START_TIME, MC_ALOG_STYLE_JSON_VALUE, "%Y %3f %6f %9f %%", 17},
    {MC_ALOG_LITERAL, MC_ALOG_STYLE_TEXT, ",\"c\":", 5},
    {MC_ALOG_RESPONSE_CODE, MC_ALOG_STYLE_JSON_VALUE, NULL, 0},
    {MC_ALOG_LITERAL, MC_ALOG_STYLE_TEXT, ",\"u\":", 5},
    {MC_ALOG_RESP_UPSTREAM_SERVICE_TIME, MC_ALOG_STYLE_JSON_VALUE, NULL, 0},
    {MC_ALOG_LITERAL, MC_ALOG_STYLE_TEXT, "}\n", 2},
};
#define NFMT (sizeof(FMT) / sizeof(FMT[0]))

int main(void)
{
    static mc_alog_record_t r;
    memset(&r, 0, sizeof(r));
    r.kind = MC_ALOG_HTTP;
    r.status = 200;
    r.upstream_service_us = -1;
    r.start_us = 1767225600123456ull;
    strcpy(r.path, "/a\"b\\c\x01");
    strcpy(r.user_agent, "x\xff\xc3y");
    char buf[512];
    size_t n = mc_alog_render(FMT, NFMT, &r, buf, sizeof(buf));
    buf[n] = '\0';
    const char *want = "{\"p\":\"/a\\\"b\\\\c\\u0001\",\"s\":\"x\\ufffd\\ufffdy\",\"t\":\"2026 123 123456 123456000 %\","
                       "\"c\":200,\"u\":null}\n";
    CHECK(strcmp(buf, want) == 0);
    if (strcmp(buf, want) != 0)
        fprintf(stderr, "got  %s\nwant %s\n", buf, want);

    /* Every cap, random record bytes: never past the cap. */
    mc_rand_t rng;
    mc_rand_seed(&rng, 1);
    int bad = 0;
    for (int round = 0; round < 2000; round++) {
        for (size_t i = 0; i + 1 < sizeof(r.path); i++)
            r.path[i] = (char)(mc_rand_next(&rng) & 0xFF ? mc_rand_next(&rng) & 0xFF : 1);
        r.path[sizeof(r.path) - 1] = '\0';
        size_t cap = (size_t)(mc_rand_next(&rng) % 1400);
        char out[1400 + 16];
        memset(out, 0x5A, sizeof(out));
        size_t k = mc_alog_render(FMT, NFMT, &r, out, cap);
        if (k > cap)
            bad++;
        for (size_t i = cap; i < sizeof(out); i++)
            if ((unsigned char)out[i] != 0x5A)
                bad++;
    }
    CHECK_EQ(bad, 0);
    CHECK_DONE();
}
