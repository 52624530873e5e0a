"""Bytes through the L4 hop: payloads of every size come back intact, in each
splice mode, and a half-close in either direction is carried through.

Client, proxy (in-process meshcore.Engine, 2 workers) and upstream are all
real sockets on loopback. The upstream of the payload tests is an echo
server; the client sends on a thread while it reads and hashes the reply.
"""
import hashlib
import os
import socket

import pytest
from support import config as cfg
from support.net import connect, echo_roundtrip, wait_until
from support.servers import recv_all

KIB, MIB = 1 << 10, 1 << 20
SIZES = [1 * KIB, 64 * KIB, 1 * MIB, 10 * MIB, 100 * MIB]
MODES = ["auto", "always", "never"]


@pytest.fixture(scope="module")
def payload():
    """100 MiB of random bytes; smaller payloads are prefixes of it."""
    return os.urandom(max(SIZES))


@pytest.fixture(scope="module")
def digests(payload):
    return {n: hashlib.sha256(memoryview(payload)[:n]).hexdigest() for n in SIZES}


@pytest.mark.parametrize("size", SIZES, ids=lambda n: f"{n // MIB}MiB" if n >= MIB else f"{n // KIB}KiB")
@pytest.mark.parametrize("splice", MODES)
def test_payload_round_trip_is_intact(engine_factory, echo, payload, digests, splice, size):
    engine = engine_factory(splice=splice, config=cfg.simple([echo.port]))
    port = engine.listener_port("ingress")

    received, digest = echo_roundtrip(port, memoryview(payload)[:size])

    assert received == size
    assert digest == digests[size]
    assert echo.accepted == 1
    # The byte counters are bumped right after the writes the client saw:
    # wait for them rather than racing the worker.
    wait_until(lambda: engine.stats()["tcp.ingress_tcp.downstream_cx_tx_bytes_total"] == size,
               what="downstream tx bytes to reach the payload size")
    st = engine.stats()
    assert st["tcp.ingress_tcp.downstream_cx_rx_bytes_total"] == size
    assert st["cluster.backend.upstream_cx_tx_bytes_total"] == size
    assert st["cluster.backend.upstream_cx_rx_bytes_total"] == size
    spliced = st["tcp.ingress_tcp.spliced_bytes_total"]
    if splice == "never":
        assert spliced == 0
    elif splice == "always":
        assert spliced == 2 * size  # both directions, from the first byte
    elif size >= MIB:
        assert spliced > 0  # auto: a bulk transfer switches to splice(2)


@pytest.mark.parametrize("splice", MODES)
def test_client_half_close_then_upstream_replies(engine_factory, scripted_factory, payload, splice):
    """The client sends a request and shuts down its write side; the upstream
    reads to EOF and only then answers; the whole answer reaches the client."""
    request = bytes(payload[:300 * KIB])
    reply = hashlib.sha256(request).digest() + bytes(payload[-(700 * KIB):])

    def upstream(conn):
        got = recv_all(conn)  # returns only once the client's FIN came through
        conn.sendall(hashlib.sha256(got).digest() + bytes(payload[-(700 * KIB):]))
        return len(got)

    server = scripted_factory(upstream)
    engine = engine_factory(splice=splice, config=cfg.simple([server.port]))
    with connect(engine.listener_port("ingress"), timeout=30) as s:
        s.sendall(request)
        s.shutdown(socket.SHUT_WR)
        answer = recv_all(s)
    assert answer == reply
    wait_until(lambda: server.results, what="the upstream handler to finish")
    assert server.results == [len(request)]
    wait_until(lambda: engine.stats()["tcp.ingress_tcp.upstream_flush_total"] == 1,
               what="the downstream FIN to be counted as an upstream flush")


@pytest.mark.parametrize("splice", MODES)
def test_upstream_half_close_then_client_still_sends(engine_factory, scripted_factory, payload, splice):
    """The upstream sends a banner and shuts down its write side; the client
    reads the banner to EOF and then still sends data the upstream receives."""
    banner = b"220 ready\r\n" + bytes(payload[:100 * KIB])
    later = bytes(payload[-(500 * KIB):])

    def upstream(conn):
        conn.sendall(banner)
        conn.shutdown(socket.SHUT_WR)
        return recv_all(conn)

    server = scripted_factory(upstream)
    engine = engine_factory(splice=splice, config=cfg.simple([server.port]))
    with connect(engine.listener_port("ingress"), timeout=30) as s:
        assert recv_all(s) == banner  # EOF: the upstream's FIN came through
        s.sendall(later)
        s.shutdown(socket.SHUT_WR)
        assert s.recv(1) == b""
    wait_until(lambda: server.results, what="the upstream handler to finish")
    assert server.results == [later]
    wait_until(lambda: engine.active_connections == 0, what="the session to end")
