"""HTTP/2's denial-of-service attacks against the downstream codec, each
refused as RFC 9113 says, counted by why, while another client keeps being
served (docs/http2.md lists the limits). Clients are the h2 package and raw
frames (hyperframe, hpack) where h2 itself would refuse to misbehave."""
from __future__ import annotations

import shutil
import socket
import subprocess
import time

import pytest
from support import http as h

h2_connection = pytest.importorskip("h2.connection")
import h2.config  # noqa: E402
import h2.errors  # noqa: E402
import h2.events  # noqa: E402
import h2.settings  # noqa: E402
from hpack import Encoder  # noqa: E402
from hyperframe.frame import ContinuationFrame, DataFrame, Frame, HeadersFrame, PingFrame, SettingsFrame  # noqa: E402

CURL = shutil.which("curl")
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
GET = [(":method", "GET"), (":path", "/"), (":scheme", "http"), (":authority", "svc")]


def engine_with(engine_factory, backend_factory, handler=None, **h2opts):
    backend = backend_factory("app", handler)
    hcm = {"codec_type": "AUTO"}
    if h2opts.pop("fault_delay", None):  # /held waits 30 s before going upstream; the rest does not
        delay = h.fault_config(delay={"fixed_delay": "30s", "percentage": h.percent(100)})
        hcm["http_filters"] = [h.fault_filter()]
        hcm["routes"] = [h.route("/held", "backend", typed_per_filter_config=delay), h.route("/", "backend")]
    hcm.update(h2opts.pop("hcm", {}))
    if h2opts:
        hcm["http2_protocol_options"] = h2opts
    return engine_factory(config=h.simple([backend.port], **hcm)), backend


def second_client_served(engine) -> None:
    """Another client on a new connection gets its answer."""
    out = subprocess.run([CURL, "-s", "--max-time", "10", "--http2-prior-knowledge", "-o", "/dev/null", "-w",
                          "%{http_code}", f"http://127.0.0.1:{engine.listener_port('http')}/other"],
                         capture_output=True, timeout=30)
    assert out.stdout == b"200", out.stderr


class Client:
    """An h2 client on a socket that reports what the server did."""

    def __init__(self, port: int, validate: bool = True, settings=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        cfg = h2.config.H2Configuration(client_side=True, header_encoding=None, validate_outbound_headers=validate,
                                        validate_inbound_headers=validate)
        self.conn = h2_connection.H2Connection(cfg)
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.flush()
        self.events = []

    def flush(self):
        self.sock.sendall(self.conn.data_to_send())

    def raw(self, data: bytes):
        self.sock.sendall(data)

    def pump(self, until, timeout: float = 10.0):
        """Reads until until(events) is true or the server closes; returns the events."""
        deadline = time.monotonic() + timeout
        self.sock.settimeout(timeout)
        while not until(self.events) and time.monotonic() < deadline:
            try:
                data = self.sock.recv(1 << 16)
            except (ConnectionResetError, socket.timeout):
                break
            if not data:
                self.events.append("closed")
                break
            try:
                self.events += self.conn.receive_data(data)
            except h2.exceptions.ProtocolError:
                self.events.append("client-error")
                break
            try:
                self.sock.sendall(self.conn.data_to_send())
            except (BrokenPipeError, ConnectionResetError):
                self.events.append("closed")
                break
        return self.events

    def goaway(self):
        return next((e for e in self.events if isinstance(e, h2.events.ConnectionTerminated)), None)

    def close(self):
        self.sock.close()


def ended(events):
    return "closed" in events or any(isinstance(e, h2.events.ConnectionTerminated) for e in events)


def test_rapid_reset(engine_factory, backend_factory):
    """CVE-2023-44487: streams opened and cancelled at once, over and over."""
    engine, backend = engine_with(engine_factory, backend_factory)
    c = Client(engine.listener_port("http"))
    for i in range(300):
        sid = 1 + 2 * i
        c.conn.send_headers(sid, GET, end_stream=True)
        c.conn.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
        try:
            c.flush()
        except (BrokenPipeError, ConnectionResetError):
            break
    c.pump(ended)
    assert c.goaway() is not None and c.goaway().error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
    assert h.stat(engine, "http.http.downstream_rq_too_many_premature_resets") == 1
    assert h.stat(engine, "http.http.http2.rx_reset") >= 50
    second_client_served(engine)


def test_continuation_flood(engine_factory, backend_factory):
    """CVE-2024-27316 family: a header block that never ends."""
    engine, backend = engine_with(engine_factory, backend_factory)
    block = Encoder().encode(GET + [(f"x-h{i}", "v" * 50) for i in range(40)])
    s = socket.create_connection(("127.0.0.1", engine.listener_port("http")), timeout=10)
    frames = [HeadersFrame(1, data=block[:10], flags=["END_STREAM"])]
    rest = block[10:]
    for i in range(200):
        piece, rest = rest[:10], rest[10:]
        frames.append(ContinuationFrame(1, data=piece or b"\x00"))  # never END_HEADERS
    try:
        s.sendall(PREFACE + SettingsFrame(0).serialize() + b"".join(f.serialize() for f in frames))
    except (BrokenPipeError, ConnectionResetError):
        pass
    s.settimeout(10)
    got = b""
    try:
        while chunk := s.recv(65536):
            got += chunk
    except ConnectionResetError:
        pass
    s.close()
    assert h.stat(engine, "http.http.http2.too_many_continuations") == 1
    assert backend.requests == []
    second_client_served(engine)


def test_hpack_bomb_past_the_header_list_limit(engine_factory, backend_factory):
    """A small header block that decompresses past max_request_headers_kb:
    431 on that stream, the connection (and its HPACK state) carries on."""
    engine, backend = engine_with(engine_factory, backend_factory)
    c = Client(engine.listener_port("http"))
    c.conn.send_headers(1, GET + [("x-bomb", "a" * 4000)] * 40, end_stream=True)  # indexed once, 1 byte after
    c.flush()
    c.conn.send_headers(3, GET, end_stream=True)
    c.flush()
    c.pump(lambda ev: sum(isinstance(e, h2.events.StreamEnded) for e in ev) >= 2 or ended(ev))
    status = {e.stream_id: dict(e.headers)[b":status"] for e in c.events if isinstance(e, h2.events.ResponseReceived)}
    assert status == {1: b"431", 3: b"200"}
    assert h.stat(engine, "http.http.http2.header_overflow") == 1
    assert len(backend.requests) == 1
    c.close()
    second_client_served(engine)


@pytest.mark.parametrize("kind", ["settings", "ping"])
def test_settings_and_ping_floods(engine_factory, backend_factory, kind):
    """Frames that each make the server queue an ACK, sent faster than the
    ACKs are written: past max_outbound_control_frames the connection goes."""
    engine, backend = engine_with(engine_factory, backend_factory, max_outbound_control_frames=100)
    s = socket.create_connection(("127.0.0.1", engine.listener_port("http")), timeout=10)
    frame = SettingsFrame(0).serialize() if kind == "settings" else PingFrame(0, opaque_data=b"12345678").serialize()
    try:
        s.sendall(PREFACE + SettingsFrame(0).serialize() + frame * 5000)
        for _ in range(20):
            s.sendall(frame * 5000)
    except (BrokenPipeError, ConnectionResetError):
        pass
    s.close()
    h.wait_stat(engine, "http.http.http2.outbound_control_flood", 1)
    second_client_served(engine)


def test_zero_window_stall_ends_with_the_stream_idle_timeout(engine_factory, backend_factory):
    """A client that never opens its window: nothing is sent, the stream
    idle timeout resets the stream, and the proxy holds one buffer meanwhile."""
    big = b"x" * (4 << 20)
    engine, backend = engine_with(engine_factory, backend_factory, lambda req: h.Reply(body=big),
                                  hcm={"stream_idle_timeout": "1s"})
    c = Client(engine.listener_port("http"), settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
    c.conn.send_headers(1, GET, end_stream=True)
    c.flush()
    c.pump(lambda ev: any(isinstance(e, h2.events.StreamReset) for e in ev) or ended(ev), timeout=15)
    resets = [e for e in c.events if isinstance(e, h2.events.StreamReset)]
    assert resets and resets[0].stream_id == 1
    assert not any(isinstance(e, h2.events.DataReceived) for e in c.events)
    assert h.stat(engine, "http.http.downstream_rq_idle_timeout") == 1
    assert h.stat(engine, "http.http.http2.tx_reset") == 1
    second_client_served(engine)
    c.close()


def test_more_streams_than_max_concurrent_streams(engine_factory, backend_factory):
    """Streams past the advertised limit are refused (REFUSED_STREAM), the
    others answered."""
    engine, backend = engine_with(engine_factory, backend_factory, lambda req: (time.sleep(0.3), h.Reply())[1],
                                  max_concurrent_streams=10)
    c = Client(engine.listener_port("http"))
    for i in range(20):
        c.conn.send_headers(1 + 2 * i, GET, end_stream=True)
    c.flush()
    done = lambda ev: sum(isinstance(e, (h2.events.StreamEnded, h2.events.StreamReset)) for e in ev) >= 20  # noqa
    c.pump(lambda ev: done(ev) or ended(ev), timeout=20)
    refused = [e.stream_id for e in c.events if isinstance(e, h2.events.StreamReset)
               and e.error_code == h2.errors.ErrorCodes.REFUSED_STREAM]
    answered = [e.stream_id for e in c.events if isinstance(e, h2.events.StreamEnded)]
    assert len(refused) == 10 and len(answered) == 10
    assert h.stat(engine, "http.http.http2.stream_refused_errors") == 10
    second_client_served(engine)
    c.close()


def test_data_past_the_window(engine_factory, backend_factory):
    """DATA beyond the stream window (the request held by a fault delay, so
    nothing is consumed): FLOW_CONTROL_ERROR."""
    engine, backend = engine_with(engine_factory, backend_factory, fault_delay=True)
    c = Client(engine.listener_port("http"))
    c.conn.send_headers(1, [(":method", "POST"), (":path", "/held"), (":scheme", "http"), (":authority", "svc")])
    c.flush()
    c.raw(b"".join(DataFrame(1, data=b"z" * 16384).serialize() for _ in range(12)))  # 192 KiB > 64 KiB
    c.pump(lambda ev: any(isinstance(e, h2.events.StreamReset) for e in ev) or ended(ev))
    codes = [e.error_code for e in c.events if isinstance(e, (h2.events.StreamReset, h2.events.ConnectionTerminated))]
    assert h2.errors.ErrorCodes.FLOW_CONTROL_ERROR in codes, c.events
    second_client_served(engine)
    c.close()


def test_frames_on_closed_and_idle_streams(engine_factory, backend_factory):
    """DATA and HEADERS on a stream that is closed are ignored, as RFC 9113
    5.1 allows (the DATA's bytes go back to the connection window) and the
    connection serves on; HEADERS on a stream id the client may not use
    (even: the server's) is a connection error."""
    engine, backend = engine_with(engine_factory, backend_factory)
    c = Client(engine.listener_port("http"))
    c.conn.send_headers(1, GET, end_stream=True)
    c.flush()
    c.pump(lambda ev: any(isinstance(e, h2.events.StreamEnded) for e in ev))
    block = Encoder().encode([(k, v, True) for k, v in GET])  # never indexed: the client's HPACK state stays
    c.raw(DataFrame(1, data=b"late" * 1000, flags=["END_STREAM"]).serialize())
    c.raw(HeadersFrame(1, data=block, flags=["END_STREAM", "END_HEADERS"]).serialize())
    c.conn.send_headers(3, GET, end_stream=True)
    c.flush()
    c.pump(lambda ev: sum(isinstance(e, h2.events.StreamEnded) for e in ev) >= 2 or ended(ev))
    assert [e.stream_id for e in c.events if isinstance(e, h2.events.StreamEnded)] == [1, 3]
    c.raw(HeadersFrame(4, data=block, flags=["END_STREAM", "END_HEADERS"]).serialize())
    c.pump(ended)
    assert c.goaway() is not None, c.events[-3:]
    assert c.goaway().error_code == h2.errors.ErrorCodes.PROTOCOL_ERROR
    assert h.stat(engine, "http.http.downstream_cx_protocol_error") == 1
    assert len(backend.requests) == 2
    second_client_served(engine)
    c.close()


def test_empty_data_frames_flood(engine_factory, backend_factory):
    engine, backend = engine_with(engine_factory, backend_factory)
    c = Client(engine.listener_port("http"))
    c.conn.send_headers(1, [(":method", "POST"), (":path", "/"), (":scheme", "http"), (":authority", "svc")])
    c.flush()
    c.raw(DataFrame(1, data=b"").serialize() * 50)
    c.pump(ended)
    assert c.goaway() is not None and c.goaway().error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
    assert h.stat(engine, "http.http.http2.inbound_empty_frames_flood") == 1
    second_client_served(engine)
    c.close()


def test_invalid_preface_on_an_http2_listener(engine_factory, backend_factory):
    engine, backend = engine_with(engine_factory, backend_factory, hcm={"codec_type": "HTTP2"})
    with socket.create_connection(("127.0.0.1", engine.listener_port("http")), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: svc\r\n\r\n")
        s.settimeout(10)
        data = s.recv(65536)
        while more := s.recv(65536):
            data += more
    assert b"HTTP/1.1" not in data  # no HTTP/1.1 answer: the connection is just closed
    assert h.stat(engine, "http.http.downstream_cx_protocol_error") == 1
    assert backend.requests == []
    second_client_served(engine)


_ = Frame  # hyperframe's base class: the frames above serialize themselves
