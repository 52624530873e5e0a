"""WebSocket through meshcore (HCM upgrade_configs, proxy/http_upgrade.c), with
the real `websockets` package on both ends: an echo server behind the proxy,
text and binary messages, 1 MB messages, ping/pong, the close handshake,
over a TLS listener too; RBAC still decides on the upgrade request; an
upgrade the listener does not enable is refused as Envoy refuses it (403,
compared with a real Envoy); half-closes cross the tunnel byte for byte."""
import os
import socket
import ssl
import threading

import pytest
import websockets
from support import http as h
from support.envoy import EnvoyProcess, envoy_binary
from support.net import free_port, wait_until
from websockets.sync.client import connect
from websockets.sync.server import serve

from meshcore import ca

WS = [{"upgrade_type": "websocket"}]
MB = 1 << 20
RBAC = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"


@pytest.fixture
def echo_server():
    def echo(conn):
        try:
            for message in conn:
                conn.send(message)
        except websockets.ConnectionClosed:
            pass

    server = serve(echo, "127.0.0.1", 0, max_size=4 * MB)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.socket.getsockname()[1]
    server.shutdown()
    thread.join(5)


def ws_doc(port, **hcm):
    hcm.setdefault("upgrade_configs", WS)
    return h.simple([port], routes=[h.route("/", "backend", route={"timeout": "0s"})], stat_prefix="ws", **hcm)


def exercise(uri, **kw):
    with connect(uri, max_size=4 * MB, open_timeout=10, close_timeout=10, **kw) as ws:
        ws.send("hello")
        assert ws.recv(timeout=10) == "hello"
        ws.send(b"\x00\x01\xffbinary")
        assert ws.recv(timeout=10) == b"\x00\x01\xffbinary"
        big = os.urandom(MB)
        ws.send(big)
        assert ws.recv(timeout=30) == big
        text = "é" * (MB // 2)
        ws.send(text)
        assert ws.recv(timeout=30) == text
        assert ws.ping(b"are you there").wait(10)  # the pong crossed back
        ws.close(1000, "bye")
        assert ws.close_code == 1000  # the server's close frame came back through the tunnel


def test_echo_text_binary_large_ping_close(engine_factory, echo_server):
    engine = engine_factory(config=ws_doc(echo_server))
    exercise(f"ws://127.0.0.1:{engine.listener_port('http')}/chat")
    wait_until(lambda: engine.stats()["http.ws.downstream_cx_upgrades_active"] == 0, what="the tunnel's end")
    st = engine.stats()
    assert st["http.ws.downstream_cx_upgrades_total"] == 1
    assert st["cluster.backend.upstream_rq_101"] == 1  # accounted once, as a 101
    assert st["http.ws.downstream_rq_1xx"] == 1 and st["http.ws.downstream_rq_total"] == 1
    # bytes both ways went through the tunnel: at least the random 1 MB message each way
    # (the text one is compressed by permessage-deflate)
    assert st["http.ws.downstream_cx_rx_bytes_total"] > MB
    assert st["cluster.backend.upstream_cx_rx_bytes_total"] > MB


def test_over_a_tls_listener(engine_factory, echo_server, tmp_path):
    authority = ca.CertificateAuthority.init(str(tmp_path / "ca"), "cluster.local", intermediate=False)
    files = ca.write_workload_dir(authority, str(tmp_path / "server"), "default", "server")
    doc = ws_doc(echo_server)
    doc["static_resources"]["listeners"][0]["filter_chains"][0]["transport_socket"] = {
        "name": "envoy.transport_sockets.tls", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
            "common_tls_context": {"tls_certificates": [{"certificate_chain": {"filename": files["cert-chain.pem"]},
                                                         "private_key": {"filename": files["key.pem"]}}]}}}
    engine = engine_factory(config=doc)
    ctx = ssl.create_default_context(cafile=files["trust-bundle.pem"])
    ctx.check_hostname = False  # a SPIFFE certificate: no DNS name
    exercise(f"wss://127.0.0.1:{engine.listener_port('http')}/chat", ssl=ctx)
    wait_until(lambda: engine.stats()["http.ws.downstream_cx_upgrades_active"] == 0, what="the tunnel's end")
    assert engine.stats()["cluster.backend.upstream_rq_101"] == 1


def test_rbac_decides_on_the_upgrade_request(engine_factory, echo_server):
    deny_admin = {"name": "envoy.filters.http.rbac", "typed_config": {"@type": RBAC, "rules": {
        "action": "DENY", "policies": {"no-admin": {"permissions": [{"url_path": {"path": {"prefix": "/admin"}}}],
                                                    "principals": [{"any": True}]}}}}}
    engine = engine_factory(config=ws_doc(echo_server, http_filters=[deny_admin]))
    port = engine.listener_port("http")
    with pytest.raises(websockets.InvalidStatus) as info:
        connect(f"ws://127.0.0.1:{port}/admin/socket", open_timeout=10)
    assert info.value.response.status_code == 403
    with connect(f"ws://127.0.0.1:{port}/public", open_timeout=10) as ws:
        ws.send("ok")
        assert ws.recv(timeout=10) == "ok"
    st = engine.stats()
    assert st["http.ws.rbac.denied"] == 1 and st["http.ws.rbac.allowed"] == 1


UPGRADE = ("GET /chat HTTP/1.1\r\nHost: svc\r\nConnection: Upgrade\r\nUpgrade: {}\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


def raw_answer(port, upgrade):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(UPGRADE.format(upgrade).encode())
        data = b""
        while b"\r\n\r\n" not in data and (chunk := s.recv(4096)):
            data += chunk
    head = data.split(b"\r\n\r\n", 1)[0].decode().lower()
    return int(head.split(" ")[1]), "connection: close" in head


def test_without_upgrade_configs_as_envoy(engine_factory, backend_factory, tmp_path):
    """Envoy 1.40 measured: an upgrade its listener does not enable gets 403 and a close
    (downstream_rq_ws_on_non_ws_route); "Upgrade: h2c" is dropped and the request
    forwarded without its Connection/Upgrade fields."""
    seen = []

    def handler(req):
        seen.append({k.lower() for k, _ in req.headers})
        return h.Reply(status=200, body=b"x")

    backend = backend_factory("plain", handler)
    doc = h.simple([backend.port], stat_prefix="ws")
    engine = engine_factory(config=doc)
    ours = {u: raw_answer(engine.listener_port("http"), u) for u in ("websocket", "foo", "h2c")}
    assert ours == {"websocket": (403, True), "foo": (403, True), "h2c": (200, False)}
    assert not {"upgrade", "connection"} & seen[-1]
    assert engine.stats()["http.ws.downstream_rq_ws_on_non_ws_route"] == 2
    if envoy_binary() is None:
        pytest.skip("envoy not installed (scripts/setup.sh): meshcore's answers checked, Envoy's not compared")
    port = free_port()
    doc["static_resources"]["listeners"][0]["address"]["socket_address"]["port_value"] = port
    doc["admin"] = {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}}
    import yaml

    envoy = EnvoyProcess(tmp_path, yaml.safe_dump(doc), name="envoy-ws").start()
    try:
        wait_until(lambda: envoy.admin_get("/ready")[0] == 200, timeout=30, what="envoy's listeners")
        theirs = {u: raw_answer(port, u) for u in ("websocket", "foo", "h2c")}
    finally:
        envoy.stop()
    assert ours == theirs


class UpgradeEcho:
    """A raw upstream: answers 101, echoes bytes until the client's FIN, then
    sends b"bye" and closes its side (the tunnel's half-closes, byte for byte)."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        conn, _ = self.sock.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(4096)
            rest = data.split(b"\r\n\r\n", 1)[1]
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
            if rest:
                conn.sendall(rest)
            while chunk := conn.recv(65536):
                conn.sendall(chunk)
            conn.sendall(b"bye")
            conn.shutdown(socket.SHUT_WR)

    def close(self):
        self.sock.close()


def test_half_close_crosses_the_tunnel(engine_factory):
    up = UpgradeEcho()
    engine = engine_factory(config=ws_doc(up.port))
    try:
        with socket.create_connection(("127.0.0.1", engine.listener_port("http")), timeout=10) as s:
            s.sendall(UPGRADE.format("websocket").encode() + b"early bytes;")  # before the 101 too
            data = b""
            while b"\r\n\r\n" not in data:
                data += s.recv(4096)
            head, body = data.split(b"\r\n\r\n", 1)
            assert head.startswith(b"HTTP/1.1 101") and b"upgrade: websocket" in head.lower()
            payload = os.urandom(3 * MB)  # more than any buffer: the tunnel's backpressure at work
            sender = threading.Thread(target=lambda: (s.sendall(payload), s.shutdown(socket.SHUT_WR)))
            sender.start()
            while chunk := s.recv(1 << 16):
                body += chunk
            sender.join(10)
        assert body == b"early bytes;" + payload + b"bye"
    finally:
        up.close()
    wait_until(lambda: engine.stats()["http.ws.downstream_cx_upgrades_active"] == 0, what="the tunnel's end")
    assert engine.stats()["http.ws.downstream_rq_1xx"] == 1


def test_through_two_sidecars_with_mtls(tmp_path, echo_server):
    """The translation's upgrade_configs in a mesh: client app -> its sidecar (plaintext)
    -> mTLS -> the server's sidecar -> the echo server; an AuthorizationPolicy still
    decides on the upgrade request at the server's sidecar."""
    from support import mtls

    mtls.make_ca(tmp_path / "ca")
    ports = {"http_in": free_port(), "http": free_port()}
    deny = ("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
            "metadata: {name: no-admin, namespace: default}\nspec:\n  selector: {matchLabels: {app: chat}}\n"
            "  action: DENY\n  rules: [{to: [{operation: {paths: [\"/admin*\"]}}]}]\n")
    mesh_dir = mtls.write_mesh(
        tmp_path / "mesh",
        mtls.service("chat", {"http": ports["http"]}, {"app": "chat"}),
        mtls.workload_entry("chat", "chat", {"app": "chat"}, {"http": echo_server}, f"http={ports['http_in']}"),
        mtls.workload_entry("frontend", "frontend", {"app": "frontend"}),
        mtls.peer_authentication("STRICT"), deny)
    server = mtls.Sidecar(mesh_dir, "default/chat", tmp_path / "ca", tmp_path / "chat.log",
                          outbound_address="127.0.0.41")
    client = mtls.Sidecar(mesh_dir, "default/frontend", tmp_path / "ca", tmp_path / "frontend.log",
                          outbound_address="127.0.0.42")
    try:
        server.start()
        client.start()
        # the app dials its sidecar's outbound listener with the service's name in Host
        uri, outbound = f"ws://chat:{ports['http']}", ("127.0.0.42", ports["http"])
        exercise(f"{uri}/chat", sock=socket.create_connection(outbound))
        with pytest.raises(websockets.InvalidStatus) as info:
            connect(f"{uri}/admin", sock=socket.create_connection(outbound), open_timeout=10)
        assert info.value.response.status_code == 403
    finally:
        client.close()
        server.close()
