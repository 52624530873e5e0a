"""HTTP/2 and gRPC in the Istio translation (issue 10), compared with what istiod emits.

The expected xDS is istiod's, read from its source (pilot/pkg/networking/core):
- cluster_builder.go setUpstreamProtocol: a port whose protocol IsHTTP2() (HTTP2, GRPC,
  GRPC-Web; appProtocol h2c / kubernetes.io/h2c is HTTP2) gets
  typed_extension_protocol_options[HttpProtocolOptions].explicit_http_config.http2_protocol_options
  {} on its outbound and its inbound cluster;
- cluster_traffic_policy.go shouldH2Upgrade (outbound only): DestinationRule
  h2UpgradePolicy UPGRADE -> HTTP/2, DO_NOT_UPGRADE -> not, else meshConfig's
  h2UpgradePolicy for HTTP ports (default DO_NOT_UPGRADE); applyConnectionPool:
  maxRequestsPerConnection -> common_http_protocol_options.max_requests_per_connection,
  http2MaxRequests -> circuit breaker max_requests, maxConcurrentStreams ->
  http2_protocol_options.max_concurrent_streams of an HTTP/2 cluster, useClientProtocol ->
  use_downstream_protocol_config {http_protocol_options, http2_protocol_options};
- route/route.go setTimeout: every sidecar route honours grpc-timeout capped by the route's
  timeout (istiod writes the deprecated max_grpc_timeout; meshcore its replacement
  max_stream_duration.grpc_timeout_header_max), the default routes (BuildDefaultHTTPInboundRoute)
  max_stream_duration {0s, grpc_timeout_header_max 0s}; retry/retry.go parseRetryOn passes
  gRPC retry names (cancelled, deadline-exceeded, internal, resource-exhausted, unavailable)
  through to retry_on;
- listener builder: upgrade_configs [{upgrade_type: websocket}] on every HTTP connection
  manager; security/authn BuildInboundTLS: an HTTP chain's ALPN is util.ALPNHttp ["h2", "http/1.1"].
"""
import pathlib

import pytest
import yaml
from google.protobuf import json_format

from meshcore import xds_types
from meshcore.config import validate_bootstrap
from meshcore.translate import check, load_texts, read_documents, translate

R = "reviews.default.svc.cluster.local"
REGISTRY = """
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec:
  selector: {app: reviews}
  ports:
  - {name: http, port: 9080}
  - {name: grpc-api, port: 9090}
  - {name: web, port: 9091, appProtocol: kubernetes.io/h2c}
  - {name: http2-stream, port: 9092}
  - {name: grpc-web, port: 9093}
  - {name: tcp, port: 9094}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: reviews-v1
  namespace: default
  annotations: {"sidecar.meshcore.dev/inbound-ports": "http=29080,grpc-api=29090"}
spec: {address: 10.0.0.1, labels: {app: reviews, version: v1}, serviceAccount: reviews}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: client, namespace: default}
spec: {address: 10.0.5.5, labels: {app: client}}
"""
H2 = {"explicit_http_config": {"http2_protocol_options": {}}}
H1 = {"explicit_http_config": {"http_protocol_options": {}}}


def doc(kind, spec, name="reviews", namespace="default"):
    api = "v1" if kind == "ConfigMap" else "networking.istio.io/v1"
    return yaml.safe_dump({"apiVersion": api, "kind": kind, "metadata": {"name": name, "namespace": namespace},
                           **({"data": spec} if kind == "ConfigMap" else {"spec": spec})})


def mesh_config(**fields):
    return doc("ConfigMap", {"mesh": yaml.safe_dump(fields)}, name="istio", namespace="istio-system")


def bootstrap(*docs, workload="default/client"):
    mesh = load_texts({"registry.yaml": REGISTRY, **{f"d{i}.yaml": d for i, d in enumerate(docs)}})
    assert [str(f) for f in mesh.findings if f.is_error] == []
    t = translate(mesh, workload)
    assert [str(f) for f in t.errors] == []
    validate_bootstrap(t.bootstrap)  # the core's xDS subset takes every field below
    return t.bootstrap


def options(b, name):
    """A cluster's HttpProtocolOptions as a dict without its @type, or None."""
    c = next(c for c in b.static_resources.clusters if c.name == name)
    if xds_types.UPSTREAM_HTTP_OPTIONS not in c.typed_extension_protocol_options:
        return None
    msg = xds_types.unpack(c.typed_extension_protocol_options[xds_types.UPSTREAM_HTTP_OPTIONS])
    return json_format.MessageToDict(msg, preserving_proto_field_name=True)


def hcm(b, port, chain=0):
    ls = next(ls for ls in b.static_resources.listeners if ls.address.socket_address.port_value == port)
    return ls, xds_types.unpack(ls.filter_chains[chain].filters[-1].typed_config)


@pytest.mark.parametrize("port, want", [(9080, H1), (9090, H2), (9091, H2), (9092, H2), (9093, H2)])
def test_port_protocol_picks_the_upstream_protocol_as_istiod(port, want):
    assert options(bootstrap(), f"outbound|{port}||{R}") == want


def test_tcp_ports_get_no_http_options():
    assert options(bootstrap(), f"outbound|9094||{R}") is None


def test_h2_upgrade_policy_destination_rule_then_mesh_config():
    upgrade = doc("DestinationRule", {"host": "reviews", "trafficPolicy": {
        "connectionPool": {"http": {"h2UpgradePolicy": "UPGRADE", "maxConcurrentStreams": 50,
                                    "http2MaxRequests": 200, "maxRequestsPerConnection": 10}}},
        "subsets": [{"name": "v1", "labels": {"version": "v1"},
                     "trafficPolicy": {"connectionPool": {"http": {"h2UpgradePolicy": "DO_NOT_UPGRADE"}}}}]})
    b = bootstrap(upgrade)
    assert options(b, f"outbound|9080||{R}") == {
        "common_http_protocol_options": {"max_requests_per_connection": 10},
        "explicit_http_config": {"http2_protocol_options": {"max_concurrent_streams": 50}}}
    c = next(c for c in b.static_resources.clusters if c.name == f"outbound|9080||{R}")
    assert c.circuit_breakers.thresholds[0].max_requests.value == 200
    assert options(b, f"outbound|9080|v1|{R}") == H1  # the subset's policy replaces the pool whole
    assert options(b, f"outbound|9090|v1|{R}") == H2  # a gRPC port stays HTTP/2 (setUpstreamProtocol)
    # meshConfig h2UpgradePolicy UPGRADE: every HTTP port, unless its DestinationRule says otherwise
    b = bootstrap(mesh_config(h2UpgradePolicy="UPGRADE"))
    assert options(b, f"outbound|9080||{R}") == H2
    b = bootstrap(mesh_config(h2UpgradePolicy="UPGRADE"), doc("DestinationRule", {"host": "reviews", "trafficPolicy": {
        "connectionPool": {"http": {"h2UpgradePolicy": "DO_NOT_UPGRADE"}}}}))
    assert options(b, f"outbound|9080||{R}") == H1


def test_use_client_protocol_is_use_downstream_protocol():
    b = bootstrap(doc("DestinationRule", {"host": "reviews", "trafficPolicy": {
        "connectionPool": {"http": {"useClientProtocol": True}}}}))
    assert options(b, f"outbound|9080||{R}") == {
        "use_downstream_protocol_config": {"http_protocol_options": {}, "http2_protocol_options": {}}}


def test_inbound_grpc_port_speaks_h2_to_the_application_and_offers_h2_by_alpn():
    b = bootstrap(workload="default/reviews-v1")
    assert options(b, "inbound|9090||") == H2
    assert options(b, "inbound|9080||") is None  # Envoy's default, HTTP/1.1
    for port in (29080, 29090):
        ls, h = hcm(b, port)
        assert [u.upgrade_type for u in h.upgrade_configs] == ["websocket"]
        assert h.codec_type == h.AUTO
        action = h.route_config.virtual_hosts[0].routes[0].route
        assert action.max_stream_duration.HasField("grpc_timeout_header_max")  # istiod's inbound default route
        for chain in ls.filter_chains:
            if chain.HasField("transport_socket"):
                tls = xds_types.unpack(chain.transport_socket.typed_config)
                assert list(tls.common_tls_context.alpn_protocols) == ["h2", "http/1.1"]


def test_routes_honour_grpc_timeout_and_pass_grpc_retry_names():
    vs = doc("VirtualService", {"hosts": ["reviews"], "http": [
        {"match": [{"port": 9090}], "route": [{"destination": {"host": "reviews", "port": {"number": 9090}}}],
         "timeout": "3s",
         "retries": {"attempts": 2, "retryOn": "cancelled,deadline-exceeded,internal,resource-exhausted,unavailable"}},
    ]})
    b = bootstrap(vs)
    _, h = hcm(b, 9090)
    [route] = h.route_config.virtual_hosts[0].routes
    d = json_format.MessageToDict(route.route, preserving_proto_field_name=True)
    assert d["timeout"] == "3s" and d["max_grpc_timeout"] == "3s" and "max_stream_duration" not in d
    assert d["retry_policy"]["retry_on"] == "cancelled,deadline-exceeded,internal,resource-exhausted,unavailable"
    _, h = hcm(b, 9080)  # no VirtualService: the default route, grpc-timeout uncapped
    d = json_format.MessageToDict(h.route_config.virtual_hosts[0].routes[0].route, preserving_proto_field_name=True)
    assert d["max_stream_duration"] == {"max_stream_duration": "0s", "grpc_timeout_header_max": "0s"}
    assert [u.upgrade_type for u in h.upgrade_configs] == ["websocket"]


def test_http2_keep_alive_is_connection_keepalive_on_h2_clusters():
    """DestinationRule connectionPool.http.http2KeepAlive: PINGs on the HTTP/2
    clusters (an HTTP/1.1 cluster has no PING frame); a missing timeout is
    gRPC's 20s, as Envoy requires one."""
    b = bootstrap(doc("DestinationRule", {"host": "reviews", "trafficPolicy": {
        "connectionPool": {"http": {"http2KeepAlive": {"interval": "15s", "timeout": "5s"}}}}}))
    assert options(b, f"outbound|9090||{R}") == {"explicit_http_config": {"http2_protocol_options": {
        "connection_keepalive": {"interval": "15s", "timeout": "5s"}}}}
    assert options(b, f"outbound|9080||{R}") == H1
    b = bootstrap(doc("DestinationRule", {"host": "reviews", "trafficPolicy": {
        "connectionPool": {"http": {"h2UpgradePolicy": "UPGRADE", "http2KeepAlive": {"interval": "1m"}}}}}))
    assert options(b, f"outbound|9080||{R}") == {"explicit_http_config": {"http2_protocol_options": {
        "connection_keepalive": {"interval": "60s", "timeout": "20s"}}}}


def test_meshcore_check_accepts_grpc_ports(tmp_path):
    from meshcore.cli import main

    (tmp_path / "registry.yaml").write_text(REGISTRY)
    (tmp_path / "dr.yaml").write_text(doc("DestinationRule", {"host": "reviews", "trafficPolicy": {
        "connectionPool": {"http": {"h2UpgradePolicy": "UPGRADE", "maxConcurrentStreams": 10}}}}))
    mesh = load_texts({p.name: p.read_text() for p in tmp_path.iterdir()})
    found = check(mesh, ["default/client", "default/reviews-v1"])
    assert [str(f) for f in found if f.is_error] == []
    assert [str(f) for f in found if "HTTP/1.1" in f.message or "h2UpgradePolicy" in f.path] == []
    assert main(["check", str(tmp_path)]) == 0


CONFORMANCE = pathlib.Path(__file__).resolve().parents[3] / "shared" / "conformance" / "istio" / "testdata-config"


@pytest.mark.skipif(not (CONFORMANCE / "none.yaml").is_file(), reason=f"Istio conformance data not at {CONFORMANCE}")
def test_conformance_grpc_port_is_an_h2_cluster():
    """Istio's testdata (fortio's grpc-ping port): the cluster speaks HTTP/2, as istiod's."""
    docs = [d for d in read_documents((CONFORMANCE / "none.yaml").read_text())
            if d and d.get("kind") in ("Service", "ServiceEntry")]
    grpc = [(d["metadata"], p) for d in docs if d["kind"] == "Service" for p in d["spec"]["ports"]
            if p.get("name", "").startswith("grpc")]
    assert grpc
    texts = {"istio.yaml": yaml.safe_dump_all([d for d in docs if d["kind"] == "Service"]),
             "we.yaml": yaml.safe_dump_all([
                 {"apiVersion": "networking.istio.io/v1", "kind": "WorkloadEntry",
                  "metadata": {"name": "fortio-1", "namespace": meta["namespace"]},
                  "spec": {"address": "10.1.0.1", "labels": {"app": "fortio"}}} for meta, _ in grpc[:1]] + [
                 {"apiVersion": "networking.istio.io/v1", "kind": "WorkloadEntry",
                  "metadata": {"name": "client", "namespace": grpc[0][0]["namespace"]},
                  "spec": {"address": "10.1.0.9", "labels": {"app": "client"}}}])}
    mesh = load_texts(texts)
    t = translate(mesh, f"{grpc[0][0]['namespace']}/client")
    validate_bootstrap(t.bootstrap)
    for meta, port in grpc:
        name = f"outbound|{port['port']}||{meta['name']}.{meta['namespace']}.svc.cluster.local"
        assert options(t.bootstrap, name) == H2


def test_the_engine_accepts_h2_translations():
    """The core takes every field above before its HTTP/2 codec exists (schema.py's
    issue-10 rows): h2 clusters, max_stream_duration, upgrade_configs, ALPN."""
    import socket

    import meshcore

    def free_port():
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    grpc_port, http_port = free_port(), free_port()
    registry = f"""
apiVersion: v1
kind: Service
metadata: {{name: api, namespace: default}}
spec:
  selector: {{app: api}}
  ports: [{{name: grpc, port: {grpc_port}}}, {{name: http, port: {http_port}}}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: api-1, namespace: default}}
spec: {{address: 127.0.0.1, labels: {{app: api}}}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: client, namespace: default}}
spec: {{address: 127.0.0.2, labels: {{app: client}}}}
"""
    dr = doc("DestinationRule", {"host": "api", "trafficPolicy": {"connectionPool": {"http": {
        "h2UpgradePolicy": "UPGRADE", "maxConcurrentStreams": 64, "maxRequestsPerConnection": 100}}}}, name="api")
    vs = doc("VirtualService", {"hosts": ["api"], "http": [{"route": [{"destination": {"host": "api"}}],
                                                             "timeout": "2s", "retries": {
        "attempts": 2, "retryOn": "unavailable,internal,deadline-exceeded"}}]}, name="api")
    mesh = load_texts({"registry.yaml": registry, "dr.yaml": dr, "vs.yaml": vs})
    t = translate(mesh, "default/client")
    assert [str(f) for f in t.errors] == []
    assert options(t.bootstrap, f"outbound|{grpc_port}||api.default.svc.cluster.local")["explicit_http_config"] == \
        {"http2_protocol_options": {"max_concurrent_streams": 64}}
    engine = meshcore.Engine(concurrency=1)
    engine.start()
    try:
        engine.apply(t.bootstrap, "translated")
        assert sorted(p for _, _, p in engine.listeners()) == sorted([grpc_port, http_port])
    finally:
        engine.stop()
