"""Certificate rotation under load: two sidecars with 5-second certificates
(`--cert-ttl 5s`, renewed at about half their lifetime) while several client
threads send requests without pause, some on kept-alive connections, some on
a new connection each time, for several rotations. No request fails and no
connection is reset; the certificate the server sidecar presents changes
(its serial, read with openssl s_client), and the proxies count and log each
renewal. Then file mode: `meshcore proxy -c FILE` whose Secrets name the
files `meshcore ca issue` rewrites picks up each new certificate."""
from __future__ import annotations

import http.client
import re
import threading
import time

from support import config as cfg
from support import mtls
from support.net import free_port, wait_until
from support.proxy import ProxyProcess, run_cli

LOAD_SECONDS = 16


class Load:
    """Clients: `keepalive` threads on one connection each, `fresh` threads on a new connection per request."""

    def __init__(self, port, keepalive=3, fresh=2):
        self.port = port
        self.ok = 0
        self.failures: list[str] = []
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(True, i), name=f"ka-{i}") for i in range(keepalive)]
        self.threads += [threading.Thread(target=self._run, args=(False, i), name=f"new-{i}") for i in range(fresh)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def _run(self, keepalive, i):
        conn = None
        n = 0
        while not self.stop_event.is_set():
            n += 1
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.41", self.port, timeout=10)
                conn.request("GET", f"/api/{i}/{n}", headers={"Host": "checkout"})
                resp = conn.getresponse()
                body = resp.read()
                if resp.status != 200 or not body.startswith(b"checkout GET"):
                    raise AssertionError(f"{resp.status} {body[:80]!r}")
                with self.lock:
                    self.ok += 1
            except Exception as e:  # noqa: BLE001 - every failure is recorded, none may happen
                with self.lock:
                    self.failures.append(f"{'keep-alive' if keepalive else 'new'} #{n}: {type(e).__name__}: {e}")
                if conn is not None:
                    conn.close()
                conn = None
                continue
            if not keepalive:
                conn.close()
                conn = None
        if conn is not None:
            conn.close()

    def stop(self):
        self.stop_event.set()
        for t in self.threads:
            t.join(timeout=30)


def served_serial(port, svid) -> int:
    rc, out = mtls.openssl_connect(port, svid, svid["trust-bundle.pem"])
    chain = mtls.served_chain(out)
    assert chain, out
    return chain[0].serial_number


def test_five_second_certificates_rotate_under_load(tmp_path):
    authority = mtls.make_ca(tmp_path / "ca")
    prober = mtls.write_svid(authority, tmp_path / "prober", "default", "prober")
    app = mtls.PlainApp("checkout")
    inbound, svc_port = free_port(), free_port()
    mesh = mtls.write_mesh(
        tmp_path / "mesh",
        mtls.service("checkout", {"http": svc_port}, {"app": "checkout"}),
        mtls.workload_entry("checkout", "checkout", {"app": "checkout"}, {"http": app.port}, f"http={inbound}"),
        mtls.workload_entry("frontend", "frontend", {"app": "frontend"}),
        mtls.peer_authentication("STRICT"))
    server = mtls.Sidecar(mesh, "default/checkout", tmp_path / "ca", tmp_path / "checkout.log",
                          outbound_address="127.0.0.40", cert_ttl="5s")
    client = mtls.Sidecar(mesh, "default/frontend", tmp_path / "ca", tmp_path / "frontend.log",
                          outbound_address="127.0.0.41", cert_ttl="5s")
    load = None
    try:
        server.start()
        client.start()
        first = served_serial(inbound, prober)
        load = Load(svc_port).start()
        deadline = time.monotonic() + LOAD_SECONDS
        serials = {first}
        while time.monotonic() < deadline:
            time.sleep(1.5)
            serials.add(served_serial(inbound, prober))
        load.stop()
        assert load.failures == [], f"{len(load.failures)} failed of {load.ok + len(load.failures)}: " \
                                    f"{load.failures[:5]}"
        assert load.ok > 0
        assert len(serials) >= 3, "the served certificate did not change with the renewals"
        for proxy in (server, client):
            assert proxy.stat("server.certificate_rotations") >= 3
            assert proxy.stat("server.certificate_rotation_failures") == 0
            assert proxy.stat("sds.default.update_success") >= 3
            assert len(re.findall(r"certificate rotated \(renewal\): spiffe://cluster\.local/ns/default/sa/\w+ "
                                  r"serial [0-9a-f]+", proxy.log())) >= 3
        # nothing was reset between the sidecars either
        assert client.stat(f"http.outbound_127.0.0.41_{svc_port}.downstream_rq_5xx") == 0
    finally:
        if load is not None:
            load.stop()
        client.close()
        server.close()
        app.stop()


def test_file_mode_reloads_certificates_rewritten_on_disk(tmp_path):
    """`meshcore proxy -c FILE`: Secrets name key.pem / cert-chain.pem / trust-bundle.pem,
    an external `meshcore ca issue` rewrites them, the proxy applies the new ones."""
    mtls.make_ca(tmp_path / "ca")
    svid_dir = tmp_path / "svid"
    issue = ["ca", "issue", "--dir", str(tmp_path / "ca"), "--ns", "default", "--sa", "checkout",
             "--ttl", "1h", "--out", str(svid_dir)]
    assert run_cli(issue).returncode == 0
    app = mtls.PlainApp("checkout")
    port = free_port()
    files = {k: str(svid_dir / k) for k in ("key.pem", "cert-chain.pem", "trust-bundle.pem")}
    config = {
        "static_resources": {
            "secrets": [
                {"name": "default", "tls_certificate": {"certificate_chain": {"filename": files["cert-chain.pem"]},
                                                        "private_key": {"filename": files["key.pem"]}}},
                {"name": "ROOTCA", "validation_context": {"trusted_ca": {"filename": files["trust-bundle.pem"]}}},
            ],
            "listeners": [{
                "name": "inbound", "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
                "filter_chains": [{
                    "transport_socket": {"name": "envoy.transport_sockets.tls", "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3."
                                 "DownstreamTlsContext",
                        "require_client_certificate": True,
                        "common_tls_context": {
                            "tls_certificate_sds_secret_configs": [{"name": "default"}],
                            "validation_context_sds_secret_config": {"name": "ROOTCA"}}}},
                    "filters": [{"name": "envoy.filters.network.tcp_proxy", "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
                        "stat_prefix": "app", "cluster": "app"}}]}]}],
            "clusters": [cfg.static_cluster("app", [app.port])],
        }
    }
    config_path = cfg.write_config(tmp_path / "proxy.yaml", config)
    proxy = ProxyProcess(config_path, tmp_path / "proxy.log")
    client = mtls.write_svid(__import__("meshcore").ca.CertificateAuthority.load(str(tmp_path / "ca")),
                             tmp_path / "client", "default", "frontend")
    try:
        proxy.start()
        first = served_serial(port, client)
        for n in (1, 2):
            assert run_cli(issue).returncode == 0  # what a cron job would run
            # (counting rotations would not do: a poll landing between two of
            # the four files would count one more, of the same certificate)
            first = wait_until(lambda old=first: (s := served_serial(port, client)) != old and s, timeout=30,
                               interval=0.2, what=f"the certificate of rewrite {n} served")
        assert proxy.stat("server.certificate_rotations") >= 2
        assert proxy.stat("sds.default.update_success") >= 2
        assert "certificate rotated (files changed): serial" in proxy.log()
        status, body, _ = mtls.curl(f"https://127.0.0.1:{port}/x", client)
        assert (status, body) == (200, "checkout GET /x")
    finally:
        proxy.close()
        app.stop()
