"""HTTP/2 PING keepalive (Http2ProtocolOptions.connection_keepalive), both
sides, against real peers built on the `h2` package: an upstream that answers
PINGs keeps its session, one that goes deaf is closed and replaced; a client
that ACKs keeps its connection, one that never reads is closed. Short
intervals, generous deadlines, and no assertion on how long anything took."""
from __future__ import annotations

import socket
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions
from support import http as h
from support.conn_server import ConnServer

KEEPALIVE = {"interval": "0.2s", "timeout": "0.3s"}
OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"


def engine_for(engine_factory, port, keepalive):
    """A listener routing to one h2c cluster with these keepalive settings."""
    opts = {"@type": "type.googleapis.com/" + OPTIONS,
            "explicit_http_config": {"http2_protocol_options": {"connection_keepalive": keepalive}}}
    cluster = h.http_cluster("backend", [port], typed_extension_protocol_options={OPTIONS: opts})
    engine = engine_factory(config=h.bootstrap([h.hcm_listener("http", routes=[h.route("/", "backend")])], [cluster]),
                            concurrency=1)
    return engine, engine.listener_port("http")


class PingPeer(ConnServer):
    """An h2c upstream answering every request 200 "ok" and counting the
    PINGs each connection gets (`pings[n]`, connections numbered from 1 in
    accept order; the h2 package ACKs them). Connections listed in `deaf`
    stop reading and writing after their first response, so their PINGs are
    never answered."""

    def __init__(self, deaf=()):
        self.deaf = set(deaf)
        self.pings: dict[int, int] = {}
        super().__init__()

    def serve(self, conn, n):
        with self.lock:
            self.pings.setdefault(n, 0)
        c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        c.initiate_connection()
        try:
            conn.sendall(c.data_to_send())
            while data := conn.recv(65536):
                answered = False
                for ev in c.receive_data(data):
                    if isinstance(ev, h2.events.PingReceived):
                        with self.lock:
                            self.pings[n] += 1
                    elif isinstance(ev, h2.events.StreamEnded):
                        c.send_headers(ev.stream_id, [(":status", "200"), ("content-length", "2")])
                        c.send_data(ev.stream_id, b"ok", end_stream=True)
                        answered = True
                conn.sendall(c.data_to_send())
                if answered and n in self.deaf:
                    self.stopping.wait()  # alive, but neither reads nor answers
                    return
        except (OSError, h2.exceptions.ProtocolError):
            return
        finally:
            conn.close()


def peer(request, **kw):
    p = PingPeer(**kw)
    request.addfinalizer(p.stop)
    return p


def test_an_upstream_that_answers_pings_keeps_its_session(engine_factory, request):
    up = peer(request)
    engine, port = engine_for(engine_factory, up.port, KEEPALIVE)
    assert h.request(port).status == 200
    h.wait_until(lambda: up.pings.get(1, 0) >= 3, 30, what="three PINGs on the first connection")
    assert h.request(port).status == 200
    assert up.accepted == 1
    assert h.stat(engine, "cluster.backend.upstream_cx_total") == 1
    assert h.stat(engine, "cluster.backend.http2.keepalive_timeout") == 0


def test_an_upstream_that_stops_answering_is_closed_and_replaced(engine_factory, request):
    up = peer(request, deaf={1})
    engine, port = engine_for(engine_factory, up.port, KEEPALIVE)
    assert h.request(port).status == 200
    assert h.wait_stat(engine, "cluster.backend.http2.keepalive_timeout", 1, timeout=30) == 1
    h.wait_until(lambda: h.stat(engine, "cluster.backend.upstream_cx_active") == 0, 30, what="the session closed")
    assert h.request(port).status == 200
    assert up.accepted == 2
    assert h.stat(engine, "cluster.backend.upstream_cx_total") == 2
    assert h.stat(engine, "cluster.backend.http2.keepalive_timeout") == 1


def test_connection_idle_interval_pings_before_reusing_an_idle_session(engine_factory, request):
    up = peer(request)
    ka = {"timeout": "1s", "connection_idle_interval": "0.05s"}  # no interval: only this PING
    engine, port = engine_for(engine_factory, up.port, ka)
    assert h.request(port).status == 200
    assert up.pings[1] == 0
    time.sleep(0.3)  # idle past connection_idle_interval (an input, not an assertion)
    assert h.request(port).status == 200
    h.wait_until(lambda: up.pings[1] >= 1, 30, what="a PING ahead of the second stream")
    assert up.accepted == 1


# ---- downstream ------------------------------------------------------------------------------------------


def h2_client(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    s.sendall(conn.data_to_send())
    return s, conn


def test_a_client_gets_pings_and_keeps_its_connection(engine_factory, backend_factory):
    backend = backend_factory("echo")
    engine = engine_factory(config=h.simple([backend.port], codec_type="AUTO",
                                            http2_protocol_options={"connection_keepalive": KEEPALIVE}))
    s, conn = h2_client(engine.listener_port("http"))
    with s:
        pings = 0
        while pings < 3:  # each ACKed by the h2 package
            data = s.recv(65536)
            assert data, "connection closed"
            pings += sum(isinstance(ev, h2.events.PingReceived) for ev in conn.receive_data(data))
            s.sendall(conn.data_to_send())
        conn.send_headers(1, [(":method", "GET"), (":path", "/"), (":scheme", "http"), (":authority", "svc")],
                          end_stream=True)
        s.sendall(conn.data_to_send())
        status = None
        while status is None:
            data = s.recv(65536)
            assert data, "connection closed"
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.ResponseReceived):
                    status = dict(ev.headers)[b":status"]
            s.sendall(conn.data_to_send())
        assert status == b"200"
    assert h.stat(engine, "http.http.http2.keepalive_timeout") == 0


def test_a_client_that_never_acks_is_closed(engine_factory, backend_factory):
    backend = backend_factory("echo")
    engine = engine_factory(config=h.simple([backend.port], codec_type="AUTO",
                                            http2_protocol_options={"connection_keepalive": KEEPALIVE}))
    s, conn = h2_client(engine.listener_port("http"))
    with s:
        assert h.wait_stat(engine, "http.http.http2.keepalive_timeout", 1, timeout=30) == 1
        got = b""
        while data := s.recv(65536):  # what was sent before the close, then EOF
            got += data
        pinged = [ev for ev in conn.receive_data(got) if isinstance(ev, h2.events.PingReceived)]
        assert len(pinged) == 1  # no second PING while the first is unanswered
    assert h.stat(engine, "http.http.http2.keepalive_timeout") == 1


def test_answered_pings_do_not_hold_an_idle_connection_open(engine_factory, backend_factory):
    backend = backend_factory("echo")
    engine = engine_factory(config=h.simple([backend.port], codec_type="AUTO",
                                            common_http_protocol_options={"idle_timeout": "1s"},
                                            http2_protocol_options={"connection_keepalive": KEEPALIVE}))
    s, conn = h2_client(engine.listener_port("http"))
    with s:
        goaway = False
        while data := s.recv(65536):  # ACK every PING until the idle timeout's GOAWAY and close
            goaway |= any(isinstance(ev, h2.events.ConnectionTerminated) for ev in conn.receive_data(data))
            try:
                s.sendall(conn.data_to_send())
            except OSError:
                break
        assert goaway
    assert h.stat(engine, "http.http.downstream_cx_idle_timeout") == 1
    assert h.stat(engine, "http.http.http2.keepalive_timeout") == 0
