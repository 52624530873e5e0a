#!/usr/bin/env python3
"""Telemetry benchmark: what metrics, access logs and trace sampling cost on one HTTP/1.1 hop.

    bash benchmarks/setup.sh && .venv/bin/python benchmarks/bench_telemetry.py [--quick]

bench_http.py's method, in one run, on loopback: wrk -> nginx directly, then
wrk -> proxy -> nginx for each proxy twice in a row, telemetry off and on.
Each proxy runs one worker pinned to PROXY_CORE; the upstream nginx, wrk and
the trace collector share LOAD_CORE. Per target:

  * a GET / through the proxy that must return 200 "ok\\n" (else the proxy failed)
  * wrk -t1 -c1  --latency : p50 / p99 latency (one request in flight)
  * wrk -t1 -c32           : requests per second
  * proxy CPU seconds (utime+stime from /proc) / requests, around each run,
    read SETTLE_S after wrk exits so deferred telemetry work is counted
  * RSS at start, after the runs, and peak (VmHWM)
  * non-2xx responses and socket errors (wrk), upstream connections (nginx
    stub_status), the proxy's own counters (admin API: meshcore and Envoy)
  * telemetry on: access-log lines written, spans the collector received,
    istio_requests_total from a Prometheus scrape, each against the requests
    the proxy served

The targets:

  meshcore off  bench_http.py's bootstrap (HCM, one route, a STATIC cluster)
  meshcore on   the same, plus what an Istio sidecar reports: istio.stats and
                istio.metadata_exchange before the router on an OUTBOUND
                listener, node metadata and an Istio-named cluster with
                filter_metadata.istio.services (Istio's standard metrics,
                scraped from /stats/prometheus halfway through each measured
                run); an HCM file access_log (meshcore's default JSON
                format); tracing with random_sampling 1 (percent) to an
                OpenTelemetry collector over HTTP (OTLP/protobuf), which this
                benchmark runs in a process of its own
  haproxy off   bench_http.py's haproxy.cfg
  haproxy on    + `log stdout format raw local0`, `option httplog` (stdout
                goes to a file)
  envoy off     the same file as meshcore off
  envoy on      + the same HCM file access_log (Envoy's default text format).
                Upstream Envoy has no istio.stats / metadata exchange (Istio's
                own build does), so Envoy gets its access log only.

--breakdown adds meshcore with each part alone (access log, Istio metrics,
tracing). The run prints, per proxy, telemetry-on / telemetry-off for CPU per
request, added latency and req/s, and the budget from the issue: meshcore's
CPU per request with telemetry on at most 1.10x with it off. A missed budget
or a telemetry count that is off is reported, never an error. The exit status
is non-zero only when a benchmark could not run (1: a proxy did not start,
died or did not proxy the check request; 2: a tool is missing, the upstream
or the collector died).
"""
from __future__ import annotations

import http.client
import json
import math
import os
import platform
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_http import (  # noqa: E402  (bench_http.py's target: its checks and figures)
    check_request,
    derive,
    had_errors,
    print_target_tables,
    tool_versions,
)
from common import (  # noqa: E402
    BenchError,
    Measurement,
    Proc,
    Target,
    WrkResult,
    admin_counters,
    bench_arg_parser,
    cpu_count,
    find_envoy,
    fmt,
    free_port,
    http_get,
    keep_workdir,
    make_workdir,
    measure_beside,
    measurement_dict,
    meshcore_command,
    meshcore_python,
    nginx_accepts,
    parse_bench_args,
    peak_rss_kib,
    pick_meshcore_launcher,
    print_table,
    ratio,
    rss_kib,
    run_wrk,
    start_nginx,
    start_pinned,
    wait_port,
    which,
)

PROXIES = ("meshcore", "haproxy", "envoy")

# What the upstream answers to GET /; checked through each proxy before its runs.

# Added latency <= 0 is clamped to this (wrk's resolution) before dividing.
ADDED_LATENCY_EPSILON_MS = 0.001

# Above this share of one core used by other work during a run, the row is flagged.
NOISY_SHARE = 0.10

# Client connections carrying requests per target (check, warm-up 32, 1, 32),
# and the point past which upstream connections were not kept alive.
CLIENT_CONNS = 1 + 32 + 1 + 32
CHURN_CONNS = CLIENT_CONNS + 32

# Requests wrk may leave in flight when it stops (warm-up, -c1, -c32): a proxy
# serves (and logs) them, wrk does not count them.
IN_FLIGHT_MAX = 32 + 1 + 32

# The budget: meshcore's CPU per request with telemetry on / off.
BUDGET = 1.10
TARGETS = [
    Target("cpu_us_per_rq_c1", "CPU/request @1 conn", "off", "max", BUDGET),
    Target("cpu_us_per_rq_c32", "CPU/request @32 conns", "off", "max", BUDGET),
]

# Trace sampling of the telemetry-on targets, in percent (HCM tracing.random_sampling).
SAMPLING_PERCENT = 1.0

# After each measured wrk run, the proxy's CPU is read this much later: meshcore
# drains its access-log rings every 0.1 s and formats the lines then, Envoy
# flushes its log buffer every second. Every target waits the same.
SETTLE_S = 0.5

# After a telemetry-on target's runs: the access log and the collector's
# count must stay unchanged this long before they are read (meshcore exports
# spans at least every second, Envoy flushes its log every second).
QUIET_S = 2.5
QUIET_TIMEOUT_S = 15.0

# Istio names for the one upstream service (meshcore on).
SERVICE_HOST = "nginx.bench.svc.cluster.local"
WORKLOAD = "bench-client"
NAMESPACE = "bench"

HCM_TYPE = ("type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
            "HttpConnectionManager")

# The shared shape: bench_http.py's bootstrap with slots for the telemetry
# pieces. With every slot empty (and cluster "upstream") it is that file.
BOOTSTRAP = """\
# Generated by benchmarks/bench_telemetry.py: {what}.
{node}admin:
  address:
    socket_address: {{ address: 127.0.0.1, port_value: {admin_port} }}
static_resources:
  listeners:
  - name: http
{traffic_direction}    address:
      socket_address: {{ address: 127.0.0.1, port_value: {listen_port} }}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": {hcm_type}
          stat_prefix: http
          codec_type: HTTP1
{access_log}{tracing}          route_config:
            name: local
            virtual_hosts:
            - name: any
              domains: ["*"]
              routes:
              - match: {{ prefix: / }}
                route: {{ cluster: "{cluster}" }}
{decorator}          http_filters:
{istio_filters}          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: "{cluster}"
    type: STATIC
    connect_timeout: 1s
    lb_policy: ROUND_ROBIN
{cluster_metadata}    load_assignment:
      cluster_name: "{cluster}"
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: {{ address: 127.0.0.1, port_value: {upstream_port} }}
{collector_cluster}"""

PLAIN_NODE = """\
node:
  id: bench-telemetry
  cluster: bench
"""

# As Istio's injector writes it for a pod (see tests/integration/support/telemetry.py).
ISTIO_NODE = f"""\
node:
  id: sidecar~127.0.0.1~{WORKLOAD}.{NAMESPACE}~{NAMESPACE}.svc.cluster.local
  cluster: {WORKLOAD}.{NAMESPACE}
  metadata:
    NAME: {WORKLOAD}
    NAMESPACE: {NAMESPACE}
    WORKLOAD_NAME: {WORKLOAD}
    CLUSTER_ID: Kubernetes
    MESH_ID: cluster.local
    LABELS: {{ app: {WORKLOAD}, version: v1 }}
"""

ISTIO_FILTERS = """\
          - name: istio.metadata_exchange
            typed_config:
              "@type": type.googleapis.com/udpa.type.v1.TypedStruct
              type_url: type.googleapis.com/io.istio.http.peer_metadata.Config
              value:
                upstream_discovery: [ { istio_headers: {} } ]
                upstream_propagation: [ { istio_headers: {} } ]
          - name: istio.stats
            typed_config:
              "@type": type.googleapis.com/udpa.type.v1.TypedStruct
              type_url: type.googleapis.com/stats.PluginConfig
"""

ACCESS_LOG = """\
          access_log:
          - name: envoy.access_loggers.file
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
              path: {path}
"""

TRACING = """\
          tracing:
            random_sampling: {{ value: {sampling:g} }}
            provider:
              name: envoy.tracers.opentelemetry
              typed_config:
                "@type": type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig
                service_name: {service}
                http_service:
                  http_uri: {{ uri: "http://collector/v1/traces", cluster: collector, timeout: 1s }}
"""

DECORATOR = """\
                decorator: {{ operation: "{host}:{port}/*" }}
"""

CLUSTER_METADATA = """\
    metadata:
      filter_metadata:
        istio:
          services:
          - {{ host: {host}, name: nginx, namespace: {ns} }}
"""

COLLECTOR_CLUSTER = """\
  - name: collector
    type: STATIC
    connect_timeout: 1s
    lb_policy: ROUND_ROBIN
    load_assignment:
      cluster_name: collector
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: {{ address: 127.0.0.1, port_value: {port} }}
"""

# bench_http.py's haproxy.cfg; {logging} is empty for "off".
HAPROXY_CFG = """\
# Generated by benchmarks/bench_telemetry.py: {what}.
global
    nbthread 1
    cpu-map 1/1 {core}
{global_log}
defaults
    mode http
{defaults_log}    option http-keep-alive
    http-reuse safe
    timeout connect 1s
    timeout client 60s
    timeout server 60s
    timeout http-request 10s

frontend http
    bind 127.0.0.1:{listen_port}
    default_backend upstream

backend upstream
    server nginx 127.0.0.1:{upstream_port}
"""
# Logging as in a container: one line per request to stdout (a file here),
# written by HAProxy itself, no syslog daemon in between.
HAPROXY_GLOBAL_LOG = "    log stdout format raw local0\n"
HAPROXY_DEFAULTS_LOG = "    log global\n    option httplog\n"

# The trace collector: a ThreadingHTTPServer in a process of its own (its own
# GIL, pinned to the load core) answering 200 to POST /v1/traces. It counts
# the spans in each OTLP/protobuf ExportTraceServiceRequest by walking the
# wire format (resource_spans = 1 -> scope_spans = 2 -> spans = 2), so it
# needs nothing beyond the standard library. GET /count returns its counts.
COLLECTOR = r'''
import http.server, json, sys, threading

counts = {"posts": 0, "spans": 0, "bytes": 0, "bad": 0, "bad_detail": ""}
lock = threading.Lock()

def varint(b, i):
    n = shift = 0
    while True:
        c = b[i]
        i += 1
        n |= (c & 0x7F) << shift
        if c < 0x80:
            return n, i
        shift += 7

def fields(b):
    i = 0
    while i < len(b):
        key, i = varint(b, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            _, i = varint(b, i)
            yield num, None
        elif wt == 1:
            i += 8
            yield num, None
        elif wt == 2:
            n, i = varint(b, i)
            yield num, b[i:i + n]
            i += n
        elif wt == 5:
            i += 4
            yield num, None
        else:
            raise ValueError(f"wire type {wt}")

def count_spans(body):
    n = 0
    for f, rs in fields(body):
        if f == 1:
            for g, ss in fields(rs):
                if g == 2:
                    n += sum(1 for h, _ in fields(ss) if h == 2)
    return n

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        ctype = self.headers.get("content-type", "")
        try:
            if self.path != "/v1/traces" or ctype != "application/x-protobuf":
                raise ValueError(f"POST {self.path} content-type {ctype!r}")
            n, bad = count_spans(body), ""
        except (ValueError, IndexError) as e:
            n, bad = 0, str(e)
        with lock:
            counts["posts"] += 1
            counts["spans"] += n
            counts["bytes"] += len(body)
            if bad:
                counts["bad"] += 1
                counts["bad_detail"] = bad
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def do_GET(self):
        with lock:
            body = json.dumps(counts).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass

http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
'''


@dataclass(frozen=True)
class Variant:
    """One target: a proxy with a set of telemetry features."""

    key: str            # "meshcore-on"
    proxy: str          # "meshcore", "haproxy", "envoy"
    label: str          # "meshcore on"
    on: bool            # compared with the proxy's "off" target
    metrics: bool = False     # Istio metrics (meshcore) + a Prometheus scrape per run
    access_log: bool = False
    tracing: bool = False
    budget: bool = False      # the budget applies to this one vs off
    note: str = ""

    @property
    def telemetry(self) -> str:
        parts = [p for p, on in (("metrics", self.metrics), ("access log", self.access_log),
                                 ("tracing 1%", self.tracing)) if on]
        return " + ".join(parts) if parts else "none"


def variants(proxies: list[str], breakdown: bool) -> list[Variant]:
    out = []
    if "meshcore" in proxies:
        out += [Variant("meshcore-off", "meshcore", "meshcore off", False),
                Variant("meshcore-on", "meshcore", "meshcore on", True, metrics=True,
                        access_log=True, tracing=True, budget=True)]
        if breakdown:
            out += [Variant("meshcore-log", "meshcore", "meshcore +log", True, access_log=True),
                    Variant("meshcore-metrics", "meshcore", "meshcore +metrics", True, metrics=True),
                    Variant("meshcore-tracing", "meshcore", "meshcore +tracing", True, tracing=True)]
    if "haproxy" in proxies:
        out += [Variant("haproxy-off", "haproxy", "haproxy off", False),
                Variant("haproxy-on", "haproxy", "haproxy on", True, access_log=True,
                        note="httplog to stdout (a file)")]
    if "envoy" in proxies:
        out += [Variant("envoy-off", "envoy", "envoy off", False),
                Variant("envoy-on", "envoy", "envoy on", True, access_log=True,
                        note="access log only: no Istio filters or tracing in upstream Envoy")]
    return out


@dataclass
class Telemetry:
    """What a telemetry-on target reported, and what it should have."""

    log_lines: int | None = None       # access-log lines (HAProxy: "GET" lines of its stdout)
    proxy_requests: int | None = None  # the proxy's downstream_rq_total (admin API)
    spans_received: int | None = None  # by the collector, during this target
    collector_posts: int | None = None
    collector_bad: int = 0
    istio_requests: float | None = None  # sum of istio_requests_total, scraped after the runs
    scrapes: list = field(default_factory=list)  # [(when, status, ms, bytes)]
    counters: dict = field(default_factory=dict)  # telemetry counters (admin API)
    problems: list = field(default_factory=list)


@dataclass
class Result:
    name: str
    variant: Variant | None = None
    warmup: WrkResult | None = None
    c1: Measurement | None = None
    c32: Measurement | None = None
    start_rss_kib: int | None = None
    warm_rss_kib: int | None = None
    end_rss_kib: int | None = None
    peak_rss_kib: int | None = None
    upstream_conns: int | None = None
    counters: dict = field(default_factory=dict)
    counters_note: str | None = None
    telemetry: Telemetry | None = None
    skipped: str | None = None
    failed: str | None = None
    metrics: dict = field(default_factory=dict)


# ---- configs ---------------------------------------------------------------------------


def upstream_cluster(v: Variant, upstream_port: int) -> str:
    return f"outbound|{upstream_port}||{SERVICE_HOST}" if v.metrics else "upstream"


def bootstrap_text(v: Variant, ctx: dict, access_log_path: Path | None) -> str:
    port = ctx["upstream_port"]
    cluster = upstream_cluster(v, port)
    what = ("the telemetry-off bootstrap, run by meshcore and envoy" if not v.on
            else f"{v.label}: {v.telemetry}")
    return BOOTSTRAP.format(
        what=what,
        node=ISTIO_NODE if v.metrics else PLAIN_NODE,
        admin_port=ctx["admin_port"],
        traffic_direction="    traffic_direction: OUTBOUND\n" if v.metrics else "",
        listen_port=ctx["listen_port"],
        hcm_type=HCM_TYPE,
        access_log=ACCESS_LOG.format(path=access_log_path) if v.access_log else "",
        tracing=TRACING.format(sampling=SAMPLING_PERCENT, service=WORKLOAD) if v.tracing else "",
        cluster=cluster,
        # Istio names each route's span with a decorator.
        decorator=DECORATOR.format(host=SERVICE_HOST, port=port) if v.metrics or v.tracing else "",
        istio_filters=ISTIO_FILTERS if v.metrics else "",
        cluster_metadata=CLUSTER_METADATA.format(host=SERVICE_HOST, ns=NAMESPACE) if v.metrics else "",
        upstream_port=port,
        collector_cluster=COLLECTOR_CLUSTER.format(port=ctx["collector_port"]) if v.tracing else "",
    )


def access_log_path(v: Variant, ctx: dict) -> Path | None:
    return ctx["workdir"] / f"access-{v.key}.log" if v.access_log else None


# ---- launching each proxy ------------------------------------------------------------
# Each starter returns (proc, listen port, admin port or None, access-log path or None).


def write_bootstrap(v: Variant, ctx: dict) -> tuple[Path, Path | None]:
    log = access_log_path(v, ctx)
    if not v.on:  # one file for meshcore off and envoy off, as in bench_http.py
        path = ctx["workdir"] / "bootstrap-off.yaml"
    else:
        path = ctx["workdir"] / f"bootstrap-{v.key}.yaml"
    path.write_text(bootstrap_text(v, ctx, log))
    return path, log


def start_meshcore(v: Variant, ctx: dict):
    bootstrap, log = write_bootstrap(v, ctx)
    launcher = ctx["meshcore_launcher"]
    cmd = meshcore_command(launcher, ctx["meshcore_python"], bootstrap, ctx["admin_port"])
    proc = start_pinned(v.key, cmd, ctx["proxy_core"], ctx["workdir"])
    return proc, ctx["listen_port"], ctx["admin_port"] if launcher == "cli" else None, log


def start_haproxy(v: Variant, ctx: dict):
    port = free_port()
    cfg = ctx["workdir"] / f"haproxy-{'on' if v.on else 'off'}.cfg"
    cfg.write_text(HAPROXY_CFG.format(
        what=v.label, core=ctx["proxy_core"], listen_port=port, upstream_port=ctx["upstream_port"],
        global_log=HAPROXY_GLOBAL_LOG if v.access_log else "",
        defaults_log=HAPROXY_DEFAULTS_LOG if v.access_log else ""))
    # -db: foreground, no master. Its stdout is the proc's log file: with
    # logging on, that file is the access log (and any warning it prints).
    proc = start_pinned(v.key, [ctx["haproxy"], "-db", "-f", str(cfg)],
                        ctx["proxy_core"], ctx["workdir"])
    return proc, port, None, proc.log_path if v.access_log else None


def start_envoy(v: Variant, ctx: dict):
    bootstrap, log = write_bootstrap(v, ctx)
    base_id = os.getpid() * 2 + (1 if v.on else 0)  # apart from any other Envoy, and between ours
    cmd = [ctx["envoy"], "-c", str(bootstrap), "--concurrency", "1",
           "--base-id", str(base_id), "-l", "error"]
    proc = start_pinned(v.key, cmd, ctx["proxy_core"], ctx["workdir"])
    return proc, ctx["listen_port"], ctx["admin_port"], log


STARTERS = {"meshcore": start_meshcore, "haproxy": start_haproxy, "envoy": start_envoy}


def start_collector(ctx: dict) -> tuple[Proc, int]:
    port = free_port()
    proc = start_pinned("collector", [sys.executable, "-c", COLLECTOR, str(port)],
                        ctx["load_core"], ctx["workdir"])
    wait_port(port, proc=proc)
    return proc, port


def collector_counts(port: int) -> dict:
    status, body = http_get(port, "/count")
    if status != 200:
        raise BenchError(f"collector answered {status}")
    return json.loads(body)


# ---- telemetry readings ------------------------------------------------------------------


def scrape(admin_port: int, when: str, into: list) -> str | None:
    """One GET /stats/prometheus, as Prometheus would make it; (when, status, ms,
    bytes) goes into `into`. Returns the text (None on failure)."""
    t0 = time.monotonic()
    try:
        status, body = http_get(admin_port, "/stats/prometheus", timeout=10.0)
    except (OSError, http.client.HTTPException) as e:
        into.append((when, f"{type(e).__name__}: {e}", None, 0))
        return None
    into.append((when, status, (time.monotonic() - t0) * 1e3, len(body)))
    return body.decode(errors="replace") if status == 200 else None


def prom_sum(text: str, name: str) -> float | None:
    """The sum of every sample of `name` in Prometheus text (None if absent)."""
    total, seen = 0.0, False
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            try:
                total += float(line.rsplit(" ", 1)[1])
                seen = True
            except ValueError:
                pass
    return total if seen else None


def file_size(path: Path | None) -> int:
    try:
        return path.stat().st_size if path else 0
    except OSError:
        return 0


def count_lines(path: Path, needle: bytes | None = None) -> int:
    n = 0
    with open(path, "rb") as f:
        for line in f:
            if needle is None or needle in line:
                n += 1
    return n


def wait_quiet(probe, quiet_s: float = QUIET_S, timeout_s: float = QUIET_TIMEOUT_S) -> bool:
    """Polls probe() until its value has not changed for quiet_s; False on timeout."""
    deadline = time.monotonic() + timeout_s
    last, since = probe(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = probe()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return True
    return False


# Telemetry counters of interest (admin API), when present.
TELEMETRY_COUNTER = re.compile(r"^(server\.access_log_dropped|tracing\.|filesystem\.|access_logs\.)")


def check_telemetry(v: Variant, t: Telemetry, wrk_total: int) -> None:
    """Fills t.problems: what a telemetry-on target should have reported and did not."""
    served = t.proxy_requests
    if v.access_log and t.log_lines is not None:
        if served is not None:
            if t.log_lines != served:
                t.problems.append(f"access log: {t.log_lines:,} lines for {served:,} requests served "
                                  f"({served - t.log_lines:+,} missing)")
        elif not wrk_total <= t.log_lines <= wrk_total + IN_FLIGHT_MAX:
            t.problems.append(f"access log: {t.log_lines:,} lines for {wrk_total:,} requests wrk "
                              f"completed (+ at most {IN_FLIGHT_MAX} in flight)")
    dropped = t.counters.get("server.access_log_dropped")
    if dropped:
        t.problems.append(f"server.access_log_dropped = {dropped:,}: records lost before "
                          "they were written (or exported as spans)")
    if v.tracing:
        n = served if served is not None else wrk_total
        p = SAMPLING_PERCENT / 100
        expect, slack = n * p, 4 * math.sqrt(n * p * (1 - p)) + 2
        got = t.spans_received
        if got is None:
            t.problems.append("tracing: the collector could not be read")
        elif abs(got - expect) > slack:
            why = ""
            if dropped:
                why = (f" (a span is its request's record in the access-log ring, which dropped "
                       f"{dropped / n:.0%} of them; tracing.opentelemetry.spans_dropped = "
                       f"{t.counters.get('tracing.opentelemetry.spans_dropped', 'n/a')})")
            t.problems.append(f"tracing: {got:,} spans received for {n:,} requests at "
                              f"{SAMPLING_PERCENT:g}%: expected {expect:,.0f} +- {slack:,.0f}{why}")
        sent = t.counters.get("tracing.opentelemetry.spans_sent")
        if got is not None and sent is not None and sent != got:
            t.problems.append(f"tracing: the proxy counts {sent:,} spans sent, the collector "
                              f"received {got:,}")
        for k in ("tracing.opentelemetry.spans_dropped", "tracing.opentelemetry.reports_failed"):
            if t.counters.get(k):
                t.problems.append(f"{k} = {t.counters[k]:,}")
        if t.collector_bad:
            t.problems.append(f"collector: {t.collector_bad} malformed export request(s)")
    if v.metrics and t.scrapes:
        bad = [s for s in t.scrapes if s[1] != 200]
        if bad:
            t.problems.append(f"/stats/prometheus failed: {bad[0][1]} ({bad[0][0]})")
        if t.istio_requests is None:
            t.problems.append("istio_requests_total missing from /stats/prometheus")
        elif served is not None and t.istio_requests != served:
            t.problems.append(f"istio_requests_total = {t.istio_requests:,.0f} for {served:,} "
                              "requests served")


# ---- one target ------------------------------------------------------------------------------


NOTABLE_COUNTER = re.compile(
    r"(_[1345]xx$|fail|timeout|reset|overflow|error|retry|reject|active_rq|"
    r"cancel|_invalid|no_route|no_cluster|no_healthy|flow_control|overload|dropped)")


def context_counters(v: Variant, upstream_port: int) -> tuple[str, ...]:
    cluster = upstream_cluster(v, upstream_port)
    return ("http.http.downstream_cx_total", "http.http.downstream_rq_total",
            f"cluster.{cluster}.upstream_cx_total", f"cluster.{cluster}.upstream_rq_total")


def proxy_counters(admin_port: int, v: Variant, upstream_port: int) -> dict:
    raw = admin_counters(admin_port)
    cluster = upstream_cluster(v, upstream_port)
    scopes = ("http.http.", f"cluster.{cluster}.", "cluster.collector.", "listener.",
              "server.access_log", "tracing.")
    out = {k: raw[k] for k in context_counters(v, upstream_port) if k in raw}
    for k, val in sorted(raw.items()):
        if val and k.startswith(scopes) and NOTABLE_COUNTER.search(k):
            out[k] = val
        elif TELEMETRY_COUNTER.search(k) and (val or v.on):
            out[k] = val
    return out


def bench_target(v: Variant | None, port: int, proc: Proc | None, ctx: dict, args,
                 accepts_before: int, admin_port: int | None = None,
                 log_path: Path | None = None) -> Result:
    """bench_http.py's target: check request, warm-up, -c1 and -c32 runs; plus,
    with telemetry on, a scrape per run and the telemetry counts after."""
    url = f"http://127.0.0.1:{port}/"
    pid = proc.pid if proc else None
    res = Result(v.label if v else "direct", v)
    if proc:
        res.start_rss_kib = rss_kib(pid)
    t = Telemetry() if v is not None and v.on else None
    scraping = t is not None and v.metrics and admin_port is not None
    collector_port = ctx.get("collector_port")
    collector_before = (collector_counts(collector_port)
                        if t is not None and v.tracing and collector_port else None)

    def run(conns):
        timer = None
        if scraping:  # halfway through the run, as a Prometheus scrape would land
            timer = threading.Timer(args.duration / 2, scrape,
                                    (admin_port, f"-c{conns} run", t.scrapes))
            timer.start()
        try:
            m = measure_beside(url, conns, args.duration, True, pid, ctx["upstream_pid"],
                               ctx["helper_pids"], SETTLE_S, args.proxy_core, args.load_core)
        finally:
            if timer:
                timer.join()
        if proc:
            proc.check_alive()
        return m

    check_request(port, proc)
    if scraping:
        # A sidecar that has run a while has been scraped before: the first
        # scrape's one-time cost (meshcore loads prometheus_client then) is
        # paid here, outside the measured runs.
        scrape(admin_port, "before warm-up", t.scrapes)
    res.warmup = run_wrk(url, 32, args.warmup, core=args.load_core)
    if proc:
        proc.check_alive()
        res.warm_rss_kib = rss_kib(pid)
    res.c1 = run(1)
    res.c32 = run(32)
    if proc:
        res.end_rss_kib = rss_kib(pid)
        res.peak_rss_kib = peak_rss_kib(pid)

    if t is not None:
        def probe():
            spans = collector_counts(collector_port)["spans"] if collector_before else None
            return file_size(log_path), spans
        if not wait_quiet(probe):
            t.problems.append(f"access log / spans still arriving {QUIET_TIMEOUT_S:g} s after the runs")
        if collector_before is not None:
            after = collector_counts(collector_port)
            t.spans_received = after["spans"] - collector_before["spans"]
            t.collector_posts = after["posts"] - collector_before["posts"]
            t.collector_bad = after["bad"] - collector_before["bad"]
    if admin_port is not None:
        try:
            res.counters = proxy_counters(admin_port, v, ctx["upstream_port"])
        except (OSError, http.client.HTTPException, BenchError) as e:
            res.counters_note = f"admin API unreadable: {e}"
        if scraping:
            text = scrape(admin_port, "after the runs", t.scrapes)
            if text is not None:
                t.istio_requests = prom_sum(text, "istio_requests_total")
    elif v is not None and v.proxy == "meshcore":
        res.counters_note = "inline launcher: no admin API"
    if t is not None:
        t.proxy_requests = res.counters.get("http.http.downstream_rq_total")
        t.counters = {k: val for k, val in res.counters.items() if TELEMETRY_COUNTER.search(k)}
        res.telemetry = t  # checked once the proxy has stopped (bench_proxy)
    res.upstream_conns = nginx_accepts(ctx["upstream_port"]) - accepts_before - 1
    return res


def bench_proxy(v: Variant, ctx: dict, args) -> Result:
    accepts_before = nginx_accepts(ctx["upstream_port"])
    log_path = None
    try:
        proc, port, admin_port, log_path = STARTERS[v.proxy](v, ctx)
    except (BenchError, OSError) as e:
        return Result(v.label, v, failed=f"could not start: {e}")
    try:
        wait_port(port, proc=proc)
        res = bench_target(v, port, proc, ctx, args, accepts_before, admin_port, log_path)
    except (BenchError, OSError, subprocess.SubprocessError) as e:
        res = Result(v.label, v, failed=str(e))
    finally:
        # A graceful stop: meshcore writes the records still in its rings,
        # Envoy flushes its log buffer (it may hold a second's worth).
        proc.stop(timeout=15.0)
    t = res.telemetry
    if t is not None:
        if log_path is not None:
            t.log_lines = count_lines(log_path, b'"GET ' if v.proxy == "haproxy" else None)
        if proc.popen.returncode == -9:
            t.problems.append("did not exit within 15 s of SIGTERM (killed): its last log lines "
                              "may be missing")
        wrk_total = 1 + sum(w.requests for w in (res.warmup, res.c1.wrk, res.c32.wrk))
        check_telemetry(v, t, wrk_total)
    if log_path is not None and log_path != proc.log_path:
        keep_head(log_path, args.keep_workdir is not None)
    return res


def keep_head(path: Path, keep: bool, lines: int = 200) -> None:
    """Access logs run to hundreds of MB: keep their first lines (for
    --keep-workdir), drop the rest."""
    if keep and path.exists():
        with open(path, "rb") as src, open(path.with_suffix(".head.log"), "wb") as dst:
            for _, line in zip(range(lines), src, strict=False):
                dst.write(line)
    path.unlink(missing_ok=True)


# ---- derived figures and reporting ---------------------------------------------------------------


# The on-vs-off comparison: (metric, label, unit scale for display, digits).
COMPARED = [
    ("cpu_us_per_rq_c1", "CPU us/request @1", 1, 2),
    ("cpu_us_per_rq_c32", "CPU us/request @32", 1, 2),
    ("added_p50_ms", "added p50 us", 1000, 0),
    ("added_p99_ms", "added p99 us", 1000, 0),
    ("rps_c32", "req/s @32", 1, 0),
    ("peak_rss_mib", "peak RSS MiB", 1, 1),
]


@dataclass
class OnOffRow:
    subject: str    # "meshcore on"
    peer: str       # "meshcore off"
    metric: str
    label: str
    off: float | None
    on: float | None
    ratio: float | None
    target: str | None = None
    met: bool | None = None
    note: str = ""


def on_off_rows(results: dict[str, Result]) -> list[OnOffRow]:
    rows = []
    for r in results.values():
        v = r.variant
        if v is None or not v.on or not r.metrics:
            continue
        off = results.get(f"{v.proxy}-off")
        if off is None or not off.metrics:
            continue
        for metric, label, _, _ in COMPARED:
            a, b = r.metrics.get(metric), off.metrics.get(metric)
            q = ratio(a, b)
            target = next((t for t in TARGETS if t.metric == metric), None) if v.budget else None
            notes = []
            if metric.startswith("added_"):
                pct = metric.split("_")[1]
                who = [x.name for x in (r, off) if x.metrics.get(f"{pct}_clamped")]
                if who:
                    notes.append(f"{', '.join(who)} clamped to {ADDED_LATENCY_EPSILON_MS * 1000:g} us")
            erred = [x.name for x in (r, off) if had_errors(x)]
            if erred:
                notes.append(f"errors: {', '.join(erred)}")
            rows.append(OnOffRow(r.name, off.name, metric, label, b, a, q,
                                 target.describe() if target else None,
                                 target.met(q) if target and q is not None else None,
                                 "; ".join(notes)))
    return rows


def print_results(results: dict[str, Result], rows: list[OnOffRow]) -> None:
    print_target_tables(results)
    print("\n  @1 = wrk -c1 (latency), @32 = wrk -c32 (throughput); +p50/+p99 = added over direct;\n"
          "  non-2xx, sock err = wrk's counts over both measured runs;\n"
          f"  CPU = the proxy process's utime+stime from the start of that wrk run to {SETTLE_S:g} s "
          "after its end\n  (deferred log and span work included) / requests wrk completed;\n"
          "  core @32 = share of its core the proxy used during the -c32 run;\n"
          "  RSS start = once listening, end = after the runs, + = end - start, peak = VmHWM;\n"
          f"  upstream conns = connections opened to the upstream nginx over the whole target;\n"
          "  others = CPU on the two cores used by anything else (other jobs, hypervisor steal;\n"
          "  not the trace collector) during the noisier of its two runs, as a share of one core.")
    noisy = [r.name for r in results.values() if (r.metrics.get("others") or 0) > NOISY_SHARE]
    if noisy:
        print(f"  WARNING: {', '.join(noisy)} ran while other work took > {NOISY_SHARE:.0%} "
              "of a core: their figures are\n  suspect; rerun when the machine is quiet.")
    unsaturated = [r.name for r in results.values()
                   if (r.metrics.get("core_busy_c32") or 1.0) < 0.9]
    if unsaturated:
        print(f"  note: {', '.join(unsaturated)} used < 90% of the proxy core at 32 conns, so "
              "the proxy was not what\n  limited req/s: CPU/rq is the better efficiency figure.")
    churn = [f"{r.name} ({r.upstream_conns:,})" for n, r in results.items()
             if n != "direct" and r.upstream_conns is not None and r.upstream_conns > CHURN_CONNS]
    if churn:
        print(f"  WARNING: upstream connections not kept alive by {', '.join(churn)}: more than "
              f"{CHURN_CONNS} opened\n  ({CLIENT_CONNS} client connections carried requests).")

    print_telemetry(results)
    print_errors(results)
    print_counters(results)

    if not rows:
        print("\nno on/off ratios: a proxy must have run with telemetry both off and on.")
        return
    print("\ntelemetry on vs off (ratio = on / off, same proxy, same run; budget from the issue):\n")
    table = []
    for row in rows:
        scale, digits = next((s, d) for m, _, s, d in COMPARED if m == row.metric)
        off = row.off * scale if row.off is not None else None
        on = row.on * scale if row.on is not None else None
        delta = on - off if on is not None and off is not None else None
        verdict = "" if row.met is None else ("met" if row.met else "MISSED")
        if row.target and row.ratio is None:
            verdict = "n/a"
        table.append([row.subject, row.label, fmt(off, digits), fmt(on, digits),
                      "n/a" if delta is None else f"{delta:+,.{digits}f}",
                      fmt(row.ratio, 3, "x"), row.target or "-", verdict or "-", row.note])
    print_table(["target", "metric", "off", "on", "on - off", "on/off", "target", "verdict",
                 "note"], table)
    print(f"\n  added latency <= 0 is clamped to {ADDED_LATENCY_EPSILON_MS * 1000:g} us before "
          "dividing (noted where it happened).")
    print_budget(results, rows)


def _ratio_of(rows: list[OnOffRow], subject: str, metric: str) -> float | None:
    return next((r.ratio for r in rows if r.subject == subject and r.metric == metric), None)


def print_budget(results: dict[str, Result], rows: list[OnOffRow]) -> None:
    judged = [r for r in rows if r.met is not None]
    if judged:
        parts = [f"@{r.metric.rsplit('_c', 1)[1]} {r.ratio:.3f}x {'met' if r.met else 'MISSED'}"
                 for r in judged]
        print(f"  budget: meshcore CPU/request telemetry-on / telemetry-off <= {BUDGET:.2f}: "
              + "; ".join(parts))
    elif "meshcore-on" in results:
        print(f"  budget: meshcore CPU/request telemetry-on / telemetry-off <= {BUDGET:.2f}: n/a "
              "(meshcore on or off did not run)")
    for r in results.values():
        v = r.variant
        if v is None or not v.on or v.budget:
            continue
        c1 = _ratio_of(rows, r.name, "cpu_us_per_rq_c1")
        c32 = _ratio_of(rows, r.name, "cpu_us_per_rq_c32")
        if c1 is None and c32 is None:
            continue
        print(f"  for information: {r.name} ({v.telemetry}{'; ' + v.note if v.note else ''}): "
              f"CPU/request on/off @1 {fmt(c1, 3, 'x')}, @32 {fmt(c32, 3, 'x')}")
    if judged:
        met = sum(1 for r in judged if r.met)
        print(f"  {met}/{len(judged)} targets met "
              "(reported only: a miss does not fail the run; compare ratios within one run).")


def scrape_summary(scrapes: list) -> str:
    if not scrapes:
        return "none"
    times = ", ".join(f"{s[2]:.0f}" for s in scrapes)
    return f"{len(scrapes)}: {times} ms, {scrapes[-1][3] / 1024:.0f} KiB"


def print_telemetry(results: dict[str, Result]) -> None:
    """What each telemetry-on target reported, against the requests it served."""
    shown = [r for r in results.values() if r.telemetry is not None]
    if not shown:
        return
    print("\ntelemetry reported (whole target: check request, warm-up and both runs):\n")
    table = []
    for r in shown:
        t, v = r.telemetry, r.variant
        wrk_total = (r.metrics.get("requests_total") or 0) + 1
        scrapes = [s for s in t.scrapes if s[1] == 200]
        expect = (t.proxy_requests or wrk_total) * SAMPLING_PERCENT / 100
        table.append([
            r.name,
            fmt(wrk_total),
            fmt(t.proxy_requests),
            fmt(t.log_lines) if v.access_log else "-",
            fmt(t.counters.get("server.access_log_dropped")) if v.proxy == "meshcore" else "-",
            (f"{t.spans_received:,} / {expect:,.0f}" if t.spans_received is not None else "n/a")
            if v.tracing else "-",
            fmt(t.collector_posts) if v.tracing else "-",
            fmt(t.istio_requests, 0) if v.metrics else "-",
            scrape_summary(scrapes) if v.metrics else "-",
            "ok" if not t.problems else f"{len(t.problems)} PROBLEM(S)",
        ])
    print_table(["target", "wrk + check", "proxy rq", "log lines", "log dropped",
                 f"spans / {SAMPLING_PERCENT:g}%", "exports", "istio_requests", "scrapes",
                 "check"], table)
    print("  wrk + check = requests wrk completed (warm-up and runs) + the check request;\n"
          "  proxy rq = downstream_rq_total (admin API; it also counts the requests wrk left in "
          "flight);\n"
          "  log lines = lines in the access log once the proxy stopped (HAProxy: its \"GET\" "
          "lines);\n"
          "  log dropped = meshcore's server.access_log_dropped;\n"
          f"  spans = received by the collector / {SAMPLING_PERCENT:g}% of proxy rq; "
          "exports = OTLP POSTs received;\n"
          "  istio_requests = sum of istio_requests_total in a scrape after the runs;\n"
          "  scrapes = /stats/prometheus: before the warm-up (not measured), halfway through "
          "each\n  measured run, after the runs; their time and the last one's size.")
    for r in shown:
        if r.variant.note:
            print(f"  {r.name}: {r.variant.telemetry}; {r.variant.note}")
        else:
            print(f"  {r.name}: {r.variant.telemetry}")


def print_errors(results: dict[str, Result]) -> None:
    """Per-target error counts and telemetry problems; meshcore's in a banner."""
    for r in results.values():
        m = r.metrics
        lines = []
        if m and had_errors(r):
            lines.append(f"{m['errors']:,} errors in the measured runs (non-2xx {m['non2xx']:,}, "
                         f"socket {m['socket_errors']:,}), {m['warmup_errors']:,} in the warm-up")
        if r.telemetry is not None:
            lines += [f"telemetry: {p}" for p in r.telemetry.problems]
        if not lines:
            continue
        if r.name.startswith("meshcore"):
            bar = "!" * 78
            body = "\n".join(f"!!! {r.name}: {x}" for x in lines)
            print(f"\n{bar}\n{body}\n!!! see its counters below and its log (rerun with "
                  f"--keep-workdir).\n{bar}")
        else:
            for x in lines:
                print(f"  WARNING: {r.name}: {x}")


def print_counters(results: dict[str, Result]) -> None:
    shown = [r for r in results.values() if r.counters or r.counters_note]
    if not shown:
        return
    print("\nproxy-side counters (admin API, whole target; non-zero error-like ones and telemetry "
          "ones listed):")
    for r in shown:
        if r.counters_note and not r.counters:
            print(f"  {r.name}: {r.counters_note}")
            continue
        ctx = {k: val for k, val in r.counters.items() if k.endswith(("downstream_cx_total",
               "downstream_rq_total")) or (k.startswith("cluster.") and
                                           k.endswith(("upstream_cx_total", "upstream_rq_total"))
                                           and not k.startswith("cluster.collector."))}
        notable = {k: val for k, val in r.counters.items() if k not in ctx}
        wrk_total = r.metrics.get("requests_total")
        head = ", ".join(f"{k.rsplit('.', 1)[1]} {val:,}" for k, val in ctx.items())
        print(f"  {r.name}: {head}" + (f" (wrk completed {wrk_total:,})" if wrk_total else ""))
        for k, val in notable.items():
            print(f"    {k}: {val:,}")
        if not notable:
            print("    no error, reset, retry, non-2xx or telemetry counter is set")
    print("  (wrk closes its connections with requests in flight at the end of each run: a few\n"
          "  dozen resets or cancelled requests per target are expected, not errors)")


# ---- main ---------------------------------------------------------------------------------------------


def parse_args(argv=None):
    p = bench_arg_parser(__doc__, PROXIES)
    p.add_argument("--breakdown", action="store_true",
                   help="also run meshcore with each telemetry part alone (log, metrics, tracing)")
    p.add_argument("--keep-workdir", metavar="DIR",
                   help="copy the generated configs, every process's log and the first lines "
                        "of each access log here")
    return parse_bench_args(p, PROXIES, argv)


def result_dict(r: Result) -> dict:
    t = r.telemetry
    return {
        "target": r.name,
        "proxy": r.variant.proxy if r.variant else None,
        "telemetry": r.variant.telemetry if r.variant else None,
        "warmup": r.warmup.to_dict() if r.warmup else None,
        "c1": measurement_dict(r.c1),
        "c32": measurement_dict(r.c32),
        "metrics": r.metrics,
        "counters": r.counters,
        "reported": None if t is None else {
            "log_lines": t.log_lines, "proxy_requests": t.proxy_requests,
            "spans_received": t.spans_received, "collector_posts": t.collector_posts,
            "istio_requests_total": t.istio_requests,
            "scrapes": [{"when": s[0], "status": s[1], "ms": s[2], "bytes": s[3]} for s in t.scrapes],
            "problems": t.problems,
        },
        "skipped": r.skipped,
        "failed": r.failed,
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    for tool in ("nginx", "wrk", "taskset"):
        if not which(tool):
            print(f"bench_telemetry: {tool} not found; run benchmarks/setup.sh", file=sys.stderr)
            return 2
    if cpu_count() < 2 or args.proxy_core == args.load_core:
        print("bench_telemetry: warning: proxy and load generator share a core; "
              "figures will be skewed", file=sys.stderr)

    todo = variants(args.proxies, args.breakdown)
    with make_workdir("meshcore-bench-telemetry-") as tmp:
        workdir = Path(tmp)
        python = meshcore_python()
        ctx = {
            "workdir": workdir,
            "proxy_core": args.proxy_core,
            "load_core": args.load_core,
            "meshcore_python": python,
            "meshcore_launcher": pick_meshcore_launcher(args.meshcore_launcher, python),
            "haproxy": which("haproxy"),
            "nginx": which("nginx"),
            "envoy": find_envoy(args.envoy),
            "helper_pids": [],
        }
        versions = tool_versions(ctx)
        print(f"bench_telemetry: {platform.node()}, {cpu_count()} CPUs; proxy on core "
              f"{args.proxy_core}, wrk + nginx + trace collector on core {args.load_core}; "
              f"{args.duration:g} s per run, {args.warmup:g} s warm-up; tracing samples "
              f"{SAMPLING_PERCENT:g}%")
        for k, v in versions.items():
            extra = f" (launcher: {ctx['meshcore_launcher']})" if k == "meshcore" else ""
            print(f"  {k:9} {v or 'not found'}{extra}")
        print(flush=True)

        nginx, upstream_port = start_nginx(workdir, args.load_core, status=True)
        collector = None
        try:
            ctx["upstream_port"], ctx["upstream_pid"] = upstream_port, nginx.pid
            ctx["listen_port"] = free_port()
            ctx["admin_port"] = free_port()
            if any(v.tracing for v in todo):
                collector, ctx["collector_port"] = start_collector(ctx)
                ctx["helper_pids"] = [collector.pid]

            results: dict[str, Result] = {}
            t0 = time.monotonic()
            print("direct ...", flush=True)
            results["direct"] = bench_target(None, upstream_port, None, ctx, args,
                                             nginx_accepts(upstream_port))
            for v in todo:
                if v.proxy == "haproxy" and not ctx["haproxy"]:
                    results[v.key] = Result(v.label, v, skipped="haproxy not found (run setup.sh)")
                    continue
                if v.proxy == "envoy" and not ctx["envoy"]:
                    results[v.key] = Result(v.label, v, skipped="envoy not found (run setup.sh)")
                    continue
                print(f"{v.label} ...", flush=True)
                results[v.key] = bench_proxy(v, ctx, args)
                nginx.check_alive()
                if collector is not None:
                    collector.check_alive()
        finally:
            if collector is not None:
                collector.stop()
            nginx.stop()
            if args.keep_workdir:
                keep_workdir(workdir, args.keep_workdir)

    derive(results)
    rows = on_off_rows(results)
    print(f"\ndone in {time.monotonic() - t0:.0f} s\n")
    print_results(results, rows)

    if args.json:
        doc = {
            "benchmark": "telemetry",
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "settle_s": SETTLE_S,
            "sampling_percent": SAMPLING_PERCENT,
            "budget_cpu_on_off": BUDGET,
            "proxy_core": args.proxy_core,
            "load_core": args.load_core,
            "cpus": cpu_count(),
            "meshcore_launcher": ctx["meshcore_launcher"],
            "versions": versions,
            "added_latency_epsilon_ms": ADDED_LATENCY_EPSILON_MS,
            "results": {k: result_dict(r) for k, r in results.items()},
            "on_off": [vars(r) for r in rows],
        }
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
        print(f"\nwrote {args.json}")

    return 1 if any(r.failed for r in results.values()) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        # The direct run, the upstream or the collector broke: nothing to compare against.
        print(f"bench_telemetry: {e}", file=sys.stderr)
        sys.exit(2)
