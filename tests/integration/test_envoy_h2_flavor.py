"""The control plane's Envoy flavor with issue 10's translation: a mesh with
gRPC and HTTP/2 ports (HTTP/2 clusters inbound and outbound), a
DestinationRule h2UpgradePolicy UPGRADE with maxConcurrentStreams, a
VirtualService with gRPC retry conditions and a timeout (timeout, max_grpc_timeout),
WebSocket upgrade_configs and the h2 ALPN of inbound mTLS chains: the views
of the server and of the client, put together as static resources, pass
`envoy --mode validate` (Envoy 1.40)."""
from __future__ import annotations

import json
import subprocess

import pytest
from google.protobuf import json_format
from support import mtls
from support.envoy import envoy_binary
from support.net import free_port

from meshcore import ca
from meshcore.controlplane import flavors, views
from meshcore.translate import Security, load_dir
from meshcore.xds import resources as xr

pytestmark = pytest.mark.skipif(envoy_binary() is None, reason="envoy not installed (scripts/setup.sh)")

DR = """apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: api, namespace: default}
spec:
  host: api
  trafficPolicy:
    connectionPool: {http: {h2UpgradePolicy: UPGRADE, maxConcurrentStreams: 64, maxRequestsPerConnection: 100}}
"""
VS = """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api, namespace: default}
spec:
  hosts: [api]
  http:
  - route: [{destination: {host: api}}]
    timeout: 3s
    retries: {attempts: 2, retryOn: "unavailable,internal,deadline-exceeded,resource-exhausted,cancelled"}
"""


def validate(tmp_path, view, certs, name):
    res = xr.Resources()
    for type_url in xr.PUSH_ORDER:
        for key, message in views.messages_of(view.for_node("127.0.0.1", flavors.ENVOY), type_url).items():
            res.add(type_url, key, message)
    secrets = [{"name": "default", "tls_certificate": {
        "certificate_chain": {"inline_string": (certs / "cert-chain.pem").read_text()},
        "private_key": {"inline_string": (certs / "key.pem").read_text()}}}]
    bootstrap = json_format.MessageToDict(xr.materialize(res, secrets), preserving_proto_field_name=True)
    bootstrap["admin"] = {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}}
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(bootstrap))
    r = subprocess.run([envoy_binary(), "--mode", "validate", "-c", str(path), "--disable-hot-restart"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    return bootstrap


def test_envoy_validates_h2_and_grpc_views(tmp_path):
    authority = ca.CertificateAuthority.init(str(tmp_path / "ca"), "cluster.local")
    certs = tmp_path / "certs"
    ca.write_workload_dir(authority, str(certs), "default", "api", ttl="1h")
    ports = {"http": free_port(), "grpc-api": free_port(), "http2-stream": free_port()}
    inbound = {name: free_port() for name in ports}
    apps = {name: free_port() for name in ports}
    mesh_dir = mtls.write_mesh(
        tmp_path / "mesh",
        mtls.service("api", ports, {"app": "api"}),
        mtls.workload_entry("api", "api", {"app": "api"}, apps,
                            ",".join(f"{n}={p}" for n, p in inbound.items())),
        mtls.workload_entry("frontend", "frontend", {"app": "frontend"}, address="127.0.0.2"),
        mtls.peer_authentication("STRICT"), DR, VS)
    bundle = (certs / "trust-bundle.pem").read_text()
    built = views.build("v1", load_dir(mesh_dir), Security(), bundle).views
    server = validate(tmp_path, built["default/api"], certs, "api")
    client = validate(tmp_path, built["default/frontend"], certs, "frontend")

    def clusters(b):
        return {c["name"]: c for c in b["static_resources"]["clusters"]}

    http_options = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
    inbound_grpc = clusters(server)[f"inbound|{apps['grpc-api']}||"]
    assert "http2_protocol_options" in inbound_grpc["typed_extension_protocol_options"][http_options][
        "explicit_http_config"]
    outbound = clusters(client)[f"outbound|{ports['http']}||api.default.svc.cluster.local"]
    assert outbound["typed_extension_protocol_options"][http_options]["explicit_http_config"] == {
        "http2_protocol_options": {"max_concurrent_streams": 64}}
