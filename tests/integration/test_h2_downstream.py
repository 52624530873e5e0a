"""HTTP/2 from the client to meshcore (the downstream codec), HTTP/1.1 to the
upstream: real clients (curl, h2load, grpcio, the h2 package) through h2c
with prior knowledge and h2 over TLS (ALPN)."""
from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import time

import pytest
from support import http as h

from meshcore import ca

CURL, H2LOAD = shutil.which("curl"), shutil.which("h2load")
needs_curl = pytest.mark.skipif(CURL is None, reason="curl is not installed")
TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3."


def curl(*args, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([CURL, "-s", "-S", "--max-time", "60", *args], input=stdin, capture_output=True,
                          timeout=120)


def h2_config(ports, **kw) -> dict:
    return h.simple(ports, codec_type="AUTO", **kw)


@pytest.fixture
def echo(engine_factory, backend_factory):
    backend = backend_factory("echo")
    engine = engine_factory(config=h2_config([backend.port]))
    return engine, f"http://127.0.0.1:{engine.listener_port('http')}", backend


@needs_curl
def test_prior_knowledge_get_and_post(echo):
    engine, base, backend = echo
    out = curl("--http2-prior-knowledge", "-i", f"{base}/a?x=1")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(b"HTTP/2 200"), out.stdout
    body = os.urandom(3 << 20)
    out = curl("--http2-prior-knowledge", "--data-binary", "@-", f"{base}/up", stdin=body)
    assert out.returncode == 0, out.stderr
    assert hashlib.sha256(out.stdout).digest() == hashlib.sha256(body).digest()
    first, second = backend.requests
    assert first.method == "GET" and first.target == "/a?x=1" and first.header("host") == base[7:]
    assert second.method == "POST" and second.body_len == len(body) and not second.chunked
    assert h.stat(engine, "http.http.downstream_cx_http2_total") == 2  # one per curl
    assert h.stat(engine, "http.http.downstream_rq_2xx") == 2


@needs_curl
def test_body_without_length_is_chunked_upstream(echo):
    engine, base, backend = echo
    body = os.urandom(300_000)
    out = curl("--http2-prior-knowledge", "-T", "-", f"{base}/put", stdin=body)
    assert out.returncode == 0, out.stderr
    assert out.stdout == body
    (req,) = backend.requests
    assert req.method == "PUT" and req.chunked and req.body == body


@needs_curl
def test_http1_still_served_on_an_auto_listener(echo):
    engine, base, backend = echo
    out = curl("--http1.1", "-i", f"{base}/one")
    assert out.stdout.startswith(b"HTTP/1.1 200"), out.stdout
    assert h.stat(engine, "http.http.downstream_cx_http2_total") == 0


def test_codec_type_http1_refuses_the_preface(engine_factory, backend_factory):
    backend = backend_factory("echo")
    engine = engine_factory(config=h.simple([backend.port], codec_type="HTTP1"))
    with socket.create_connection(("127.0.0.1", engine.listener_port("http")), timeout=10) as s:
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        data = s.recv(4096)
    assert data.startswith(b"HTTP/1.1 4") or data.startswith(b"HTTP/1.1 5"), data
    assert backend.requests == []


@needs_curl
def test_codec_type_http2_speaks_only_http2(engine_factory, backend_factory):
    backend = backend_factory("echo")
    engine = engine_factory(config=h.simple([backend.port], codec_type="HTTP2"))
    base = f"http://127.0.0.1:{engine.listener_port('http')}"
    assert curl("--http2-prior-knowledge", "-i", f"{base}/x").stdout.startswith(b"HTTP/2 200")
    with socket.create_connection(("127.0.0.1", engine.listener_port("http")), timeout=10) as s:
        s.sendall(b"GET /x HTTP/1.1\r\nHost: svc\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):  # our SETTINGS, then the close (curl would leave at the SETTINGS)
            data += chunk
    assert b"HTTP/1.1" not in data
    assert h.stat(engine, "http.http.downstream_cx_protocol_error") == 1


def test_trailers_of_a_chunked_response_become_http2_trailers(engine_factory, backend_factory):
    import h2.config
    import h2.connection
    import h2.events

    def handler(req):
        trailer = b"0\r\ngrpc-status: 0\r\nx-checksum: abc\r\n\r\n"
        head = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n"
        return h.Reply(raw=head + b"5\r\nhello\r\n" + trailer)

    backend = backend_factory("trailers", handler)
    engine = engine_factory(config=h2_config([backend.port]))
    with socket.create_connection(("127.0.0.1", engine.listener_port("http")), timeout=10) as s:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        conn.send_headers(1, [(":method", "GET"), (":path", "/t"), (":scheme", "http"), (":authority", "svc")],
                          end_stream=True)
        s.sendall(conn.data_to_send())
        headers, body, trailers, ended = None, b"", None, False
        while not ended:
            data = s.recv(65536)
            assert data, "connection closed"
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.ResponseReceived):
                    headers = dict(ev.headers)
                elif isinstance(ev, h2.events.DataReceived):
                    body += ev.data
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.TrailersReceived):
                    trailers = dict(ev.headers)
                elif isinstance(ev, h2.events.StreamEnded):
                    ended = True
            s.sendall(conn.data_to_send())
    assert headers[b":status"] == b"200" and b"transfer-encoding" not in headers
    assert body == b"hello"
    assert trailers == {b"grpc-status": b"0", b"x-checksum": b"abc"}
    assert h.stat(engine, "http.http.http2.trailers") == 1


@needs_curl
def test_routing_split_retries_and_rbac_per_stream(engine_factory, backend_factory):
    v1, v2 = backend_factory("v1"), backend_factory("v2")
    failing = backend_factory("bad", lambda req: h.Reply(503))
    routes = [
        h.route("/denied", "v1"),
        h.route("/retry", "flaky", route={"retry_policy": {"retry_on": "5xx", "num_retries": 3,
                                                           "retry_host_predicate": h.previous_hosts()}}),
        h.route("/", route={"weighted_clusters": {"clusters": [{"name": "v1", "weight": 1},
                                                               {"name": "v2", "weight": 1}]}}),
    ]
    rbac = {"name": "envoy.filters.http.rbac", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
        "rules": {"action": "DENY", "policies": {"no-denied": {
            "permissions": [{"url_path": {"path": {"prefix": "/denied"}}}], "principals": [{"any": True}]}}}}}
    doc = h.bootstrap([h.hcm_listener("http", routes=routes, codec_type="AUTO", http_filters=[rbac])],
                      [h.http_cluster("v1", [v1.port]), h.http_cluster("v2", [v2.port]),
                       h.http_cluster("flaky", [failing.port, v2.port])])
    engine = engine_factory(concurrency=1, config=doc)  # one worker: one smooth WRR sequence
    base = f"http://127.0.0.1:{engine.listener_port('http')}"
    for i in range(10):  # one connection each: curl 7.88 cannot reuse an h2c connection (exit 16)
        out = curl("--http2-prior-knowledge", "-o", "/dev/null", "-w", "%{http_code}", f"{base}/s{i}")
        assert out.stdout == b"200", out.stderr
    assert len(v1.requests) == 5 and len(v2.requests) == 5  # smooth weighted round robin, 1:1
    out = curl("--http2-prior-knowledge", "-o", "/dev/null", "-w", "%{http_code}", f"{base}/denied")
    assert out.stdout == b"403"
    out = curl("--http2-prior-knowledge", "-i", f"{base}/retry")
    assert out.stdout.startswith(b"HTTP/2 200"), out.stdout
    assert h.stat(engine, "cluster.flaky.upstream_rq_retry") >= 1
    assert h.stat(engine, "http.http.rbac.denied") == 1
    assert h.stat(engine, "http.http.downstream_cx_http2_total") == 12


@needs_curl
def test_access_log_says_http2(engine_factory, backend_factory, tmp_path):
    backend = backend_factory("echo")
    log = tmp_path / "access.log"
    access_log = [{"name": "envoy.access_loggers.file", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog", "path": str(log),
        "log_format": {"text_format_source": {"inline_string": "%PROTOCOL% %REQ(:METHOD)% %RESPONSE_CODE%\n"}}}}]
    engine = engine_factory(config=h2_config([backend.port], access_log=access_log))
    base = f"http://127.0.0.1:{engine.listener_port('http')}"
    assert curl("--http2-prior-knowledge", f"{base}/x").returncode == 0
    assert curl("--http1.1", f"{base}/y").returncode == 0
    for _ in range(100):
        engine.flush_access_logs()
        if log.exists() and len(log.read_text().splitlines()) >= 2:
            break
        time.sleep(0.05)
    assert log.read_text().splitlines() == ["HTTP/2 GET 200", "HTTP/1.1 GET 200"]


@pytest.fixture(scope="module")
def server_certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    authority = ca.CertificateAuthority.init(str(d / "ca"), "cluster.local", intermediate=False)
    return ca.write_workload_dir(authority, str(d / "server"), "default", "server")


@needs_curl
@pytest.mark.parametrize("alpn", [["h2", "http/1.1"], []])
def test_h2_over_tls(engine_factory, backend_factory, server_certs, alpn):
    """ALPN h2 when the listener offers it; without ALPN, AUTO still finds the preface."""
    backend = backend_factory("echo")
    listener = h.hcm_listener("tls", routes=[h.route("/", "backend")], codec_type="AUTO")
    common = {"tls_certificates": [{"certificate_chain": {"filename": server_certs["cert-chain.pem"]},
                                    "private_key": {"filename": server_certs["key.pem"]}}]}
    if alpn:
        common["alpn_protocols"] = alpn
    listener["filter_chains"][0]["transport_socket"] = {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {"@type": TLS + "DownstreamTlsContext", "common_tls_context": common}}
    engine = engine_factory(config=h.bootstrap([listener], [h.http_cluster("backend", [backend.port])]))
    url = f"https://127.0.0.1:{engine.listener_port('tls')}/secure"
    flag = "--http2" if alpn else "--http2-prior-knowledge"
    body = os.urandom(1 << 20)
    out = curl("-k", flag, "-i", "--data-binary", "@-", url, stdin=body)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(b"HTTP/2 200"), out.stdout[:200]
    assert out.stdout.endswith(body)
    if alpn:  # and HTTP/1.1 clients still get HTTP/1.1
        assert curl("-k", "--http1.1", "-i", url).stdout.startswith(b"HTTP/1.1 200")
    assert h.stat(engine, "http.tls.downstream_cx_http2_total") == 1


@pytest.mark.skipif(H2LOAD is None, reason="h2load (nghttp2-client) is not installed")
def test_h2load_many_concurrent_streams(echo):
    engine, base, backend = echo
    out = subprocess.run([H2LOAD, "-n", "2000", "-c", "4", "-m", "20", f"{base}/load"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "2000 succeeded, 0 failed, 0 errored" in out.stdout, out.stdout
    assert h.stat(engine, "http.http.downstream_rq_2xx") == 2000
    assert h.stat(engine, "http.http.downstream_cx_http2_total") == 4


def test_grpc_local_reply_is_trailers_only_unavailable(engine_factory):
    grpc = pytest.importorskip("grpc")
    doc = h.bootstrap([h.hcm_listener("http", routes=[h.route("/", "empty")], codec_type="AUTO")],
                      [h.http_cluster("empty", [])])
    engine = engine_factory(config=doc)
    with grpc.insecure_channel(f"127.0.0.1:{engine.listener_port('http')}") as ch:
        call = ch.unary_unary("/pkg.Svc/Method", request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.RpcError) as err:
            call(b"\x00\x00\x00\x00\x00", timeout=10)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert err.value.details() == "no healthy upstream"
    assert h.stat(engine, "http.http.downstream_rq_2xx") == 1


def test_bad_http2_options_are_refused_by_name(engine_factory):
    import meshcore.errors

    engine = engine_factory()
    with pytest.raises(meshcore.errors.ConfigError, match="http2_protocol_options.max_concurrent_streams"):
        engine.apply(h2_config([1], http2_protocol_options={"max_concurrent_streams": 0}))


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


@needs_curl
def test_100mb_download_and_upload_with_memory_bounded(engine_factory, backend_factory):
    """100 MiB each way through a rate-limited client; the proxy (in this
    process) holds windows and one buffer per stream, not the transfer."""
    piece = b"x" * 65536

    def handler(req):
        if req.method == "GET":
            return h.Reply(stream=(piece for _ in range(1600)))  # chunked, 100 MiB
        return h.Reply(body=str(req.body_len).encode())

    backend = backend_factory("big", handler, store_body=False, hash_body=False)
    engine = engine_factory(config=h2_config([backend.port]))
    base = f"http://127.0.0.1:{engine.listener_port('http')}"
    before = rss_kib()
    out = curl("--http2-prior-knowledge", "--limit-rate", "200M", "-o", "/dev/null", "-w", "%{size_download}",
               f"{base}/down")
    assert out.stdout == b"104857600", out.stderr
    out = subprocess.run(f"head -c 104857600 /dev/zero | {CURL} -s -S --http2-prior-knowledge --limit-rate 200M "
                         f"-T - {base}/up", shell=True, capture_output=True, timeout=120)
    assert out.stdout == b"104857600", out.stderr
    grown = rss_kib() - before
    with open("/proc/self/maps") as f:
        if "libasan" in f.read():
            return  # ASan's quarantine keeps freed memory resident: RSS says nothing there
    assert grown < 40 * 1024, f"RSS grew by {grown} KiB"


@needs_curl
def test_drain_sends_goaway_and_lets_the_stream_finish(engine_factory, backend_factory):
    import threading

    backend = backend_factory("slow", lambda req: (time.sleep(1.0), h.Reply(body=b"done"))[1])
    engine = engine_factory(config=h2_config([backend.port]))
    url = f"http://127.0.0.1:{engine.listener_port('http')}/d"
    result = {}
    client = threading.Thread(target=lambda: result.update(out=curl("--http2-prior-knowledge", "-i", url)))
    client.start()
    backend.wait_requests(1)
    engine.stop(drain_timeout=10)  # GOAWAY(NO_ERROR) now; the stream in flight finishes
    client.join()
    assert result["out"].returncode == 0, result["out"].stderr
    assert result["out"].stdout.startswith(b"HTTP/2 200") and result["out"].stdout.endswith(b"done")
    assert h.stat(engine, "http.http.http2.goaway_sent") == 1


@needs_curl
@pytest.mark.parametrize("shape", ["until-close", "head", "no-content"])
def test_response_framings(engine_factory, backend_factory, shape):
    """Bodies ended by the upstream closing, HEAD, and 204 all end their stream."""
    def handler(req):
        if shape == "until-close":
            return h.Reply(body=b"y" * 100_000, no_length=True, close=True)
        if shape == "no-content":
            return h.Reply(status=204)
        return h.Reply(body=b"z" * 1000)

    backend = backend_factory("framing", handler)
    engine = engine_factory(config=h2_config([backend.port]))
    url = f"http://127.0.0.1:{engine.listener_port('http')}/f"
    args = ["-I"] if shape == "head" else ["-i"]
    out = curl("--http2-prior-knowledge", *args, url)
    assert out.returncode == 0, out.stderr
    head, _, body = out.stdout.partition(b"\r\n\r\n")
    if shape == "until-close":
        assert head.startswith(b"HTTP/2 200") and body == b"y" * 100_000
    elif shape == "head":
        assert head.startswith(b"HTTP/2 200") and b"content-length: 1000" in head and body == b""
    else:
        assert head.startswith(b"HTTP/2 204") and body == b""


def test_new_streams_follow_a_config_change_on_an_open_connection(engine_factory, backend_factory):
    """A long-lived HTTP/2 connection (gRPC's kind) gets new routes for its
    next streams, as Envoy applies new route config per stream."""
    import h2.config
    import h2.connection
    import h2.events

    backend = backend_factory("echo")
    engine = engine_factory(concurrency=1, config=h2_config([backend.port]))
    port = engine.listener_port("http")

    def ask(s, conn, sid):
        conn.send_headers(sid, [(":method", "GET"), (":path", "/x"), (":scheme", "http"), (":authority", "svc")],
                          end_stream=True)
        s.sendall(conn.data_to_send())
        status = None
        while True:
            for ev in conn.receive_data(s.recv(65536)):
                if isinstance(ev, h2.events.ResponseReceived):
                    status = dict(ev.headers)[b":status"]
                if isinstance(ev, h2.events.StreamEnded) and ev.stream_id == sid:
                    s.sendall(conn.data_to_send())
                    return status
            s.sendall(conn.data_to_send())

    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        s.sendall(conn.data_to_send())
        assert ask(s, conn, 1) == b"200"
        doc = h2_config([backend.port], routes=[h.route("/", direct_response={"status": 418})])
        engine.apply(doc)
        assert engine.listener_port("http") == port
        for _ in range(200):  # the worker takes the new snapshot at its next loop turn: a new connection shows it
            if h.request(port, "GET", "/x").status == 418:
                break
            time.sleep(0.05)
        assert ask(s, conn, 3) == b"418"
