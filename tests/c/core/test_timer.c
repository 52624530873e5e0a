/*
 * core/timer.h: the per-worker min-heap of timers.
 *
 * Every mutation is followed by a full heap check (parent <= child, each
 * timer's slot is its index), and the randomized parts are compared with a
 * plain reference model, so a broken sift shows up at the operation that
 * broke it rather than as a late misordered fire.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/timer.h"
#include "meshcore/rand.h"

typedef struct tt {
    mc_timer_t timer; /* first member: the callback casts back */
    uint32_t id;
    uint32_t fired;
} tt_t;

/* Log of fired timers, in firing order. */
#define LOG_MAX 8192
static uint32_t log_id[LOG_MAX];
static uint64_t log_deadline[LOG_MAX];
static uint32_t log_len;

static void log_reset(void)
{
    log_len = 0;
}

static void on_fire(mc_timer_t *t)
{
    tt_t *x = (tt_t *)t;
    x->fired++;
    CHECK(!mc_timer_armed(t)); /* disarmed before its callback runs */
    if (log_len < LOG_MAX) {
        log_id[log_len] = x->id;
        log_deadline[log_len] = t->deadline;
        log_len++;
    }
}

/* Returns 1 when the heap is a valid min-heap whose slots are consistent. */
static int heap_ok(const mc_timer_heap_t *h)
{
    if (h->len > h->cap)
        return 0;
    for (uint32_t i = 0; i < h->len; i++) {
        if (h->items[i]->slot != i)
            return 0;
        if (i > 0 && h->items[(i - 1) / 2]->deadline > h->items[i]->deadline)
            return 0;
    }
    return 1;
}

static void test_empty(void)
{
    mc_timer_heap_t h;
    CHECK_EQ(mc_timer_heap_init(&h, 0), 0);
    CHECK_EQ(h.cap, 64); /* 0 means the default */
    CHECK_EQ(h.len, 0);
    CHECK(mc_timer_next(&h) == UINT64_MAX);
    CHECK_EQ(mc_timer_run(&h, UINT64_MAX), 0);

    tt_t a = {.id = 1};
    mc_timer_init(&a.timer, on_fire);
    CHECK(!mc_timer_armed(&a.timer));
    mc_timer_cancel(&h, &a.timer); /* cancel of an unarmed timer is a no-op */
    CHECK_EQ(h.len, 0);

    CHECK_EQ(mc_timer_arm(&h, &a.timer, 42), 0);
    CHECK(mc_timer_armed(&a.timer));
    CHECK(mc_timer_next(&h) == 42);
    CHECK_EQ(mc_timer_run(&h, 41), 0); /* not due yet */
    CHECK_EQ(a.fired, 0);
    CHECK_EQ(mc_timer_run(&h, 42), 1); /* deadline <= now fires */
    CHECK_EQ(a.fired, 1);
    CHECK(!mc_timer_armed(&a.timer));
    CHECK(mc_timer_next(&h) == UINT64_MAX);
    mc_timer_cancel(&h, &a.timer); /* cancel after firing is a no-op */
    CHECK_EQ(h.len, 0);
    mc_timer_heap_free(&h);
    CHECK(h.items == NULL);
}

/* Many timers at random deadlines, with ties, fire in deadline order. */
static void test_random_order(void)
{
    enum { N = 3000 };
    static tt_t ts[N];
    mc_timer_heap_t h;
    mc_rand_t r;
    mc_rand_seed(&r, 12345);
    CHECK_EQ(mc_timer_heap_init(&h, 16), 0);

    uint64_t min = UINT64_MAX, max = 0;
    for (uint32_t i = 0; i < N; i++) {
        ts[i] = (tt_t){.id = i};
        mc_timer_init(&ts[i].timer, on_fire);
        uint64_t d = 1000 + mc_rand_below(&r, 5000); /* ~N/5000 ties per value */
        CHECK_EQ(mc_timer_arm(&h, &ts[i].timer, d), 0);
        if (d < min)
            min = d;
        if (d > max)
            max = d;
    }
    CHECK_EQ(h.len, N);
    CHECK(heap_ok(&h));
    CHECK(mc_timer_next(&h) == min);

    /* Advance time in uneven steps; each run fires exactly what is due. */
    log_reset();
    uint64_t now = 0;
    uint32_t total = 0;
    while (h.len) {
        now += 1 + mc_rand_below(&r, 97);
        uint32_t before = log_len;
        uint32_t fired = mc_timer_run(&h, now);
        CHECK_EQ(fired, log_len - before);
        total += fired;
        CHECK(heap_ok(&h));
        CHECK(mc_timer_next(&h) > now);
        for (uint32_t k = before; k < log_len; k++)
            CHECK(log_deadline[k] <= now);
    }
    CHECK_EQ(total, N);
    CHECK_EQ(log_len, N);
    CHECK(now >= max);
    for (uint32_t k = 1; k < log_len; k++)
        CHECK(log_deadline[k - 1] <= log_deadline[k]);
    for (uint32_t i = 0; i < N; i++) {
        CHECK_EQ(ts[i].fired, 1);
        CHECK(!mc_timer_armed(&ts[i].timer));
        CHECK(log_deadline[0] <= ts[i].timer.deadline);
    }
    mc_timer_heap_free(&h);
}

/* Arms ids 0..n-1 at the given deadlines. */
static void arm_all(mc_timer_heap_t *h, tt_t *ts, const uint64_t *d, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        ts[i] = (tt_t){.id = i};
        mc_timer_init(&ts[i].timer, on_fire);
        CHECK_EQ(mc_timer_arm(h, &ts[i].timer, d[i]), 0);
    }
    CHECK(heap_ok(h));
}

/* Fires everything and checks the order is by deadline. */
static void drain_sorted(mc_timer_heap_t *h)
{
    log_reset();
    mc_timer_run(h, UINT64_MAX);
    CHECK_EQ(h->len, 0);
    for (uint32_t k = 1; k < log_len; k++)
        CHECK(log_deadline[k - 1] <= log_deadline[k]);
}

static void test_cancel_positions(void)
{
    static const uint64_t d[] = {50, 10, 90, 30, 70, 20, 80, 40, 60, 100, 15, 25};
    enum { N = sizeof(d) / sizeof(d[0]) };
    tt_t ts[N];
    mc_timer_heap_t h;
    CHECK_EQ(mc_timer_heap_init(&h, 4), 0);

    /* Root. */
    arm_all(&h, ts, d, N);
    mc_timer_t *root = h.items[0];
    CHECK(root->deadline == 10);
    mc_timer_cancel(&h, root);
    CHECK(!mc_timer_armed(root));
    CHECK_EQ(h.len, N - 1);
    CHECK(heap_ok(&h));
    CHECK(mc_timer_next(&h) == 15);
    drain_sorted(&h);
    CHECK_EQ(log_len, N - 1);
    CHECK_EQ(((tt_t *)root)->fired, 0);

    /* Last slot: removal without any sift. */
    arm_all(&h, ts, d, N);
    mc_timer_t *last = h.items[h.len - 1];
    mc_timer_cancel(&h, last);
    CHECK(!mc_timer_armed(last));
    CHECK_EQ(h.len, N - 1);
    CHECK(heap_ok(&h));
    drain_sorted(&h);
    CHECK_EQ(log_len, N - 1);
    CHECK_EQ(((tt_t *)last)->fired, 0);

    /* Every middle slot in turn (each one a fresh heap). */
    for (uint32_t slot = 1; slot + 1 < N; slot++) {
        arm_all(&h, ts, d, N);
        mc_timer_t *mid = h.items[slot];
        mc_timer_cancel(&h, mid);
        CHECK(!mc_timer_armed(mid));
        CHECK_EQ(h.len, N - 1);
        CHECK(heap_ok(&h));
        drain_sorted(&h);
        CHECK_EQ(log_len, N - 1);
        CHECK_EQ(((tt_t *)mid)->fired, 0);
    }

    /* Middle removal whose replacement (the last item) must sift UP: the
     * left subtree holds large deadlines, the last item in the right
     * subtree is small. Heap by construction:
     *          1
     *      100    2
     *    101 102 3 4          cancel slot 3 (101): last item 4 moves there,
     *                         and 4 < its new parent 100. */
    static const uint64_t up[] = {1, 100, 2, 101, 102, 3, 4};
    tt_t tu[7];
    arm_all(&h, tu, up, 7);
    for (uint32_t i = 0; i < 7; i++)
        CHECK(h.items[i]->deadline == up[i]); /* already heap-ordered: no moves */
    mc_timer_cancel(&h, &tu[3].timer);
    CHECK(heap_ok(&h));
    CHECK(h.items[1]->deadline == 4);
    drain_sorted(&h);
    CHECK_EQ(log_len, 6);
    CHECK_EQ(tu[3].fired, 0);

    mc_timer_heap_free(&h);
}

static void test_rearm(void)
{
    tt_t a, b, c;
    mc_timer_heap_t h;
    CHECK_EQ(mc_timer_heap_init(&h, 4), 0);
    tt_t *all[] = {&a, &b, &c};
    for (uint32_t i = 0; i < 3; i++) {
        *all[i] = (tt_t){.id = i};
        mc_timer_init(&all[i]->timer, on_fire);
    }
    CHECK_EQ(mc_timer_arm(&h, &a.timer, 100), 0);
    CHECK_EQ(mc_timer_arm(&h, &b.timer, 200), 0);
    CHECK_EQ(mc_timer_arm(&h, &c.timer, 300), 0);
    CHECK(mc_timer_next(&h) == 100);

    /* Earlier: c jumps to the front; the heap does not grow. */
    CHECK_EQ(mc_timer_arm(&h, &c.timer, 50), 0);
    CHECK_EQ(h.len, 3);
    CHECK(heap_ok(&h));
    CHECK(mc_timer_next(&h) == 50);
    CHECK(h.items[0] == &c.timer);

    /* Later: a moves behind b. */
    CHECK_EQ(mc_timer_arm(&h, &a.timer, 400), 0);
    CHECK_EQ(h.len, 3);
    CHECK(heap_ok(&h));

    /* Same deadline again: a no-op move. */
    CHECK_EQ(mc_timer_arm(&h, &b.timer, 200), 0);
    CHECK(heap_ok(&h));

    log_reset();
    CHECK_EQ(mc_timer_run(&h, 250), 2);
    CHECK_EQ(log_len, 2);
    CHECK_EQ(log_id[0], 2); /* c @ 50 */
    CHECK_EQ(log_id[1], 1); /* b @ 200 */
    CHECK_EQ(a.fired, 0);
    CHECK(mc_timer_next(&h) == 400);

    /* Later then earlier again, on the root. */
    CHECK_EQ(mc_timer_arm(&h, &a.timer, 1000), 0);
    CHECK(mc_timer_next(&h) == 1000);
    CHECK_EQ(mc_timer_arm(&h, &a.timer, 260), 0);
    CHECK(mc_timer_next(&h) == 260);
    CHECK_EQ(mc_timer_run(&h, 260), 1);
    CHECK_EQ(a.fired, 1);
    CHECK_EQ(b.fired, 1);
    CHECK_EQ(c.fired, 1);
    mc_timer_heap_free(&h);
}

/* Random arm / re-arm / cancel against a reference model, heap checked
 * after every step; then everything drains in order. */
static void test_random_ops(void)
{
    enum { N = 257, OPS = 20000 };
    static tt_t ts[N];
    static uint64_t ref_deadline[N];
    static int ref_armed[N];
    mc_timer_heap_t h;
    mc_rand_t r;
    mc_rand_seed(&r, 0xC0FFEE);
    CHECK_EQ(mc_timer_heap_init(&h, 1), 0);
    for (uint32_t i = 0; i < N; i++) {
        ts[i] = (tt_t){.id = i};
        mc_timer_init(&ts[i].timer, on_fire);
        ref_armed[i] = 0;
    }
    int bad = 0;
    for (uint32_t op = 0; op < OPS && !bad; op++) {
        uint32_t i = (uint32_t)mc_rand_below(&r, N);
        if (mc_rand_below(&r, 3) == 0) {
            mc_timer_cancel(&h, &ts[i].timer);
            ref_armed[i] = 0;
        } else {
            uint64_t d = mc_rand_below(&r, 1000);
            if (mc_timer_arm(&h, &ts[i].timer, d) != 0)
                bad = 1;
            ref_armed[i] = 1;
            ref_deadline[i] = d;
        }
        uint32_t n = 0;
        uint64_t min = UINT64_MAX;
        for (uint32_t k = 0; k < N; k++) {
            if (ref_armed[k]) {
                n++;
                if (ref_deadline[k] < min)
                    min = ref_deadline[k];
            }
            if (mc_timer_armed(&ts[k].timer) != ref_armed[k])
                bad = 1;
        }
        if (h.len != n || mc_timer_next(&h) != min || !heap_ok(&h))
            bad = 1;
    }
    CHECK(!bad);

    log_reset();
    uint32_t armed = h.len;
    CHECK_EQ(mc_timer_run(&h, UINT64_MAX), armed);
    for (uint32_t k = 1; k < log_len; k++)
        CHECK(log_deadline[k - 1] <= log_deadline[k]);
    for (uint32_t k = 0; k < log_len; k++) {
        CHECK(ref_armed[log_id[k]]);
        CHECK(log_deadline[k] == ref_deadline[log_id[k]]);
    }
    mc_timer_heap_free(&h);
}

/* Callbacks that arm or cancel other timers from inside mc_timer_run. */
static mc_timer_heap_t *cb_heap;
static tt_t cb_t[8];
static uint64_t cb_now;

static void cb_arm_others(mc_timer_t *t)
{
    on_fire(t);
    /* Due now: must fire in this same run. */
    CHECK_EQ(mc_timer_arm(cb_heap, &cb_t[1].timer, cb_now), 0);
    /* Due later: must not fire in this run. */
    CHECK_EQ(mc_timer_arm(cb_heap, &cb_t[2].timer, cb_now + 100), 0);
    /* Already armed and due: pushed into the future, must not fire now. */
    CHECK_EQ(mc_timer_arm(cb_heap, &cb_t[3].timer, cb_now + 50), 0);
}

static void cb_cancel_other(mc_timer_t *t)
{
    on_fire(t);
    mc_timer_cancel(cb_heap, &cb_t[5].timer); /* due in this run too */
}

static void cb_periodic(mc_timer_t *t)
{
    on_fire(t);
    /* Re-arm itself for the next period: fires once per run. */
    CHECK_EQ(mc_timer_arm(cb_heap, t, t->deadline + 10), 0);
}

static void test_callbacks(void)
{
    mc_timer_heap_t h;
    CHECK_EQ(mc_timer_heap_init(&h, 2), 0);
    cb_heap = &h;
    for (uint32_t i = 0; i < 8; i++) {
        cb_t[i] = (tt_t){.id = i};
        mc_timer_init(&cb_t[i].timer, on_fire);
    }
    cb_t[0].timer.cb = cb_arm_others;
    cb_t[4].timer.cb = cb_cancel_other;
    cb_t[6].timer.cb = cb_periodic;

    /* Arming from a callback. */
    cb_now = 100;
    CHECK_EQ(mc_timer_arm(&h, &cb_t[0].timer, 10), 0);
    CHECK_EQ(mc_timer_arm(&h, &cb_t[3].timer, 20), 0);
    log_reset();
    CHECK_EQ(mc_timer_run(&h, cb_now), 2); /* t0, then t1 armed by t0 */
    CHECK_EQ(log_len, 2);
    CHECK_EQ(log_id[0], 0);
    CHECK_EQ(log_id[1], 1);
    CHECK_EQ(cb_t[2].fired, 0);
    CHECK_EQ(cb_t[3].fired, 0);
    CHECK(mc_timer_armed(&cb_t[2].timer));
    CHECK(mc_timer_armed(&cb_t[3].timer));
    CHECK(mc_timer_next(&h) == 150);
    CHECK(heap_ok(&h));
    log_reset();
    CHECK_EQ(mc_timer_run(&h, 200), 2);
    CHECK_EQ(log_id[0], 3);
    CHECK_EQ(log_id[1], 2);
    CHECK_EQ(h.len, 0);

    /* Cancelling another due timer from a callback. */
    CHECK_EQ(mc_timer_arm(&h, &cb_t[4].timer, 300), 0);
    CHECK_EQ(mc_timer_arm(&h, &cb_t[5].timer, 301), 0);
    CHECK_EQ(mc_timer_arm(&h, &cb_t[7].timer, 302), 0);
    log_reset();
    CHECK_EQ(mc_timer_run(&h, 400), 2); /* t4 and t7; t5 cancelled by t4 */
    CHECK_EQ(log_len, 2);
    CHECK_EQ(log_id[0], 4);
    CHECK_EQ(log_id[1], 7);
    CHECK_EQ(cb_t[5].fired, 0);
    CHECK(!mc_timer_armed(&cb_t[5].timer));
    CHECK_EQ(h.len, 0);

    /* Self re-arming (periodic): one fire per run, deadline advances. */
    CHECK_EQ(mc_timer_arm(&h, &cb_t[6].timer, 1000), 0);
    for (uint32_t k = 0; k < 5; k++) {
        CHECK_EQ(mc_timer_run(&h, 1000 + 10 * k), 1);
        CHECK(mc_timer_next(&h) == 1000 + 10 * (k + 1));
    }
    CHECK_EQ(cb_t[6].fired, 5);
    mc_timer_cancel(&h, &cb_t[6].timer);
    CHECK_EQ(h.len, 0);
    mc_timer_heap_free(&h);
}

/* The heap array grows past its initial capacity and keeps working. */
static void test_growth(void)
{
    enum { N = 1000 };
    static tt_t ts[N];
    mc_timer_heap_t h;
    CHECK_EQ(mc_timer_heap_init(&h, 3), 0);
    CHECK_EQ(h.cap, 3);
    for (uint32_t i = 0; i < N; i++) {
        ts[i] = (tt_t){.id = i};
        mc_timer_init(&ts[i].timer, on_fire);
        /* Descending deadlines: every insert sifts to the root. */
        CHECK_EQ(mc_timer_arm(&h, &ts[i].timer, (uint64_t)(N - i) * 7), 0);
        CHECK(mc_timer_next(&h) == (uint64_t)(N - i) * 7);
    }
    CHECK_EQ(h.len, N);
    CHECK(h.cap >= N);
    CHECK(heap_ok(&h));
    uint32_t cap = h.cap;
    log_reset();
    CHECK_EQ(mc_timer_run(&h, UINT64_MAX), N);
    for (uint32_t k = 0; k < N; k++)
        CHECK_EQ(log_id[k], N - 1 - k);
    /* Re-filling to the high-water mark does not grow it again. */
    for (uint32_t i = 0; i < N; i++)
        CHECK_EQ(mc_timer_arm(&h, &ts[i].timer, i), 0);
    CHECK_EQ(h.cap, cap);
    CHECK(heap_ok(&h));
    mc_timer_heap_free(&h);
    CHECK_EQ(h.len, 0);
    CHECK_EQ(h.cap, 0);
}

int main(void)
{
    test_empty();
    test_random_order();
    test_cancel_positions();
    test_rearm();
    test_random_ops();
    test_callbacks();
    test_growth();
    CHECK_DONE();
}
