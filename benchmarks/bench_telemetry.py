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

import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_http import (  # noqa: E402  (bench_http.py's target: its checks and figures)
    derive,
    tool_versions,
)
from common import (  # noqa: E402
    BenchError,
    bench_arg_parser,
    cpu_count,
    find_envoy,
    free_port,
    keep_workdir,
    make_workdir,
    meshcore_python,
    nginx_accepts,
    parse_bench_args,
    pick_meshcore_launcher,
    start_nginx,
    which,
)
from telemetry_collector import start_collector  # noqa: E402
from telemetry_configs import SAMPLING_PERCENT  # noqa: E402
from telemetry_measure import SETTLE_S, Result, bench_proxy, bench_target  # noqa: E402
from telemetry_report import (  # noqa: E402
    ADDED_LATENCY_EPSILON_MS,
    BUDGET,
    on_off_rows,
    print_results,
    result_dict,
)
from telemetry_targets import variants  # noqa: E402

PROXIES = ("meshcore", "haproxy", "envoy")


def parse_args(argv=None):
    p = bench_arg_parser(__doc__, PROXIES)
    p.add_argument("--breakdown", action="store_true",
                   help="also run meshcore with each telemetry part alone (log, metrics, tracing)")
    p.add_argument("--keep-workdir", metavar="DIR",
                   help="copy the generated configs, every process's log and the first lines "
                        "of each access log here")
    return parse_bench_args(p, PROXIES, argv)


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
