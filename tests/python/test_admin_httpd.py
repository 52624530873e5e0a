"""The admin API's HTTP server in-process: its connection cap and what it
answers beyond the limits (real sockets on loopback)."""
import socket

import pytest

from meshcore.admin.httpd import HttpServer


def _handle(method, target):
    if target == "/boom":
        raise RuntimeError("boom")
    return 200, f"{method} {target}\n", "text/plain"


@pytest.fixture
def server():
    s = HttpServer(_handle, "127.0.0.1", 0, workers=1, max_connections=2, idle_timeout=30).start()
    yield s
    s.stop()


def _get(sock, target="/x") -> bytes:
    """One request; the whole response (head and Content-Length body)."""
    sock.sendall(f"GET {target} HTTP/1.1\r\nHost: a\r\n\r\n".encode())
    data = b""
    while True:
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep:
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:")))
            if len(body) >= length:
                return data
        chunk = sock.recv(4096)
        if not chunk:
            return data
        data += chunk


def _connect(server):
    s = socket.create_connection(server.address, timeout=10)
    return s


def test_beyond_the_cap_the_connection_idle_longest_makes_room(server):
    first, second = _connect(server), _connect(server)
    assert _get(second).startswith(b"HTTP/1.1 200")  # both accepted: second answers
    third = _connect(server)
    assert _get(third).endswith(b"GET /x\n")
    assert first.recv(4096) == b""  # idle longest: closed to make room
    assert _get(second).startswith(b"HTTP/1.1 200")  # keep-alive still served
    for s in (first, second, third):
        s.close()


def test_a_failing_handler_answers_500_and_the_pool_lives_on(server):
    with _connect(server) as s:
        assert _get(s, "/boom").startswith(b"HTTP/1.1 500")
    with _connect(server) as s:
        assert _get(s).startswith(b"HTTP/1.1 200")


def test_an_oversized_head_gets_431(server):
    with _connect(server) as s:
        s.sendall(b"GET / HTTP/1.1\r\nX: " + b"a" * (70 * 1024))
        assert s.recv(4096).startswith(b"HTTP/1.1 431")
