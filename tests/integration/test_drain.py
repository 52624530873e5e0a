"""Graceful stop of `meshcore proxy` (SIGTERM, POST /quitquitquit) and
POST /drain_listeners: listeners stop accepting, open connections finish."""
import signal
import socket
import threading

import pytest
from support import config as cfg
from support.net import connect, echo_exchange, is_refused, wait_until
from support.servers import recv_all, recv_exactly

REPLY = b"R" * (512 * 1024)


def request_reply_upstream(conn):
    """Reads a request up to b"END", then answers with REPLY, then waits for EOF."""
    buf = b""
    while not buf.endswith(b"END"):
        data = conn.recv(65536)
        if not data:
            return ("eof before END", buf)
        buf += data
    conn.sendall(REPLY)
    rest = recv_all(conn)
    return ("done", buf, rest)


@pytest.fixture
def drain_setup(proxy_factory, scripted_factory):
    def make(drain_timeout):
        upstream = scripted_factory(request_reply_upstream)
        proxy = proxy_factory(cfg.simple([upstream.port]), drain_timeout=drain_timeout)
        return proxy, upstream, proxy.listener_port("ingress")
    return make


def start_in_flight(proxy, port):
    """A connection with half a request sent and seen by the upstream."""
    s = connect(port, timeout=30)
    s.sendall(b"first half of the request, ")
    wait_until(lambda: proxy.stat("tcp.ingress_tcp.downstream_cx_rx_bytes_total") == 27,
               what="the first half to reach the upstream")
    return s


def test_sigterm_lets_in_flight_exchange_finish_then_exits_0(drain_setup):
    proxy, upstream, port = drain_setup(drain_timeout=60)
    s = start_in_flight(proxy, port)
    with s:
        proxy.send_signal(signal.SIGTERM)
        wait_until(lambda: "draining: listeners closed" in proxy.log(), what="the drain to start")
        # (New connections during the drain: test_sigterm_refuses_new_connections_while_draining.)
        # The exchange in flight completes on the draining proxy.
        s.sendall(b"second half END")
        assert recv_exactly(s, len(REPLY)) == REPLY
        assert proxy.running()  # held open by this connection (drain timeout is 60s)
        s.shutdown(socket.SHUT_WR)
        assert s.recv(1) == b""
    # The last connection closed: the process exits 0, well before the 60s drain timeout.
    assert proxy.wait(timeout=30) == 0
    wait_until(lambda: upstream.results, what="the upstream handler to finish")
    assert upstream.results == [("done", b"first half of the request, second half END", b"")]
    assert "stopped" in proxy.log()


def test_sigterm_drain_timeout_closes_idle_connection(drain_setup):
    proxy, upstream, port = drain_setup(drain_timeout=3)
    s = start_in_flight(proxy, port)
    with s:
        proxy.send_signal(signal.SIGTERM)
        wait_until(lambda: "draining: listeners closed" in proxy.log(), what="the drain to start")
        # The connection stays open and idle: at the drain timeout the proxy closes it.
        s.settimeout(60)
        try:
            assert s.recv(1) == b""
        except ConnectionResetError:
            pass
    assert proxy.wait(timeout=60) == 0


def test_quitquitquit_stops_gracefully(drain_setup):
    proxy, upstream, port = drain_setup(drain_timeout=60)
    s = start_in_flight(proxy, port)
    with s:
        assert proxy.post("/quitquitquit") == (200, "OK\n")
        wait_until(lambda: "draining: listeners closed" in proxy.log(), what="the drain to start")
        s.sendall(b"END")
        assert recv_exactly(s, len(REPLY)) == REPLY
    assert proxy.wait(timeout=30) == 0




def test_sigterm_refuses_new_connections_while_draining(drain_setup):
    proxy, upstream, port = drain_setup(drain_timeout=60)
    s = start_in_flight(proxy, port)
    with s:
        proxy.send_signal(signal.SIGTERM)
        wait_until(lambda: "draining: listeners closed" in proxy.log(), what="the drain to start")
        try:
            wait_until(lambda: is_refused(port), timeout=3, what="new connections to be refused")
        finally:
            s.sendall(b"END")
            assert recv_exactly(s, len(REPLY)) == REPLY
    assert proxy.wait(timeout=30) == 0


def test_engine_stop_refuses_new_connections_while_draining(engine_factory, echo):
    """The same through meshcore.Engine.stop(drain_timeout) in-process."""
    engine = engine_factory(config=cfg.simple([echo.port]))
    port = engine.listener_port("ingress")
    held = connect(port)
    stopper = threading.Thread(target=engine.stop, kwargs={"drain_timeout": 30}, name="engine-stop")
    try:
        assert echo_exchange(held, b"in flight") == b"in flight"
        stopper.start()
        wait_until(lambda: is_refused(port), timeout=3, what="new connections to be refused")
    finally:
        held.close()
        if stopper.is_alive() or stopper.ident:
            stopper.join(timeout=30)


def test_drain_listeners_refuses_new_keeps_existing(proxy_factory, echo):
    proxy = proxy_factory(cfg.simple([echo.port]))
    port = proxy.listener_port("ingress")
    held = connect(port)
    with held:
        assert echo_exchange(held, b"before drain") == b"before drain"
        assert proxy.post("/drain_listeners") == (200, "OK\n")
        assert is_refused(port)
        assert proxy.get("/ready") == (503, "DRAINING\n")
        assert '"state": "DRAINING"' in proxy.get("/server_info")[1]
        # The open connection carries on.
        for i in range(5):
            assert echo_exchange(held, b"after drain %d" % i) == b"after drain %d" % i
        # A reload while drained does not reopen listeners.
        assert proxy.post("/reload") == (200, "reloaded\n")
        assert is_refused(port)
        assert echo_exchange(held, b"after reload") == b"after reload"
    assert proxy.running()
    assert echo.accepted == 1


def test_stop_closes_idle_http_connections_at_once_and_in_flight_ones_after_their_response(
        engine_factory, backend_factory):
    """As Envoy drains HTTP: a keep-alive connection with no request in
    flight closes now (a peer sidecar's pooled connection must not hold the
    drain for its whole timeout); one with a request gets its response with
    connection: close, then closes."""
    from support import http as h

    gate = threading.Event()
    backend = backend_factory("app", lambda req: (gate.wait(10), h.Reply(200, [], b"done"))[1])
    engine = engine_factory(config=h.simple([backend.port]))
    port = engine.listener_port("http")
    idle = h.Conn(port)
    gate.set()
    assert idle.request("GET", "/warm").status == 200
    gate.clear()
    busy = h.Conn(port)
    busy.send(h.build_request("GET", "/slow"))
    backend.wait_requests(2)
    stopper = threading.Thread(target=engine.stop, kwargs={"drain_timeout": 20})
    stopper.start()
    try:
        assert wait_until(idle.at_eof, 5, what="the idle connection closed before the drain timeout")
        gate.set()
        resp = busy.response()
        assert (resp.status, resp.body, resp.header("connection")) == (200, b"done", "close")
        assert busy.at_eof()
    finally:
        gate.set()
        stopper.join(30)
        idle.close()
        busy.close()
    assert not stopper.is_alive()
