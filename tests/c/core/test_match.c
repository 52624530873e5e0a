/*
 * core/match.c: string matchers (exact, prefix, suffix, contains, regex,
 * presence; ignore_case; empty values), named matchers (header names
 * lower-cased and classified, query names kept), invert kept for the
 * caller, and regex compilation (full match for matchers, search for
 * rewrites). Matchers are built from mc_sb_matcher_t specs, as the
 * compiler's are.
 */
#include <string.h>

#include "check.h"
#include "core/match.h"

static pcre2_match_data *md;

/* Builds a string matcher from a spec and matches v against it. */
static int sm(int kind, const char *value, int ignore_case, const char *v)
{
    mc_sb_matcher_t spec = {.kind = kind, .value = value, .ignore_case = ignore_case};
    mc_str_match_t m;
    memset(&m, 0, sizeof(m));
    char err[200];
    int rc = mc_str_match_init(&m, &spec, err, sizeof(err));
    CHECK_EQ(rc, 0);
    int hit = rc == 0 ? mc_str_matches(&m, v, strlen(v), md) : -1;
    mc_str_match_free(&m);
    return hit;
}

static void test_exact(void)
{
    CHECK_EQ(sm(MC_STR_EXACT, "GET", 0, "GET"), 1);
    CHECK_EQ(sm(MC_STR_EXACT, "GET", 0, "get"), 0);
    CHECK_EQ(sm(MC_STR_EXACT, "GET", 1, "get"), 1);
    CHECK_EQ(sm(MC_STR_EXACT, "GET", 0, "GETX"), 0);
    CHECK_EQ(sm(MC_STR_EXACT, "GET", 0, "GE"), 0);
    CHECK_EQ(sm(MC_STR_EXACT, "GET", 1, "GETX"), 0);
}

static void test_prefix_suffix_contains(void)
{
    CHECK_EQ(sm(MC_STR_PREFIX, "/api", 0, "/api/v1"), 1);
    CHECK_EQ(sm(MC_STR_PREFIX, "/api", 0, "/API/v1"), 0);
    CHECK_EQ(sm(MC_STR_PREFIX, "/api", 1, "/API/v1"), 1);
    CHECK_EQ(sm(MC_STR_PREFIX, "/api", 0, "/ap"), 0);
    CHECK_EQ(sm(MC_STR_PREFIX, "/api", 0, "x/api"), 0);

    CHECK_EQ(sm(MC_STR_SUFFIX, ".svc", 0, "a.ns.svc"), 1);
    CHECK_EQ(sm(MC_STR_SUFFIX, ".svc", 0, "a.ns.SVC"), 0);
    CHECK_EQ(sm(MC_STR_SUFFIX, ".svc", 1, "a.ns.SVC"), 1);
    CHECK_EQ(sm(MC_STR_SUFFIX, ".svc", 0, "svc"), 0);
    CHECK_EQ(sm(MC_STR_SUFFIX, ".svc", 0, "a.svc.x"), 0);

    CHECK_EQ(sm(MC_STR_CONTAINS, "mid", 0, "amidb"), 1);
    CHECK_EQ(sm(MC_STR_CONTAINS, "mid", 0, "mid"), 1);
    CHECK_EQ(sm(MC_STR_CONTAINS, "mid", 0, "xxmi"), 0);
    CHECK_EQ(sm(MC_STR_CONTAINS, "mid", 0, "aMIDb"), 0);
    CHECK_EQ(sm(MC_STR_CONTAINS, "mid", 1, "aMIDb"), 1);
    CHECK_EQ(sm(MC_STR_CONTAINS, "mid", 0, ""), 0);
}

static void test_empty(void)
{
    /* An empty (or absent) value: exact matches only the empty string;
     * prefix, suffix and contains match anything. */
    CHECK_EQ(sm(MC_STR_EXACT, "", 0, ""), 1);
    CHECK_EQ(sm(MC_STR_EXACT, "", 0, "x"), 0);
    CHECK_EQ(sm(MC_STR_EXACT, NULL, 0, ""), 1);
    CHECK_EQ(sm(MC_STR_PREFIX, "", 0, "anything"), 1);
    CHECK_EQ(sm(MC_STR_SUFFIX, "", 0, "anything"), 1);
    CHECK_EQ(sm(MC_STR_CONTAINS, "", 0, ""), 1);
    CHECK_EQ(sm(MC_STR_CONTAINS, NULL, 0, "x"), 1);
    /* Presence matches whatever the value. */
    CHECK_EQ(sm(MC_STR_PRESENT, NULL, 0, ""), 1);
    CHECK_EQ(sm(MC_STR_PRESENT, "ignored", 0, "other"), 1);
}

static void test_regex(void)
{
    /* Envoy's safe_regex is a full match (RE2::FullMatch). */
    CHECK_EQ(sm(MC_STR_REGEX, "a.c", 0, "abc"), 1);
    CHECK_EQ(sm(MC_STR_REGEX, "a.c", 0, "xabc"), 0);
    CHECK_EQ(sm(MC_STR_REGEX, "a.c", 0, "abcx"), 0);
    CHECK_EQ(sm(MC_STR_REGEX, "/v[0-9]+/.*", 0, "/v12/items"), 1);
    CHECK_EQ(sm(MC_STR_REGEX, "/v[0-9]+/.*", 0, "/vx/items"), 0);
    CHECK_EQ(sm(MC_STR_REGEX, "abc", 0, "ABC"), 0);
    CHECK_EQ(sm(MC_STR_REGEX, "abc", 1, "ABC"), 1);
    CHECK_EQ(sm(MC_STR_REGEX, "", 0, ""), 1);
    CHECK_EQ(sm(MC_STR_REGEX, "", 0, "x"), 0);

    /* Without match data a regex never matches (and does not crash). */
    mc_sb_matcher_t spec = {.kind = MC_STR_REGEX, .value = ".*"};
    mc_str_match_t m;
    memset(&m, 0, sizeof(m));
    char err[200];
    CHECK_EQ(mc_str_match_init(&m, &spec, err, sizeof(err)), 0);
    CHECK(m.re != NULL);
    CHECK_EQ(mc_str_matches(&m, "x", 1, md), 1);
    CHECK_EQ(mc_str_matches(&m, "x", 1, NULL), 0);
    mc_str_match_free(&m);

    /* A pattern that does not compile fails the build with the reason;
     * the partial matcher is freed by the caller (ASan checks). */
    spec.value = "a(b";
    memset(&m, 0, sizeof(m));
    err[0] = '\0';
    CHECK_EQ(mc_str_match_init(&m, &spec, err, sizeof(err)), -1);
    CHECK(strstr(err, "regex \"a(b\"") != NULL);
    CHECK(m.re == NULL);
    mc_str_match_free(&m);
}

static void test_invert_is_the_callers(void)
{
    /* invert is copied for the caller (route/router.c applies it to
     * header matches); the bare string match ignores it. */
    mc_sb_matcher_t spec = {.kind = MC_STR_EXACT, .value = "a", .invert = 7};
    mc_str_match_t m;
    memset(&m, 0, sizeof(m));
    char err[200];
    CHECK_EQ(mc_str_match_init(&m, &spec, err, sizeof(err)), 0);
    CHECK_EQ(m.invert, 1);
    CHECK_EQ(m.ignore_case, 0);
    CHECK_EQ(m.len, 1);
    CHECK_EQ(mc_str_matches(&m, "a", 1, md), 1);
    CHECK_EQ(mc_str_matches(&m, "b", 1, md), 0);
    mc_str_match_free(&m);
}

static void test_named(void)
{
    static const struct {
        const char *name;
        const char *lower;
        int field;
    } cases[] = {
        {":method", ":method", MC_FIELD_METHOD},     {":Authority", ":authority", MC_FIELD_AUTHORITY},
        {"Host", "host", MC_FIELD_AUTHORITY},        {":path", ":path", MC_FIELD_PATH},
        {":scheme", ":scheme", MC_FIELD_SCHEME},     {"X-Canary", "x-canary", MC_FIELD_HEADER},
        {"", "", MC_FIELD_HEADER},
    };
    char err[200];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        mc_sb_matcher_t spec = {.name = cases[i].name, .kind = MC_STR_PREFIX, .value = "v", .ignore_case = 1};
        mc_matcher_t m;
        memset(&m, 0, sizeof(m));
        CHECK_EQ(mc_matcher_init(&m, &spec, 1, err, sizeof(err)), 0);
        CHECK(strcmp(m.name, cases[i].lower) == 0);
        CHECK_EQ(m.name_len, strlen(cases[i].lower));
        CHECK_EQ(m.field, cases[i].field);
        CHECK_EQ(m.m.kind, MC_STR_PREFIX);
        CHECK_EQ(m.m.ignore_case, 1);
        CHECK_EQ(mc_str_matches(&m.m, "V1", 2, md), 1);
        mc_matcher_free(&m);
    }
    /* A query parameter name is kept as given (names are case-sensitive). */
    mc_sb_matcher_t q = {.name = "Debug", .kind = MC_STR_EXACT, .value = "1"};
    mc_matcher_t m;
    memset(&m, 0, sizeof(m));
    CHECK_EQ(mc_matcher_init(&m, &q, 0, err, sizeof(err)), 0);
    CHECK(strcmp(m.name, "Debug") == 0);
    CHECK_EQ(m.field, MC_FIELD_HEADER);
    mc_matcher_free(&m);
    /* An absent name is the empty name. */
    q.name = NULL;
    memset(&m, 0, sizeof(m));
    CHECK_EQ(mc_matcher_init(&m, &q, 1, err, sizeof(err)), 0);
    CHECK_EQ(m.name_len, 0);
    mc_matcher_free(&m);
}

static void test_regex_compile(void)
{
    char err[200];
    /* anchored: a full match; unanchored (rewrites): a search. */
    pcre2_code *full = mc_regex_compile("b+", 1, 0, err, sizeof(err));
    pcre2_code *search = mc_regex_compile("b+", 0, 0, err, sizeof(err));
    pcre2_code *caseless = mc_regex_compile("b+", 1, 1, err, sizeof(err));
    CHECK(full && search && caseless);
    if (full && search && caseless) {
        CHECK(pcre2_match(full, (PCRE2_SPTR) "bbb", 3, 0, 0, md, NULL) >= 0);
        CHECK(pcre2_match(full, (PCRE2_SPTR) "abbb", 4, 0, 0, md, NULL) < 0);
        CHECK(pcre2_match(search, (PCRE2_SPTR) "abbb", 4, 0, 0, md, NULL) >= 0);
        CHECK(pcre2_match(full, (PCRE2_SPTR) "BB", 2, 0, 0, md, NULL) < 0);
        CHECK(pcre2_match(caseless, (PCRE2_SPTR) "BB", 2, 0, 0, md, NULL) >= 0);
    }
    pcre2_code_free(full);
    pcre2_code_free(search);
    pcre2_code_free(caseless);

    CHECK(mc_regex_compile("[", 1, 0, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "regex \"[\"") != NULL && strstr(err, "offset") != NULL);
    CHECK_EQ(mc_regex_check("^/a(b|c)$", err, sizeof(err)), 0);
    CHECK_EQ(mc_regex_check("(", err, sizeof(err)), -1);
}

int main(void)
{
    md = pcre2_match_data_create(16, NULL);
    test_exact();
    test_prefix_suffix_contains();
    test_empty();
    test_regex();
    test_invert_is_the_callers();
    test_named();
    test_regex_compile();
    pcre2_match_data_free(md);
    CHECK_DONE();
}
