/*
 * core/pool.h: the slab-backed fixed-size object pool.
 *
 * Objects handed out are zeroed, 16-byte aligned and never overlap; put/get
 * recycles without new slabs; max_objs bounds the pool; destroy frees every
 * slab even with objects still out (LeakSanitizer checks under make
 * test-asan).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/pool.h"

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;
    return x < y ? -1 : x > y;
}

static int all_zero(const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        if (c[i])
            return 0;
    return 1;
}

/* Objects are pairwise distinct and at least `size` bytes apart. */
static int disjoint(void **objs, uint32_t n, size_t size)
{
    void **sorted = malloc(sizeof(*sorted) * n);
    if (!sorted)
        return 0;
    memcpy(sorted, objs, sizeof(*sorted) * n);
    qsort(sorted, n, sizeof(*sorted), cmp_ptr);
    int ok = 1;
    for (uint32_t i = 1; i < n; i++)
        if ((uintptr_t)sorted[i] - (uintptr_t)sorted[i - 1] < size)
            ok = 0;
    free(sorted);
    return ok;
}

static void test_get_zeroed_distinct_aligned(void)
{
    enum { N = 100, SIZE = 40 };
    void *objs[N];
    mc_pool_t p;
    mc_pool_init(&p, SIZE, 8, 0);
    CHECK(p.obj_size >= SIZE);
    CHECK_EQ(p.obj_size % 16, 0);
    for (uint32_t i = 0; i < N; i++) {
        objs[i] = mc_pool_get(&p);
        CHECK(objs[i] != NULL);
        if (!objs[i])
            return;
        CHECK_EQ((uintptr_t)objs[i] % 16, 0);
        CHECK(all_zero(objs[i], SIZE));
        memset(objs[i], 0xA0 + (int)(i % 16), SIZE); /* dirty for the reuse check */
    }
    CHECK_EQ(p.in_use, N);
    CHECK(p.n_objs >= N);
    CHECK(disjoint(objs, N, SIZE));
    /* Writes to one object did not clobber another. */
    for (uint32_t i = 0; i < N; i++) {
        unsigned char *c = objs[i];
        CHECK(c[0] == 0xA0 + i % 16 && c[SIZE - 1] == 0xA0 + i % 16);
    }

    /* LIFO reuse of a single object, zeroed again. */
    void *x = objs[N - 1];
    mc_pool_put(&p, x);
    CHECK_EQ(p.in_use, N - 1);
    void *y = mc_pool_get(&p);
    CHECK(y == x);
    CHECK(all_zero(y, SIZE));
    memset(y, 0xEE, SIZE);

    /* Put back every other object; getting as many again reuses exactly
     * those (no new slab) and each comes back zeroed. */
    uint32_t n_objs = p.n_objs, n_slabs = p.n_slabs;
    void *back[N / 2];
    for (uint32_t i = 0; i < N / 2; i++) {
        back[i] = objs[2 * i];
        mc_pool_put(&p, objs[2 * i]);
    }
    CHECK_EQ(p.in_use, N - N / 2);
    void *again[N / 2];
    for (uint32_t i = 0; i < N / 2; i++) {
        again[i] = mc_pool_get(&p);
        CHECK(again[i] != NULL);
        if (!again[i])
            return;
        CHECK(all_zero(again[i], SIZE));
    }
    CHECK_EQ(p.n_objs, n_objs);
    CHECK_EQ(p.n_slabs, n_slabs);
    CHECK_EQ(p.in_use, N);
    /* The free list is LIFO: the last N/2 puts come back first, so every
     * object we got is one we put (the slab's spare objects sit behind). */
    uint32_t reused = 0;
    qsort(back, N / 2, sizeof(void *), cmp_ptr);
    for (uint32_t i = 0; i < N / 2; i++)
        if (bsearch(&again[i], back, N / 2, sizeof(void *), cmp_ptr))
            reused++;
    CHECK_EQ(reused, N / 2);
    for (uint32_t i = 0; i < N / 2; i++)
        objs[2 * i] = again[i];
    CHECK(disjoint(objs, N, SIZE));

    mc_pool_destroy(&p); /* with every object still out */
    CHECK(p.slabs == NULL);
    CHECK_EQ(p.n_slabs, 0);
    CHECK_EQ(p.in_use, 0);
}

static void test_max_objs(void)
{
    mc_pool_t p;

    /* max_objs not a multiple of per_slab: the last slab is short. */
    mc_pool_init(&p, 24, 4, 10);
    void *objs[10];
    for (uint32_t i = 0; i < 10; i++) {
        objs[i] = mc_pool_get(&p);
        CHECK(objs[i] != NULL);
    }
    CHECK(mc_pool_get(&p) == NULL);
    CHECK(mc_pool_get(&p) == NULL); /* and stays NULL */
    CHECK_EQ(p.n_objs, 10);
    CHECK_EQ(p.in_use, 10);
    CHECK(disjoint(objs, 10, 24));
    mc_pool_put(&p, objs[3]);
    void *again = mc_pool_get(&p);
    CHECK(again == objs[3]);
    CHECK(mc_pool_get(&p) == NULL);
    CHECK_EQ(p.n_objs, 10);
    mc_pool_destroy(&p);

    /* max_objs smaller than one slab. */
    mc_pool_init(&p, 8, 64, 3);
    void *a = mc_pool_get(&p), *b = mc_pool_get(&p), *c = mc_pool_get(&p);
    CHECK(a && b && c && a != b && b != c && a != c);
    CHECK(mc_pool_get(&p) == NULL);
    CHECK_EQ(p.n_objs, 3);
    mc_pool_destroy(&p);

    /* max_objs == per_slab exactly. */
    mc_pool_init(&p, 32, 5, 5);
    for (uint32_t i = 0; i < 5; i++)
        CHECK(mc_pool_get(&p) != NULL);
    CHECK(mc_pool_get(&p) == NULL);
    CHECK_EQ(p.n_slabs, 1);
    mc_pool_destroy(&p);
}

/* Objects smaller than a free-list pointer still work and never overlap. */
static void test_tiny(size_t size)
{
    enum { N = 300 };
    void *objs[N];
    mc_pool_t p;
    mc_pool_init(&p, size, 7, 0);
    CHECK(p.obj_size >= sizeof(void *));
    CHECK_EQ(p.obj_size % 16, 0);
    for (uint32_t i = 0; i < N; i++) {
        objs[i] = mc_pool_get(&p);
        CHECK(objs[i] != NULL);
        if (!objs[i])
            return;
        CHECK_EQ((uintptr_t)objs[i] % 16, 0);
        CHECK(all_zero(objs[i], size));
        memset(objs[i], (int)(i & 0xff), size);
    }
    CHECK(disjoint(objs, N, size));
    for (uint32_t i = 0; i < N; i++) {
        unsigned char *c = objs[i];
        for (size_t k = 0; k < size; k++)
            CHECK_EQ(c[k], i & 0xff);
    }
    /* Cycle everything through the free list twice. */
    for (int round = 0; round < 2; round++) {
        for (uint32_t i = 0; i < N; i++)
            mc_pool_put(&p, objs[i]);
        CHECK_EQ(p.in_use, 0);
        uint32_t n_objs = p.n_objs;
        for (uint32_t i = 0; i < N; i++) {
            objs[i] = mc_pool_get(&p);
            CHECK(objs[i] != NULL && all_zero(objs[i], size));
        }
        CHECK_EQ(p.n_objs, n_objs);
        CHECK(disjoint(objs, N, size));
    }
    /* Destroy with half the objects returned, half still out. */
    for (uint32_t i = 0; i < N / 2; i++)
        mc_pool_put(&p, objs[i]);
    mc_pool_destroy(&p);
}

static void test_defaults_and_reinit(void)
{
    mc_pool_t p;
    mc_pool_init(&p, 100, 0, 0);
    CHECK_EQ(p.per_slab, 64); /* 0 = default slab size */
    CHECK_EQ(p.obj_size, 112);
    /* Grow through several slabs so the slab array itself reallocates. */
    for (uint32_t i = 0; i < 64 * 20; i++)
        CHECK(mc_pool_get(&p) != NULL);
    CHECK_EQ(p.n_slabs, 20);
    CHECK(p.slab_cap >= 20);
    mc_pool_destroy(&p);

    /* Destroy of a pool that never allocated, then reuse after destroy. */
    mc_pool_init(&p, 16, 4, 0);
    mc_pool_destroy(&p);
    mc_pool_init(&p, 16, 4, 0);
    void *o = mc_pool_get(&p);
    CHECK(o != NULL);
    mc_pool_put(&p, o);
    mc_pool_destroy(&p);
}

/* After a flood, wholly free slabs go back; slabs with a live object stay,
 * and so do `keep` free objects; the pool works as before afterwards. */
static void test_trim(void)
{
    mc_pool_t p;
    mc_pool_init(&p, 48, 8, 0);
    void *o[80];
    for (int i = 0; i < 80; i++)
        o[i] = mc_pool_get(&p);
    CHECK_EQ(p.n_slabs, 10);
    CHECK_EQ(mc_pool_trim(&p, 0), 0); /* nothing is free */
    /* Free all but one object in slab 2 (objects 16..23) and everything from 40 on. */
    for (int i = 0; i < 80; i++)
        if (i != 17 && (i < 8 || i >= 16) && i >= 16 && (i < 24 || i >= 40))
            mc_pool_put(&p, o[i]);
    /* free: 16,18..23 (slab 2 partly) and 40..79 (slabs 5..9 wholly) = 47 */
    CHECK_EQ(p.n_objs - p.in_use, 47);
    size_t freed = mc_pool_trim(&p, 8); /* keep a slab's worth */
    CHECK_EQ(freed, 4 * 8 * 48);
    CHECK_EQ(p.n_slabs, 6);
    CHECK_EQ(p.n_objs - p.in_use, 15);
    uint32_t listed = 0;
    for (void *f = p.free_list; f; f = *(void **)f)
        listed++;
    CHECK_EQ(listed, 15);
    /* Live objects are untouched and the pool grows again. */
    memset(o[17], 0x5a, 48);
    for (int i = 0; i < 40; i++)
        CHECK(mc_pool_get(&p) != NULL);
    CHECK_EQ(p.in_use, 33 + 40);
    mc_pool_destroy(&p);
}

int main(void)
{
    test_trim();
    test_get_zeroed_distinct_aligned();
    test_max_objs();
    test_tiny(1);
    test_tiny(8);
    test_defaults_and_reinit();
    CHECK_DONE();
}
