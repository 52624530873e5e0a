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
from hyperframe.frame import (  # noqa: E402
    ContinuationFrame,
    DataFrame,
    Frame,
    HeadersFrame,
    PingFrame,
    PriorityFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

CURL = shutil.which("curl")
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
GET = [(":method", "GET"), (":path", "/"), (":scheme", "http"), (":authority", "svc")]


def engine_with(engine_factory, backend_factory, handler=None, concurrency=2, **h2opts):
    backend = backend_factory("app", handler)
    hcm = {"codec_type": "AUTO"}
    if h2opts.pop("fault_delay", None):  # /held waits 30 s before going upstream; the rest does not
        delay = h.fault_config(delay={"fixed_delay": "30s", "percentage": h.percent(100)})
        hcm["http_filters"] = [h.fault_filter()]
        hcm["routes"] = [h.route("/held", "backend", typed_per_filter_config=delay), h.route("/", "backend")]
    hcm.update(h2opts.pop("hcm", {}))
    if h2opts:
        hcm["http2_protocol_options"] = h2opts
    return engine_factory(concurrency=concurrency, config=h.simple([backend.port], **hcm)), backend


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
                                        validate_inbound_headers=validate, normalize_outbound_headers=validate)
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
            except (TimeoutError, ConnectionResetError):
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


class Bystander:
    """Another client asking again and again while an attack runs (one worker:
    the attacker's connection and this one share a loop)."""

    def __init__(self, engine):
        import threading

        self.engine, self.codes, self.stop = engine, [], threading.Event()
        self.thread = threading.Thread(target=self.run)
        self.thread.start()

    def run(self):
        while not self.codes or not self.stop.is_set():  # at least one answer, however short the attack
            out = subprocess.run([CURL, "-s", "--max-time", "10", "--http2-prior-knowledge", "-o", "/dev/null", "-w",
                                  "%{http_code}", f"http://127.0.0.1:{self.engine.listener_port('http')}/by"],
                                 capture_output=True, timeout=30)
            self.codes.append(out.stdout)

    def served(self):
        self.stop.set()
        self.thread.join()
        return self.codes and all(code == b"200" for code in self.codes)


def test_rapid_reset(engine_factory, backend_factory):
    """CVE-2023-44487: streams opened and cancelled at once, over and over."""
    engine, backend = engine_with(engine_factory, backend_factory, concurrency=1)
    bystander = Bystander(engine)
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
    assert bystander.served()


def test_continuation_flood(engine_factory, backend_factory):
    """CVE-2024-27316 family: a header block that never ends."""
    engine, backend = engine_with(engine_factory, backend_factory)
    block = Encoder().encode(GET + [(f"x-h{i}", "v" * 50) for i in range(40)])
    s = socket.create_connection(("127.0.0.1", engine.listener_port("http")), timeout=10)
    frames = [HeadersFrame(1, data=block[:10], flags=["END_STREAM"])]
    rest = block[10:]
    for _ in range(200):
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
    engine, backend = engine_with(engine_factory, backend_factory, concurrency=1, max_outbound_control_frames=100)
    bystander = Bystander(engine)
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
    assert bystander.served()


@pytest.mark.parametrize("kind", ["priority", "window_update"])
def test_priority_and_window_update_floods(engine_factory, backend_factory, kind):
    """Frames that open nothing and ask for work: past Envoy's ratios (100
    PRIORITY per stream opened, 10 WINDOW_UPDATE per DATA frame sent) the
    connection gets GOAWAY(ENHANCE_YOUR_CALM)."""
    engine, backend = engine_with(engine_factory, backend_factory)
    c = Client(engine.listener_port("http"))
    if kind == "priority":
        frame = PriorityFrame(1, depends_on=0, stream_weight=15).serialize()
    else:
        frame = WindowUpdateFrame(0, window_increment=1).serialize()
    c.raw(frame * 500)
    c.pump(ended)
    assert c.goaway() is not None and c.goaway().error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
    assert h.stat(engine, f"http.http.http2.inbound_{kind}_frames_flood") == 1
    second_client_served(engine)
    c.close()


def test_window_updates_that_open_new_streams_are_no_flood(engine_factory, backend_factory):
    """A client may open each new stream's window before any DATA flows (gRPC
    clients do): Envoy's bound counts the streams opened, so 40 streams with a
    WINDOW_UPDATE each are served, not taken for a flood."""
    engine, backend = engine_with(engine_factory, backend_factory)
    c = Client(engine.listener_port("http"))
    ids = list(range(1, 81, 2))
    for sid in ids:
        c.conn.send_headers(sid, GET, end_stream=True)
        c.conn.increment_flow_control_window(65535, stream_id=sid)
    c.flush()
    c.pump(lambda ev: {e.stream_id for e in c.events if isinstance(e, h2.events.StreamEnded)} >= set(ids))
    assert c.goaway() is None
    assert h.stat(engine, "http.http.http2.inbound_window_update_frames_flood") == 0
    c.close()


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


@pytest.mark.parametrize("extra", [
    [("x-evil", "a\r\nx-injected: 1")],          # CR LF in a value: smuggling into the HTTP/1.1 head
    [("transfer-encoding", "chunked")],          # connection-specific (RFC 9113 8.2.2)
    [("content-length", "5")],                   # and no DATA: the length does not match
    [("Upper-Case", "x")],                       # field names are lowercase in HTTP/2
])
def test_malformed_requests_are_stream_errors(engine_factory, backend_factory, extra):
    """A malformed request never reaches the upstream: RST_STREAM(PROTOCOL_ERROR)
    on its stream, the connection serves on."""
    engine, backend = engine_with(engine_factory, backend_factory)
    c = Client(engine.listener_port("http"), validate=False)
    c.conn.send_headers(1, GET + extra, end_stream=True)
    c.conn.send_headers(3, GET, end_stream=True)
    c.flush()
    c.pump(lambda ev: sum(isinstance(e, (h2.events.StreamEnded, h2.events.StreamReset)) for e in ev) >= 2
           or ended(ev))
    resets = {e.stream_id: e.error_code for e in c.events if isinstance(e, h2.events.StreamReset)}
    assert resets == {1: h2.errors.ErrorCodes.PROTOCOL_ERROR}
    assert [e.stream_id for e in c.events if isinstance(e, h2.events.StreamEnded)] == [3]
    assert len(backend.requests) == 1 and not backend.requests[0].has("x-injected")
    assert h.stat(engine, "http.http.http2.rx_messaging_error") == 1
    c.close()
