"""The HTTP connection manager's request limits on a real `meshcore proxy`:
headers_with_underscores_action, max_headers_count, max_request_headers_kb,
and the 10 s request_headers_timeout meshcore applies when the config sets
none (docs/hardening.md)."""
import socket
import time

import pytest
from support.http import Conn, build_request, simple


def _proxy(proxy_factory, backend, **hcm):
    proxy = proxy_factory(simple([backend.port], **hcm))
    proxy.port = proxy.listener_port("http")
    return proxy


@pytest.mark.parametrize("action", ["REJECT_REQUEST", "DROP_HEADER", "ALLOW"])
def test_headers_with_underscores(proxy_factory, backend_factory, action):
    backend = backend_factory()
    proxy = _proxy(proxy_factory, backend,
                   common_http_protocol_options={"headers_with_underscores_action": action})
    with Conn(proxy.port) as c:
        resp = c.request("GET", "/u", headers=[("x_user", "alice"), ("x-ok", "1")])
    st = proxy.stats()
    if action == "REJECT_REQUEST":
        assert resp.status == 400
        assert st["http.http.http1.requests_rejected_with_underscores_in_headers"] == 1
        assert st["http.http.downstream_rq_4xx"] == 1
        assert backend.count() == 0
        return
    assert resp.status == 200
    names = [n.lower() for n, _ in backend.wait_requests(1)[0].headers]
    assert "x-ok" in names
    assert ("x_user" in names) == (action == "ALLOW")
    assert st["http.http.http1.dropped_headers_with_underscores"] == (1 if action == "DROP_HEADER" else 0)


def test_max_headers_count_and_max_request_headers_kb(proxy_factory, backend_factory):
    backend = backend_factory()
    proxy = _proxy(proxy_factory, backend, max_request_headers_kb=2,
                   common_http_protocol_options={"max_headers_count": 5})
    with Conn(proxy.port) as c:
        assert c.request("GET", "/ok", headers=[(f"x-{i}", "v") for i in range(3)]).status == 200
    with Conn(proxy.port) as c:  # Host + 5 more: one too many
        assert c.request("GET", "/many", headers=[(f"x-{i}", "v") for i in range(5)]).status == 431
    with Conn(proxy.port) as c:  # a 3 KiB head against a 2 KiB limit
        assert c.request("GET", "/big", headers=[("x-big", "a" * 3000)]).status == 431
    st = proxy.stats()
    assert st["http.http.downstream_rq_4xx"] == 2
    assert st["http.http.downstream_cx_protocol_error"] == 2
    assert backend.count() == 1


def test_a_head_that_never_ends_gets_408_after_10s_by_default(proxy_factory, backend_factory):
    backend = backend_factory()
    proxy = _proxy(proxy_factory, backend)  # no request_headers_timeout in the config
    s = socket.create_connection(("127.0.0.1", proxy.port))
    s.sendall(b"GET / HTTP/1.1\r\nHost: svc\r\n")
    started = time.monotonic()
    s.settimeout(30)
    data = b""
    while True:  # a byte now and then does not extend it: it bounds the whole head
        try:
            chunk = s.recv(4096)
        except TimeoutError:
            break
        if not chunk:
            break
        data += chunk
    waited = time.monotonic() - started
    s.close()
    assert data.startswith(b"HTTP/1.1 408"), data
    assert waited >= 9, waited  # not before the default (a bound, not a timing threshold on speed)
    st = proxy.stats()
    assert st["http.http.downstream_rq_header_timeout"] == 1
    assert st["http.http.downstream_rq_4xx"] == 1


def test_an_idle_connection_holds_no_buffer(proxy_factory, backend_factory):
    """A connection that has sent nothing costs no pooled buffer: 300 idle
    connections cost their connection objects (about 4 KiB each, 1.2 MB, in
    64-object slabs per worker), not also a 16 KiB buffer each (+4.8 MB)."""
    backend = backend_factory()
    proxy = _proxy(proxy_factory, backend)
    with Conn(proxy.port) as c:  # warm up: pools and the first buffers exist
        assert c.request("GET", "/").status == 200

    def rss_kb():
        with open(f"/proc/{proxy.pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))

    before = rss_kb()
    idle = [socket.create_connection(("127.0.0.1", proxy.port)) for _ in range(300)]
    try:
        with Conn(proxy.port) as c:  # every idle one has been accepted by now (same listener, in order)
            c.send(build_request("GET", "/"))
            assert c.response().status == 200
        grown = rss_kb() - before
        assert grown < 3600, f"300 idle connections grew RSS by {grown} KiB"
    finally:
        for s in idle:
            s.close()
