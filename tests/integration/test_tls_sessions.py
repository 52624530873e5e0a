"""TLS session resumption on both sides of a sidecar, and two regressions
found by the mTLS benchmark and proxy-config runs: split state per filter
chain, and one x-envoy-upstream-service-time across hops."""
from __future__ import annotations

import socket
import ssl

import pytest
from support import http as h

from meshcore import ca

SERVER_ID = "spiffe://cluster.local/ns/default/sa/server"
CLIENT_ID = "spiffe://cluster.local/ns/default/sa/client"
TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3."


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    authority = ca.CertificateAuthority.init(str(d / "ca"), "cluster.local", intermediate=False)
    return {"server": ca.write_workload_dir(authority, str(d / "server"), "default", "server"),
            "client": ca.write_workload_dir(authority, str(d / "client"), "default", "client")}


def tls_context(kind: str, files: dict, peer: str) -> dict:
    san = {"san_type": "URI", "matcher": {"exact": peer}}
    common = {"tls_certificates": [{"certificate_chain": {"filename": files["cert-chain.pem"]},
                                    "private_key": {"filename": files["key.pem"]}}],
              "validation_context": {"trusted_ca": {"filename": files["trust-bundle.pem"]},
                                     "match_typed_subject_alt_names": [san]}}
    ctx = {"@type": TLS + kind, "common_tls_context": common}
    if kind == "DownstreamTlsContext":
        ctx["require_client_certificate"] = True
    return {"name": "envoy.transport_sockets.tls", "typed_config": ctx}


def server_doc(certs, backend_port: int) -> dict:
    listener = h.hcm_listener("inbound", routes=[h.route("/", "app")])
    listener["filter_chains"][0]["transport_socket"] = tls_context("DownstreamTlsContext", certs["server"], CLIENT_ID)
    return h.bootstrap([listener], [h.http_cluster("app", [backend_port])])


def client_context(certs) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=certs["client"]["trust-bundle.pem"])
    ctx.check_hostname = False  # SPIFFE: no DNS names; the chain is checked against the mesh's root
    ctx.load_cert_chain(certs["client"]["cert-chain.pem"], certs["client"]["key.pem"])
    return ctx


def get_over_tls(port: int, ctx: ssl.SSLContext, session=None):
    with socket.create_connection(("127.0.0.1", port)) as raw, \
            ctx.wrap_socket(raw, session=session) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: svc\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        return data.split(b"\r\n", 1)[0], s.session, s.session_reused


def test_the_server_side_resumes_a_clients_session(engine_factory, backend_factory, certs):
    backend = backend_factory("app")
    engine = engine_factory(config=server_doc(certs, backend.port))
    port, ctx = engine.listener_port("inbound"), client_context(certs)
    status, session, reused = get_over_tls(port, ctx)
    assert status == b"HTTP/1.1 200 OK" and not reused
    for _ in range(3):
        status, session, reused = get_over_tls(port, ctx, session)
        assert status == b"HTTP/1.1 200 OK" and reused
    st = engine.stats()
    assert st[f"listener.127.0.0.1_{port}.ssl.handshake"] == 4
    assert st[f"listener.127.0.0.1_{port}.ssl.connection_error"] == 0


def test_the_client_side_resumes_upstream_sessions(engine_factory, backend_factory, certs):
    backend = backend_factory("app")
    server = engine_factory(config=server_doc(certs, backend.port))
    cluster = h.http_cluster("server", [server.listener_port("inbound")], max_requests_per_connection=1,
                             transport_socket=tls_context("UpstreamTlsContext", certs["client"], SERVER_ID))
    client = engine_factory(config=h.bootstrap([h.hcm_listener("outbound", routes=[h.route("/", "server")])],
                                               [cluster]), concurrency=1)
    port = client.listener_port("outbound")
    with h.Conn(port) as c:
        for _ in range(6):  # a new upstream connection (and handshake) each
            assert c.request("GET", "/").status == 200
    st = client.stats()
    assert st["cluster.server.upstream_cx_total"] == 6 and st["cluster.server.upstream_cx_connect_fail"] == 0
    assert st["cluster.server.ssl.session_reused"] == 5


def test_weighted_routes_after_a_listener_with_two_chains(engine_factory, backend_factory, echo, certs):
    """The weighted-cluster state is per filter chain: a listener after one
    with two chains used to index it by listener (a crash)."""
    a, b = backend_factory("a"), backend_factory("b")
    permissive = h.hcm_listener("first", routes=[h.route("/", "a")])
    http_chain = permissive["filter_chains"][0]
    http_chain["filter_chain_match"] = {"transport_protocol": "raw_buffer"}
    tcp_chain = {"filter_chain_match": {"transport_protocol": "tls"},
                 "transport_socket": tls_context("DownstreamTlsContext", certs["server"], CLIENT_ID), "filters": [{
        "name": "envoy.filters.network.tcp_proxy", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
            "stat_prefix": "tls_passthrough", "cluster": "echo"}}]}
    permissive["filter_chains"] = [tcp_chain, http_chain]
    permissive["listener_filters"] = [{"name": "envoy.filters.listener.tls_inspector", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"}}]
    split = h.hcm_listener("second", routes=[h.route("/", route={"weighted_clusters": {"clusters": [
        {"name": "a", "weight": 75}, {"name": "b", "weight": 25}]}})])
    engine = engine_factory(config=h.bootstrap([permissive, split], [
        h.http_cluster("a", [a.port]), h.http_cluster("b", [b.port]), h.http_cluster("echo", [echo.port])]),
        concurrency=1)
    with h.Conn(engine.listener_port("second")) as c:
        got = [c.request("GET", "/").header("x-backend") for _ in range(8)]
    assert sorted(got) == ["a"] * 6 + ["b"] * 2
    assert h.request(engine.listener_port("first"), "GET", "/").header("x-backend") == "a"


def test_one_upstream_service_time_across_two_hops(engine_factory, backend_factory):
    backend = backend_factory("app")
    inner = engine_factory(config=h.simple([backend.port]))
    outer = engine_factory(config=h.simple([inner.listener_port("http")]))
    r = h.request(outer.listener_port("http"), "GET", "/")
    assert r.status == 200 and len(r.headers_named("x-envoy-upstream-service-time")) == 1
