"""Memory after a flood: once a flood of idle and half-sent connections
closes, the proxy gives pooled objects and buffers back (per-worker pool
trim every 5 s + malloc_trim) and its RSS returns to within 10% of the
level before the flood (docs/hardening.md)."""
import re
import resource
import socket

from support.http import Conn, simple
from support.net import wait_until

from meshcore import _core

# 4,000 connections, or fewer where the descriptor limit (which the proxy
# inherits) derives a smaller connection limit.
N = min(4000, _core.Engine.derived_cx_limit(resource.getrlimit(resource.RLIMIT_NOFILE)[0]) - 8)


def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def test_rss_returns_after_a_flood_closes(proxy_factory, backend_factory):
    backend = backend_factory()
    proxy = proxy_factory(simple([backend.port]))
    port = proxy.listener_port("http")
    with Conn(port) as c:
        assert c.request("GET", "/").status == 200
    before = _rss_kb(proxy.pid)
    socks = []
    try:
        for i in range(N):
            s = socket.create_connection(("127.0.0.1", port))
            if i % 3 == 0:  # a head in progress holds a buffer and a stream
                s.sendall(b"GET / HTTP/1.1\r\nHost: svc\r\n")
            socks.append(s)
        wait_until(lambda: proxy.stat("server.total_connections") == N, 30, what=f"{N} connections admitted")
        during = _rss_kb(proxy.pid)
        assert during > before + N * 2  # the flood did cost memory (KiB): the test measures something
    finally:
        for s in socks:
            s.close()
    wait_until(lambda: proxy.stat("server.total_connections") == 0, 30, what="the flood closed")
    wait_until(lambda: _rss_kb(proxy.pid) <= before * 1.10, 30,
               what=f"RSS back within 10% of {before} KiB (during the flood: {during} KiB)")
    with Conn(port) as c:  # and the pools grow again
        assert c.request("GET", "/after").status == 200
