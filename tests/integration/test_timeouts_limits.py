"""tcp_proxy idle_timeout and the connection_limit filter, observed from the client."""
import time

from support import config as cfg
from support.net import connect, echo_exchange, wait_until


def closed_by_peer(sock, timeout: float = 30.0) -> bool:
    """Blocks until the proxy closes the connection (EOF or reset); True if it did."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_idle_connection_is_closed_and_active_one_is_not(engine_factory, echo):
    doc = cfg.simple([echo.port], idle_timeout="0.5s")
    engine = engine_factory(config=doc)
    port = engine.listener_port("ingress")

    idle = connect(port)
    active = connect(port)
    try:
        assert echo_exchange(idle, b"hello, then silence") == b"hello, then silence"
        # The active connection exchanges data every 0.2s for 2s (4x the idle timeout).
        deadline = time.monotonic() + 2.0
        i = 0
        while time.monotonic() < deadline:
            msg = b"tick %d" % i
            assert echo_exchange(active, msg) == msg, "active connection broken"
            i += 1
            time.sleep(0.2)
        assert echo_exchange(active, b"still here") == b"still here"
        assert closed_by_peer(idle)
        # The upstream side of the idle session was closed too; the active one's stays.
        wait_until(lambda: echo.active == 1, what="the idle session's upstream connection to close")
    finally:
        idle.close()
        active.close()
    wait_until(lambda: engine.active_connections == 0, what="both sessions to end")
    st = engine.stats()
    assert st["tcp.ingress_tcp.idle_timeout"] == 1  # the idle one, not the active one


def test_connection_limit_closes_the_sixth_connection(engine_factory, echo):
    doc = cfg.simple([echo.port], connection_limit=5)
    engine = engine_factory(config=doc)
    port = engine.listener_port("ingress")

    conns = [connect(port) for _ in range(5)]
    try:
        for i, c in enumerate(conns):
            assert echo_exchange(c, b"conn %d" % i) == b"conn %d" % i
        sixth = connect(port)
        with sixth:
            assert closed_by_peer(sixth)
        st = engine.stats()
        assert st["connection_limit.ingress_limit.limited_connections"] == 1
        assert st["connection_limit.ingress_limit.active_connections"] == 5
        assert echo.accepted == 5  # the sixth never reached the upstream
        # The five admitted ones are unaffected.
        for i, c in enumerate(conns):
            assert echo_exchange(c, b"again %d" % i) == b"again %d" % i

        conns.pop().close()
        wait_until(lambda: engine.stats()["connection_limit.ingress_limit.active_connections"] == 4,
                   what="the closed connection to leave the limit")
        with connect(port) as again:
            assert echo_exchange(again, b"admitted") == b"admitted"
        assert engine.stats()["connection_limit.ingress_limit.limited_connections"] == 1
    finally:
        for c in conns:
            c.close()
