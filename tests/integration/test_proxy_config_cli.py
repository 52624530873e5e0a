"""`meshcore proxy-config` against real `meshcore proxy` processes.

Each proxy runs with `--admin-address 127.0.0.1:0 --admin-address-path P`;
the command is run as a user would (`python -m meshcore proxy-config KIND
ADDR`), and both its table and its JSON rows are checked. Live state is made
deterministic: requests held open by a gated backend (circuit-breaker
gauges), an endpoint answering 500 until outlier detection ejects it.
"""
from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml
from cryptography import x509
from support import config as cfg
from support import http as h
from support.net import free_port, wait_until
from support.proxy import ProxyProcess

from meshcore import ca

TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
TLS_INSPECTOR = "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"
HTTP_RBAC = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"
WEB_ID = "spiffe://example.test/ns/default/sa/web"


def proxy_config(*args, check=True) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, "-m", "meshcore", "proxy-config", *args],
                         capture_output=True, text=True, timeout=60)
    if check:
        assert out.returncode == 0, out.stderr
    return out


def rows(kind, admin, *args) -> list[dict]:
    return json.loads(proxy_config(kind, admin, "-o", "json", *args).stdout)


def table(kind, admin, *args) -> list[str]:
    return proxy_config(kind, admin, *args).stdout.splitlines()


def line_with(lines, *words) -> str:
    """The one table line holding every word (split on whitespace)."""
    found = [ln for ln in lines if all(w in ln.split() for w in words)]
    assert len(found) == 1, (words, lines)
    return found[0]


def admin_address(proxy: ProxyProcess, path: pathlib.Path) -> str:
    """What --admin-address-path wrote (just after the proxy logged its admin API)."""
    wait_until(lambda: path.exists() and path.read_text().endswith("\n"), what=f"{path} to be written")
    return path.read_text().strip()


def start(proxy_factory, tmp_path, doc, name="proxy") -> tuple[ProxyProcess, str]:
    path = tmp_path / f"{name}.admin"
    proxy = proxy_factory(doc, name, extra_args=["--admin-address-path", str(path)])
    return proxy, admin_address(proxy, path)


# ---- a sidecar-like proxy: mTLS inbound, plaintext and TLS listeners, routes, secrets ------------------


def mtls_chain(route_config, rbac_policy):
    hcm = h.hcm_listener("unused", [h.vhost("local", ["*"], [h.route("/", "local_app")])],
                         stat_prefix="inbound_http", route_config={"name": route_config},
                         http_filters=[{"name": "envoy.filters.http.rbac", "typed_config": {
                             "@type": HTTP_RBAC, "rules": {"action": "ALLOW", "policies": {rbac_policy: {
                                 "permissions": [{"any": True}],
                                 "principals": [{"authenticated": {"principal_name": {"exact": WEB_ID}}}]}}}}}])
    chain = hcm["filter_chains"][0]
    chain["filter_chain_match"] = {"transport_protocol": "tls"}
    chain["transport_socket"] = {"name": "envoy.transport_sockets.tls", "typed_config": {
        "@type": TLS, "require_client_certificate": True, "common_tls_context": {
            "tls_certificate_sds_secret_configs": [{"name": "default"}],
            "validation_context_sds_secret_config": {"name": "ROOTCA"}}}}
    return chain


def sidecar_doc(files, spare_chain_pem, spare_key_pem):
    inbound = cfg.tcp_proxy_listener("inbound", "local_app", stat_prefix="inbound_tcp")
    inbound["filter_chains"][0]["filter_chain_match"] = {"transport_protocol": "raw_buffer"}
    inbound["filter_chains"].insert(0, mtls_chain("inbound_routes", "allow-web"))
    inbound["listener_filters"] = [{"name": "envoy.filters.listener.tls_inspector",
                                    "typed_config": {"@type": TLS_INSPECTOR}}]
    # Server-side TLS only (no client certificate), L4 to two weighted clusters.
    edge = cfg.tcp_proxy_listener("edge", weighted={"backend": 3, "canary": 1})
    edge["filter_chains"][0]["transport_socket"] = {"name": "envoy.transport_sockets.tls", "typed_config": {
        "@type": TLS, "common_tls_context": {"tls_certificate_sds_secret_configs": [{"name": "default"}]}}}
    outbound = h.hcm_listener("outbound", [
        h.vhost("reviews", ["reviews", "reviews.default.svc"], [
            h.route(name="canary", match={"prefix": "/api", "headers": [
                {"name": "x-canary", "string_match": {"exact": "1"}}]}, route={
                "weighted_clusters": {"clusters": [{"name": "backend", "weight": 90},
                                                   {"name": "canary", "weight": 10}]},
                "timeout": "3s",
                "retry_policy": {"retry_on": "5xx,connect-failure", "num_retries": 2, "per_try_timeout": "1s"}}),
            h.route(match={"path": "/old"}, redirect={"path_redirect": "/new", "response_code": "FOUND"}),
            h.route(match={"safe_regex": {"regex": "^/health.*"}},
                    direct_response={"status": 200, "body": {"inline_string": "ok"}}),
            h.route("/", "backend"),
        ], retry_policy={"retry_on": "gateway-error", "num_retries": 1}),
    ], stat_prefix="outbound_http", route_config={"name": "outbound_routes"})
    nowhere = [free_port()]  # nothing is sent through this proxy: the endpoints need not exist
    doc = cfg.bootstrap([inbound, edge, outbound], [
        h.http_cluster("backend", nowhere, circuit_breakers=h.circuit_breakers(max_connections=10)),
        h.http_cluster("canary", nowhere), h.http_cluster("local_app", nowhere)])
    doc["static_resources"]["secrets"] = [
        {"name": "default", "tls_certificate": {"certificate_chain": {"filename": files["cert-chain.pem"]},
                                                "private_key": {"filename": files["key.pem"]}}},
        {"name": "ROOTCA", "validation_context": {"trusted_ca": {"filename": files["bundle"]}}},
        {"name": "spare", "tls_certificate": {"certificate_chain": {"inline_string": spare_chain_pem},
                                              "private_key": {"inline_string": spare_key_pem}}},
    ]
    return doc


@pytest.fixture(scope="module")
def sidecar(tmp_path_factory):
    """(admin address, certificate files, the spare key PEM) of one proxy for the read-only tests."""
    d = tmp_path_factory.mktemp("proxy-config")
    authority = ca.CertificateAuthority.init(str(d / "ca"), "example.test", intermediate=True)
    ca.CertificateAuthority.init(str(d / "other-ca"), "other.test")
    files = ca.write_workload_dir(authority, str(d / "web"), "default", "web", "1h")
    files["bundle"] = str(d / "bundle.pem")
    ca.write_bundle(files["bundle"], [str(d / "ca"), str(d / "other-ca")])  # two roots: a root rotation
    spare_key, spare_chain = ca.issue_workload(authority, "default", "spare", "2h")
    doc = sidecar_doc(files, spare_chain.decode(), spare_key.decode())
    path = cfg.write_config(d / "sidecar.yaml", doc)
    addr_path = d / "sidecar.admin"
    proxy = ProxyProcess(path, d / "sidecar.log", extra_args=["--admin-address-path", str(addr_path)])
    try:
        proxy.start()
        yield {"admin": admin_address(proxy, addr_path), "proxy": proxy, "files": files,
               "spare_key": spare_key.decode(), "spare_chain": spare_chain}
    finally:
        proxy.close()


def test_listeners_show_chains_tls_and_rbac(sidecar):
    admin, proxy = sidecar["admin"], sidecar["proxy"]
    got = rows("listeners", admin)
    by = {(r["listener"], r["chain"]): r for r in got}
    assert sorted(by) == [("edge", 0), ("inbound", 0), ("inbound", 1), ("outbound", 0)]
    inbound_port = proxy.listener_port("inbound")
    mtls, plain = by["inbound", 0], by["inbound", 1]
    assert mtls["address"] == plain["address"] == f"127.0.0.1:{inbound_port}"  # the bound port, not 0
    assert mtls["configured_address"] == "127.0.0.1:0"
    assert mtls["match"] == {"transport_protocol": "tls"}
    assert mtls["tls"] == {"mode": "mTLS", "certificates": ["default"], "validation_context": "ROOTCA"}
    assert mtls["terminal"] == {"filter": "http_connection_manager", "route_config": "inbound_routes",
                                "http_filters": ["envoy.filters.http.rbac", "envoy.filters.http.router"]}
    assert mtls["rbac"] == [{"filter": "http", "action": "ALLOW", "policies": ["allow-web"]}]
    assert plain["match"] == {"transport_protocol": "raw_buffer"}
    assert plain["tls"] is None and plain["rbac"] == []
    assert plain["terminal"] == {"filter": "tcp_proxy", "clusters": [{"name": "local_app", "weight": 1}]}
    assert by["edge", 0]["tls"]["mode"] == "TLS"  # a server certificate, no client certificate required
    assert by["edge", 0]["terminal"]["clusters"] == [{"name": "backend", "weight": 3},
                                                     {"name": "canary", "weight": 1}]
    assert by["outbound", 0]["tls"] is None

    lines = table("listeners", admin)
    assert lines[0].split() == ["NAME", "ADDRESS", "CHAIN", "MATCH", "FILTER", "DESTINATION", "TLS", "RBAC"]
    assert line_with(lines, "inbound", "transport=tls").split()[4:] == [
        "HCM", "route", "inbound_routes", "mTLS", "ALLOW", "allow-web"]
    assert line_with(lines, "inbound", "transport=raw_buffer").split()[4:] == [
        "tcp_proxy", "cluster", "local_app", "none", "-"]
    assert line_with(lines, "edge").split()[4:] == ["tcp_proxy", "clusters", "backend=3,", "canary=1", "TLS", "-"]

    # --port filters; -o yaml prints the same rows as -o json.
    only = yaml.safe_load(proxy_config("listeners", admin, "--port", str(inbound_port), "-o", "yaml").stdout)
    assert only == [by["inbound", 0], by["inbound", 1]]


def test_routes_show_weights_redirects_timeouts_and_retries(sidecar):
    admin = sidecar["admin"]
    got = [r for r in rows("routes", admin) if r["route_config"] == "outbound_routes"]
    assert len(got) == 4
    canary, redirect, direct, default = got
    assert canary["domains"] == ["reviews", "reviews.default.svc"] and canary["name"] == "canary"
    assert canary["match"] == {"prefix": "/api", "headers": ["x-canary=1"]}
    assert canary["action"] == {"type": "weighted_clusters", "clusters": [{"name": "backend", "weight": 90},
                                                                         {"name": "canary", "weight": 10}]}
    assert canary["timeout"] == "3s" and not canary["timeout_is_default"]
    assert canary["retry"] == {"from": "route", "retry_on": "5xx,connect-failure", "num_retries": 2,
                               "per_try_timeout": "1s"}
    assert redirect["match"] == {"path": "/old"}
    assert redirect["action"] == {"type": "redirect", "response_code": 302, "path_redirect": "/new"}
    assert redirect["timeout"] is None and redirect["retry"] is None
    assert direct["match"] == {"regex": "^/health.*"}
    assert direct["action"] == {"type": "direct_response", "status": 200, "body_bytes": 2}
    assert default["action"] == {"type": "cluster", "cluster": "backend"}
    assert default["timeout"] == "15s" and default["timeout_is_default"]  # Envoy's default route timeout
    assert default["retry"] == {"from": "virtual_host", "retry_on": "gateway-error", "num_retries": 1}

    lines = table("routes", admin)
    assert "backend 90%, canary 10%" in line_with(lines, "canary", "/api")
    assert "2x on 5xx,connect-failure, per try 1s" in line_with(lines, "canary", "/api")
    assert "redirect 302 /new" in line_with(lines, "/old")
    assert "direct_response 200" in line_with(lines, "^/health.*")
    assert "15s (default)" in line_with(lines, "outbound_routes", "/", "backend")
    assert "1x on gateway-error (vhost)" in line_with(lines, "outbound_routes", "/", "backend")
    assert [r["name"] for r in rows("routes", admin, "--cluster", "canary")] == ["canary"]


def test_secrets_show_identity_and_validity_but_no_keys(sidecar):
    admin, files = sidecar["admin"], sidecar["files"]
    chain = x509.load_pem_x509_certificates(pathlib.Path(files["cert-chain.pem"]).read_bytes())
    as_json = proxy_config("secrets", admin, "-o", "json").stdout
    got = {r["name"]: r for r in json.loads(as_json)}
    assert list(got) == ["default", "ROOTCA", "spare"]
    leaf = got["default"]
    assert leaf["kind"] == "certificate" and leaf["source"] == files["cert-chain.pem"]
    assert leaf["spiffe_id"] == WEB_ID
    assert leaf["serial"] == format(chain[0].serial_number, "x")
    assert leaf["not_after"] == chain[0].not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert 0 < leaf["remaining_seconds"] <= 3600 and leaf["valid"]
    assert leaf["chain_length"] == 2  # leaf + intermediate
    roots = got["ROOTCA"]
    assert roots["kind"] == "validation context" and roots["root_count"] == 2
    assert roots["trust_domains"] == ["spiffe://example.test", "spiffe://other.test"]
    spare = got["spare"]
    assert spare["source"] == "inline" and spare["spiffe_id"] == "spiffe://example.test/ns/default/sa/spare"
    assert 3600 < spare["remaining_seconds"] <= 7200

    text = proxy_config("secrets", admin).stdout
    lines = text.splitlines()
    assert lines[0].split() == ["NAME", "KIND", "IDENTITY", "SERIAL", "NOT", "BEFORE", "NOT", "AFTER",
                                "REMAINING", "CERTS", "SOURCE"]
    assert line_with(lines, "default", WEB_ID, leaf["serial"], "chain", "2")
    assert line_with(lines, "ROOTCA", "spiffe://example.test,spiffe://other.test", "2", "roots")
    # No key material anywhere: not the inline key, not the key file's name or contents.
    key_pem = pathlib.Path(files["key.pem"]).read_text()
    for output in (text, as_json, proxy_config("secrets", admin, "-o", "yaml").stdout):
        assert "PRIVATE KEY" not in output
        for secret in (sidecar["spare_key"], key_pem):
            body = "".join(secret.strip().splitlines()[1:-1])
            assert body[:40] not in output.replace("\n", "")
        assert files["key.pem"] not in output
    # The admin API's own secrets dump redacts the key as Envoy does.
    status, dump = sidecar["proxy"].get("/config_dump?resource=static_secrets")
    assert status == 200 and "PRIVATE KEY" not in dump and files["key.pem"] not in dump
    secrets = {c["name"]: c["secret"] for c in json.loads(dump)["configs"]}
    assert secrets["default"]["tls_certificate"]["private_key"] == {"filename": "[redacted]"}
    assert secrets["spare"]["tls_certificate"]["private_key"] == {"inline_string": "[redacted]"}


# ---- live state -------------------------------------------------------------------------------------


def test_clusters_show_circuit_breakers_against_requests_held_open(proxy_factory, backend_factory, tmp_path):
    gate = threading.Event()

    def held(req):
        gate.wait(20)
        return h.Reply(200, [], b"done")

    backend = backend_factory("held", held)
    doc = h.simple([backend.port], cluster="held", cluster_kw={"circuit_breakers": h.circuit_breakers(
        max_connections=3, max_pending_requests=4, max_requests=16, max_retries=1)})
    proxy, admin = start(proxy_factory, tmp_path, doc)
    port = proxy.listener_port("http")
    with ThreadPoolExecutor(3) as pool:
        try:
            futures = [pool.submit(h.request, port, "GET", f"/{i}") for i in range(3)]
            wait_until(lambda: h.stat(proxy, "cluster.held.upstream_rq_active") == 3, 20,
                       what="three requests held at the backend")
            (row,) = rows("clusters", admin)
            lines = table("clusters", admin)
            (ep,) = rows("endpoints", admin, "--cluster", "held")
        finally:
            gate.set()
        assert [f.result(timeout=30).status for f in futures] == [200] * 3
    assert row["name"] == "held" and row["type"] == "STATIC" and row["lb_policy"] == "ROUND_ROBIN"
    assert row["endpoints"] == 1
    assert row["circuit_breakers"] == {"max_connections": 3, "max_pending_requests": 4, "max_requests": 16,
                                       "max_retries": 1, "configured": True}
    assert row["live"]["cx_active"] == 3 and row["live"]["rq_active"] == 3 and row["live"]["rq_pending"] == 0
    assert row["outlier_detection"] is None and row["tls"] is None
    assert line_with(lines, "held").split() == ["held", "STATIC", "ROUND_ROBIN", "1", "3/3", "open", "3/16",
                                                "0/4", "1", "off", "none"]
    assert ep["address"] == f"127.0.0.1:{backend.port}"
    assert ep["rq_active"] == 3 and ep["cx_active"] == 3 and ep["health"] == "healthy"

    # Released: the gauges go back to zero (connections stay pooled).
    wait_until(lambda: h.stat(proxy, "cluster.held.upstream_rq_active") == 0, 20, what="requests done")
    (row,) = rows("clusters", admin)
    assert row["live"]["rq_active"] == 0


def test_endpoint_ejected_by_outlier_detection(proxy_factory, backend_factory, tmp_path):
    sick = backend_factory("sick", lambda req: h.Reply(500, [], b"broken"))
    ok = backend_factory("ok")
    doc = h.simple([sick.port, ok.port], cluster="flaky", cluster_kw={"outlier_detection": {
        "consecutive_5xx": 2, "base_ejection_time": "300s", "max_ejection_percent": 50}})
    proxy, admin = start(proxy_factory, tmp_path, doc)

    with h.Conn(proxy.listener_port("http")) as conn:
        def ejected():
            conn.request("GET", "/")
            return h.stat(proxy, "cluster.flaky.outlier_detection.ejections_enforced_total") == 1
        wait_until(ejected, 20, interval=0, what="the endpoint answering 500 to be ejected")
        assert conn.request("GET", "/").status == 200  # the healthy one alone now
    got = {r["address"]: r for r in rows("endpoints", admin)}
    bad, good = got[f"127.0.0.1:{sick.port}"], got[f"127.0.0.1:{ok.port}"]
    assert bad["health"] == "ejected" and bad["cluster"] == "flaky"
    assert bad["rq_error"] == 2 and bad["success_rate"] == 0
    assert good["health"] == "healthy" and good["rq_error"] == 0 and good["success_rate"] == 100
    lines = table("endpoints", admin)
    assert lines[0].split() == ["ENDPOINT", "CLUSTER", "HEALTH", "WEIGHT", "RQ", "ACTIVE", "CX", "ACTIVE",
                                "RQ", "TOTAL", "SUCCESS"]
    assert line_with(lines, f"127.0.0.1:{sick.port}").split()[:3] == [f"127.0.0.1:{sick.port}", "flaky", "ejected"]
    assert line_with(lines, f"127.0.0.1:{ok.port}").split()[2] == "healthy"
    assert [r["address"] for r in rows("endpoints", admin, "--status", "ejected")] == [f"127.0.0.1:{sick.port}"]
    # as the admin API states it, in Envoy's two formats
    text = urllib.request.urlopen(f"http://{admin}/clusters", timeout=10).read().decode()
    assert f"flaky::127.0.0.1:{sick.port}::health_flags::/failed_outlier_check" in text.splitlines()
    assert f"flaky::127.0.0.1:{ok.port}::health_flags::healthy" in text.splitlines()
    doc = json.loads(urllib.request.urlopen(f"http://{admin}/clusters?format=json", timeout=10).read())
    (flaky,) = [c for c in doc["cluster_statuses"] if c["name"] == "flaky"]
    flagged = {hs["address"]["socket_address"]["port_value"]: hs["health_status"].get("failed_outlier_check", False)
               for hs in flaky["host_statuses"]}
    assert flagged == {sick.port: True, ok.port: False}
    (cluster,) = rows("clusters", admin)
    assert cluster["ejections_enforced_total"] == 1
    assert cluster["outlier_detection"]["consecutive_5xx"] == 2


# ---- errors ---------------------------------------------------------------------------------------------


def test_unreachable_admin_names_the_address():
    port = free_port()
    for addr in (f"127.0.0.1:{port}", str(port)):  # a port alone is 127.0.0.1
        out = proxy_config("clusters", addr, check=False)
        assert out.returncode == 1
        assert out.stdout == ""
        assert f"cannot reach the admin API at 127.0.0.1:{port}" in out.stderr
        assert "Traceback" not in out.stderr


def test_unknown_type_and_bad_address_are_usage_errors():
    out = proxy_config("bogus", "127.0.0.1:15000", check=False)
    assert out.returncode == 2 and "invalid choice: 'bogus'" in out.stderr
    out = proxy_config("routes", "localhost:http", check=False)
    assert out.returncode == 2 and "expected HOST:PORT or a port" in out.stderr
