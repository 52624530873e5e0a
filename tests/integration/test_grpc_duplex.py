"""Full-duplex gRPC through meshcore, with real grpcio clients and servers:
bidirectional calls that answer message by message (the client sends, waits
for the answer, sends again), a server that ends the call while the client
still sends, a server that streams on after the client is done, large
messages both ways, many such calls at once on one connection, a client
cancelling mid-call, and a call whose first try is refused UNAVAILABLE
retried on another endpoint with the messages sent so far."""
from __future__ import annotations

import threading
import time

import grpc
import pytest
from support import http as h
from support.grpc_duplex import OPTIONS as GRPC_OPTIONS
from support.grpc_duplex import Pipe, Server, ping_pong

H2_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"


@pytest.fixture
def servers():
    made = []

    def make(*a, **kw):
        made.append(Server(*a, **kw))
        return made[-1]

    yield make
    for s in made:
        s.stop()


@pytest.fixture
def channel():
    opened = []

    def make(port):
        opened.append(grpc.insecure_channel(f"127.0.0.1:{port}", options=GRPC_OPTIONS))
        return opened[-1]

    yield make
    for c in opened:
        c.close()


def h2_cluster(name, ports, **extra):
    opts = {"@type": "type.googleapis.com/" + H2_OPTIONS, "explicit_http_config": {"http2_protocol_options": {}}}
    return h.http_cluster(name, ports, typed_extension_protocol_options={H2_OPTIONS: opts}, **extra)


def sidecar(engine_factory, ports, route=None):
    route = route or h.route("/", "app")
    doc = h.bootstrap([h.hcm_listener("grpc", routes=[route], codec_type="AUTO")], [h2_cluster("app", ports)])
    engine = engine_factory(config=doc, concurrency=1)
    return engine, engine.listener_port("grpc")


def test_message_by_message(engine_factory, servers, channel):
    srv = servers("a")
    engine, port = sidecar(engine_factory, [srv.port])
    ch = channel(port)
    answers, call = ping_pong(ch, "/d.S/Echo", [b"one", b"two", b"three"])
    assert answers == [b"a:ONE", b"a:TWO", b"a:THREE"]
    assert call.code() == grpc.StatusCode.OK
    # the connection stays good for the next calls
    for _ in range(3):
        assert ping_pong(ch, "/d.S/Echo", [b"x", b"y"])[0] == [b"a:X", b"a:Y"]
    st = engine.stats()
    assert st["cluster.app.upstream_rq_total"] == 4 and st["cluster.app.upstream_cx_total"] == 1
    assert st["http.grpc.downstream_rq_2xx"] == 4


def test_server_ends_while_the_client_still_sends(engine_factory, servers, channel):
    srv = servers()
    engine, port = sidecar(engine_factory, [srv.port])
    ch = channel(port)
    pipe = Pipe()
    call = ch.stream_stream("/d.S/FirstOnly")(iter(pipe), timeout=20)
    pipe.send(b"first")
    assert next(call) == b"first"
    for i in range(20):  # 2 MB after the server is done: dropped, and their window given back
        pipe.send(b"more %d" % i + b"." * 100_000)
    pipe.close()
    assert list(call) == [] and call.code() == grpc.StatusCode.OK
    ask = b"%08d" % 200_000 + b"p" * 300_000
    for _ in range(10):  # 3 MB up, 2 MB down, past the 1 MiB connection window
        assert len(ping_pong(ch, "/d.S/Size", [ask])[0][0]) == 200_008


def test_server_streams_after_the_client_is_done(engine_factory, servers, channel):
    srv = servers()
    engine, port = sidecar(engine_factory, [srv.port])
    call = channel(port).stream_stream("/d.S/ThenStream")(iter([b"a", b"b", b"c"]), timeout=20)
    assert list(call) == [b"%d:3" % i for i in range(5)]


def test_large_messages_both_ways(engine_factory, servers, channel):
    srv = servers()
    engine, port = sidecar(engine_factory, [srv.port])
    ch = channel(port)
    asks = [b"%08d" % n + b"tag%05d" % i + b"p" * n for i, n in enumerate((1_000_000, 3, 2_000_000, 70_000))]
    answers, _ = ping_pong(ch, "/d.S/Size", asks)
    for ask, got in zip(asks, answers, strict=True):
        n = int(ask[:8])
        assert len(got) == n + 8 and got.endswith(ask[8:16])


def test_many_duplex_calls_at_once(engine_factory, servers, channel):
    srv = servers("m")
    engine, port = sidecar(engine_factory, [srv.port])
    ch = channel(port)
    errors = []

    def one(i):
        try:
            msgs = [b"c%d-%d" % (i, k) for k in range(10)]
            answers, _ = ping_pong(ch, "/d.S/Echo", msgs)
            assert answers == [b"m:" + m.upper() for m in msgs]
        except Exception as e:  # noqa: BLE001 - collected for the assertion below
            errors.append(repr(e))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[:3]
    assert engine.stats()["cluster.app.upstream_rq_total"] == 30


def test_client_cancel_reaches_the_server(engine_factory, servers, channel):
    srv = servers()
    engine, port = sidecar(engine_factory, [srv.port])
    pipe = Pipe()
    call = channel(port).stream_stream("/d.S/Watch")(iter(pipe), timeout=20)
    pipe.send(b"hello")
    assert next(call) == b"hello"
    call.cancel()
    assert srv.cancelled.wait(10), "the server never heard that the client went away"
    pipe.close()


def test_refused_first_try_is_retried_with_the_messages_so_far(engine_factory, servers, channel):
    down, up = servers("down", fail_first=True), servers("up")
    route = h.route("/", "app", route={"retry_policy": {
        "retry_on": "unavailable", "num_retries": 2, "retry_host_predicate": h.previous_hosts(),
        "host_selection_retry_max_attempts": 3}})
    engine, port = sidecar(engine_factory, [down.port, up.port], route)
    ch = channel(port)
    for _ in range(4):  # round robin: some first tries land on `down`
        answers, _ = ping_pong(ch, "/d.S/Echo", [b"one", b"two"])
        assert answers == [b"up:ONE", b"up:TWO"]
    assert down.calls >= 1
    deadline = time.monotonic() + 5
    while engine.stats()["cluster.app.upstream_rq_retry"] < down.calls and time.monotonic() < deadline:
        time.sleep(0.05)
    assert engine.stats()["cluster.app.upstream_rq_retry"] == down.calls
