"""A small HTTP/1.1 server for the admin API that cannot be starved.

Hand-written on purpose: http.server pulls in http.client, ssl and email, about
6 MiB of resident memory in every sidecar for an API that serves a dozen GETs.
It serves HTTP/1.1 with keep-alive, Content-Length bodies and nothing else.

Limits (docs/hardening.md):

- one selector thread reads every connection; a fixed pool of `workers`
  threads runs the handlers and writes the responses. Idle connections cost
  no thread.
- at most `max_connections` connections. A connection beyond the cap makes
  room by closing the connection that has been idle longest; when every
  connection is in the middle of a request, the new one gets 503 and is closed.
- a connection must send a complete request within `idle_timeout` seconds
  of being accepted or of its last response, else it is closed (this also
  ends slowloris heads). A response must be written within `write_timeout`.
- `reserve_fds` descriptors (/dev/null) are held from the start. When accept
  fails with EMFILE/ENFILE (the process is out of descriptors, e.g. the data
  plane holds them all), one is released to accept the admin connection, and
  taken back once a connection closes. With no reserve left, the listener
  backs off (50 ms doubling to 1 s) and retries; the first failure of an
  episode is logged once, and its end is logged too.
"""
from __future__ import annotations

import collections
import errno
import logging
import os
import queue
import selectors
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11

log = logging.getLogger("meshcore.admin")

MAX_HEAD = 64 * 1024
MAX_BODY = 1 << 20
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
           413: "Payload Too Large", 431: "Request Header Fields Too Large",
           500: "Internal Server Error", 501: "Not Implemented", 503: "Service Unavailable"}
TEXT = "text/plain; charset=UTF-8"

_OUT_OF_FDS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
_LISTEN, _WAKE = object(), object()
_BACKOFF_MIN, _BACKOFF_MAX = 0.05, 1.0


def response_bytes(method: str, status: int, body: str, ctype: str, close: bool) -> bytes:
    data = body.encode()
    head = (f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}\r\n"
            f"Content-Type: {ctype}\r\nContent-Length: {len(data)}\r\n"
            "Cache-Control: no-cache, max-age=0\r\nX-Content-Type-Options: nosniff\r\n"
            f"Server: meshcore-admin\r\n{'Connection: close' + chr(13) + chr(10) if close else ''}\r\n")
    return head.encode() + (b"" if method == "HEAD" else data)


def parse_request(buf: bytearray):
    """None while the request is incomplete; else (method, target, close, preset, consumed):
    preset is (status, body) for a request answered without the handler (then close)."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        if len(buf) > MAX_HEAD:
            return "GET", "", True, (431, "request head too large\n"), len(buf)
        return None
    lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        return "GET", "", True, (400, "bad request line\n"), len(buf)
    method, target, version = parts
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError:
        length = -1
    if length < 0 or length > MAX_BODY or "transfer-encoding" in headers:
        return method, target, True, (413 if length > MAX_BODY else 400, "unsupported body\n"), len(buf)
    if len(buf) < end + 4 + length:
        return None
    close = headers.get("connection", "").lower() == "close" or version == "HTTP/1.0"
    return method, target, close, None, end + 4 + length


class _Conn:
    __slots__ = ("sock", "buf", "since", "busy")

    def __init__(self, sock, now):
        self.sock = sock
        self.buf = bytearray()
        self.since = now  # accepted, or last response written: the idle clock
        self.busy = False  # a worker owns it (not in the selector)


class HttpServer:
    """handle(method, target) -> (status, body, content type), run on a pool thread."""

    def __init__(self, handle: Callable[[str, str], tuple[int, str, str]], host: str = "127.0.0.1",
                 port: int = 0, *, workers: int = 4, max_connections: int = 64, idle_timeout: float = 5.0,
                 write_timeout: float = 10.0, reserve_fds: int = 4, name: str = "mc-admin") -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind((host, port))
            self.sock.listen(128)
        except OSError:
            self.sock.close()
            raise
        self.sock.setblocking(False)
        self.handle = handle
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.write_timeout = write_timeout
        self._reserve_target = reserve_fds
        self._reserve = []
        self._refill_reserve()
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._sel.register(self.sock, selectors.EVENT_READ, _LISTEN)
        self._sel.register(self._wake_r, selectors.EVENT_READ, _WAKE)
        self._address = self.sock.getsockname()[:2]
        self._conns: dict[int, _Conn] = {}
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._done: collections.deque = collections.deque()
        self._closing = False
        self._listening = True
        self._resume_at = 0.0
        self._backoff = _BACKOFF_MIN
        self._starved = False
        self._threads = [threading.Thread(target=self._loop, name=name, daemon=True)]
        self._threads += [threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
                          for i in range(workers)]

    @property
    def address(self) -> tuple[str, int]:
        return self._address  # still known after stop() closed the socket

    def start(self) -> Self:
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._closing = True
        self._wake()
        for _ in self._threads[1:]:
            self._jobs.put(None)
        me = threading.current_thread()
        for t in self._threads:
            if t is not me and t.is_alive():
                t.join(timeout=5)

    # ---- the selector thread ------------------------------------------------------

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass  # the pipe is full: the loop is woken already

    def _loop(self) -> None:
        try:
            while not self._closing:
                now = time.monotonic()
                for key, _ in self._sel.select(self._timeout(now)):
                    if key.data is _LISTEN:
                        self._accept()
                    elif key.data is _WAKE:
                        self._drain_wake()
                    else:
                        self._readable(key.data)
                now = time.monotonic()
                self._expire(now)
                if not self._listening and now >= self._resume_at:
                    self._sel.register(self.sock, selectors.EVENT_READ, _LISTEN)
                    self._listening = True
        except Exception:  # noqa: BLE001 - never silently: the admin API would be gone
            log.exception("admin API loop failed")
        finally:
            self._shutdown()

    def _timeout(self, now: float) -> float:
        t = 1.0
        if not self._listening:
            t = min(t, self._resume_at - now)
        for c in self._conns.values():
            if not c.busy:
                t = min(t, c.since + self.idle_timeout - now)
        return max(t, 0.0)

    def _accept(self) -> None:
        for _ in range(64):
            try:
                sock, _ = self.sock.accept()
            except BlockingIOError:
                return
            except OSError as e:
                if e.errno in (errno.EINTR, errno.ECONNABORTED, errno.EPROTO):
                    continue
                if e.errno in _OUT_OF_FDS and self._reserve:
                    os.close(self._reserve.pop())  # a descriptor for this admin connection
                    continue
                self._out_of_fds(e)
                return
            if self._starved:
                log.warning("admin API: accepting connections again")
                self._starved = False
            self._backoff = _BACKOFF_MIN
            self._add(sock)

    def _out_of_fds(self, e: OSError) -> None:
        if not self._starved:
            log.warning("admin API: accept failed (%s); retrying with back-off", e.strerror or e)
            self._starved = True
        self._sel.unregister(self.sock)
        self._listening = False
        self._resume_at = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, _BACKOFF_MAX)

    def _add(self, sock) -> None:
        sock.setblocking(False)
        if len(self._conns) >= self.max_connections:
            idle = [c for c in self._conns.values() if not c.busy and not c.buf]
            if not idle:
                try:
                    sock.send(response_bytes("GET", 503, "too many admin connections\n", TEXT, True))
                except OSError:
                    pass
                sock.close()
                self._refill_reserve()
                return
            self._close(min(idle, key=lambda c: c.since))
        conn = _Conn(sock, time.monotonic())
        self._conns[sock.fileno()] = conn
        self._sel.register(sock, selectors.EVENT_READ, conn)

    def _readable(self, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._close(conn)
            return
        conn.buf += data
        self._next_request(conn)

    def _next_request(self, conn: _Conn) -> None:
        req = parse_request(conn.buf)
        if req is None:
            return
        method, target, close, preset, consumed = req
        del conn.buf[:consumed]
        conn.busy = True
        self._sel.unregister(conn.sock)
        self._jobs.put((conn, method, target, close, preset))

    def _drain_wake(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass
        while self._done:
            conn, keep = self._done.popleft()
            conn.busy = False
            if not keep or self._closing:
                self._close(conn)
                continue
            conn.since = time.monotonic()
            self._sel.register(conn.sock, selectors.EVENT_READ, conn)
            self._next_request(conn)  # a pipelined request already read

    def _expire(self, now: float) -> None:
        for c in [c for c in self._conns.values() if not c.busy and now - c.since >= self.idle_timeout]:
            self._close(c)

    def _close(self, conn: _Conn) -> None:
        self._conns.pop(conn.sock.fileno(), None)
        if not conn.busy:
            try:
                self._sel.unregister(conn.sock)
            except (KeyError, ValueError):
                pass
        conn.sock.close()
        self._refill_reserve()

    def _refill_reserve(self) -> None:
        while len(self._reserve) < self._reserve_target:
            try:
                self._reserve.append(os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC))
            except OSError:
                return

    def _shutdown(self) -> None:
        for c in list(self._conns.values()):
            if not c.busy:
                self._close(c)
        self._sel.close()
        self.sock.close()
        for fd in (self._wake_r, self._wake_w, *self._reserve):
            os.close(fd)
        self._reserve = []

    # ---- the handler pool ------------------------------------------------------------

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            conn, method, target, close, preset = job
            try:
                status, body, ctype = (*preset, TEXT) if preset else self.handle(method, target)
            except Exception:  # noqa: BLE001 - a handler's bug must not cost a pool thread
                log.exception("admin API handler failed for %s %s", method, target)
                status, body, ctype, close = 500, "internal error\n", TEXT, True
            keep = not close
            try:
                conn.sock.settimeout(self.write_timeout)
                conn.sock.sendall(response_bytes(method, status, body, ctype, close))
                conn.sock.setblocking(False)
            except OSError:
                keep = False
            if self._closing:
                conn.sock.close()
                continue
            self._done.append((conn, keep))
            self._wake()
