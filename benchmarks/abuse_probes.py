"""bench_abuse's pieces: the upstreams (a good one, a blackhole, a half-answering
one), the steady client and the admin poller that run beside every probe,
and the probes themselves (slowloris, connection flood, slow readers, header
bombs, fault upstreams). Each probe returns how many of its connections the
proxy refused or closed; the harness measures the proxy around it."""
from __future__ import annotations

import http.client
import socket
import threading
import time
from dataclasses import dataclass, field

BIG = 4 * 1024 * 1024  # /big: what a slow reader asks for


# ---- upstreams ---------------------------------------------------------------------------


class Upstream:
    """A threaded HTTP/1.1 origin on 127.0.0.1. mode "ok": 200 with a short
    body (or BIG bytes for /big); "blackhole": accepts, reads, never answers;
    "half": answers a head announcing 1000 bytes, sends 10, closes."""

    def __init__(self, mode: str):
        self.mode = mode
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4096)
        self.port = self.sock.getsockname()[1]
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c: socket.socket):
        buf = b""
        try:
            while not self.stopped:
                data = c.recv(65536)
                if not data:
                    return
                buf += data
                while b"\r\n\r\n" in buf:
                    head, buf = buf.split(b"\r\n\r\n", 1)
                    if self.mode == "blackhole":
                        continue
                    if self.mode == "half":
                        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789")
                        return
                    path = head.split(b" ", 2)[1] if b" " in head else b"/"
                    body = b"x" * BIG if path == b"/big" else b"ok\n"
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        except OSError:
            pass
        finally:
            c.close()

    def stop(self):
        self.stopped = True
        self.sock.close()


# ---- beside every probe --------------------------------------------------------------------


@dataclass
class Watch:
    """The steady client (one keep-alive connection, opened before the probe,
    reopened only after a failure) and the admin poller (a new connection to
    /ready every 0.25 s)."""

    port: int
    admin_port: int
    steady_ok: int = 0
    steady_failures: int = 0
    admin_ok: int = 0
    admin_failures: int = 0
    errors: list = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Watch:
        self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        self._conn.connect()
        self._threads = [threading.Thread(target=self._steady, daemon=True),
                         threading.Thread(target=self._admin, daemon=True)]
        for t in self._threads:
            t.start()
        return self

    def _steady(self):
        while not self._stop.is_set():
            try:
                self._conn.request("GET", "/", headers={"Host": "svc"})
                resp = self._conn.getresponse()
                resp.read()
                if resp.status != 200:
                    raise OSError(f"status {resp.status}")
                self.steady_ok += 1
            except (OSError, http.client.HTTPException) as e:
                self.steady_failures += 1
                self.errors.append(f"steady: {e!r}")
                self._conn.close()
                self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                time.sleep(0.05)
            time.sleep(0.02)

    def _admin(self):
        while not self._stop.is_set():
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=5)
                c.request("GET", "/ready")
                resp = c.getresponse()
                resp.read()
                c.close()
                if resp.status != 200:
                    raise OSError(f"status {resp.status}")
                self.admin_ok += 1
            except (OSError, http.client.HTTPException) as e:
                self.admin_failures += 1
                self.errors.append(f"admin: {e!r}")
            time.sleep(0.25)

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(10)
        self._conn.close()


# ---- the probes ------------------------------------------------------------------------------


def _closed(s: socket.socket) -> bool:
    """Whether the proxy closed (or reset) s; reads what it sent."""
    s.setblocking(False)
    try:
        while True:
            data = s.recv(65536)
            if not data:
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True


def _count_closed(socks) -> int:
    n = sum(1 for s in socks if _closed(s))
    for s in socks:
        s.close()
    return n


def _connect_many(port: int, n: int, first: bytes = b"") -> tuple[list, int]:
    """Up to n connections (each sending `first`); (sockets, connects that failed)."""
    socks, failed = [], 0
    for _ in range(n):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
            if first:
                s.sendall(first)
            socks.append(s)
        except OSError:
            failed += 1
    return socks, failed


def slowloris(port: int, scale: dict, during) -> dict:
    """Connections that send a request head one header line at a time, forever."""
    socks, failed = _connect_many(port, scale["slowloris"], b"GET / HTTP/1.1\r\nHost: svc\r\n")
    deadline = time.monotonic() + scale["seconds"]
    while time.monotonic() < deadline:
        for s in socks:
            try:
                s.sendall(b"x-a: b\r\n")
            except OSError:
                pass
        during()
        time.sleep(1)
    return {"sent": len(socks) + failed, "refused": failed, "closed": _count_closed(socks)}


def flood(port: int, scale: dict, during) -> dict:
    """Idle connections past the proxy's descriptor limit, held for the probe."""
    socks, failed = _connect_many(port, scale["flood"])
    deadline = time.monotonic() + scale["seconds"]
    while time.monotonic() < deadline:
        during()
        time.sleep(0.5)
    return {"sent": len(socks) + failed, "refused": failed, "closed": _count_closed(socks)}


def slow_readers(port: int, scale: dict, during) -> dict:
    """Clients that ask for BIG bytes and read 4 KiB a second."""
    socks, failed = [], 0
    for _ in range(scale["slow_readers"]):
        try:
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.settimeout(2)
            s.connect(("127.0.0.1", port))
            s.sendall(b"GET /big HTTP/1.1\r\nHost: svc\r\n\r\n")
            socks.append(s)
        except OSError:
            failed += 1
    deadline = time.monotonic() + scale["seconds"]
    while time.monotonic() < deadline:
        for s in socks:
            try:
                s.setblocking(False)
                s.recv(4096)
            except (BlockingIOError, OSError):
                pass
        during()
        time.sleep(1)
    return {"sent": len(socks) + failed, "refused": failed, "closed": _count_closed(socks)}


def header_bombs(port: int, scale: dict, during) -> dict:
    """Requests with a 100 KiB header, and with 500 header fields."""
    big = b"GET / HTTP/1.1\r\nHost: svc\r\nx-bomb: " + b"a" * 100_000 + b"\r\n\r\n"
    many = b"GET / HTTP/1.1\r\nHost: svc\r\n" + b"".join(b"x-%d: v\r\n" % i for i in range(500)) + b"\r\n"
    sent = closed = refused = 0
    deadline = time.monotonic() + scale["seconds"]
    while time.monotonic() < deadline and sent < scale["bombs"]:
        for payload in (big, many):
            sent += 1
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                    s.sendall(payload)
                    s.recv(65536)
                    closed += 1  # answered (4xx) or closed: either way the proxy ended it
            except OSError:
                refused += 1
        during()
    return {"sent": sent, "refused": refused, "closed": closed}


def fault_upstreams(port: int, scale: dict, during) -> dict:
    """Requests routed to an upstream that never answers and to one that cuts its body short."""
    sent = failed = 0
    results = []

    def one(path):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("GET", path, headers={"Host": "svc"})
            resp = c.getresponse()
            resp.read()
            results.append(resp.status)
            c.close()
        except (OSError, http.client.HTTPException):
            results.append(0)

    deadline = time.monotonic() + scale["seconds"]
    while time.monotonic() < deadline:
        threads = [threading.Thread(target=one, args=(p,)) for p in ("/blackhole", "/half") * scale["faults"]]
        for t in threads:
            t.start()
        for t in threads:
            t.join(15)
        sent += len(threads)
        during()
    failed = sum(1 for r in results if r != 200)
    return {"sent": sent, "refused": 0, "closed": failed}


PROBES = {"slowloris": slowloris, "flood": flood, "slow_readers": slow_readers,
          "header_bombs": header_bombs, "fault_upstreams": fault_upstreams}
