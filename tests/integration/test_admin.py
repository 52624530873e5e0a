"""The admin API of a real `meshcore proxy` process, over real HTTP.

Each test starts its own proxy (admin on port 0), sends known traffic
through it, and reads it back through Envoy's admin paths.
"""
import json
import re
import shutil
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families
from support import config as cfg
from support.net import short_echo, wait_until

N_CONNECTIONS = 5
PAYLOAD = b"0123456789" * 10  # 100 bytes each way per connection


@pytest.fixture
def busy_proxy(proxy_factory, echo_factory):
    """A proxy that has carried N_CONNECTIONS echo connections of 100 bytes."""
    servers = [echo_factory("a"), echo_factory("b")]
    doc = cfg.bootstrap([cfg.tcp_proxy_listener("ingress", "backend")],
                        [cfg.static_cluster("backend", [(servers[0].port, 1), (servers[1].port, 3)])])
    proxy = proxy_factory(doc)
    port = proxy.listener_port("ingress")
    for _ in range(N_CONNECTIONS):
        assert short_echo(port, PAYLOAD) == PAYLOAD
    proxy.servers = servers
    proxy.port = port
    # The counters follow the closes the client caused; wait for them to settle.
    wait_until(lambda: proxy.stat("cluster.backend.upstream_cx_destroy") == N_CONNECTIONS,
               what="every upstream connection to be closed")
    return proxy


def test_ready_server_info_listeners(busy_proxy):
    proxy = busy_proxy
    assert proxy.get("/ready") == (200, "LIVE\n")

    status, body = proxy.get("/server_info")
    assert status == 200
    info = json.loads(body)
    assert info["state"] == "LIVE"
    assert info["concurrency"] == 2
    assert info["version"].startswith("meshcore/")

    status, body = proxy.get("/listeners")
    assert status == 200
    assert body == f"ingress::127.0.0.1:{proxy.port}\n"
    status, body = proxy.get("/listeners?format=json")
    assert json.loads(body) == {"listener_statuses": [
        {"name": "ingress", "local_address": {"socket_address": {"address": "127.0.0.1",
                                                                 "port_value": proxy.port}}}]}

    status, body = proxy.get("/")
    assert status == 200
    for path in ("/ready", "/stats", "/stats/prometheus", "/config_dump", "/clusters", "/listeners",
                 "/drain_listeners", "/reload", "/quitquitquit"):
        assert f"  {path}\n" in body


def test_stats_text_json_and_filter(busy_proxy):
    proxy = busy_proxy
    total = N_CONNECTIONS * len(PAYLOAD)
    status, text = proxy.get("/stats")
    assert status == 200
    lines = text.splitlines()
    for line in (f"cluster.backend.upstream_cx_total: {N_CONNECTIONS}",
                 "cluster.backend.upstream_cx_active: 0",
                 f"cluster.backend.upstream_cx_tx_bytes_total: {total}",
                 f"cluster.backend.upstream_cx_rx_bytes_total: {total}",
                 f"tcp.ingress_tcp.downstream_cx_total: {N_CONNECTIONS}",
                 f"tcp.ingress_tcp.downstream_cx_rx_bytes_total: {total}",
                 f"tcp.ingress_tcp.downstream_cx_tx_bytes_total: {total}",
                 f"listener.127.0.0.1_{proxy.port}.downstream_cx_total: {N_CONNECTIONS}",
                 "server.config_reload_success: 0",
                 "server.config_reload_rejected: 0"):
        assert line in lines, line
    hist = [x for x in lines if x.startswith("cluster.backend.upstream_cx_connect_ms: ")]
    assert len(hist) == 1 and "P50(" in hist[0] and "P100(" in hist[0], hist

    status, body = proxy.get("/stats?format=json")
    assert status == 200
    doc = json.loads(body)["stats"]
    values = {s["name"]: s["value"] for s in doc if "name" in s}
    assert values["cluster.backend.upstream_cx_total"] == N_CONNECTIONS
    assert values[f"listener.127.0.0.1_{proxy.port}.downstream_cx_destroy"] == N_CONNECTIONS
    hists = {h["name"]: h for entry in doc if "histograms" in entry for h in entry["histograms"]}
    assert hists["cluster.backend.upstream_cx_connect_ms"]["count"] == N_CONNECTIONS
    assert hists[f"listener.127.0.0.1_{proxy.port}.downstream_cx_length_ms"]["count"] == N_CONNECTIONS

    status, text = proxy.get("/stats?filter=^cluster%5C.backend%5C.upstream_cx_")
    assert status == 200
    names = [x.split(":")[0] for x in text.splitlines()]
    assert names and all(n.startswith("cluster.backend.upstream_cx_") for n in names)
    assert "cluster.backend.upstream_cx_total" in names
    status, body = proxy.get("/stats?format=json&filter=rx_bytes")
    names = [s["name"] for s in json.loads(body)["stats"] if "name" in s]
    assert sorted(names) == ["cluster.backend.upstream_cx_rx_bytes_total",
                             "tcp.ingress_tcp.downstream_cx_rx_bytes_total"]
    status, body = proxy.get("/stats?filter=(")
    assert status == 400 and "bad filter regex" in body


def test_stats_prometheus_parses(busy_proxy):
    proxy = busy_proxy
    status, body, headers = proxy.request("GET", "/stats/prometheus")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=")
    assert proxy.get("/stats?format=prometheus")[1].splitlines()[:5] == body.splitlines()[:5]

    families = {f.name: f for f in text_string_to_metric_families(body)}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in families.values() for s in f.samples}
    assert samples[("envoy_cluster_upstream_cx_total", (("envoy_cluster_name", "backend"),))] == N_CONNECTIONS
    assert samples[("envoy_tcp_downstream_cx_rx_bytes_total", (("envoy_tcp_prefix", "ingress_tcp"),))] \
        == N_CONNECTIONS * len(PAYLOAD)
    assert samples[("envoy_listener_downstream_cx_total",
                    (("envoy_listener_address", f"127.0.0.1_{proxy.port}"),))] == N_CONNECTIONS
    assert samples[("envoy_server_config_reload_success_total", ())] == 0
    connect_ms = families["envoy_cluster_upstream_cx_connect_seconds"]
    assert connect_ms.type == "histogram"
    inf = [s for s in connect_ms.samples if s.name.endswith("_bucket") and s.labels["le"] == "+Inf"]
    assert [s.value for s in inf] == [N_CONNECTIONS]


def test_stats_prometheus_passes_promtool(busy_proxy):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package `prometheus`): "
                    "`promtool check metrics` was not run")
    status, body = busy_proxy.get("/stats/prometheus")
    assert status == 200
    out = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_config_dump(busy_proxy):
    status, body, headers = busy_proxy.request("GET", "/config_dump")
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    dump = json.loads(body)
    types = [c["@type"] for c in dump["configs"]]
    assert types == ["type.googleapis.com/envoy.admin.v3.BootstrapConfigDump",
                     "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
                     "type.googleapis.com/envoy.admin.v3.ClustersConfigDump"]
    boot, listeners, clusters = dump["configs"]
    assert boot["bootstrap"]["node"]["id"] == "integration-test"
    assert [x["listener"]["name"] for x in listeners["static_listeners"]] == ["ingress"]
    assert [x["cluster"]["name"] for x in clusters["static_clusters"]] == ["backend"]
    assert all("last_updated" in x for x in listeners["static_listeners"] + clusters["static_clusters"])
    ports = [e["endpoint"]["address"]["socket_address"]["port_value"]
             for loc in clusters["static_clusters"][0]["cluster"]["load_assignment"]["endpoints"]
             for e in loc["lb_endpoints"]]
    assert ports == [s.port for s in busy_proxy.servers]


def test_clusters_text_and_json(busy_proxy):
    proxy = busy_proxy
    a, b = proxy.servers
    status, text = proxy.get("/clusters")
    assert status == 200
    lines = text.splitlines()
    assert "backend::observability_name::backend" in lines
    assert f"backend::127.0.0.1:{a.port}::weight::1" in lines
    assert f"backend::127.0.0.1:{b.port}::weight::3" in lines
    assert f"backend::127.0.0.1:{a.port}::cx_total::{a.accepted}" in lines
    assert f"backend::127.0.0.1:{b.port}::cx_total::{b.accepted}" in lines
    assert f"backend::127.0.0.1:{a.port}::health_flags::healthy" in lines
    assert a.accepted + b.accepted == N_CONNECTIONS

    status, body = proxy.get("/clusters?format=json")
    assert status == 200
    (cluster,) = json.loads(body)["cluster_statuses"]
    assert cluster["name"] == "backend"
    got = {h["address"]["socket_address"]["port_value"]:
           (h["weight"], {s["name"]: int(s.get("value", 0)) for s in h["stats"]})
           for h in cluster["host_statuses"]}
    assert got[a.port][0] == 1 and got[b.port][0] == 3
    assert got[a.port][1]["cx_total"] == a.accepted
    assert got[b.port][1]["cx_total"] == b.accepted


def test_methods_and_unknown_paths(busy_proxy):
    proxy = busy_proxy
    for path in ("/quitquitquit", "/drain_listeners", "/reload"):
        status, body = proxy.get(path)
        assert status == 405, (path, status)
        assert "requires POST" in body
    for path in ("/stats", "/config_dump"):
        assert proxy.post(path)[0] == 405
    status, body = proxy.get("/no/such/thing")
    assert status == 404 and re.search(r"no admin endpoint /no/such/thing", body)
    # None of the GETs above shut anything down.
    assert proxy.running()
    assert proxy.get("/ready") == (200, "LIVE\n")
    assert short_echo(proxy.port, b"still proxying") == b"still proxying"


def test_stats_prometheus_has_one_series_per_scope(engine_factory):
    """Each scope's name is a label (Envoy's tag names), so two connection
    managers or two clusters never expose the same series twice (Prometheus
    would keep one and drop the other silently)."""
    import collections

    from support import http as h

    from meshcore.telemetry import prometheus as metrics

    engine = engine_factory(config=h.bootstrap(
        [h.hcm_listener("a", routes=[h.route("/", "x")]), h.hcm_listener("b", routes=[h.route("/", "y")])],
        [h.http_cluster("x", [9]), h.http_cluster("y", [10])]))
    text = metrics.exposition(engine.stats(), engine.istio)[0]
    series = collections.Counter(line.rsplit(" ", 1)[0] for line in text.splitlines()
                                 if line and not line.startswith("#"))
    assert [s for s, n in series.items() if n > 1] == []
    assert 'envoy_http_downstream_rq_total{envoy_http_conn_manager_prefix="a"}' in series
