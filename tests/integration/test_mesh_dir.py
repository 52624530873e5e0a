"""`meshcore proxy --mesh-dir DIR --workload default/frontend`: the seed example
(examples/mesh) run for real. Two HTTP upstreams (checkout v1 and v2), the
sidecar translated from Istio YAML, a keep-alive client sending Host:
checkout. The 90/10 split, retries that land on v1 when v2 fails, file edits
picked up without a restart, and a bad edit rejected while traffic goes on."""
from __future__ import annotations

import collections
import http.client
import http.server
import pathlib
import re
import shutil
import signal
import threading

import pytest
from support import config as cfg
from support.net import free_port, wait_until
from support.proxy import ProxyProcess, run_cli

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "mesh"


class Upstream:
    """An HTTP/1.1 server answering its version; `status` can be changed (e.g. 503)."""

    def __init__(self, version: str):
        self.version = version.encode()
        self.status = 200
        self.requests = 0
        self._lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True
            wbufsize = -1  # the head and the body in one write (flushed after each request)

            def do_GET(self):
                with outer._lock:
                    outer.requests += 1
                body = outer.version
                self.send_response(outer.status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = False  # server_close() joins the request threads
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"checkout-{version}", daemon=True)
        self._thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=10)


class Mesh:
    """The seed example in a temporary directory, with the upstreams' ports and a free service port."""

    def __init__(self, path: pathlib.Path, v1: Upstream, v2: Upstream):
        self.path, self.v1, self.v2 = path, v1, v2
        self.port = free_port()
        shutil.copytree(EXAMPLE, path)
        registry = (path / "registry.yaml").read_text()
        registry = registry.replace("port: 9080", f"port: {self.port}")
        registry = registry.replace("http: 18081", f"http: {v1.port}").replace("http: 18082", f"http: {v2.port}")
        cfg.write_config(path / "registry.yaml", registry)
        self.routing = (path / "checkout.yaml").read_text()

    def set_weights(self, v1: int, v2: int) -> None:
        text = re.sub(r"weight: 90", f"weight: {v1}", self.routing)
        cfg.write_config(self.path / "checkout.yaml", re.sub(r"weight: 10", f"weight: {v2}", text))

    @property
    def cluster(self) -> str:
        return f"cluster.outbound|{self.port}|{{}}|checkout.default.svc.cluster.local"


class Client:
    """One keep-alive connection to the sidecar's outbound listener, Host: checkout."""

    def __init__(self, port: int):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def get(self, n: int) -> collections.Counter:
        seen = collections.Counter()
        for _ in range(n):
            self.conn.request("GET", "/", headers={"Host": "checkout"})
            resp = self.conn.getresponse()
            seen[(resp.status, resp.read().decode())] += 1
        return seen

    def close(self):
        self.conn.close()


def mesh_proxy(tmp_path, mesh_dir, *, start=True, workload="default/frontend") -> ProxyProcess:
    p = ProxyProcess(mesh_dir, tmp_path / "proxy.log")
    p.args = ["--log-level", "info", "proxy", "--mesh-dir", str(mesh_dir), "--workload", workload,
              "--concurrency", "2", "--admin-address", "127.0.0.1:0",
              "--admin-address-path", str(tmp_path / "admin-address"), "--outbound-address", "127.0.0.1"]
    return p.start() if start else p


@pytest.fixture
def upstreams():
    v1, v2 = Upstream("v1"), Upstream("v2")
    yield v1, v2
    v1.stop()
    v2.stop()


@pytest.fixture
def running(tmp_path, upstreams):
    """(mesh, proxy, client) with the seed example running."""
    mesh = Mesh(tmp_path / "mesh", *upstreams)
    proxy = mesh_proxy(tmp_path, mesh.path)
    client = Client(mesh.port)
    yield mesh, proxy, client
    client.close()
    proxy.close()


def reloads(proxy) -> tuple[int, int]:
    st = proxy.stats()
    return st["server.config_reload_success"], st["server.config_reload_rejected"]


def test_split_90_10(running, tmp_path):
    mesh, proxy, client = running
    assert (tmp_path / "admin-address").read_text() == f"127.0.0.1:{proxy.admin_port}\n"
    seen = client.get(10_000)
    assert set(seen) <= {(200, "v1"), (200, "v2")}
    assert abs(seen[(200, "v1")] - 9000) <= 100 and abs(seen[(200, "v2")] - 1000) <= 100, seen
    st = proxy.stats()
    assert st[mesh.cluster.format("v1") + ".upstream_rq_total"] == seen[(200, "v1")]
    assert st[mesh.cluster.format("v2") + ".upstream_rq_total"] == seen[(200, "v2")]


def test_v2_answering_503_is_retried_on_v1(running):
    mesh, proxy, client = running
    mesh.v2.status = 503
    seen = client.get(2000)
    # previous_hosts (Istio's default predicate): v2's only host was tried, so the
    # retry moves to the other member of the split, v1.
    assert seen == {(200, "v1"): 2000}
    failed = mesh.v2.requests
    assert 100 <= failed <= 300  # ~10% of the requests went to v2 first
    st = proxy.stats()
    assert st[mesh.cluster.format("v2") + ".upstream_rq_5xx"] == failed
    assert st[mesh.cluster.format("v2") + ".upstream_rq_retry"] == failed
    assert st[mesh.cluster.format("v1") + ".upstream_rq_retry_success"] == failed
    assert mesh.v1.requests == 2000


def test_an_edit_is_picked_up_without_restart_and_traffic_follows(running):
    mesh, proxy, client = running
    pid = proxy.pid
    assert client.get(1000)[(200, "v2")] <= 150
    mesh.set_weights(50, 50)
    wait_until(lambda: reloads(proxy) == (1, 0), 30, what="the edit to be reloaded")
    # New connections get the new config (a kept-alive connection finishes on the
    # snapshot it was accepted on, as an Envoy listener change drains it).
    fresh = Client(mesh.port)
    try:
        seen = fresh.get(2000)
    finally:
        fresh.close()
    assert abs(seen[(200, "v1")] - 1000) <= 20 and abs(seen[(200, "v2")] - 1000) <= 20, seen
    assert sum(client.get(10).values()) == 10  # the old connection still works
    assert proxy.pid == pid and proxy.running()
    assert "config reloaded from" in proxy.log()


def test_an_invalid_edit_is_rejected_and_traffic_continues(running):
    mesh, proxy, client = running
    mesh.set_weights(50, 60)
    wait_until(lambda: reloads(proxy) == (0, 1), 30, what="the bad edit to be rejected")
    assert ("config reload rejected, keeping the running config: checkout.yaml: VirtualService "
            "default/checkout: spec.http[0].route: the destination weights add up to 110, must be 100") in proxy.log()
    assert sum(client.get(100).values()) == 100  # the open connection goes on
    fresh = Client(mesh.port)  # and new ones get the running config: still 90/10
    try:
        seen = fresh.get(2000)
    finally:
        fresh.close()
    assert seen[(200, "v1")] + seen[(200, "v2")] == 2000
    assert abs(seen[(200, "v2")] - 200) <= 20
    # Fixed again: applied (to new connections).
    mesh.set_weights(0, 100)
    wait_until(lambda: reloads(proxy) == (1, 1), 30, what="the fix to be reloaded")
    fresh = Client(mesh.port)
    try:
        assert fresh.get(100) == {(200, "v2"): 100}
    finally:
        fresh.close()


def test_sighup_and_post_reload_re_read_the_directory(running):
    mesh, proxy, client = running
    proxy.reload_via_sighup()
    assert proxy.post("/reload") == (200, "reloaded\n")
    assert reloads(proxy) == (2, 0)
    assert client.get(10)[(200, "v1")] == 9


def test_sigterm_stops_it(running):
    mesh, proxy, client = running
    client.get(1)
    client.close()
    proxy.send_signal(signal.SIGTERM)
    assert proxy.wait(timeout=30) == 0


def test_a_bad_directory_at_start_exits_1_naming_the_field(tmp_path, upstreams):
    mesh = Mesh(tmp_path / "mesh", *upstreams)
    mesh.set_weights(90, 20)
    out = run_cli(["proxy", "--mesh-dir", str(mesh.path), "--workload", "default/frontend",
                   "--admin-address", "127.0.0.1:0"])
    assert out.returncode == 1
    assert ("meshcore: error: checkout.yaml: VirtualService default/checkout: spec.http[0].route: the destination "
            "weights add up to 110, must be 100") in out.stderr
    assert "Traceback" not in out.stderr


def test_unknown_workload_and_usage_errors(tmp_path, upstreams):
    mesh = Mesh(tmp_path / "mesh", *upstreams)
    out = run_cli(["proxy", "--mesh-dir", str(mesh.path), "--workload", "shop/nobody", "--admin-address",
                   "127.0.0.1:0"])
    assert out.returncode == 1 and "meshcore: error: no WorkloadEntry shop/nobody in" in out.stderr
    out = run_cli(["proxy", "--mesh-dir", str(mesh.path), "--admin-address", "127.0.0.1:0"])
    assert out.returncode == 2 and "--mesh-dir needs --workload" in out.stderr
    out = run_cli(["proxy", "-c", str(mesh.path / "checkout.yaml"), "--mesh-dir", str(mesh.path)])
    assert out.returncode == 2 and "not allowed with argument" in out.stderr
