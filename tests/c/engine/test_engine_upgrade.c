/*
 * End-to-end test of the HTTP/1.1 Upgrade tunnel (proxy/http_upgrade.c)
 * without Python: an engine with an http_connection_manager that enables
 * websocket upgrades, an upstream thread that answers 101 and then echoes
 * bytes until the client's FIN, then says "bye" and half-closes. Run under
 * ASan/UBSan by `make test-asan`: the sanitizer check of the tunnel's
 * buffers, half-closes and teardown, and of the 403 for an upgrade the
 * listener does not enable.
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

static const char UPGRADE[] = "GET /chat HTTP/1.1\r\nHost: svc\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

/* ---- the upstream: 101, echo until FIN, "bye", FIN ------------------------- */

static void upgrade_then_echo(int fd, void *arg)
{
    (void)arg;
    char buf[65536];
    size_t have = 0;
    char *end = NULL;
    while (!end && have < sizeof(buf) - 1) {
        ssize_t n = read(fd, buf + have, sizeof(buf) - 1 - have);
        if (n <= 0)
            goto out;
        have += (size_t)n;
        buf[have] = 0;
        end = strstr(buf, "\r\n\r\n");
    }
    static const char ok[] = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
    sock_write_all(fd, ok, sizeof(ok) - 1);
    size_t head = (size_t)(end + 4 - buf);
    sock_write_all(fd, buf + head, have - head); /* bytes that came with the head */
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n <= 0)
            break;
        sock_write_all(fd, buf, (size_t)n);
    }
    sock_write_all(fd, "bye", 3);
out:
    shutdown(fd, SHUT_WR);
}

/* ---- the client -------------------------------------------------------------- */

/* Upgrade, then len bytes through the tunnel while the echo comes back;
 * the whole reply must be the 101's head, the bytes, then "bye". */
static int tunnel_round_trip(uint16_t port, size_t len)
{
    char *out = malloc(sizeof(UPGRADE) - 1 + len);
    memcpy(out, UPGRADE, sizeof(UPGRADE) - 1);
    for (size_t i = 0; i < len; i++)
        out[sizeof(UPGRADE) - 1 + i] = (char)(i * 131 + 7);
    int fd = sock_connect_port(port);
    if (fd < 0)
        return -1;
    sock_sender_t s = {fd, out, sizeof(UPGRADE) - 1 + len}; /* the bytes follow the head at once */
    pthread_t t;
    pthread_create(&t, NULL, sock_send_then_fin, &s);
    size_t got;
    char *in = sock_read_to_eof(fd, len + 4096, &got);
    pthread_join(t, NULL);
    close(fd);
    int ok = 0;
    char *body = memmem(in, got, "\r\n\r\n", 4);
    if (body && got >= 12 && memcmp(in, "HTTP/1.1 101", 12) == 0) {
        body += 4;
        size_t n = got - (size_t)(body - in);
        ok = n == len + 3 && memcmp(body, out + sizeof(UPGRADE) - 1, len) == 0 && memcmp(body + len, "bye", 3) == 0;
    }
    free(in);
    free(out);
    return ok ? 0 : -1;
}

static int status_of_upgrade(uint16_t port)
{
    int fd = sock_connect_port(port);
    if (fd < 0)
        return -1;
    sock_write_all(fd, UPGRADE, sizeof(UPGRADE) - 1);
    size_t got;
    char *in = sock_read_to_eof(fd, 4096, &got);
    close(fd);
    int status = got > 12 ? atoi(in + 9) : -1;
    free(in);
    return status;
}

static mc_snapshot_builder_t *config(uint16_t upstream_port, int websocket)
{
    mc_snapshot_builder_t *b = mc_sb_new();
    int c = mc_sb_add_cluster(b, "ws", MC_LB_ROUND_ROBIN, 1000);
    mc_sb_add_endpoint(b, c, "127.0.0.1", upstream_port, 1);
    mc_sb_cluster_http_t ch;
    memset(&ch, 0, sizeof(ch));
    ch.max_connections = ch.max_pending_requests = ch.max_requests = 1024;
    ch.max_retries = 3;
    ch.idle_timeout_ms = 60000;
    mc_sb_set_cluster_http(b, c, &ch);
    int l = mc_sb_add_listener(b, "http", "127.0.0.1", 0, NULL, 0);
    mc_sb_hcm_t h;
    memset(&h, 0, sizeof(h));
    h.stat_prefix = "ws";
    h.idle_timeout_ms = 60000;
    h.stream_idle_timeout_ms = 60000;
    h.max_request_headers_kb = 60;
    h.max_headers_count = 100;
    h.upgrade_websocket = websocket;
    mc_sb_set_hcm(b, l, &h);
    const char *domains[] = {"*"};
    int v = mc_sb_add_vhost(b, l, "all", domains, 1, NULL, NULL, NULL);
    static const char *clusters[] = {"ws"};
    mc_sb_route_t r;
    memset(&r, 0, sizeof(r));
    r.path_kind = MC_PATH_PREFIX;
    r.path = "/";
    r.case_sensitive = 1;
    r.action = MC_ACTION_ROUTE;
    r.clusters = clusters;
    r.n_clusters = 1;
    mc_sb_add_route(b, l, v, &r);
    return b;
}

static void run(uint16_t upstream_port, int websocket)
{
    char err[256];
    mc_engine_opts_t o;
    mc_engine_opts_default(&o);
    o.concurrency = 2;
    mc_engine_t *e = mc_engine_new(&o, err, sizeof(err));
    CHECK(e != NULL);
    CHECK_EQ(mc_engine_start(e, err, sizeof(err)), 0);
    mc_snapshot_builder_t *b = config(upstream_port, websocket);
    int rc = mc_engine_apply(e, b, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "apply: %s\n", err);
    CHECK_EQ(rc, 0);
    mc_sb_free(b);
    char name[64], addr[64];
    uint16_t port = 0;
    mc_engine_listener_info(e, 0, name, sizeof(name), addr, sizeof(addr), &port);
    CHECK(port != 0);
    if (websocket) {
        size_t sizes[] = {0, 1, 16384, 3 * 1024 * 1024 + 17}; /* past every buffer: backpressure */
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
            CHECK_EQ(tunnel_round_trip(port, sizes[i]), 0);
        CHECK_EQ(engine_stat(e, MC_SCOPE_HTTP, "ws", "downstream_cx_upgrades_total"), 4);
        CHECK_EQ(engine_stat(e, MC_SCOPE_CLUSTER, "ws", "upstream_rq_101"), 4);
    } else {
        CHECK_EQ(status_of_upgrade(port), 403);
        CHECK_EQ(engine_stat(e, MC_SCOPE_HTTP, "ws", "downstream_rq_ws_on_non_ws_route"), 1);
    }
    /* A tunnel open at stop is torn down at the drain deadline, without leaks. */
    int open = sock_connect_port(port);
    CHECK(open >= 0);
    sock_write_all(open, UPGRADE, sizeof(UPGRADE) - 1);
    usleep(100 * 1000);
    CHECK_EQ(mc_engine_stop(e, 200), 0);
    close(open);
    mc_engine_free(e);
}

int main(void)
{
    uint16_t upstream_port = upstream_start(upgrade_then_echo, NULL);
    run(upstream_port, 1);
    run(upstream_port, 0);
    CHECK_DONE();
}
