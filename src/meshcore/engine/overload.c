/*
 * The overload manager's sampler (meshcore/overload.h): one thread per
 * engine, started by the first config with resource monitors. Every
 * refresh_interval it reads each monitor, computes each action's state from
 * its triggers (the highest wins, as Envoy) and publishes the saturated
 * actions as one word in the workers' control block. Workers are woken only
 * when stop_accepting_connections changes (they must move their listeners).
 */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "engine/engine_internal.h"
#include "engine/overload.h"

#define NAME_MAX_LEN 128
#define PATH_MAX_LEN 512

typedef struct {
    char name[NAME_MAX_LEN];
    char path[PATH_MAX_LEN];
    mc_om_monitor_kind_t kind;
    uint64_t max;
    double pressure; /* -1 until sampled */
    uint64_t failed;
} om_monitor_t;

struct mc_overload {
    pthread_mutex_t lock; /* the config and the published values */
    pthread_cond_t cv;
    pthread_t thread;
    int running, quit;
    uint64_t interval_ns;
    uint64_t config; /* bumped by each mc_engine_set_overload */
    om_monitor_t monitors[MC_OM_MAX_MONITORS];
    uint32_t n_monitors;
    mc_om_trigger_t triggers[MC_OM_MAX_TRIGGERS];
    uint32_t n_triggers;
    double action[MC_OA__COUNT];
};

/* Bytes the program holds from malloc (in use, mmapped chunks included):
 * what the proxy's buffers and connections cost, and what freeing them
 * lowers. Free chunks glibc keeps are left out, as Envoy's fixed_heap
 * leaves out tcmalloc's free pages (shrink_heap gives those back). */
static int heap_in_use(uint64_t *bytes)
{
    struct mallinfo2 mi = mallinfo2();
    *bytes = (uint64_t)mi.uordblks + (uint64_t)mi.hblkhd;
    return 0;
}

/* Envoy's injected resource: the file holds one number in [0, 1]. */
static int read_injected(const char *path, double *out)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    char buf[64];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    char *end;
    errno = 0;
    double v = strtod(buf, &end);
    while (*end == ' ' || *end == '\n' || *end == '\t' || *end == '\r')
        end++;
    if (end == buf || *end || errno || !(v >= 0.0 && v <= 1.0))
        return -1;
    *out = v;
    return 0;
}

static int sample_monitor(mc_engine_t *e, const om_monitor_t *m, double *p)
{
    uint64_t used;
    switch (m->kind) {
    case MC_OM_FIXED_HEAP:
        if (heap_in_use(&used) < 0)
            return -1;
        *p = (double)used / (double)m->max;
        break;
    case MC_OM_INJECTED:
        return read_injected(m->path, p);
    case MC_OM_DOWNSTREAM_CX:
        used = (uint64_t)__atomic_load_n(&e->shared.downstream_cx, __ATOMIC_RELAXED);
        *p = (double)used / (double)m->max;
        break;
    }
    if (*p > 1.0)
        *p = 1.0;
    return 0;
}

static double trigger_value(const mc_om_trigger_t *t, double p)
{
    if (p < 0)
        return 0; /* never sampled */
    if (!t->scaled)
        return p >= t->lo ? 1.0 : 0.0;
    if (p < t->lo)
        return 0;
    if (p >= t->hi)
        return 1.0;
    return (p - t->lo) / (t->hi - t->lo);
}

/* One round; the caller holds om->lock. */
static void sample_locked(mc_engine_t *e, mc_overload_t *om)
{
    for (uint32_t i = 0; i < om->n_monitors; i++) {
        double p = 0;
        if (sample_monitor(e, &om->monitors[i], &p) == 0)
            om->monitors[i].pressure = p;
        else
            om->monitors[i].failed++; /* the last good value stays, as Envoy */
    }
    for (int a = 0; a < MC_OA__COUNT; a++)
        om->action[a] = 0;
    for (uint32_t i = 0; i < om->n_triggers; i++) {
        const mc_om_trigger_t *t = &om->triggers[i];
        double v = trigger_value(t, om->monitors[t->monitor].pressure);
        if (v > om->action[t->action])
            om->action[t->action] = v;
    }
    uint32_t word = 0;
    for (int a = 0; a < MC_OA__COUNT; a++)
        if (om->action[a] >= 1.0)
            word |= 1u << a;
    uint32_t old = __atomic_exchange_n(&e->shared.overload, word, __ATOMIC_RELAXED);
    if ((old ^ word) & (1u << MC_OA_STOP_ACCEPTING_CONNECTIONS))
        for (uint32_t i = 0; i < e->n_workers; i++)
            mc_worker_wake(e->workers[i]);
}

static void *sampler_main(void *arg)
{
    mc_engine_t *e = arg;
    mc_overload_t *om = e->om;
    pthread_setname_np(pthread_self(), "mc-overload");
    pthread_mutex_lock(&om->lock);
    while (!om->quit) { /* mc_engine_set_overload sampled already: wait first */
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        uint64_t ns = (uint64_t)until.tv_nsec + om->interval_ns;
        until.tv_sec += (time_t)(ns / 1000000000ull);
        until.tv_nsec = (long)(ns % 1000000000ull);
        uint64_t config = om->config;
        int rc = 0;
        while (!om->quit && om->config == config && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&om->cv, &om->lock, &until);
        if (rc == ETIMEDOUT && !om->quit)
            sample_locked(e, om);
        /* else a new config (sampled by its setter) restarts the wait with its interval */
    }
    pthread_mutex_unlock(&om->lock);
    return NULL;
}

static mc_overload_t *om_new(void)
{
    mc_overload_t *om = calloc(1, sizeof(*om));
    if (!om)
        return NULL;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&om->lock, NULL);
    pthread_cond_init(&om->cv, &ca);
    pthread_condattr_destroy(&ca);
    return om;
}

static void om_stop(mc_overload_t *om)
{
    pthread_mutex_lock(&om->lock);
    int running = om->running;
    om->quit = 1;
    pthread_cond_broadcast(&om->cv);
    pthread_mutex_unlock(&om->lock);
    if (running)
        pthread_join(om->thread, NULL);
    om->running = 0;
    om->quit = 0;
}

void mc_overload_free(mc_engine_t *e)
{
    mc_overload_t *om = e->om;
    if (!om)
        return;
    om_stop(om);
    pthread_cond_destroy(&om->cv);
    pthread_mutex_destroy(&om->lock);
    free(om);
    e->om = NULL;
}

static int check(const mc_om_monitor_t *monitors, uint32_t n_monitors, const mc_om_trigger_t *triggers,
                 uint32_t n_triggers, char *err, size_t errlen)
{
    if (n_monitors > MC_OM_MAX_MONITORS || n_triggers > MC_OM_MAX_TRIGGERS) {
        snprintf(err, errlen, "overload_manager: at most %d resource monitors and %d triggers", MC_OM_MAX_MONITORS,
                 MC_OM_MAX_TRIGGERS);
        return -1;
    }
    for (uint32_t i = 0; i < n_monitors; i++) {
        const mc_om_monitor_t *m = &monitors[i];
        if (!m->name || strlen(m->name) >= NAME_MAX_LEN) {
            snprintf(err, errlen, "resource_monitors[%u].name: missing or too long", i);
            return -1;
        }
        if (m->kind == MC_OM_INJECTED ? (!m->path || !m->path[0] || strlen(m->path) >= PATH_MAX_LEN) : !m->max) {
            snprintf(err, errlen, "resource_monitors[%u] (%s): %s", i, m->name,
                     m->kind == MC_OM_INJECTED ? "filename missing or too long" : "the maximum must be > 0");
            return -1;
        }
    }
    for (uint32_t i = 0; i < n_triggers; i++) {
        const mc_om_trigger_t *t = &triggers[i];
        if (t->monitor >= n_monitors || (unsigned)t->action >= MC_OA__COUNT || !(t->lo >= 0 && t->lo <= 1) ||
            (t->scaled && !(t->hi > t->lo && t->hi <= 1))) {
            snprintf(err, errlen, "overload trigger %u: bad monitor, action or thresholds", i);
            return -1;
        }
    }
    return 0;
}

int mc_engine_set_overload(mc_engine_t *e, uint64_t refresh_interval_ms, const mc_om_monitor_t *monitors,
                           uint32_t n_monitors, const mc_om_trigger_t *triggers, uint32_t n_triggers, char *err,
                           size_t errlen)
{
    if (check(monitors, n_monitors, triggers, n_triggers, err, errlen) < 0)
        return -1;
    mc_overload_t *om = e->om;
    if (!om) { /* published for the stats readers, who may run on other threads */
        if (!(om = om_new())) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        __atomic_store_n(&e->om, om, __ATOMIC_RELEASE);
    }
    if (!n_monitors)
        om_stop(om); /* nothing to sample: every action off below */
    pthread_mutex_lock(&om->lock);
    om->interval_ns = (refresh_interval_ms ? refresh_interval_ms : 1000) * 1000000ull;
    for (uint32_t i = 0; i < n_monitors; i++) {
        om_monitor_t *m = &om->monitors[i];
        int same = i < om->n_monitors && strcmp(m->name, monitors[i].name) == 0;
        snprintf(m->name, sizeof(m->name), "%s", monitors[i].name);
        snprintf(m->path, sizeof(m->path), "%s", monitors[i].path ? monitors[i].path : "");
        m->kind = monitors[i].kind;
        m->max = monitors[i].max;
        if (!same) { /* a monitor kept across a reload keeps its counter */
            m->pressure = -1;
            m->failed = 0;
        }
    }
    om->n_monitors = n_monitors;
    if (n_triggers)
        memcpy(om->triggers, triggers, n_triggers * sizeof(*triggers));
    om->n_triggers = n_triggers;
    sample_locked(e, om); /* the new triggers hold from now, not from the next tick */
    int rc = 0;
    if (n_monitors && !om->running) {
        if (pthread_create(&om->thread, NULL, sampler_main, e) != 0) {
            snprintf(err, errlen, "cannot start the overload manager's thread: %s", strerror(errno));
            rc = -1;
        } else {
            om->running = 1;
        }
    }
    om->config++;
    pthread_cond_broadcast(&om->cv); /* a new interval takes effect now */
    pthread_mutex_unlock(&om->lock);
    return rc;
}

int mc_engine_overload_monitor(mc_engine_t *e, uint32_t i, double *pressure, uint64_t *failed_updates)
{
    mc_overload_t *om = __atomic_load_n(&e->om, __ATOMIC_ACQUIRE);
    if (!om)
        return -1;
    pthread_mutex_lock(&om->lock);
    int rc = -1;
    if (i < om->n_monitors) {
        *pressure = om->monitors[i].pressure;
        *failed_updates = om->monitors[i].failed;
        rc = 0;
    }
    pthread_mutex_unlock(&om->lock);
    return rc;
}

double mc_engine_overload_action(mc_engine_t *e, mc_om_action_t a)
{
    mc_overload_t *om = __atomic_load_n(&e->om, __ATOMIC_ACQUIRE);
    if (!om || (unsigned)a >= MC_OA__COUNT)
        return 0;
    pthread_mutex_lock(&om->lock);
    double v = om->action[a];
    pthread_mutex_unlock(&om->lock);
    return v;
}

void mc_engine_overload_sample(mc_engine_t *e)
{
    mc_overload_t *om = __atomic_load_n(&e->om, __ATOMIC_ACQUIRE);
    if (!om)
        return;
    pthread_mutex_lock(&om->lock);
    sample_locked(e, om);
    pthread_mutex_unlock(&om->lock);
}
