"""HTTP/2 frames are written in batches: what one loop turn produces for a
session goes out in one send(2), not one per frame. Counted with the
kernel's own figure, TCP_INFO's tcpi_data_segs_in on the receiving socket
(on loopback with TCP_NODELAY, each send of a small batch is one segment):
20 responses answered in one turn arrive in a segment or two, where a send
per frame makes 40 (HEADERS and DATA of each)."""
from __future__ import annotations

import socket
import struct
import time

import h2.config
import h2.connection
import h2.events
import pytest
from support import http as h
from support.h2_server import H2Server

OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
STREAMS = 20
TCPI_DATA_SEGS_IN = 152  # offset of tcpi_data_segs_in in struct tcp_info (Linux >= 4.6)


def data_segs_in(sock: socket.socket) -> int:
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    if len(info) < TCPI_DATA_SEGS_IN + 4:
        pytest.skip("this kernel's tcp_info has no tcpi_data_segs_in")
    return struct.unpack_from("I", info, TCPI_DATA_SEGS_IN)[0]


class Client:
    """An h2c client on the `h2` package that sends many requests in one write."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.conn.initiate_connection()
        self.sock.sendall(self.conn.data_to_send())
        self.next_id = 1

    def burst(self, n: int) -> dict[int, bytes]:
        """n GETs in one send; returns {stream: body} once all have ended."""
        ids = []
        for _ in range(n):
            sid, self.next_id = self.next_id, self.next_id + 2
            self.conn.send_headers(sid, [(":method", "GET"), (":path", f"/s{sid}"), (":scheme", "http"),
                                         (":authority", "svc")], end_stream=True)
            ids.append(sid)
        self.sock.sendall(self.conn.data_to_send())
        bodies: dict[int, bytes] = {sid: b"" for sid in ids}
        ended: set[int] = set()
        while len(ended) < n:
            data = self.sock.recv(65536)
            assert data, "connection closed"
            for ev in self.conn.receive_data(data):
                if isinstance(ev, h2.events.DataReceived):
                    bodies[ev.stream_id] += ev.data
                    self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.StreamEnded):
                    ended.add(ev.stream_id)
            out = self.conn.data_to_send()
            if out:
                self.sock.sendall(out)
        return bodies

    def settle(self):
        """Reads what is still in flight (SETTINGS ACKs) so it is not counted."""
        self.sock.settimeout(0.3)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    break
                self.conn.receive_data(data)
                out = self.conn.data_to_send()
                if out:
                    self.sock.sendall(out)
        except TimeoutError:
            pass
        self.sock.settimeout(10)

    def close(self):
        self.sock.close()


def test_responses_of_one_turn_share_a_send(engine_factory):
    direct = {"status": 200, "body": {"inline_string": "ok\n"}}
    doc = h.bootstrap([h.hcm_listener("http", routes=[h.route("/", direct_response=direct)], codec_type="HTTP2")],
                      [])
    engine = engine_factory(config=doc)
    client = Client(engine.listener_port("http"))
    try:
        client.burst(1)
        client.settle()
        before = data_segs_in(client.sock)
        bodies = client.burst(STREAMS)
        segs = data_segs_in(client.sock) - before
    finally:
        client.close()
    assert all(b == b"ok\n" for b in bodies.values())
    # one send for the whole turn; a second if the burst was read in two parts
    assert segs <= 3, f"{STREAMS} responses came in {segs} segments: frames are not batched"


@pytest.fixture
def upstream():
    server = H2Server(lambda headers, body: ("reply", 200, [("content-type", "text/plain")], b"up\n", None))
    yield server
    server.stop()


def test_requests_of_one_turn_share_a_send_upstream(engine_factory, upstream):
    opts = {"@type": "type.googleapis.com/" + OPTIONS, "explicit_http_config": {"http2_protocol_options": {}}}
    cluster = h.http_cluster("up", [upstream.port], typed_extension_protocol_options={OPTIONS: opts})
    doc = h.bootstrap([h.hcm_listener("http", routes=[h.route("/", "up")], codec_type="HTTP2")], [cluster])
    engine = engine_factory(config=doc)
    client = Client(engine.listener_port("http"))
    try:
        client.burst(1)  # the upstream session is up
        client.settle()
        deadline = time.monotonic() + 5
        while not upstream.conns and time.monotonic() < deadline:
            time.sleep(0.01)
        (up_sock,) = upstream.conns
        time.sleep(0.2)  # the proxy's SETTINGS ACK and WINDOW_UPDATEs are in
        before = data_segs_in(up_sock)
        bodies = client.burst(STREAMS)
        segs = data_segs_in(up_sock) - before
    finally:
        client.close()
    assert all(b == b"up\n" for b in bodies.values())
    assert upstream.accepted == 1
    assert segs <= 3, f"{STREAMS} requests reached the upstream in {segs} segments: frames are not batched"
