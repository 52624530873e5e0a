"""Upstream connect failures: a dead endpoint is skipped when retries are
allowed, counted when they are not, and a connect that never completes is
cut by the cluster's connect_timeout.

A dead endpoint is a loopback port with nothing listening (connect is
refused). An endpoint that never answers the SYN is a listener whose accept
queue is full (support.servers.Blackhole).
"""
import json

import pytest
from support import config as cfg
from support.net import connect, free_port, short_echo, wait_until
from support.servers import Blackhole


def attempt(port: int, payload: bytes = b"ping") -> bool:
    """One client connection: True if the echo came back, False if the proxy
    closed it without data (EOF or reset)."""
    with connect(port) as s:
        try:
            s.sendall(payload)
            got = b""
            while len(got) < len(payload):
                data = s.recv(64)
                if not data:
                    return False
                got += data
        except (ConnectionResetError, BrokenPipeError):
            return False
    assert got == payload
    return True


@pytest.fixture
def blackhole():
    bh = Blackhole()
    if not bh.usable:
        bh.close()
        pytest.skip("this kernel completed a connect to a listener with a full accept queue; "
                    "no way to make a SYN go unanswered on loopback here")
    yield bh
    bh.close()


def test_dead_endpoint_is_skipped_with_retries(proxy_factory, echo_factory):
    """max_connect_attempts 3: every client connection gets through; the
    failures are counted per cluster and per endpoint (admin /clusters)."""
    live = [echo_factory("live1"), echo_factory("live2")]
    dead = free_port()
    doc = cfg.bootstrap([cfg.tcp_proxy_listener("ingress", "backend", max_connect_attempts=3)],
                        [cfg.static_cluster("backend", [dead] + [s.port for s in live])])
    proxy = proxy_factory(doc)
    port = proxy.listener_port("ingress")

    n = 300
    results = [attempt(port) for _ in range(n)]
    assert all(results), f"{results.count(False)} of {n} connections failed"
    assert sum(s.accepted for s in live) == n

    st = proxy.stats()
    fails = st["cluster.backend.upstream_cx_connect_fail"]
    assert fails > 0
    assert st["cluster.backend.upstream_cx_connect_retry"] == fails
    assert st["cluster.backend.upstream_cx_connect_attempts_exceeded"] == 0
    assert st["cluster.backend.upstream_cx_total"] == n + fails

    status, text = proxy.get("/clusters")
    assert status == 200
    assert f"backend::127.0.0.1:{dead}::cx_connect_fail::{fails}" in text.splitlines()
    for s in live:
        assert f"backend::127.0.0.1:{s.port}::cx_connect_fail::0" in text.splitlines()

    status, body = proxy.get("/clusters?format=json")
    assert status == 200
    hosts = {h["address"]["socket_address"]["port_value"]: {x["name"]: int(x.get("value", 0))
                                                           for x in h["stats"]}
             for c in json.loads(body)["cluster_statuses"] if c["name"] == "backend"
             for h in c["host_statuses"]}
    assert hosts[dead]["cx_connect_fail"] == fails
    assert hosts[dead]["cx_total"] == fails
    assert sum(hosts[s.port]["cx_total"] for s in live) == n


def test_dead_endpoint_fails_connections_without_retries(engine_factory, echo_factory):
    """max_connect_attempts 1: the connections sent to the dead endpoint are
    closed without data, and each is counted."""
    live = [echo_factory("live1"), echo_factory("live2")]
    dead = free_port()
    doc = cfg.bootstrap([cfg.tcp_proxy_listener("ingress", "backend", max_connect_attempts=1)],
                        [cfg.static_cluster("backend", [dead] + [s.port for s in live])])
    engine = engine_factory(config=doc)
    port = engine.listener_port("ingress")

    n = 300
    results = [attempt(port) for _ in range(n)]
    failed = results.count(False)
    assert failed > 0
    assert n - failed == sum(s.accepted for s in live)
    wait_until(lambda: engine.stats()["cluster.backend.upstream_cx_connect_fail"] == failed,
               what=f"upstream_cx_connect_fail == {failed}")
    st = engine.stats()
    assert st["cluster.backend.upstream_cx_connect_retry"] == 0
    assert st["cluster.backend.upstream_cx_total"] == n
    assert st.hosts[f"backend::127.0.0.1:{dead}"].counters["cx_connect_fail"] == failed


def test_unanswered_connect_times_out_and_retries(engine_factory, echo_factory, blackhole):
    """connect_timeout cuts a connect stuck in SYN_SENT; with a second attempt
    allowed the client still gets through to the live endpoint."""
    live = echo_factory("live")
    doc = cfg.bootstrap([cfg.tcp_proxy_listener("ingress", "backend", max_connect_attempts=2)],
                        [cfg.static_cluster("backend", [blackhole.port, live.port], connect_timeout="0.2s")])
    engine = engine_factory(config=doc)
    port = engine.listener_port("ingress")

    n = 6  # round robin: half of them try the black hole first
    assert all(short_echo(port, b"hello %d" % i, timeout=30) == b"hello %d" % i for i in range(n))
    assert live.accepted == n
    st = engine.stats()
    assert st["cluster.backend.upstream_cx_connect_timeout"] > 0
    assert st["cluster.backend.upstream_cx_connect_fail"] == st["cluster.backend.upstream_cx_connect_timeout"]
    assert st["cluster.backend.upstream_cx_connect_retry"] == st["cluster.backend.upstream_cx_connect_fail"]


def test_unanswered_connect_times_out_and_closes_client(engine_factory, blackhole):
    """Only a black-hole endpoint and one attempt: the client connection is
    closed once connect_timeout expires, and the timeout is counted."""
    doc = cfg.bootstrap([cfg.tcp_proxy_listener("ingress", "backend", max_connect_attempts=1)],
                        [cfg.static_cluster("backend", [blackhole.port], connect_timeout="0.2s")])
    engine = engine_factory(config=doc)
    with connect(engine.listener_port("ingress"), timeout=30) as s:
        s.sendall(b"anyone there?")
        try:
            assert s.recv(64) == b""
        except ConnectionResetError:
            pass
    wait_until(lambda: engine.stats()["cluster.backend.upstream_cx_connect_timeout"] == 1,
               what="the connect timeout to be counted")
    assert engine.stats()["cluster.backend.upstream_cx_connect_fail"] == 1


def test_all_endpoints_dead_gives_up_after_max_attempts(engine_factory):
    """Every endpoint refuses: the client is closed after exactly
    max_connect_attempts tries, and the give-up is counted."""
    dead = [free_port(), free_port()]
    doc = cfg.bootstrap([cfg.tcp_proxy_listener("ingress", "backend", max_connect_attempts=3)],
                        [cfg.static_cluster("backend", dead)])
    engine = engine_factory(config=doc)
    assert attempt(engine.listener_port("ingress")) is False
    wait_until(lambda: engine.stats()["cluster.backend.upstream_cx_connect_attempts_exceeded"] == 1,
               what="the give-up to be counted")
    st = engine.stats()
    assert st["cluster.backend.upstream_cx_connect_fail"] == 3
    assert st["cluster.backend.upstream_cx_connect_retry"] == 2
    assert st["cluster.backend.upstream_cx_total"] == 3
    assert st["cluster.backend.upstream_cx_active"] == 0
