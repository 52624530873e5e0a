"""Connection management on both sides: where one message ends and the next
begins (pipelining after a close or a streamed body, extra bytes from an
upstream), malformed upstream responses, per-connection request limits,
idle and request timeouts, and clients that leave early.
"""
import os
import socket
import struct
import threading

import pytest
from support import http as h

HPO = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"


def upstream_options(**common):
    return {"typed_extension_protocol_options": {HPO: {
        "@type": f"type.googleapis.com/{HPO}", "common_http_protocol_options": common,
        "explicit_http_config": {"http_protocol_options": {}}}}}


def proxy(engine_factory, backend, **kw):
    engine = engine_factory(config=h.simple([backend.port], **kw))
    return engine, engine.listener_port("http")


def test_nothing_after_a_connection_close_request_is_answered(engine_factory, backend_factory):
    backend = backend_factory()
    engine, port = proxy(engine_factory, backend)
    with h.Conn(port) as c:
        c.send(h.build_request("GET", "/1", headers=[("Connection", "close")]) + h.build_request("GET", "/2"))
        resp = c.response()
        assert resp.status == 200 and resp.header("x-path") == "/1"
        assert c.rest() == b""
    assert [r.target for r in backend.requests] == ["/1"]


def test_pipelined_request_after_a_streamed_body(engine_factory, backend_factory):
    backend = backend_factory()
    engine, port = proxy(engine_factory, backend)
    body = os.urandom(300 * 1024)
    with h.Conn(port) as c:
        first, second = h.pipeline(c, [h.build_request("POST", "/big", body=body), h.build_request("GET", "/next")])
    assert (first.status, first.body == body) == (200, True)
    assert (second.status, second.header("x-path"), second.body) == (200, "/next", b"")
    assert [r.target for r in backend.requests] == ["/big", "/next"]


def test_bytes_after_the_response_never_reach_the_client(engine_factory, backend_factory):
    """An upstream answering more than its Content-Length (response
    smuggling): the extra bytes are dropped with the connection."""
    smuggled = b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\nsmuggle"
    raw = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok" + smuggled
    backend = backend_factory("extra", lambda req: h.Reply(raw=raw))
    engine, port = proxy(engine_factory, backend)
    with h.Conn(port) as c:
        for _ in range(2):
            resp = c.request("GET", "/")
            assert (resp.status, resp.body) == (200, b"ok")
    assert backend.accepted == 2, "a connection with stray bytes is not reused"


@pytest.mark.parametrize("raw", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    b"HTTP/1.1 200 OK\r\nContent-Length: five\r\n\r\nhello",
    b"HTTP/1.1 2000 OK\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nX Bad: 1\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\nContent-Length: 0\n\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
    b"HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n",
    b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
], ids=["cl-and-te", "two-cl", "cl-letters", "status-4-digits", "bad-name", "bare-lf", "te-gzip", "http2",
        "not-http"])
def test_malformed_upstream_response_is_502_UPE(engine_factory, backend_factory, raw):
    backend = backend_factory("broken", lambda req: h.Reply(raw=raw, close=True))
    engine, port = proxy(engine_factory, backend)
    with h.Conn(port) as c:
        resp = c.request("GET", "/")
        assert (resp.status, resp.body) == (502, b"upstream sent a malformed response")
        assert c.request("GET", "/again").status == 502, "the client connection survives"
    h.wait_stat(engine, "http.http.response_flag_UPE", 2)
    assert h.stat(engine, "cluster.backend.upstream_cx_protocol_error") == 2


def test_malformed_chunked_response_body_cuts_the_client_off(engine_factory, backend_factory):
    raw = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n"
    backend = backend_factory("badchunks", lambda req: h.Reply(raw=raw, close=True))
    engine, port = proxy(engine_factory, backend)
    with h.Conn(port) as c:
        c.send(h.build_request("GET", "/"))
        with pytest.raises(ConnectionError):
            c.response()
        assert c.at_eof()
    h.wait_stat(engine, "cluster.backend.upstream_cx_protocol_error", 1)


def test_client_half_close_after_its_request_still_gets_the_response(engine_factory, backend_factory):
    backend = backend_factory()
    engine, port = proxy(engine_factory, backend)
    with h.Conn(port) as c:
        c.send(h.build_request("POST", "/half", body=b"then FIN"))
        c.sock.shutdown(socket.SHUT_WR)
        resp = c.response()
        assert (resp.status, resp.body) == (200, b"then FIN")
        assert c.at_eof()


def test_client_resetting_mid_request_closes_the_upstream_connection(engine_factory, backend_factory):
    gate = threading.Event()

    def handler(req):
        if req.target == "/slow":
            gate.wait(20)
        return h.Reply(200, [], b"ok")

    backend = backend_factory("slow", handler)
    engine, port = proxy(engine_factory, backend)
    try:
        with h.Conn(port) as c:
            c.send(h.build_request("GET", "/slow"))
            backend.wait_requests(1)
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST
        h.wait_stat(engine, "http.http.response_flag_DC", 1)
    finally:
        gate.set()
    assert h.request(port, "GET", "/next").status == 200
    assert backend.accepted == 2, "the abandoned exchange's connection is not reused"
    assert h.stat(engine, "http.http.downstream_rq_rx_reset") == 1


def test_downstream_max_requests_per_connection(engine_factory, backend_factory):
    backend = backend_factory()
    engine, port = proxy(engine_factory, backend, common_http_protocol_options={"max_requests_per_connection": 3})
    with h.Conn(port) as c:
        assert [c.request("GET", f"/{i}").header("connection") for i in range(3)] == [None, None, "close"]
        assert c.at_eof()


def test_upstream_max_requests_per_connection(engine_factory, backend_factory):
    backend = backend_factory()
    engine, port = proxy(engine_factory, backend, cluster_kw=upstream_options(max_requests_per_connection=2))
    with h.Conn(port) as c:
        for i in range(5):
            assert c.request("GET", f"/{i}").status == 200
    assert backend.accepted == 3
    assert [r.conn for r in backend.requests] == [1, 1, 2, 2, 3]


def test_upstream_idle_timeout_closes_pooled_connections(engine_factory, backend_factory):
    backend = backend_factory()
    engine, port = proxy(engine_factory, backend, cluster_kw=upstream_options(idle_timeout="0.2s"))
    assert h.request(port, "GET", "/").status == 200
    h.wait_stat(engine, "cluster.backend.upstream_cx_idle_timeout", 1)
    backend.settle(1)  # the backend saw the close
    assert h.request(port, "GET", "/").status == 200
    assert backend.accepted == 2


def test_downstream_idle_timeout(engine_factory, backend_factory):
    backend = backend_factory()
    engine, port = proxy(engine_factory, backend, common_http_protocol_options={"idle_timeout": "0.2s"})
    with h.Conn(port) as c:
        assert c.request("GET", "/").status == 200
        assert c.at_eof()
    assert h.stat(engine, "http.http.downstream_cx_idle_timeout") == 1


@pytest.mark.parametrize(("setting", "partial"), [
    ("request_headers_timeout", b"GET / HTTP/1.1\r\nHost: svc\r\n"),
    ("stream_idle_timeout", b"POST / HTTP/1.1\r\nHost: svc\r\nContent-Length: 100\r\n\r\n0123456789"),
    ("request_timeout", b"POST / HTTP/1.1\r\nHost: svc\r\nContent-Length: 100\r\n\r\n0123456789"),
], ids=["request_headers_timeout", "stream_idle_timeout", "request_timeout"])
def test_stalled_client_is_timed_out(engine_factory, backend_factory, setting, partial):
    backend = backend_factory()
    engine, port = proxy(engine_factory, backend, **{setting: "0.2s"})
    with h.Conn(port, timeout=3) as c:  # 15 times the setting: only against a hang
        c.send(partial)
        try:
            got = c.rest()
        except TimeoutError:
            pytest.fail(f"{setting} did not end the stalled request")
    assert got == b"" or got.startswith(b"HTTP/1.1 408"), got
    assert backend.heads == 0 or setting != "request_headers_timeout"


def test_header_timeout_408_is_counted_as_4xx(engine_factory, backend_factory):
    backend = backend_factory()
    engine, port = proxy(engine_factory, backend, request_headers_timeout="0.2s")
    with h.Conn(port, timeout=3) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: svc\r\n")
        assert c.rest().startswith(b"HTTP/1.1 408")
    assert h.stat(engine, "http.http.downstream_rq_timeout") == 1
    assert h.stat(engine, "http.http.downstream_rq_4xx") == 1
