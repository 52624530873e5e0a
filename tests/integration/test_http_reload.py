"""Engine.apply of a changed HTTP config while client threads keep sending
keep-alive requests: no request fails, and new connections see the new
config (weights, routes, clusters)."""
import threading
from concurrent.futures import ThreadPoolExecutor

from support import http as h


def split(w1, w2, extra_routes=()):
    routes = list(extra_routes) + [h.route("/", route={"weighted_clusters": {"clusters": [
        {"name": "v1", "weight": w1}, {"name": "v2", "weight": w2}]}})]
    return routes


def config(v1, v2, routes):
    return h.bootstrap([h.hcm_listener("http", routes=routes)],
                       [h.http_cluster("v1", [v1.port]), h.http_cluster("v2", [v2.port])])


def test_reload_under_http_load_loses_no_request(engine_factory, backend_factory):
    v1, v2 = backend_factory("v1"), backend_factory("v2")
    engine = engine_factory(config=config(v1, v2, split(90, 10)))
    port = engine.listener_port("http")
    new_route = h.route("/new", direct_response={"status": 200, "body": {"inline_string": "new route"}})
    configs = [
        config(v1, v2, split(10, 90)),
        config(v1, v2, split(50, 50, [new_route])),
        config(v1, v2, [h.route("/", "v2")]),
        config(v1, v2, split(1, 1000, [new_route])),
        config(v1, v2, [h.route("/", "v1")]),
    ]
    load = h.HttpLoad(port, clients=4).start()
    try:
        load.progress(200)
        for doc in configs:
            engine.apply(doc)
            assert engine.listener_port("http") == port, "the listener keeps its port"
            load.progress(300)
            assert not load.failures, load.failures
    finally:
        load.stop()
    assert not load.failures, load.failures
    assert load.done >= 200 + 300 * len(configs)
    assert load.served.get("v1", 0) > 0 and load.served.get("v2", 0) > 0
    # New connections see the last config: everything to v1, /new gone.
    assert h.request(port, "GET", "/x").header("x-backend") == "v1"
    assert h.request(port, "GET", "/new").header("x-backend") == "v1"
    st = engine.stats()
    assert st["http.http.downstream_rq_5xx"] == 0 and st["http.http.downstream_rq_4xx"] == 0


def removal_setup(engine_factory, backend_factory, gate):
    def slow(req):
        gate.wait(20)
        return h.Reply(200, [("x-backend", "old")], b"old")

    old, new = backend_factory("old", slow), backend_factory("new")
    engine = engine_factory(config=h.bootstrap([h.hcm_listener("http", routes=[h.route("/", "old")])],
                                               [h.http_cluster("old", [old.port])]))
    return engine, engine.listener_port("http"), old, new


def test_request_in_flight_survives_the_removal_of_its_cluster(engine_factory, backend_factory):
    gate = threading.Event()
    engine, port, old, new = removal_setup(engine_factory, backend_factory, gate)
    with ThreadPoolExecutor(1) as pool:
        try:
            in_flight = pool.submit(h.request, port, "GET", "/")
            old.wait_requests(1)
            engine.apply(h.bootstrap([h.hcm_listener("http", routes=[h.route("/", "new")])],
                                     [h.http_cluster("new", [new.port])]))
            assert h.request(port, "GET", "/").header("x-backend") == "new"
        finally:
            gate.set()
        resp = in_flight.result(timeout=30)
    assert (resp.status, resp.body) == (200, b"old")


def test_removed_cluster_pooled_connections_are_closed(engine_factory, backend_factory):
    gate = threading.Event()
    gate.set()  # no waiting: one plain exchange leaves one pooled connection
    engine, port, old, new = removal_setup(engine_factory, backend_factory, gate)
    assert h.request(port, "GET", "/").status == 200
    engine.apply(h.bootstrap([h.hcm_listener("http", routes=[h.route("/", "new")])],
                             [h.http_cluster("new", [new.port])]))
    assert h.request(port, "GET", "/").header("x-backend") == "new"
    old.settle(1, timeout=5)  # waits only against a hang: the close is immediate when it happens
