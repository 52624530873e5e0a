"""Which endpoint (or cluster) a connection goes to, counted at the upstreams.

Each upstream is its own echo server counting the connections it accepts;
every client connection does one echo round trip, so when the client is done
the upstream has certainly accepted it and the counts are exact.

Round robin is smooth weighted round robin per worker (deterministic), so
its split is held to +-2% of each weight's share. LEAST_REQUEST and RANDOM
are random choices: a looser bound of +-5 percentage points over thousands
of connections (more than 6 standard deviations at these counts).
"""
from concurrent.futures import ThreadPoolExecutor

import pytest
from support import config as cfg
from support.net import connect, short_echo, wait_until

WEIGHTS = (1, 2, 7)


def run_connections(port: int, n: int, threads: int = 4) -> None:
    """n short connections (one echo each) from a few client threads."""
    def one(i):
        payload = i.to_bytes(4, "big")
        assert short_echo(port, payload) == payload

    with ThreadPoolExecutor(threads) as pool:
        for _ in pool.map(one, range(n)):
            pass


def weighted_cluster_engine(engine_factory, echo_factory, lb_policy):
    servers = [echo_factory(f"w{w}") for w in WEIGHTS]
    doc = cfg.bootstrap([cfg.tcp_proxy_listener("ingress", "backend")],
                        [cfg.static_cluster("backend", [(s.port, w) for s, w in zip(servers, WEIGHTS, strict=True)],
                                            lb_policy=lb_policy)])
    return engine_factory(config=doc), servers


def test_round_robin_10000_connections_follow_weights(engine_factory, echo_factory):
    engine, servers = weighted_cluster_engine(engine_factory, echo_factory, "ROUND_ROBIN")
    n = 10_000
    run_connections(engine.listener_port("ingress"), n)

    counts = [s.accepted for s in servers]
    assert sum(counts) == n
    for count, w in zip(counts, WEIGHTS, strict=True):
        expected = n * w / sum(WEIGHTS)
        assert abs(count - expected) <= 0.02 * expected, (counts, WEIGHTS)
    st = engine.stats()
    assert st["cluster.backend.upstream_cx_total"] == n
    assert st["cluster.backend.upstream_cx_connect_fail"] == 0
    # Per-endpoint counters agree with what the upstreams saw.
    for s, count in zip(servers, counts, strict=True):
        assert engine.stats().hosts[f"backend::127.0.0.1:{s.port}"].counters["cx_total"] == count


def run_connections_one_at_a_time(engine, port: int, n: int) -> None:
    """n short connections, each started only after the proxy has closed the
    previous one, so every endpoint is idle when the next choice is made."""
    for i in range(n):
        payload = i.to_bytes(4, "big")
        assert short_echo(port, payload) == payload
        wait_until(lambda: engine.active_connections == 0, interval=0.0002,
                   what="the proxy to close the connection")


@pytest.mark.parametrize("lb_policy", ["RANDOM", "LEAST_REQUEST"])
def test_random_policies_follow_weights(engine_factory, echo_factory, lb_policy):
    """With idle endpoints both policies share by weight (least request
    weighs weight / (active + 1), as Envoy, so idleness matters here)."""
    engine, servers = weighted_cluster_engine(engine_factory, echo_factory, lb_policy)
    n = 3000
    if lb_policy == "LEAST_REQUEST":
        run_connections_one_at_a_time(engine, engine.listener_port("ingress"), n)
    else:
        run_connections(engine.listener_port("ingress"), n)

    counts = [s.accepted for s in servers]
    assert sum(counts) == n
    shares = [c / n for c in counts]
    for share, w in zip(shares, WEIGHTS, strict=True):
        assert abs(share - w / sum(WEIGHTS)) <= 0.05, (lb_policy, counts, WEIGHTS)


def test_weighted_clusters_split_90_10(engine_factory, echo_factory):
    """tcp_proxy weighted_clusters: the cluster choice follows the weights."""
    big, small = echo_factory("big"), echo_factory("small")
    doc = cfg.bootstrap(
        [cfg.tcp_proxy_listener("ingress", weighted={"big": 90, "small": 10})],
        [cfg.static_cluster("big", [big.port]), cfg.static_cluster("small", [small.port])])
    engine = engine_factory(config=doc)
    n = 4000
    run_connections(engine.listener_port("ingress"), n)

    assert big.accepted + small.accepted == n
    assert abs(big.accepted - 0.9 * n) <= 0.02 * 0.9 * n, (big.accepted, small.accepted)
    assert abs(small.accepted - 0.1 * n) <= 0.02 * 0.1 * n, (big.accepted, small.accepted)
    st = engine.stats()
    assert st["cluster.big.upstream_cx_total"] == big.accepted
    assert st["cluster.small.upstream_cx_total"] == small.accepted


def test_least_request_spreads_held_connections(engine_factory, echo_factory):
    """Equal weights: power of two choices on active connections. Twenty
    connections held open end up spread evenly over two endpoints (each new
    one goes to the less loaded of two draws)."""
    servers = [echo_factory("a"), echo_factory("b")]
    doc = cfg.bootstrap([cfg.tcp_proxy_listener("ingress", "backend")],
                        [cfg.static_cluster("backend", [s.port for s in servers], lb_policy="LEAST_REQUEST")])
    engine = engine_factory(config=doc, concurrency=1)
    port = engine.listener_port("ingress")
    held = []
    try:
        for _ in range(20):
            c = connect(port)
            c.sendall(b"x")
            assert c.recv(1) == b"x"
            held.append(c)
        counts = [s.accepted for s in servers]
        assert sum(counts) == 20
        assert abs(counts[0] - counts[1]) <= 4, counts
    finally:
        for c in held:
            c.close()
