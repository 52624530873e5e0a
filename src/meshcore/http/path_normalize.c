/* Request path normalization: see path_normalize.h. */
#include "http/path_normalize.h"

#include <string.h>

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The byte %XX at p[i] encodes, or -1 when p[i..] is not a valid escape. */
static int escaped(const char *p, size_t n, size_t i)
{
    if (p[i] != '%' || i + 2 >= n)
        return -1;
    int hi = hexval(p[i + 1]), lo = hexval(p[i + 2]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

static int unreserved(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_' || c == '~';
}

static int slash_escape(int c)
{
    return c == '/' || c == '\\';
}

static int unescapes_slashes(const mc_path_norm_t *o)
{
    return o->escaped_slashes == MC_SLASHES_UNESCAPE_AND_REDIRECT ||
           o->escaped_slashes == MC_SLASHES_UNESCAPE_AND_FORWARD;
}

int mc_path_needs_normalize(const char *p, size_t n, const mc_path_norm_t *o)
{
    if (!n || p[0] != '/')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '%') {
            if (o->normalize_path || o->escaped_slashes > MC_SLASHES_KEEP_UNCHANGED)
                return 1;
        } else if (c == '\\') {
            if (o->normalize_path)
                return 1;
        } else if (c == '/' && i + 1 < n) {
            if (o->merge_slashes && p[i + 1] == '/')
                return 1;
            if (o->normalize_path && p[i + 1] == '.')
                return 1;
        }
    }
    return 0;
}

/* Step 1: %2F and %5C. Returns the count found, or -1 to reject. */
static int escaped_slashes(char *p, size_t *n, const mc_path_norm_t *o)
{
    size_t w = 0, len = *n;
    int found = 0;
    for (size_t r = 0; r < len;) {
        int c = escaped(p, len, r);
        if (c >= 0 && slash_escape(c)) {
            found++;
            if (o->escaped_slashes == MC_SLASHES_REJECT_REQUEST)
                return -1;
            if (unescapes_slashes(o)) {
                p[w++] = (char)c;
                r += 3;
                continue;
            }
        }
        p[w++] = p[r++];
    }
    *n = w;
    return found;
}

/* Whether writing the hex digit c after out[0, w) would complete a new
 * escape: "%" or "%H" before it ("%%36%31" would become "%61", which a
 * second decoding - the upstream's - turns into "a"). */
static int forms_escape(const char *out, size_t w, int c)
{
    if (hexval((char)c) < 0 || w == 0)
        return 0;
    return out[w - 1] == '%' || (w >= 2 && out[w - 2] == '%' && hexval(out[w - 1]) >= 0);
}

/* Step 2a: decode unreserved escapes once, '\' -> '/'; -1 on %00. An escape
 * whose decoded digit would complete a new escape stays encoded: the path
 * cannot grow (Envoy's canonicalizer escapes the '%' instead), and a rule
 * on the decoded path is not bypassed by a double escape. */
static int decode_unreserved(char *p, size_t *n)
{
    size_t w = 0, len = *n;
    for (size_t r = 0; r < len;) {
        int c = escaped(p, len, r);
        if (c == 0)
            return -1;
        if (c > 0 && unreserved(c) && !forms_escape(p, w, c)) {
            p[w++] = (char)c;
            r += 3;
            continue;
        }
        char ch = p[r++];
        p[w++] = ch == '\\' ? '/' : ch;
    }
    *n = w;
    return 0;
}

/* Step 2b: RFC 3986 §5.2.4 on an absolute path, in place. The output is a
 * sequence of "/segment"; a '.' or ".." last segment leaves a trailing '/'. */
static void remove_dot_segments(char *p, size_t *n)
{
    size_t w = 0, r = 0, len = *n;
    while (r < len) { /* p[r] == '/' */
        size_t s = r + 1, e = s;
        while (e < len && p[e] != '/')
            e++;
        size_t sl = e - s;
        int last = e >= len;
        if (sl == 1 && p[s] == '.') {
            if (last)
                p[w++] = '/';
        } else if (sl == 2 && p[s] == '.' && p[s + 1] == '.') {
            while (w > 0 && p[w - 1] != '/')
                w--;
            if (w > 0)
                w--;
            if (last)
                p[w++] = '/';
        } else {
            p[w++] = '/';
            memmove(p + w, p + s, sl);
            w += sl;
        }
        r = e;
    }
    *n = w;
}

static void merge_slashes(char *p, size_t *n)
{
    size_t w = 0, len = *n;
    for (size_t r = 0; r < len; r++) {
        if (p[r] == '/' && w > 0 && p[w - 1] == '/')
            continue;
        p[w++] = p[r];
    }
    *n = w;
}

/* Whether the steps below would refuse p, decided before any byte is
 * written: REJECT_REQUEST and an escaped slash anywhere; normalize_path and
 * %00 anywhere (unescaping slashes can neither make nor break a "%00"). */
static int refused(const char *p, size_t n, const mc_path_norm_t *o)
{
    for (size_t i = 0; i + 2 < n; i++) {
        int c = escaped(p, n, i);
        if (c < 0)
            continue;
        if (o->escaped_slashes == MC_SLASHES_REJECT_REQUEST && slash_escape(c))
            return 1;
        if (o->normalize_path && c == 0)
            return 1;
    }
    return 0;
}

int mc_path_normalize(char *p, size_t *n, const mc_path_norm_t *o)
{
    if (!*n || p[0] != '/')
        return MC_PATH_UNCHANGED;
    if (refused(p, *n, o))
        return MC_PATH_REJECT;
    int redirect = 0;
    if (o->escaped_slashes > MC_SLASHES_KEEP_UNCHANGED) {
        int found = escaped_slashes(p, n, o);
        if (found < 0)
            return MC_PATH_REJECT;
        redirect = found > 0 && o->escaped_slashes == MC_SLASHES_UNESCAPE_AND_REDIRECT;
    }
    if (o->normalize_path) {
        if (decode_unreserved(p, n) < 0)
            return MC_PATH_REJECT;
        remove_dot_segments(p, n);
    }
    if (o->merge_slashes)
        merge_slashes(p, n);
    if (redirect)
        return MC_PATH_REDIRECT;
    return MC_PATH_CHANGED;
}
