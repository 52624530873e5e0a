/* The embedders' pickers: every policy over route/picker.c, weights changed
 * in place, health marks, the ring rebuilt; bad arguments refused. */
#include <string.h>

#include "check.h"
#include "meshcore/balancer.h"
#include "meshcore/primitives.h"

int main(void)
{
    char err[128];
    const char *names[] = {"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"};
    uint32_t w[] = {90, 10, 0};
    mc_prim_picker_t *p = mc_prim_picker_new(MC_LB_ROUND_ROBIN, 2, w, names, 0, 0, 1, err, sizeof(err));
    CHECK(p != NULL);
    int count[2] = {0, 0};
    for (int i = 0; i < 100; i++)
        count[mc_prim_picker_pick(p, 0, 0)]++;
    CHECK_EQ(count[0], 90);
    CHECK_EQ(count[1], 10);
    uint32_t even[] = {1, 1};
    CHECK_EQ(mc_prim_picker_set_weights(p, even, err, sizeof(err)), 0);
    mc_prim_picker_set_healthy(p, 0, 0);
    for (int i = 0; i < 10; i++)
        CHECK_EQ(mc_prim_picker_pick(p, 0, 0), 1);
    mc_prim_picker_set_healthy(p, 1, 0); /* all down: both are candidates again */
    int seen[2] = {0, 0};
    for (int i = 0; i < 10; i++)
        seen[mc_prim_picker_pick(p, 0, 0)] = 1;
    CHECK(seen[0] && seen[1]);
    uint32_t zero[] = {0, 0};
    CHECK_EQ(mc_prim_picker_set_weights(p, zero, err, sizeof(err)), -1);
    mc_prim_picker_free(p);

    uint32_t ones[] = {1, 1, 1};
    p = mc_prim_picker_new(MC_LB_RING_HASH, 3, ones, names, 64, 1024, 1, err, sizeof(err));
    CHECK(p != NULL);
    uint64_t h = mc_prim_hash("user-1", 6);
    uint32_t home = mc_prim_picker_pick(p, 1, h);
    for (int i = 0; i < 10; i++)
        CHECK_EQ(mc_prim_picker_pick(p, 1, h), home);
    uint32_t heavier[] = {1, 5, 1};
    CHECK_EQ(mc_prim_picker_set_weights(p, heavier, err, sizeof(err)), 0); /* the ring rebuilt */
    CHECK(mc_prim_picker_pick(p, 1, h) < 3);
    mc_prim_picker_free(p);

    p = mc_prim_picker_new(MC_LB_LEAST_REQUEST, 2, ones, names, 0, 0, 7, err, sizeof(err));
    CHECK(p != NULL);
    mc_prim_picker_add_active(p, 0, 5);
    CHECK_EQ(mc_prim_picker_active(p, 0), 5);
    mc_prim_picker_add_active(p, 0, -9);
    CHECK_EQ(mc_prim_picker_active(p, 0), 0);
    mc_prim_picker_free(p);

    CHECK(mc_prim_picker_new(MC_LB_ROUND_ROBIN, 0, w, names, 0, 0, 1, err, sizeof(err)) == NULL);
    CHECK(mc_prim_picker_new(MC_LB_RING_HASH, 3, w, names, 0, 0, 1, err, sizeof(err)) == NULL); /* a 0 weight */
    CHECK(strstr(err, "at least 1") != NULL);
    CHECK(mc_prim_picker_new(MC_LB_RING_HASH, 2, ones, names, 100, 10, 1, err, sizeof(err)) == NULL);
    CHECK(mc_prim_picker_new(9, 2, ones, names, 0, 0, 1, err, sizeof(err)) == NULL);
    CHECK_DONE();
}
