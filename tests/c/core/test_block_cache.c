/* core/block_cache.c: classes, reuse, realloc across classes, bounds, trim. */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "core/block_cache.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
/* A cached block is poisoned: a use after free is caught under ASan. */
#define CHECK_POISONED(p, yes) CHECK(__asan_address_is_poisoned(p) == (yes))
#else
#define CHECK_POISONED(p, yes) ((void)(p), (void)(yes))
#endif

static void test_reuse_by_class(void)
{
    mc_block_cache_t bc;
    mc_bc_init(&bc);
    void *a = mc_bc_alloc(&bc, 100); /* class 128 */
    CHECK(a != NULL);
    CHECK(((uintptr_t)a & 15) == 0);
    memset(a, 0xab, 100);
    mc_bc_free(&bc, a);
    CHECK(bc.len[3] == 1);
    CHECK_POISONED(a, 1);
    CHECK_POISONED((char *)a + 127, 1);
    void *b = mc_bc_alloc(&bc, 128); /* same class: the same block */
    CHECK(b == a);
    CHECK_POISONED(b, 0);
    CHECK_POISONED((char *)b + 127, 0);
    CHECK(bc.len[3] == 0);
    void *c = mc_bc_alloc(&bc, 129); /* the next class */
    CHECK(c != a);
    mc_bc_free(&bc, b);
    mc_bc_free(&bc, c);
    void *z = mc_bc_calloc(&bc, 4, 32); /* 128: the reused block, zeroed */
    CHECK(z == a);
    for (int i = 0; i < 128; i++)
        CHECK(((unsigned char *)z)[i] == 0);
    mc_bc_free(&bc, z);
    mc_bc_free(&bc, NULL);
    CHECK(mc_bc_calloc(&bc, SIZE_MAX / 2, 4) == NULL); /* overflow */
    mc_bc_destroy(&bc);
}

static void test_realloc_keeps_contents(void)
{
    mc_block_cache_t bc;
    mc_bc_init(&bc);
    char *p = mc_bc_realloc(&bc, NULL, 20);
    memcpy(p, "0123456789abcdefghi", 20);
    CHECK(mc_bc_realloc(&bc, p, 32) == p); /* still fits */
    p = mc_bc_realloc(&bc, p, 3000);       /* to a larger class */
    CHECK(memcmp(p, "0123456789abcdefghi", 20) == 0);
    p = mc_bc_realloc(&bc, p, 100000); /* beyond the classes */
    CHECK(memcmp(p, "0123456789abcdefghi", 20) == 0);
    p[99999] = 'z';
    p = mc_bc_realloc(&bc, p, 200000); /* large to large */
    CHECK(p[99999] == 'z' && memcmp(p, "0123", 4) == 0);
    p = mc_bc_realloc(&bc, p, 64); /* back into a class */
    CHECK(memcmp(p, "0123456789abcdefghi", 20) == 0);
    mc_bc_free(&bc, p);
    mc_bc_destroy(&bc);
}

static void test_cache_is_bounded_and_trimmed(void)
{
    mc_block_cache_t bc;
    mc_bc_init(&bc);
    enum { N = 600 };
    static void *blocks[N];
    for (int i = 0; i < N; i++)
        blocks[i] = mc_bc_alloc(&bc, 4096);
    for (int i = 0; i < N; i++)
        mc_bc_free(&bc, blocks[i]);
    CHECK(bc.len[8] == (MC_BC_CLASS_BYTES + 4111) / 4112); /* 4 KiB + header each; the rest went to free(3) */
    CHECK(mc_bc_trim(&bc, 0) == 0);              /* first period: nothing known idle */
    void *x = mc_bc_alloc(&bc, 4000);             /* one in use during this period */
    CHECK(mc_bc_trim(&bc, 0) > 0);               /* the untouched ones go */
    CHECK(bc.len[8] == 0);
    mc_bc_free(&bc, x);
    CHECK(bc.len[8] == 1);
    CHECK(mc_bc_trim(&bc, 1) > 0);
    CHECK(bc.len[8] == 0);
    mc_bc_destroy(&bc);
}

int main(void)
{
    test_reuse_by_class();
    test_realloc_keeps_contents();
    test_cache_is_bounded_and_trimmed();
    CHECK_DONE();
}
