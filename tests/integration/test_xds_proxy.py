"""`meshcore proxy --xds`: a proxy fed by a (scripted, real gRPC) control plane
carries real HTTP traffic to real upstreams. The split follows a weight
change, a NACKed update leaves traffic untouched, the control plane going
away leaves the proxy serving, /ready waits for config and certificate,
/config_dump shows the dynamic resources with their versions, a certificate
rotation re-applies without dropping traffic.

The proxy runs in this process (meshcore.proxy.Proxy with an XdsSource) with
a certificate keeper on a local CA (support.ads.CertKeeper) in place of the
certificate service."""
from __future__ import annotations

import json
import threading
import urllib.request
from collections import Counter

import pytest
from support import http as h
from support.ads import CertKeeper, ScriptedAds, workload_resources
from support.mtls import make_ca
from support.net import free_port, wait_until
from support.proxy import run_cli

from meshcore.proxy import Proxy
from meshcore.proxy_xds import XdsSource
from meshcore.xds import client as xc
from meshcore.xds import resources as xr


def split_doc(port, v1, v2, w1, w2):
    split = {"weighted_clusters": {"clusters": [{"name": "v1", "weight": w1}, {"name": "v2", "weight": w2}]}}
    listener = h.hcm_listener("http", routes=[h.route("/", route=split)])
    listener["address"]["socket_address"]["port_value"] = port
    return h.bootstrap([listener], [h.http_cluster("v1", [v1.port]), h.http_cluster("v2", [v2.port])])


class Harness:
    def __init__(self, tmp_path, mode="delta", keeper_gate=None):
        make_ca(tmp_path / "ca")
        self.ads = ScriptedAds()
        self.keepers = []

        def certificates(on_change):
            k = CertKeeper(tmp_path / "ca", "default", "checkout", on_change)
            if keeper_gate is not None:
                start = k.start
                k.start = lambda wait=0.0: (keeper_gate.wait(30), start(wait))[1]
            self.keepers.append(k)
            return k

        self.source = XdsSource(self.ads.target, mode=mode, service_account="checkout",
                                certificates=certificates, backoff=xc.Backoff(0.05, 0.5))
        self.proxy = Proxy(xds=self.source, workload="default/checkout", admin_address="127.0.0.1:0",
                           concurrency=2, drain_timeout=0.5)

    def admin(self, path):
        url = f"http://127.0.0.1:{self.proxy.admin.address[1]}{path}"
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def serve(self, stream, res, version):
        for t in (xr.CDS, xr.EDS, xr.LDS, xr.RDS):
            stream.send(stream.response(t, res.of(t), version))

    def close(self):
        self.proxy.shutdown()
        self.ads.stop()


@pytest.fixture
def harness(tmp_path):
    made = []

    def make(**kw):
        made.append(Harness(tmp_path, **kw))
        return made[-1]

    yield make
    for hn in made:
        hn.close()


def observed_split(port, n=1000):
    resps = h.many(port, n, batch=200)
    assert Counter(r.status for r in resps) == {200: n}
    return Counter(r.header("x-backend") for r in resps)


@pytest.mark.parametrize("mode", ["delta", "sotw"])
def test_config_from_the_control_plane_carries_traffic_and_survives_a_nack_and_its_loss(
        harness, backend_factory, mode):
    v1, v2 = backend_factory("v1"), backend_factory("v2")
    port = free_port()
    hn = harness(mode=mode)
    hn.proxy.start()
    assert hn.admin("/ready") == (503, "PRE_INITIALIZING\n")  # a certificate, no config yet
    s = hn.ads.next_stream()
    hn.serve(s, workload_resources(split_doc(port, v1, v2, 90, 10)), "v1")
    wait_until(lambda: hn.admin("/ready")[0] == 200, what="/ready 200")
    served = observed_split(port)
    assert abs(served["v1"] - 900) <= 10 and abs(served["v2"] - 100) <= 10, served
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stdlib", timeout=10) as r:  # a stdlib client too
        assert r.status == 200 and r.headers["x-backend"] in ("v1", "v2")

    # /config_dump: the dynamic resources, each with the version it came with.
    status, body = hn.admin("/config_dump")
    configs = {c["@type"].rsplit(".", 1)[1]: c for c in json.loads(body)["configs"]}
    clusters = configs["ClustersConfigDump"]
    assert clusters["version_info"] == "v1" and "static_clusters" not in clusters
    assert {c["cluster"]["name"]: c["version_info"] for c in clusters["dynamic_active_clusters"]} == \
        {"v1": "v1", "v2": "v1"}
    listener = configs["ListenersConfigDump"]["dynamic_listeners"][0]
    assert listener["name"] == "http" and listener["active_state"]["version_info"] == "v1"
    assert listener["active_state"]["listener"]["filter_chains"][0]["filters"][0]["typed_config"]["rds"]
    routes = configs["RoutesConfigDump"]["dynamic_route_configs"]
    assert [(r["route_config"]["name"], r["version_info"]) for r in routes] == [("http_routes", "v1")]
    assert "last_updated" in routes[0]
    secrets = {x["name"]: x for x in configs["SecretsConfigDump"]["dynamic_active_secrets"]}
    assert set(secrets) == {"default", "ROOTCA"} and secrets["default"]["version_info"]
    assert "[redacted]" in json.dumps(secrets["default"]) and "PRIVATE KEY" not in body
    assert configs["BootstrapConfigDump"]["bootstrap"]["node"]["id"].startswith("sidecar~")
    _, only = hn.admin("/config_dump?resource=dynamic_active_clusters")
    assert len(json.loads(only)["configs"]) == 2

    # A weight change applies and the split follows.
    s.pending(0.3)
    nonce = s.send(s.response(xr.RDS, workload_resources(split_doc(port, v1, v2, 50, 50)).of(xr.RDS), "v2"))
    ack = s.recv(xr.RDS)
    assert ack.response_nonce == nonce and not ack.HasField("error_detail")
    served = observed_split(port)
    assert abs(served["v1"] - 500) <= 10 and abs(served["v2"] - 500) <= 10, served

    # A bad update is NACKed with the reason; traffic keeps the last good config.
    bad = workload_resources(split_doc(port, v1, v2, 50, 50))
    bad.of(xr.RDS)["http_routes"].virtual_hosts[0].routes[0].route.weighted_clusters.clusters[1].name = "v3"
    nonce = s.send(s.response(xr.RDS, bad.of(xr.RDS), "v3"))
    nack = s.recv(xr.RDS)
    assert nack.response_nonce == nonce and 'unknown cluster "v3"' in nack.error_detail.message
    served = observed_split(port)
    assert abs(served["v1"] - 500) <= 10, served
    stats = hn.proxy.xds._counters()
    assert stats["xds.rds.update_rejected"] == 1 and stats["control_plane.connected_state"] == 1
    _, body = hn.admin("/config_dump?resource=dynamic_route_configs")
    assert json.loads(body)["configs"][0]["version_info"] == "v2"

    # The control plane goes away: the proxy keeps serving, and stays ready.
    hn.ads.stop()
    wait_until(lambda: not hn.source.client.connected, what="stream down")
    served = observed_split(port, 200)
    assert served["v1"] + served["v2"] == 200
    assert hn.admin("/ready")[0] == 200
    _, text = hn.admin("/stats?filter=control_plane")
    assert "control_plane.connected_state: 0" in text


def leaf_serial(hn):
    certs = json.loads(hn.admin("/certs")[1])["certificates"]
    return next(c["cert_chain"][0]["serial_number"] for c in certs if "cert_chain" in c)


def test_ready_needs_the_certificate_and_a_rotation_keeps_traffic(harness, backend_factory):
    v1, v2 = backend_factory("v1"), backend_factory("v2")
    port = free_port()
    gate = threading.Event()
    hn = harness(keeper_gate=gate)
    starter = threading.Thread(target=hn.proxy.start, name="proxy-start")
    starter.start()
    wait_until(lambda: hn.proxy.admin is not None, what="admin API up")
    assert hn.admin("/ready") == (503, "PRE_INITIALIZING\n")  # no certificate yet
    assert json.loads(hn.admin("/server_info")[1])["state"] == "PRE_INITIALIZING"
    gate.set()
    starter.join(30)
    s = hn.ads.next_stream()  # the stream opens after the certificate is there
    assert hn.admin("/ready")[0] == 503  # ...and the config is still missing
    hn.serve(s, workload_resources(split_doc(port, v1, v2, 90, 10)), "v1")
    wait_until(lambda: hn.admin("/ready")[0] == 200, what="/ready 200")
    serial = leaf_serial(hn)
    load = h.HttpLoad(port, clients=2).start()
    try:
        load.progress(100)
        hn.keepers[0].rotate()
        load.progress(200)
    finally:
        load.stop()
    assert not load.failures, load.failures[:3]
    assert leaf_serial(hn) != serial
    assert hn.proxy.xds._counters()["server.certificate_rotations"] == 1


def test_cli_flags():
    r = run_cli(["proxy", "--xds", "127.0.0.1:1"])
    assert r.returncode == 2 and "--xds needs --workload" in r.stderr
    r = run_cli(["proxy", "-c", "x.yaml", "--token", "t"])
    assert r.returncode == 2 and "only apply with --xds" in r.stderr
    r = run_cli(["proxy", "--xds", "nohostport", "--workload", "a/b"])
    assert r.returncode != 0 and "expected HOST:PORT" in r.stderr
