"""Continuous checked echo traffic from client threads, for config-change tests.

Each client thread keeps one long-lived connection for the whole run (it
must survive every config change, finishing on the snapshot it started on)
and, in a loop, opens a fresh short connection, does a few request/echo
round trips on it with random payloads, compares sha256 of what was sent and
what came back, and closes it. Every error is recorded, never swallowed.
"""
from __future__ import annotations

import hashlib
import random
import socket
import threading

from .net import connect, echo_exchange, wait_until


class EchoLoad:
    def __init__(self, port: int, clients: int = 4, exchanges_per_connection: int = 3,
                 max_payload: int = 48 * 1024, seed: int = 1):
        self.port = port
        self.clients = clients
        self.exchanges_per_connection = exchanges_per_connection
        self.max_payload = max_payload
        self.seed = seed
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.connections = 0  # short connections completed, every byte checked
        self.exchanges = 0  # round trips checked (short and long-lived connections)
        self.long_lived_exchanges = 0
        self.per_client = [0] * clients  # short connections completed, per client thread
        self.failures: list[str] = []
        self._threads = [threading.Thread(target=self._run, args=(i,), name=f"echo-load-{i}", daemon=True)
                         for i in range(clients)]

    def start(self) -> EchoLoad:
        for t in self._threads:
            t.start()
        wait_until(lambda: self.connections >= self.clients or self.failures, 30,
                   what="the load to get going")
        return self

    def _check(self, sock: socket.socket, rng: random.Random) -> None:
        payload = rng.randbytes(rng.randint(1, self.max_payload))
        got = echo_exchange(sock, payload)
        if hashlib.sha256(got).digest() != hashlib.sha256(payload).digest():
            raise AssertionError(f"echo mismatch: sent {len(payload)} bytes, got {len(got)} different bytes")

    def _run(self, i: int) -> None:
        rng = random.Random(self.seed * 1000 + i)
        long_lived = None
        try:
            long_lived = connect(self.port, timeout=30)
            while not self._stop.is_set():
                with connect(self.port, timeout=30) as s:
                    for _ in range(self.exchanges_per_connection):
                        self._check(s, rng)
                    s.shutdown(socket.SHUT_WR)
                    if s.recv(1) != b"":
                        raise AssertionError("data after the echo")
                self._check(long_lived, rng)
                with self._lock:
                    self.connections += 1
                    self.exchanges += self.exchanges_per_connection + 1
                    self.long_lived_exchanges += 1
                    self.per_client[i] += 1
        except BaseException as e:  # noqa: BLE001 - reported by stop()
            with self._lock:
                self.failures.append(f"client {i}: {type(e).__name__}: {e}")
        finally:
            if long_lived is not None:
                long_lived.close()

    def progress(self, connections: int = 20, timeout: float = 60.0) -> None:
        """Waits until `connections` more short connections have completed."""
        target = self.connections + connections
        wait_until(lambda: self.connections >= target or self.failures, timeout,
                   what=f"{connections} more checked connections")

    def settle(self, timeout: float = 60.0) -> None:
        """Waits until every client has completed a connection it started
        after this call, so none is still using a connection begun before."""
        with self._lock:
            targets = [n + 2 for n in self.per_client]
        wait_until(lambda: all(n >= m for n, m in zip(self.per_client, targets, strict=True)) or self.failures,
                   timeout, what="every client to complete a new connection")

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=60)
            assert not t.is_alive(), f"{t.name} hung"
