/*
 * Request path normalization, as Envoy's http_connection_manager does it
 * before routing and RBAC (normalize_path, merge_slashes,
 * path_with_escaped_slashes_action), so that a policy on "/admin" also
 * covers "/x/../admin", "/%61dmin" and (with merge_slashes) "//admin".
 *
 * The normalizer works in place on the path (no query) and never makes it
 * longer; it allocates nothing. Steps, in Envoy's order:
 *
 *  1. escaped slashes (%2F, %5C, any case): kept, rejected (400), or
 *     unescaped to '/' and '\' (then either forwarded or redirected);
 *  2. normalize_path (RFC 3986 §6.2.2): %00 is refused (400); percent-
 *     encoded unreserved characters (ALPHA DIGIT - . _ ~) are decoded once
 *     (no double decoding: "%252e" stays); '\' becomes '/' (as Envoy's URL
 *     canonicalizer and Istio's BASE); dot segments are removed (§5.2.4),
 *     "%2e" counting as '.';
 *  3. merge_slashes: every run of '/' becomes one.
 *
 * Other escapes are left as sent (their hex case too).
 */
#ifndef MESHCORE_HTTP_PATH_NORMALIZE_H
#define MESHCORE_HTTP_PATH_NORMALIZE_H

#include <stddef.h>
#include <stdint.h>

/* path_with_escaped_slashes_action (the xDS enum's order; 0 is Envoy's
 * IMPLEMENTATION_SPECIFIC_DEFAULT, which is KEEP_UNCHANGED). */
enum {
    MC_SLASHES_DEFAULT = 0,
    MC_SLASHES_KEEP_UNCHANGED = 1,
    MC_SLASHES_REJECT_REQUEST = 2,
    MC_SLASHES_UNESCAPE_AND_REDIRECT = 3,
    MC_SLASHES_UNESCAPE_AND_FORWARD = 4
};

typedef struct mc_path_norm {
    uint8_t normalize_path;
    uint8_t merge_slashes;
    uint8_t escaped_slashes; /* MC_SLASHES_* */
} mc_path_norm_t;

enum {
    MC_PATH_UNCHANGED = 0, /* nothing to do */
    MC_PATH_CHANGED = 1,   /* normalized (possibly to the same bytes); forward it */
    MC_PATH_REDIRECT = 2,  /* escaped slashes unescaped: redirect the client to it */
    MC_PATH_REJECT = -1    /* answer 400 */
};

/* Whether any option is on (the stream skips the scan otherwise). */
static inline int mc_path_norm_enabled(const mc_path_norm_t *o)
{
    return o->normalize_path || o->merge_slashes ||
           (o->escaped_slashes != MC_SLASHES_DEFAULT && o->escaped_slashes != MC_SLASHES_KEEP_UNCHANGED);
}

/* Whether normalizing p[0..n) could change it or refuse it: a read-only
 * scan, so a path with nothing to do is never copied. */
int mc_path_needs_normalize(const char *p, size_t n, const mc_path_norm_t *o);

/* Normalizes p[0..*n) in place; *n is the new length (never larger).
 * Returns MC_PATH_*. A path not starting with '/' (asterisk-form) is left
 * alone. On MC_PATH_REJECT nothing has been written. */
int mc_path_normalize(char *p, size_t *n, const mc_path_norm_t *o);

#endif
