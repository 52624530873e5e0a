/* TLS side of the stream abstraction; see net/stream.h. */
#include <openssl/err.h>
#include <unistd.h>

#include "net/stream.h"

static ssize_t map(mc_stream_t *s, int rc)
{
    switch (SSL_get_error(s->ssl, rc)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return MC_IO_AGAIN;
    case SSL_ERROR_ZERO_RETURN:
        return 0; /* close_notify: end of stream */
    case SSL_ERROR_SYSCALL:
        ERR_clear_error();
        /* EOF without close_notify: the peer vanished (truncation). */
        return errno == EAGAIN ? MC_IO_AGAIN : MC_IO_ERROR;
    default:
        ERR_clear_error();
        return MC_IO_ERROR;
    }
}

/* Watches the socket reads OpenSSL makes: one that returns less than it
 * asked for (or nothing) means the socket was empty at that moment. Only
 * reads made during the current mc_tls_read count (the flag is cleared
 * first): data that arrived since an older read has an epoll edge this
 * loop turn may already have consumed. */
static long rbio_cb(BIO *b, int oper, const char *argp, size_t len, int argi, long argl, int ret,
                    size_t *processed)
{
    (void)argp, (void)argi, (void)argl;
    if (oper == (BIO_CB_READ | BIO_CB_RETURN)) {
        mc_stream_t *s = (mc_stream_t *)BIO_get_callback_arg(b);
        if (ret <= 0 || (processed && *processed < len))
            s->drained = 1;
    }
    return ret;
}

void mc_stream_set_ssl(mc_stream_t *s, SSL *ssl)
{
    s->ssl = ssl;
    s->drained = 0;
    if (!ssl)
        return;
    BIO *rbio = SSL_get_rbio(ssl);
    if (rbio) {
        BIO_set_callback_ex(rbio, rbio_cb);
        BIO_set_callback_arg(rbio, (char *)s);
    }
}

ssize_t mc_tls_read(mc_stream_t *s, void *buf, size_t len)
{
    size_t n = 0;
    s->drained = 0;
    int rc = SSL_read_ex(s->ssl, buf, len, &n);
    if (rc == 1)
        return (ssize_t)n;
    /* A TCP EOF without close_notify reads as 0 too: the contexts set
     * SSL_OP_IGNORE_UNEXPECTED_EOF (see net/tls.c). */
    return map(s, rc);
}

ssize_t mc_tls_write(mc_stream_t *s, const void *buf, size_t len)
{
    size_t n = 0;
    if (len == 0)
        return 0;
    int rc = SSL_write_ex(s->ssl, buf, len, &n);
    if (rc == 1)
        return (ssize_t)n;
    ssize_t r = map(s, rc);
    return r == 0 ? MC_IO_ERROR : r;
}

int mc_stream_handshake(mc_stream_t *s)
{
    if (!s->ssl || s->shook)
        return 1;
    if (s->failed)
        return -1;
    int rc = SSL_do_handshake(s->ssl);
    if (rc == 1) {
        s->shook = 1;
        return 1;
    }
    int e = SSL_get_error(s->ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 0;
    s->failed = 1;
    return -1;
}

void mc_stream_shutdown(mc_stream_t *s)
{
    if (s->ssl && s->shook)
        SSL_shutdown(s->ssl); /* sends close_notify; we may still read */
    shutdown(s->fd, SHUT_WR);
}

void mc_stream_close(mc_stream_t *s)
{
    if (s->ssl) {
        SSL_free(s->ssl);
        s->ssl = NULL;
    }
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
}
