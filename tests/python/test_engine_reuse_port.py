"""A listener's port belongs to one engine: its workers share it, nobody else
can bind it, unless the listener sets Envoy's enable_reuse_port (then one
SO_REUSEPORT socket per worker, which other engines and processes of the same
user may join). Real sockets, a real second process."""
from __future__ import annotations

import socket
import subprocess
import sys
import textwrap

import pytest
from support import config as cfg
from support.net import connect, echo_exchange

import meshcore


def _listener(port: int = 0, reuse_port: bool | None = None) -> dict:
    doc = cfg.simple([], listener="ingress", port=port)
    if reuse_port is not None:
        doc["static_resources"]["listeners"][0]["enable_reuse_port"] = reuse_port
    return doc


def _config(upstream_port: int, port: int = 0, reuse_port: bool | None = None) -> dict:
    doc = _listener(port, reuse_port)
    doc["static_resources"]["clusters"] = [cfg.static_cluster("backend", [upstream_port])]
    return doc


def _bind_in_another_process(port: int, reuse_port: bool) -> str:
    """Tries to listen on 127.0.0.1:port from a child process; its verdict."""
    program = textwrap.dedent(f"""
        import socket
        s = socket.socket()
        if {reuse_port}:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            s.bind(("127.0.0.1", {port}))
            s.listen()
            print("bound")
        except OSError as e:
            print("refused:", e.strerror)
    """)
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_a_second_engine_cannot_take_the_port_and_the_first_keeps_it(engine_factory, echo):
    first = engine_factory(config=_config(echo.port))
    port = first.listener_port("ingress")
    second = engine_factory()
    with pytest.raises(meshcore.EngineError, match=f"cannot listen on 127.0.0.1:{port}: Address already in use"):
        second.apply(_config(echo.port, port))
    for i in range(20):  # every connection reaches the first engine
        with connect(port) as s:
            assert echo_exchange(s, b"%d" % i) == b"%d" % i
    assert first.stats()[f"listener.127.0.0.1_{port}.downstream_cx_total"] == 20


@pytest.mark.parametrize("reuse_port", [True, False])
def test_another_process_cannot_bind_the_engines_port(engine_factory, echo, reuse_port):
    engine = engine_factory(concurrency=2, config=_config(echo.port))
    port = engine.listener_port("ingress")
    assert _bind_in_another_process(port, reuse_port) == "refused: Address already in use"


def test_the_engine_cannot_join_a_port_another_socket_shares():
    """A socket with SO_REUSEPORT already on the port: the engine's bind fails
    rather than taking part of that socket's connections."""
    other = socket.socket()
    other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    other.bind(("127.0.0.1", 0))
    other.listen()
    with other, meshcore.Engine(concurrency=2) as engine:
        port = other.getsockname()[1]
        with pytest.raises(meshcore.EngineError, match="Address already in use"):
            engine.apply(_config(1, port))


def test_one_engines_workers_all_accept_on_the_shared_socket(engine_factory, echo):
    """One socket, a descriptor per worker: the engine serves every connection
    whichever worker wins the accept (connections open at once, so a worker
    busy with one does not serialize the others)."""
    engine = engine_factory(concurrency=4, config=_config(echo.port))
    port = engine.listener_port("ingress")
    conns = [connect(port) for _ in range(32)]
    try:
        for i, s in enumerate(conns):
            assert echo_exchange(s, b"%d" % i) == b"%d" % i
    finally:
        for s in conns:
            s.close()
    assert echo.accepted == 32


def test_enable_reuse_port_lets_engines_share_the_port(engine_factory, echo):
    first = engine_factory(config=_config(echo.port, reuse_port=True))
    port = first.listener_port("ingress")
    second = engine_factory(config=_config(echo.port, port, reuse_port=True))
    assert second.listener_port("ingress") == port
    for i in range(64):
        with connect(port) as s:
            assert echo_exchange(s, b"%d" % i) == b"%d" % i
    name = f"listener.127.0.0.1_{port}.downstream_cx_total"
    counts = first.stats()[name], second.stats()[name]
    assert sum(counts) == 64
    assert min(counts) > 0, counts  # the kernel spread them: 4 sockets, 64 source ports
    assert _bind_in_another_process(port, reuse_port=True) == "bound"  # what the option opens the port to
