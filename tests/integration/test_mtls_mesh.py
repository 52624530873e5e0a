"""Two sidecars on loopback, each `meshcore proxy --mesh-dir --workload ... --ca-dir`,
with plaintext applications behind them: the client application talks
plaintext to its sidecar, the server application sees plaintext, and between
the sidecars there is mTLS only (a packet capture of that port shows the TLS
handshake and never the application's bytes). Then authorization end to end:
the allowed principal gets 200, another principal 403 "RBAC: access denied",
DENY is evaluated before ALLOW, path and method rules, a TCP connection from
a principal that is not allowed is closed."""
from __future__ import annotations

import socket
import ssl
import subprocess

import pytest
from support import mtls
from support.net import free_port, wait_until

AUTHZ = """apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: checkout-frontend, namespace: default}
spec:
  selector: {matchLabels: {app: checkout}}
  rules:
  - from: [{source: {principals: ["cluster.local/ns/default/sa/frontend"]}}]
    to: [{operation: {methods: ["GET", "POST"], paths: ["/api/*", "/"]}}]
  - from: [{source: {principals: ["cluster.local/ns/default/sa/batch"]}}]
    to: [{operation: {ports: ["%(ledger_app)d"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: checkout-no-admin, namespace: default}
spec:
  selector: {matchLabels: {app: checkout}}
  action: DENY
  rules:  # with the port: a DENY rule of HTTP attributes only would close every TCP connection (as in Istio)
  - to: [{operation: {ports: ["%(http_app)d"], paths: ["/api/admin*"]}}]
"""


def mesh_config(normalization):
    """The ConfigMap istio with MeshConfig pathNormalization."""
    return ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio, namespace: istio-system}\n"
            f"data:\n  mesh: |\n    pathNormalization: {{normalization: {normalization}}}\n")


@pytest.fixture
def mesh(tmp_path, request):
    normalization = getattr(request, "param", None)  # MeshConfig pathNormalization; None: no ConfigMap
    authority = mtls.make_ca(tmp_path / "ca")
    app, echo = mtls.PlainApp("checkout"), mtls.TcpEcho()
    ports = {"http_in": free_port(), "tcp_in": free_port(), "http": free_port(), "tcp": free_port()}
    docs = [
        mtls.service("checkout", {"http": ports["http"], "tcp-ledger": ports["tcp"]}, {"app": "checkout"}),
        mtls.workload_entry("checkout", "checkout", {"app": "checkout"},
                            {"http": app.port, "tcp-ledger": echo.port},
                            f"http={ports['http_in']},tcp-ledger={ports['tcp_in']}"),
        mtls.workload_entry("frontend", "frontend", {"app": "frontend"}),
        mtls.peer_authentication("STRICT"),
        AUTHZ % {"ledger_app": echo.port, "http_app": app.port},
    ] + ([mesh_config(normalization)] if normalization else [])
    mesh_dir = mtls.write_mesh(tmp_path / "mesh", *docs)
    server = mtls.Sidecar(mesh_dir, "default/checkout", tmp_path / "ca", tmp_path / "checkout.log",
                          outbound_address="127.0.0.31")
    client = mtls.Sidecar(mesh_dir, "default/frontend", tmp_path / "ca", tmp_path / "frontend.log",
                          outbound_address="127.0.0.32")
    try:
        server.start()
        client.start()
        yield {"tmp": tmp_path, "ca": authority, "app": app, "echo": echo, "ports": ports, "server": server,
               "client": client, "batch": mtls.write_svid(authority, tmp_path / "batch", "default", "batch"),
               "frontend": mtls.write_svid(authority, tmp_path / "frontend", "default", "frontend")}
    finally:
        client.close()
        server.close()
        app.stop()
        echo.stop()


def via_client(m, path, method="GET", data=None):
    """The client application's request: plaintext to its sidecar's outbound listener."""
    return mtls.curl(f"http://127.0.0.32:{m['ports']['http']}{path}", None, method=method, data=data)


@pytest.mark.skipif(not mtls.tcpdump_available(), reason="tcpdump is not installed (Debian package: tcpdump)")
def test_between_the_sidecars_there_is_only_tls(mesh):
    m = mesh
    marker = b"MARKER-plaintext-never-on-the-wire-7d1f"
    try:
        capture = mtls.Capture(m["tmp"] / "lo.pcap", m["ports"]["http_in"])
        with capture:
            status, body, _ = via_client(m, "/api/orders", method="POST", data=marker.decode())
    except (RuntimeError, PermissionError, subprocess.SubprocessError) as e:
        pytest.skip(f"cannot capture on lo: {e}")
    assert (status, body) == (200, "checkout POST /api/orders")
    assert m["app"].saw(marker)  # the server application got it in plaintext
    payloads = capture.payloads()
    assert payloads, "nothing captured"
    assert any(mtls.is_tls_handshake(p, 1) for p in payloads), "no TLS ClientHello between the sidecars"
    assert any(mtls.is_tls_handshake(p, 2) for p in payloads), "no TLS ServerHello between the sidecars"
    assert not any(marker in p for p in payloads)
    assert not any(b"POST /api/orders" in p for p in payloads)
    assert m["server"].stat(f"listener.127.0.0.1_{m['ports']['http_in']}.ssl.handshake") >= 1
    cluster = f"cluster.outbound|{m['ports']['http']}||checkout.default.svc.cluster.local"
    assert m["client"].stat(f"{cluster}.ssl.handshake") >= 1


def test_authorization_end_to_end(mesh):
    m = mesh
    prefix = f"http.inbound_127.0.0.1_{m['app'].port}.rbac"
    assert via_client(m, "/")[:2] == (200, "checkout GET /")
    assert via_client(m, "/api/orders")[:2] == (200, "checkout GET /api/orders")
    assert via_client(m, "/api/orders", method="POST", data="x")[:2] == (200, "checkout POST /api/orders")
    denied = m["server"].stat(f"{prefix}.denied")
    # method rule: PUT is not among GET, POST
    assert via_client(m, "/api/orders", method="PUT", data="x")[:2] == (403, "RBAC: access denied")
    # path rule: /other is not under /api/ nor /
    assert via_client(m, "/other")[:2] == (403, "RBAC: access denied")
    # DENY before ALLOW: /api/admin... matches the ALLOW rule too
    assert via_client(m, "/api/admin/users")[:2] == (403, "RBAC: access denied")
    # another principal (batch, straight to the inbound port with its SVID)
    inbound = f"https://127.0.0.1:{m['ports']['http_in']}/"
    assert mtls.curl(inbound, m["batch"])[:2] == (403, "RBAC: access denied")
    assert mtls.curl(inbound, m["frontend"])[:2] == (200, "checkout GET /")
    assert m["server"].stat(f"{prefix}.denied") == denied + 4
    assert not m["app"].saw(b"/api/admin") and not m["app"].saw(b"PUT ")

    # TCP: the ledger allows batch only. frontend (through its sidecar) is closed...
    tcp_prefix = f"tcp.inbound|{m['echo'].port}||.rbac.denied"
    before = m["server"].stat(tcp_prefix)
    with socket.create_connection(("127.0.0.32", m["ports"]["tcp"]), timeout=10) as s:
        try:
            s.sendall(b"ledger entry")
            got = s.recv(100)
        except ConnectionResetError:
            got = b""
        assert got == b""
    wait_until(lambda: m["server"].stat(tcp_prefix) > before, what="tcp rbac.denied")
    # ...batch (mTLS with its SVID, straight to the inbound port) gets its echo.
    ctx = ssl.create_default_context(cafile=m["batch"]["trust-bundle.pem"])
    ctx.check_hostname = False  # a SPIFFE certificate names no host; the chain is verified
    ctx.load_cert_chain(m["batch"]["cert-chain.pem"], m["batch"]["key.pem"])
    with socket.create_connection(("127.0.0.1", m["ports"]["tcp_in"]), timeout=10) as raw, \
            ctx.wrap_socket(raw) as s:
        s.sendall(b"ledger entry from batch")
        assert s.recv(100) == b"ledger entry from batch"


def raw_get(address, port, path):
    """(status, body) of a GET written as is (curl would normalize the path itself)."""
    with socket.create_connection((address, port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: checkout.default.svc.cluster.local\r\n"
                  "Connection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode()


# (path as sent, Istio's default BASE, NONE, MERGE_SLASHES): 403, or the path the application gets
BYPASSES = [
    ("/api/x/../admin/users", 403, "/api/x/../admin/users", 403),
    ("/api/%61dmin/users", 403, "/api/%61dmin/users", 403),
    ("/api//admin/users", "/api//admin/users", "/api//admin/users", 403),
    ("/api/./admin", 403, "/api/./admin", 403),
    ("/api/orders/%2e%2e/admin", 403, "/api/orders/%2e%2e/admin", 403),
    ("/api/%6frders", "/api/orders", "/api/%6frders", "/api/orders"),
]


@pytest.mark.parametrize("mesh, column", [(None, 1), ("NONE", 2), ("MERGE_SLASHES", 3)], indirect=["mesh"],
                         ids=["default-BASE", "NONE", "MERGE_SLASHES"])
def test_path_tricks_against_a_deny_rule(mesh, column):
    """The DENY rule on /api/admin* holds against path tricks as Istio's
    pathNormalization says (both sidecars normalize; the application gets
    the normalized path), and NONE lets them through to the application."""
    m = mesh
    for case in BYPASSES:
        path, want = case[0], case[column]
        status, body = raw_get("127.0.0.32", m["ports"]["http"], path)
        if want == 403:
            assert status == 403, (path, status, body)
        else:
            assert (status, body) == (200, f"checkout GET {want}"), path
