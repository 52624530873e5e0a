"""Overload protection of a real `meshcore proxy`: the overload manager's
global downstream connection limit, the limit derived from RLIMIT_NOFILE
when none is configured, and every connection the proxy closes counted
(docs/hardening.md)."""
import copy
import shutil
import socket
import struct
import time

import pytest
from support import config as cfg
from support import proxy as proxy_support
from support.http import Conn, build_request, hcm_listener, http_cluster, route
from support.net import wait_until

from meshcore import ca

DOWNSTREAM_CONNECTIONS = ("type.googleapis.com/envoy.extensions.resource_monitors."
                          "downstream_connections.v3.DownstreamConnectionsConfig")
DOWNSTREAM_TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
TLS_INSPECTOR = "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"


def overload_manager(max_connections: int) -> dict:
    return {"resource_monitors": [{
        "name": "envoy.resource_monitors.global_downstream_max_connections",
        "typed_config": {"@type": DOWNSTREAM_CONNECTIONS, "max_active_downstream_connections": max_connections}}]}


def _server_tls(tmp_path) -> dict:
    authority = ca.CertificateAuthority.init(str(tmp_path / "ca"), "cluster.local", intermediate=False)
    files = ca.write_workload_dir(authority, str(tmp_path / "server"), "default", "server")
    common = {"tls_certificates": [{"certificate_chain": {"filename": files["cert-chain.pem"]},
                                    "private_key": {"filename": files["key.pem"]}}]}
    return {"name": "envoy.transport_sockets.tls",
            "typed_config": {"@type": DOWNSTREAM_TLS, "common_tls_context": common}}


def _doc(backend_port: int, max_connections: int | None = None, tls: dict | None = None) -> dict:
    listeners = [hcm_listener("http", routes=[route("/", "backend")]),
                 cfg.tcp_proxy_listener("tcp", "backend")]
    if tls:  # PERMISSIVE: plaintext and TLS HTTP on one port, told apart by the first bytes
        insp = hcm_listener("inspected", routes=[route("/", "backend")])
        insp["listener_filters"] = [{"name": "envoy.filters.listener.tls_inspector",
                                     "typed_config": {"@type": TLS_INSPECTOR}}]
        insp["filter_chains"][0]["filter_chain_match"] = {"transport_protocol": "raw_buffer"}
        tls_chain = copy.deepcopy(insp["filter_chains"][0])
        tls_chain["filter_chain_match"] = {"transport_protocol": "tls"}
        tls_chain["transport_socket"] = tls
        insp["filter_chains"].append(tls_chain)
        listeners.append(insp)
    doc = cfg.bootstrap(listeners, [http_cluster("backend", [backend_port])])
    if max_connections is not None:
        doc["overload_manager"] = overload_manager(max_connections)
    return doc


def _closed_by_peer(s: socket.socket, timeout: float = 10.0) -> bool:
    s.settimeout(timeout)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def _listener_stat(stats: dict, port: int, name: str) -> int:
    return stats.get(f"listener.127.0.0.1_{port}.{name}", 0)


def test_global_limit_refuses_and_counts_across_listeners(proxy_factory, backend_factory):
    backend = backend_factory()
    proxy = proxy_factory(_doc(backend.port, max_connections=4))
    http_port, tcp_port = proxy.listener_port("http"), proxy.listener_port("tcp")
    assert "global downstream connection limit: 4 (overload_manager)" in proxy.log()
    held = [socket.create_connection(("127.0.0.1", p)) for p in (http_port, http_port, tcp_port, tcp_port)]
    try:
        wait_until(lambda: proxy.stat("server.total_connections") == 4, 10, what="4 admitted connections")
        for port in (http_port, tcp_port):  # the fifth, on either listener, is closed at once
            extra = socket.create_connection(("127.0.0.1", port))
            assert _closed_by_peer(extra)
            extra.close()
        st = proxy.stats()
        assert st["overload.envoy.resource_monitors.global_downstream_max_connections.pressure"] == 100
        assert _listener_stat(st, http_port, "downstream_global_cx_overflow") == 1
        assert _listener_stat(st, tcp_port, "downstream_global_cx_overflow") == 1
        assert proxy.get("/ready") == (200, "LIVE\n")  # the admin API is not a listener
    finally:
        for s in held[:2]:
            s.close()
    wait_until(lambda: proxy.stat("server.total_connections") == 2, 10, what="2 connections released")
    with Conn(http_port) as c:  # room again
        assert c.request("GET", "/ok").status == 200
    for s in held[2:]:
        s.close()
    wait_until(lambda: proxy.stat("server.total_connections") == 0, 10, what="every connection released")


@pytest.mark.skipif(shutil.which("prlimit") is None, reason="prlimit (util-linux) not installed")
def test_default_limit_is_derived_from_the_descriptor_limit(proxy_factory, backend_factory, monkeypatch):
    backend = backend_factory()
    nofile = 256
    base = proxy_support.meshcore_command()
    monkeypatch.setattr(proxy_support, "meshcore_command", lambda: ["prlimit", f"--nofile={nofile}:{nofile}"] + base)
    proxy = proxy_factory(_doc(backend.port))
    limit = (nofile - min(256, nofile // 2)) // 2  # 64: each proxied connection holds two descriptors
    assert f"global downstream connection limit: {limit} (derived from RLIMIT_NOFILE" in proxy.log()
    port = proxy.listener_port("tcp")
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(limit + 40)]
    try:
        wait_until(lambda: _listener_stat(proxy.stats(), port, "downstream_global_cx_overflow") == 40, 20,
                   what="40 connections over the limit refused")
        assert proxy.stat("server.total_connections") == limit
        assert proxy.get("/ready") == (200, "LIVE\n")
        refused = socket.create_connection(("127.0.0.1", proxy.listener_port("http")))  # no room anywhere
        assert _closed_by_peer(refused)
        refused.close()
    finally:
        for s in clients:
            s.close()
    wait_until(lambda: proxy.stat("server.total_connections") == 0, 20, what="the flood's connections released")
    with Conn(proxy.listener_port("http")) as c:
        assert c.request("GET", "/after").status == 200


def _rst(s: socket.socket) -> None:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def test_every_connection_closed_by_the_proxy_is_counted(proxy_factory, backend_factory, tmp_path):
    """A flood of every kind of connection: accepted = downstream_cx_total +
    the refusals (global overflow, listener filter closes), and
    downstream_cx_total = downstream_cx_destroy + downstream_cx_active."""
    backend = backend_factory()
    proxy = proxy_factory(_doc(backend.port, max_connections=30, tls=_server_tls(tmp_path)))  # fewer than the 45 held
    ports = {name: proxy.listener_port(name) for name in ("http", "tcp", "inspected")}
    sent = {p: 0 for p in ports.values()}
    held = []

    def connect(port):
        sent[port] += 1
        return socket.create_connection(("127.0.0.1", port))

    # A TLS handshake cut short, before the flood fills the limit (then such
    # connections may be refused at admission instead).
    cut = connect(ports["inspected"])
    cut.sendall(bytes.fromhex("160301002a0100002603"))
    cut.close()
    wait_until(lambda: _listener_stat(proxy.stats(), ports["inspected"], "ssl.connection_error") == 1, 10,
               what="the cut-short handshake counted")
    for round_ in range(3):
        for name, port in ports.items():
            for i in range(30):
                s = connect(port)
                kind = (i + round_) % 6
                if kind == 0:  # idle, held: fills the global limit
                    held.append(s)
                    continue
                if kind == 1 and name != "tcp":  # a whole request, keep-alive, then reset
                    s.sendall(build_request("GET", "/k"))
                    s.settimeout(10)
                    try:
                        s.recv(65536)
                    except ConnectionResetError:
                        pass  # refused: over the global limit
                    _rst(s)
                    continue
                if name == "tcp":  # bytes would reach the strict test backend as they are: close only
                    pass
                elif kind == 2:  # half a head, then gone
                    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
                elif kind == 3:  # a ClientHello's first bytes: a TLS handshake cut short on "inspected"
                    s.sendall(bytes.fromhex("160301002a0100002603"))
                elif kind == 4:  # garbage
                    s.sendall(b"\x00\xff" * 64)
                elif kind == 5:  # the start of a TLS record, then gone: the inspector cannot wait for more
                    s.sendall(b"\x16\x03")
                s.close()
    time.sleep(0.5)
    for s in held:
        s.close()

    def balanced():
        st = proxy.stats()
        for port, n in sent.items():
            total = _listener_stat(st, port, "downstream_cx_total")
            refused = sum(_listener_stat(st, port, k) for k in (
                "downstream_global_cx_overflow", "downstream_cx_overflow", "downstream_pre_cx_timeout",
                "downstream_listener_filter_remote_close", "downstream_listener_filter_error",
                "no_filter_chain_match"))
            if _listener_stat(st, port, "downstream_cx_active") or _listener_stat(st, port, "downstream_pre_cx_active"):
                return False
            if total + refused != n or total != _listener_stat(st, port, "downstream_cx_destroy"):
                return False
        return True

    wait_until(balanced, 30, what="every connection accounted for")
    st = proxy.stats()
    assert sum(_listener_stat(st, p, "downstream_global_cx_overflow") for p in sent) > 0  # the limit was hit
    # closed before sending a byte: the inspector's own count
    assert _listener_stat(st, ports["inspected"], "downstream_listener_filter_remote_close") > 0
    assert _listener_stat(st, ports["inspected"], "downstream_pre_cx_timeout") == 0  # none left to the 15 s timer
    assert _listener_stat(st, ports["inspected"], "ssl.connection_error") >= 1  # handshakes cut short
    assert st["server.total_connections"] == 0
