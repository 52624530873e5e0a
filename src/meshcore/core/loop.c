/* epoll + timers + tasks; see core/loop.h. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/loop.h"

int mc_loop_init(mc_loop_t *l)
{
    memset(l, 0, sizeof(*l));
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0)
        return -1;
    if (mc_timer_heap_init(&l->timers, 1024) < 0) {
        close(l->epfd);
        l->epfd = -1;
        return -1;
    }
    l->now = mc_now_ns();
    return 0;
}

void mc_loop_destroy(mc_loop_t *l)
{
    if (l->epfd >= 0)
        close(l->epfd);
    l->epfd = -1;
    mc_timer_heap_free(&l->timers);
}

static int ctl(mc_loop_t *l, int op, mc_io_t *io, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = io};
    return epoll_ctl(l->epfd, op, io->fd, &ev);
}

#define ET_EVENTS (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET)

int mc_loop_add_et(mc_loop_t *l, mc_io_t *io)
{
    return ctl(l, EPOLL_CTL_ADD, io, ET_EVENTS);
}

int mc_loop_add_lt(mc_loop_t *l, mc_io_t *io)
{
    return ctl(l, EPOLL_CTL_ADD, io, EPOLLIN);
}

int mc_loop_del(mc_loop_t *l, mc_io_t *io)
{
    return ctl(l, EPOLL_CTL_DEL, io, 0);
}

int mc_loop_repoint(mc_loop_t *l, mc_io_t *io, int level_triggered)
{
    return ctl(l, EPOLL_CTL_MOD, io, level_triggered ? EPOLLIN : ET_EVENTS);
}

void mc_loop_post(mc_loop_t *l, mc_task_t *t, mc_task_cb cb)
{
    t->cb = cb;
    if (t->queued)
        return;
    t->queued = 1;
    t->next = NULL;
    if (l->tasks_tail)
        l->tasks_tail->next = t;
    else
        l->tasks_head = t;
    l->tasks_tail = t;
}

static void run_tasks(mc_loop_t *l)
{
    /* Only the tasks queued before this point run now; tasks they queue run
     * next turn, after a non-blocking poll, so I/O stays fair. */
    mc_task_t *t = l->tasks_head, *end = l->tasks_tail;
    l->tasks_head = l->tasks_tail = NULL;
    while (t) {
        mc_task_t *next = t->next;
        int last = (t == end);
        t->queued = 0;
        t->next = NULL;
        t->cb(t);
        if (last)
            break;
        t = next;
    }
}

int mc_loop_turn(mc_loop_t *l, int max_wait_ms)
{
    int timeout = max_wait_ms;
    if (l->tasks_head) {
        timeout = 0;
    } else {
        uint64_t next = mc_timer_next(&l->timers);
        if (next != UINT64_MAX) {
            uint64_t now = mc_now_ns();
            /* Round up so a timer never fires early and spins the loop. */
            uint64_t ms = next > now ? (next - now + 999999) / 1000000 : 0;
            if (timeout < 0 || ms < (uint64_t)timeout)
                timeout = (int)ms;
        }
    }
    int n = epoll_wait(l->epfd, l->events, MC_LOOP_MAX_EVENTS, timeout);
    l->now = mc_now_ns();
    if (n < 0) {
        if (errno != EINTR)
            return -1;
        n = 0;
    }
    for (int i = 0; i < n; i++) {
        mc_io_t *io = l->events[i].data.ptr;
        io->cb(io, l->events[i].events);
    }
    mc_timer_run(&l->timers, l->now);
    run_tasks(l);
    return n;
}
