/*
 * The HTTP/2 downstream codec end to end without Python, so `make test-asan`
 * runs it under ASan/UBSan: an engine with an HCM listener (codec_type
 * HTTP2) in front of a threaded HTTP/1.1 upstream, driven by an nghttp2
 * client session on a blocking socket. Checks a GET whose chunked response
 * carries trailers, a POST body, Rapid Reset refused with GOAWAY, and PING
 * keepalive (a client that ACKs keeps its connection, one that never reads
 * is closed: the keepalive timer must die with the connection).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <nghttp2/nghttp2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "meshcore/balancer.h"
#include "meshcore/engine.h"
#include "proxy/h2_server.h"
#include "support/engine_stats.h"
#include "support/sock.h"
#include "support/upstream.h"

#define BODY_OUT 70000 /* response body: more than one stream window's frame */
#define BODY_IN 100000 /* request body: more than the 64 KiB stream window */

/* ---- the upstream: HTTP/1.1, answers every request with a chunked body and trailers */

static void chunked_reply(int fd, void *arg)
{
    (void)arg;
    enum { CAP = 1 << 18 };
    char *buf = malloc(CAP); /* one per connection: the GET and the POST may arrive on two at once */
    size_t have = 0;
    for (;;) {
        char *end;
        while (!(end = memmem(buf, have, "\r\n\r\n", 4))) {
            ssize_t n = read(fd, buf + have, CAP - have);
            if (n <= 0)
                goto out;
            have += (size_t)n;
        }
        size_t head = (size_t)(end + 4 - buf), body = 0;
        char *cl = memmem(buf, head, "content-length: ", 16);
        if (cl)
            body = strtoul(cl + 16, NULL, 10);
        while (have < head + body) {
            ssize_t n = read(fd, buf + have, CAP - have);
            if (n <= 0)
                goto out;
            have += (size_t)n;
        }
        char out[256];
        int k = snprintf(out, sizeof(out),
                         "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nx-len: %zu\r\n\r\n%x\r\n", body, BODY_OUT);
        char *resp = malloc((size_t)k + BODY_OUT + 64);
        memcpy(resp, out, (size_t)k);
        memset(resp + k, 'a', BODY_OUT);
        memcpy(resp + k + BODY_OUT, "\r\n0\r\ngrpc-status: 0\r\n\r\n", 24);
        sock_write_all(fd, resp, (size_t)k + BODY_OUT + 24);
        free(resp);
        memmove(buf, buf + head + body, have - head - body);
        have -= head + body;
    }
out:
    free(buf);
}

/* ---- the client: nghttp2 on a blocking socket ------------------------------------ */

typedef struct client {
    int fd;
    nghttp2_session *ng;
    int closed, status[8], grpc_status[8], x_len[8];
    size_t body[8];
    uint32_t goaway_code;
    int goaway, pings;
    size_t upload_left;
} client_t;

static int slot(int32_t id)
{
    return (id / 2) & 7;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *n, size_t nl, const uint8_t *v,
                     size_t vl, uint8_t flags, void *u)
{
    (void)ng, (void)flags, (void)vl;
    client_t *c = u;
    int k = slot(f->hd.stream_id);
    if (nl == 7 && !memcmp(n, ":status", 7))
        c->status[k] = atoi((const char *)v);
    else if (nl == 11 && !memcmp(n, "grpc-status", 11))
        c->grpc_status[k] = 1 + atoi((const char *)v);
    else if (nl == 5 && !memcmp(n, "x-len", 5))
        c->x_len[k] = atoi((const char *)v);
    return 0;
}

static int on_data(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *d, size_t len, void *u)
{
    (void)ng, (void)flags, (void)d;
    ((client_t *)u)->body[slot(id)] += len;
    return 0;
}

static int on_close(nghttp2_session *ng, int32_t id, uint32_t code, void *u)
{
    (void)ng, (void)id, (void)code;
    ((client_t *)u)->closed++;
    return 0;
}

static int on_frame(nghttp2_session *ng, const nghttp2_frame *f, void *u)
{
    (void)ng;
    client_t *c = u;
    if (f->hd.type == NGHTTP2_PING && !(f->hd.flags & NGHTTP2_FLAG_ACK))
        c->pings++; /* nghttp2 ACKs it */
    if (f->hd.type == NGHTTP2_GOAWAY) {
        c->goaway = 1;
        c->goaway_code = f->goaway.error_code;
    }
    return 0;
}

static ssize_t upload(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                      nghttp2_data_source *src, void *u)
{
    (void)ng, (void)id, (void)src;
    client_t *c = u;
    size_t n = len < c->upload_left ? len : c->upload_left;
    memset(buf, 'b', n);
    c->upload_left -= n;
    if (!c->upload_left)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static void client_open(client_t *c, uint16_t port)
{
    memset(c, 0, sizeof(*c));
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK), .sin_port = htons(port)};
    CHECK_EQ(connect(c->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    nghttp2_session_callbacks *cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame);
    nghttp2_session_client_new(&c->ng, cb, c);
    nghttp2_session_callbacks_del(cb);
    nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, NULL, 0);
}

static int client_flush(client_t *c)
{
    const uint8_t *data;
    ssize_t n;
    while ((n = nghttp2_session_mem_send(c->ng, &data)) > 0)
        if (send(c->fd, data, (size_t)n, MSG_NOSIGNAL) != n)
            return -1;
    return 0;
}

/* Exchanges frames until `closed` streams closed or a GOAWAY came. */
static void client_run(client_t *c, int closed)
{
    while (c->closed < closed && !c->goaway) {
        if (client_flush(c) < 0)
            return;
        uint8_t buf[65536];
        ssize_t r = read(c->fd, buf, sizeof(buf));
        if (r <= 0)
            return;
        if (nghttp2_session_mem_recv(c->ng, buf, (size_t)r) < 0)
            return;
    }
}

static void client_close(client_t *c)
{
    nghttp2_session_del(c->ng);
    close(c->fd);
}

#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, sizeof(v) - 1, NGHTTP2_NV_FLAG_NONE}

/* ---- the proxy ----------------------------------------------------------------------- */

int main(void)
{
    CHECK_EQ(mc_h2_preface("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24), 1);
    CHECK_EQ(mc_h2_preface("PRI * HT", 8), -2);
    CHECK_EQ(mc_h2_preface("GET / HTTP/1.1\r\n", 16), 0);
    CHECK_EQ(mc_h2_preface("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n", 24), 0);

    uint16_t up_port = upstream_start(chunked_reply, NULL);

    char err[256];
    mc_engine_opts_t o;
    mc_engine_opts_default(&o);
    o.concurrency = 1;
    mc_engine_t *e = mc_engine_new(&o, err, sizeof(err));
    CHECK_EQ(mc_engine_start(e, err, sizeof(err)), 0);
    mc_snapshot_builder_t *b = mc_sb_new();
    int cl = mc_sb_add_cluster(b, "up", MC_LB_ROUND_ROBIN, 1000);
    mc_sb_add_endpoint(b, cl, "127.0.0.1", up_port, 1);
    int l = mc_sb_add_listener(b, "h2", "127.0.0.1", 0, NULL, 0);
    mc_sb_hcm_t hcm = {.stat_prefix = "h2", .codec_type = MC_CODEC_HTTP2, .idle_timeout_ms = 60000,
                       .stream_idle_timeout_ms = 60000, .generate_request_id = 1,
                       .h2_keepalive = {.interval_ms = 20, .jitter_ms = 5, .timeout_ms = 200}};
    CHECK_EQ(mc_sb_set_hcm(b, l, &hcm), 0);
    const char *domains[] = {"*"};
    int vh = mc_sb_add_vhost(b, l, "all", domains, 1, NULL, NULL, NULL);
    const char *clusters[] = {"up"};
    mc_sb_route_t r = {.path_kind = MC_PATH_PREFIX, .path = "/", .case_sensitive = 1, .action = MC_ACTION_ROUTE,
                       .clusters = clusters, .n_clusters = 1};
    CHECK_EQ(mc_sb_add_route(b, l, vh, &r), 0);
    CHECK_EQ(mc_engine_apply(e, b, err, sizeof(err)), 0);
    mc_sb_free(b);
    char name[64], addr[64];
    uint16_t port = 0;
    mc_engine_listener_info(e, 0, name, sizeof(name), addr, sizeof(addr), &port);

    /* A GET and a POST on one connection. */
    client_t c;
    client_open(&c, port);
    nghttp2_nv get[] = {NV(":method", "GET"), NV(":path", "/get"), NV(":scheme", "http"), NV(":authority", "svc")};
    int32_t g = nghttp2_submit_request(c.ng, NULL, get, 4, NULL, NULL);
    nghttp2_nv post[] = {NV(":method", "POST"), NV(":path", "/post"), NV(":scheme", "http"),
                         NV(":authority", "svc"), NV("content-length", "100000")};
    c.upload_left = BODY_IN;
    nghttp2_data_provider dp = {.read_callback = upload};
    int32_t p = nghttp2_submit_request(c.ng, NULL, post, 5, &dp, NULL);
    client_run(&c, 2);
    CHECK_EQ(c.status[slot(g)], 200);
    CHECK_EQ(c.body[slot(g)], BODY_OUT);
    CHECK_EQ(c.grpc_status[slot(g)], 1); /* the chunked body's trailer arrived as an HTTP/2 trailer */
    CHECK_EQ(c.status[slot(p)], 200);
    CHECK_EQ(c.x_len[slot(p)], BODY_IN);
    CHECK_EQ(c.body[slot(p)], BODY_OUT);
    client_close(&c);

    /* Rapid Reset: requests cancelled as they are sent. */
    client_open(&c, port);
    for (int i = 0; i < 300; i++) { /* HEADERS out first: nghttp2 drops a request cancelled before it left */
        int32_t id = nghttp2_submit_request(c.ng, NULL, get, 4, NULL, NULL);
        client_flush(&c);
        nghttp2_submit_rst_stream(c.ng, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
        client_flush(&c);
    }
    client_run(&c, 1000);
    CHECK(c.goaway);
    CHECK_EQ(c.goaway_code, NGHTTP2_ENHANCE_YOUR_CALM);
    client_close(&c);

    /* Keepalive: PINGs answered (by nghttp2) keep the connection; a GET still works on it. */
    client_open(&c, port);
    while (c.pings < 3) {
        uint8_t buf[4096];
        CHECK(client_flush(&c) == 0);
        ssize_t n = read(c.fd, buf, sizeof(buf));
        CHECK(n > 0);
        if (n <= 0)
            break;
        nghttp2_session_mem_recv(c.ng, buf, (size_t)n);
    }
    g = nghttp2_submit_request(c.ng, NULL, get, 4, NULL, NULL);
    client_run(&c, 1);
    CHECK_EQ(c.status[slot(g)], 200);
    client_close(&c);
    CHECK_EQ(engine_stat(e, MC_SCOPE_HTTP, "h2", "http2.keepalive_timeout"), 0);

    /* ... and a client that never reads is closed once its PING goes unanswered. */
    client_open(&c, port);
    CHECK(client_flush(&c) == 0);
    for (int i = 0; i < 1000 && engine_stat(e, MC_SCOPE_HTTP, "h2", "http2.keepalive_timeout") < 1; i++)
        usleep(10000);
    CHECK_EQ(engine_stat(e, MC_SCOPE_HTTP, "h2", "http2.keepalive_timeout"), 1);
    uint8_t sink[4096];
    while (read(c.fd, sink, sizeof(sink)) > 0) /* the SETTINGS and the PING, then EOF */
        ;
    client_close(&c);

    CHECK_EQ(engine_stat(e, MC_SCOPE_HTTP, "h2", "downstream_cx_http2_total"), 4);
    CHECK_EQ(engine_stat(e, MC_SCOPE_HTTP, "h2", "downstream_rq_too_many_premature_resets"), 1);
    CHECK_EQ(engine_stat(e, MC_SCOPE_HTTP, "h2", "http2.trailers"), 3); /* the keepalive GET is the third */
    CHECK_EQ(mc_engine_stop(e, 500), 0);
    mc_engine_free(e);
    CHECK_DONE();
}
