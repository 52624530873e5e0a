/* net/listener: who may share a listener's port. Without reuse_port the
 * workers' descriptors are one socket and nobody else can bind the port; with
 * it each worker has its own SO_REUSEPORT socket and others may join. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "net/listener.h"

static mc_addr_t loopback(uint16_t port)
{
    mc_addr_t a;
    mc_addr_parse(&a, "127.0.0.1", port);
    return a;
}

static int same_socket(int a, int b)
{
    struct stat sa, sb;
    return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_ino == sb.st_ino && sa.st_dev == sb.st_dev;
}

static void test_shared_socket_is_the_engines_alone(void)
{
    char err[200];
    mc_addr_t any = loopback(0);
    mc_lsock_t *ls = mc_lsock_open("l", &any, 3, 16, 0, err, sizeof(err));
    CHECK(ls != NULL);
    if (!ls)
        return;
    uint16_t port = mc_addr_port(&ls->bound);
    CHECK(port != 0);
    CHECK(ls->fds[0] != ls->fds[1] && ls->fds[1] != ls->fds[2]); /* one descriptor per worker */
    CHECK(same_socket(ls->fds[0], ls->fds[1]) && same_socket(ls->fds[0], ls->fds[2]));

    mc_addr_t fixed = loopback(port);
    err[0] = 0;
    CHECK(mc_lsock_open("again", &fixed, 2, 16, 0, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "Address already in use") != NULL);
    err[0] = 0;
    CHECK(mc_lsock_open("again", &fixed, 2, 16, 1, err, sizeof(err)) == NULL); /* reuse_port cannot join */
    CHECK(strstr(err, "Address already in use") != NULL);

    /* A connection is accepted on any worker's descriptor. */
    int c = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(connect(c, (struct sockaddr *)&fixed.ss, fixed.len) == 0);
    int a = accept(ls->fds[2], NULL, NULL);
    CHECK(a >= 0);
    close(a);
    close(c);
    mc_lsock_unref(ls);
}

static void test_reuse_port_sockets_can_be_joined(void)
{
    char err[200];
    mc_addr_t any = loopback(0);
    mc_lsock_t *ls = mc_lsock_open("l", &any, 2, 16, 1, err, sizeof(err));
    CHECK(ls != NULL);
    if (!ls)
        return;
    CHECK(!same_socket(ls->fds[0], ls->fds[1]));
    mc_addr_t fixed = loopback(mc_addr_port(&ls->bound));
    mc_lsock_t *other = mc_lsock_open("other", &fixed, 2, 16, 1, err, sizeof(err));
    CHECK(other != NULL); /* what enable_reuse_port opens the port to */
    CHECK(mc_lsock_open("plain", &fixed, 1, 16, 0, err, sizeof(err)) == NULL);
    mc_lsock_unref(other);
    mc_lsock_unref(ls);
}

int main(void)
{
    test_shared_socket_is_the_engines_alone();
    test_reuse_port_sockets_can_be_joined();
    CHECK_DONE();
}
