#!/usr/bin/env python3
"""HTTP/2 benchmark: one h2 -> h2 hop through meshcore vs HAProxy vs nginx vs Envoy.

    bash benchmarks/setup.sh && .venv/bin/python benchmarks/bench_h2.py [--quick]

h2load (Debian nghttp2-client) speaks h2c with prior knowledge to each proxy,
which forwards over h2c to nghttpd (Debian nghttp2-server); the proxies and
their configs are in h2_peers.py. One run, one proxy after another, each with
one worker pinned to PROXY_CORE; nghttpd and h2load share LOAD_CORE. Per
target (and directly against nghttpd, for the added latency):

  * a probe: one h2c GET must succeed (meshcore without its HTTP/2 codec
    answers it with a 400: its row then says "h2 not available in this
    build" and the run goes on)
  * small responses, h2load -c 32 -m 10: requests per second
  * one connection, h2load -c 1 -m 1: p50 latency (from h2load's per-request log)
  * gRPC unary, h2load -c 32 -m 10: a POST of one gRPC-framed message with
    gRPC's headers, answered with a gRPC frame and the grpc-status trailer
  * proxy CPU seconds (utime+stime, /proc/PID/stat) per request, around each run

It prints each proxy's figures and its ratios to HAProxy's and Envoy's; for
meshcore, the issue's budgets (req/s >= 1.2x HAProxy and >= 3x Envoy, CPU
per request <= 0.8x HAProxy, added p50 <= HAProxy's) and whether they are
met. The machine may be shared: figures of one run are comparable with
each other, not with another run's. Exit status: non-zero only when a peer
or the upstream broke (not when meshcore lacks h2, and never for a missed
budget).
"""
from __future__ import annotations

import json
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import h2load_run  # noqa: E402
from common import (  # noqa: E402
    BenchError,
    Proc,
    RatioRow,
    Target,
    bench_arg_parser,
    cpu_count,
    cpu_seconds,
    find_envoy,
    first_line,
    fmt,
    free_port,
    keep_workdir,
    make_workdir,
    meshcore_python,
    parse_bench_args,
    pick_meshcore_launcher,
    print_ratios,
    print_table,
    ratio,
    wait_port,
    which,
)
from h2_peers import BOOTSTRAP, STARTERS, start_upstream  # noqa: E402

PROXIES = ("meshcore", "haproxy", "nginx", "envoy")
NO_H2 = "h2 not available in this build"
ADDED_LATENCY_EPSILON_MS = 0.001  # added p50 at or below zero on a noisy machine is clamped to this

# The budgets for meshcore.
TARGETS = [
    Target("rps_c32", "req/s (-c 32 -m 10)", "haproxy", "min", 1.2),
    Target("rps_c32", "req/s (-c 32 -m 10)", "envoy", "min", 3.0),
    Target("cpu_us_per_rq_c32", "CPU/request (-c 32 -m 10)", "haproxy", "max", 0.8),
    Target("added_p50_ms", "added p50 (-c 1 -m 1)", "haproxy", "max", 1.0),
    Target("grpc_rps", "gRPC unary req/s", "haproxy", "min", 1.2),
    Target("grpc_cpu_us_per_rq", "gRPC CPU/request", "haproxy", "max", 0.8),
]
METRICS = [("rps_c32", "req/s"), ("cpu_us_per_rq_c32", "CPU us/rq"), ("p50_c1_ms", "p50 ms"),
           ("added_p50_ms", "added p50 ms"), ("grpc_rps", "gRPC req/s"), ("grpc_cpu_us_per_rq", "gRPC CPU us/rq")]


@dataclass
class Result:
    name: str
    runs: dict = field(default_factory=dict)  # workload -> H2loadResult
    cpu_us: dict = field(default_factory=dict)  # workload -> proxy CPU us per request
    metrics: dict = field(default_factory=dict)
    skipped: str | None = None
    failed: str | None = None


def measured(url: str, pid: int | None, **kw) -> tuple[h2load_run.H2loadResult, float | None]:
    before = cpu_seconds(pid) if pid else None
    r = h2load_run.run(url, **kw)
    if pid is None or not r.succeeded:
        return r, None
    return r, (cpu_seconds(pid) - before) * 1e6 / r.succeeded


def bench_target(name: str, port: int, proc: Proc | None, ctx: dict, args) -> Result:
    res = Result(name)
    base = f"http://127.0.0.1:{port}"
    core, pid, d = args.load_core, proc.pid if proc else None, args.duration
    grpc = ctx["workdir"] / "grpc-request.bin"
    h2load_run.run(base + "/", clients=32, streams=10, requests=max(1000, int(2000 * args.warmup)), core=core)
    workloads = {
        "small_c32": dict(url=base + "/", clients=32, streams=10),
        "latency_c1": dict(url=base + "/", clients=1, streams=1, log=ctx["workdir"] / f"{name}-latency.log"),
        "grpc_c32": dict(url=base + h2load_run.GRPC_PATH, clients=32, streams=10, grpc_data=grpc),
    }
    for w, kw in workloads.items():
        url = kw.pop("url")
        r, cpu = measured(url, pid, duration=d, core=core, **kw)
        res.runs[w], res.cpu_us[w] = r, cpu
        if not r.ok:
            res.failed = f"{w}: {r.succeeded} succeeded, {r.failed} failed, {r.errored} errored, {r.non_2xx} non-2xx"
        if proc:
            proc.check_alive()
    return res


def probe(port: int, core: int) -> h2load_run.H2loadResult:
    return h2load_run.run(f"http://127.0.0.1:{port}/", clients=1, streams=1, requests=1, core=core, timeout=15)


def bench_proxy(name: str, ctx: dict, args) -> Result:
    proc, port, _ = STARTERS[name](ctx)
    try:
        try:
            wait_port(port, proc=proc)
        except BenchError as e:
            if name == "meshcore":  # refused the h2 config, or died on it
                return Result(name, skipped=f"{NO_H2}: {str(e).splitlines()[0]}")
            return Result(name, failed=str(e))
        p = probe(port, args.load_core)
        if not p.ok:
            if name == "meshcore":
                return Result(name, skipped=f"{NO_H2} (an h2c request through it did not succeed)")
            return Result(name, failed=f"the probe request failed:\n{p.raw_tail}")
        return bench_target(name, port, proc, ctx, args)
    finally:
        proc.stop()


def derive(results: dict[str, Result]) -> None:
    direct = results.get("direct")
    base_p50 = direct.runs["latency_c1"].p50_ms if direct and "latency_c1" in direct.runs else None
    for r in results.values():
        if not r.runs:
            continue
        m = r.metrics
        m["rps_c32"] = r.runs["small_c32"].rps
        m["cpu_us_per_rq_c32"] = r.cpu_us.get("small_c32")
        m["p50_c1_ms"] = r.runs["latency_c1"].p50_ms
        m["grpc_rps"] = r.runs["grpc_c32"].rps
        m["grpc_cpu_us_per_rq"] = r.cpu_us.get("grpc_c32")
        if r.name != "direct" and base_p50 is not None and m["p50_c1_ms"] is not None:
            m["added_p50_ms"] = max(m["p50_c1_ms"] - base_p50, ADDED_LATENCY_EPSILON_MS)


def ratio_rows(results: dict[str, Result]) -> list[RatioRow]:
    me = results.get("meshcore")
    rows = []
    for t in TARGETS:
        peer = results.get(t.peer)
        a = me.metrics.get(t.metric) if me else None
        b = peer.metrics.get(t.metric) if peer else None
        q = ratio(a, b)
        rows.append(RatioRow(t.metric, t.label, t.peer, a, b, q, t.describe(), t.met(q) if q is not None else None,
                             "" if q is not None else (me.skipped or me.failed or "") if me else "not run"))
    return rows


def print_results(results: dict[str, Result], ratios: list[RatioRow]) -> None:
    rows = []
    for name, r in results.items():
        if r.skipped or (r.failed and not r.runs):
            rows.append([name] + ["-"] * len(METRICS) + [r.skipped or f"FAILED: {r.failed.splitlines()[0]}"])
            continue
        rows.append([name] + [fmt(r.metrics.get(k), 3 if "ms" in k else 1) for k, _ in METRICS] +
                    [f"FAILED: {r.failed}" if r.failed else ""])
    print_table(["target"] + [label for _, label in METRICS] + ["note"], rows)
    print("\nratios to HAProxy and Envoy (req/s: higher is better; CPU, latency: lower is better)")
    peers = [p for p in ("haproxy", "envoy") if p in results and results[p].metrics]
    table = []
    for name, r in results.items():
        if name == "direct" or not r.metrics:
            continue
        for peer in peers:
            if peer != name:
                table.append([f"{name}/{peer}"] + [fmt(ratio(r.metrics.get(k), results[peer].metrics.get(k)), 3, "x")
                                                    for k, _ in METRICS if k != "p50_c1_ms"])
    if table:
        print_table(["ratio"] + [label for k, label in METRICS if k != "p50_c1_ms"], table)
    print("\nmeshcore against the issue's budgets")
    print_ratios(ratios, "meshcore")


def main(argv=None) -> int:
    p = bench_arg_parser(__doc__, PROXIES, duration_help="seconds per measured h2load run (default 10)")
    p.add_argument("--keep-workdir", metavar="DIR", help="copy the generated configs and every log here")
    args = parse_bench_args(p, PROXIES, argv)
    for tool in ("h2load", "nghttpd", "taskset"):
        if not which(tool):
            print(f"bench_h2: {tool} not found; run scripts/setup.sh (nghttp2-client, nghttp2-server)",
                  file=sys.stderr)
            return 2
    with make_workdir("meshcore-bench-h2-") as tmp:
        workdir = Path(tmp)
        python = meshcore_python()
        ctx = {"workdir": workdir, "proxy_core": args.proxy_core, "meshcore_python": python,
               "meshcore_launcher": pick_meshcore_launcher(args.meshcore_launcher, python),
               "haproxy": which("haproxy"), "nginx": which("nginx"), "envoy": find_envoy(args.envoy)}
        versions = {"h2load": first_line(["h2load", "--version"]), "nghttpd": first_line(["nghttpd", "--version"]),
                    "haproxy": first_line([ctx["haproxy"], "-v"]) if ctx["haproxy"] else None,
                    "nginx": first_line([ctx["nginx"], "-v"]) if ctx["nginx"] else None,
                    "envoy": first_line([ctx["envoy"], "--version"]) if ctx["envoy"] else None}
        print(f"bench_h2: {platform.node()}, {cpu_count()} CPUs; proxy on core {args.proxy_core}, h2load + "
              f"nghttpd on core {args.load_core}; {args.duration:g} s per run. The machine may be shared with "
              "other work: compare figures within this run only.")
        for k, v in versions.items():
            print(f"  {k:8} {v or 'not found'}")
        (workdir / "grpc-request.bin").write_bytes(h2load_run.GRPC_FRAME)
        upstream, upstream_port = start_upstream(workdir, args.load_core)
        results: dict[str, Result] = {}
        t0 = time.monotonic()
        try:
            ctx["upstream_port"] = upstream_port
            ctx["listen_port"], ctx["admin_port"] = free_port(), free_port()
            ctx["bootstrap"] = workdir / "bootstrap.yaml"
            ctx["bootstrap"].write_text(BOOTSTRAP.format(**ctx))
            print("direct ...", flush=True)
            results["direct"] = bench_target("direct", upstream_port, None, ctx, args)
            for name in args.proxies:
                if name != "meshcore" and not ctx[name]:
                    results[name] = Result(name, skipped=f"{name} not found (run benchmarks/setup.sh)")
                    continue
                print(f"{name} ...", flush=True)
                results[name] = bench_proxy(name, ctx, args)
                upstream.check_alive()
        finally:
            upstream.stop()
            if args.keep_workdir:
                keep_workdir(workdir, args.keep_workdir)
    derive(results)
    ratios = ratio_rows(results)
    print(f"\ndone in {time.monotonic() - t0:.0f} s\n")
    print_results(results, ratios)
    if args.json:
        doc = {"benchmark": "h2", "duration_s": args.duration, "cpus": cpu_count(), "versions": versions,
               "results": {n: {"metrics": r.metrics, "runs": {w: x.to_dict() for w, x in r.runs.items()},
                               "skipped": r.skipped, "failed": r.failed} for n, r in results.items()},
               "ratios": [vars(r) for r in ratios]}
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 1 if any(r.failed for r in results.values()) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        print(f"bench_h2: {e}", file=sys.stderr)
        sys.exit(2)
