"""Retries, back-off and timeouts, observed at both ends.

Every try of a request carries the same x-request-id (the proxy generates it
once), so a Backend can count tries per request and answer by try number:
fail the first tries, then succeed.
"""
import os
import threading
from collections import Counter

import pytest
from support import http as h
from support.net import free_port


class TryCounter:
    """A handler answering by try number: answer(req, n) with n = 1, 2, ...
    per x-request-id, summed over every Backend sharing this counter."""

    def __init__(self, answer):
        self.answer = answer
        self.lock = threading.Lock()
        self.tries = Counter()

    def __call__(self, req):
        rid = req.header("x-request-id")
        with self.lock:
            self.tries[rid] += 1
            n = self.tries[rid]
        return self.answer(req, n)


def retry_route(retry_policy, **action):
    return h.route("/", "backend", route={"retry_policy": retry_policy, **action})


def engine_for(engine_factory, backends_or_ports, routes, **cluster_kw):
    ports = [b if isinstance(b, int) else b.port for b in backends_or_ports]
    doc = h.bootstrap([h.hcm_listener("http", routes=routes)], [h.http_cluster("backend", ports, **cluster_kw)])
    engine = engine_factory(config=doc)
    return engine, engine.listener_port("http")


def fail(status, text=b"no"):
    return h.Reply(status, [], text)


def test_5xx_is_retried_on_another_endpoint(engine_factory, backend_factory):
    bad = [backend_factory(f"bad{i}", lambda req: fail(503)) for i in range(2)]
    good = backend_factory("good")
    engine, port = engine_for(engine_factory, bad + [good], [retry_route({
        "retry_on": "5xx", "num_retries": 2, "retry_host_predicate": h.previous_hosts(),
        "host_selection_retry_max_attempts": 3})])
    n = 30
    with h.Conn(port) as c:
        for i in range(n):
            resp = c.request("GET", f"/{i}")
            assert (resp.status, resp.header("x-backend")) == (200, "good"), i
    assert good.count() == n
    # previous_hosts: no request was tried twice on the same endpoint.
    visits = Counter((r.header("x-request-id"), b.name) for b in bad + [good] for r in b.requests)
    assert set(visits.values()) == {1}
    failed_tries = sum(b.count() for b in bad)
    assert failed_tries > 0
    h.wait_stat(engine, "http.http.downstream_rq_2xx", n)
    st = engine.stats()
    assert st["cluster.backend.upstream_rq_retry"] == failed_tries
    assert st["cluster.backend.upstream_rq_5xx"] == failed_tries
    retried = len({r.header("x-request-id") for b in bad for r in b.requests})
    assert st["cluster.backend.upstream_rq_retry_success"] == retried
    assert st["http.http.response_flag_URX"] == 0


def test_retry_back_off_every_retry_happens(engine_factory, backend_factory):
    tries = TryCounter(lambda req, n: fail(503) if n <= 3 else h.Reply(200, [("x-try", str(n))], b"finally"))
    backend = backend_factory("flaky", tries)
    engine, port = engine_for(engine_factory, [backend], [retry_route({
        "retry_on": "5xx", "num_retries": 3, "retry_back_off": {"base_interval": "0.005s", "max_interval": "0.02s"}})])
    for i in range(5):
        resp = h.request(port, "GET", f"/{i}")
        assert (resp.status, resp.body, resp.header("x-try")) == (200, b"finally", "4")
    assert backend.count() == 20 and set(tries.tries.values()) == {4}
    h.wait_stat(engine, "http.http.downstream_rq_2xx", 5)
    st = engine.stats()
    assert st["cluster.backend.upstream_rq_retry"] == 15
    assert st["cluster.backend.upstream_rq_retry_success"] == 5


def test_retries_exhausted_client_sees_the_upstream_503_with_URX(engine_factory, backend_factory):
    backend = backend_factory("down", lambda req: h.Reply(503, [("x-from", "upstream")], b"upstream says no"))
    engine, port = engine_for(engine_factory, [backend], [retry_route({"retry_on": "5xx", "num_retries": 2})])
    resp = h.request(port, "GET", "/")
    assert (resp.status, resp.body, resp.header("x-from")) == (503, b"upstream says no", "upstream")
    assert backend.count() == 3
    h.wait_stat(engine, "http.http.response_flag_URX", 1)
    st = engine.stats()
    assert st["cluster.backend.upstream_rq_retry"] == 2
    assert st["cluster.backend.upstream_rq_retry_limit_exceeded"] == 1
    assert st["http.http.downstream_rq_5xx"] == 1


def test_connect_failure_is_retried_on_the_live_endpoint(engine_factory, backend_factory):
    live = backend_factory("live")
    engine, port = engine_for(engine_factory, [free_port(), live], [retry_route({
        "retry_on": "connect-failure", "num_retries": 1, "retry_host_predicate": h.previous_hosts()})])
    n = 20
    for i in range(n):
        resp = h.request(port, "GET", f"/{i}")
        assert (resp.status, resp.header("x-backend")) == (200, "live"), i
    h.wait_stat(engine, "http.http.downstream_rq_2xx", n)
    st = engine.stats()
    assert st["cluster.backend.upstream_cx_connect_fail"] >= 1
    assert st["cluster.backend.upstream_rq_retry"] == st["cluster.backend.upstream_cx_connect_fail"]
    assert st["http.http.response_flag_UF"] == 0


def test_reset_before_the_response_is_retried(engine_factory, backend_factory):
    tries = TryCounter(lambda req, n: None if n == 1 else h.Reply(200, [], b"second"))
    backend = backend_factory("resetter", tries)
    engine, port = engine_for(engine_factory, [backend], [retry_route({"retry_on": "reset", "num_retries": 1})])
    resp = h.request(port, "GET", "/")
    assert (resp.status, resp.body) == (200, b"second")
    assert backend.count() == 2
    assert h.wait_stat(engine, "cluster.backend.upstream_rq_retry", 1) == 1


def test_retriable_status_codes(engine_factory, backend_factory):
    def answer(req, n):
        if req.target == "/teapot":
            return fail(418) if n == 1 else h.Reply(200, [], b"brewed")
        return fail(500)

    backend = backend_factory("codes", TryCounter(answer))
    engine, port = engine_for(engine_factory, [backend], [retry_route({
        "retry_on": "retriable-status-codes", "retriable_status_codes": [418], "num_retries": 2})])
    assert (lambda r: (r.status, r.body))(h.request(port, "GET", "/teapot")) == (200, b"brewed")
    assert h.request(port, "GET", "/500").status == 500  # 500 is not listed: no retry
    assert Counter(r.target for r in backend.requests) == {"/teapot": 2, "/500": 1}
    assert h.wait_stat(engine, "cluster.backend.upstream_rq_retry", 1) == 1


def test_buffered_body_is_replayed_on_retry_and_streamed_body_is_not_retried(engine_factory, backend_factory):
    tries = TryCounter(lambda req, n: fail(503) if n == 1 else h.Reply(200, [], req.body))
    backend = backend_factory("replay", tries)
    engine, port = engine_for(engine_factory, [backend], [retry_route({"retry_on": "5xx", "num_retries": 1})])
    small = os.urandom(15 * 1024)  # head + body fit the 16 KiB replay buffer
    resp = h.request(port, "POST", "/small", body=small)
    assert (resp.status, resp.body) == (200, small)
    assert [r.body for r in backend.requests] == [small, small]
    large = os.urandom(100 * 1024)  # streamed: once bytes left, no retry
    resp = h.request(port, "POST", "/large", body=large)
    assert resp.status == 503
    assert [r.body_len for r in backend.requests[2:]] == [len(large)]


def test_per_try_timeout_second_try_answers(engine_factory, backend_factory):
    release = threading.Event()

    def answer(req, n):
        if n == 1:
            release.wait(10)  # the first try hangs (until the test ends)
        return h.Reply(200, [("x-try", str(n))], b"second try")

    backend = backend_factory("slow-once", TryCounter(answer))
    engine, port = engine_for(engine_factory, [backend], [retry_route({
        "retry_on": "5xx", "num_retries": 1, "per_try_timeout": "0.3s"})])
    try:
        resp = h.request(port, "GET", "/")
        assert (resp.status, resp.header("x-try"), resp.body) == (200, "2", b"second try")
        h.wait_stat(engine, "http.http.downstream_rq_2xx", 1)
        st = engine.stats()
        assert st["cluster.backend.upstream_rq_per_try_timeout"] == 1
        assert st["cluster.backend.upstream_rq_retry"] == 1
        assert st["http.http.response_flag_UT"] == 0
    finally:
        release.set()


def test_route_timeout_is_504_upstream_request_timeout(engine_factory, backend_factory):
    release = threading.Event()
    backend = backend_factory("hang", lambda req: release.wait(10) and h.Reply(200, [], b"too late"))
    engine, port = engine_for(engine_factory, [backend], [h.route("/", "backend", route={"timeout": "0.3s"})])
    try:
        resp = h.request(port, "GET", "/")
        assert resp.status == 504
        assert resp.body == b"upstream request timeout"
        h.wait_stat(engine, "http.http.response_flag_UT", 1)
        st = engine.stats()
        assert st["cluster.backend.upstream_rq_timeout"] == 1
        assert st["http.http.downstream_rq_5xx"] == 1
    finally:
        release.set()


@pytest.mark.parametrize("retry_on", ["5xx", "gateway-error"])
def test_route_timeout_bounds_all_tries(engine_factory, backend_factory, retry_on):
    """Each try times out; the route timeout ends the request with a 504 UT
    whether or not retries remain."""
    release = threading.Event()
    backend = backend_factory("hang", lambda req: release.wait(10) and h.Reply(200, [], b"late"))
    engine, port = engine_for(engine_factory, [backend], [retry_route(
        {"retry_on": retry_on, "num_retries": 50, "per_try_timeout": "0.1s"}, timeout="0.5s")])
    try:
        resp = h.request(port, "GET", "/")
        assert (resp.status, resp.body) == (504, b"upstream request timeout")
        h.wait_stat(engine, "http.http.response_flag_UT", 1)
        assert h.stat(engine, "cluster.backend.upstream_rq_per_try_timeout") >= 1
    finally:
        release.set()


def test_retry_moves_to_the_other_split_member_when_its_hosts_are_exhausted(engine_factory, backend_factory):
    """meshcore's documented extension of previous_hosts (http_forward.c):
    a 90/10 canary whose big side fails still answers from the small side."""
    broken, canary = backend_factory("v1", lambda req: fail(503)), backend_factory("v2")
    split = {"weighted_clusters": {"clusters": [{"name": "v1", "weight": 90}, {"name": "v2", "weight": 10}]},
             "retry_policy": {"retry_on": "5xx", "num_retries": 1, "retry_host_predicate": h.previous_hosts()}}
    doc = h.bootstrap([h.hcm_listener("http", routes=[h.route("/", route=split)])],
                      [h.http_cluster("v1", [broken.port]), h.http_cluster("v2", [canary.port])])
    engine = engine_factory(config=doc)
    resps = h.many(engine.listener_port("http"), 50, batch=10)
    assert [(r.status, r.header("x-backend")) for r in resps] == [(200, "v2")] * 50
    assert broken.count() == 45 and canary.count() == 50


def test_upstream_rq_total_counts_every_try(engine_factory, backend_factory):
    backend = backend_factory("flaky", TryCounter(lambda req, n: fail(503) if n == 1 else h.Reply(200, [], b"ok")))
    engine, port = engine_for(engine_factory, [backend], [retry_route({"retry_on": "5xx", "num_retries": 1})])
    for i in range(4):
        assert h.request(port, "GET", f"/{i}").status == 200
    h.wait_stat(engine, "http.http.downstream_rq_2xx", 4)
    st = engine.stats()
    assert st["cluster.backend.upstream_rq_2xx"] + st["cluster.backend.upstream_rq_5xx"] == backend.count() == 8
    assert st["cluster.backend.upstream_rq_total"] == backend.count()
