"""gRPC end to end with real grpcio clients and servers: HTTP/2 from the
client into meshcore (the downstream codec), HTTP/2 from meshcore to the
server (proxy/h2_upstream.c), through one sidecar and through two with mTLS
between them; every call shape, a 90/10 split, retries of UNAVAILABLE,
deadlines."""
from __future__ import annotations

import threading
import time

import grpc
import pytest
from support import http as h
from support.grpc_duplex import ping_pong
from support.grpc_server import GrpcServer

from meshcore import ca

OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3."
SERVER_ID = "spiffe://cluster.local/ns/default/sa/server"
CLIENT_ID = "spiffe://cluster.local/ns/default/sa/client"


class Server(GrpcServer):
    """A grpcio server (h2c) with every call shape on service t.S, bytes in and out."""

    def __init__(self, name, fail=False, delay=0.0):
        self.name, self.calls = name, 0
        self.lock = threading.Lock()

        def count(ctx):
            with self.lock:
                self.calls += 1
            if fail:
                ctx.abort(grpc.StatusCode.UNAVAILABLE, "down")
            time.sleep(delay)

        def unary(req, ctx):
            count(ctx)
            ctx.set_trailing_metadata((("x-served-by", name),))
            return name.encode() + b":" + req

        def server_stream(req, ctx):
            count(ctx)
            for i in range(int(req)):
                yield b"%d" % i

        def client_stream(reqs, ctx):
            count(ctx)
            return b"+".join(reqs)

        def bidi(reqs, ctx):
            count(ctx)
            for r in reqs:
                yield r.upper()

        super().__init__("t.S", {
            "Unary": grpc.unary_unary_rpc_method_handler(unary),
            "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream),
            "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream),
            "Bidi": grpc.stream_stream_rpc_method_handler(bidi)})


@pytest.fixture
def servers():
    made = []

    def make(*a, **kw):
        made.append(Server(*a, **kw))
        return made[-1]

    yield make
    for s in made:
        s.stop()


@pytest.fixture
def channel():
    opened = []

    def make(port):
        opened.append(grpc.insecure_channel(f"127.0.0.1:{port}"))
        return opened[-1]

    yield make
    for c in opened:
        c.close()


def h2_cluster(name, ports, **extra):
    opts = {"@type": "type.googleapis.com/" + OPTIONS, "explicit_http_config": {"http2_protocol_options": {}}}
    return h.http_cluster(name, ports, typed_extension_protocol_options={OPTIONS: opts}, **extra)


def sidecar(engine_factory, routes, clusters, **listener):
    doc = h.bootstrap([h.hcm_listener("grpc", routes=routes, codec_type="AUTO", **listener)], clusters)
    engine = engine_factory(config=doc, concurrency=1)
    return engine, engine.listener_port("grpc")


def every_call_shape(ch, name):
    unary = ch.unary_unary("/t.S/Unary")
    resp, call = unary.with_call(b"hi", timeout=10)
    assert resp == name.encode() + b":hi"
    assert ("x-served-by", name) in call.trailing_metadata()  # HTTP/2 trailers, both hops
    assert list(ch.unary_stream("/t.S/ServerStream")(b"5", timeout=10)) == [b"0", b"1", b"2", b"3", b"4"]
    assert ch.stream_unary("/t.S/ClientStream")(iter([b"a", b"b", b"c"]), timeout=10) == b"a+b+c"
    assert list(ch.stream_stream("/t.S/Bidi")(iter([b"x", b"y"]), timeout=10)) == [b"X", b"Y"]
    # full duplex: each message sent only once the previous one's answer is back
    assert ping_pong(ch, "/t.S/Bidi", [b"p", b"q", b"r"], timeout=10)[0] == [b"P", b"Q", b"R"]


def test_every_call_shape_through_one_sidecar(engine_factory, servers, channel):
    srv = servers("v1")
    engine, port = sidecar(engine_factory, [h.route("/", "app")], [h2_cluster("app", [srv.port])])
    every_call_shape(channel(port), "v1")
    st = engine.stats()
    assert st["cluster.app.upstream_cx_total"] == 1 and st["cluster.app.upstream_rq_total"] == 5


def tls_socket(kind, files, peer):
    san = {"san_type": "URI", "matcher": {"exact": peer}}
    common = {"tls_certificates": [{"certificate_chain": {"filename": files["cert-chain.pem"]},
                                    "private_key": {"filename": files["key.pem"]}}],
              "validation_context": {"trusted_ca": {"filename": files["trust-bundle.pem"]},
                                     "match_typed_subject_alt_names": [san]}}
    ctx = {"@type": TLS + kind, "common_tls_context": common}
    if kind == "DownstreamTlsContext":
        common["alpn_protocols"] = ["h2", "http/1.1"]
        ctx["require_client_certificate"] = True
    return {"name": "envoy.transport_sockets.tls", "typed_config": ctx}


def test_every_call_shape_through_two_sidecars_with_mtls(engine_factory, servers, channel, tmp_path):
    authority = ca.CertificateAuthority.init(str(tmp_path / "ca"), "cluster.local", intermediate=False)
    server_files = ca.write_workload_dir(authority, str(tmp_path / "server"), "default", "server")
    client_files = ca.write_workload_dir(authority, str(tmp_path / "client"), "default", "client")
    srv = servers("v1")
    inbound = h.bootstrap([h.hcm_listener("inbound", routes=[h.route("/", "app")], codec_type="AUTO")],
                          [h2_cluster("app", [srv.port])])
    inbound["static_resources"]["listeners"][0]["filter_chains"][0]["transport_socket"] = \
        tls_socket("DownstreamTlsContext", server_files, CLIENT_ID)
    server_side = engine_factory(config=inbound, concurrency=1)
    client_side, port = sidecar(engine_factory, [h.route("/", "server")], [
        h2_cluster("server", [server_side.listener_port("inbound")],
                   transport_socket=tls_socket("UpstreamTlsContext", client_files, SERVER_ID))])
    ch = channel(port)
    every_call_shape(ch, "v1")
    st = client_side.stats()
    assert st["cluster.server.ssl.handshake"] == 1 and st["cluster.server.upstream_cx_total"] == 1
    assert server_side.stats()["cluster.app.upstream_rq_total"] == 5


def test_a_90_10_split_across_two_versions(engine_factory, servers, channel):
    v1, v2 = servers("v1"), servers("v2")
    split = h.route("/", route={"weighted_clusters": {"clusters": [{"name": "v1", "weight": 90},
                                                                   {"name": "v2", "weight": 10}]}})
    engine, port = sidecar(engine_factory, [split], [h2_cluster("v1", [v1.port]), h2_cluster("v2", [v2.port])])
    unary = channel(port).unary_unary("/t.S/Unary")
    answers = [unary(b"x", timeout=10).split(b":")[0] for _ in range(100)]
    assert answers.count(b"v1") == 90 and answers.count(b"v2") == 10  # smooth WRR: exact per 100
    assert (v1.calls, v2.calls) == (90, 10)


def test_unavailable_is_retried_on_another_endpoint(engine_factory, servers, channel):
    down, up = servers("down", fail=True), servers("up")
    route = h.route("/", "app", route={"retry_policy": {
        "retry_on": "unavailable", "num_retries": 2, "retry_host_predicate": h.previous_hosts(),
        "host_selection_retry_max_attempts": 3}})
    engine, port = sidecar(engine_factory, [route], [h2_cluster("app", [down.port, up.port])])
    unary = channel(port).unary_unary("/t.S/Unary")
    for i in range(10):
        assert unary(b"%d" % i, timeout=10) == b"up:%d" % i
    assert up.calls == 10 and down.calls >= 1
    assert engine.stats()["cluster.app.upstream_rq_retry"] == down.calls

    # without the policy the client sees the server's UNAVAILABLE
    engine2, port2 = sidecar(engine_factory, [h.route("/", "app")], [h2_cluster("app", [down.port])])
    with pytest.raises(grpc.RpcError) as info:
        channel(port2).unary_unary("/t.S/Unary")(b"x", timeout=10)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE and info.value.details() == "down"


def test_deadlines(engine_factory, servers, channel):
    """The client's deadline (grpc-timeout) capped by the route's
    grpc_timeout_header_max: meshcore answers DEADLINE_EXCEEDED itself."""
    slow = servers("slow", delay=1.0)
    route = h.route("/", "app", route={"timeout": "10s", "max_stream_duration": {"grpc_timeout_header_max": "0.2s"}})
    engine, port = sidecar(engine_factory, [route], [h2_cluster("app", [slow.port])])
    unary = channel(port).unary_unary("/t.S/Unary")
    with pytest.raises(grpc.RpcError) as info:
        unary(b"x", timeout=5)  # 5 s asked, 0.2 s allowed
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert info.value.details() == "upstream request timeout"  # meshcore's, not the client's own
    assert engine.stats()["cluster.app.upstream_rq_timeout"] == 1


def test_use_downstream_protocol_config(engine_factory, servers, channel, backend_factory):
    """HTTP/2 upstream for an HTTP/2 client, HTTP/1.1 for an HTTP/1.1 client."""
    srv, web = servers("v1"), backend_factory("web")
    opts = {OPTIONS: {"@type": "type.googleapis.com/" + OPTIONS, "use_downstream_protocol_config": {
        "http_protocol_options": {}, "http2_protocol_options": {}}}}
    engine, port = sidecar(engine_factory, [h.route("/t.S/", "grpc"), h.route("/", "web")], [
        h.http_cluster("grpc", [srv.port], typed_extension_protocol_options=opts),
        h.http_cluster("web", [web.port], typed_extension_protocol_options=opts)])
    assert channel(port).unary_unary("/t.S/Unary")(b"x", timeout=10) == b"v1:x"
    with h.Conn(port) as c:
        assert c.request("GET", "/page").status == 200
    (req,) = web.requests
    assert req.version == "HTTP/1.1"


def test_max_requests_counts_streams(engine_factory, servers, channel):
    """circuit_breakers max_requests: 2 calls in flight on one connection, the third overflows."""
    slow = servers("slow", delay=1.0)
    engine, port = sidecar(engine_factory, [h.route("/", "app")], [
        h2_cluster("app", [slow.port], circuit_breakers=h.circuit_breakers(max_requests=2))])
    unary = channel(port).unary_unary("/t.S/Unary")
    calls = [unary.future(b"%d" % i, timeout=10) for i in range(2)]
    deadline = time.monotonic() + 5
    while slow.calls < 2 and time.monotonic() < deadline:  # both are at the server
        time.sleep(0.01)
    with pytest.raises(grpc.RpcError) as info:
        unary(b"third", timeout=10)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE  # a 503 UO, told as gRPC
    assert [c.result() for c in calls] == [b"slow:0", b"slow:1"]
    st = engine.stats()
    assert st["cluster.app.upstream_rq_pending_overflow"] + st["cluster.app.upstream_rq_overflow"] >= 1
    assert st["cluster.app.upstream_cx_total"] == 1
