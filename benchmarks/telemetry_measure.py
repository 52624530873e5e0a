"""bench_telemetry.py's run of one target: start the proxy, the check request, the wrk
runs with their scrapes, the proxy's counters and, with telemetry on, what it reported.
"""
from __future__ import annotations

import http.client
import re
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

from bench_http import check_request
from common import (
    BenchError,
    Measurement,
    Proc,
    WrkResult,
    admin_counters,
    measure_beside,
    nginx_accepts,
    peak_rss_kib,
    rss_kib,
    run_wrk,
    wait_port,
)
from telemetry_checks import (
    QUIET_TIMEOUT_S,
    TELEMETRY_COUNTER,
    Telemetry,
    check_telemetry,
    count_lines,
    file_size,
    prom_sum,
    scrape,
    wait_quiet,
)
from telemetry_collector import collector_counts
from telemetry_configs import STARTERS, upstream_cluster
from telemetry_targets import Variant

# After each measured wrk run, the proxy's CPU is read this much later: meshcore
# drains its access-log rings every 0.1 s and formats the lines then, Envoy
# flushes its log buffer every second. Every target waits the same.
SETTLE_S = 0.5


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


