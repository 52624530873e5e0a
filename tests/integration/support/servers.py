"""Real upstream servers for the integration tests, run on threads of the test process.

EchoServer: one thread, a selector loop; echoes every byte, keeps half-close
(a client's FIN is passed on as our FIN once everything is echoed) and counts
per connection. It is the upstream for bulk transfers and for the tests that
open thousands of connections (no thread per connection).

ScriptedServer: a thread per connection running a blocking handler, for
tests that need an upstream to behave in one particular order (read to EOF
then reply, send a banner then half-close...). A handler's exception is kept
and re-raised by stop(), so a broken upstream fails the test.

HttpUpstream: http.server.ThreadingHTTPServer answering GET with a fixed body.

Every server binds 127.0.0.1 port 0 and stop() joins every thread it started.
"""
from __future__ import annotations

import http.server
import selectors
import socket
import threading

MAX_PENDING = 4 << 20  # echo: stop reading a connection while this much is unsent


class _EchoConn:
    __slots__ = ("sock", "out", "eof", "shut", "received", "peer")

    def __init__(self, sock, peer):
        self.sock = sock
        self.out = bytearray()
        self.eof = False  # the peer sent FIN
        self.shut = False  # we sent FIN
        self.received = 0
        self.peer = peer


class EchoServer:
    """Echoes bytes back; counts accepted connections and bytes.

    accepted: connections accepted so far; active: open right now;
    received: bytes received over all connections; closed_received: a list
    with the byte count of each connection that has finished.
    """

    def __init__(self, name: str = "echo"):
        self.name = name
        self._lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._lsock.bind(("127.0.0.1", 0))
        self._lsock.listen(1024)
        self._lsock.setblocking(False)
        self.port = self._lsock.getsockname()[1]
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._sel.register(self._lsock, selectors.EVENT_READ, None)
        self._sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._lock = threading.Lock()
        self._conns: dict[int, _EchoConn] = {}
        self.accepted = 0
        self.received = 0
        self.closed_received: list[int] = []
        self.error: BaseException | None = None
        self._stopping = False
        self._buf = bytearray(1 << 20)
        self._thread = threading.Thread(target=self._run, name=f"echo-{name}-{self.port}", daemon=True)
        self._thread.start()

    @property
    def active(self) -> int:
        with self._lock:
            return len(self._conns)

    # -- the loop ----------------------------------------------------------

    def _run(self):
        try:
            while not self._stopping:
                for key, mask in self._sel.select(timeout=1.0):
                    if key.data == "wake":
                        self._wake_r.recv(64)
                    elif key.data is None:
                        self._accept()
                    else:
                        self._service(key.data, mask)
        except BaseException as e:  # noqa: BLE001 - surfaced by stop()
            self.error = e
        finally:
            for c in list(self._conns.values()):
                c.sock.close()
            self._conns.clear()

    def _accept(self):
        for _ in range(64):
            try:
                sock, peer = self._lsock.accept()
            except BlockingIOError:
                return
            sock.setblocking(False)
            c = _EchoConn(sock, peer)
            with self._lock:
                self._conns[sock.fileno()] = c
                self.accepted += 1
            self._sel.register(sock, selectors.EVENT_READ, c)

    def _events(self, c):
        ev = 0
        if not c.eof and len(c.out) < MAX_PENDING:
            ev |= selectors.EVENT_READ
        if c.out:
            ev |= selectors.EVENT_WRITE
        return ev

    def _close(self, c):
        self._sel.unregister(c.sock)
        with self._lock:
            self._conns.pop(c.sock.fileno(), None)
            self.closed_received.append(c.received)
        c.sock.close()

    def _service(self, c, mask):
        try:
            if mask & selectors.EVENT_READ and not c.eof:
                n = c.sock.recv_into(self._buf)
                if n == 0:
                    c.eof = True
                else:
                    c.received += n
                    with self._lock:
                        self.received += n
                    c.out += self._buf[:n]
            if c.out:
                try:
                    sent = c.sock.send(c.out)
                    del c.out[:sent]
                except BlockingIOError:
                    pass
        except (ConnectionResetError, BrokenPipeError):
            self._close(c)
            return
        except BlockingIOError:
            pass
        if c.eof and not c.out:
            if not c.shut:
                try:
                    c.sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                c.shut = True
            self._close(c)
            return
        ev = self._events(c)
        if ev == 0:  # nothing to do until the peer reads: wait for writable
            ev = selectors.EVENT_WRITE
        self._sel.modify(c.sock, ev, c)

    # -- control ---------------------------------------------------------------

    def stop(self):
        self._stopping = True
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        self._thread.join(timeout=10)
        assert not self._thread.is_alive(), f"echo server {self.name} did not stop"
        self._sel.close()
        self._lsock.close()
        self._wake_r.close()
        self._wake_w.close()
        if self.error:
            raise self.error


class ScriptedServer:
    """Runs handler(conn) on a thread per accepted connection.

    accepted: connection count; results: what each handler returned, in
    completion order. stop() closes everything, joins, and re-raises the
    first handler exception.
    """

    def __init__(self, handler, name: str = "scripted", backlog: int = 128):
        self.handler = handler
        self.name = name
        self._lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._lsock.bind(("127.0.0.1", 0))
        self._lsock.listen(backlog)
        self._lsock.settimeout(0.1)
        self.port = self._lsock.getsockname()[1]
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []
        self.accepted = 0
        self.results: list = []
        self.errors: list[BaseException] = []
        self._stopping = threading.Event()
        self._accepter = threading.Thread(target=self._accept_loop, name=f"{name}-{self.port}", daemon=True)
        self._accepter.start()

    def _accept_loop(self):
        while not self._stopping.is_set():
            try:
                conn, _ = self._lsock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(30)
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            with self._lock:
                self.accepted += 1
                self._conns.append(conn)
                self._threads.append(t)
            t.start()

    def _serve(self, conn):
        try:
            result = self.handler(conn)
            with self._lock:
                self.results.append(result)
        except BaseException as e:  # noqa: BLE001 - re-raised by stop()
            if not self._stopping.is_set():
                with self._lock:
                    self.errors.append(e)
        finally:
            conn.close()

    def stop(self):
        self._stopping.set()
        self._accepter.join(timeout=10)
        self._lsock.close()
        with self._lock:
            conns, threads = list(self._conns), list(self._threads)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in threads:
            t.join(timeout=10)
            assert not t.is_alive(), f"{self.name}: a handler thread did not stop"
        if self.errors:
            raise self.errors[0]


def recv_all(conn: socket.socket, bufsize: int = 65536) -> bytes:
    """Reads until EOF."""
    chunks = []
    while True:
        data = conn.recv(bufsize)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def recv_exactly(conn: socket.socket, n: int) -> bytes:
    """Reads exactly n bytes (fewer only if EOF comes first)."""
    buf = bytearray()
    while len(buf) < n:
        data = conn.recv(n - len(buf))
        if not data:
            break
        buf += data
    return bytes(buf)


class HttpUpstream:
    """A real HTTP/1.1 server: GET any path -> 200 with `body`; counts requests."""

    def __init__(self, body: bytes):
        self.body = body
        self.requests = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                outer.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = False  # server_close() joins the request threads
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"http-upstream-{self.port}", daemon=True)
        self._thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=10)


class Blackhole:
    """A port whose SYNs go unanswered: a listener with a one-slot accept
    queue (listen(0)) that never accepts, the slot filled by a connection we
    hold. Linux drops SYNs to a listener whose accept queue is full
    (net.ipv4.tcp_abort_on_overflow=0, the default), so a connect() to it
    stays in SYN_SENT: a connect timeout on loopback."""

    def __init__(self):
        self._lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._lsock.bind(("127.0.0.1", 0))
        self._lsock.listen(0)
        self.port = self._lsock.getsockname()[1]
        self._filler = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        # A probe proves the queue is full now: its connect must not complete.
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        probe.settimeout(0.5)
        try:
            probe.connect(("127.0.0.1", self.port))
            self.usable = False
        except TimeoutError:
            self.usable = True
        finally:
            probe.close()

    def close(self):
        self._filler.close()
        self._lsock.close()
