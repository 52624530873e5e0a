#!/usr/bin/env python3
"""mTLS benchmark: a two-hop mesh path through a meshcore pair vs an HAProxy pair vs a stunnel pair vs an Envoy pair.

    bash benchmarks/setup.sh && .venv/bin/python benchmarks/bench_mtls.py [--quick]

In one run, on loopback: wrk -> nginx directly, then, for each pair in turn,

    wrk -> client sidecar -(mTLS)-> server sidecar -> nginx

The client sidecar takes plaintext HTTP/1.1 and originates mutual TLS with
the client's certificate; the server sidecar terminates it, requires and
verifies the client's certificate, and forwards plaintext to nginx. Every
pair uses the same files, made for the run by meshcore's own CA (`meshcore
ca`, trust domain cluster.local, ECDSA P-256, the root signing directly):
spiffe://cluster.local/ns/default/sa/client and .../sa/server. Both proxies
of a pair run one worker each on PROXY_CORE; nginx and the load generators
share LOAD_CORE. meshcore and Envoy run the same two bootstrap files, with
URI SAN (SPIFFE ID) matching on both sides. Per pair:

  * GET / through the pair must return 200 "ok\\n"; for meshcore and Envoy the
    admin API must show a TLS handshake on both sides
  * probes on the server side's port, from Python's ssl: with the client
    certificate it must serve; without a certificate it must refuse; with
    another SPIFFE ID (sa/intruder, same CA) meshcore and Envoy must refuse
    (HAProxy and stunnel cannot match URI SANs: they serve it, as reported)
  * wrk -t1 -c1 --latency : p50 / p99 (one request in flight); added = pair - direct
  * wrk -t1 -c32          : requests per second
  * CPU per request: both proxies' utime+stime (/proc) / requests, per run
  * RSS: each proxy's VmRSS once listening, VmHWM (peak) at the end, and the sums
  * new mTLS handshakes per second against the server sidecar directly

Handshakes are made by a small Python ssl client in a process of its own on
LOAD_CORE: N threads (1, then 4), each connecting, doing a full TLS 1.3
handshake with the client certificate (a new SSL object per connection, no
session given: never a resumption), and closing, for --duration seconds.
The figures are handshakes completed / time and the server sidecar's CPU
seconds / handshakes. In TLS 1.3 the client finishes its handshake before the
server has checked the client's certificate, so the client alone cannot tell
an accepted handshake from a refused one: the probes above show each server
refuses a missing certificate, and for meshcore and Envoy the server's own
ssl.handshake counter is compared with the client's count. (`openssl s_time`
was not used: it closes with SO_LINGER 0, the RST can reach the server
before the client's last flight, and some handshakes are then never
completed by the server, while the client counts them.)

The run prints meshcore's figures as ratios to the HAProxy pair's and the
Envoy pair's, with the budgets from the issue (vs HAProxy: added p50 <= 0.6x,
CPU per request <= 0.7x; vs Envoy: better on every figure), and to stunnel's
for information. A missed budget is reported, never an error. Exit status 1:
a pair did not start, died, or did not proxy or authenticate as configured;
2: the benchmark could not run (a tool missing, the upstream or the
certificates could not be made).
"""
from __future__ import annotations

import json
import platform
import re
import ssl
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    BenchError,
    bench_arg_parser,
    cpu_count,
    find_envoy,
    first_line,
    free_port,
    keep_workdir,
    make_workdir,
    measure_group,
    meshcore_python,
    parse_bench_args,
    pick_meshcore_launcher,
    run_wrk,
    start_nginx,
    which,
)
from mtls_certs import CLIENT_ID, INTRUDER_ID, SERVER_ID, make_certs  # noqa: E402
from mtls_configs import write_bootstraps  # noqa: E402
from mtls_handshakes import HS_CONNS  # noqa: E402
from mtls_pair import bench_pair  # noqa: E402
from mtls_report import print_results, ratio_rows, result_dict  # noqa: E402
from mtls_results import ADDED_LATENCY_EPSILON_MS, Result, derive  # noqa: E402

PROXIES = ("meshcore", "haproxy", "stunnel", "envoy")


def tool_versions(ctx: dict) -> dict:
    envoy = first_line([ctx["envoy"], "--version"]) if ctx["envoy"] else None
    stunnel = None
    if ctx["stunnel"]:
        out = subprocess.run([ctx["stunnel"], "-version"], capture_output=True, text=True, timeout=10)
        m = re.search(r"^stunnel \S+.*$", out.stdout + out.stderr, re.M)
        stunnel = m.group(0).strip() if m else None
    return {
        "meshcore": first_line([ctx["meshcore_python"], "-c",
                                "import meshcore; print(meshcore.__version__)"]),
        "haproxy": first_line([ctx["haproxy"], "-v"]) if ctx["haproxy"] else None,
        "stunnel": stunnel,
        "envoy": envoy.split("version:")[-1].strip() if envoy else None,
        "nginx": first_line([ctx["nginx"], "-v"]),
        "wrk": first_line([which("wrk"), "-v"]),
        "hs client": f"Python {platform.python_version()} ssl, {ssl.OPENSSL_VERSION}",
    }


def parse_args(argv=None):
    p = bench_arg_parser(__doc__, PROXIES, per="pair",
                         duration_help="seconds per measured run, wrk and handshakes (default 10)",
                         launcher_note="no admin API; ")
    p.add_argument("--keep-workdir", metavar="DIR",
                   help="copy the generated configs, certificates and every process's log here")
    return parse_bench_args(p, PROXIES, argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    for tool in ("nginx", "wrk", "taskset"):
        if not which(tool):
            print(f"bench_mtls: {tool} not found; run benchmarks/setup.sh", file=sys.stderr)
            return 2
    if cpu_count() < 2 or args.proxy_core == args.load_core:
        print("bench_mtls: warning: proxies and load generator share a core; "
              "figures will be skewed", file=sys.stderr)

    with make_workdir("meshcore-bench-mtls-") as tmp:
        workdir = Path(tmp)
        python = meshcore_python()
        ctx = {
            "workdir": workdir,
            "proxy_core": args.proxy_core,
            "meshcore_python": python,
            "meshcore_launcher": pick_meshcore_launcher(args.meshcore_launcher, python),
            "haproxy": which("haproxy"),
            "stunnel": which("stunnel4") or which("stunnel"),
            "nginx": which("nginx"),
            "envoy": find_envoy(args.envoy),
        }
        versions = tool_versions(ctx)
        print(f"bench_mtls: {platform.node()}, {cpu_count()} CPUs; both proxies of a pair on core "
              f"{args.proxy_core}, wrk + nginx + handshake client on core {args.load_core}; "
              f"{args.duration:g} s per run, {args.warmup:g} s warm-up")
        for k, v in versions.items():
            extra = f" (launcher: {ctx['meshcore_launcher']})" if k == "meshcore" else ""
            print(f"  {k:9} {v or 'not found'}{extra}")
        print(flush=True)

        try:
            ctx["certs"] = make_certs(workdir, python)
        except (OSError, subprocess.SubprocessError) as e:
            raise BenchError(f"could not make the certificates: {e}") from e
        nginx, upstream_port = start_nginx(workdir, args.load_core, status=True)
        try:
            ctx["upstream_port"], ctx["upstream_pid"] = upstream_port, nginx.pid
            ctx["ports"] = {"client_port": free_port(), "server_port": free_port(),
                            "upstream_port": upstream_port}
            ctx["client_admin_port"], ctx["server_admin_port"] = free_port(), free_port()
            write_bootstraps(ctx)

            results: dict[str, Result] = {}
            t0 = time.monotonic()
            print("direct ...", flush=True)
            direct = Result("direct")
            direct.warmup = run_wrk(f"http://127.0.0.1:{upstream_port}/", 32, args.warmup,
                                    core=args.load_core)
            for conns in (1, 32):
                setattr(direct, f"c{conns}", measure_group(
                    f"http://127.0.0.1:{upstream_port}/", conns, args.duration, True, [],
                    nginx.pid, args.proxy_core, args.load_core))
            direct.c1.proxy_cpu_s = direct.c32.proxy_cpu_s = None  # no proxy
            results["direct"] = direct
            nginx.check_alive()
            for name in args.proxies:
                missing = {"haproxy": "haproxy", "stunnel": "stunnel", "envoy": "envoy"}.get(name)
                if missing and not ctx[missing]:
                    results[name] = Result(name, skipped=f"{missing} not found (run setup.sh)")
                    continue
                print(f"{name} pair ...", flush=True)
                results[name] = bench_pair(name, ctx, args)
                nginx.check_alive()
        finally:
            nginx.stop()
            if args.keep_workdir:
                keep_workdir(workdir, args.keep_workdir)

    derive(results)
    ratios = ratio_rows(results)
    print(f"\ndone in {time.monotonic() - t0:.0f} s\n")
    print_results(results, ratios)

    if args.json:
        doc = {
            "benchmark": "mtls",
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "proxy_core": args.proxy_core,
            "load_core": args.load_core,
            "cpus": cpu_count(),
            "meshcore_launcher": ctx["meshcore_launcher"],
            "versions": versions,
            "identities": {"client": CLIENT_ID, "server": SERVER_ID, "intruder": INTRUDER_ID},
            "handshake_conns": list(HS_CONNS),
            "added_latency_epsilon_ms": ADDED_LATENCY_EPSILON_MS,
            "results": {n: result_dict(r) for n, r in results.items()},
            "ratios": [vars(r) for r in ratios],
        }
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
        print(f"\nwrote {args.json}")

    return 1 if any(r.failed for r in results.values()) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        # The direct run, the upstream or the certificates broke: nothing to compare.
        print(f"bench_mtls: {e}", file=sys.stderr)
        sys.exit(2)
