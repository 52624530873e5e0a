"""The HTTP/1.1 codec end to end: client -> meshcore (http_connection_manager) -> Backend.

Every test looks at both ends: what the client got back and what the
upstream actually received (raw head, headers, body bytes, chunk framing,
which upstream connection carried it).
"""
import hashlib
import os
import re

import pytest
from support import http as h
from support.net import free_port

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def echo_proxy(engine_factory, backend_factory):
    """(engine, port, backend): everything routed to one echoing Backend."""
    backend = backend_factory("echo")
    engine = engine_factory(config=h.simple([backend.port]))
    return engine, engine.listener_port("http"), backend


# ---- bodies -----------------------------------------------------------------------------------

SIZES = {"0B": 0, "1KiB": 1024, "15KiB": 15 * 1024, "100KiB": 100 * 1024, "10MiB": 10 << 20}
CASES = [("GET", "0B"), ("GET", "1KiB")] + [(m, s) for m in ("POST", "PUT") for s in SIZES]


@pytest.mark.parametrize(("method", "size"), CASES, ids=[f"{m}-{s}" for m, s in CASES])
def test_content_length_body_echoed_intact(echo_proxy, method, size):
    engine, port, backend = echo_proxy
    body = os.urandom(SIZES[size])
    with h.Conn(port, timeout=30) as c:
        resp = c.request(method, f"/echo/{size}", body=body)
    assert resp.status == 200
    assert resp.header("content-length") == str(len(body))
    assert sha(resp.body) == sha(body)
    (req,) = backend.requests
    assert req.method == method and req.target == f"/echo/{size}"
    assert req.headers_named("content-length") == [str(len(body))]
    assert not req.has("transfer-encoding")
    assert req.body_len == len(body) and req.body_sha256 == sha(body)


@pytest.mark.parametrize("total", [3000, 200 * 1024], ids=["buffered", "streamed"])
def test_chunked_request_body_passes_through_with_extensions_and_trailers(echo_proxy, total):
    _, port, backend = echo_proxy
    data = os.urandom(total)
    pieces = [data[i:i + 7000] for i in range(0, total, 7000)]
    wire = h.chunked(pieces, ext=";sig=abc", trailers=[("x-checksum", sha(data)[:16])])
    with h.Conn(port, timeout=30) as c:
        c.send(h.build_request("POST", "/upload", headers=[("Transfer-Encoding", "chunked")]) + wire)
        resp = c.response()
    assert resp.status == 200 and sha(resp.body) == sha(data)
    (req,) = backend.requests
    assert req.chunked and not req.has("content-length")
    assert req.body == data
    assert req.raw_body == wire, "chunk framing is forwarded byte for byte"
    assert req.chunk_exts == [";sig=abc"] * (len(pieces) + 1)
    assert req.trailers == [("x-checksum", sha(data)[:16])]


def test_chunked_response_passes_through_with_extensions_and_trailers(engine_factory, backend_factory):
    wire = h.chunked([b"hello ", b"chunked ", os.urandom(20000)], ext=";n=1", trailers=[("x-trailer", "t1")])
    head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nx-backend: chunky\r\n\r\n"
    backend = backend_factory("chunky", lambda req: h.Reply(raw=head + wire))
    engine = engine_factory(config=h.simple([backend.port]))
    with h.Conn(engine.listener_port("http")) as c:
        resp = c.request("GET", "/c")
        assert resp.status == 200
        assert resp.header("transfer-encoding") == "chunked" and not resp.has("content-length")
        assert resp.raw_body == wire
        assert resp.trailers == [("x-trailer", "t1")] and resp.chunk_exts == [";n=1"] * 4
        # The message ended where the chunked framing says: the connection is reusable.
        again = c.request("GET", "/c")
        assert again.status == 200 and again.raw_body == wire


# ---- connections -----------------------------------------------------------------------------------


def test_keep_alive_many_requests_on_one_client_connection_and_one_upstream_connection(echo_proxy):
    engine, port, backend = echo_proxy
    n = 50
    with h.Conn(port) as c:
        for i in range(n):
            resp = c.request("POST", f"/r/{i}", body=b"%d" % i)
            assert (resp.status, resp.header("x-path"), resp.body) == (200, f"/r/{i}", b"%d" % i)
    h.wait_stat(engine, "http.http.downstream_rq_2xx", n)
    st = engine.stats()
    assert st["http.http.downstream_cx_total"] == 1
    assert st["http.http.downstream_rq_total"] == n
    # Upstream pooling: one upstream connection carried everything.
    assert backend.accepted == 1
    assert {r.conn for r in backend.requests} == {1}
    assert st["cluster.backend.upstream_cx_total"] == 1
    assert st["cluster.backend.upstream_cx_reused"] == n - 1


def test_sequential_client_connections_reuse_pooled_upstream_connections(echo_proxy):
    """Pools are per worker: at most one upstream connection per worker."""
    engine, port, backend = echo_proxy
    n = 30
    for i in range(n):
        assert h.request(port, "GET", f"/{i}").status == 200
    assert 1 <= backend.accepted <= engine.concurrency
    assert h.stat(engine, "cluster.backend.upstream_cx_reused") == n - backend.accepted


def test_pipelined_requests_are_answered_in_order(echo_proxy):
    _, port, backend = echo_proxy
    reqs = [
        h.build_request("GET", "/1"),
        h.build_request("POST", "/2", body=b"second body"),
        h.build_request("GET", "/3"),
        h.build_request("POST", "/4", headers=[("Transfer-Encoding", "chunked")]) + h.chunked([b"fourth", b"!"]),
        h.build_request("HEAD", "/5"),
        h.build_request("PUT", "/6", body=os.urandom(5000)),
        h.build_request("GET", "/7"),
    ]
    with h.Conn(port) as c:
        resps = h.pipeline(c, reqs, head_requests=[False, False, False, False, True, False, False])
        assert [r.status for r in resps] == [200] * 7
        assert [r.header("x-path") for r in resps] == [f"/{i}" for i in range(1, 8)]
        assert resps[1].body == b"second body" and resps[3].body == b"fourth!"
        assert resps[4].body == b""
        assert resps[5].body == reqs[5][-5000:]
        assert c.request("GET", "/8").header("x-path") == "/8"
    assert [r.target for r in backend.requests] == [f"/{i}" for i in range(1, 9)]


def test_expect_100_continue_is_answered_by_the_proxy_and_not_forwarded(echo_proxy):
    _, port, backend = echo_proxy
    with h.Conn(port) as c:
        c.send(h.build_request("PUT", "/x", headers=[("Expect", "100-continue"), ("Content-Length", "11")]))
        interim = c.response()
        assert interim.status == 100
        c.send(b"hello world")
        final = c.response()
    assert (final.status, final.body) == (200, b"hello world")
    (req,) = backend.requests
    assert not req.has("expect")
    assert req.body == b"hello world"


def test_head_response_has_content_length_and_no_body(engine_factory, backend_factory):
    def handler(req):
        if req.method == "HEAD":
            return h.Reply(200, [("content-length", "1234")])
        return h.Reply(200, [("x-path", req.target)], b"after")

    backend = backend_factory("head", handler)
    engine = engine_factory(config=h.simple([backend.port]))
    with h.Conn(engine.listener_port("http")) as c:
        resp = c.request("HEAD", "/h")
        assert resp.status == 200 and resp.header("content-length") == "1234"
        # No body followed: the next response on the connection parses cleanly.
        nxt = c.request("GET", "/next")
        assert (nxt.status, nxt.body) == (200, b"after")


def test_204_and_304_have_no_body(engine_factory, backend_factory):
    def handler(req):
        if req.target == "/204":
            return h.Reply(204, [("x-kind", "nc")], no_length=True)
        if req.target == "/304":
            return h.Reply(304, [("etag", '"v1"'), ("content-length", "500")])
        return h.Reply(200, [], b"plain")

    backend = backend_factory("nobody", handler)
    engine = engine_factory(config=h.simple([backend.port]))
    with h.Conn(engine.listener_port("http")) as c:
        r204 = c.request("GET", "/204")
        assert r204.status == 204 and r204.header("x-kind") == "nc"
        assert not r204.has("transfer-encoding")
        r304 = c.request("GET", "/304")
        assert r304.status == 304 and r304.header("etag") == '"v1"'
        tail = c.request("GET", "/after")
        assert (tail.status, tail.body) == (200, b"plain")


# ---- hop-by-hop and forwarding headers -------------------------------------------------------------


def test_hop_by_hop_request_headers_are_stripped(echo_proxy):
    _, port, backend = echo_proxy
    resp = h.request(port, "GET", "/hop", headers=[
        ("Connection", "keep-alive, X-Foo"), ("X-Foo", "connection-listed"), ("Keep-Alive", "timeout=5"),
        ("TE", "trailers"), ("Upgrade", "websocket"), ("Proxy-Connection", "keep-alive"),
        ("X-Bar", "end-to-end"),
    ])
    assert resp.status == 200
    (req,) = backend.requests
    for name in ("x-foo", "keep-alive", "upgrade", "proxy-connection"):
        assert not req.has(name), (name, req.headers)
    assert req.headers_named("te") == ["trailers"]  # the one TE value that crosses a hop (gRPC)
    assert "x-foo" not in (req.header("connection") or "").lower()
    assert req.header("x-bar") == "end-to-end"


def test_hop_by_hop_response_headers_are_stripped(engine_factory, backend_factory):
    backend = backend_factory("hop", lambda req: h.Reply(200, [
        ("Connection", "X-Secret"), ("X-Secret", "1"), ("Keep-Alive", "timeout=5"), ("Upgrade", "foo"),
        ("Proxy-Connection", "keep-alive"), ("X-Public", "2")], b"ok"))
    engine = engine_factory(config=h.simple([backend.port]))
    resp = h.request(engine.listener_port("http"), "GET", "/")
    assert resp.status == 200 and resp.body == b"ok"
    for name in ("x-secret", "keep-alive", "upgrade", "proxy-connection"):
        assert not resp.has(name), (name, resp.headers)
    assert resp.header("x-public") == "2"


def test_connection_close_from_the_client_closes_after_the_response(echo_proxy):
    engine, port, backend = echo_proxy
    with h.Conn(port) as c:
        resp = c.request("GET", "/bye", headers=[("Connection", "close")])
        assert resp.status == 200 and resp.header("connection") == "close"
        assert c.at_eof()
    # The client's close is hop-by-hop: the upstream connection stays pooled.
    assert "close" not in (backend.requests[0].header("connection") or "")
    st = engine.stats()
    assert st["cluster.backend.upstream_cx_destroy"] == 0
    assert st["cluster.backend.upstream_cx_active"] == 1


def test_upstream_connection_close_is_not_passed_to_the_client(engine_factory, backend_factory):
    backend = backend_factory("closer", lambda req: h.Reply(200, [("x-path", req.target)], b"bye", close=True))
    engine = engine_factory(config=h.simple([backend.port]))
    with h.Conn(engine.listener_port("http")) as c:
        first = c.request("GET", "/1")
        assert first.status == 200 and first.header("connection") != "close"
        second = c.request("GET", "/2")
        assert second.status == 200 and second.header("x-path") == "/2"
    assert backend.accepted == 2


def test_upstream_closing_idle_pooled_connections_costs_no_request(engine_factory, backend_factory):
    """The upstream closes every connection after its response without saying
    so: the proxy must notice (or retry once on a fresh connection)."""
    raw = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
    backend = backend_factory("abrupt", lambda req: h.Reply(raw=raw, close=True))
    engine = engine_factory(config=h.simple([backend.port]))
    with h.Conn(engine.listener_port("http")) as c:
        for i in range(20):
            resp = c.request("GET", f"/{i}")
            assert (resp.status, resp.body) == (200, b"ok"), i
    assert backend.count() == 20


def test_x_forwarded_for_is_appended_and_x_forwarded_proto_set(echo_proxy):
    _, port, backend = echo_proxy
    assert h.request(port, "GET", "/a").status == 200
    assert h.request(port, "GET", "/b", headers=[("X-Forwarded-For", "203.0.113.7")]).status == 200
    first, second = backend.requests
    assert first.headers_named("x-forwarded-for") == ["127.0.0.1"]
    assert second.headers_named("x-forwarded-for") == ["203.0.113.7, 127.0.0.1"]
    assert first.headers_named("x-forwarded-proto") == ["http"]


def test_x_request_id_generated_as_uuid4_when_absent_and_kept_when_present(echo_proxy):
    _, port, backend = echo_proxy
    for _ in range(3):
        assert h.request(port, "GET", "/gen").status == 200
    assert h.request(port, "GET", "/keep", headers=[("X-Request-Id", "client-chosen-42")]).status == 200
    ids = [r.headers_named("x-request-id") for r in backend.requests]
    for got in ids[:3]:
        assert len(got) == 1 and UUID4.match(got[0]), got
    assert len({got[0] for got in ids[:3]}) == 3
    assert ids[3] == ["client-chosen-42"]


def test_no_request_id_when_generation_is_off(engine_factory, backend_factory):
    backend = backend_factory("echo")
    engine = engine_factory(config=h.simple([backend.port], generate_request_id=False))
    port = engine.listener_port("http")
    assert h.request(port, "GET", "/").status == 200
    assert h.request(port, "GET", "/", headers=[("X-Request-Id", "mine")]).status == 200
    assert [r.headers_named("x-request-id") for r in backend.requests] == [[], ["mine"]]


# ---- methods ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["M-SEARCH", "PROPFIND", "MKCOL", "PURGE", "X_CUSTOM.1~"])
def test_extension_method_with_origin_form_is_forwarded(echo_proxy, method):
    """Any valid method token (RFC 9110 5.6.2) with an origin-form target goes through
    unchanged (the asterisk form stays OPTIONS-only: test_http_smuggling)."""
    _, port, backend = echo_proxy
    assert h.request(port, method, "/x").status == 200
    (req,) = backend.requests
    assert (req.method, req.target) == (method, "/x")


# ---- HTTP/1.0 clients -----------------------------------------------------------------------------

HTTP10 = {"http_protocol_options": {"accept_http_10": True}}


@pytest.fixture
def http10_proxy(engine_factory, backend_factory):
    """echo_proxy with http_protocol_options.accept_http_10."""
    backend = backend_factory("echo")
    engine = engine_factory(config=h.simple([backend.port], **HTTP10))
    return engine, engine.listener_port("http"), backend


def test_http10_gets_426_unless_accepted(echo_proxy):
    """Envoy's (and Istio's) default: HTTP/1.0 is answered 426 Upgrade Required."""
    engine, port, backend = echo_proxy
    with h.Conn(port) as c:
        resp = c.request("GET", "/old", version="HTTP/1.0")
        assert (resp.status, resp.reason) == (426, "Upgrade Required")
        assert c.at_eof()
    assert backend.count() == 0
    assert h.stat(engine, "http.http.downstream_rq_4xx") == 1
    assert h.stat(engine, "http.http.downstream_cx_protocol_error") == 1


def test_http10_client_gets_a_content_length_response_and_a_close(http10_proxy):
    _, port, backend = http10_proxy
    with h.Conn(port) as c:
        resp = c.request("GET", "/old", version="HTTP/1.0")
        assert resp.status == 200 and resp.header("content-length") == "0"
        assert c.at_eof()
    with h.Conn(port) as c:  # no Host at all: HTTP/1.0 allows it
        resp = c.request("POST", "/nohost", host=None, body=b"ten bytes!", version="HTTP/1.0")
        assert (resp.status, resp.body) == (200, b"ten bytes!")
        assert c.at_eof()
    assert [r.target for r in backend.requests] == ["/old", "/nohost"]


def test_default_host_for_http10(engine_factory, backend_factory):
    backend = backend_factory("echo")
    options = {"http_protocol_options": {"accept_http_10": True, "default_host_for_http_10": "legacy.svc"}}
    vhosts = [h.vhost("legacy", ["legacy.svc"], [h.route("/", "backend")])]
    engine = engine_factory(config=h.bootstrap([h.hcm_listener("http", vhosts, **options)],
                                               [h.http_cluster("backend", [backend.port])]))
    port = engine.listener_port("http")
    with h.Conn(port) as c:
        resp = c.request("GET", "/nohost", host=None, version="HTTP/1.0")
        assert resp.status == 200  # routed by the default host
    with h.Conn(port) as c:  # a Host of its own is kept
        assert c.request("GET", "/other", host="other.svc", version="HTTP/1.0").status == 404
    assert [r.headers_named("host") for r in backend.requests] == [["legacy.svc"]]


def test_http10_keep_alive_client(http10_proxy):
    _, port, backend = http10_proxy
    with h.Conn(port) as c:
        for i in range(3):
            resp = c.request("GET", f"/ka{i}", version="HTTP/1.0", headers=[("Connection", "keep-alive")])
            assert resp.status == 200 and resp.header("connection") == "keep-alive"
    assert backend.count() == 3


def test_http10_client_never_gets_a_chunked_response(engine_factory, backend_factory):
    backend = backend_factory("chunky", lambda req: h.Reply(200, [], stream=[b"part one, ", b"part two"]))
    engine = engine_factory(config=h.simple([backend.port], **HTTP10))
    with h.Conn(engine.listener_port("http")) as c:
        c.send(h.build_request("GET", "/", version="HTTP/1.0"))
        resp = c.response()
        assert resp.status == 200
        assert not resp.has("transfer-encoding"), resp.headers
        assert resp.body == b"part one, part two"


# ---- sizes of heads --------------------------------------------------------------------------------


def test_request_head_of_40_kib_is_forwarded_whole(echo_proxy):
    _, port, backend = echo_proxy
    big = [(f"X-Big-{i}", os.urandom(512).hex()) for i in range(40)]
    resp = h.request(port, "POST", "/bighead", headers=big, body=b"payload")
    assert (resp.status, resp.body) == (200, b"payload")
    (req,) = backend.requests
    assert [(k, v) for k, v in req.headers if k.startswith("X-Big-")] == big


def test_response_head_of_20_kib_is_forwarded(engine_factory, backend_factory):
    value = "v" * (20 * 1024)
    backend = backend_factory("bighead", lambda req: h.Reply(200, [("x-large", value)], b"ok"))
    engine = engine_factory(config=h.simple([backend.port]))
    resp = h.request(engine.listener_port("http"), "GET", "/")
    assert resp.status == 200 and resp.header("x-large") == value and resp.body == b"ok"


# ---- odd but valid upstream responses ----------------------------------------------------------


def test_response_delimited_by_close_reaches_the_client_whole(engine_factory, backend_factory):
    body = os.urandom(50_000)
    backend = backend_factory("eof", lambda req: h.Reply(raw=b"HTTP/1.1 200 OK\r\n\r\n" + body, close=True))
    engine = engine_factory(config=h.simple([backend.port]))
    with h.Conn(engine.listener_port("http")) as c:
        resp = c.request("GET", "/")
        assert resp.status == 200 and sha(resp.body) == sha(body)
        assert c.at_eof()


def test_interim_responses_from_the_upstream_are_not_forwarded(engine_factory, backend_factory):
    raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nfinal"
    backend = backend_factory("interim", lambda req: h.Reply(raw=raw))
    engine = engine_factory(config=h.simple([backend.port]))
    with h.Conn(engine.listener_port("http")) as c:
        resp = c.request("POST", "/", body=b"x")
        assert (resp.status, resp.body) == (200, b"final")
        assert c.request("GET", "/again").body == b"final"


@pytest.mark.parametrize("path", ["/healthz", "/dead"])
def test_head_to_a_local_reply_has_no_body(engine_factory, path):
    doc = h.bootstrap([h.hcm_listener("http", routes=[
        h.route("/healthz", direct_response={"status": 200, "body": {"inline_string": "ok\n"}}),
        h.route("/dead", "dead")])], [h.http_cluster("dead", [free_port()])])
    engine = engine_factory(config=doc)
    with h.Conn(engine.listener_port("http")) as c:
        head = c.request("HEAD", path)
        assert head.status in (200, 503) and int(head.header("content-length")) > 0
        after = c.request("GET", "/healthz")
        assert (after.status, after.body) == (200, b"ok\n")
