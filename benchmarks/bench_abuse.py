"""Abuse probes against meshcore and Envoy, in one run (issue 12, docs/hardening.md).

    bash benchmarks/setup.sh && .venv/bin/python benchmarks/bench_abuse.py [--quick] [--proxies meshcore,envoy]

Each proxy runs alone on the same bootstrap (one worker, its descriptor
limit lowered with prlimit so a connection flood reaches it), with three
upstreams in this process: a good one, one that never answers and one that
cuts its body short. Then, one after another: slowloris, a connection flood
past the fd limit, slow readers of a 4 MiB body, header bombs (100 KiB; 500
fields) and requests to the faulty upstreams. Beside every probe a steady
client keeps doing GETs on a keep-alive connection opened before the probe
and a poller GETs the admin API's /ready on a new connection every 0.25 s.

For each probe: connections sent, refused at connect, closed or answered
with an error by the proxy; the steady client's and the admin poller's
successes and failures; the proxy's CPU (% of one core) during the probe;
its RSS before, at most during and after (once the probe's connections are
closed and a few seconds have passed). Targets: 0 steady failures, 0 admin
failures, RSS after within 10% of before. The figures are printed, never
asserted (tests/integration/test_bench_abuse.py runs --quick and checks
that they exist). The machine is shared and noisy: CPU figures are rough.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from abuse_probes import PROBES, Upstream, Watch  # noqa: E402
from common import (  # noqa: E402
    BenchError,
    Proc,
    cpu_seconds,
    find_envoy,
    free_port,
    make_workdir,
    meshcore_python,
    print_table,
    rss_kib,
    start_pinned,
    wait_port,
)

HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
FULL = {"seconds": 15, "slowloris": 300, "flood": 1300, "slow_readers": 50, "bombs": 200, "faults": 10,
        "settle": 12, "nofile": 1024}
QUICK = {"seconds": 3, "slowloris": 60, "flood": 400, "slow_readers": 10, "bombs": 20, "faults": 3,
         "settle": 7, "nofile": 256}


def _cluster(name: str, port: int) -> dict:
    return {"name": name, "type": "STATIC", "connect_timeout": "1s",
            "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
                {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}]}}


def bootstrap(listen_port: int, upstreams: dict, admin_port: int | None) -> dict:
    """The one config both proxies run; no timeouts beyond the routes' own, so
    each proxy's defaults are what is measured."""
    routes = [{"match": {"prefix": "/blackhole"}, "route": {"cluster": "blackhole", "timeout": "1s"}},
              {"match": {"prefix": "/half"}, "route": {"cluster": "half"}},
              {"match": {"prefix": "/"}, "route": {"cluster": "app"}}]
    hcm = {"@type": HCM, "stat_prefix": "ingress", "codec_type": "HTTP1",
           "route_config": {"name": "r", "virtual_hosts": [{"name": "all", "domains": ["*"], "routes": routes}]},
           "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER}}]}
    doc = {"node": {"id": "bench-abuse", "cluster": "bench"},
           "static_resources": {
               "listeners": [{"name": "ingress",
                              "address": {"socket_address": {"address": "127.0.0.1", "port_value": listen_port}},
                              "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                                              "typed_config": hcm}]}]}],
               "clusters": [_cluster(name, up.port) for name, up in upstreams.items()]}}
    if admin_port is not None:
        doc["admin"] = {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}}
    return doc


def start_proxy(name: str, ctx: dict, scale: dict) -> tuple[Proc, int, int]:
    port, admin = free_port(), free_port()
    limit = ["prlimit", f"--nofile={scale['nofile']}:{scale['nofile']}"]
    path = ctx["workdir"] / f"{name}.json"  # JSON is YAML: both proxies read it
    if name == "meshcore":
        path.write_text(json.dumps(bootstrap(port, ctx["upstreams"], None)))
        cmd = limit + [os.path.join(os.path.dirname(ctx["python"]), "meshcore"), "proxy", "-c", str(path),
                       "--concurrency", "1", "--admin-address", f"127.0.0.1:{admin}"]
    else:
        path.write_text(json.dumps(bootstrap(port, ctx["upstreams"], admin)))
        cmd = limit + [ctx["envoy"], "-c", str(path), "--concurrency", "1", "--base-id", str(os.getpid()),
                       "-l", "error"]
    proc = start_pinned(name, cmd, 0, ctx["workdir"])
    wait_port(port, proc=proc, timeout=60)
    wait_port(admin, proc=proc, timeout=60)
    return proc, port, admin


def run_probe(proc: Proc, port: int, admin: int, probe: str, scale: dict) -> dict:
    rss0 = rss_kib(proc.pid)
    peak = [rss0]
    watch = Watch(port, admin).start()
    cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()

    def during():
        peak[0] = max(peak[0], rss_kib(proc.pid) or 0)

    result = PROBES[probe](port, scale, during)
    cpu = (cpu_seconds(proc.pid) - cpu0) / (time.monotonic() - t0) * 100
    time.sleep(scale["settle"])  # the probe's connections are closed: memory may go back
    watch.stop()
    rss1 = rss_kib(proc.pid)
    proc.check_alive()
    return {"probe": probe, **result, "steady_ok": watch.steady_ok, "steady_failures": watch.steady_failures,
            "admin_ok": watch.admin_ok, "admin_failures": watch.admin_failures, "cpu_pct": round(cpu, 1),
            "rss_before_kib": rss0, "rss_peak_kib": peak[0], "rss_after_kib": rss1,
            "rss_after_pct": round((rss1 - rss0) * 100 / rss0, 1) if rss0 and rss1 else None,
            "errors": watch.errors[:5]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="short probes, small counts (for the test suite)")
    p.add_argument("--proxies", default="meshcore,envoy")
    p.add_argument("--envoy", help="the envoy binary (default: benchmarks/.envoy-venv, $ENVOY, PATH)")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)
    scale = QUICK if args.quick else FULL
    proxies = [x for x in args.proxies.split(",") if x]
    envoy = find_envoy(args.envoy)
    if "envoy" in proxies and not envoy:
        print("envoy: not found (bash benchmarks/setup.sh installs it); skipped", file=sys.stderr)
        proxies.remove("envoy")
    upstreams = {"app": Upstream("ok"), "blackhole": Upstream("blackhole"), "half": Upstream("half")}
    results = []
    with make_workdir("bench-abuse-") as wd:
        from pathlib import Path

        ctx = {"workdir": Path(wd), "python": meshcore_python(), "envoy": envoy, "upstreams": upstreams}
        for name in proxies:
            proc, port, admin = start_proxy(name, ctx, scale)
            try:
                time.sleep(1)
                for probe in PROBES:
                    r = run_probe(proc, port, admin, probe, scale)
                    results.append({"proxy": name, **r})
            except BenchError as e:
                print(f"{name}: {e}", file=sys.stderr)
                results.append({"proxy": name, "probe": "error", "error": str(e)})
            finally:
                proc.stop()
    for up in upstreams.values():
        up.stop()
    rows = [[r["proxy"], r["probe"], r.get("sent"), r.get("refused"), r.get("closed"),
             f"{r.get('steady_ok')}/{r.get('steady_failures')}", f"{r.get('admin_ok')}/{r.get('admin_failures')}",
             r.get("cpu_pct"), _mib(r.get("rss_before_kib")), _mib(r.get("rss_peak_kib")),
             _mib(r.get("rss_after_kib")), r.get("rss_after_pct")]
            for r in results if r["probe"] != "error"]
    print(f"abuse probes ({'quick' if args.quick else 'full'}: {scale['seconds']} s each, "
          f"nofile {scale['nofile']}, one worker; noisy shared machine)")
    print_table(["proxy", "probe", "sent", "refused", "closed", "steady ok/fail", "admin ok/fail", "CPU %",
                 "RSS before MiB", "peak MiB", "after MiB", "after vs before %"], rows)
    for r in results:
        if r.get("errors"):
            print(f"{r['proxy']} {r['probe']}: first failures: {r['errors']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"scale": scale, "results": results}, f, indent=2)
    return 0


def _mib(kib):
    return round(kib / 1024, 1) if kib else None


if __name__ == "__main__":
    sys.exit(main())
