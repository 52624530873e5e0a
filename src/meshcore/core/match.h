/*
 * String matchers (type.matcher.v3.StringMatcher) and named matchers (a
 * header or query parameter name with a string matcher): one home for the
 * router, RBAC and TLS peer-identity checks.
 *
 * A matcher is built from the compiler's spec (mc_sb_matcher_t in
 * include/meshcore/snapshot.h) and is immutable afterwards. It owns its
 * strings (NUL-terminated copies, lengths kept beside them) and, for
 * MC_STR_REGEX, a PCRE2 pattern compiled once and shared by all workers;
 * each worker brings its own match data.
 *
 * mc_str_matches is the bare StringMatcher: it ignores `invert`, which
 * belongs to the caller's matcher (route.v3 HeaderMatcher.invert_match is
 * applied by route/router.c's header matching).
 */
#ifndef MESHCORE_CORE_MATCH_H
#define MESHCORE_CORE_MATCH_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stddef.h>
#include <stdint.h>

#include "meshcore/snapshot.h"

/* What a named matcher looks at: a header, or one of the request's
 * pseudo-headers (set by mc_matcher_init when `header` is set). */
enum { MC_FIELD_HEADER, MC_FIELD_METHOD, MC_FIELD_AUTHORITY, MC_FIELD_PATH, MC_FIELD_SCHEME };

typedef struct mc_str_match {
    uint8_t kind; /* MC_STR_* */
    uint8_t ignore_case;
    uint8_t invert;
    char *value;
    size_t len;
    pcre2_code *re;
} mc_str_match_t;

typedef struct mc_matcher {
    char *name;
    size_t name_len;
    uint8_t field; /* MC_FIELD_* */
    mc_str_match_t m;
} mc_matcher_t;

/* Compiles a regular expression with PCRE2 (byte semantics, JIT when
 * available). anchored: Envoy's safe_regex matchers must match the whole
 * subject (RE2::FullMatch); rewrites search anywhere. NULL with err filled
 * when the pattern does not compile. The caller owns the result
 * (pcre2_code_free). */
pcre2_code *mc_regex_compile(const char *pattern, int anchored, int caseless, char *err, size_t errlen);

/* A string matcher from a spec (spec->name is not used). 0, or -1 with err
 * filled; on -1 the matcher may hold a partial copy: free it. */
/* A NUL-terminated heap copy of s (NULL: ""), its length in *len (if len); NULL if out of memory. */
char *mc_str_dup(const char *s, size_t *len);
int mc_str_match_init(mc_str_match_t *m, const mc_sb_matcher_t *spec, char *err, size_t errlen);
void mc_str_match_free(mc_str_match_t *m);

/* 1 if v[0..len) matches m (invert not applied). md: match data with room
 * for the pattern's captures; NULL makes a regex never match. */
int mc_str_matches(const mc_str_match_t *m, const char *v, size_t len, pcre2_match_data *md);

/* A named matcher from a spec. header: the name is a header name (lower-
 * cased, pseudo-headers and "host" classified into `field`); otherwise a
 * query parameter name, kept as given. 0, or -1 with err filled; free the
 * matcher either way. */
int mc_matcher_init(mc_matcher_t *m, const mc_sb_matcher_t *spec, int header, char *err, size_t errlen);
void mc_matcher_free(mc_matcher_t *m);

#endif
