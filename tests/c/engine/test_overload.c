/*
 * The overload manager's sampler (engine/overload.c) through its public
 * entry points: Envoy's injected_resource monitor read from a real file,
 * threshold and scaled triggers, failed updates, reconfiguration and the
 * sampler thread's lifetime (run under ASan by `make test-asan`).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "meshcore/engine.h"
#include "meshcore/overload.h"

static char path[64];

static void set_pressure(const char *text)
{
    char tmp[80];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    CHECK(f != NULL);
    fputs(text, f);
    fclose(f);
    CHECK_EQ(rename(tmp, path), 0);
}

static double pressure(mc_engine_t *e, uint32_t i, uint64_t *failed)
{
    double p = -2;
    CHECK_EQ(mc_engine_overload_monitor(e, i, &p, failed), 0);
    return p;
}

int main(void)
{
    snprintf(path, sizeof(path), "/tmp/mc_test_overload_%d", (int)getpid());
    char err[256];
    mc_engine_opts_t o;
    mc_engine_opts_default(&o);
    o.concurrency = 2;
    mc_engine_t *e = mc_engine_new(&o, err, sizeof(err));
    CHECK(e != NULL);
    CHECK_EQ(mc_engine_start(e, err, sizeof(err)), 0);
    CHECK_EQ(mc_engine_overload_action(e, MC_OA_STOP_ACCEPTING_REQUESTS), 0.0); /* nothing configured */
    CHECK(mc_engine_overload_monitor(e, 0, &(double){0}, &(uint64_t){0}) < 0);

    set_pressure("0.5\n");
    mc_om_monitor_t mons[] = {
        {.name = "envoy.resource_monitors.injected_resource", .kind = MC_OM_INJECTED, .path = path},
        {.name = "envoy.resource_monitors.fixed_heap", .kind = MC_OM_FIXED_HEAP, .max = 1ull << 40},
    };
    mc_om_trigger_t trig[] = {
        {.action = MC_OA_STOP_ACCEPTING_REQUESTS, .monitor = 0, .lo = 0.9},
        {.action = MC_OA_DISABLE_HTTP_KEEPALIVE, .monitor = 0, .scaled = 1, .lo = 0.4, .hi = 0.8},
        {.action = MC_OA_SHRINK_HEAP, .monitor = 1, .lo = 0.99}, /* a terabyte: never */
        {.action = MC_OA_SHRINK_HEAP, .monitor = 0, .lo = 0.95}, /* the highest trigger wins */
    };
    CHECK_EQ(mc_engine_set_overload(e, 3600 * 1000, mons, 2, trig, 4, err, sizeof(err)), 0);
    uint64_t failed = 9;
    CHECK_EQ(pressure(e, 0, &failed), 0.5); /* sampled at once, not after the hour */
    CHECK_EQ(failed, 0);
    CHECK_EQ(mc_engine_overload_action(e, MC_OA_STOP_ACCEPTING_REQUESTS), 0.0);
    double v = mc_engine_overload_action(e, MC_OA_DISABLE_HTTP_KEEPALIVE);
    CHECK(v > 0.24 && v < 0.26); /* (0.5 - 0.4) / (0.8 - 0.4) */
    CHECK(pressure(e, 1, &failed) >= 0 && pressure(e, 1, &failed) < 0.01);

    set_pressure("0.96");
    mc_engine_overload_sample(e);
    CHECK_EQ(mc_engine_overload_action(e, MC_OA_STOP_ACCEPTING_REQUESTS), 1.0);
    CHECK_EQ(mc_engine_overload_action(e, MC_OA_DISABLE_HTTP_KEEPALIVE), 1.0);
    CHECK_EQ(mc_engine_overload_action(e, MC_OA_SHRINK_HEAP), 1.0);

    /* A bad file is a failed update; the last good pressure stays. */
    const char *bad[] = {"", "1.5", "-0.1", "0.3x", "nan"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        set_pressure(bad[i]);
        mc_engine_overload_sample(e);
    }
    unlink(path);
    mc_engine_overload_sample(e);
    CHECK_EQ(pressure(e, 0, &failed), 0.96);
    CHECK_EQ(failed, 6);
    CHECK_EQ(mc_engine_overload_action(e, MC_OA_STOP_ACCEPTING_REQUESTS), 1.0);

    /* Refused: a trigger on no monitor, thresholds out of order, no filename. */
    mc_om_trigger_t stray = {.action = MC_OA_SHRINK_HEAP, .monitor = 2, .lo = 0.5};
    CHECK(mc_engine_set_overload(e, 1000, mons, 2, &stray, 1, err, sizeof(err)) < 0);
    CHECK(strstr(err, "trigger 0") != NULL);
    mc_om_trigger_t backwards = {.action = MC_OA_SHRINK_HEAP, .monitor = 0, .scaled = 1, .lo = 0.8, .hi = 0.5};
    CHECK(mc_engine_set_overload(e, 1000, mons, 2, &backwards, 1, err, sizeof(err)) < 0);
    mc_om_monitor_t nofile = {.name = "envoy.resource_monitors.injected_resource", .kind = MC_OM_INJECTED};
    CHECK(mc_engine_set_overload(e, 1000, &nofile, 1, NULL, 0, err, sizeof(err)) < 0);
    CHECK(strstr(err, "resource_monitors[0]") != NULL);
    CHECK_EQ(mc_engine_overload_action(e, MC_OA_STOP_ACCEPTING_REQUESTS), 1.0); /* the running config stays */

    /* No monitors: the sampler stops, every action is off. */
    CHECK_EQ(mc_engine_set_overload(e, 0, NULL, 0, NULL, 0, err, sizeof(err)), 0);
    CHECK_EQ(mc_engine_overload_action(e, MC_OA_STOP_ACCEPTING_REQUESTS), 0.0);
    CHECK(mc_engine_overload_monitor(e, 0, &(double){0}, &failed) < 0);

    /* A running sampler (1 ms) is stopped by mc_engine_free. */
    set_pressure("1");
    mc_om_trigger_t stop_cx = {.action = MC_OA_STOP_ACCEPTING_CONNECTIONS, .monitor = 0, .lo = 0.5};
    CHECK_EQ(mc_engine_set_overload(e, 1, mons, 1, &stop_cx, 1, err, sizeof(err)), 0);
    usleep(20 * 1000);
    set_pressure("0");
    usleep(20 * 1000);
    unlink(path);
    mc_engine_free(e);
    CHECK_DONE();
}
