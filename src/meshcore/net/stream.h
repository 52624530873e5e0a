/*
 * A connection's byte stream, plaintext or TLS, behind one set of calls so
 * the proxies do not care which. Plaintext is a direct recv/send (the
 * `ssl == NULL` branch is the whole cost); TLS goes through SSL_read /
 * SSL_write on the same non-blocking socket.
 *
 * Return convention (read/write): > 0 bytes, 0 end of stream (read only),
 * MC_IO_AGAIN (would block: wait for readiness), MC_IO_ERROR (the
 * connection is broken: reset, protocol or TLS error).
 */
#ifndef MESHCORE_STREAM_H
#define MESHCORE_STREAM_H

#include <errno.h>
#include <openssl/ssl.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#define MC_IO_AGAIN (-1)
#define MC_IO_ERROR (-2)

typedef struct mc_stream {
    int fd;
    SSL *ssl;             /* NULL: plaintext */
    unsigned shook : 1;   /* TLS handshake done */
    unsigned failed : 1;  /* TLS handshake failed */
    unsigned drained : 1; /* TLS: the last mc_tls_read's socket read came back short (see net/stream.c) */
} mc_stream_t;

/* Makes the stream TLS with ssl (which may be NULL: allocation failed). */
void mc_stream_set_ssl(mc_stream_t *s, SSL *ssl);

ssize_t mc_tls_read(mc_stream_t *s, void *buf, size_t len);
ssize_t mc_tls_write(mc_stream_t *s, const void *buf, size_t len);

static inline ssize_t mc_stream_read(mc_stream_t *s, void *buf, size_t len)
{
    if (s->ssl)
        return mc_tls_read(s, buf, len);
    for (;;) {
        ssize_t n = recv(s->fd, buf, len, 0);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        return errno == EAGAIN ? MC_IO_AGAIN : MC_IO_ERROR;
    }
}

static inline ssize_t mc_stream_write(mc_stream_t *s, const void *buf, size_t len)
{
    if (s->ssl)
        return mc_tls_write(s, buf, len);
    for (;;) {
        ssize_t n = send(s->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        return errno == EAGAIN ? MC_IO_AGAIN : MC_IO_ERROR;
    }
}

/* True when a short read proves the source is drained, so the caller need
 * not read again to see EAGAIN: for plaintext, a recv shorter than asked;
 * for TLS, a socket read during that very mc_tls_read came back short and
 * OpenSSL holds nothing more (read-ahead may buffer several records). */
static inline int mc_stream_short_read_drains(const mc_stream_t *s)
{
    return s->ssl == NULL || (s->drained && !SSL_has_pending(s->ssl));
}

/* Drives the TLS handshake: 1 done, 0 in progress (wait for readiness),
 * -1 failed (mc_tls_failure() says why). Plaintext: always 1. */
int mc_stream_handshake(mc_stream_t *s);

/* Ends our sending side: close_notify for TLS, FIN (SHUT_WR) for both. */
void mc_stream_shutdown(mc_stream_t *s);

/* Frees the TLS state and closes the socket. */
void mc_stream_close(mc_stream_t *s);

#endif
