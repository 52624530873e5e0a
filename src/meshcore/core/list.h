/* Intrusive doubly linked list (circular, with a sentinel head). */
#ifndef MESHCORE_LIST_H
#define MESHCORE_LIST_H

#include <stddef.h>

typedef struct mc_list {
    struct mc_list *prev, *next;
} mc_list_t;

#define mc_container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

static inline void mc_list_init(mc_list_t *h)
{
    h->prev = h->next = h;
}

static inline int mc_list_empty(const mc_list_t *h)
{
    return h->next == h;
}

static inline void mc_list_push(mc_list_t *h, mc_list_t *n)
{
    n->prev = h->prev;
    n->next = h;
    h->prev->next = n;
    h->prev = n;
}

static inline void mc_list_remove(mc_list_t *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}

#endif
