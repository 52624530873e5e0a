/*
 * http/path_normalize.h: Envoy's normalize_path / merge_slashes /
 * path_with_escaped_slashes_action, RFC 3986 §5.2.4 and §6.2.2 cases,
 * Istio's normalization table. Each input lives in an exact-size heap copy
 * (ASan sees any over-read); a path the quick scan calls clean must come
 * out of the normalizer unchanged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "http/path_normalize.h"

static const mc_path_norm_t NONE = {0, 0, 0};
static const mc_path_norm_t BASE = {1, 0, 0};
static const mc_path_norm_t MERGE = {1, 1, 0};
static const mc_path_norm_t DECODE_MERGE = {1, 1, MC_SLASHES_UNESCAPE_AND_FORWARD};
static const mc_path_norm_t ONLY_MERGE = {0, 1, 0};
static const mc_path_norm_t REJECT = {0, 0, MC_SLASHES_REJECT_REQUEST};
static const mc_path_norm_t REDIRECT = {1, 0, MC_SLASHES_UNESCAPE_AND_REDIRECT};
static const mc_path_norm_t KEEP = {1, 0, MC_SLASHES_KEEP_UNCHANGED};

static int n_cases;

/* want NULL: rejected. */
static void expect(const mc_path_norm_t *o, const char *in, const char *want, int want_rc)
{
    size_t n = strlen(in);
    char *p = malloc(n ? n : 1);
    memcpy(p, in, n);
    int needs = mc_path_needs_normalize(p, n, o);
    size_t m = n;
    int rc = mc_path_normalize(p, &m, o);
    n_cases++;
    if (!want) {
        if (rc != MC_PATH_REJECT || !needs || m != n || memcmp(p, in, n) != 0) {
            fprintf(stderr, "%s: want reject, rc %d needs %d\n", in, rc, needs);
            check_failures++;
        }
    } else if (rc == MC_PATH_REJECT || m != strlen(want) || memcmp(p, want, m) != 0 ||
               (want_rc >= 0 && rc != want_rc)) {
        fprintf(stderr, "%s: want %s (rc %d), got %.*s (rc %d)\n", in, want, want_rc, (int)m, p, rc);
        check_failures++;
    } else if (!needs && (m != n || memcmp(in, want, n) != 0)) {
        fprintf(stderr, "%s: the scan said clean but it changed to %s\n", in, want);
        check_failures++;
    }
    CHECK(m <= n);
    free(p);
}

#define SAME(o, in) expect(&(o), in, in, -1)
#define TO(o, in, out) expect(&(o), in, out, -1)

static void test_bypass_strings(void)
{
    /* the three: NONE lets them through as sent */
    SAME(NONE, "/x/../admin");
    SAME(NONE, "//admin");
    SAME(NONE, "/%61dmin");
    TO(BASE, "/x/../admin", "/admin");
    TO(BASE, "/%61dmin", "/admin");
    SAME(BASE, "//admin"); /* BASE does not merge slashes (Istio's table) */
    TO(MERGE, "//admin", "/admin");
    TO(MERGE, "/x/..//admin", "/admin");
    TO(ONLY_MERGE, "//admin", "/admin");
    SAME(ONLY_MERGE, "/x/../admin");
    /* double escapes (found by fuzzing): an escape is kept when its digit would
     * complete a new escape after a '%', so an escape the result still holds is
     * always preceded by '%': one decoding more (the upstream's) cannot make
     * "/admin" of it, and normalizing again changes nothing */
    TO(BASE, "/%%36%31dmin", "/%%361dmin");
    TO(MERGE, "/%%36%31dmin", "/%%361dmin");
    SAME(BASE, "/%%361dmin");
    TO(BASE, "/%%36%31dmin/%62", "/%%361dmin/b");
    SAME(DECODE_MERGE, "/%2%46admin");
    TO(BASE, "/%6%31%41", "/%6%31A");
}

static void test_envoy_normalize_path(void)
{
    SAME(BASE, "/xyz");
    SAME(BASE, "/x/y/z");
    SAME(BASE, "//");
    SAME(BASE, "//x");
    TO(BASE, "/../x", "/x");
    TO(BASE, "/./x", "/x");
    TO(BASE, "/x/..", "/");
    TO(BASE, "/x/../", "/");
    TO(BASE, "/x/../../", "/");
    TO(BASE, "/x/.", "/x/");
    TO(BASE, "/x/./", "/x/");
    TO(BASE, "/x/y/../z", "/x/z");
    TO(BASE, "/x/./y", "/x/y");
    TO(BASE, "/x/%2e/y", "/x/y");
    TO(BASE, "/x/%2E%2e/y", "/y");
    TO(BASE, "/x/.%2E/y/z", "/y/z");
    TO(BASE, "/%2e/x", "/x");
    SAME(BASE, "/x/.z");
    SAME(BASE, "/x/..z");
    SAME(BASE, "/x/z.");
    SAME(BASE, "/x/.../y");
    TO(BASE, "/x\\y", "/x/y");
    TO(BASE, "/x\\..\\admin", "/admin");
    TO(BASE, "/.", "/");
    TO(BASE, "/..", "/");
    TO(BASE, "//..", "/");
    SAME(BASE, "/");
    SAME(BASE, "*");       /* asterisk-form: not a path */
    SAME(BASE, "x/../y");  /* not absolute: left alone */
}

static void test_rfc3986(void)
{
    /* §5.4 (the absolute paths of the reference resolution examples) */
    TO(BASE, "/a/b/c/./../../g", "/a/g");
    TO(BASE, "/a/b/c/../../../g", "/g");
    TO(BASE, "/a/b/c/../../../../g", "/g");
    TO(BASE, "/a/b/c/g;x=1/./y", "/a/b/c/g;x=1/y");
    TO(BASE, "/a/b/c/g;x=1/../y", "/a/b/c/y");
    TO(BASE, "/a/b/c/g/.", "/a/b/c/g/");
    TO(BASE, "/a/b/c/g/..", "/a/b/c/");
    SAME(BASE, "/a/b/c/g.");
    SAME(BASE, "/a/b/c/.g");
    SAME(BASE, "/a/b/c/g..");
    SAME(BASE, "/a/b/c/..g");
    /* §5.2.4's own examples */
    TO(BASE, "/a/b/c/./../../g", "/a/g");
    /* §6.2.2.2: unreserved decoded once, the rest kept as sent */
    TO(BASE, "/%7Euser/%61%62%63", "/~user/abc");
    TO(BASE, "/%41%5a%30%39%2d%5F%7e", "/AZ09-_~");
    SAME(BASE, "/%252e%252e/admin"); /* no double decoding */
    SAME(BASE, "/a%20b%3F%23");
    SAME(BASE, "/x/%2f");
    SAME(BASE, "/%zz/%4/%");
    TO(BASE, "/x/%41%2f", "/x/A%2f");
    expect(&BASE, "/x%00y", NULL, 0);
    expect(&BASE, "/%00", NULL, 0);
    SAME(NONE, "/x%00y"); /* nothing asked: nothing refused */
}

static void test_istio_table(void)
{
    /* istio.io "Authorization Policy Normalization" */
    TO(DECODE_MERGE, "/some%2fdata/%61%62%63", "/some/data/abc");
    TO(BASE, "/some%2fdata/%61%62%63", "/some%2fdata/abc");
    TO(BASE, "/some\\data", "/some/data");
    TO(MERGE, "/some//data///abc", "/some/data/abc");
    SAME(BASE, "/some//data///abc");
    TO(BASE, "/public/./data/abc/../xyz", "/public/data/xyz");
    TO(DECODE_MERGE, "/some%5cdata", "/some/data");
    TO(DECODE_MERGE, "/admin%2F..%2Fsecret", "/secret");
    TO(MERGE, "/admin%2F..%2Fsecret", "/admin%2F..%2Fsecret");
    TO(DECODE_MERGE, "/%2F%2Fadmin", "/admin");
}

static void test_escaped_slashes(void)
{
    expect(&REJECT, "/a%2Fb", NULL, 0);
    expect(&REJECT, "/a%2fb", NULL, 0);
    expect(&REJECT, "/a%5Cb", NULL, 0);
    expect(&REJECT, "/a%5cb", NULL, 0);
    SAME(REJECT, "/a/b");
    SAME(REJECT, "/a%2");
    expect(&REDIRECT, "/a%2Fb", "/a/b", MC_PATH_REDIRECT);
    expect(&REDIRECT, "/a%2e/b", "/a./b", MC_PATH_CHANGED);
    SAME(KEEP, "/a%2Fb");
    expect(&(mc_path_norm_t){0, 0, MC_SLASHES_UNESCAPE_AND_FORWARD}, "/a%5Cb%2f", "/a\\b/", MC_PATH_CHANGED);
    CHECK(!mc_path_norm_enabled(&NONE));
    CHECK(!mc_path_norm_enabled(&(mc_path_norm_t){0, 0, MC_SLASHES_KEEP_UNCHANGED}));
    CHECK(mc_path_norm_enabled(&REJECT));
    CHECK(mc_path_norm_enabled(&BASE));
}

/* Every short path over a small alphabet, under each option set: never
 * grows, never over-reads, a refusal writes nothing, the quick scan never
 * calls a path clean that normalizing would change or refuse; under BASE +
 * merge, normalizing twice changes nothing more. */
static void test_exhaustive(void)
{
    static const char alpha[] = {'/', '.', '%', '2', 'e', '0', '\\', 'F'};
    static const mc_path_norm_t *opts[] = {&BASE, &MERGE, &DECODE_MERGE, &REJECT, &REDIRECT, &ONLY_MERGE};
    char in[7], p[7], q[7];
    for (unsigned oi = 0; oi < sizeof(opts) / sizeof(opts[0]); oi++) {
        const mc_path_norm_t *o = opts[oi];
        for (unsigned len = 1; len <= 6; len++) {
            unsigned total = 1;
            for (unsigned i = 1; i < len; i++)
                total *= sizeof(alpha);
            for (unsigned k = 0; k < total; k++) {
                in[0] = '/';
                unsigned v = k;
                for (unsigned i = 1; i < len; i++, v /= sizeof(alpha))
                    in[i] = alpha[v % sizeof(alpha)];
                char *heap = malloc(len);
                memcpy(heap, in, len);
                int needs = mc_path_needs_normalize(heap, len, o);
                size_t m = len;
                int rc = mc_path_normalize(heap, &m, o);
                memcpy(p, heap, m);
                free(heap);
                CHECK(m <= len);
                if (!needs && (rc == MC_PATH_REJECT || m != len || memcmp(p, in, len) != 0)) {
                    fprintf(stderr, "scan said clean: %.*s -> %.*s (rc %d)\n", (int)len, in, (int)m, p, rc);
                    check_failures++;
                    return;
                }
                n_cases++;
                if (rc == MC_PATH_REJECT) {
                    CHECK(m == len && memcmp(p, in, len) == 0); /* refused before any write */
                    continue;
                }
                CHECK(m > 0 && p[0] == '/');
                if (o != &MERGE)
                    continue;
                memcpy(q, p, m);
                size_t m2 = m;
                mc_path_normalize(q, &m2, o);
                if (m2 != m || memcmp(p, q, m) != 0) {
                    fprintf(stderr, "not idempotent: %.*s -> %.*s -> %.*s\n", (int)len, in, (int)m, p, (int)m2, q);
                    check_failures++;
                    return;
                }
            }
        }
    }
}

int main(void)
{
    test_bypass_strings();
    test_envoy_normalize_path();
    test_rfc3986();
    test_istio_table();
    test_escaped_slashes();
    test_exhaustive();
    printf("path normalize: %d cases\n", n_cases);
    CHECK_DONE();
}
