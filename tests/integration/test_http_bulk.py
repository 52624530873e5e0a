"""1 GiB chunked bodies through a `meshcore proxy` process, both directions,
with bounded proxy memory.

The bodies are generated on the fly (1 MiB chunks) and counted and dropped
at the receiving end, so only the proxy could hold a copy. Its peak RSS
during the transfer is read from /proc/<pid>/status (VmHWM after resetting
it through /proc/<pid>/clear_refs once the proxy is warm), and must stay
within a few MiB of its resting RSS: a proxy that buffered the body would
grow by a GiB.
"""
import os
import threading

import pytest
from support import http as h

GIB = 1 << 30
CHUNK = 1 << 20
MAX_GROWTH = 8 << 20  # "a few MiB": pooled buffers and allocator slack, not the body


def status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


class PeakRss:
    """Peak RSS of a process from now on: VmHWM reset via clear_refs when the
    kernel allows it, else VmRSS sampled on a thread."""

    def __init__(self, pid: int):
        self.pid = pid
        self.base = status_kib(pid, "VmRSS") * 1024
        self._stop = threading.Event()
        self._peak = self.base
        try:
            with open(f"/proc/{pid}/clear_refs", "w") as f:
                f.write("5")
            self._hwm = True
        except OSError:
            self._hwm = False
            self._thread = threading.Thread(target=self._sample, name="rss-sampler", daemon=True)
            self._thread.start()

    def _sample(self):
        while not self._stop.wait(0.01):
            self._peak = max(self._peak, status_kib(self.pid, "VmRSS") * 1024)

    def growth(self) -> int:
        if self._hwm:
            return status_kib(self.pid, "VmHWM") * 1024 - self.base
        self._stop.set()
        self._thread.join(timeout=10)
        return self._peak - self.base


@pytest.fixture
def bulk_proxy(proxy_factory, backend_factory):
    """make(handler) -> (proxy process, port, backend) with a warmed-up proxy."""
    def make(handler):
        backend = backend_factory("bulk", handler, store_body=False, hash_body=False)
        proxy = proxy_factory(h.simple([backend.port]))
        port = proxy.listener_port("http")
        for _ in range(4):  # warm both workers' pools and buffers
            with h.Conn(port) as c:
                assert c.request("POST", "/warm", body=os.urandom(64 * 1024)).status == 200
        return proxy, port, backend
    return make


def blocks(n: int):
    block = os.urandom(CHUNK)
    for i in range(n):
        yield i.to_bytes(8, "big") + block[8:]


def test_1gib_chunked_upload_streams_with_bounded_memory(bulk_proxy):
    proxy, port, backend = bulk_proxy(lambda req: h.Reply(200, [], str(req.body_len).encode()))
    peak = PeakRss(proxy.pid)
    with h.Conn(port, timeout=120) as c:
        c.send(h.build_request("POST", "/upload", headers=[("Transfer-Encoding", "chunked")]))
        size_line = b"%x\r\n" % CHUNK
        for piece in blocks(GIB // CHUNK):
            c.send(size_line)
            c.send(piece)
            c.send(b"\r\n")
        c.send(b"0\r\n\r\n")
        resp = c.response()
    assert (resp.status, resp.body) == (200, str(GIB).encode())
    growth = peak.growth()
    (req,) = [r for r in backend.requests if r.target == "/upload"]
    assert req.chunked and req.body_len == GIB
    assert growth < MAX_GROWTH, f"proxy RSS grew by {growth / 2**20:.1f} MiB"


def test_1gib_chunked_response_streams_with_bounded_memory(bulk_proxy):
    def handler(req):
        if req.target == "/download":
            return h.Reply(200, [], stream=blocks(GIB // CHUNK))
        return h.Reply(200, [], req.body_len.to_bytes(8, "big"))

    proxy, port, backend = bulk_proxy(handler)
    peak = PeakRss(proxy.pid)
    with h.Conn(port, timeout=120) as c:
        c.send(h.build_request("GET", "/download"))
        resp = c.response(store=False)
        assert resp.status == 200 and resp.header("transfer-encoding") == "chunked"
        assert resp.body_len == GIB
        assert c.request("GET", "/after").status == 200  # the message ended cleanly
    growth = peak.growth()
    assert growth < MAX_GROWTH, f"proxy RSS grew by {growth / 2**20:.1f} MiB"
