"""envoy.filters.http.fault (abort, delay) and request_mirror_policies, end to end."""
import os
import threading
from collections import Counter

import pytest
from support import http as h


def fault_engine(engine_factory, backend, *, filter_fault=None, routes=None):
    listener = h.hcm_listener("http", routes=routes or [h.route("/", "backend")],
                              http_filters=[h.fault_filter(**(filter_fault or {}))])
    engine = engine_factory(config=h.bootstrap([listener], [h.http_cluster("backend", [backend.port])]))
    return engine, engine.listener_port("http")


def test_abort_100_percent_on_a_route(engine_factory, backend_factory):
    backend = backend_factory()
    abort = {"abort": {"http_status": 418, "percentage": h.percent(100)}}
    engine, port = fault_engine(engine_factory, backend, routes=[
        h.route("/abort", "backend", typed_per_filter_config=h.fault_config(**abort)),
        h.route("/", "backend")])
    with h.Conn(port) as c:
        for _ in range(3):
            resp = c.request("GET", "/abort")
            assert (resp.status, resp.body) == (418, b"fault filter abort")
        assert c.request("GET", "/fine").status == 200  # other routes unaffected, connection kept
    h.wait_stat(engine, "http.http.downstream_rq_2xx", 1)
    st = engine.stats()
    assert st["http.http.response_flag_FI"] == 3
    assert st["http.http.fault.aborts_injected"] == 3
    assert [r.target for r in backend.requests] == ["/fine"]


def test_abort_50_percent_over_2000_requests(engine_factory, backend_factory):
    backend = backend_factory()
    engine, port = fault_engine(engine_factory, backend,
                                filter_fault={"abort": {"http_status": 503, "percentage": h.percent(50)}})
    n = 2000
    statuses = Counter(r.status for r in h.many(port, n, batch=100))
    assert set(statuses) == {200, 503}
    # Binomial(2000, 0.5): sd 22.4; +-130 is 5.8 sd.
    assert abs(statuses[503] - n / 2) <= 130, statuses
    assert backend.count() == statuses[200]
    h.wait_stat(engine, "http.http.downstream_rq_total", n)
    st = engine.stats()
    assert st["http.http.fault.aborts_injected"] == statuses[503]
    assert st["http.http.response_flag_FI"] == statuses[503]


def test_route_fault_config_overrides_the_filter_config(engine_factory, backend_factory):
    backend = backend_factory()
    no_abort = {"delay": {"fixed_delay": "0.001s", "percentage": h.percent(0)}}
    routes = [h.route("/exempt", "backend", typed_per_filter_config=h.fault_config(**no_abort)),
              h.route("/", "backend")]
    engine, port = fault_engine(engine_factory, backend, routes=routes,
                                filter_fault={"abort": {"http_status": 503, "percentage": h.percent(100)}})
    assert h.request(port, "GET", "/exempt").status == 200
    assert h.request(port, "GET", "/other").status == 503


def test_delay_100_percent_still_succeeds_and_is_counted(engine_factory, backend_factory):
    backend = backend_factory()
    engine, port = fault_engine(engine_factory, backend,
                                filter_fault={"delay": {"fixed_delay": "0.2s", "percentage": h.percent(100)}})
    body = os.urandom(2000)
    resp = h.request(port, "POST", "/slow", body=body)
    assert (resp.status, resp.body) == (200, body)
    h.wait_stat(engine, "http.http.downstream_rq_2xx", 1)
    st = engine.stats()
    assert st["http.http.response_flag_DI"] == 1
    assert st["http.http.fault.delays_injected"] == 1
    assert backend.count() == 1


# ---- mirroring --------------------------------------------------------------------------------------


def mirror_engine(engine_factory, primary, shadow, **policy):
    routes = [h.route("/", "primary", route={"request_mirror_policies": [{"cluster": "shadow", **policy}]})]
    doc = h.bootstrap([h.hcm_listener("http", routes=routes)],
                      [h.http_cluster("primary", [primary.port]), h.http_cluster("shadow", [shadow.port])])
    engine = engine_factory(config=doc)
    return engine, engine.listener_port("http")


@pytest.mark.parametrize("body", [b"", b"mirror me", os.urandom(12_000)], ids=["empty", "small", "12KiB"])
def test_mirror_gets_a_copy_and_the_client_gets_the_primary(engine_factory, backend_factory, body):
    gate = threading.Event()

    def slow_failing_shadow(req):
        gate.wait(20)
        return h.Reply(500, [("x-backend", "shadow")], b"shadow says no")

    primary = backend_factory("primary")
    shadow = backend_factory("shadow", slow_failing_shadow)
    engine, port = mirror_engine(engine_factory, primary, shadow)
    try:
        resp = h.request(port, "POST", "/m?q=1", body=body, host="svc.test")
        # Fire and forget: answered while the shadow has not answered yet.
        assert (resp.status, resp.header("x-backend"), resp.body) == (200, "primary", body)
    finally:
        gate.set()
    (copy,) = shadow.wait_requests(1)
    (orig,) = primary.requests
    assert (copy.method, copy.target, copy.body) == ("POST", "/m?q=1", body)
    assert copy.headers_named("host") == ["svc.test-shadow"]
    assert orig.headers_named("host") == ["svc.test"]
    assert copy.header("x-request-id") == orig.header("x-request-id")
    assert h.wait_stat(engine, "cluster.shadow.upstream_rq_mirrored", 1) == 1


def test_mirror_of_a_chunked_request(engine_factory, backend_factory):
    primary, shadow = backend_factory("primary"), backend_factory("shadow")
    engine, port = mirror_engine(engine_factory, primary, shadow)
    wire = h.chunked([b"one,", b"two"], trailers=[("x-t", "1")])
    with h.Conn(port) as c:
        c.send(h.build_request("PUT", "/c", headers=[("Transfer-Encoding", "chunked")]) + wire)
        assert c.response().body == b"one,two"
    (copy,) = shadow.wait_requests(1)
    assert copy.body == b"one,two" and copy.raw_body == wire


def test_mirror_runtime_fraction_zero_sends_nothing(engine_factory, backend_factory):
    primary, shadow = backend_factory("primary"), backend_factory("shadow")
    engine, port = mirror_engine(engine_factory, primary, shadow,
                                 runtime_fraction={"default_value": h.percent(0)})
    for _ in range(20):
        assert h.request(port, "GET", "/").status == 200
    assert h.stat(engine, "cluster.shadow.upstream_rq_total") == 0
    assert shadow.accepted == 0


def test_mirror_host_suffix_goes_before_the_port(engine_factory, backend_factory):
    primary, shadow = backend_factory("primary"), backend_factory("shadow")
    engine, port = mirror_engine(engine_factory, primary, shadow)
    assert h.request(port, "GET", "/", host="svc.test:8080").status == 200
    (copy,) = shadow.wait_requests(1)
    assert copy.headers_named("host") == ["svc.test-shadow:8080"]
