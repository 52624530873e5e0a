"""A soak of the real `meshcore proxy` built with ASan + UBSan.

The extension is built with MESHCORE_SANITIZE=1 (setup.py: the C core and
the binding, -fsanitize=address,undefined) into build/asan-ext/ and loaded
into the interpreter with LD_PRELOAD of gcc's libasan and libubsan (leak
checking off: CPython keeps memory to its exit). The proxy then carries
mixed traffic for a bounded time (MESHCORE_SOAK_SECONDS, 30 s by default):
keep-alive and pipelined HTTP/1.1, HTTP/2 (h2load, h2c to the proxy and
from it to an HTTP/2 upstream; grpcio bidirectional calls message by
message, some cancelled mid-call), TLS, a TCP proxy, injected faults
(aborts and delays), an unreachable cluster, malformed and cut-short
requests, resets, and reloads with a changed config every few seconds. Any
sanitizer report fails the test; so does a wrong answer to a checked request.
"""
import http.client
import os
import pathlib
import random
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import zipfile

import grpc
import pytest
from support import config as cfg
from support.grpc_duplex import Pipe, ping_pong
from support.grpc_duplex import Server as GrpcServer
from support.h2_server import H2Server
from support.http import build_request, fault_config, fault_filter, hcm_listener, http_cluster, many, route
from support.net import free_port

from meshcore import ca

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = ROOT / "build" / "asan-ext"
SECONDS = float(os.environ.get("MESHCORE_SOAK_SECONDS", "30"))
TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
H2_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
H2LOAD = shutil.which("h2load")
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def _runtime(name: str) -> str | None:
    r = subprocess.run(["gcc", f"-print-file-name={name}"], capture_output=True, text=True)
    path = r.stdout.strip()
    return path if r.returncode == 0 and os.path.isabs(path) and os.path.exists(path) else None


@pytest.fixture(scope="module")
def asan_lib():
    libs = [_runtime("libasan.so"), _runtime("libubsan.so")]
    if not all(libs):
        pytest.skip("gcc's libasan/libubsan not found (scripts/setup.sh installs gcc)")
    env = dict(os.environ, MESHCORE_SANITIZE="1")
    # A wheel, as pip builds it (PEP 517): `setup.py build` refuses the
    # generated C's absolute path (it lives out of the tree, setup.py).
    shutil.rmtree(BUILD, ignore_errors=True)
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-build-isolation", "--no-deps",
                        "--disable-pip-version-check", "-w", str(BUILD / "wheel"), str(ROOT)],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, f"sanitized build failed:\n{r.stdout[-3000:]}\n{r.stderr[-6000:]}"
    (wheel,) = (BUILD / "wheel").glob("meshcore-*.whl")
    with zipfile.ZipFile(wheel) as z:
        z.extractall(BUILD / "lib")
    return str(BUILD / "lib"), ":".join(libs)


def _tls(tmp_path) -> dict:
    authority = ca.CertificateAuthority.init(str(tmp_path / "ca"), "cluster.local", intermediate=False)
    files = ca.write_workload_dir(authority, str(tmp_path / "server"), "default", "server")
    common = {"tls_certificates": [{"certificate_chain": {"filename": files["cert-chain.pem"]},
                                    "private_key": {"filename": files["key.pem"]}}]}
    return {"name": "envoy.transport_sockets.tls", "typed_config": {"@type": TLS, "common_tls_context": common}}


def _doc(backend_port: int, h2_port: int, grpc_port: int, dead_port: int, tls: dict, generation: int) -> dict:
    fault = fault_config(abort={"http_status": 503, "percentage": {"numerator": 20}},
                         delay={"fixed_delay": "0.01s", "percentage": {"numerator": 20}})
    routes = [route("/fault", "backend", typed_per_filter_config=fault),
              route("/dead", "dead"),
              route("/h2up", "h2backend"),
              route("/d.S/", "grpc"),
              route("/", "backend", request_headers_to_add=[
                  {"header": {"key": "x-generation", "value": str(generation)}}])]
    plain = hcm_listener("http", routes=routes, http_filters=[fault_filter()], codec_type="AUTO")
    secure = hcm_listener("https", routes=routes, http_filters=[fault_filter()])
    secure["filter_chains"][0]["transport_socket"] = tls
    listeners = [plain, secure, cfg.tcp_proxy_listener("tcp", "backend")]
    h2 = {"@type": "type.googleapis.com/" + H2_OPTIONS, "explicit_http_config": {"http2_protocol_options": {}}}
    clusters = [http_cluster("backend", [backend_port]), http_cluster("dead", [dead_port]),
                http_cluster("h2backend", [h2_port], typed_extension_protocol_options={H2_OPTIONS: h2}),
                http_cluster("grpc", [grpc_port], typed_extension_protocol_options={H2_OPTIONS: h2})]
    return {"node": {"id": "soak", "cluster": "tests"},
            "static_resources": {"listeners": listeners, "clusters": clusters}}


class Traffic:
    """Client threads; each records unexpected answers in `failures`."""

    def __init__(self, ports: dict, until: float):
        self.ports, self.until = ports, until
        self.failures: list[str] = []
        self.done = {"keepalive": 0, "pipelined": 0, "tls": 0, "tcp": 0, "h2": 0, "grpc": 0, "abuse": 0}
        self.tls_ctx = ssl.create_default_context()
        self.tls_ctx.check_hostname = False
        self.tls_ctx.verify_mode = ssl.CERT_NONE

    def _check(self, kind: str, status: int, path: str):
        ok = {"/dead": (503,), "/fault": (200, 503)}.get(path, (200,))
        if status not in ok:
            self.failures.append(f"{kind} {path}: {status}")
        self.done[kind] += 1

    def keepalive(self, port, kind="keepalive", context=None):
        rnd = random.Random(port)
        while time.monotonic() < self.until:
            conn = (http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=context) if context
                    else http.client.HTTPConnection("127.0.0.1", port, timeout=10))
            try:
                for _ in range(20):
                    path = rnd.choice(["/", "/a", "/fault", "/dead"])
                    body = os.urandom(rnd.randrange(0, 3000)) if rnd.random() < 0.3 else None
                    conn.request("POST" if body else "GET", path, body=body)
                    resp = conn.getresponse()
                    resp.read()
                    self._check(kind, resp.status, path)
                    if resp.getheader("connection", "").lower() == "close":
                        break
            except (OSError, http.client.HTTPException) as e:
                self.failures.append(f"{kind}: {e!r}")
            finally:
                conn.close()

    def pipelined(self):
        while time.monotonic() < self.until:
            try:
                for resp in many(self.ports["http"], 50, "/p", batch=25):
                    self._check("pipelined", resp.status, "/p")
            except (OSError, ConnectionError) as e:
                self.failures.append(f"pipelined: {e!r}")

    def tcp(self):
        while time.monotonic() < self.until:
            try:
                with socket.create_connection(("127.0.0.1", self.ports["tcp"]), timeout=10) as s:
                    s.sendall(build_request("GET", "/t", headers=[("Connection", "close")]))
                    data = b""
                    while chunk := s.recv(65536):
                        data += chunk
                    self._check("tcp", int(data.split(b" ", 2)[1]) if data else 0, "/t")
            except (OSError, ValueError, IndexError) as e:
                self.failures.append(f"tcp: {e!r}")

    def h2(self):
        """h2load over h2c: many streams per connection, to the HTTP/1.1
        backend and to the HTTP/2 one; every request must get a 2xx."""
        base = f"http://127.0.0.1:{self.ports['http']}"
        while time.monotonic() < self.until:
            out = subprocess.run([H2LOAD, "-n", "400", "-c", "4", "-m", "10", f"{base}/a", f"{base}/h2up"],
                                 capture_output=True, text=True, timeout=120)
            line = next((x for x in out.stdout.splitlines() if x.startswith("requests:")), "")
            if out.returncode != 0 or "400 succeeded" not in line:
                self.failures.append(f"h2: {line or out.stderr[-300:]}")
            self.done["h2"] += 1

    def grpc(self):
        """Bidirectional gRPC calls answered message by message; every
        fifth is cancelled after its first answer."""
        rnd = random.Random(11)
        with grpc.insecure_channel(f"127.0.0.1:{self.ports['http']}") as ch:
            while time.monotonic() < self.until:
                try:
                    kind = "cancelled" if rnd.random() < 0.2 else "message by message"
                    if kind == "cancelled":
                        pipe = Pipe()
                        call = ch.stream_stream("/d.S/Echo")(iter(pipe), timeout=10)
                        pipe.send(b"x" * rnd.randrange(1, 50000))
                        next(call)
                        call.cancel()
                        pipe.close()
                    else:
                        msgs = [b"m%d" % rnd.randrange(1000) * rnd.randrange(1, 3000) for _ in range(5)]
                        answers, _ = ping_pong(ch, "/d.S/Echo", msgs, timeout=10)
                        if answers != [b"g:" + m.upper() for m in msgs]:
                            self.failures.append("grpc: wrong answers")
                    self.done["grpc"] += 1
                except grpc.RpcError as e:
                    left = self.until - time.monotonic()
                    self.failures.append(f"grpc {kind}: {e.code()} {e.details()} ({left:.1f} s before the end)")

    def abuse(self):
        """Unchecked: malformed, cut short, reset, a ClientHello to plaintext."""
        rnd = random.Random(7)
        junk = [b"GET / HTTP/1.1\r\nHost: x\r\n", b"\x00\x01\x02garbage\r\n\r\n",
                b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc",
                b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", bytes.fromhex("160301020001000200"),
                PREFACE + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00\x10\x01\x04\x00\x00\x00\x01garbage",
                PREFACE + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00" + b"\x00\x00\x00\x03\x00\x00\x00\x00\x01" * 50]
        while time.monotonic() < self.until:
            # not the TCP listener: it would hand the junk to the strict test backend as is
            port = rnd.choice([self.ports["http"], self.ports["https"]])
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                s.sendall(rnd.choice(junk))
                if rnd.random() < 0.5:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                else:
                    try:
                        s.recv(1024)
                    except OSError:
                        pass
                s.close()
                self.done["abuse"] += 1
            except OSError:
                pass


def test_mixed_traffic_under_asan_and_ubsan(asan_lib, proxy_factory, backend_factory, tmp_path, monkeypatch,
                                            request):
    lib, preload = asan_lib
    logs = tmp_path / "san"
    logs.mkdir()
    monkeypatch.setenv("PYTHONPATH", lib)
    monkeypatch.setenv("LD_PRELOAD", preload)
    monkeypatch.setenv("ASAN_OPTIONS", f"detect_leaks=0:halt_on_error=1:log_path={logs}/asan")
    monkeypatch.setenv("UBSAN_OPTIONS", f"print_stacktrace=1:halt_on_error=1:log_path={logs}/ubsan")
    if H2LOAD is None:
        pytest.skip("h2load is not installed (scripts/setup.sh installs nghttp2-client)")
    backend = backend_factory()
    h2 = H2Server(lambda headers, body: ("reply", 200, [("content-type", "text/plain")], b"h2\n", None))
    request.addfinalizer(h2.stop)
    duplex = GrpcServer("g")
    request.addfinalizer(duplex.stop)
    dead = free_port()
    tls = _tls(tmp_path)
    proxy = proxy_factory(_doc(backend.port, h2.port, duplex.port, dead, tls, 0), start=False)
    proxy.start(timeout=120)
    monkeypatch.delenv("LD_PRELOAD")  # clients and tools below are not sanitized
    maps = pathlib.Path(f"/proc/{proxy.pid}/maps").read_text()
    assert "libasan" in maps and f"{lib}/meshcore/_core" in maps, "the proxy is not the sanitized build"
    ports = {name: proxy.listener_port(name) for name in ("http", "https", "tcp")}
    traffic = Traffic(ports, time.monotonic() + SECONDS)
    threads = [threading.Thread(target=traffic.keepalive, args=(ports["http"],)),
               threading.Thread(target=traffic.keepalive, args=(ports["https"], "tls", traffic.tls_ctx)),
               threading.Thread(target=traffic.pipelined), threading.Thread(target=traffic.tcp),
               threading.Thread(target=traffic.h2), threading.Thread(target=traffic.grpc),
               threading.Thread(target=traffic.abuse)]
    for t in threads:
        t.start()
    generation = 0
    while time.monotonic() < traffic.until:  # reloads under load, every 3 s
        time.sleep(3)
        generation += 1
        cfg.write_config(proxy.config_path, _doc(backend.port, h2.port, duplex.port, dead, tls, generation))
        proxy.reload_via_sighup(timeout=60)
    for t in threads:
        t.join(timeout=SECONDS + 60)
    reports = sorted(p.name for p in logs.iterdir())
    assert not reports, "sanitizer reports:\n" + "\n".join((logs / r).read_text()[-4000:] for r in reports)
    assert proxy.running(), proxy.log()[-4000:]
    assert not traffic.failures, traffic.failures[:20]
    assert all(traffic.done.values()), traffic.done
    assert generation >= 2
    proxy.send_signal(signal.SIGTERM)
    assert proxy.wait(60) == 0
    reports = sorted(p.name for p in logs.iterdir())
    assert not reports, "sanitizer reports at exit:\n" + "\n".join((logs / r).read_text()[-4000:] for r in reports)
    assert "runtime error:" not in proxy.log() and "AddressSanitizer" not in proxy.log()
