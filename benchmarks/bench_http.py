#!/usr/bin/env python3
"""HTTP benchmark: one HTTP/1.1 hop through meshcore vs HAProxy (mode http) vs nginx vs Envoy (HCM).

    bash benchmarks/setup.sh && .venv/bin/python benchmarks/bench_http.py [--quick]

The same method as bench_l4.py, in one run, on loopback: wrk -> nginx
directly, then wrk -> proxy -> nginx for each proxy in turn. Each proxy runs
one worker pinned to PROXY_CORE; the upstream nginx and wrk share LOAD_CORE.
Every proxy keeps its upstream connections alive. Per target:

  * a GET / through the proxy that must return 200 "ok\\n" (else the proxy failed)
  * wrk -t1 -c1  --latency : p50 / p99 latency (one request in flight)
  * wrk -t1 -c32           : requests per second
  * proxy CPU seconds (utime+stime from /proc) / requests, around each run
  * RSS at start, after the runs, and peak (VmHWM)
  * non-2xx responses and socket errors (wrk), connections the proxy opened
    to the upstream (nginx stub_status), the proxy's own error counters
    (admin API: meshcore and Envoy)

meshcore and Envoy read the same bootstrap file (one listener with
http_connection_manager, one virtual host "*", a prefix "/" route to a STATIC
cluster, the router filter). The run prints each meshcore figure as a ratio
to HAProxy's and Envoy's with the budget from the issue and whether it is
met, and to nginx's for information. A missed budget is reported, never an
error. The exit status is non-zero only when a benchmark could not run (a
proxy did not start, died, or did not proxy the check request; a tool is
missing).
"""
from __future__ import annotations

import http.client
import json
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    BenchError,
    Measurement,
    Proc,
    RatioRow,
    Target,
    WrkResult,
    admin_counters,
    bench_arg_parser,
    check_get,
    cpu_count,
    find_envoy,
    first_line,
    fmt,
    free_port,
    keep_workdir,
    make_workdir,
    measure,
    measurement_dict,
    meshcore_command,
    meshcore_python,
    mib,
    nginx_accepts,
    parse_bench_args,
    peak_rss_kib,
    pick_meshcore_launcher,
    print_ratios,
    print_table,
    ratio,
    rss_kib,
    run_wrk,
    start_nginx,
    start_pinned,
    wait_port,
    which,
)

PROXIES = ("meshcore", "haproxy", "nginx", "envoy")

# Peers meshcore has budgets against; nginx is compared for information only.
TARGET_PEERS = ("haproxy", "envoy")
INFO_PEERS = ("nginx",)

# Added latency is proxy p50 minus direct p50. On a noisy machine it can come
# out at or below zero; it is clamped to this (wrk's histogram resolution,
# 1 us) so that ratios stay finite and positive. Clamped values are flagged.
ADDED_LATENCY_EPSILON_MS = 0.001

# Above this share of one core used by other work during a run, the row is
# flagged as disturbed.
NOISY_SHARE = 0.10

# Client connections that carry requests during one target: the check request,
# the warm-up's 32, then 1 and 32. (wrk also opens one connection per run to
# test the address, without a request.) A proxy that keeps upstream
# connections alive opens about this many to the upstream at most (HAProxy:
# one per client connection; the others: a pool of ~32, plus a few replacing
# connections dropped when wrk closes mid-request at the end of a run).
# Beyond CHURN_CONNS it is reconnecting: without keep-alive it would open one
# per request, with a 1000-requests-per-connection limit ~100 per --quick run.
CLIENT_CONNS = 1 + 32 + 1 + 32
CHURN_CONNS = CLIENT_CONNS + 32

# "RSS flat across the run": meshcore's VmRSS after the runs minus at start.
RSS_FLAT_MIB = 2.0

# The budgets from the issue. vs HAProxy: fixed factors; vs Envoy: strictly
# better. CPU per request is held to the budget at both concurrency levels.
TARGETS = [
    Target("added_p50_ms", "added p50 latency", "haproxy", "max", 0.8),
    Target("cpu_us_per_rq_c1", "CPU/request @1 conn", "haproxy", "max", 0.65),
    Target("cpu_us_per_rq_c32", "CPU/request @32 conns", "haproxy", "max", 0.65),
    Target("rps_c32", "req/s @32 conns", "haproxy", "min", 1.2),
    Target("added_p50_ms", "added p50 latency", "envoy", "max", 1.0, strict=True),
    Target("cpu_us_per_rq_c1", "CPU/request @1 conn", "envoy", "max", 1.0, strict=True),
    Target("cpu_us_per_rq_c32", "CPU/request @32 conns", "envoy", "max", 1.0, strict=True),
    Target("rps_c32", "req/s @32 conns", "envoy", "min", 1.0, strict=True),
]
# Shown as ratios too, without a budget. Against nginx every metric is info.
INFO_METRICS = [("added_p99_ms", "added p99 latency"), ("start_rss_mib", "RSS at start"),
                ("peak_rss_mib", "peak RSS")]

# One file for Envoy and meshcore. Only fields both accept; everything not set
# is each one's default (no retries, the default 15 s route timeout, request
# ids generated). codec_type HTTP1 as in examples/http.yaml: all traffic here
# is HTTP/1.1, and it spares Envoy the HTTP/2 preface sniffing of AUTO.
BOOTSTRAP = """\
# Generated by benchmarks/bench_http.py; run by both envoy and meshcore.
node:
  id: bench-http
  cluster: bench
admin:
  address:
    socket_address: {{ address: 127.0.0.1, port_value: {admin_port} }}
static_resources:
  listeners:
  - name: http
    address:
      socket_address: {{ address: 127.0.0.1, port_value: {listen_port} }}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: http
          codec_type: HTTP1
          route_config:
            name: local
            virtual_hosts:
            - name: any
              domains: ["*"]
              routes:
              - match: {{ prefix: / }}
                route: {{ cluster: upstream }}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: upstream
    type: STATIC
    connect_timeout: 1s
    lb_policy: ROUND_ROBIN
    load_assignment:
      cluster_name: upstream
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: {{ address: 127.0.0.1, port_value: {upstream_port} }}
"""
# The stat_prefix above: the admin counters of interest live under it.
STAT_PREFIX = "http"

# HAProxy's defaults plus timeouts. http-keep-alive and http-reuse safe are
# HAProxy's defaults, spelled out because they are what keeps the upstream
# connections alive. No `log`: nothing is logged.
HAPROXY_CFG = """\
# Generated by benchmarks/bench_http.py.
global
    nbthread 1
    cpu-map 1/1 {core}

defaults
    mode http
    option http-keep-alive
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

# nginx as a reverse proxy: a second nginx, apart from the upstream. One
# process that is also the worker (master_process off), as for the upstream,
# so the PID measured is the one doing the work. Upstream keep-alive needs
# all three of `keepalive`, HTTP/1.1 and an empty Connection header. nginx's
# keepalive_requests (1000 per connection, both sides) is raised as on the
# upstream: otherwise wrk and the pool would reconnect every ~1000 requests
# and nginx alone would be measured opening connections.
NGINX_PROXY_CONF = """\
# Generated by benchmarks/bench_http.py.
daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;

events {{
    worker_connections 4096;
}}

http {{
    access_log off;
    keepalive_requests 1000000000;
    keepalive_timeout 300s;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;

    upstream backend {{
        server 127.0.0.1:{upstream_port};
        keepalive 32;
        keepalive_requests 1000000000;
        keepalive_timeout 300s;
    }}

    server {{
        listen 127.0.0.1:{listen_port} backlog=4096;
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""

# Admin counters worth showing when non-zero: anything that smells of an
# error, a reset or a retry, and the response classes other than 2xx.
NOTABLE_COUNTER = re.compile(
    r"(_[1345]xx$|fail|timeout|reset|overflow|error|retry|reject|active_rq|"
    r"cancel|_invalid|no_route|no_cluster|no_healthy|flow_control|overload)")
# Always shown (context for the above): what the proxy saw and what it opened.
CONTEXT_COUNTERS = (f"http.{STAT_PREFIX}.downstream_cx_total",
                    f"http.{STAT_PREFIX}.downstream_rq_total",
                    "cluster.upstream.upstream_cx_total",
                    "cluster.upstream.upstream_rq_total")


@dataclass
class Result:
    name: str
    warmup: WrkResult | None = None  # wrk -c32 for --warmup s, not measured
    c1: Measurement | None = None    # wrk -c1 --latency
    c32: Measurement | None = None   # wrk -c32
    start_rss_kib: int | None = None  # VmRSS once listening, before any request
    warm_rss_kib: int | None = None   # VmRSS after the warm-up
    end_rss_kib: int | None = None    # VmRSS after the runs
    peak_rss_kib: int | None = None   # VmHWM after the runs
    upstream_conns: int | None = None  # connections opened to the upstream nginx
    counters: dict = field(default_factory=dict)  # admin API: context + notable non-zero
    counters_note: str | None = None  # why there are no counters
    skipped: str | None = None   # not installed: reported, not an error
    failed: str | None = None    # started but broke: the run exits non-zero
    metrics: dict = field(default_factory=dict)


# ---- launching each proxy ------------------------------------------------------------
# Each starter returns (proc, listen port, admin port or None).


def start_meshcore(ctx: dict) -> tuple[Proc, int, int | None]:
    launcher = ctx["meshcore_launcher"]
    cmd = meshcore_command(launcher, ctx["meshcore_python"], ctx["bootstrap"], ctx["admin_port"])
    proc = start_pinned("meshcore", cmd, ctx["proxy_core"], ctx["workdir"])
    return proc, ctx["listen_port"], ctx["admin_port"] if launcher == "cli" else None


def start_haproxy(ctx: dict) -> tuple[Proc, int, int | None]:
    port = free_port()
    cfg = ctx["workdir"] / "haproxy.cfg"
    cfg.write_text(HAPROXY_CFG.format(core=ctx["proxy_core"], listen_port=port,
                                      upstream_port=ctx["upstream_port"]))
    # -db: stay in the foreground, no master process, so the PID is the worker.
    proc = start_pinned("haproxy", [ctx["haproxy"], "-db", "-f", str(cfg)],
                        ctx["proxy_core"], ctx["workdir"])
    return proc, port, None


def start_nginx_proxy(ctx: dict) -> tuple[Proc, int, int | None]:
    port = free_port()
    ngx_dir = ctx["workdir"] / "nginx-proxy"
    ngx_dir.mkdir(exist_ok=True)
    conf = ngx_dir / "nginx.conf"
    conf.write_text(NGINX_PROXY_CONF.format(dir=ngx_dir, listen_port=port,
                                            upstream_port=ctx["upstream_port"]))
    # Named apart from the upstream ("nginx"), whose log file it would clobber.
    proc = start_pinned("nginx-proxy", [ctx["nginx"], "-p", str(ngx_dir), "-c", str(conf)],
                        ctx["proxy_core"], ctx["workdir"])
    return proc, port, None


def start_envoy(ctx: dict) -> tuple[Proc, int, int | None]:
    # A base id of our own keeps Envoy's hot-restart shared memory apart from
    # any other Envoy on the machine (e.g. a concurrent test run).
    cmd = [ctx["envoy"], "-c", str(ctx["bootstrap"]), "--concurrency", "1",
           "--base-id", str(os.getpid()), "-l", "error"]
    proc = start_pinned("envoy", cmd, ctx["proxy_core"], ctx["workdir"])
    return proc, ctx["listen_port"], ctx["admin_port"]


STARTERS = {"meshcore": start_meshcore, "haproxy": start_haproxy,
            "nginx": start_nginx_proxy, "envoy": start_envoy}


# ---- one target ------------------------------------------------------------------------------


def check_request(port: int, proc: Proc | None, timeout: float = 3.0) -> None:
    """common.check_get through the proxy on `port`; `proc` is None for direct."""
    check_get(port, proc.check_alive if proc is not None else lambda: None, f"port {port}", timeout)


def proxy_counters(admin_port: int) -> dict:
    """The context counters and every notable non-zero one, from the admin API."""
    raw = admin_counters(admin_port)
    scopes = (f"http.{STAT_PREFIX}.", "cluster.upstream.", "listener.")
    out = {k: raw[k] for k in CONTEXT_COUNTERS if k in raw}
    for k, v in sorted(raw.items()):
        if v and k.startswith(scopes) and NOTABLE_COUNTER.search(k):
            out[k] = v
    return out


def bench_target(name: str, port: int, proc: Proc | None, ctx: dict, args,
                 accepts_before: int, admin_port: int | None = None) -> Result:
    """The check request, warm-up, the latency run, the throughput run; CPU
    read around each run, RSS at start and at the end."""
    url = f"http://127.0.0.1:{port}/"
    pid = proc.pid if proc else None
    res = Result(name)
    if proc:
        res.start_rss_kib = rss_kib(pid)

    def run(conns):
        m = measure(url, conns, args.duration, True, pid, ctx["upstream_pid"],
                    args.proxy_core, args.load_core)
        if proc:
            proc.check_alive()
        return m

    check_request(port, proc)
    # The warm-up lets each proxy allocate its buffers, pools and upstream
    # connections, at the higher concurrency so both later runs are warm.
    res.warmup = run_wrk(url, 32, args.warmup, core=args.load_core)
    if proc:
        proc.check_alive()
        res.warm_rss_kib = rss_kib(pid)
    res.c1 = run(1)
    res.c32 = run(32)
    if proc:
        res.end_rss_kib = rss_kib(pid)
        res.peak_rss_kib = peak_rss_kib(pid)
    if admin_port is not None:
        try:
            res.counters = proxy_counters(admin_port)
        except (OSError, http.client.HTTPException, BenchError) as e:
            res.counters_note = f"admin API unreadable: {e}"
    elif name == "meshcore":
        res.counters_note = "inline launcher: no admin API"
    # Minus one: the reading's own connection.
    res.upstream_conns = nginx_accepts(ctx["upstream_port"]) - accepts_before - 1
    return res


def bench_proxy(name: str, ctx: dict, args) -> Result:
    accepts_before = nginx_accepts(ctx["upstream_port"])
    try:
        proc, port, admin_port = STARTERS[name](ctx)
    except (BenchError, OSError) as e:
        return Result(name, failed=f"could not start: {e}")
    try:
        wait_port(port, proc=proc)
        return bench_target(name, port, proc, ctx, args, accepts_before, admin_port)
    except (BenchError, OSError, subprocess.SubprocessError) as e:
        return Result(name, failed=str(e))
    finally:
        proc.stop()


# ---- derived figures and reporting ---------------------------------------------------------------


def derive(results: dict[str, Result]) -> None:
    """Fills each result's `metrics`: the figures the targets are stated in."""
    direct = results["direct"]
    for r in results.values():
        if r.c1 is None or r.c32 is None:
            continue
        m = r.metrics
        m["p50_ms"], m["p99_ms"] = r.c1.wrk.p50_ms, r.c1.wrk.p99_ms
        m["rps_c32"] = r.c32.wrk.rps
        runs = (r.c1.wrk, r.c32.wrk)
        m["errors"] = sum(w.errors for w in runs)
        m["non2xx"] = sum(w.non2xx for w in runs)
        m["socket_errors"] = sum(w.socket_errors for w in runs)
        m["warmup_errors"] = r.warmup.errors if r.warmup else 0
        m["requests_total"] = sum(w.requests for w in runs) + (r.warmup.requests if r.warmup else 0)
        for conns in ("c1", "c32"):
            per = getattr(r, conns).cpu_s_per_rq
            m[f"cpu_us_per_rq_{conns}"] = per * 1e6 if per is not None else None
        m["start_rss_mib"] = mib(r.start_rss_kib)
        m["warm_rss_mib"] = mib(r.warm_rss_kib)
        m["end_rss_mib"] = mib(r.end_rss_kib)
        m["peak_rss_mib"] = mib(r.peak_rss_kib)
        m["rss_growth_mib"] = (m["end_rss_mib"] - m["start_rss_mib"]
                               if m["end_rss_mib"] and m["start_rss_mib"] else None)
        m["upstream_conns"] = r.upstream_conns
        # How busy the proxy's core was during the throughput run. Well below
        # 100% means the proxy was not what limited req/s.
        busy = r.c32.proxy_cpu_s
        m["core_busy_c32"] = busy / r.c32.wall_s if busy is not None else None
        # The noisier of the two runs, as a share of one core.
        m["others"] = max(r.c1.others_share, r.c32.others_share)
        if r is direct or direct.c1 is None:
            continue
        for pct in ("p50", "p99"):
            added = m[f"{pct}_ms"] - getattr(direct.c1.wrk, f"{pct}_ms")
            m[f"added_{pct}_ms_raw"] = added
            m[f"{pct}_clamped"] = added < ADDED_LATENCY_EPSILON_MS
            m[f"added_{pct}_ms"] = max(added, ADDED_LATENCY_EPSILON_MS)


def had_errors(r: Result) -> bool:
    return bool(r.metrics.get("errors") or r.metrics.get("warmup_errors"))


def ratio_rows(results: dict[str, Result]) -> list[RatioRow]:
    mc = results.get("meshcore")
    rows = []
    if mc is None or not mc.metrics:
        return rows
    for peer in TARGET_PEERS + INFO_PEERS:
        pr = results.get(peer)
        if pr is None or not pr.metrics:
            continue
        targets = [t for t in TARGETS if t.peer == peer]
        if peer in INFO_PEERS:  # the same metrics, no budgets
            targets = [Target(t.metric, t.label, peer, t.kind, t.limit) for t in TARGETS
                       if t.peer == TARGET_PEERS[0]]
        for t in targets:
            s, p = mc.metrics.get(t.metric), pr.metrics.get(t.metric)
            q = ratio(s, p)
            judged = peer not in INFO_PEERS
            rows.append(RatioRow(t.metric, t.label, peer, s, p, q,
                                 t.describe() if judged else None,
                                 t.met(q) if judged and q is not None else None,
                                 row_note(t.metric, mc, pr)))
        for metric, label in INFO_METRICS:
            s, p = mc.metrics.get(metric), pr.metrics.get(metric)
            rows.append(RatioRow(metric, label, peer, s, p, ratio(s, p),
                                 note=row_note(metric, mc, pr)))
    return rows


def row_note(metric: str, *rs: Result) -> str:
    notes = []
    if metric.startswith("added_"):
        pct = metric.split("_")[1]
        who = [r.name for r in rs if r.metrics.get(f"{pct}_clamped")]
        if who:
            notes.append(f"{', '.join(who)} clamped to {ADDED_LATENCY_EPSILON_MS * 1000:g} us")
    erred = [r.name for r in rs if had_errors(r)]
    if erred:
        notes.append(f"errors: {', '.join(erred)}")
    return "; ".join(notes)


def rss_check(results: dict[str, Result]) -> dict | None:
    """meshcore's RSS after the runs vs at start, against RSS_FLAT_MIB."""
    mc = results.get("meshcore")
    growth = mc.metrics.get("rss_growth_mib") if mc else None
    if growth is None:
        return None
    return {"start_mib": mc.metrics["start_rss_mib"], "warm_mib": mc.metrics["warm_rss_mib"],
            "end_mib": mc.metrics["end_rss_mib"], "growth_mib": growth,
            "target": f"< {RSS_FLAT_MIB:g} MiB", "met": growth < RSS_FLAT_MIB}


def print_target_tables(results: dict[str, Result]) -> None:
    """The latency and cost tables, a row per target (bench_telemetry.py prints them too)."""
    lat_rows, cost_rows = [], []
    for r in results.values():
        if r.skipped or r.failed:
            state = "skipped" if r.skipped else "FAILED"
            lat_rows.append([r.name, state, *(["-"] * 7)])
            cost_rows.append([r.name, state, *(["-"] * 7)])
            continue
        m = r.metrics
        added50, added99 = m.get("added_p50_ms_raw"), m.get("added_p99_ms_raw")
        lat_rows.append([
            r.name,
            fmt(m["p50_ms"], 3), fmt(m["p99_ms"], 3),
            fmt(added50 * 1000 if added50 is not None else None, 0),
            fmt(added99 * 1000 if added99 is not None else None, 0),
            fmt(m["rps_c32"], 0),
            fmt(m["non2xx"]), fmt(m["socket_errors"]),
            fmt(m["others"] * 100, 0, "%"),
        ])
        growth = m["rss_growth_mib"]
        cost_rows.append([
            r.name,
            fmt(m["cpu_us_per_rq_c1"], 2), fmt(m["cpu_us_per_rq_c32"], 2),
            fmt(m["core_busy_c32"] * 100 if m["core_busy_c32"] is not None else None, 0, "%"),
            fmt(m["start_rss_mib"], 1), fmt(m["end_rss_mib"], 1),
            "n/a" if growth is None else f"{growth:+.1f}",
            fmt(m["peak_rss_mib"], 1),
            fmt(m["upstream_conns"]),
        ])
    print_table(["target", "p50 ms", "p99 ms", "+p50 us", "+p99 us", "req/s @32",
                 "non-2xx", "sock err", "others"], lat_rows)
    print()
    print_table(["target", "CPU us/rq @1", "CPU us/rq @32", "core @32", "RSS start MiB",
                 "RSS end MiB", "RSS +MiB", "RSS peak MiB", "upstream conns"], cost_rows)
    for r in results.values():
        if r.skipped:
            print(f"  {r.name}: skipped: {r.skipped}")
        if r.failed:
            print(f"  {r.name}: FAILED: " + r.failed.replace("\n", "\n    "))


def print_results(results: dict[str, Result], ratios: list[RatioRow], rss: dict | None) -> None:
    print_target_tables(results)
    print("\n  @1 = wrk -c1 (latency), @32 = wrk -c32 (throughput); +p50/+p99 = "
          "added over direct;\n  non-2xx, sock err = wrk's counts over both measured runs;\n"
          "  CPU = the proxy process's utime+stime during that wrk run / requests it served;\n"
          "  core @32 = share of its core the proxy used during the -c32 run;\n"
          "  RSS start = once listening, end = after the runs, + = end - start, peak = VmHWM;\n"
          "  upstream conns = connections opened to the upstream nginx over the whole target\n"
          f"  (check request, warm-up and both runs: {CLIENT_CONNS} client connections; direct: "
          "wrk's own,\n  plus one per wrk run to test the address);\n"
          "  others = CPU on the two cores used by anything else (other jobs, hypervisor steal)\n"
          "  during the noisier of its two runs, as a share of one core.")

    noisy = [r.name for r in results.values() if (r.metrics.get("others") or 0) > NOISY_SHARE]
    if noisy:
        print(f"  WARNING: {', '.join(noisy)} ran while other work took > {NOISY_SHARE:.0%} "
              "of a core: their figures are\n  suspect; rerun when the machine is quiet.")
    unsaturated = [r.name for r in results.values()
                   if (r.metrics.get("core_busy_c32") or 1.0) < 0.9]
    if unsaturated:
        print(f"  note: {', '.join(unsaturated)} used < 90% of the proxy core at 32 conns, so "
              "the proxy was not what\n  limited req/s (the load core or other work was): "
              "CPU/rq is the better efficiency figure.")
    churn = [f"{r.name} ({r.upstream_conns:,})" for n, r in results.items()
             if n != "direct" and r.upstream_conns is not None and r.upstream_conns > CHURN_CONNS]
    if churn:
        print(f"  WARNING: upstream connections not kept alive by {', '.join(churn)}: more than "
              f"{CHURN_CONNS} opened\n  ({CLIENT_CONNS} client connections carried requests).")

    print_errors(results)
    print_counters(results)

    if not ratios:
        print("\nno ratios: meshcore and at least one peer must have run.")
        return
    print("\nmeshcore vs peers (ratio = meshcore / peer; targets from the issue; "
          "nginx for information):\n")
    print_ratios(ratios, "meshcore")
    print(f"\n  added latency <= 0 is clamped to {ADDED_LATENCY_EPSILON_MS * 1000:g} us "
          "before dividing (noted where it happened).")
    judged = [r for r in ratios if r.met is not None]
    met = sum(1 for r in judged if r.met)
    total = len(judged)
    if rss is not None:
        verdict = "met" if rss["met"] else "MISSED"
        print(f"  meshcore RSS flat (end - start {rss['target']}): start {rss['start_mib']:.1f} MiB, "
              f"after warm-up {fmt(rss['warm_mib'], 1)} MiB, end {rss['end_mib']:.1f} MiB: "
              f"{rss['growth_mib']:+.2f} MiB  {verdict}")
        met += rss["met"]
        total += 1
    print(f"  {met}/{total} targets met "
          "(reported only: a miss does not fail the run; compare ratios within one run).")


def print_errors(results: dict[str, Result]) -> None:
    """Per-target error counts; meshcore's, if any, in a banner."""
    for r in results.values():
        m = r.metrics
        if not m or not had_errors(r):
            continue
        detail = (f"{m['errors']:,} errors in the measured runs (non-2xx {m['non2xx']:,}, "
                  f"socket {m['socket_errors']:,}), {m['warmup_errors']:,} in the warm-up")
        if r.name == "meshcore":
            bar = "!" * 78
            print(f"\n{bar}\n!!! meshcore: {detail}.\n!!! Its figures do not measure "
                  "proxying alone; see its counters below and\n!!! its log (rerun with "
                  f"--keep-workdir).\n{bar}")
        else:
            print(f"  WARNING: {r.name}: {detail}.")


def print_counters(results: dict[str, Result]) -> None:
    """The admin API's view (meshcore, Envoy): context counters, then notable ones."""
    shown = [r for r in results.values() if r.counters or r.counters_note]
    if not shown:
        return
    print("\nproxy-side counters (admin API, whole target; non-zero error-like ones listed):")
    for r in shown:
        if r.counters_note and not r.counters:
            print(f"  {r.name}: {r.counters_note}")
            continue
        ctx = {k: v for k, v in r.counters.items() if k in CONTEXT_COUNTERS}
        notable = {k: v for k, v in r.counters.items() if k not in CONTEXT_COUNTERS}
        wrk_total = r.metrics.get("requests_total")
        head = ", ".join(f"{k.rsplit('.', 1)[1]} {v:,}" for k, v in ctx.items())
        print(f"  {r.name}: {head}" + (f" (wrk completed {wrk_total:,})" if wrk_total else ""))
        if notable:
            for k, v in notable.items():
                print(f"    {k}: {v:,}")
        else:
            print("    no error, reset, retry or non-2xx counter is set")
    print("  (wrk closes its connections with requests in flight at the end of each run: a few\n"
          "  dozen resets or cancelled requests per target are expected, not errors)")


# ---- main ---------------------------------------------------------------------------------------------


def tool_versions(ctx: dict) -> dict:
    envoy = first_line([ctx["envoy"], "--version"]) if ctx["envoy"] else None
    return {
        "meshcore": first_line([ctx["meshcore_python"], "-c",
                                "import meshcore; print(meshcore.__version__)"]),
        "haproxy": first_line([ctx["haproxy"], "-v"]) if ctx["haproxy"] else None,
        "envoy": envoy.split("version:")[-1].strip() if envoy else None,
        "nginx": first_line([ctx["nginx"], "-v"]),
        "wrk": first_line([which("wrk"), "-v"]),
    }


def parse_args(argv=None):
    p = bench_arg_parser(__doc__, PROXIES)
    p.add_argument("--keep-workdir", metavar="DIR",
                   help="copy the generated configs and every process's log here")
    return parse_bench_args(p, PROXIES, argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    for tool in ("nginx", "wrk", "taskset"):
        if not which(tool):
            print(f"bench_http: {tool} not found; run benchmarks/setup.sh", file=sys.stderr)
            return 2
    if cpu_count() < 2 or args.proxy_core == args.load_core:
        print("bench_http: warning: proxy and load generator share a core; "
              "figures will be skewed", file=sys.stderr)

    with make_workdir("meshcore-bench-http-") as tmp:
        workdir = Path(tmp)
        python = meshcore_python()
        ctx = {
            "workdir": workdir,
            "proxy_core": args.proxy_core,
            "meshcore_python": python,
            "meshcore_launcher": pick_meshcore_launcher(args.meshcore_launcher, python),
            "haproxy": which("haproxy"),
            "nginx": which("nginx"),
            "envoy": find_envoy(args.envoy),
        }
        versions = tool_versions(ctx)
        print(f"bench_http: {platform.node()}, {cpu_count()} CPUs; proxy on core "
              f"{args.proxy_core}, wrk + nginx on core {args.load_core}; "
              f"{args.duration:g} s per run, {args.warmup:g} s warm-up")
        for k, v in versions.items():
            extra = f" (launcher: {ctx['meshcore_launcher']})" if k == "meshcore" else ""
            print(f"  {k:9} {v or 'not found'}{extra}")
        print(flush=True)

        nginx, upstream_port = start_nginx(workdir, args.load_core, status=True)
        try:
            ctx["upstream_port"], ctx["upstream_pid"] = upstream_port, nginx.pid
            ctx["listen_port"] = free_port()
            ctx["admin_port"] = free_port()
            ctx["bootstrap"] = workdir / "bootstrap.yaml"
            ctx["bootstrap"].write_text(BOOTSTRAP.format(**ctx))

            results: dict[str, Result] = {}
            t0 = time.monotonic()
            print("direct ...", flush=True)
            results["direct"] = bench_target("direct", upstream_port, None, ctx, args,
                                             nginx_accepts(upstream_port))
            for name in args.proxies:
                if name == "haproxy" and not ctx["haproxy"]:
                    results[name] = Result(name, skipped="haproxy not found (run setup.sh)")
                    continue
                if name == "envoy" and not ctx["envoy"]:
                    results[name] = Result(name, skipped="envoy not found (run setup.sh)")
                    continue
                print(f"{name} ...", flush=True)
                results[name] = bench_proxy(name, ctx, args)
                nginx.check_alive()
        finally:
            nginx.stop()
            if args.keep_workdir:
                keep_workdir(workdir, args.keep_workdir)

    derive(results)
    ratios = ratio_rows(results)
    rss = rss_check(results)
    print(f"\ndone in {time.monotonic() - t0:.0f} s\n")
    print_results(results, ratios, rss)

    if args.json:
        doc = {
            "benchmark": "http",
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "proxy_core": args.proxy_core,
            "load_core": args.load_core,
            "cpus": cpu_count(),
            "meshcore_launcher": ctx["meshcore_launcher"],
            "versions": versions,
            "added_latency_epsilon_ms": ADDED_LATENCY_EPSILON_MS,
            "rss_flat_mib": RSS_FLAT_MIB,
            "results": {
                n: {
                    "warmup": r.warmup.to_dict() if r.warmup else None,
                    "c1": measurement_dict(r.c1),
                    "c32": measurement_dict(r.c32),
                    "metrics": r.metrics,
                    "counters": r.counters,
                    "skipped": r.skipped,
                    "failed": r.failed,
                }
                for n, r in results.items()
            },
            "ratios": [vars(r) for r in ratios],
            "rss_flat": rss,
        }
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
        print(f"\nwrote {args.json}")

    return 1 if any(r.failed for r in results.values()) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        # The direct run or the upstream broke: nothing to compare against.
        print(f"bench_http: {e}", file=sys.stderr)
        sys.exit(2)
