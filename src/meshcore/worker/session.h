/*
 * What a worker knows of the sessions it runs (TCP proxy sessions, HTTP
 * connections, mirrors): a list, so that when it stops it can ask each to
 * finish soon and close whatever is left at the drain deadline.
 */
#ifndef MESHCORE_WORKER_SESSION_H
#define MESHCORE_WORKER_SESSION_H

#include <stdint.h>

#include "core/list.h"

/* The common head of every session kind. */
typedef struct mc_session mc_session_t;
struct mc_session {
    mc_list_t link;
    void (*abort)(mc_session_t *s);
    void (*drain)(mc_session_t *s); /* the worker stops: finish soon (NULL: the drain timeout decides) */
};

typedef struct mc_session_list {
    mc_list_t head;
    uint64_t n; /* read by other threads: relaxed atomics */
} mc_session_list_t;

void mc_session_list_init(mc_session_list_t *l);
void mc_session_list_add(mc_session_list_t *l, mc_session_t *s);
void mc_session_list_remove(mc_session_list_t *l, mc_session_t *s);
static inline int mc_session_list_empty(const mc_session_list_t *l)
{
    return mc_list_empty(&l->head);
}
/* Asks every session to finish soon (drain may close and unlink it). */
void mc_session_list_drain(mc_session_list_t *l);
/* Closes every session left. */
void mc_session_list_abort(mc_session_list_t *l);

#endif
