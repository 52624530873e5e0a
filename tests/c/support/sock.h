/* Blocking loopback socket helpers shared by the C tests that run real
 * connections (the fake upstream, the clients that drive the proxy). Test
 * scaffolding: failures are reported, never retried. */
#ifndef MESHCORE_TEST_SOCK_H
#define MESHCORE_TEST_SOCK_H

#include <stddef.h>
#include <stdint.h>

/* A socket listening on 127.0.0.1 at a free port (in *port); -1 on failure. */
int sock_listen_any(uint16_t *port);

/* A socket connected to 127.0.0.1:port; -1 if nothing accepts there. */
int sock_connect_port(uint16_t port);

/* Writes all n bytes; -1 if the peer went away first. */
int sock_write_all(int fd, const void *p, size_t n);

/* Reads until EOF or cap bytes; returns the malloc'd bytes, *len their count. */
char *sock_read_to_eof(int fd, size_t cap, size_t *len);

/* A client that writes while the main thread reads (a blocking echo through
 * the proxy would otherwise deadlock on full buffers): writes len bytes of
 * data to fd, then half-closes it. Run as pthread_create(.., sock_send_then_fin, &s). */
typedef struct {
    int fd;
    const char *data;
    size_t len;
} sock_sender_t;

void *sock_send_then_fin(void *sender);

#endif
