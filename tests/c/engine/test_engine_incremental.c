/*
 * Incremental changes without Python (engine/engine_incremental.c,
 * worker/snapshot_derive.c): endpoints replaced by derived snapshots, one
 * derived from another, then a full apply over them; route weights swapped
 * in place; the refusals. Under ASan/UBSan (`make test-asan`) this is the
 * check that borrowed cluster and listener arrays are freed exactly once and
 * that old weight arrays are freed only after the workers moved on.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "meshcore/balancer.h"
#include "meshcore/engine.h"
#include "support/sock.h"
#include "support/upstream.h"

/* An upstream that answers every connection with one byte, its tag. */
static void tagger(int fd, void *tag)
{
    if (write(fd, tag, 1) != 1) {
        /* the proxy went away: nothing to answer */
    }
}

/* The tag of the upstream a new connection through port reaches; 0: none. */
static char reached(uint16_t port)
{
    int fd = sock_connect_port(port);
    char c = 0;
    if (fd < 0 || read(fd, &c, 1) != 1)
        c = 0;
    if (fd >= 0)
        close(fd);
    return c;
}

static mc_snapshot_builder_t *config(uint16_t port)
{
    mc_snapshot_builder_t *b = mc_sb_new();
    int c = mc_sb_add_cluster(b, "app", MC_LB_ROUND_ROBIN, 1000);
    mc_sb_add_endpoint(b, c, "127.0.0.1", port, 1);
    mc_sb_add_cluster(b, "other", MC_LB_RING_HASH, 1000);
    int l = mc_sb_add_listener(b, "ingress", "127.0.0.1", 0, NULL, 0);
    mc_sb_set_tcp_proxy(b, l, "ingress_tcp", 0, 1);
    mc_sb_add_tcp_proxy_cluster(b, l, "app", 1);
    /* An HTTP listener with a weighted route, for the weights. */
    int h = mc_sb_add_listener(b, "http", "127.0.0.1", 0, NULL, 0);
    mc_sb_hcm_t hcm = {.stat_prefix = "http", .max_request_headers_kb = 60, .max_headers_count = 100};
    mc_sb_set_hcm(b, h, &hcm);
    const char *domains[] = {"*"};
    mc_sb_header_ops_t none = {0};
    int v = mc_sb_add_vhost(b, h, "all", domains, 1, &none, &none, NULL);
    const char *clusters[] = {"app", "other"};
    uint32_t weights[] = {90, 10};
    mc_sb_route_t r = {.name = "split", .path_kind = MC_PATH_PREFIX, .path = "/", .case_sensitive = 1,
                       .action = MC_ACTION_ROUTE, .clusters = clusters, .weights = weights, .n_clusters = 2};
    mc_sb_add_route(b, h, v, &r);
    return b;
}

static uint16_t port_of(mc_engine_t *e, uint32_t i)
{
    char name[64], addr[64];
    uint16_t port = 0;
    mc_engine_listener_info(e, i, name, sizeof(name), addr, sizeof(addr), &port);
    return port;
}

int main(void)
{
    static char tag_a = 'a', tag_b = 'b';
    uint16_t pa = upstream_start(tagger, &tag_a), pb = upstream_start(tagger, &tag_b);

    char err[256];
    mc_engine_opts_t o;
    mc_engine_opts_default(&o);
    o.concurrency = 2;
    mc_engine_t *e = mc_engine_new(&o, err, sizeof(err));
    mc_sb_endpoint_t to_b = {"127.0.0.1", pb, 1}, to_a = {"127.0.0.1", pa, 1};
    mc_sb_cluster_endpoints_t move_b = {"app", &to_b, 1}, move_a = {"app", &to_a, 1};
    CHECK(mc_engine_set_endpoints(e, &move_b, 1, err, sizeof(err)) < 0); /* nothing applied yet */
    CHECK(strstr(err, "no config applied") != NULL);
    CHECK_EQ(mc_engine_start(e, err, sizeof(err)), 0);
    mc_snapshot_builder_t *sb = config(pa);
    CHECK_EQ(mc_engine_apply(e, sb, err, sizeof(err)), 0);
    mc_sb_free(sb);
    uint16_t port = port_of(e, 0);
    CHECK_EQ(reached(port), 'a');

    /* Derived from the applied snapshot, then from a derived one, and back. */
    CHECK_EQ(mc_engine_set_endpoints(e, &move_b, 1, err, sizeof(err)), 0);
    CHECK_EQ(reached(port), 'b');
    CHECK_EQ(mc_engine_set_endpoints(e, &move_a, 1, err, sizeof(err)), 0);
    CHECK_EQ(reached(port), 'a');
    mc_sb_cluster_endpoints_t twice[] = {move_b, move_a, move_b}; /* the last list wins */
    CHECK_EQ(mc_engine_set_endpoints(e, twice, 3, err, sizeof(err)), 0);
    CHECK_EQ(reached(port), 'b');
    CHECK_EQ(port_of(e, 0), port); /* the same sockets */

    /* Refusals change nothing. */
    mc_sb_endpoint_t bad = {"not-an-ip", 80, 1}, zero = {"127.0.0.1", 0, 1};
    mc_sb_cluster_endpoints_t bad_ip = {"app", &bad, 1}, bad_port = {"app", &zero, 1}, unknown = {"nope", &to_a, 1};
    CHECK(mc_engine_set_endpoints(e, &bad_ip, 1, err, sizeof(err)) < 0);
    CHECK(strstr(err, "endpoints[0]: address \"not-an-ip\" is not an IP literal") != NULL);
    CHECK(mc_engine_set_endpoints(e, &bad_port, 1, err, sizeof(err)) < 0);
    CHECK(mc_engine_set_endpoints(e, &unknown, 1, err, sizeof(err)) < 0);
    CHECK(strstr(err, "cluster \"nope\": not in the running config") != NULL);
    CHECK_EQ(reached(port), 'b');

    /* Weights in place, twice (the first new array is retired by the second). */
    uint32_t w1[] = {1, 3}, w2[] = {0, 5};
    mc_route_weights_t ok = {"http", 0, 0, 0, w1, 2}, again = {"http", 0, 0, 0, w2, 2};
    CHECK_EQ(mc_engine_set_route_weights(e, &ok, 1, err, sizeof(err)), 0);
    CHECK_EQ(mc_engine_set_route_weights(e, &again, 1, err, sizeof(err)), 0);
    mc_route_weights_t wrong_n = {"http", 0, 0, 0, w1, 1}, no_route = {"http", 0, 0, 4, w1, 2},
                       tcp = {"ingress", 0, 0, 0, w1, 2}, no_listener = {"x", 0, 0, 0, w1, 2};
    CHECK(mc_engine_set_route_weights(e, &wrong_n, 1, err, sizeof(err)) < 0);
    CHECK(strstr(err, "1 weights for 2 clusters") != NULL);
    CHECK(mc_engine_set_route_weights(e, &no_route, 1, err, sizeof(err)) < 0);
    CHECK(mc_engine_set_route_weights(e, &tcp, 1, err, sizeof(err)) < 0);
    CHECK(mc_engine_set_route_weights(e, &no_listener, 1, err, sizeof(err)) < 0);
    /* A change with one bad entry swaps nothing. */
    mc_route_weights_t mixed[] = {ok, wrong_n};
    CHECK(mc_engine_set_route_weights(e, mixed, 2, err, sizeof(err)) < 0);

    /* A full apply over the derived snapshots frees them. */
    sb = config(pa);
    CHECK_EQ(mc_engine_apply(e, sb, err, sizeof(err)), 0);
    mc_sb_free(sb);
    CHECK_EQ(reached(port_of(e, 0)), 'a');
    CHECK_EQ(mc_engine_set_endpoints(e, &move_b, 1, err, sizeof(err)), 0);
    mc_engine_stop(e, 0);
    CHECK(mc_engine_set_endpoints(e, &move_a, 1, err, sizeof(err)) < 0);
    CHECK(strstr(err, "engine is stopped") != NULL);
    CHECK(mc_engine_set_route_weights(e, &ok, 1, err, sizeof(err)) < 0);
    mc_engine_free(e);
    CHECK_DONE(); /* the upstreams' threads end with the process */
}
