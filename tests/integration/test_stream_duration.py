"""Envoy's stream duration limit (proxy/http_duration.c) and the deprecated
max_grpc_timeout, with real clients and servers: a slow or streaming
HTTP/1.1 backend behind HTTP/1.1 and HTTP/2 (curl --http2-prior-knowledge)
clients, and grpcio calls. Limits are a few hundred ms; outcomes are checked,
never how long anything took."""
from __future__ import annotations

import shutil
import socket
import subprocess
import time

import grpc
import pytest
from support import http as h
from support.grpc_server import GrpcServer
from support.net import wait_until

CURL = shutil.which("curl")
OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
FILE_LOG = "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog"
MAX_DURATION = "http.http.downstream_rq_max_duration_reached"


def slow(seconds):
    def handler(req):
        time.sleep(seconds)
        return h.Reply(200, [], b"late")
    return handler


def streaming(req):
    def pieces():
        for i in range(100):
            yield b"piece-%d\n" % i
            time.sleep(0.05)
    return h.Reply(200, [], stream=pieces())


def sidecar(engine_factory, tmp_path, routes, port, *, hcm_limit=None, codec="HTTP1", cluster=None):
    hcm = {"codec_type": codec, "access_log": [{"name": "envoy.access_loggers.file", "typed_config": {
        "@type": FILE_LOG, "path": str(tmp_path / "access.log"),
        "log_format": {"text_format_source": {"inline_string": "%REQ(:PATH)% %RESPONSE_CODE% %RESPONSE_FLAGS%\n"}}}}]}
    if hcm_limit:
        hcm["common_http_protocol_options"] = {"max_stream_duration": hcm_limit}
    doc = h.bootstrap([h.hcm_listener("http", routes=routes, **hcm)], [cluster or h.http_cluster("backend", [port])])
    engine = engine_factory(config=doc, concurrency=1)
    return engine, engine.listener_port("http")


def log_lines(engine, tmp_path, n):
    path = tmp_path / "access.log"

    def ready():
        engine.flush_access_logs()
        return path.exists() and len(path.read_text().splitlines()) >= n
    wait_until(ready, what=f"{n} access-log records")
    return path.read_text().splitlines()


def second(tmp_path):
    d = tmp_path / "second"
    d.mkdir()
    return d


def limited(prefix="/", limit="0.3s", **route):
    return h.route(prefix, "backend", route={"timeout": "10s", "max_stream_duration": {"max_stream_duration": limit},
                                             **route})


def test_a_whole_request_past_the_limit_gets_504_dt(engine_factory, backend_factory, tmp_path):
    backend = backend_factory(handler=slow(3))
    engine, port = sidecar(engine_factory, tmp_path, [limited()], backend.port)
    r = h.request(port, "GET", "/slow")
    assert (r.status, r.body) == (504, b"downstream duration timeout")
    assert engine.stats()[MAX_DURATION] == 1
    assert engine.stats()["http.http.response_flag_DT"] == 1
    assert engine.stats()["cluster.backend.upstream_rq_timeout"] == 0  # not the route timeout
    assert log_lines(engine, tmp_path, 1) == ["/slow 504 DT"]


def test_a_request_still_arriving_gets_408(engine_factory, backend_factory, tmp_path):
    """Http::Utility::maybeRequestTimeoutCode: 408 while the request is incomplete."""
    backend = backend_factory()
    engine, port = sidecar(engine_factory, tmp_path, [limited()], backend.port)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"POST /upload HTTP/1.1\r\nHost: svc\r\ncontent-length: 100\r\n\r\nonly-some")
        got = b""
        while True:  # the connection closes after the reply (the body is unread)
            data = s.recv(65536)
            if not data:
                break
            got += data
    assert got.startswith(b"HTTP/1.1 408 ") and got.endswith(b"downstream duration timeout")
    assert engine.stats()[MAX_DURATION] == 1
    assert log_lines(engine, tmp_path, 1) == ["/upload 408 DT"]


def test_a_streaming_response_is_cut(engine_factory, backend_factory, tmp_path):
    """Past the response head there is no reply to send: the HTTP/1.1
    connection closes mid-body."""
    backend = backend_factory(handler=streaming)
    engine, port = sidecar(engine_factory, tmp_path, [limited()], backend.port)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /stream HTTP/1.1\r\nHost: svc\r\n\r\n")
        got = b""
        while True:
            data = s.recv(65536)
            if not data:
                break
            got += data
    head, _, body = got.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and b"piece-0" in body
    assert b"piece-99" not in body and not body.endswith(b"0\r\n\r\n")  # no last chunk
    assert engine.stats()[MAX_DURATION] == 1
    assert log_lines(engine, tmp_path, 1) == ["/stream 200 DT"]


def test_route_0s_turns_the_hcm_limit_off_and_the_hcm_limit_applies_otherwise(engine_factory, backend_factory,
                                                                              tmp_path):
    backend = backend_factory(handler=slow(1))
    routes = [limited("/unlimited", "0s"), h.route("/", "backend", route={"timeout": "10s"})]
    engine, port = sidecar(engine_factory, tmp_path, routes, backend.port, hcm_limit="0.3s")
    assert h.request(port, "GET", "/unlimited").status == 200
    r = h.request(port, "GET", "/fallback")
    assert (r.status, r.body) == (504, b"downstream duration timeout")
    assert engine.stats()[MAX_DURATION] == 1
    assert sorted(log_lines(engine, tmp_path, 2)) == ["/fallback 504 DT", "/unlimited 200 -"]


def curl_h2(port, path):
    return subprocess.run([CURL, "-sS", "--http2-prior-knowledge", "--max-time", "10", "-w", "\n%{http_code}",
                           f"http://127.0.0.1:{port}{path}"], capture_output=True, timeout=30)


@pytest.mark.skipif(CURL is None, reason="curl is not installed")
def test_http2_downstream(engine_factory, backend_factory, tmp_path):
    slow_backend = backend_factory("slow", handler=slow(3))
    engine, port = sidecar(engine_factory, tmp_path, [limited()], slow_backend.port, codec="AUTO")
    out = curl_h2(port, "/slow")
    assert out.returncode == 0, out.stderr
    assert out.stdout == b"downstream duration timeout\n504"

    stream_backend = backend_factory("stream", handler=streaming)
    engine, port = sidecar(engine_factory, second(tmp_path), [limited()], stream_backend.port, codec="AUTO")
    out = curl_h2(port, "/stream")
    assert out.returncode != 0  # RST_STREAM: the body did not end
    assert b"piece-0" in out.stdout and b"piece-99" not in out.stdout
    wait_until(lambda: engine.stats()[MAX_DURATION] == 1, what="the limit to be counted")


# ---- gRPC ---------------------------------------------------------------------------------------


class SlowServer(GrpcServer):
    """grpcio (h2c): Unary answers after `delay`; ServerStream sends a message every 50 ms."""

    def __init__(self, delay=0.0):
        def unary(req, ctx):
            time.sleep(delay)
            return b"ok:" + req

        def server_stream(req, ctx):
            for i in range(int(req)):
                yield b"%d" % i
                time.sleep(0.05)

        super().__init__("t.S", {
            "Unary": grpc.unary_unary_rpc_method_handler(unary),
            "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream)}, workers=4)


@pytest.fixture
def grpc_server():
    made = []

    def make(**kw):
        made.append(SlowServer(**kw))
        return made[-1]
    yield make
    for s in made:
        s.stop()


def h2_cluster(port):
    opts = {"@type": "type.googleapis.com/" + OPTIONS, "explicit_http_config": {"http2_protocol_options": {}}}
    return h.http_cluster("backend", [port], typed_extension_protocol_options={OPTIONS: opts})


def grpc_call(port, fn):
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        return fn(ch)


def test_grpc_calls_past_the_limit(engine_factory, grpc_server, tmp_path):
    srv = grpc_server(delay=3)
    engine, port = sidecar(engine_factory, tmp_path, [limited()], 0, codec="AUTO", cluster=h2_cluster(srv.port))
    with pytest.raises(grpc.RpcError) as info:
        grpc_call(port, lambda ch: ch.unary_unary("/t.S/Unary")(b"x", timeout=10))
    # a trailers-only reply, as Envoy's sendLocalReply with DeadlineExceeded
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert info.value.details() == "downstream duration timeout"

    # a server stream whose response has started: reset, after some messages
    got = []

    def stream(ch):
        for m in ch.unary_stream("/t.S/ServerStream")(b"100", timeout=10):
            got.append(m)
    with pytest.raises(grpc.RpcError):
        grpc_call(port, stream)
    assert got[:1] == [b"0"] and len(got) < 100
    wait_until(lambda: engine.stats()[MAX_DURATION] == 2, what="both calls counted")


def test_istiod_max_grpc_timeout(engine_factory, grpc_server, tmp_path):
    """istiod's route for an Envoy sidecar: timeout and the deprecated
    max_grpc_timeout (Envoy's router: the call's grpc-timeout, capped; no
    header is capped too; 0s is no limit for gRPC calls)."""
    srv = grpc_server(delay=1)
    capped = h.route("/", "backend", route={"timeout": "10s", "max_grpc_timeout": "0.3s",
                                            "grpc_timeout_offset": "0.01s"})
    engine, port = sidecar(engine_factory, tmp_path, [capped], 0, codec="AUTO", cluster=h2_cluster(srv.port))
    for timeout in (5, None):  # 5 s asked, 0.3 s allowed; no deadline at all: the cap
        with pytest.raises(grpc.RpcError) as info:
            grpc_call(port, lambda ch, t=timeout: ch.unary_unary("/t.S/Unary")(b"x", timeout=t))
        assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert info.value.details() == "upstream request timeout"
    assert engine.stats()["cluster.backend.upstream_rq_timeout"] == 2

    # istiod writes max_grpc_timeout = timeout; a 0s one lets a gRPC call run past the route timeout
    uncapped = h.route("/", "backend", route={"timeout": "0.3s", "max_grpc_timeout": "0s"})
    engine, port = sidecar(engine_factory, second(tmp_path), [uncapped], 0, codec="AUTO", cluster=h2_cluster(srv.port))
    assert grpc_call(port, lambda ch: ch.unary_unary("/t.S/Unary")(b"x", timeout=10)) == b"ok:x"


def test_grpc_timeout_under_grpc_timeout_header_max_replaces_the_limit(engine_factory, grpc_server, tmp_path):
    """Envoy: with grpc_timeout_header_max, a call's grpc-timeout is used
    instead of max_stream_duration."""
    srv = grpc_server(delay=0.8)
    route = limited(limit="0.3s")
    route["route"]["max_stream_duration"]["grpc_timeout_header_max"] = "0s"
    engine, port = sidecar(engine_factory, tmp_path, [route], 0, codec="AUTO", cluster=h2_cluster(srv.port))
    assert grpc_call(port, lambda ch: ch.unary_unary("/t.S/Unary")(b"x", timeout=10)) == b"ok:x"
    with pytest.raises(grpc.RpcError) as info:  # no grpc-timeout: max_stream_duration
        grpc_call(port, lambda ch: ch.unary_unary("/t.S/Unary")(b"x"))
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert engine.stats()[MAX_DURATION] == 1

