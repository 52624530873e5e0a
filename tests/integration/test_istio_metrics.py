"""Istio's standard metrics from two sidecars on loopback (support/telemetry.py).

Both reporters count every request with the same workload, service and
principal labels: the client's sidecar (reporter="source") learns who
answered from the peer metadata in the response, the server's sidecar
(reporter="destination") learns who called from the request's; neither
application sees those headers. Counts, response codes and flags,
histograms (Istio's buckets, milliseconds / bytes) and the TCP metrics are
checked against the traffic the test sends."""
from __future__ import annotations

import shutil
import socket
import subprocess
import time

import pytest
from support import http as h
from support import telemetry as t
from support.net import free_port, wait_until


def backend_handler(req):
    if req.target.startswith("/fail"):
        return h.Reply(503, [], b"backend down\n")
    if req.target.startswith("/slow"):
        time.sleep(0.03)
    if req.target.startswith("/big"):
        return h.Reply(200, [("x-seen-peer", req.header("x-envoy-peer-metadata") or "-")], b"x" * 70000)
    return h.Reply(200, [("x-seen-peer", req.header("x-envoy-peer-metadata") or "-")], b"hello")


@pytest.fixture
def mesh(engine_factory, backend_factory, tmp_path, request):
    """A started pair: (client sidecar, server sidecar, backend, client port)."""
    certs = t.mesh_certs(tmp_path) if getattr(request, "param", None) == "mtls" else (None, None)
    backend = backend_factory("reviews", backend_handler)
    server = engine_factory(config=t.server_sidecar(backend.port, certs=certs[1]))
    client = engine_factory(config=t.client_sidecar(server.listener_port("inbound"), certs=certs[0]))
    return client, server, backend, client.listener_port("outbound")


def request_totals(engine, **labels):
    return t.value(t.scrape(engine), "istio_requests_total", **labels)


def test_both_reporters_agree_and_the_apps_never_see_peer_metadata(mesh):
    client, server, backend, port = mesh
    with h.Conn(port) as c:
        for i in range(7):
            r = c.request("GET", f"/ok{i}", host=t.SERVICE)
            assert (r.status, r.body) == (200, b"hello")
            assert r.header("x-seen-peer") == "-"  # the backend got no peer metadata
            assert not r.has("x-envoy-peer-metadata") and not r.has("x-envoy-peer-metadata-id")
        for _ in range(3):
            assert c.request("GET", "/fail", host=t.SERVICE).status == 503
    for req in backend.requests:
        assert not any(k.lower().startswith("x-envoy-peer-metadata") for k, _ in req.headers)

    expected = {
        "source_workload": "productpage-v1", "source_workload_namespace": "default", "source_app": "productpage",
        "source_version": "v1", "source_canonical_service": "productpage", "source_cluster": "Kubernetes",
        "destination_workload": "reviews-v1", "destination_workload_namespace": "default",
        "destination_app": "reviews", "destination_version": "v1", "destination_canonical_service": "reviews",
        "destination_service": t.SERVICE, "destination_service_name": "reviews",
        "destination_service_namespace": "default", "request_protocol": "http", "response_flags": "-",
    }
    src, dst = t.scrape(client), t.scrape(server)
    for text, reporter, security in ((src, "source", "unknown"), (dst, "destination", "none")):
        ok = t.samples(text, "istio_requests_total", reporter=reporter, response_code="200")
        assert len(ok) == 1, ok
        assert ok[0].value == 7
        assert {k: ok[0].labels[k] for k in expected} == expected
        assert ok[0].labels["connection_security_policy"] == security
        assert t.value(text, "istio_requests_total", reporter=reporter, response_code="503") == 3
        # plaintext between the sidecars: no principals
        assert ok[0].labels["source_principal"] == ok[0].labels["destination_principal"] == "unknown"


@pytest.mark.parametrize("mesh", ["mtls"], indirect=True)
def test_mtls_principals_and_security_policy(mesh):
    client, server, _, port = mesh
    assert h.request(port, "GET", "/", host=t.SERVICE).status == 200
    for engine, reporter, security in ((client, "source", "unknown"), (server, "destination", "mutual_tls")):
        (s,) = t.samples(t.scrape(engine), "istio_requests_total", reporter=reporter)
        assert s.labels["source_principal"] == t.CLIENT_ID
        assert s.labels["destination_principal"] == t.SERVER_ID
        assert s.labels["connection_security_policy"] == security


def test_a_server_sidecars_own_reply_carries_its_metadata(engine_factory):
    """A 503 the server's sidecar makes itself (its app is down) carries the
    peer metadata back as a proxied response does, so the caller's sidecar
    labels it with the destination workload rather than "unknown"; the caller
    never sees those headers."""
    server = engine_factory(config=t.server_sidecar(free_port()))
    client = engine_factory(config=t.client_sidecar(server.listener_port("inbound")))
    r = h.request(client.listener_port("outbound"), "GET", "/", host=t.SERVICE)
    assert r.status == 503
    assert not r.has("x-envoy-peer-metadata") and not r.has("x-envoy-peer-metadata-id")
    for engine, reporter, flags in ((client, "source", "-"), (server, "destination", "UF")):
        samples = t.samples(t.scrape(engine), "istio_requests_total", reporter=reporter, response_code="503")
        assert samples and all(s.labels["destination_workload"] == "reviews-v1" for s in samples), samples
        assert all(s.labels["source_workload"] == "productpage-v1" for s in samples)
        assert samples[0].labels["response_flags"] == flags


def test_durations_land_in_istio_buckets(mesh):
    client, server, _, port = mesh
    with h.Conn(port) as c:
        for _ in range(4):
            assert c.request("GET", "/slow", host=t.SERVICE).status == 200
    for engine, reporter in ((client, "source"), (server, "destination")):
        text = t.scrape(engine)
        name = "istio_request_duration_milliseconds_bucket"
        # each took >= 30 ms, and (loopback, idle machine or not) well under 10 s
        assert t.value(text, name, reporter=reporter, le="25.0") == 0
        assert t.value(text, name, reporter=reporter, le="10000.0") == 4
        assert t.value(text, name, reporter=reporter, le="+Inf") == 4
        assert t.value(text, "istio_request_duration_milliseconds_count", reporter=reporter) == 4
        assert t.value(text, "istio_request_duration_milliseconds_sum", reporter=reporter) >= 4 * 30
        buckets = [s.labels["le"] for s in t.samples(text, name, reporter=reporter)]
        assert buckets == ["0.5", "1.0", "5.0", "10.0", "25.0", "50.0", "100.0", "250.0", "500.0", "1000.0",
                           "2500.0", "5000.0", "10000.0", "30000.0", "60000.0", "300000.0", "600000.0",
                           "1.8e+06", "3.6e+06", "+Inf"]


def test_request_and_response_sizes(mesh):
    client, server, _, port = mesh
    with h.Conn(port) as c:
        assert c.request("POST", "/big", host=t.SERVICE, body=b"y" * 3000).status == 200
        assert c.request("GET", "/", host=t.SERVICE).status == 200
    for engine, reporter in ((client, "source"), (server, "destination")):
        text = t.scrape(engine)
        assert t.value(text, "istio_request_bytes_sum", reporter=reporter) == 3000
        assert t.value(text, "istio_request_bytes_bucket", reporter=reporter, le="0.5") == 1  # the GET
        assert t.value(text, "istio_request_bytes_bucket", reporter=reporter, le="1000.0") == 1
        assert t.value(text, "istio_request_bytes_bucket", reporter=reporter, le="5000.0") == 2
        assert t.value(text, "istio_response_bytes_sum", reporter=reporter) == 70000 + 5
        assert t.value(text, "istio_response_bytes_bucket", reporter=reporter, le="10.0") == 1
        assert t.value(text, "istio_response_bytes_bucket", reporter=reporter, le="60000.0") == 1
        assert t.value(text, "istio_response_bytes_bucket", reporter=reporter, le="300000.0") == 2


def test_an_unreachable_upstream_is_a_503_uf_on_the_source(engine_factory):
    from support.net import free_port

    client = engine_factory(config=t.client_sidecar(free_port()))
    assert h.request(client.listener_port("outbound"), "GET", "/", host=t.SERVICE).status == 503
    (s,) = t.samples(t.scrape(client), "istio_requests_total")
    assert (s.labels["reporter"], s.labels["response_code"], s.labels["response_flags"]) == ("source", "503", "UF")
    assert s.labels["destination_workload"] == "unknown"  # nobody answered with metadata
    assert s.labels["destination_service"] == t.SERVICE  # from the cluster


def test_peers_without_the_exchange_are_unknown(engine_factory, backend_factory):
    backend = backend_factory("reviews", backend_handler)
    server = engine_factory(config=t.server_sidecar(backend.port, exchange=False))
    client = engine_factory(config=t.client_sidecar(server.listener_port("inbound"), exchange=False))
    assert h.request(client.listener_port("outbound"), "GET", "/", host=t.SERVICE).status == 200
    (s,) = t.samples(t.scrape(server), "istio_requests_total")
    assert s.labels["source_workload"] == "unknown" and s.labels["destination_workload"] == "reviews-v1"


def tcp_config(echo_port: int, direction: str) -> dict:
    return {"node": t.node("ratings-v1", "ratings"), "static_resources": {
        "listeners": [{"name": "tcp", "traffic_direction": direction,
                       "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                       "filter_chains": [{"filters": [t.STATS, {
                           "name": "envoy.filters.network.tcp_proxy", "typed_config": {
                               "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
                               "stat_prefix": "tcp",
                               "cluster": "outbound|27017||mongodb.default.svc.cluster.local"}}]}]}],
        "clusters": [h.http_cluster("outbound|27017||mongodb.default.svc.cluster.local", [echo_port])]}}


def test_tcp_connections_and_bytes(engine_factory, echo):
    engine = engine_factory(config=tcp_config(echo.port, "OUTBOUND"))
    port = engine.listener_port("tcp")
    for n in (1000, 20000):
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"z" * n)
            s.shutdown(socket.SHUT_WR)
            got = b""
            while chunk := s.recv(65536):
                got += chunk
            assert len(got) == n

    def closed():
        return t.value(t.scrape(engine), "istio_tcp_connections_closed_total") == 2

    wait_until(closed, what="both connections counted closed")
    text = t.scrape(engine)
    labels = dict(reporter="source", request_protocol="tcp", destination_service="mongodb.default.svc.cluster.local")
    assert t.value(text, "istio_tcp_connections_opened_total", **labels) == 2
    assert t.value(text, "istio_tcp_received_bytes_total", **labels) == 21000
    assert t.value(text, "istio_tcp_sent_bytes_total", **labels) == 21000
    (s,) = t.samples(text, "istio_tcp_connections_opened_total")
    assert s.labels["source_workload"] == "ratings-v1" and "response_code" not in s.labels


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus) not installed")
def test_promtool_accepts_the_exposition_but_for_istios_millisecond_name(proxy_factory, backend_factory):
    """Through the admin API of real `meshcore proxy` processes. promtool
    parses the whole exposition (Istio and Envoy metrics); its only lint is
    Istio's own name istio_request_duration_milliseconds (not in base units):
    Istio's dashboards and Kiali query that name, so it is kept."""
    backend = backend_factory("reviews", backend_handler)
    server = proxy_factory(t.server_sidecar(backend.port), name="reviews")
    status, text = server.get("/stats/prometheus")
    assert status == 200 and "istio_requests_total" not in text  # nothing counted: no empty families
    client = proxy_factory(t.client_sidecar(_listener_port(server, "inbound")), name="productpage")
    assert h.request(_listener_port(client, "outbound"), "GET", "/", host=t.SERVICE).status == 200
    for proxy in (client, server):
        status, text = proxy.get("/stats/prometheus")
        assert status == 200 and "istio_requests_total{" in text
        res = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
        problems = [line for line in (res.stdout + res.stderr).splitlines() if line.strip()]
        assert problems == ['istio_request_duration_milliseconds use base unit "seconds" instead of '
                            '"milliseconds"'], problems


def _listener_port(proxy, name: str) -> int:
    import json

    status, body = proxy.get("/listeners?format=json")
    assert status == 200, body
    for item in json.loads(body)["listener_statuses"]:
        if item["name"] == name:
            return item["local_address"]["socket_address"]["port_value"]
    raise AssertionError(f"no listener {name}: {body}")
