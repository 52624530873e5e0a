"""`meshcore stat` against real `meshcore proxy` sidecars (support/telemetry.py).

    app -> [productpage-v1 sidecar] -> [reviews-v1 sidecar] -> backend

The command runs as a user runs it (`python -m meshcore stat ADDR...`).
Traffic is sent inside its window: the test waits for its debug log line
"first scrape done", sends a known set of requests, and the command's second
scrape counts exactly those. Both sidecars count every request; the rows
must not. Latencies are checked against the buckets only (a 30 ms handler
lands in (25, 50]), never against a clock.
"""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from support import http as h
from support import telemetry as t
from support.net import free_port, wait_until

from meshcore.telemetry import golden_signals as stat_cli

WINDOW = "3"
SLOW, FAILING = 48, 12  # 60 requests, 20% of them 503s


def backend_handler(req):
    if req.target.startswith("/fail"):
        return h.Reply(503, [], b"backend down\n")
    time.sleep(0.03)
    return h.Reply(200, [], b"hello")


class Stat:
    """A running `meshcore stat`; ready() once its first scrape is done."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([sys.executable, "-m", "meshcore", "--log-level", "debug", "stat", *args],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.err: list[str] = []
        self._first = threading.Event()
        self._reader = threading.Thread(target=self._read, name="stat-stderr", daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stderr:
            self.err.append(line)
            if "first scrape done" in line:
                self._first.set()

    def ready(self, timeout: float = 30) -> None:
        assert self._first.wait(timeout), "".join(self.err)

    def result(self, timeout: float = 60) -> tuple[int, str, str]:
        out = self.proc.stdout.read()
        rc = self.proc.wait(timeout)
        self._reader.join(timeout)
        self.proc.stdout.close()
        self.proc.stderr.close()
        return rc, out, "".join(self.err)

    def json(self) -> dict:
        rc, out, err = self.result()
        assert rc == 0, err
        return json.loads(out)


def stat(*args, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "meshcore", "stat", *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def mesh(proxy_factory, backend_factory):
    """(client sidecar's admin address, server sidecar's, the client's outbound port)."""
    backend = backend_factory("reviews", backend_handler)
    # the sidecars keep pooled connections to each other: a short drain at teardown
    server = proxy_factory(t.server_sidecar(backend.port), name="reviews", drain_timeout=0.5)
    client = proxy_factory(t.client_sidecar(server.listener_port("inbound")), name="productpage", drain_timeout=0.5)
    return f"127.0.0.1:{client.admin_port}", str(server.admin_port), client.listener_port("outbound")


def send_traffic(port: int) -> None:
    """SLOW 200s (30 ms each) and FAILING 503s over 4 connections at once."""
    def one_connection(k):
        with h.Conn(port) as c:
            for i in range(k, SLOW + FAILING, 4):
                path = "/fail" if i % 5 == 0 else "/slow"
                assert c.request("GET", path, host=t.SERVICE).status == (503 if path == "/fail" else 200)

    with ThreadPoolExecutor(4, thread_name_prefix="traffic") as pool:
        list(pool.map(one_connection, range(4)))


def the_row(doc: dict) -> dict:
    (row,) = doc["rows"]
    return row


def test_rows_count_each_request_once_with_latency_from_the_buckets(mesh):
    client, server, port = mesh
    runs = {
        "auto": Stat(client, server, "--window", WINDOW, "-o", "json"),
        "both": Stat(server, client, "--window", WINDOW, "-o", "json", "--reporter", "both"),
        "table": Stat(client, server, "--window", WINDOW),
        "service": Stat(client, server, "--window", WINDOW, "-o", "json", "--by", "service", "--reporter", "source"),
        "filtered": Stat(client, server, "--window", WINDOW, "-o", "json", "--from", "default/productpage-v1",
                         "--to", "reviews.default", "-n", "default"),
        "elsewhere": Stat(client, server, "--window", WINDOW, "-o", "json", "-n", "istio-system"),
    }
    for run in runs.values():
        run.ready()
    send_traffic(port)
    assert SLOW + FAILING == 60 and FAILING == 12

    doc = runs["auto"].json()
    row = the_row(doc)
    assert (row["source"], row["destination"], row["reporter"]) == (
        "default/productpage-v1", "default/reviews-v1", "destination")
    assert (row["source_workload"], row["destination_workload"]) == ("productpage-v1", "reviews-v1")
    assert row["destination_services"] == [t.SERVICE]
    assert (row["requests"], row["successes"], row["failures"]) == (60, 48, 12)
    assert row["response_codes"] == {"200": 48, "503": 12}
    assert row["success_rate"] == 0.8
    (served,) = [p for p in doc["proxies"] if p["address"] == f"127.0.0.1:{server}"]
    assert served["elapsed_seconds"] >= 3 and served["istio_metrics"] and served["counter_resets"] == 0
    assert row["rps"] == pytest.approx(60 / served["elapsed_seconds"])
    assert row["proxies"] == [f"127.0.0.1:{server}"]  # the client's count of the same requests is left out
    hist = row["duration_ms"]
    assert hist["count"] == hist["buckets"]["+Inf"] == 60
    assert hist["buckets"]["25.0"] <= 12  # only the 503s can be that fast
    lat = row["latency_ms"]
    assert 25 <= lat["p50"] <= 50, lat
    assert lat["p50"] <= lat["p95"] <= lat["p99"]
    for name, q in stat_cli.QUANTILES:  # the same interpolation, from the raw counts
        assert lat[name] == stat_cli.histogram_quantile(q, hist["buckets"].items())
    assert row["tcp"] is None and doc["errors"] == []

    both = runs["both"].json()["rows"]
    assert [r["reporter"] for r in both] == ["destination", "source"]
    for r in both:
        assert (r["source"], r["destination"], r["requests"], r["successes"]) == (
            "default/productpage-v1", "default/reviews-v1", 60, 48)
        assert 25 <= r["latency_ms"]["p50"] <= 50

    rc, out, err = runs["table"].result()
    assert rc == 0, err
    header, line = out.splitlines()
    assert header.split() == ["SOURCE", "DESTINATION", "REPORTER", "RPS", "SUCCESS", "P50", "P95", "P99"]
    cells = line.split()
    assert cells[:3] == ["default/productpage-v1", "default/reviews-v1", "destination"]
    assert cells[3].endswith("rps") and cells[4] == "80.00%"
    assert all(c.endswith("ms") for c in cells[5:])
    assert 25 <= float(cells[5].removesuffix("ms")) <= 50

    row = the_row(runs["service"].json())
    assert (row["source"], row["destination"], row["reporter"], row["requests"]) == (
        "default/productpage-v1", t.SERVICE, "source", 60)
    assert (row["destination_service_name"], row["destination_workloads"]) == ("reviews", ["default/reviews-v1"])

    assert the_row(runs["filtered"].json())["requests"] == 60
    assert runs["elsewhere"].json()["rows"] == []


def test_an_unreachable_admin_api_is_named(proxy_factory):
    port = free_port()
    out = stat(str(port), "--window", "0.2")
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.strip() == f"meshcore: error: cannot reach the admin API at 127.0.0.1:{port}: Connection refused"

    # among several: named, and the rest is still shown (exit 1: the view is partial)
    plain = proxy_factory(h.simple([free_port()]), name="plain")
    out = stat(f"127.0.0.1:{port}", str(plain.admin_port), "--window", "0.2", "-o", "json")
    assert out.returncode == 1
    assert f"cannot reach the admin API at 127.0.0.1:{port}" in out.stderr
    doc = json.loads(out.stdout)
    assert [p["address"] for p in doc["proxies"]] == [f"127.0.0.1:{plain.admin_port}"]
    assert len(doc["errors"]) == 1 and doc["rows"] == []


def test_a_proxy_without_istio_metrics_gives_an_empty_table(proxy_factory):
    plain = proxy_factory(h.simple([free_port()]), name="plain")
    out = stat(str(plain.admin_port), "--window", "0.2")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["SOURCE", "DESTINATION", "REPORTER", "RPS", "SUCCESS", "P50", "P95", "P99"]
    assert out.stderr.strip() == (f"meshcore: 127.0.0.1:{plain.admin_port}: no istio_requests_total: "
                                  "is istio.stats configured? (an istio.stats filter on a listener with "
                                  "traffic_direction INBOUND or OUTBOUND; nothing is counted before its first request)")


@pytest.mark.parametrize("args", [[], ["15000", "--window", "0"], ["15000", "--reporter", "client"],
                                  ["localhost:http"], ["15000", "--by", "pod"]])
def test_usage_errors_exit_2(args, capsys):
    from meshcore import cli

    with pytest.raises(SystemExit) as exit_:
        cli.main(["stat", *args])
    assert exit_.value.code == 2 and "usage: meshcore stat" in capsys.readouterr().err


def tcp_sidecar(echo_port: int) -> dict:
    cluster = "outbound|27017||mongodb.default.svc.cluster.local"
    return {"node": t.node("ratings-v1", "ratings"), "static_resources": {
        "listeners": [{"name": "tcp", "traffic_direction": "OUTBOUND",
                       "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                       "filter_chains": [{"filters": [t.STATS, {
                           "name": "envoy.filters.network.tcp_proxy", "typed_config": {
                               "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
                               "stat_prefix": "tcp", "cluster": cluster}}]}]}],
        "clusters": [h.http_cluster(cluster, [echo_port])]}}


def test_tcp_connections(proxy_factory, echo):
    proxy = proxy_factory(tcp_sidecar(echo.port), name="ratings")
    port = proxy.listener_port("tcp")
    with socket.create_connection(("127.0.0.1", port)) as done:  # opened and closed before the window
        done.sendall(b"a")
        assert done.recv(1) == b"a"
    wait_until(lambda: t.value(proxy.get("/stats/prometheus")[1], "istio_tcp_connections_closed_total") == 1,
               what="the first connection to be counted closed")
    runs = [Stat(str(proxy.admin_port), "--window", "1", *extra) for extra in ([], ["-o", "json"])]
    for run in runs:
        run.ready()
    with socket.create_connection(("127.0.0.1", port)) as s:  # open across the second scrape
        s.sendall(b"z" * 1000)
        got = b""
        while len(got) < 1000:
            got += s.recv(65536)
        rc, out, err = runs[0].result()
        doc = runs[1].json()
    assert rc == 0, err
    header, line = out.splitlines()
    assert header.split()[-2:] == ["TCP", "CONN"]
    assert line.split() == ["default/ratings-v1", "unknown", "source", "-", "-", "-", "-", "-", "1"]
    row = the_row(doc)
    assert (row["protocol"], row["requests"], row["destination_services"]) == (
        "tcp", None, ["mongodb.default.svc.cluster.local"])
    assert row["tcp"] == {"connections_opened": 1, "connections_closed": 0, "sent_bytes": 1000,
                          "received_bytes": 1000, "connections_open": 1}


# ---- the arithmetic, on text -------------------------------------------------------------------------------


LES = ["0.5", "1.0", "5.0", "10.0", "25.0", "50.0", "100.0", "250.0", "+Inf"]


def exposition(requests: dict, buckets: list[int], reporter: str = "destination") -> str:
    labels = (f'reporter="{reporter}",source_workload="web",source_workload_namespace="default",'
              'destination_workload="api",destination_workload_namespace="default",'
              'destination_service="api.default.svc.cluster.local"')
    lines = ["# TYPE istio_requests_total counter"]
    lines += [f'istio_requests_total{{{labels},response_code="{code}"}} {n}' for code, n in requests.items()]
    lines.append("# TYPE istio_request_duration_milliseconds histogram")
    lines += [f'istio_request_duration_milliseconds_bucket{{{labels},response_code="200",le="{le}"}} {n}'
              for le, n in zip(LES, buckets, strict=True)]
    lines.append(f'istio_request_duration_milliseconds_sum{{{labels},response_code="200"}} 1000')
    lines.append(f'istio_request_duration_milliseconds_count{{{labels},response_code="200"}} {buckets[-1]}')
    return "\n".join(lines) + "\n"


def test_histogram_quantile_is_promqls():
    buckets = list(zip(LES, [0, 0, 10, 10, 10, 30, 40, 40, 40], strict=True))
    q = stat_cli.histogram_quantile
    assert q(0.5, buckets) == 25 + 25 * (20 - 10) / 20  # rank 20, 10 below the (25, 50] bucket of 20
    assert q(0.1, buckets) == pytest.approx(1 + 4 * (4 / 10))
    assert q(0.99, buckets) == pytest.approx(50 + 50 * (39.6 - 30) / 10)
    assert q(0.5, list(zip(LES, [0] * 8 + [5], strict=True))) == 250  # in +Inf: the highest finite bound
    assert q(0.5, list(zip(LES, [0] * 9, strict=True))) is None
    assert q(0.5, buckets[:-1]) is None  # no +Inf bucket


def test_counters_that_went_down_count_from_zero():
    before = stat_cli.parse(exposition({"200": 100, "503": 5}, [0, 0, 0, 0, 0, 90, 100, 100, 100]), "p", 0.0)
    after = stat_cli.parse(exposition({"200": 8, "503": 7}, [0, 0, 0, 0, 0, 0, 8, 8, 8]), "p", 2.0)
    d = stat_cli.delta(before, after)
    assert d.resets == 2 and not d.restarted  # the 200s and their histogram; the 503s only went up
    (row,) = stat_cli.rows([d])
    assert (row["requests"], row["successes"], row["rps"]) == (10, 8, 5.0)
    assert row["latency_ms"]["p50"] == 50 + 50 * 0.5
    # a restart the counters do not show (they are higher than before) is seen in the uptime
    before.uptime = 100.0
    d = stat_cli.delta(before, stat_cli.parse(exposition({"200": 150, "503": 5}, [0] * 5 + [150] * 4), "p", 2.0,
                                              uptime=1.0))
    assert d.restarted and stat_cli.rows([d])[0]["requests"] == 155


def test_auto_takes_the_destinations_count_where_there_is_one():
    def d(text, at=1.0):
        return stat_cli.delta(stat_cli.parse("", "x", 0.0), stat_cli.parse(text, "x", at))

    src = exposition({"200": 9}, [0, 0, 9, 9, 9, 9, 9, 9, 9], reporter="source")
    dst = exposition({"200": 9}, [0, 9, 9, 9, 9, 9, 9, 9, 9], reporter="destination")
    assert [r["reporter"] for r in stat_cli.rows([d(src), d(dst)])] == ["destination"]
    assert [r["reporter"] for r in stat_cli.rows([d(src)])] == ["source"]  # an unmeshed server: the client's count
    assert [r["reporter"] for r in stat_cli.rows([d(src), d(dst)], reporter="both")] == ["destination", "source"]
    assert stat_cli.rows([d(dst)], reporter="source") == []
