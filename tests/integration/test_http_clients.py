"""Real client programs through the HTTP proxy: curl and urllib (the other
files mostly speak raw HTTP from sockets, to control every byte)."""
import hashlib
import os
import shutil
import subprocess
import urllib.request

import pytest
from support import http as h

CURL = shutil.which("curl")
needs_curl = pytest.mark.skipif(CURL is None, reason="curl is not installed")


def curl(*args, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([CURL, "-s", "-S", "--max-time", "60", *args], input=stdin, capture_output=True,
                          timeout=120)


@pytest.fixture
def echo(engine_factory, backend_factory):
    backend = backend_factory("echo")
    engine = engine_factory(config=h.simple([backend.port]))
    return engine, f"http://127.0.0.1:{engine.listener_port('http')}", backend


@needs_curl
def test_curl_reuses_one_connection_for_several_urls(echo):
    engine, base, backend = echo
    out = curl(f"{base}/a", f"{base}/b", f"{base}/c")
    assert out.returncode == 0, out.stderr
    assert [r.target for r in backend.requests] == ["/a", "/b", "/c"]
    assert h.stat(engine, "http.http.downstream_cx_total") == 1
    assert backend.accepted == 1


@needs_curl
def test_curl_large_post_with_expect_100_continue(echo):
    engine, base, backend = echo
    body = os.urandom(3 << 20)  # curl sends Expect: 100-continue for bodies this large
    out = curl("--data-binary", "@-", "-H", "Content-Type: application/octet-stream", "-H",
               "Expect: 100-continue", f"{base}/upload", stdin=body)
    assert out.returncode == 0, out.stderr
    assert hashlib.sha256(out.stdout).digest() == hashlib.sha256(body).digest()
    (req,) = backend.requests
    assert not req.has("expect") and req.body_len == len(body)


@needs_curl
def test_curl_chunked_upload(echo):
    engine, base, backend = echo
    body = os.urandom(200_000)
    out = curl("-T", "-", "-H", "Transfer-Encoding: chunked", f"{base}/put", stdin=body)
    assert out.returncode == 0, out.stderr
    assert out.stdout == body
    (req,) = backend.requests
    assert req.method == "PUT" and req.chunked and req.body == body


@needs_curl
def test_curl_http10(engine_factory, backend_factory):
    backend = backend_factory("echo")
    engine = engine_factory(config=h.simple([backend.port], http_protocol_options={"accept_http_10": True}))
    base = f"http://127.0.0.1:{engine.listener_port('http')}"
    out = curl("--http1.0", "-i", f"{base}/old")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(b"HTTP/1.1 200")
    assert backend.requests[0].target == "/old"


@needs_curl
def test_curl_http10_gets_426_by_default(echo):
    engine, base, backend = echo
    out = curl("--http1.0", "-i", f"{base}/old")
    assert out.stdout.startswith(b"HTTP/1.1 426 Upgrade Required"), out.stdout
    assert backend.requests == []


def test_urllib_get_and_post(echo):
    engine, base, backend = echo
    with urllib.request.urlopen(f"{base}/get", timeout=30) as resp:
        assert resp.status == 200 and resp.headers["x-backend"] == "echo"
    req = urllib.request.Request(f"{base}/post", data=b"form=1&x=2", method="POST")
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.read() == b"form=1&x=2"
    assert [r.method for r in backend.requests] == ["GET", "POST"]
