/* Session bookkeeping: see worker/session.h. */
#include "worker/session.h"

void mc_session_list_init(mc_session_list_t *l)
{
    mc_list_init(&l->head);
    l->n = 0;
}

void mc_session_list_add(mc_session_list_t *l, mc_session_t *s)
{
    mc_list_push(&l->head, &s->link);
    __atomic_store_n(&l->n, l->n + 1, __ATOMIC_RELAXED);
}

void mc_session_list_remove(mc_session_list_t *l, mc_session_t *s)
{
    mc_list_remove(&s->link);
    __atomic_store_n(&l->n, l->n - 1, __ATOMIC_RELAXED);
}

void mc_session_list_drain(mc_session_list_t *l)
{
    mc_list_t *it = l->head.next;
    while (it != &l->head) {
        mc_session_t *s = mc_container_of(it, mc_session_t, link);
        it = it->next; /* drain may close (and unlink) s */
        if (s->drain)
            s->drain(s);
    }
}

void mc_session_list_abort(mc_session_list_t *l)
{
    while (!mc_list_empty(&l->head)) {
        mc_session_t *s = mc_container_of(l->head.next, mc_session_t, link);
        s->abort(s);
    }
}
