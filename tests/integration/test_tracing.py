"""Distributed tracing through two sidecars (support/telemetry.py).

A real OTLP/HTTP receiver (decoding with opentelemetry-proto) and a Zipkin
v2 JSON receiver stand in for the collector. A request through the client's
and the server's sidecars makes one trace: the client's CLIENT span, the
server's SERVER span as its child, timings nested; the application behind
gets the context with the server span as parent, in W3C and in the B3 form
the caller used."""
from __future__ import annotations

import pytest
from support import http as h
from support import telemetry as t
from support.net import free_port, wait_until

TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT = "b7ad6b7169203331"


@pytest.fixture
def collector():
    c = t.Collector()
    yield c
    c.stop()


def traced_mesh(engine_factory, backend_factory, collector_port, tracing=None, client_tracing=None):
    backend = backend_factory("reviews")
    tracing = tracing or t.otel_tracing()
    server = engine_factory(config=t.server_sidecar(backend.port, tracing=tracing, collector_port=collector_port))
    client = engine_factory(config=t.client_sidecar(server.listener_port("inbound"), tracing=client_tracing or tracing,
                                                    collector_port=collector_port))
    return client, server, backend, client.listener_port("outbound")


def spans_of(collector, n, trace_id=None):
    def got():
        spans = [s for s in collector.received() if trace_id is None or s["trace_id"] == trace_id]
        return spans if len(spans) >= n else None
    return wait_until(got, 15, what=f"{n} spans at the collector")


def by_kind(spans):
    kinds = {2: "server", 3: "client", "SERVER": "server", "CLIENT": "client"}
    return {kinds[s["kind"]]: s for s in spans}


def test_one_trace_through_two_sidecars(engine_factory, backend_factory, collector):
    client, server, backend, port = traced_mesh(engine_factory, backend_factory, collector.port)
    assert h.request(port, "GET", "/reviews/1?x=y", host=t.SERVICE, headers=[("user-agent", "probe/1")]).status == 200
    spans = spans_of(collector, 2)
    assert len(spans) == 2, spans
    s = by_kind(spans)
    cs, ss = s["client"], s["server"]
    assert cs["trace_id"] == ss["trace_id"] and len(cs["trace_id"]) == 32
    assert cs["parent_id"] is None  # no context came in: the client's sidecar started the trace
    assert ss["parent_id"] == cs["span_id"]
    assert cs["start_ns"] <= ss["start_ns"] < ss["end_ns"] <= cs["end_ns"]  # the server's hop nests in the client's
    assert cs["name"] == f"{t.SERVICE}:9080/*"  # the route's decorator
    assert (cs["service"], ss["service"]) == ("productpage.default", "reviews.default")  # node.cluster
    for span in (cs, ss):
        a = span["attributes"]
        assert a["http.method"] == "GET" and a["http.status_code"] == "200"
        assert a["http.url"] == f"http://{t.SERVICE}/reviews/1?x=y"
        assert a["user_agent"] == "probe/1" and a["guid:x-request-id"]
        assert a["component"] == "proxy" and a["istio.namespace"] == "default"
    assert cs["attributes"]["upstream_cluster"] == t.OUT_CLUSTER
    # the application got the context, with the server's span as the parent
    (req,) = backend.requests
    assert req.header("traceparent") == f"00-{cs['trace_id']}-{ss['span_id']}-01"
    assert req.header("x-b3-traceid") == cs["trace_id"] and req.header("x-b3-spanid") == ss["span_id"]
    assert req.header("x-b3-parentspanid") == cs["span_id"] and req.header("x-b3-sampled") == "1"
    assert req.header("x-request-id") == cs["attributes"]["guid:x-request-id"]


def test_a_callers_w3c_context_is_continued(engine_factory, backend_factory, collector):
    _, _, backend, port = traced_mesh(engine_factory, backend_factory, collector.port)
    r = h.request(port, "GET", "/", host=t.SERVICE,
                  headers=[("traceparent", f"00-{TRACE}-{PARENT}-01"), ("tracestate", "vendor=opaque")])
    assert r.status == 200
    s = by_kind(spans_of(collector, 2, TRACE))
    assert s["client"]["parent_id"] == PARENT and s["server"]["parent_id"] == s["client"]["span_id"]
    (req,) = backend.requests
    assert req.header("traceparent") == f"00-{TRACE}-{s['server']['span_id']}-01"
    assert req.header("tracestate") == "vendor=opaque"  # passed through untouched
    assert len(req.headers_named("traceparent")) == 1


@pytest.mark.parametrize("form", ["multi", "single"])
def test_b3_context_is_continued_in_its_form(engine_factory, backend_factory, collector, form):
    _, _, backend, port = traced_mesh(engine_factory, backend_factory, collector.port)
    headers = ([("x-b3-traceid", TRACE), ("x-b3-spanid", PARENT), ("x-b3-sampled", "1")] if form == "multi"
               else [("b3", f"{TRACE}-{PARENT}-1")])
    assert h.request(port, "GET", "/", host=t.SERVICE, headers=headers).status == 200
    s = by_kind(spans_of(collector, 2, TRACE))
    assert s["client"]["parent_id"] == PARENT
    (req,) = backend.requests
    server_span = s["server"]["span_id"]
    if form == "multi":
        assert (req.header("x-b3-traceid"), req.header("x-b3-spanid"), req.header("x-b3-parentspanid")) == \
            (TRACE, server_span, s["client"]["span_id"])
        assert not req.has("b3")
    else:
        assert req.header("b3") == f"{TRACE}-{server_span}-1-{s['client']['span_id']}"
        assert not req.has("x-b3-traceid")
    assert req.header("traceparent") == f"00-{TRACE}-{server_span}-01"


def test_sampling_follows_the_caller_then_the_percentage(engine_factory, backend_factory, collector):
    _, _, backend, port = traced_mesh(engine_factory, backend_factory, collector.port,
                                      tracing=t.otel_tracing(sampling=0))
    with h.Conn(port) as c:
        for _ in range(20):  # 0%: none recorded, context still propagated (unsampled)
            assert c.request("GET", "/", host=t.SERVICE).status == 200
        # the caller asked for this one: recorded by both sidecars despite 0%
        asked = [("traceparent", f"00-{TRACE}-{PARENT}-01")]
        assert c.request("GET", "/", host=t.SERVICE, headers=asked).status == 200
    spans = spans_of(collector, 2, TRACE)
    assert len(spans) == 2
    assert all(s["trace_id"] == TRACE for s in collector.received())
    unsampled = backend.requests[0].header("traceparent")
    assert unsampled.startswith("00-") and unsampled.endswith("-00")


def test_a_caller_that_says_not_sampled_is_obeyed(engine_factory, backend_factory, collector):
    _, server, backend, port = traced_mesh(engine_factory, backend_factory, collector.port)
    assert h.request(port, "GET", "/", host=t.SERVICE, headers=[("x-b3-sampled", "0")]).status == 200
    sampled = [("traceparent", f"00-{TRACE}-{PARENT}-01")]
    assert h.request(port, "GET", "/", host=t.SERVICE, headers=sampled).status == 200
    spans_of(collector, 2, TRACE)
    assert {s["trace_id"] for s in collector.received()} == {TRACE}
    assert backend.requests[0].header("x-b3-sampled") == "0"


def test_zipkin_json(engine_factory, backend_factory, collector):
    _, _, _, port = traced_mesh(engine_factory, backend_factory, collector.port, tracing=t.zipkin_tracing())
    sampled = [("traceparent", f"00-{TRACE}-{PARENT}-01")]
    assert h.request(port, "GET", "/", host=t.SERVICE, headers=sampled).status == 200
    s = by_kind(spans_of(collector, 2, TRACE))
    assert {x["format"] for x in s.values()} == {"zipkin"}
    assert s["client"]["parent_id"] == PARENT and s["server"]["parent_id"] == s["client"]["span_id"]
    assert s["client"]["start_ns"] <= s["server"]["start_ns"] and s["server"]["end_ns"] <= s["client"]["end_ns"]


def test_a_down_collector_costs_dropped_spans_not_requests(engine_factory, backend_factory):
    dead = free_port()
    client, server, _, port = traced_mesh(engine_factory, backend_factory, dead)
    with h.Conn(port) as c:
        for _ in range(10):
            assert c.request("GET", "/", host=t.SERVICE).status == 200
    for engine in (client, server):
        wait_until(lambda e=engine: e.stats()["tracing.opentelemetry.spans_dropped"] == 10, 15,
                   what="10 spans dropped")
        st = engine.stats()
        assert st["tracing.opentelemetry.spans_sent"] == 0 and st["tracing.opentelemetry.reports_failed"] >= 1


def test_a_failing_collector_is_counted(engine_factory, backend_factory, collector):
    collector.status = 503
    client, _, _, port = traced_mesh(engine_factory, backend_factory, collector.port)
    assert h.request(port, "GET", "/", host=t.SERVICE).status == 200
    wait_until(lambda: client.stats()["tracing.opentelemetry.reports_failed"] >= 1, 15, what="a failed report")
    assert client.stats()["tracing.opentelemetry.spans_dropped"] == 1


def test_access_log_records_carry_the_trace_id(engine_factory, backend_factory, collector, tmp_path):
    import json

    log = tmp_path / "access.log"
    backend = backend_factory("reviews")
    doc = t.client_sidecar(backend.port, tracing=t.otel_tracing(), collector_port=collector.port)
    hcm = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    hcm["access_log"] = [{"name": "envoy.access_loggers.file", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog", "path": str(log)}}]
    engine = engine_factory(config=doc)
    assert h.request(engine.listener_port("outbound"), "GET", "/", host=t.SERVICE,
                     headers=[("traceparent", f"00-{TRACE}-{PARENT}-01")]).status == 200

    def record():
        engine.flush_access_logs()
        return log.exists() and log.read_text().strip()

    rec = json.loads(wait_until(record, what="the access-log record"))
    assert rec["trace_id"] == TRACE
    spans_of(collector, 1, TRACE)
