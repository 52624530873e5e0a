"""Request smuggling defences: malformed or ambiguous requests get the right
error status, the connection is closed, and the upstream sees nothing at all.

Each request is written in one send from a raw socket. "Nothing" is checked
three ways: the proxy opened no upstream connection and counted no upstream
request, and the Backend parsed no request head.
"""
import pytest
from support import http as h
from support.net import wait_until

HEAD = b"POST / HTTP/1.1\r\nHost: svc\r\n"


def post(*fields: bytes, body: bytes = b"") -> bytes:
    return HEAD + b"".join(f + b"\r\n" for f in fields) + b"\r\n" + body


def chunked_post(body: bytes) -> bytes:
    return post(b"Transfer-Encoding: chunked", body=body)


def get_line(line: bytes, *fields: bytes) -> bytes:
    return line + b"\r\n" + b"Host: svc\r\n" + b"".join(f + b"\r\n" for f in fields) + b"\r\n"


CASES = {
    # framing ambiguity
    "cl-and-te": (post(b"Content-Length: 5", b"Transfer-Encoding: chunked", body=b"0\r\n\r\n"), 400),
    "te-and-cl": (post(b"Transfer-Encoding: chunked", b"Content-Length: 5", body=b"0\r\n\r\n"), 400),
    "two-differing-cl": (post(b"Content-Length: 5", b"Content-Length: 6", body=b"hello!"), 400),
    "cl-list-differing": (post(b"Content-Length: 5, 6", body=b"hello!"), 400),
    "cl-letters": (post(b"Content-Length: abc"), 400),
    "cl-negative": (post(b"Content-Length: -1"), 400),
    "cl-plus-sign": (post(b"Content-Length: +5", body=b"hello"), 400),
    "cl-hex": (post(b"Content-Length: 0x5", body=b"hello"), 400),
    "cl-decimal-point": (post(b"Content-Length: 5.0", body=b"hello"), 400),
    "cl-empty": (post(b"Content-Length: "), 400),
    "cl-inner-space": (post(b"Content-Length: 1 0", body=b"0123456789"), 400),
    "cl-too-large": (post(b"Content-Length: 99999999999999999999999"), 400),
    "te-gzip-chunked": (post(b"Transfer-Encoding: gzip, chunked", body=b"0\r\n\r\n"), 501),
    "te-chunked-gzip": (post(b"Transfer-Encoding: chunked, gzip", body=b"0\r\n\r\n"), 400),
    "te-identity": (post(b"Transfer-Encoding: identity", body=b"0\r\n\r\n"), 501),
    "te-chunked-twice": (post(b"Transfer-Encoding: chunked, chunked", body=b"0\r\n\r\n"), 400),
    "te-two-fields": (post(b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked", body=b"0\r\n\r\n"), 400),
    "te-space-before-colon": (post(b"Transfer-Encoding : chunked", body=b"0\r\n\r\n"), 400),
    "te-vertical-tab": (post(b"Transfer-Encoding: \x0bchunked", body=b"0\r\n\r\n"), 400),
    "te-http10": (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    # field syntax
    "obs-fold": (post(b"X-Folded: first", b" second"), 400),
    "obs-fold-tab": (post(b"X-Folded: first", b"\tsecond"), 400),
    "ws-before-colon": (post(b"X-Name : value"), 400),
    "tab-before-colon": (post(b"Content-Length\t: 0"), 400),
    "cr-in-value": (post(b"X-Value: a\rb"), 400),
    "lf-in-value": (post(b"X-Value: a\nX-Injected: b"), 400),
    "nul-in-value": (post(b"X-Value: a\x00b"), 400),
    "del-in-value": (post(b"X-Value: a\x7fb"), 400),
    "bad-name-paren": (post(b"X(Name): v"), 400),
    "bad-name-space": (post(b"X Name: v"), 400),
    "bad-name-slash": (post(b"X/Name: v"), 400),
    "bad-name-8bit": (post(b"X-N\xe4me: v"), 400),
    "empty-name": (post(b": v"), 400),
    "no-colon": (post(b"X-Name"), 400),
    # chunked bodies
    "chunk-size-not-hex": (chunked_post(b"zz\r\nhello\r\n0\r\n\r\n"), 400),
    "chunk-size-negative": (chunked_post(b"-5\r\nhello\r\n0\r\n\r\n"), 400),
    "chunk-size-leading-space": (chunked_post(b" 5\r\nhello\r\n0\r\n\r\n"), 400),
    "chunk-size-trailing-space": (chunked_post(b"5 \r\nhello\r\n0\r\n\r\n"), 400),
    "chunk-size-0x": (chunked_post(b"0x5\r\nhello\r\n0\r\n\r\n"), 400),
    "chunk-size-overflow": (chunked_post(b"1" + b"0" * 16 + b"5\r\nhello\r\n0\r\n\r\n"), 400),
    "chunk-size-empty": (chunked_post(b"\r\nhello\r\n0\r\n\r\n"), 400),
    "chunk-data-too-long": (chunked_post(b"5\r\nhello!!\r\n0\r\n\r\n"), 400),
    "chunk-bare-lf": (chunked_post(b"5\nhello\r\n0\r\n\r\n"), 400),
    "chunk-ext-empty": (chunked_post(b"5;\r\nhello\r\n0\r\n\r\n"), 400),
    "chunk-ext-no-name": (chunked_post(b"5;=v\r\nhello\r\n0\r\n\r\n"), 400),
    "chunk-ext-space": (chunked_post(b"5; a=b\r\nhello\r\n0\r\n\r\n"), 400),
    "chunk-ext-bad-value": (chunked_post(b"5;a=b c\r\nhello\r\n0\r\n\r\n"), 400),
    "chunk-ext-open-quote": (chunked_post(b'5;a="b\r\nhello\r\n0\r\n\r\n'), 400),
    "chunk-ext-ctl": (chunked_post(b"5;a=\x01\r\nhello\r\n0\r\n\r\n"), 400),
    "trailer-obs-fold": (chunked_post(b"5\r\nhello\r\n0\r\nX-T: a\r\n b\r\n\r\n"), 400),
    "trailer-bad-name": (chunked_post(b"5\r\nhello\r\n0\r\nX T: a\r\n\r\n"), 400),
    # request line
    "bad-method-char": (get_line(b"G@T / HTTP/1.1"), 400),
    "empty-method": (get_line(b" / HTTP/1.1"), 400),
    "bad-target-relative": (get_line(b"GET foo HTTP/1.1"), 400),
    "bad-target-fragment": (get_line(b"GET /a#b HTTP/1.1"), 400),
    "bad-target-ctl": (get_line(b"GET /a\x01b HTTP/1.1"), 400),
    "bad-target-space": (get_line(b"GET /a b HTTP/1.1"), 400),
    "asterisk-not-options": (get_line(b"GET * HTTP/1.1"), 400),
    "asterisk-m-search": (get_line(b"M-SEARCH * HTTP/1.1"), 400),  # RFC 9112 3.2.4: OPTIONS only
    "double-space": (get_line(b"GET  / HTTP/1.1"), 400),
    "bad-version-letters": (get_line(b"GET / HTTP/1.x"), 400),
    "bad-version-lowercase": (get_line(b"GET / http/1.1"), 400),
    "bad-version-no-dot": (get_line(b"GET / HTTP/11"), 400),
    "bad-version-missing": (get_line(b"GET /"), 400),
    "version-2.0": (get_line(b"GET / HTTP/2.0"), 505),
    "version-1.2": (get_line(b"GET / HTTP/1.2"), 505),
    "version-0.9": (get_line(b"GET / HTTP/0.9"), 505),
    # line endings
    "bare-lf-everywhere": (b"GET / HTTP/1.1\nHost: svc\n\n", 400),
    "bare-lf-request-line": (b"GET / HTTP/1.1\nHost: svc\r\n\r\n", 400),
    "bare-lf-final": (b"GET / HTTP/1.1\r\nHost: svc\r\n\n", 400),
    "cr-without-lf": (b"GET / HTTP/1.1\rHost: svc\r\n\r\n", 400),
    # Host
    "missing-host": (b"GET / HTTP/1.1\r\nX-A: b\r\n\r\n", 400),
    "two-hosts": (get_line(b"GET / HTTP/1.1", b"Host: other"), 400),
    "host-with-space": (b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
    "host-with-slash": (b"GET / HTTP/1.1\r\nHost: svc/evil\r\n\r\n", 400),
    "host-with-at": (b"GET / HTTP/1.1\r\nHost: user@svc\r\n\r\n", 400),
    # limits
    "uri-over-8kib": (get_line(b"GET /" + b"a" * (8 * 1024) + b" HTTP/1.1"), 414),
    "head-over-60kib": (post(*[b"X-Fill-%03d: " % i + b"f" * 1000 for i in range(62)]), 431),
    "expect-unknown": (post(b"Expect: 200-ok", b"Content-Length: 0"), 417),
}


@pytest.fixture
def guarded(engine_factory, backend_factory):
    backend = backend_factory("guarded")
    engine = engine_factory(config=h.simple([backend.port]))
    return engine, engine.listener_port("http"), backend


def assert_nothing_forwarded(engine, backend):
    st = engine.stats()
    assert st["cluster.backend.upstream_cx_total"] == 0
    assert st["cluster.backend.upstream_rq_total"] == 0
    backend.settle(0)
    assert backend.accepted == 0 and backend.heads == 0


@pytest.mark.parametrize("case", list(CASES))
def test_rejected_closed_and_never_forwarded(guarded, case):
    engine, port, backend = guarded
    raw, status = CASES[case]
    with h.Conn(port) as c:
        c.send(raw)
        resp = c.response()
        assert resp.status == status, (case, resp.status, resp.body)
        assert resp.header("connection") == "close"
        assert c.at_eof(), "the proxy closes the connection after the error"
    h.wait_stat(engine, "http.http.downstream_cx_protocol_error", 1)
    assert_nothing_forwarded(engine, backend)


def test_smuggled_second_request_after_an_error_is_never_parsed(guarded):
    """A 'request' hidden in what a lenient parser would take for a body."""
    engine, port, backend = guarded
    hidden = b"GET /admin HTTP/1.1\r\nHost: svc\r\n\r\n"
    raw = post(b"Content-Length: 6", b"Transfer-Encoding: chunked", body=b"0\r\n\r\n" + hidden)
    with h.Conn(port) as c:
        c.send(raw)
        assert c.response().status == 400
        assert c.at_eof()
    assert_nothing_forwarded(engine, backend)


@pytest.mark.parametrize(("what", "raw"), [
    ("uri-exactly-8kib", get_line(b"GET /" + b"a" * (8 * 1024 - 1) + b" HTTP/1.1")),
    ("head-just-under-60kib", post(*[b"X-Fill-%03d: " % i + b"f" * 1000 for i in range(58)],
                                   b"Content-Length: 0")),
    ("chunk-ext-quoted", chunked_post(b'5;a="b c";d=e\r\nhello\r\n0;z=1\r\n\r\n')),
    ("cl-list-equal", post(b"Content-Length: 5, 5", body=b"hello")),
    ("leading-empty-lines", b"\r\n\r\n" + get_line(b"GET / HTTP/1.1")),
])
def test_limits_and_lenient_forms_still_pass(guarded, what, raw):
    engine, port, backend = guarded
    with h.Conn(port) as c:
        c.send(raw)
        assert c.response().status == 200, what
    assert backend.count() == 1


def test_invalid_chunk_arriving_later_is_never_forwarded(guarded):
    engine, port, backend = guarded
    with h.Conn(port) as c:
        c.send(chunked_post(b"5\r\nhello\r\n"))
        h.wait_stat(engine, "http.http.downstream_rq_total", 1)  # the proxy has the head
        try:  # a grace period in which a proxy that forwards early shows it
            wait_until(lambda: backend.heads >= 1, 0.5, what="an early forward")
        except AssertionError:
            pass
        c.send(b"zz\r\n")
        resp = c.response()
        assert resp.status == 400
        assert c.at_eof()
    backend.settle(h.stat(engine, "cluster.backend.upstream_cx_total"))
    assert backend.heads == 0, "the upstream received the head of a request the proxy rejected"
