/*
 * mc_path_normalize (http/path_normalize.h). First byte: the options
 * (bit 0 normalize_path, bit 1 merge_slashes, bits 2-4 the escaped-slashes
 * action 0-4); the rest is the path. Checks: the path never grows; on
 * REJECT nothing was written; a path the read-only scan calls clean comes
 * back byte-identical and not refused; a path not starting with '/' is left
 * alone; the result starts with '/' when the input did; normalizing the
 * result again changes nothing where that is what the options promise
 * (merge_slashes alone; normalize_path whose result has no '%' left).
 *
 * Normalizing the result again changes nothing for every option set: an
 * escape whose digit would complete a new escape after a '%' stays encoded
 * ("/%%36%31dmin" -> "/%%361dmin", never "/%61dmin"; docs/fuzzing.md).
 */
#include "fuzz_util.h"
#include "http/path_normalize.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 16 * 1024)
        return 0;
    mc_path_norm_t o = {
        .normalize_path = data[0] & 1,
        .merge_slashes = (data[0] >> 1) & 1,
        .escaped_slashes = (uint8_t)(((data[0] >> 2) & 7) % 5),
    };
    size_t n0 = size - 1;
    char *p = fuzz_copy(data + 1, n0);
    size_t n = n0;
    int needs = mc_path_needs_normalize(p, n, &o);
    int rc = mc_path_normalize(p, &n, &o);
    FUZZ_ASSERT(rc == MC_PATH_UNCHANGED || rc == MC_PATH_CHANGED || rc == MC_PATH_REDIRECT || rc == MC_PATH_REJECT,
                "rc %d", rc);
    FUZZ_ASSERT(n <= n0, "grew from %zu to %zu", n0, n);
    if (rc == MC_PATH_REJECT || rc == MC_PATH_UNCHANGED)
        FUZZ_ASSERT(n == n0 && memcmp(p, data + 1, n0) == 0, "rc %d but the path was written", rc);
    /* The scan's promise: a path it calls clean is neither changed nor refused
     * (normalize may still say CHANGED, "possibly to the same bytes"). */
    if (!needs)
        FUZZ_ASSERT(rc != MC_PATH_REJECT && n == n0 && memcmp(p, data + 1, n0) == 0,
                    "scan says clean, normalize returned %d: %.*s -> %.*s", rc, (int)n0, (const char *)data + 1,
                    (int)n, p);
    if (n0 == 0 || data[1] != '/')
        FUZZ_ASSERT(n == n0 && memcmp(p, data + 1, n0) == 0, "a path without a leading '/' was changed");
    else if (rc != MC_PATH_REJECT)
        FUZZ_ASSERT(n >= 1 && p[0] == '/', "lost its leading '/'");

    int idempotent = 0;
    if (rc != MC_PATH_REJECT) {
        if (!o.normalize_path && o.merge_slashes &&
            (o.escaped_slashes == MC_SLASHES_DEFAULT || o.escaped_slashes == MC_SLASHES_KEEP_UNCHANGED))
            idempotent = 1;
        if (o.normalize_path && !memchr(p, '%', n))
            idempotent = 1;
        idempotent = 1; /* every option set (see the top) */
    }
    if (idempotent) {
        char *q = fuzz_copy(p, n);
        size_t m = n;
        int rc2 = mc_path_normalize(q, &m, &o);
        FUZZ_ASSERT(rc2 != MC_PATH_REJECT && m == n && memcmp(p, q, n) == 0,
                    "not idempotent (options %d/%d/%d): %.*s -> %.*s (rc %d)", o.normalize_path, o.merge_slashes,
                    o.escaped_slashes, (int)n, p, (int)m, q, rc2);
        free(q);
    }
    free(p);
    return 0;
}
