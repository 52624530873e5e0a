#!/usr/bin/env python3
"""From a file change to the new config applied in every proxy.

For each fleet size (1, 10, 100, 1,000 connected proxies) one `meshcore
control-plane` process serves a mesh directory; up to --real of the proxies
are real `meshcore proxy --xds` processes, the rest lightweight xDS clients
(benchmarks/push_fleet.py: delta ADS streams that ACK as a proxy does, in one
child process). Then the VirtualService's weights are edited --changes times.
Per change and proxy, the latency is measured AT THE PROXY: a real proxy's
route configuration `last_updated` (when it applied it, from its
/config_dump), a lightweight client's arrival time of the new
RouteConfiguration, minus the time the file was written. Printed: p50/p99 of
those latencies per size, the control plane's CPU per push (per change and
per proxy reached) and its RSS per connected proxy.

    .venv/bin/python benchmarks/bench_push.py                 # 1, 10, 100, 1000
    .venv/bin/python benchmarks/bench_push.py --sizes 1,10 --changes 3

Targets (DESIGN.md's budgets): p99 under 100 ms at 100 proxies, under 1 s at
1,000. The directory watcher polls every --poll-interval (20 ms here); that
is part of every figure. Reported only; a miss does not fail the run.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from common import cpu_seconds, mib, rss_kib

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
TARGETS = {100: 0.100, 1000: 1.0}  # p99 seconds


def meshcore(*args):
    return [PYTHON, "-m", "meshcore", *args]


def write_mesh(directory: Path, workloads: int, v1: int = 90) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    entries = "".join(
        f"---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {{name: w{i}, namespace: bench}}\n"
        f"spec: {{address: 127.0.0.1, ports: {{http: {18000 + i}}}, labels: {{app: svc, version: v{1 + i % 2}}}}}\n"
        for i in range(workloads))
    (directory / "registry.yaml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: svc, namespace: bench}\n"
        "spec:\n  selector: {app: svc}\n  ports:\n  - {name: http, port: 9080}\n" + entries)
    write_routing(directory, v1)


def write_routing(directory: Path, v1: int) -> float:
    text = ("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: svc, namespace: bench}\n"
            "spec:\n  host: svc\n  subsets:\n  - {name: v1, labels: {version: v1}}\n"
            "  - {name: v2, labels: {version: v2}}\n---\n"
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: svc, namespace: bench}\n"
            f"spec:\n  hosts: [svc]\n  http:\n  - route:\n    - destination: {{host: svc, subset: v1}}\n"
            f"      weight: {v1}\n    - destination: {{host: svc, subset: v2}}\n      weight: {100 - v1}\n")
    tmp = directory / "routing.yaml.tmp"
    tmp.write_text(text)
    written = time.time()
    os.replace(tmp, directory / "routing.yaml")
    return written


def wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"bench_push: timed out waiting for {what}")
        time.sleep(0.05)


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


class RealProxy:
    def __init__(self, workdir: Path, k: int, xds: str, token: str, workloads: int):
        self.addr_file = workdir / f"proxy{k}.admin"
        self.log = open(workdir / f"proxy{k}.log", "wb")
        self.proc = subprocess.Popen(
            meshcore("--log-level", "warning", "proxy", "--xds", xds, "--workload", f"bench/w{k % workloads}",
                     "--token", token, "--outbound-address", f"127.0.1.{k + 1}", "--concurrency", "1",
                     "--admin-address", "127.0.0.1:0", "--admin-address-path", str(self.addr_file)),
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.admin = None

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            raise SystemExit(f"bench_push: a proxy exited with {self.proc.returncode}")
        if self.admin is None and self.addr_file.exists() and self.addr_file.read_text().strip():
            self.admin = self.addr_file.read_text().strip()
        if self.admin is None:
            return False
        try:
            with urllib.request.urlopen(f"http://{self.admin}/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def route_updates(self) -> dict:
        """route config version -> when the proxy applied it (seconds since the epoch)."""
        from datetime import datetime

        dump = get_json(f"http://{self.admin}/config_dump")
        out = {}
        for section in dump.get("configs", []):
            for rc in section.get("dynamic_route_configs", []):
                if rc.get("last_updated"):
                    ts = datetime.fromisoformat(rc["last_updated"].replace("Z", "+00:00")).timestamp()
                    out[rc.get("version_info", "")] = ts
        return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


def percentile(values, q):
    values = sorted(values)
    return values[max(0, min(len(values) - 1, int(round(q * (len(values) - 1)))))] if values else None


def run_size(n: int, args, workdir: Path) -> dict:
    ca_dir, mesh = workdir / "ca", workdir / "mesh"
    subprocess.run(meshcore("ca", "init", "--trust-domain", "cluster.local", "--dir", str(ca_dir)), check=True,
                   capture_output=True)
    workloads = max(1, min(args.workloads, n))
    write_mesh(mesh, workloads)
    addr = workdir / "cp.addresses"
    cp_log = open(workdir / "cp.log", "wb")
    cp = subprocess.Popen(meshcore("--log-level", "warning", "control-plane", "--mesh-dir", str(mesh), "--ca-dir",
                                   str(ca_dir), "--listen", "127.0.0.1:0", "--status", "127.0.0.1:0",
                                   "--address-file", str(addr), "--poll-interval", str(args.poll_interval)),
                          stdout=cp_log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    proxies, fleet = [], None
    try:
        wait(lambda: addr.exists() and addr.read_text().strip(), 60, "the control plane")
        xds, status = addr.read_text().split()
        rss_before = rss_kib(cp.pid)
        token = workdir / "bench.token"
        subprocess.run(meshcore("control-plane", "token", "bench/default", "--ca-dir", str(ca_dir), "--out",
                                str(token)), check=True, capture_output=True)
        real = min(n, args.real)
        proxies = [RealProxy(workdir, k, xds, str(token), workloads) for k in range(real)]
        light = n - real
        if light:
            ready_file, out_file = workdir / "fleet.ready", workdir / "fleet.json"
            fleet = subprocess.Popen([PYTHON, str(Path(__file__).parent / "push_fleet.py"), xds, str(light),
                                      str(workloads), str(out_file), str(ready_file)],
                                     stdout=cp_log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            wait(lambda: ready_file.exists() or fleet.poll() is not None, 300, "the lightweight clients")
            if fleet.poll() is not None:
                raise SystemExit("bench_push: the lightweight fleet exited; see cp.log")
        for p in proxies:
            wait(p.ready, 120, "a real proxy's /ready")
        wait(lambda: len(get_json(f"http://{status}/debug/syncz")["proxies"]) >= n, 120, "every proxy connected")
        time.sleep(0.5)
        rss_connected = rss_kib(cp.pid)
        cpu0 = cpu_seconds(cp.pid)
        writes, applied = [], []  # applied: when each real proxy applied each change (its own clock)
        seen = [set(p.route_updates()) for p in proxies]
        for k in range(args.changes):
            writes.append(write_routing(mesh, 80 - 5 * k))
            deadline = time.monotonic() + args.spacing
            pending = set(range(len(proxies)))
            while pending and time.monotonic() < deadline:
                for j in sorted(pending):
                    updates = proxies[j].route_updates()
                    new = {v: ts for v, ts in updates.items() if v not in seen[j]}
                    if new:
                        applied.extend(new.values())
                        seen[j] |= set(new)
                        pending.discard(j)
                time.sleep(0.02)
            time.sleep(max(0.0, deadline - time.monotonic()))
        cpu_used = cpu_seconds(cp.pid) - cpu0
        lat = []
        per_change = [[] for _ in writes]

        def attribute(arrival: float) -> None:
            for k in range(len(writes) - 1, -1, -1):
                if arrival >= writes[k]:
                    lat.append(arrival - writes[k])
                    per_change[k].append(arrival - writes[k])
                    return

        for ts in applied:
            attribute(ts)
        if fleet is not None:
            fleet.send_signal(signal.SIGTERM)
            fleet.wait(timeout=60)
            for routes in json.loads((workdir / "fleet.json").read_text()):
                for _version, arrival in routes:
                    if arrival >= writes[0]:
                        attribute(arrival)
        counters = get_json(f"http://{status}/debug/syncz")["counters"]
        reached = sum(len(c) for c in per_change)
        return {"proxies": n, "real": real, "workloads": workloads, "changes": len(writes),
                "updates_seen": reached, "updates_expected": n * len(writes),
                "p50_ms": 1000 * percentile(lat, 0.5) if lat else None,
                "p99_ms": 1000 * percentile(lat, 0.99) if lat else None,
                "max_ms": 1000 * max(lat) if lat else None,
                "cp_cpu_ms_per_change": 1000 * cpu_used / len(writes),
                "cp_cpu_us_per_proxy_push": 1e6 * cpu_used / max(1, reached),
                "cp_rss_mib": mib(rss_connected),
                "cp_rss_kib_per_proxy": (rss_connected - rss_before) / n if rss_connected and rss_before else None,
                "cp_counters": counters}
    finally:
        if fleet is not None and fleet.poll() is None:
            fleet.kill()
        for p in proxies:
            p.stop()
        if cp.poll() is None:
            cp.send_signal(signal.SIGTERM)
            try:
                cp.wait(timeout=15)
            except subprocess.TimeoutExpired:
                cp.kill()
        cp_log.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1,10,100,1000", help="connected proxies per run (default 1,10,100,1000)")
    ap.add_argument("--real", type=int, default=4, help="how many of them are real meshcore proxies (default 4)")
    ap.add_argument("--workloads", type=int, default=10, help="WorkloadEntries the proxies spread over (default 10)")
    ap.add_argument("--changes", type=int, default=5, help="edits per size (default 5)")
    ap.add_argument("--spacing", type=float, default=1.5, help="seconds between edits (default 1.5)")
    ap.add_argument("--poll-interval", type=float, default=0.02, help="the control plane's directory poll (s)")
    ap.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    ap.add_argument("--keep", action="store_true", help="keep the work directories")
    args = ap.parse_args()
    results = []
    for n in (int(x) for x in args.sizes.split(",")):
        workdir = Path(tempfile.mkdtemp(prefix=f"bench-push-{n}-"))
        try:
            r = run_size(n, args, workdir)
        finally:
            if not args.keep:
                shutil.rmtree(workdir, ignore_errors=True)
        results.append(r)
        target = TARGETS.get(n)
        verdict = ""
        if target is not None and r["p99_ms"] is not None:
            verdict = f"  target p99 < {1000 * target:.0f} ms: {'met' if r['p99_ms'] < 1000 * target else 'MISSED'}"
        print(f"{n:5d} proxies ({r['real']} real, {r['workloads']} workloads): p50 {r['p50_ms']:.1f} ms, "
              f"p99 {r['p99_ms']:.1f} ms, max {r['max_ms']:.1f} ms over {r['updates_seen']}/{r['updates_expected']} "
              f"updates; control plane {r['cp_cpu_ms_per_change']:.1f} ms CPU per change "
              f"({r['cp_cpu_us_per_proxy_push']:.0f} us per proxy reached), RSS {r['cp_rss_mib']:.1f} MiB "
              f"({r['cp_rss_kib_per_proxy'] or 0:.0f} KiB per connected proxy){verdict}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
