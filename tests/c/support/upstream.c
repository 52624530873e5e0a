/* The fake upstream of the C tests (upstream.h). */
#include "upstream.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sock.h"

typedef struct {
    int fd; /* the listening socket, then each connection's copy */
    upstream_handler_fn handler;
    void *arg;
} upstream_t;

static void *conn_main(void *p)
{
    upstream_t c = *(upstream_t *)p; /* freed at once: a thread blocked at exit holds nothing */
    free(p);
    c.handler(c.fd, c.arg);
    close(c.fd);
    return NULL;
}

/* Runs for the process's life; u stays reachable from this thread's stack. */
static void *accept_main(void *p)
{
    upstream_t *u = p;
    for (;;) {
        int fd = accept(u->fd, NULL, NULL);
        if (fd < 0) {
            close(u->fd);
            free(u);
            return NULL;
        }
        upstream_t *c = malloc(sizeof(*c));
        pthread_t t;
        if (!c) {
            close(fd);
            continue;
        }
        *c = (upstream_t){fd, u->handler, u->arg};
        if (pthread_create(&t, NULL, conn_main, c) != 0) {
            free(c);
            close(fd);
            continue;
        }
        pthread_detach(t);
    }
}

uint16_t upstream_start(upstream_handler_fn handler, void *arg)
{
    uint16_t port;
    int lfd = sock_listen_any(&port);
    if (lfd < 0)
        return 0;
    upstream_t *u = malloc(sizeof(*u));
    pthread_t t;
    if (!u) {
        close(lfd);
        return 0;
    }
    *u = (upstream_t){lfd, handler, arg};
    if (pthread_create(&t, NULL, accept_main, u) != 0) {
        free(u);
        close(lfd);
        return 0;
    }
    pthread_detach(t);
    return port;
}
