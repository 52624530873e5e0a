"""Two sidecars on loopback with Istio's telemetry filters, and the collectors
that receive what they report.

    app client -> [productpage-v1 sidecar, OUTBOUND listener]
               -> [reviews-v1 sidecar, INBOUND listener] -> backend (plaintext)

Bootstraps are Envoy v3 documents as Istio would write them for these two
workloads: node metadata (WORKLOAD_NAME, NAMESPACE, LABELS app / version),
`istio.metadata_exchange` and `istio.stats` HTTP filters, Istio-style cluster
names with `filter_metadata.istio.services`, optionally mTLS between the
sidecars (certificates from meshcore's own CA) and tracing to a collector.
"""
from __future__ import annotations

import http.server
import json
import threading

from prometheus_client.parser import text_string_to_metric_families

from meshcore import ca

from . import http as h

SERVICE = "reviews.default.svc.cluster.local"
OUT_CLUSTER = f"outbound|9080||{SERVICE}"
IN_CLUSTER = "inbound|9080||"
TRUST_DOMAIN = "cluster.local"
CLIENT_ID = "spiffe://cluster.local/ns/default/sa/bookinfo-productpage"
SERVER_ID = "spiffe://cluster.local/ns/default/sa/bookinfo-reviews"


def istio_filter(name: str, type_url: str, value=None) -> dict:
    tc = {"@type": "type.googleapis.com/udpa.type.v1.TypedStruct", "type_url": type_url}
    if value:
        tc["value"] = value
    return {"name": name, "typed_config": tc}


STATS = istio_filter("istio.stats", "type.googleapis.com/stats.PluginConfig")
EXCHANGE = istio_filter("istio.metadata_exchange", "type.googleapis.com/io.istio.http.peer_metadata.Config",
                        {"upstream_discovery": [{"istio_headers": {}}],
                         "upstream_propagation": [{"istio_headers": {}}]})


def node(workload: str, app: str, version: str = "v1", ns: str = "default") -> dict:
    return {"id": f"sidecar~127.0.0.1~{workload}.{ns}~{ns}.svc.cluster.local", "cluster": f"{app}.{ns}",
            "metadata": {"NAME": workload, "NAMESPACE": ns, "WORKLOAD_NAME": workload, "CLUSTER_ID": "Kubernetes",
                         "MESH_ID": "cluster.local", "LABELS": {"app": app, "version": version}}}


def otel_tracing(cluster: str = "collector", sampling: float = 100.0, service: str | None = None) -> dict:
    cfg = {"@type": "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig",
           "http_service": {"http_uri": {"uri": "http://collector/v1/traces", "cluster": cluster, "timeout": "1s"}}}
    if service:
        cfg["service_name"] = service
    return {"random_sampling": {"value": sampling},
            "provider": {"name": "envoy.tracers.opentelemetry", "typed_config": cfg}}


def zipkin_tracing(cluster: str = "collector", sampling: float = 100.0) -> dict:
    return {"random_sampling": {"value": sampling},
            "provider": {"name": "envoy.tracers.zipkin", "typed_config": {
                "@type": "type.googleapis.com/envoy.config.trace.v3.ZipkinConfig",
                "collector_cluster": cluster, "collector_endpoint": "/api/v2/spans",
                "collector_endpoint_version": "HTTP_JSON"}}}


def _tls(downstream: bool, certs: dict, peer_id: str) -> dict:
    common = {"tls_certificates": [{"certificate_chain": {"filename": certs["cert-chain.pem"]},
                                    "private_key": {"filename": certs["key.pem"]}}],
              "validation_context": {"trusted_ca": {"filename": certs["trust-bundle.pem"]},
                                     "match_typed_subject_alt_names": [
                                         {"san_type": "URI", "matcher": {"exact": peer_id}}]}}
    if downstream:
        return {"name": "envoy.transport_sockets.tls", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
            "require_client_certificate": True, "common_tls_context": common}}
    return {"name": "envoy.transport_sockets.tls", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
        "common_tls_context": common}}


def _listener(name: str, direction: str, hcm: dict, transport_socket=None) -> dict:
    chain = {"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}]}
    if transport_socket:
        chain["transport_socket"] = transport_socket
    return {"name": name, "traffic_direction": direction,
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}, "filter_chains": [chain]}


def _hcm(prefix: str, cluster: str, *, exchange: bool, tracing: dict | None, operation: str | None) -> dict:
    route = {"name": f"{prefix}-route", "match": {"prefix": "/"}, "route": {"cluster": cluster}}
    if operation:
        route["decorator"] = {"operation": operation}
    hcm = {"@type": h.HCM_TYPE, "stat_prefix": prefix,
           "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [route]}]},
           "http_filters": ([EXCHANGE] if exchange else []) + [STATS, h.router_filter()]}
    if tracing:
        hcm["tracing"] = tracing
    return hcm


def server_sidecar(backend_port: int, *, certs: dict | None = None, exchange: bool = True,
                   tracing: dict | None = None, collector_port: int | None = None) -> dict:
    """reviews-v1's sidecar: an INBOUND listener in front of the app."""
    inbound = _listener("inbound", "INBOUND",
                        _hcm("inbound_9080", IN_CLUSTER, exchange=exchange, tracing=tracing, operation=None),
                        _tls(True, certs, CLIENT_ID) if certs else None)
    clusters = [h.http_cluster(IN_CLUSTER, [backend_port], metadata={"filter_metadata": {"istio": {"services": [
        {"host": SERVICE, "name": "reviews", "namespace": "default"}]}}})]
    if collector_port:
        clusters.append(h.http_cluster("collector", [collector_port]))
    return {"node": node("reviews-v1", "reviews"), "static_resources": {"listeners": [inbound], "clusters": clusters}}


def client_sidecar(server_port: int, *, certs: dict | None = None, exchange: bool = True,
                   tracing: dict | None = None, collector_port: int | None = None) -> dict:
    """productpage-v1's sidecar: an OUTBOUND listener for reviews."""
    outbound = _listener("outbound", "OUTBOUND",
                         _hcm("outbound_9080", OUT_CLUSTER, exchange=exchange, tracing=tracing,
                              operation=f"{SERVICE}:9080/*"))
    cluster = h.http_cluster(OUT_CLUSTER, [server_port], metadata={"filter_metadata": {"istio": {"services": [
        {"host": SERVICE, "name": "reviews", "namespace": "default"}]}}})
    if certs:
        cluster["transport_socket"] = _tls(False, certs, SERVER_ID)
    clusters = [cluster]
    if collector_port:
        clusters.append(h.http_cluster("collector", [collector_port]))
    return {"node": node("productpage-v1", "productpage"),
            "static_resources": {"listeners": [outbound], "clusters": clusters}}


def mesh_certs(tmp_path) -> tuple[dict, dict]:
    """(client, server) certificate files from a fresh meshcore CA."""
    authority = ca.CertificateAuthority.init(str(tmp_path / "ca"), TRUST_DOMAIN, intermediate=False)
    return (ca.write_workload_dir(authority, str(tmp_path / "client"), "default", "bookinfo-productpage"),
            ca.write_workload_dir(authority, str(tmp_path / "server"), "default", "bookinfo-reviews"))


# ---- reading what the sidecars report ------------------------------------------------------------


def scrape(engine) -> str:
    """The engine's Prometheus exposition, as its admin API serves it."""
    from meshcore.telemetry import prometheus as metrics

    return metrics.exposition(engine.stats(), engine.istio)[0]


def samples(text: str, name: str, **labels) -> list:
    """Samples named `name` whose labels include `labels`."""
    out = []
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                out.append(s)
    return out


def value(text: str, name: str, **labels) -> float:
    """The sum of the matching samples (0 when none)."""
    return sum(s.value for s in samples(text, name, **labels))


# ---- collectors ------------------------------------------------------------------------------


class Collector:
    """An OTLP/HTTP (protobuf) and Zipkin v2 (JSON) trace receiver on loopback.

    spans: every span received, as dicts with hex ids. status: the HTTP
    status it answers with (set 503 to play a failing collector)."""

    def __init__(self):
        self.spans: list[dict] = []
        self.posts = 0
        self.status = 200
        self._lock = threading.Lock()
        collector = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                collector._receive(self.path, self.headers.get("content-type", ""), body)
                self.send_response(collector.status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def _receive(self, path: str, ctype: str, body: bytes) -> None:
        spans = []
        if path == "/v1/traces":
            assert ctype == "application/x-protobuf", ctype
            from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

            req = trace_service_pb2.ExportTraceServiceRequest()
            req.ParseFromString(body)
            for rs in req.resource_spans:
                service = next(a.value.string_value for a in rs.resource.attributes if a.key == "service.name")
                # Field 2 under either name: see meshcore.telemetry.tracing.scope_spans.
                field = ("scope_spans" if "scope_spans" in rs.DESCRIPTOR.fields_by_name
                         else "instrumentation_library_spans")
                for ss in getattr(rs, field):
                    for s in ss.spans:
                        spans.append({
                            "format": "otlp", "service": service, "name": s.name, "kind": s.kind,
                            "trace_id": s.trace_id.hex(), "span_id": s.span_id.hex(),
                            "parent_id": s.parent_span_id.hex() or None,
                            "start_ns": s.start_time_unix_nano, "end_ns": s.end_time_unix_nano,
                            "attributes": {a.key: a.value.string_value for a in s.attributes},
                            "error": s.status.code == 2})
        elif path == "/api/v2/spans":
            assert ctype == "application/json", ctype
            for s in json.loads(body):
                spans.append({
                    "format": "zipkin", "service": s["localEndpoint"]["serviceName"], "name": s["name"],
                    "kind": s["kind"], "trace_id": s["traceId"], "span_id": s["id"],
                    "parent_id": s.get("parentId"), "start_ns": s["timestamp"] * 1000,
                    "end_ns": (s["timestamp"] + s["duration"]) * 1000, "attributes": s["tags"]})
        with self._lock:
            self.posts += 1
            if self.status == 200:
                self.spans.extend(spans)

    def received(self) -> list[dict]:
        with self._lock:
            return list(self.spans)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
