"""HTTP/2 requests with `Expect: 100-continue` (an interim 100 HEADERS, as the
HTTP/1.1 codec answers) and with trailers (forwarded to the HTTP/1.1 upstream
as the chunked body's trailer section): curl and the `h2` package against a
backend that records what it got."""
from __future__ import annotations

import shutil
import socket
import subprocess

import h2.config
import h2.connection
import h2.events
import pytest
from support import http as h

CURL = shutil.which("curl")


@pytest.fixture
def echo(engine_factory, backend_factory):
    backend = backend_factory("echo")
    engine = engine_factory(config=h.simple([backend.port], codec_type="AUTO"))
    return engine, engine.listener_port("http"), backend


@pytest.mark.skipif(CURL is None, reason="curl is not installed")
def test_expect_100_continue_gets_an_interim_100(echo):
    engine, port, backend = echo
    body = b"x" * 5000
    out = subprocess.run([CURL, "-s", "-S", "-v", "--max-time", "30", "--http2-prior-knowledge",
                          "-H", "Expect: 100-continue", "--data-binary", "@-", f"http://127.0.0.1:{port}/up"],
                         input=body, capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert b"< HTTP/2 100" in out.stderr and b"< HTTP/2 200" in out.stderr, out.stderr
    assert out.stdout == body
    (req,) = backend.requests
    assert req.body == body and req.header("expect") is None  # answered here, not forwarded


def h2_request(port, fields, chunks, trailers):
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        conn.send_headers(1, fields)
        for c in chunks:
            conn.send_data(1, c)
        if trailers:
            conn.send_headers(1, trailers, end_stream=True)
        else:
            conn.end_stream(1)
        s.sendall(conn.data_to_send())
        status, body, ended = None, b"", False
        while not ended:
            data = s.recv(65536)
            assert data, "connection closed"
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.ResponseReceived):
                    status = dict(ev.headers)[b":status"]
                elif isinstance(ev, h2.events.DataReceived):
                    body += ev.data
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, (h2.events.StreamEnded, h2.events.StreamReset)):
                    ended = True
            s.sendall(conn.data_to_send())
        return status, body


def test_request_trailers_reach_the_http1_upstream(echo):
    engine, port, backend = echo
    fields = [(":method", "POST"), (":path", "/t"), (":scheme", "http"), (":authority", "svc"), ("te", "trailers")]
    status, body = h2_request(port, fields, [b"hello ", b"world"],
                              [("x-checksum", "abc123"), ("grpc-status", "0")])
    assert status == b"200" and body == b"hello world"
    (req,) = backend.requests
    assert req.chunked and req.body == b"hello world"
    assert req.trailers == [("x-checksum", "abc123"), ("grpc-status", "0")]


def test_trailers_with_content_length_are_dropped(echo):
    """A body with content-length has no trailer section in HTTP/1.1."""
    engine, port, backend = echo
    fields = [(":method", "POST"), (":path", "/t"), (":scheme", "http"), (":authority", "svc"),
              ("content-length", "5")]
    status, body = h2_request(port, fields, [b"hello"], [("x-checksum", "abc")])
    assert status == b"200" and body == b"hello"
    (req,) = backend.requests
    assert not req.chunked and req.body == b"hello" and req.trailers == []
