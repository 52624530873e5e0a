"""curl through the L4 hop to a real HTTP server."""
import os
import shutil
import subprocess

import pytest
from support import config as cfg

CURL = shutil.which("curl")
pytestmark = pytest.mark.skipif(CURL is None, reason="curl is not installed")


def curl(*args) -> subprocess.CompletedProcess:
    return subprocess.run([CURL, "-s", "-S", "--max-time", "30", *args],
                          capture_output=True, timeout=60)


def test_curl_gets_the_upstream_body(engine_factory, http_upstream_factory):
    upstream = http_upstream_factory(b"hello from the real upstream\n")
    engine = engine_factory(config=cfg.simple([upstream.port]))
    port = engine.listener_port("ingress")

    out = curl(f"http://127.0.0.1:{port}/")
    assert out.returncode == 0, out.stderr
    assert out.stdout == b"hello from the real upstream\n"
    assert upstream.requests == 1


def test_curl_keep_alive_and_large_body(engine_factory, http_upstream_factory):
    """Three requests on one kept-alive connection, 2 MiB body each."""
    body = os.urandom(2 << 20)
    upstream = http_upstream_factory(body)
    engine = engine_factory(config=cfg.simple([upstream.port]))
    url = f"http://127.0.0.1:{engine.listener_port('ingress')}/big"

    out = curl(url, url, url)
    assert out.returncode == 0, out.stderr
    assert out.stdout == body * 3
    assert upstream.requests == 3
    # curl reused the connection: one downstream, one upstream connection.
    assert engine.stats()["tcp.ingress_tcp.downstream_cx_total"] == 1
