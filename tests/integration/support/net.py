"""Client-side helpers: ports, polling, and checked round trips through a proxy."""
from __future__ import annotations

import hashlib
import socket
import threading
import time

LOCALHOST = "127.0.0.1"


def free_port() -> int:
    """A port nothing listens on right now (bind to port 0, read it, close).

    Only for what cannot take port 0 itself; racy by nature, so used for
    'a port where nothing listens' rather than for something to bind later."""
    with socket.socket() as s:
        s.bind((LOCALHOST, 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.02, what: str = "condition"):
    """Polls predicate() until it returns a true value (returned); fails after timeout.

    The timeout only stops a hang: no test asserts how fast anything is."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def connect(port: int, timeout: float = 10.0) -> socket.socket:
    s = socket.create_connection((LOCALHOST, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def is_refused(port: int) -> bool:
    """True if a TCP connect to the port is refused.

    A reset during connect counts: the kernel resets connections still in the
    accept queue of a listening socket that is being closed."""
    try:
        with socket.create_connection((LOCALHOST, port), timeout=5):
            return False
    except (ConnectionRefusedError, ConnectionResetError):
        return True


class Transfer:
    """Sends a payload on a thread while the caller reads the reply.

    Reading and writing at once is what keeps a big echo from deadlocking
    (the echo can't write back once our receive buffer is full)."""

    def __init__(self, sock: socket.socket, payload, chunk: int = 1 << 20, half_close: bool = True):
        self.sock = sock
        self.payload = memoryview(payload)
        self.chunk = chunk
        self.half_close = half_close
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._send, name="transfer-send", daemon=True)

    def _send(self):
        try:
            for off in range(0, len(self.payload), self.chunk):
                self.sock.sendall(self.payload[off:off + self.chunk])
            if self.half_close:
                self.sock.shutdown(socket.SHUT_WR)
        except BaseException as e:  # noqa: BLE001 - re-raised by join()
            self.error = e

    def start(self) -> Transfer:
        self._thread.start()
        return self

    def join(self):
        self._thread.join(timeout=120)
        assert not self._thread.is_alive(), "sender thread hung"
        if self.error:
            raise self.error


def read_digest(sock: socket.socket, bufsize: int = 1 << 20) -> tuple[int, str]:
    """Reads to EOF; returns (byte count, sha256 hex)."""
    h = hashlib.sha256()
    buf = bytearray(bufsize)
    total = 0
    while True:
        n = sock.recv_into(buf)
        if n == 0:
            return total, h.hexdigest()
        h.update(memoryview(buf)[:n])
        total += n


def echo_roundtrip(port: int, payload, timeout: float = 60.0) -> tuple[int, str]:
    """Sends payload through the port (echo upstream), half-closes, reads to EOF.

    Returns (bytes received, sha256 of them)."""
    with connect(port, timeout=timeout) as s:
        t = Transfer(s, payload).start()
        try:
            got = read_digest(s)
        finally:
            t.join()
    return got


def echo_exchange(sock: socket.socket, payload: bytes) -> bytes:
    """One request/echo exchange on an open connection: send, read the same length back."""
    sock.sendall(payload)
    buf = bytearray()
    while len(buf) < len(payload):
        data = sock.recv(len(payload) - len(buf))
        if not data:
            raise ConnectionError(f"EOF after {len(buf)} of {len(payload)} echoed bytes")
        buf += data
    return bytes(buf)


def short_echo(port: int, payload: bytes = b"x", timeout: float = 10.0) -> bytes:
    """A short connection: connect, send, read the echo, close. Returns what came back."""
    with connect(port, timeout=timeout) as s:
        return echo_exchange(s, payload)
