/* String and named matchers; see core/match.h. Built on the control thread
 * (copies, regex compilation); matched on workers without allocation. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/match.h"

static int fail(char *err, size_t errlen, const char *msg)
{
    snprintf(err, errlen, "%s", msg);
    return -1;
}

char *mc_str_dup(const char *s, size_t *len)
{
    if (!s)
        s = "";
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d)
        memcpy(d, s, n + 1);
    if (len)
        *len = n;
    return d;
}

pcre2_code *mc_regex_compile(const char *pattern, int anchored, int caseless, char *err, size_t errlen)
{
    int code;
    PCRE2_SIZE off;
    /* Byte semantics (no PCRE2_UTF): header values may carry obs-text. */
    uint32_t opts = caseless ? PCRE2_CASELESS : 0;
    if (anchored)
        opts |= PCRE2_ANCHORED | PCRE2_ENDANCHORED;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, opts, &code, &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(code, msg, sizeof(msg));
        snprintf(err, errlen, "regex \"%s\": %s at offset %zu", pattern, (char *)msg, (size_t)off);
        return NULL;
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* best effort: falls back to the interpreter */
    return re;
}

int mc_regex_check(const char *pattern, char *err, size_t errlen)
{
    pcre2_code *re = mc_regex_compile(pattern, 1, 0, err, errlen);
    if (!re)
        return -1;
    pcre2_code_free(re);
    return 0;
}

int mc_str_match_init(mc_str_match_t *m, const mc_sb_matcher_t *s, char *err, size_t errlen)
{
    m->kind = (uint8_t)s->kind;
    m->ignore_case = (uint8_t)(s->ignore_case != 0);
    m->invert = (uint8_t)(s->invert != 0);
    m->value = mc_str_dup(s->value, &m->len);
    if (!m->value)
        return fail(err, errlen, "out of memory");
    if (s->kind == MC_STR_REGEX) {
        m->re = mc_regex_compile(s->value ? s->value : "", 1, s->ignore_case, err, errlen);
        if (!m->re)
            return -1;
    }
    return 0;
}

void mc_str_match_free(mc_str_match_t *m)
{
    free(m->value);
    if (m->re)
        pcre2_code_free(m->re);
}

static int eq(const char *a, const char *b, size_t n, int ignore_case)
{
    return ignore_case ? strncasecmp(a, b, n) == 0 : memcmp(a, b, n) == 0;
}

static int contains(const char *v, size_t len, const char *s, size_t n, int ignore_case)
{
    if (n == 0)
        return 1;
    for (size_t i = 0; i + n <= len; i++)
        if (eq(v + i, s, n, ignore_case))
            return 1;
    return 0;
}

int mc_str_matches(const mc_str_match_t *m, const char *v, size_t len, pcre2_match_data *md)
{
    switch (m->kind) {
    case MC_STR_EXACT:
        return len == m->len && eq(v, m->value, len, m->ignore_case);
    case MC_STR_PREFIX:
        return len >= m->len && eq(v, m->value, m->len, m->ignore_case);
    case MC_STR_SUFFIX:
        return len >= m->len && eq(v + len - m->len, m->value, m->len, m->ignore_case);
    case MC_STR_CONTAINS:
        return contains(v, len, m->value, m->len, m->ignore_case);
    case MC_STR_REGEX:
        return md && pcre2_match(m->re, (PCRE2_SPTR)v, len, 0, 0, md, NULL) >= 0;
    case MC_STR_PRESENT:
        return 1;
    }
    return 0;
}

int mc_matcher_init(mc_matcher_t *m, const mc_sb_matcher_t *in, int header, char *err, size_t errlen)
{
    m->name = mc_str_dup(in->name, &m->name_len);
    if (!m->name)
        return fail(err, errlen, "out of memory");
    if (header) {
        for (char *p = m->name; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        m->field = !strcmp(m->name, ":method")      ? MC_FIELD_METHOD
                   : !strcmp(m->name, ":authority") ? MC_FIELD_AUTHORITY
                   : !strcmp(m->name, "host")       ? MC_FIELD_AUTHORITY
                   : !strcmp(m->name, ":path")      ? MC_FIELD_PATH
                   : !strcmp(m->name, ":scheme")    ? MC_FIELD_SCHEME
                                                    : MC_FIELD_HEADER;
    }
    return mc_str_match_init(&m->m, in, err, errlen);
}

void mc_matcher_free(mc_matcher_t *m)
{
    free(m->name);
    mc_str_match_free(&m->m);
}
