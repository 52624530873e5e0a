"""HTTP/2 to upstream clusters, driven by HTTP/1.1 clients (curl, http.client)
through meshcore to real HTTP/2 servers: grpcio (h2c prior knowledge, and
over mTLS with ALPN h2) and an `h2`-package server for resets and GOAWAY."""
from __future__ import annotations

import http.client
import shutil
import struct
import subprocess
import threading
import time
from concurrent import futures

import grpc
import pytest
from support import http as h
from support.grpc_server import GrpcServer
from support.h2_server import H2Server

from meshcore import ca

CURL = shutil.which("curl")
OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"


def h2_cluster(name, ports, *, h2=None, common=None, **extra):
    opts = {"@type": "type.googleapis.com/" + OPTIONS, "explicit_http_config": {"http2_protocol_options": h2 or {}}}
    if common:
        opts["common_http_protocol_options"] = common
    return h.http_cluster(name, ports, typed_extension_protocol_options={OPTIONS: opts}, **extra)


def engine_for(engine_factory, cluster, routes=None, concurrency=1):
    doc = h.bootstrap([h.hcm_listener("http", routes=routes or [h.route("/", cluster["name"])])], [cluster])
    engine = engine_factory(config=doc, concurrency=concurrency)
    return engine, engine.listener_port("http")


def frame(msg: bytes) -> bytes:
    return b"\x00" + struct.pack(">I", len(msg)) + msg


class Grpc(GrpcServer):
    """A grpcio server with generic unary methods on service t.S."""

    def __init__(self, name="a", credentials=None, options=(), delay=0.0, fail=False):
        self.name, self.delay, self.calls = name, delay, 0
        self.lock = threading.Lock()

        def echo(req, ctx):
            with self.lock:
                self.calls += 1
            if fail:
                ctx.abort(grpc.StatusCode.UNAVAILABLE, "down")
            time.sleep(self.delay)
            return self.name.encode() + b":" + req

        def unavailable(req, ctx):
            with self.lock:
                self.calls += 1
            ctx.abort(grpc.StatusCode.UNAVAILABLE, "down")

        super().__init__("t.S", {
            "Echo": grpc.unary_unary_rpc_method_handler(echo),
            "Down": grpc.unary_unary_rpc_method_handler(unavailable)},
            workers=16, options=options, credentials=credentials)


@pytest.fixture
def grpc_factory():
    servers = []

    def make(*a, **kw):
        servers.append(Grpc(*a, **kw))
        return servers[-1]

    yield make
    for s in servers:
        s.stop()


@pytest.fixture
def h2_factory():
    servers = []

    def make(handler):
        servers.append(H2Server(handler))
        return servers[-1]

    yield make
    for s in servers:
        s.stop()


def grpc_post(port, method, msg=b"hi", headers=()):
    """A unary gRPC call over HTTP/1.1: (status, head fields, body, trailers)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("POST", f"/t.S/{method}", body=frame(msg),
              headers={"content-type": "application/grpc", "te": "trailers", **dict(headers)})
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, body


def curl_raw(port, path, body):
    """curl --http1.1 --raw: the chunked framing and trailer section as sent."""
    out = subprocess.run([CURL, "-sS", "--http1.1", "--raw", "--max-time", "10", "-D", "-",
                          "-H", "content-type: application/grpc", "-H", "te: trailers", "--data-binary", "@-",
                          f"http://127.0.0.1:{port}{path}"], input=body, capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr
    head, _, rest = out.stdout.partition(b"\r\n\r\n")
    return head.decode().lower(), rest


@pytest.mark.skipif(CURL is None, reason="curl is not installed")
def test_grpc_unary_trailers_reach_an_http11_client(engine_factory, grpc_factory):
    srv = grpc_factory("a")
    engine, port = engine_for(engine_factory, h2_cluster("backend", [srv.port]))
    head, rest = curl_raw(port, "/t.S/Echo", frame(b"hello"))
    assert head.startswith("http/1.1 200") and "transfer-encoding: chunked" in head
    assert "content-type: application/grpc" in head
    # one chunk with the gRPC message, then the HTTP/2 trailers as the trailer section
    msg = frame(b"a:hello")
    assert rest == b"%x\r\n" % len(msg) + msg + b"\r\n0\r\ngrpc-status: 0\r\ngrpc-message: \r\n\r\n"
    st = engine.stats()
    assert st["cluster.backend.upstream_cx_total"] == 1 and st["cluster.backend.upstream_rq_total"] == 1


@pytest.mark.skipif(CURL is None, reason="curl is not installed")
def test_a_trailers_only_response_is_a_head_with_grpc_status(engine_factory, grpc_factory):
    srv = grpc_factory("a")
    engine, port = engine_for(engine_factory, h2_cluster("backend", [srv.port]))
    head, rest = curl_raw(port, "/t.S/Down", frame(b"x"))
    assert head.startswith("http/1.1 200")
    assert "grpc-status: 14" in head and "grpc-message: down" in head and "content-length: 0" in head
    assert rest == b""


def test_concurrent_clients_share_one_upstream_connection(engine_factory, grpc_factory):
    """Eight HTTP/1.1 clients at once: eight streams on one HTTP/2 connection."""
    srv = grpc_factory("a", delay=0.5)
    engine, port = engine_for(engine_factory, h2_cluster("backend", [srv.port]))
    assert grpc_post(port, "Echo")[0] == 200  # the connection is up before the burst
    with futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: grpc_post(port, "Echo", b"%d" % i), range(8)))
    assert [r[2] for r in results] == [frame(b"a:%d" % i) for i in range(8)]
    st = engine.stats()
    assert st["cluster.backend.upstream_cx_total"] == 1
    assert st["cluster.backend.upstream_rq_total"] == 9 and srv.calls == 9


def test_max_concurrent_streams_and_max_requests_per_connection(engine_factory, grpc_factory):
    srv = grpc_factory("a", delay=0.5)
    engine, port = engine_for(engine_factory, h2_cluster("backend", [srv.port], h2={"max_concurrent_streams": 2}))
    with futures.ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda i: grpc_post(port, "Echo"), range(6)))
    assert all(r[0] == 200 and r[1].get("grpc-status") is None for r in results)
    assert engine.stats()["cluster.backend.upstream_cx_total"] == 3  # 6 streams, 2 per connection

    srv2 = grpc_factory("b")
    engine2, port2 = engine_for(engine_factory, h2_cluster("backend", [srv2.port],
                                                           common={"max_requests_per_connection": 2}))
    for _ in range(6):
        assert grpc_post(port2, "Echo")[2] == frame(b"b:hi")
    assert engine2.stats()["cluster.backend.upstream_cx_total"] == 3


def test_mtls_with_alpn_h2_to_the_upstream(engine_factory, tmp_path):
    authority = ca.CertificateAuthority.init(str(tmp_path / "ca"), "cluster.local", intermediate=False)
    server = ca.write_workload_dir(authority, str(tmp_path / "server"), "default", "server")
    client = ca.write_workload_dir(authority, str(tmp_path / "client"), "default", "client")
    read = lambda p: open(p, "rb").read()  # noqa: E731
    creds = grpc.ssl_server_credentials([(read(server["key.pem"]), read(server["cert-chain.pem"]))],
                                        root_certificates=read(server["trust-bundle.pem"]), require_client_auth=True)
    srv = Grpc("tls", credentials=creds)
    try:
        san = {"san_type": "URI", "matcher": {"exact": "spiffe://cluster.local/ns/default/sa/server"}}
        tls = {"name": "envoy.transport_sockets.tls", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
            "common_tls_context": {
                "tls_certificates": [{"certificate_chain": {"filename": client["cert-chain.pem"]},
                                      "private_key": {"filename": client["key.pem"]}}],
                "validation_context": {"trusted_ca": {"filename": client["trust-bundle.pem"]},
                                       "match_typed_subject_alt_names": [san]}}}}
        engine, port = engine_for(engine_factory, h2_cluster("backend", [srv.port], transport_socket=tls))
        for i in range(3):
            status, fields, body = grpc_post(port, "Echo", b"%d" % i)
            assert (status, body) == (200, frame(b"tls:%d" % i))
        st = engine.stats()
        assert st["cluster.backend.ssl.handshake"] == 1 and st["cluster.backend.upstream_cx_total"] == 1
    finally:
        srv.stop()


def test_unavailable_is_retried_on_another_endpoint(engine_factory, grpc_factory):
    """A trailers-only grpc-status 14 from one server: retry_on unavailable
    moves the call to the other endpoint (previous_hosts); none fails."""
    down, up = grpc_factory("down", fail=True), grpc_factory("up")
    route = h.route("/", "backend", route={"retry_policy": {
        "retry_on": "unavailable", "num_retries": 2, "retry_host_predicate": h.previous_hosts(),
        "host_selection_retry_max_attempts": 3}})
    engine, port = engine_for(engine_factory, h2_cluster("backend", [down.port, up.port]), routes=[route])
    for i in range(10):
        status, fields, body = grpc_post(port, "Echo", b"%d" % i)
        assert (status, body, fields.get("grpc-status")) == (200, frame(b"up:%d" % i), None)
    st = engine.stats()
    assert up.calls == 10 and down.calls >= 1
    assert st["cluster.backend.upstream_rq_retry"] == down.calls
    assert st["cluster.backend.upstream_rq_retry_success"] == down.calls


def test_grpc_retry_on_names_only_its_codes(engine_factory, grpc_factory):
    """retry_on cancelled does not retry UNAVAILABLE."""
    down = grpc_factory("down", fail=True)
    route = h.route("/", "backend", route={"retry_policy": {"retry_on": "cancelled,deadline-exceeded",
                                                             "num_retries": 2}})
    engine, port = engine_for(engine_factory, h2_cluster("backend", [down.port]), routes=[route])
    assert grpc_post(port, "Echo")[1].get("grpc-status") == "14"
    assert down.calls == 1 and engine.stats()["cluster.backend.upstream_rq_retry"] == 0


def test_upstream_rst_stream_is_a_503_with_its_reason(engine_factory, h2_factory):
    srv = h2_factory(lambda headers, body: ("reset", 2))  # INTERNAL_ERROR
    engine, port = engine_for(engine_factory, h2_cluster("backend", [srv.port]))
    status, fields, body = grpc_post(port, "Echo")
    assert status == 503
    assert body == b"upstream connect error or disconnect/reset before headers. reset reason: remote reset"
    st = engine.stats()
    assert st["cluster.backend.upstream_rq_rx_reset"] == 1


def test_goaway_mid_traffic_fails_no_request(engine_factory, grpc_factory):
    """grpcio's max_connection_age sends GOAWAY every 300 ms: streams it did
    not take go again on a new connection, none fails."""
    srv = grpc_factory("a", options=[("grpc.max_connection_age_ms", 300),
                                     ("grpc.max_connection_age_grace_ms", 5000)])
    engine, port = engine_for(engine_factory, h2_cluster("backend", [srv.port]))
    stop = time.monotonic() + 2.0

    def client(i):
        n = 0
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while time.monotonic() < stop:
            c.request("POST", "/t.S/Echo", body=frame(b"%d" % i),
                      headers={"content-type": "application/grpc", "te": "trailers"})
            r = c.getresponse()
            assert (r.status, r.read(), r.getheader("grpc-status")) == (200, frame(b"a:%d" % i), None)
            n += 1
        c.close()
        return n

    with futures.ThreadPoolExecutor(4) as pool:
        done = sum(pool.map(client, range(4)))
    st = engine.stats()
    assert done > 20 and st["cluster.backend.upstream_cx_total"] >= 3
    assert st["cluster.backend.upstream_rq_rx_reset"] == 0


def test_goaway_refused_streams_go_again(engine_factory, h2_factory):
    """A server that answers one request per connection, then GOAWAY with the
    last stream it took: the request past it is sent again on a new one."""
    count = {"n": 0}

    def handler(headers, body):
        count["n"] += 1
        if count["n"] % 2 == 0:
            return ("goaway",)
        return ("reply", 200, [("content-type", "text/plain")], b"ok %d" % count["n"], None)

    srv = h2_factory(handler)
    engine, port = engine_for(engine_factory, h2_cluster("backend", [srv.port]))
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    bodies = []
    for _ in range(3):
        c.request("GET", "/")
        r = c.getresponse()
        assert r.status == 200
        bodies.append(r.read())
    assert bodies == [b"ok 1", b"ok 3", b"ok 5"]
    assert srv.accepted == 3 and engine.stats()["cluster.backend.upstream_rq_rx_reset"] == 0


def test_large_response_and_request_bodies_cross_flow_control(engine_factory, h2_factory):
    big = bytes(range(256)) * 8192  # 2 MiB, past every window
    seen = {}

    def handler(headers, body):
        seen["len"] = len(body)
        return ("reply", 200, [("content-type", "application/octet-stream")], big, [("x-sum", str(sum(body)))])

    srv = h2_factory(handler)
    engine, port = engine_for(engine_factory, h2_cluster("backend", [srv.port]))
    upload = b"\x01" * (3 << 20)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("POST", "/up", body=upload, headers={"content-type": "application/octet-stream"})
    r = c.getresponse()
    assert r.status == 200 and r.read() == big
    assert seen["len"] == len(upload)


def test_grpc_status_in_access_logs_and_istio_metrics(engine_factory, grpc_factory, tmp_path):
    """%GRPC_STATUS% and Istio's grpc_response_status: from the trailers of a
    whole response, and from the head of a trailers-only one."""
    from support import telemetry as t
    from support.net import wait_until

    srv = grpc_factory("a")
    doc = t.client_sidecar(srv.port)
    cluster = doc["static_resources"]["clusters"][0]
    cluster.update(h2_cluster(cluster["name"], [srv.port], metadata=cluster["metadata"]))
    log = tmp_path / "access.log"
    hcm = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    hcm["access_log"] = [{"name": "envoy.access_loggers.file", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog", "path": str(log),
        "log_format": {"text_format_source": {"inline_string":
                                              "%REQ(:PATH)% %GRPC_STATUS% %GRPC_STATUS(NUMBER)% %PROTOCOL%\n"}}}}]
    engine = engine_factory(config=doc)
    port = engine.listener_port("outbound")
    assert grpc_post(port, "Echo", headers={"host": t.SERVICE})[0] == 200
    assert grpc_post(port, "Down", headers={"host": t.SERVICE})[1]["grpc-status"] == "14"

    def logged():
        engine.flush_access_logs()
        return log.exists() and len(log.read_text().splitlines()) >= 2
    wait_until(logged, what="two access-log records")
    assert log.read_text().splitlines() == ["/t.S/Echo Ok 0 HTTP/1.1", "/t.S/Down Unavailable 14 HTTP/1.1"]
    text = t.scrape(engine)
    for code in ("0", "14"):
        (s,) = t.samples(text, "istio_requests_total", grpc_response_status=code)
        assert s.labels["request_protocol"] == "grpc" and s.labels["response_code"] == "200"


def test_grpc_timeout_bounds_the_route_timeout(engine_factory, grpc_factory):
    """max_stream_duration.grpc_timeout_header_max: the call's grpc-timeout
    replaces the route timeout, capped at the max; without it the header is
    not a timeout."""
    srv = grpc_factory("slow", delay=1.0)
    capped = h.route("/t.S/", "backend", route={"timeout": "10s", "max_stream_duration": {
        "grpc_timeout_header_max": "0.2s"}})
    uncapped = h.route("/", "backend", route={"timeout": "10s", "max_stream_duration": {
        "grpc_timeout_header_max": "0s"}})
    plain = h.route("/", "backend", route={"timeout": "10s"})
    engine, port = engine_for(engine_factory, h2_cluster("backend", [srv.port]), routes=[capped])
    status, fields, body = grpc_post(port, "Echo", headers={"grpc-timeout": "20S"})
    assert (status, body) == (504, b"upstream request timeout")  # 20 s capped at 0.2 s
    assert engine.stats()["cluster.backend.upstream_rq_timeout"] == 1
    assert grpc_post(port, "Echo")[0] == 200  # no header: the route's 10 s

    for route in (uncapped, plain):
        engine, port = engine_for(engine_factory, h2_cluster("backend", [srv.port]), routes=[route])
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("POST", "/t.S/Echo", body=frame(b"x"), headers={"content-type": "application/grpc",
                                                           "te": "trailers", "grpc-timeout": "100m"})
        r = c.getresponse()
        r.read()
        # uncapped: 100 ms applies; plain route: grpc-timeout is not a timeout
        assert r.status == (504 if route is uncapped else 200)


def test_a_slow_reader_holds_the_upstream_back(engine_factory, h2_factory):
    """Windows reopen only as the stream forwards: a client that reads
    nothing stalls the HTTP/2 upstream after a bounded number of bytes."""
    import socket

    big = bytes(range(256)) * (64 << 10)  # 16 MiB
    srv = h2_factory(lambda headers, body: ("reply", 200, [], big, None))
    engine, port = engine_for(engine_factory, h2_cluster("backend", [srv.port]),
                              routes=[h.route("/", "backend", route={"timeout": "0s"})])  # a slow reader
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
        s.sendall(b"GET /big HTTP/1.1\r\nHost: svc\r\n\r\n")
        time.sleep(1.0)  # not reading
        stalled_at = srv.sent
        # what the kernel buffers on both sockets plus one stream window: far below the body
        assert stalled_at < len(big) // 2, stalled_at
        got, s_file = 0, s.makefile("rb")
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            head += s_file.read(1)
        assert b"transfer-encoding: chunked" in head.lower()
        data = bytearray()
        while True:
            line = s_file.readline()
            assert line, len(data)
            size = int(line.split(b";")[0], 16)
            if size == 0:
                break
            data += s_file.read(size)
            s_file.read(2)
        got = len(data)
    assert got == len(big) and bytes(data) == big and srv.sent == len(big)


def test_a_session_to_a_removed_cluster_closes_when_the_engine_stops(engine_factory, h2_factory):
    """A session busy when its cluster left the config, idle after: no host
    pool the worker walks holds it any more, and it is still closed on stop
    (the upstream sees the FIN), not left open in the embedding process."""
    started = threading.Event()

    def slow(headers, body):
        started.set()
        time.sleep(0.5)
        return ("reply", 200, [], b"done\n", None)

    old, new = h2_factory(slow), h2_factory(lambda headers, body: ("reply", 200, [], b"new\n", None))
    engine, port = engine_for(engine_factory, h2_cluster("old", [old.port]))
    result = {}

    def get():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/")
        result["body"] = c.getresponse().read()
        c.close()

    t = threading.Thread(target=get)
    t.start()
    assert started.wait(10)
    engine.apply(h.bootstrap([h.hcm_listener("http", routes=[h.route("/", "new")])], [h2_cluster("new", [new.port])]))
    t.join(10)
    assert result["body"] == b"done\n"
    assert old.closed == 0  # the old session is idle, not closed
    engine.stop()
    deadline = time.monotonic() + 10
    while old.closed == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert old.closed == 1, "the removed cluster's session was left open"
