"""WebSocket over HTTP/2 (RFC 8441 extended CONNECT, proxy/h2_tunnel.c): the
`h2` package runs the handshake on an h2c connection and WebSocket frames are
built and parsed with the `websockets` package's frame objects, against a
real `websockets` echo server (HTTP/1.1) behind meshcore."""
from __future__ import annotations

import os
import socket
import threading

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest
import websockets
from support import http as h
from support.net import wait_until
from websockets.frames import Close, Frame, Opcode
from websockets.streams import StreamReader
from websockets.sync.server import serve

MB = 1 << 20
WS = [{"upgrade_type": "websocket"}]
RBAC = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"


@pytest.fixture
def echo_server():
    seen = []

    def echo(conn):
        seen.append(dict(conn.request.headers))
        try:
            for message in conn:
                conn.send(message)
        except websockets.ConnectionClosed:
            pass

    server = serve(echo, "127.0.0.1", 0, max_size=4 * MB, compression=None)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.socket.getsockname()[1], seen
    server.shutdown()
    thread.join(5)


def doc(port, cluster_kw=None, **hcm):
    return h.simple([port], routes=[h.route("/", "backend", route={"timeout": "0s"})], stat_prefix="ws",
                    codec_type="AUTO", cluster_kw=cluster_kw, **hcm)


class Client:
    """One h2c connection; streams that are WebSocket tunnels or plain requests."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, validate_outbound_headers=False))
        self.conn.initiate_connection()
        self.flush()
        self.heads, self.resets, self.ended = {}, {}, set()
        self.readers = {}
        self.remote_settings = {}

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def pump(self, until):
        while not until():
            data = self.sock.recv(1 << 16)
            assert data, "connection closed"
            for ev in self.conn.receive_data(data):
                if isinstance(ev, h2.events.RemoteSettingsChanged):
                    self.remote_settings.update({k: v.new_value for k, v in ev.changed_settings.items()})
                elif isinstance(ev, h2.events.ResponseReceived):
                    self.heads[ev.stream_id] = dict(ev.headers)
                elif isinstance(ev, h2.events.DataReceived):
                    self.readers.setdefault(ev.stream_id, StreamReader()).feed_data(ev.data)
                    self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.StreamReset):
                    self.resets[ev.stream_id] = ev.error_code
                elif isinstance(ev, h2.events.StreamEnded):
                    self.ended.add(ev.stream_id)
            self.flush()

    def open(self, path, protocol="websocket", method="CONNECT"):
        sid = self.conn.get_next_available_stream_id()
        fields = [(":method", method), (":protocol", protocol), (":scheme", "http"), (":path", path),
                  (":authority", "svc")]
        self.conn.send_headers(sid, fields)
        self.flush()
        self.pump(lambda: sid in self.heads or sid in self.resets)
        return sid

    def send(self, sid, frame: Frame, end=False):
        data = frame.serialize(mask=True, extensions=[])
        for i in range(0, len(data), 16384):
            chunk = data[i:i + 16384]
            size = len(chunk)
            self.pump(lambda size=size: self.conn.local_flow_control_window(sid) >= size)
            self.conn.send_data(sid, chunk)
            self.flush()
        if end:
            self.conn.end_stream(sid)
            self.flush()

    def recv(self, sid) -> Frame:
        reader = self.readers.setdefault(sid, StreamReader())
        parser = Frame.parse(reader.read_exact, mask=False, max_size=4 * MB, extensions=[])
        while True:
            try:
                next(parser)
            except StopIteration as done:
                return done.value
            have = len(reader.buffer)
            self.pump(lambda have=have: len(reader.buffer) > have)


def test_echo_text_binary_1mb_and_close(engine_factory, echo_server):
    port, seen = echo_server
    # an Envoy config for WebSocket over HTTP/2 also says allow_connect: accepted
    engine = engine_factory(config=doc(port, upgrade_configs=WS, http2_protocol_options={"allow_connect": True}))
    c = Client(engine.listener_port("http"))
    c.pump(lambda: h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL in c.remote_settings)
    assert c.remote_settings[h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL] == 1
    sid = c.open("/chat")
    assert c.heads[sid][b":status"] == b"200"
    assert b"sec-websocket-accept" not in c.heads[sid] and b"upgrade" not in c.heads[sid]
    # the upstream was asked with an HTTP/1.1 upgrade, a key meshcore made
    wait_until(lambda: seen, what="the echo server's handler")
    got = {k.lower(): v for k, v in seen[0].items()}
    assert got["upgrade"].lower() == "websocket" and "upgrade" in got["connection"].lower()
    assert got["sec-websocket-version"] == "13" and len(got["sec-websocket-key"]) == 24

    c.send(sid, Frame(Opcode.TEXT, b"hello"))
    f = c.recv(sid)
    assert (f.opcode, f.data) == (Opcode.TEXT, b"hello")
    c.send(sid, Frame(Opcode.BINARY, b"\x00\x01\xffbinary"))
    f = c.recv(sid)
    assert (f.opcode, f.data) == (Opcode.BINARY, b"\x00\x01\xffbinary")
    big = os.urandom(MB)
    c.send(sid, Frame(Opcode.BINARY, big))
    f = c.recv(sid)
    assert f.opcode == Opcode.BINARY and f.data == big

    # a second stream on the same connection, while the first is open
    sid2 = c.open("/other")
    assert c.heads[sid2][b":status"] == b"200"
    c.send(sid2, Frame(Opcode.TEXT, b"second"))
    assert c.recv(sid2).data == b"second"

    c.send(sid, Frame(Opcode.CLOSE, Close(1000, "bye").serialize()))
    f = c.recv(sid)
    assert f.opcode == Opcode.CLOSE and Close.parse(f.data).code == 1000
    c.pump(lambda: sid in c.ended)  # the server closed its TCP side: END_STREAM
    c.conn.end_stream(sid)
    c.flush()
    c.send(sid2, Frame(Opcode.TEXT, b"still here"))
    assert c.recv(sid2).data == b"still here"
    st = engine.stats()
    assert st["http.ws.downstream_cx_upgrades_total"] == 2
    assert st["cluster.backend.upstream_rq_101"] == 2
    assert st["http.ws.downstream_cx_rx_bytes_total"] > MB and st["cluster.backend.upstream_cx_rx_bytes_total"] > MB
    c.sock.close()


def test_rbac_decides_on_the_extended_connect(engine_factory, echo_server):
    port, _ = echo_server
    deny_admin = {"name": "envoy.filters.http.rbac", "typed_config": {"@type": RBAC, "rules": {
        "action": "DENY", "policies": {"no-admin": {"permissions": [{"url_path": {"path": {"prefix": "/admin"}}}],
                                                    "principals": [{"any": True}]}}}}}
    engine = engine_factory(config=doc(port, upgrade_configs=WS, http_filters=[deny_admin]))
    c = Client(engine.listener_port("http"))
    sid = c.open("/admin/socket")
    assert c.heads[sid][b":status"] == b"403"
    sid = c.open("/public")  # the same connection goes on
    assert c.heads[sid][b":status"] == b"200"
    c.send(sid, Frame(Opcode.TEXT, b"ok"))
    assert c.recv(sid).data == b"ok"
    assert engine.stats()["http.ws.rbac.denied"] == 1
    c.sock.close()


def test_other_protocols_and_plain_connect(engine_factory, echo_server):
    port, _ = echo_server
    engine = engine_factory(config=doc(port, upgrade_configs=WS))
    c = Client(engine.listener_port("http"))
    sid = c.open("/x", protocol="connect-udp")  # not an upgrade the HCM enables: 403 as on HTTP/1.1
    assert c.heads[sid][b":status"] == b"403"
    sid = c.conn.get_next_available_stream_id()
    c.conn.send_headers(sid, [(":method", "CONNECT"), (":authority", "svc:443")])
    c.flush()
    c.pump(lambda: sid in c.heads or sid in c.resets)
    assert c.heads[sid][b":status"] == b"405"  # plain CONNECT, as main answers it on HTTP/1.1
    assert engine.stats()["http.ws.downstream_rq_ws_on_non_ws_route"] == 1
    c.sock.close()


def test_without_websocket_upgrades_extended_connect_is_refused(engine_factory, echo_server):
    """No SETTINGS_ENABLE_CONNECT_PROTOCOL is advertised; a client that sends
    :protocol anyway gets RST_STREAM(PROTOCOL_ERROR), as Envoy without
    allow_connect; the connection goes on."""
    port, _ = echo_server
    engine = engine_factory(config=doc(port))
    c = Client(engine.listener_port("http"))
    c.pump(lambda: bool(c.remote_settings))
    assert c.remote_settings.get(h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL, 0) == 0
    sid = c.open("/chat")
    assert c.resets.get(sid) == h2.errors.ErrorCodes.PROTOCOL_ERROR
    sid = c.conn.get_next_available_stream_id()
    c.conn.send_headers(sid, [(":method", "CONNECT"), (":authority", "svc:443")])
    c.flush()
    c.pump(lambda: sid in c.heads or sid in c.resets)
    assert c.heads[sid][b":status"] == b"405"
    c.sock.close()


def test_reset_and_half_close_end_the_tunnel(engine_factory, echo_server):
    """RST_STREAM from the client closes the upstream side; the client's
    END_STREAM is a FIN upstream (the echo server then closes: our END_STREAM)."""
    port, _ = echo_server
    engine = engine_factory(config=doc(port, upgrade_configs=WS))
    c = Client(engine.listener_port("http"))
    sid = c.open("/a")
    c.send(sid, Frame(Opcode.TEXT, b"one"))
    assert c.recv(sid).data == b"one"
    c.conn.reset_stream(sid)
    c.flush()
    sid = c.open("/b")
    c.send(sid, Frame(Opcode.TEXT, b"two"), end=True)
    assert c.recv(sid).data == b"two"
    c.pump(lambda: sid in c.ended)
    wait_until(lambda: engine.stats()["http.ws.downstream_cx_upgrades_active"] == 0, what="both tunnels' ends")
    sid = c.open("/c")  # the connection goes on
    assert c.heads[sid][b":status"] == b"200"
    c.sock.close()


def test_use_downstream_protocol_config_still_upgrades_over_http1(engine_factory, echo_server):
    """A cluster that speaks HTTP/2 to HTTP/2 clients takes the WebSocket as
    the HTTP/1.1 upgrade (there is no extended CONNECT upstream)."""
    port, _ = echo_server
    opts = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
    kw = {"typed_extension_protocol_options": {opts: {"@type": "type.googleapis.com/" + opts,
          "use_downstream_protocol_config": {"http_protocol_options": {}, "http2_protocol_options": {}}}}}
    engine = engine_factory(config=doc(port, cluster_kw=kw, upgrade_configs=WS))
    c = Client(engine.listener_port("http"))
    sid = c.open("/chat")
    assert c.heads[sid][b":status"] == b"200"
    c.send(sid, Frame(Opcode.TEXT, b"via http/1.1"))
    assert c.recv(sid).data == b"via http/1.1"
    c.sock.close()
