/*
 * End-to-end test of the core without Python: an engine with two workers
 * proxies real loopback TCP connections to a threaded echo server. Run under
 * ASan/UBSan by `make test-asan`, this is the sanitizer check of the hot
 * path (accept, connect retry, relay, splice, half-close, reload, drain).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "meshcore/balancer.h"
#include "meshcore/engine.h"
#include "support/engine_stats.h"
#include "support/sock.h"
#include "support/upstream.h"

/* ---- echo upstream ------------------------------------------------------ */

static void echo(int fd, void *arg)
{
    (void)arg;
    char buf[65536];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n <= 0 || sock_write_all(fd, buf, (size_t)n) < 0)
            break;
    }
    shutdown(fd, SHUT_WR);
}

/* A port nothing listens on: bind, read the port, close. */
static uint16_t dead_port(void)
{
    uint16_t port;
    close(sock_listen_any(&port));
    return port;
}

/* ---- client ---------------------------------------------------------------- */

/* Sends len bytes through the proxy and checks the echo is identical. */
static int round_trip(uint16_t port, size_t len)
{
    char *out = malloc(len + 1);
    for (size_t i = 0; i < len; i++)
        out[i] = (char)(i * 131 + 7);
    int fd = sock_connect_port(port);
    if (fd < 0)
        return -1;
    sock_sender_t s = {fd, out, len};
    pthread_t t;
    pthread_create(&t, NULL, sock_send_then_fin, &s);
    size_t got;
    char *in = sock_read_to_eof(fd, len + 1, &got); /* one byte more: an echo too long shows */
    pthread_join(t, NULL);
    close(fd);
    int ok = got == len && memcmp(in, out, len) == 0;
    free(out);
    free(in);
    return ok ? 0 : -1;
}

static mc_snapshot_builder_t *config(uint16_t echo_port, uint16_t dead, uint16_t listen_port)
{
    mc_snapshot_builder_t *b = mc_sb_new();
    int c = mc_sb_add_cluster(b, "echo", MC_LB_ROUND_ROBIN, 1000);
    mc_sb_add_endpoint(b, c, "127.0.0.1", dead, 1);
    mc_sb_add_endpoint(b, c, "127.0.0.1", echo_port, 1);
    int l = mc_sb_add_listener(b, "ingress", "127.0.0.1", listen_port, NULL, 0);
    mc_sb_set_tcp_proxy(b, l, "ingress_tcp", 0, 3);
    mc_sb_add_tcp_proxy_cluster(b, l, "echo", 1);
    return b;
}

static uint16_t listener_port(mc_engine_t *e)
{
    char name[64], addr[64];
    uint16_t port = 0;
    mc_engine_listener_info(e, 0, name, sizeof(name), addr, sizeof(addr), &port);
    return port;
}

static void run_mode(mc_splice_mode_t mode, uint16_t echo_port)
{
    char err[256];
    mc_engine_opts_t o;
    mc_engine_opts_default(&o);
    o.concurrency = 2;
    o.splice = mode;
    mc_engine_t *e = mc_engine_new(&o, err, sizeof(err));
    CHECK(e != NULL);
    CHECK_EQ(mc_engine_start(e, err, sizeof(err)), 0);
    uint16_t dead = dead_port();
    mc_snapshot_builder_t *b = config(echo_port, dead, 0);
    CHECK_EQ(mc_engine_apply(e, b, err, sizeof(err)), 0);
    mc_sb_free(b);
    uint16_t port = listener_port(e);
    CHECK(port != 0);

    size_t sizes[] = {1, 1024, 16384, 65536, 3 * 1024 * 1024 + 17};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
        for (int k = 0; k < 4; k++) /* round robin alternates dead/live */
            CHECK_EQ(round_trip(port, sizes[i]), 0);
    /* Half of the first attempts hit the dead endpoint and were retried. */
    CHECK(engine_stat(e, MC_SCOPE_CLUSTER, "echo", "upstream_cx_connect_fail") >= 8);
    CHECK(engine_stat(e, MC_SCOPE_CLUSTER, "echo", "upstream_cx_connect_retry") >= 8);
    CHECK_EQ(engine_stat(e, MC_SCOPE_TCP, "ingress_tcp", "downstream_cx_total"), 20);
    if (mode == MC_SPLICE_NEVER)
        CHECK_EQ(engine_stat(e, MC_SCOPE_TCP, "ingress_tcp", "spliced_bytes_total"), 0);
    else
        CHECK(engine_stat(e, MC_SCOPE_TCP, "ingress_tcp", "spliced_bytes_total") > 0);

    /* Reload on the same address keeps the listen sockets (same port). */
    b = config(echo_port, dead, 0);
    CHECK_EQ(mc_engine_apply(e, b, err, sizeof(err)), 0);
    mc_sb_free(b);
    CHECK_EQ(listener_port(e), port);
    CHECK_EQ(round_trip(port, 100000), 0);

    /* A bad reference is refused and the running snapshot stays. */
    b = mc_sb_new();
    int l = mc_sb_add_listener(b, "ingress", "127.0.0.1", 0, NULL, 0);
    mc_sb_set_tcp_proxy(b, l, "x", 0, 1);
    mc_sb_add_tcp_proxy_cluster(b, l, "missing", 1);
    CHECK(mc_engine_apply(e, b, err, sizeof(err)) < 0);
    CHECK(strstr(err, "unknown cluster \"missing\"") != NULL);
    mc_sb_free(b);
    CHECK_EQ(round_trip(port, 1000), 0);

    /* Stop with an open idle connection: drained at the deadline. */
    int idle = sock_connect_port(port);
    CHECK(idle >= 0);
    CHECK_EQ(mc_engine_stop(e, 200), 0);
    char c;
    CHECK(read(idle, &c, 1) <= 0); /* closed by the proxy */
    close(idle);
    mc_engine_free(e);
}

static void listener_removed_and_port_freed(uint16_t echo_port)
{
    char err[256];
    mc_engine_opts_t o;
    mc_engine_opts_default(&o);
    o.concurrency = 2;
    mc_engine_t *e = mc_engine_new(&o, err, sizeof(err));
    mc_engine_start(e, err, sizeof(err));
    uint16_t fixed = dead_port();
    mc_snapshot_builder_t *b = config(echo_port, dead_port(), fixed);
    CHECK_EQ(mc_engine_apply(e, b, err, sizeof(err)), 0);
    mc_sb_free(b);
    CHECK_EQ(round_trip(fixed, 5000), 0);
    /* New snapshot without listeners: the port must stop accepting. */
    b = mc_sb_new();
    CHECK_EQ(mc_engine_apply(e, b, err, sizeof(err)), 0);
    mc_sb_free(b);
    CHECK(sock_connect_port(fixed) < 0);
    CHECK_EQ(mc_engine_listener_count(e), 0);
    mc_engine_free(e);
}

int main(void)
{
    uint16_t echo_port = upstream_start(echo, NULL);
    run_mode(MC_SPLICE_AUTO, echo_port);
    run_mode(MC_SPLICE_ALWAYS, echo_port);
    run_mode(MC_SPLICE_NEVER, echo_port);
    listener_removed_and_port_freed(echo_port);
    CHECK_DONE();
}
