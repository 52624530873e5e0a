/*
 * The event loop of one worker: an epoll set, the worker's timer heap and a
 * queue of tasks to run before blocking again.
 *
 * Sockets are registered edge-triggered once, for both directions, and never
 * modified: owners keep readiness flags and do I/O until EAGAIN (or a short
 * read), so a request costs no epoll_ctl call. Tasks carry work that ran out
 * of its per-event budget, and deferred frees: an object closed while events
 * for it may still be in the current batch is freed only after the batch.
 */
#ifndef MESHCORE_LOOP_H
#define MESHCORE_LOOP_H

#include <stdint.h>
#include <sys/epoll.h>

#include "core/timer.h"

typedef struct mc_io mc_io_t;
typedef void (*mc_io_cb)(mc_io_t *io, uint32_t events);

struct mc_io {
    int fd;
    mc_io_cb cb;
};

typedef struct mc_task mc_task_t;
typedef void (*mc_task_cb)(mc_task_t *t);

struct mc_task {
    mc_task_t *next;
    mc_task_cb cb;
    uint8_t queued;
};

#define MC_LOOP_MAX_EVENTS 256

typedef struct mc_loop {
    int epfd;
    uint64_t now; /* cached monotonic ns, refreshed after every wait */
    mc_timer_heap_t timers;
    mc_task_t *tasks_head, *tasks_tail;
    struct epoll_event events[MC_LOOP_MAX_EVENTS];
} mc_loop_t;

int mc_loop_init(mc_loop_t *l);
void mc_loop_destroy(mc_loop_t *l);

/* Edge-triggered, read + write + peer half-close. Returns <0 on error. */
int mc_loop_add_et(mc_loop_t *l, mc_io_t *io);
/* Level-triggered read interest (listeners, eventfd). */
int mc_loop_add_lt(mc_loop_t *l, mc_io_t *io);
int mc_loop_del(mc_loop_t *l, mc_io_t *io);
/* Re-points an already registered fd at another mc_io (same fd). */
int mc_loop_repoint(mc_loop_t *l, mc_io_t *io, int level_triggered);

/* Queues t to run after the current event batch (no-op if already queued).
 * A task's callback may requeue it. */
void mc_loop_post(mc_loop_t *l, mc_task_t *t, mc_task_cb cb);

/* One turn: wait for events (at most max_wait_ms, 0 if tasks are queued,
 * earlier if a timer is due), dispatch them, run due timers, run tasks. */
int mc_loop_turn(mc_loop_t *l, int max_wait_ms);

#endif
