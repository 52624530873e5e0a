"""Istio telemetry from a mesh directory, end to end: two real `meshcore proxy
--mesh-dir ... --ca-dir` processes (productpage-v1 calling reviews-v1, mTLS
between the sidecars), plaintext applications behind them, and a real
OTLP/HTTP collector (support/telemetry.py) reached as a ServiceEntry of the
mesh.

Nothing in the mesh directory mentions metrics: both sidecars report
istio_requests_total (source and destination) with the workloads, the
service, the SPIFFE principals and mutual_tls, as an Istio sidecar would. A
Telemetry naming the MeshConfig's opentelemetry provider at 100 % gives one
trace per request: the client's CLIENT span and the server's SERVER span as
its child. A TCP service is counted in istio_tcp_*, the peers labelled from
the mesh's registry by principal (TCP carries no peer metadata)."""
from __future__ import annotations

import socket
import textwrap

import pytest
from support import mtls
from support import telemetry as t
from support.net import free_port, wait_until

SERVICE = "reviews.default.svc.cluster.local"
TCP_SERVICE = "ratings-db.default.svc.cluster.local"
COLLECTOR = "otel-collector.observability.svc.cluster.local"
CLIENT_ID = "spiffe://cluster.local/ns/default/sa/bookinfo-productpage"
SERVER_ID = "spiffe://cluster.local/ns/default/sa/bookinfo-reviews"


def telemetry_docs(collector_port: int, service_port: int) -> list[str]:
    return [
        # the collector, outside the mesh: a ServiceEntry with a static endpoint
        textwrap.dedent(f"""\
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {{name: otel-collector, namespace: observability}}
            spec:
              hosts: [{COLLECTOR}]
              ports: [{{number: {service_port}, name: http-otlp, protocol: HTTP}}]
              resolution: STATIC
              endpoints: [{{address: 127.0.0.1, ports: {{http-otlp: {collector_port}}}}}]
            """),
        # Istio's MeshConfig: the provider
        textwrap.dedent(f"""\
            apiVersion: v1
            kind: ConfigMap
            metadata: {{name: istio, namespace: istio-system}}
            data:
              mesh: |
                extensionProviders:
                - name: otel
                  opentelemetry:
                    service: {COLLECTOR}
                    port: {service_port}
                    http: {{path: /v1/traces, timeout: 2s}}
            """),
        # mesh-wide tracing, every request
        textwrap.dedent("""\
            apiVersion: telemetry.istio.io/v1
            kind: Telemetry
            metadata: {name: mesh-default, namespace: istio-system}
            spec:
              tracing:
              - providers: [{name: otel}]
                randomSamplingPercentage: 100
            """),
    ]


@pytest.fixture
def mesh(tmp_path):
    mtls.make_ca(tmp_path / "ca")
    app, echo, collector = mtls.PlainApp("reviews"), mtls.TcpEcho(), t.Collector()
    ports = {"http": free_port(), "tcp": free_port(), "http_in": free_port(), "tcp_in": free_port(),
             "otel": free_port()}
    docs = [
        mtls.service("reviews", {"http": ports["http"]}, {"app": "reviews"}),
        mtls.service("ratings-db", {"tcp-db": ports["tcp"]}, {"app": "reviews"}),
        mtls.workload_entry("reviews-v1", "bookinfo-reviews", {"app": "reviews", "version": "v1"},
                            {"http": app.port, "tcp-db": echo.port},
                            f"http={ports['http_in']},tcp-db={ports['tcp_in']}"),
        mtls.workload_entry("productpage-v1", "bookinfo-productpage", {"app": "productpage", "version": "v1"}),
        mtls.peer_authentication("STRICT"),
        *telemetry_docs(collector.port, ports["otel"]),
    ]
    mesh_dir = mtls.write_mesh(tmp_path / "mesh", *docs)
    server = mtls.Sidecar(mesh_dir, "default/reviews-v1", tmp_path / "ca", tmp_path / "reviews.log",
                          outbound_address="127.0.0.41")
    client = mtls.Sidecar(mesh_dir, "default/productpage-v1", tmp_path / "ca", tmp_path / "productpage.log",
                          outbound_address="127.0.0.42")
    try:
        server.start()
        client.start()
        yield {"client": client, "server": server, "ports": ports, "collector": collector, "app": app}
    finally:
        client.close()
        server.close()
        app.stop()
        echo.stop()
        collector.stop()


def scrape(proxy) -> str:
    status, text = proxy.get("/stats/prometheus")
    assert status == 200, text
    return text


def test_both_sidecars_report_istio_metrics_and_one_trace_per_request(mesh):
    m = mesh
    for i in range(3):
        status, body, _ = mtls.curl(f"http://127.0.0.42:{m['ports']['http']}/reviews/{i}", host="reviews")
        assert (status, body) == (200, f"reviews GET /reviews/{i}")
    assert not m["app"].saw(b"x-envoy-peer-metadata")  # the exchange stays between the sidecars

    expected = {
        "source_workload": "productpage-v1", "source_workload_namespace": "default", "source_app": "productpage",
        "source_version": "v1", "source_principal": CLIENT_ID, "source_cluster": "Kubernetes",
        "destination_workload": "reviews-v1", "destination_workload_namespace": "default",
        "destination_app": "reviews", "destination_version": "v1", "destination_principal": SERVER_ID,
        "destination_service": SERVICE, "destination_service_name": "reviews",
        "destination_service_namespace": "default", "request_protocol": "http", "response_code": "200",
    }
    for proxy, reporter, security in ((m["client"], "source", "unknown"),
                                      (m["server"], "destination", "mutual_tls")):
        (s,) = t.samples(scrape(proxy), "istio_requests_total", reporter=reporter)
        assert s.value == 3
        assert {k: s.labels[k] for k in expected} == expected, s.labels
        assert s.labels["connection_security_policy"] == security

    def traces():
        spans = m["collector"].received()
        by_trace = {}
        for span in spans:
            by_trace.setdefault(span["trace_id"], []).append(span)
        complete = [v for v in by_trace.values() if len(v) == 2]
        return complete if len(complete) == 3 else None

    for pair in wait_until(traces, 20, what="3 traces of 2 spans at the collector"):
        kinds = {span["kind"]: span for span in pair}
        client, server = kinds[3], kinds[2]  # OTLP SPAN_KIND_CLIENT, SPAN_KIND_SERVER
        assert client["parent_id"] is None and server["parent_id"] == client["span_id"]
        assert (client["service"], server["service"]) == ("productpage.default", "reviews.default")
        assert client["attributes"]["upstream_cluster"] == f"outbound|{m['ports']['http']}||{SERVICE}"
    assert m["client"].stat("tracing.opentelemetry.spans_dropped") == 0


def test_tcp_metrics_with_peers_from_the_registry(mesh):
    m = mesh
    with socket.create_connection(("127.0.0.42", m["ports"]["tcp"]), timeout=10) as s:
        s.sendall(b"x" * 1000)
        got = b""
        while len(got) < 1000:
            chunk = s.recv(65536)
            assert chunk, "closed early"
            got += chunk
    for proxy, reporter in ((m["client"], "source"), (m["server"], "destination")):
        wait_until(lambda p=proxy, r=reporter: t.value(scrape(p), "istio_tcp_connections_closed_total",
                                                       reporter=r) == 1,
                   what=f"the {reporter} side counting the connection closed")
        text = scrape(proxy)
        (s,) = t.samples(text, "istio_tcp_connections_opened_total", reporter=reporter)
        assert s.value == 1
        assert s.labels["destination_service"] == TCP_SERVICE
        assert s.labels["request_protocol"] == "tcp"
        # no peer metadata on TCP: the other side is named from the mesh's registry by its principal
        assert (s.labels["source_workload"], s.labels["source_principal"]) == ("productpage-v1", CLIENT_ID)
        assert (s.labels["destination_workload"], s.labels["destination_principal"]) == ("reviews-v1", SERVER_ID)
        assert t.value(text, "istio_tcp_received_bytes_total", reporter=reporter) == 1000
        assert t.value(text, "istio_tcp_sent_bytes_total", reporter=reporter) == 1000
    (s,) = t.samples(scrape(m["server"]), "istio_tcp_connections_opened_total")
    assert s.labels["connection_security_policy"] == "mutual_tls"
