/* Socket helpers shared by listeners and upstream connects. All sockets are
 * non-blocking and close-on-exec. Functions return <0 with errno set. */
#ifndef MESHCORE_SOCK_H
#define MESHCORE_SOCK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct mc_addr {
    struct sockaddr_storage ss;
    socklen_t len;
} mc_addr_t;

/* Parses an IPv4 or IPv6 literal; -1 if it is neither. */
int mc_addr_parse(mc_addr_t *a, const char *ip, uint16_t port);
uint16_t mc_addr_port(const mc_addr_t *a);
void mc_addr_set_port(mc_addr_t *a, uint16_t port);
int mc_addr_equal(const mc_addr_t *a, const mc_addr_t *b);
/* "ip:port" ("[ip]:port" for IPv6) into buf; returns buf. */
char *mc_addr_format(const mc_addr_t *a, char *buf, size_t len);

/* Bound, listening socket with SO_REUSEADDR, and SO_REUSEPORT when
 * reuse_port (then other SO_REUSEPORT sockets of the same user may join the
 * port and share its connections). */
int mc_sock_listen(const mc_addr_t *a, int backlog, int reuse_port);
/* Starts a non-blocking connect; returns the fd with *in_progress set when
 * the connection completes later (EINPROGRESS). TCP_NODELAY is set. */
int mc_sock_connect(const mc_addr_t *a, int *in_progress);
/* Pending error of a socket (SO_ERROR), 0 if none. */
int mc_sock_error(int fd);
void mc_sock_nodelay(int fd);

#endif
