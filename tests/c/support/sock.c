/* Loopback socket helpers for the C tests (sock.h). */
#include "sock.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

int sock_listen_any(uint16_t *port)
{
    *port = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 128) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

int sock_connect_port(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int sock_write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t m = write(fd, c, n);
        if (m <= 0)
            return -1;
        c += m;
        n -= (size_t)m;
    }
    return 0;
}

char *sock_read_to_eof(int fd, size_t cap, size_t *len)
{
    char *in = malloc(cap ? cap : 1);
    size_t got = 0;
    while (in && got < cap) {
        ssize_t n = read(fd, in + got, cap - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    *len = got;
    return in;
}

void *sock_send_then_fin(void *sender)
{
    sock_sender_t *s = sender;
    sock_write_all(s->fd, s->data, s->len);
    shutdown(s->fd, SHUT_WR); /* half-close: the reply must still come back */
    return NULL;
}
