"""benchmarks/bench_abuse.py --quick runs and produces its figures for every
probe and proxy (no thresholds: the figures are for docs/hardening.md)."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROBES = ("slowloris", "flood", "slow_readers", "header_bombs", "fault_upstreams")


def test_bench_abuse_quick(tmp_path):
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    from common import find_envoy

    proxies = ["meshcore"] + (["envoy"] if find_envoy() else [])
    out = tmp_path / "abuse.json"
    r = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "bench_abuse.py"), "--quick",
                        "--proxies", ",".join(proxies), "--json", str(out)],
                       capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    results = json.loads(out.read_text())["results"]
    for proxy in proxies:
        rows = {x["probe"]: x for x in results if x["proxy"] == proxy}
        assert set(rows) == set(PROBES), (proxy, sorted(rows), r.stderr[-2000:])
        for probe, row in rows.items():
            assert row["sent"] > 0 and row["steady_ok"] > 0 and row["admin_ok"] > 0, (proxy, probe, row)
            assert row["rss_before_kib"] and row["rss_after_kib"], (proxy, probe, row)
    assert "abuse probes (quick" in r.stdout
