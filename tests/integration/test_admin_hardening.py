"""The admin API of a real `meshcore proxy` under fd exhaustion and idle floods.

The proxy's descriptor limit is lowered with prlimit(1) once it runs; idle
client connections to a data-plane listener then use every descriptor it
has. The admin API keeps descriptors in reserve, so /ready and /quitquitquit
still answer, and its accept loop survives EMFILE for when the load is gone.
"""
import os
import shutil
import socket
import subprocess

import pytest
from support import config as cfg
from support.net import wait_until

FD_LIMIT = 256
pytestmark = pytest.mark.skipif(shutil.which("prlimit") is None, reason="prlimit (util-linux) not installed")


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


class Blackhole:
    """An upstream that completes TCP handshakes (backlog) and never reads;
    reset() closes it (the kernel resets what waits in its backlog) and listens again."""

    def __init__(self):
        self.port = 0
        self._listen()

    def _listen(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(4096)
        self.port = self.sock.getsockname()[1]

    def reset(self):
        self.sock.close()
        self._listen()


@pytest.fixture
def blackhole():
    b = Blackhole()
    yield b
    b.sock.close()


@pytest.fixture
def starved_proxy(proxy_factory, blackhole):
    # idle_timeout: whatever the blackhole's reset does not reach (a connection still in
    # its SYN queue, say) is closed by the proxy itself once the load is gone
    doc = cfg.bootstrap([cfg.tcp_proxy_listener("ingress", "sink", idle_timeout="10s")],
                        [cfg.static_cluster("sink", [blackhole.port])])
    proxy = proxy_factory(doc)
    proxy.port = proxy.listener_port("ingress")
    proxy.blackhole = blackhole
    subprocess.run(["prlimit", f"--pid={proxy.pid}", f"--nofile={FD_LIMIT}:{FD_LIMIT}"], check=True)
    return proxy


def _flood(port: int, n: int) -> list[socket.socket]:
    """n idle connections to port (some may be closed by the proxy at once)."""
    out = []
    for _ in range(n):
        s = socket.socket()
        s.settimeout(10)
        s.connect(("127.0.0.1", port))
        out.append(s)
    return out


def _closed(s: socket.socket) -> bool:
    s.setblocking(False)
    try:
        return s.recv(4096) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True  # reset


def test_ready_answers_when_the_data_plane_has_every_fd(starved_proxy):
    proxy = starved_proxy
    clients = _flood(proxy.port, 2 * FD_LIMIT)
    try:
        wait_until(lambda: _fds(proxy.pid) >= FD_LIMIT - 1, 30, what="the proxy to run out of descriptors")
        assert proxy.get("/ready") == (200, "LIVE\n")
        assert proxy.get("/ready") == (200, "LIVE\n")  # again, on a new connection
    finally:
        for s in clients:
            s.close()
        proxy.blackhole.reset()
    wait_until(lambda: _fds(proxy.pid) < FD_LIMIT // 2, 30, what="the load's descriptors to be released")
    assert proxy.get("/ready") == (200, "LIVE\n")
    # The data plane accepts again, and the admin API still answers with it saturated a second time.
    clients = _flood(proxy.port, 2 * FD_LIMIT)
    try:
        wait_until(lambda: _fds(proxy.pid) >= FD_LIMIT - 1, 30, what="the proxy to run out of descriptors again")
        assert proxy.get("/ready") == (200, "LIVE\n")
        assert proxy.post("/quitquitquit") == (200, "OK\n")
        assert proxy.wait(30) == 0
    finally:
        for s in clients:
            s.close()


def test_idle_admin_connections_cost_no_thread_and_are_closed(proxy_factory, blackhole):
    # idle_timeout: whatever the blackhole's reset does not reach (a connection still in
    # its SYN queue, say) is closed by the proxy itself once the load is gone
    doc = cfg.bootstrap([cfg.tcp_proxy_listener("ingress", "sink", idle_timeout="10s")],
                        [cfg.static_cluster("sink", [blackhole.port])])
    proxy = proxy_factory(doc)
    before = _threads(proxy.pid)
    idle = _flood(proxy.admin_port, 500)
    slow = socket.create_connection(("127.0.0.1", proxy.admin_port))
    slow.sendall(b"GET /ready HTTP/1.1\r\nHost: x\r\n")  # a head that never ends
    try:
        assert proxy.get("/ready") == (200, "LIVE\n")
        assert _threads(proxy.pid) <= before + 2
        wait_until(lambda: all(_closed(s) for s in idle), 60, what="every idle admin connection to be closed")
        wait_until(lambda: _closed(slow), 60, what="the unfinished request head to be closed")
        assert proxy.get("/ready") == (200, "LIVE\n")
        assert _threads(proxy.pid) <= before + 2
    finally:
        for s in idle:
            s.close()
        slow.close()
