"""Where HTTP requests go: weighted clusters on a route, and the cluster's
load-balancing policy (RING_HASH with a header hash policy, LEAST_REQUEST,
RANDOM). Counted at the Backends, each of which is one endpoint.
"""
from collections import Counter

import pytest
from support import http as h


def test_weighted_clusters_90_10_over_10000_requests(engine_factory, backend_factory):
    v1, v2 = backend_factory("v1"), backend_factory("v2")
    split = {"weighted_clusters": {"clusters": [{"name": "v1", "weight": 90}, {"name": "v2", "weight": 10}]}}
    doc = h.bootstrap([h.hcm_listener("http", routes=[h.route("/", route=split)])],
                      [h.http_cluster("v1", [v1.port]), h.http_cluster("v2", [v2.port])])
    engine = engine_factory(config=doc)
    n = 10_000
    resps = h.many(engine.listener_port("http"), n, batch=200)
    assert Counter(r.status for r in resps) == {200: n}
    served = Counter(r.header("x-backend") for r in resps)
    assert served["v1"] + served["v2"] == n
    assert abs(served["v1"] - 0.9 * n) <= 0.01 * n, served
    assert abs(served["v2"] - 0.1 * n) <= 0.01 * n, served
    # What the client saw is what the upstreams and the stats saw.
    assert (v1.count(), v2.count()) == (served["v1"], served["v2"])
    h.wait_stat(engine, "http.http.downstream_rq_2xx", n)
    st = engine.stats()
    assert st["cluster.v1.upstream_rq_total"] == served["v1"]
    assert st["cluster.v2.upstream_rq_total"] == served["v2"]


def endpoints_engine(engine_factory, backend_factory, lb_policy, n=3, route_kw=None, **cluster_kw):
    backends = [backend_factory(f"ep{i}") for i in range(n)]
    doc = h.bootstrap([h.hcm_listener("http", routes=[h.route("/", "backend", route=route_kw)])],
                      [h.http_cluster("backend", [b.port for b in backends], lb_policy=lb_policy, **cluster_kw)])
    return engine_factory(config=doc), backends


def test_ring_hash_on_a_header_is_sticky_and_spreads(engine_factory, backend_factory):
    engine, backends = endpoints_engine(engine_factory, backend_factory, "RING_HASH",
                                        route_kw={"hash_policy": [{"header": {"header_name": "x-user"}}]},
                                        ring_hash_lb_config={"minimum_ring_size": 1024})
    port = engine.listener_port("http")
    users = [f"user-{i}" for i in range(40)]
    landed = {u: set() for u in users}
    for _ in range(4):  # fresh connections each round: both workers get some
        with h.Conn(port) as c:
            resps = h.pipeline(c, [h.build_request("GET", f"/{u}", headers=[("x-user", u)]) for u in users])
        for u, r in zip(users, resps, strict=True):
            assert r.status == 200
            landed[u].add(r.header("x-backend"))
    assert all(len(eps) == 1 for eps in landed.values()), landed
    spread = Counter(next(iter(eps)) for eps in landed.values())
    assert len(spread) >= 2, spread


@pytest.mark.parametrize("lb_policy", ["LEAST_REQUEST", "RANDOM"])
def test_least_request_and_random_serve_every_endpoint(engine_factory, backend_factory, lb_policy):
    engine, backends = endpoints_engine(engine_factory, backend_factory, lb_policy)
    port = engine.listener_port("http")
    resps = []
    for _ in range(3):
        resps += h.many(port, 100, batch=50)
    assert Counter(r.status for r in resps) == {200: 300}
    served = Counter(r.header("x-backend") for r in resps)
    # Each endpoint misses all 300 with probability (2/3)^300: never.
    assert set(served) == {b.name for b in backends}, served
    assert [b.count() for b in backends] == [served[b.name] for b in backends]
