"""benchmarks/bench_h2.py --quick runs end to end: h2load against HAProxy, nginx
and Envoy as h2 -> h2 proxies (and meshcore, which either is measured or,
without its HTTP/2 codec, says "h2 not available in this build"). Only that
numbers are produced is checked: budgets are the benchmark's business, never
a test's."""
import json
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks" / "bench_h2.py"
pytestmark = pytest.mark.skipif(any(shutil.which(t, path="/usr/bin:/usr/sbin:/bin:/sbin") is None
                                    for t in ("h2load", "nghttpd", "taskset")),
                                reason="h2load / nghttpd not installed (scripts/setup.sh: nghttp2-client, "
                                       "nghttp2-server)")


def test_quick_run_produces_numbers(tmp_path):
    out = tmp_path / "h2.json"
    run = subprocess.run([sys.executable, str(BENCH), "--quick", "--duration", "1", "--warmup", "0.2",
                          "--json", str(out)], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    doc = json.loads(out.read_text())
    results = doc["results"]
    assert results["direct"]["metrics"]["rps_c32"] > 0
    measured = [n for n in ("haproxy", "nginx", "envoy") if not results[n]["skipped"]]
    assert "haproxy" in measured  # a Debian package setup.sh installs
    for name in measured:
        m = results[name]["metrics"]
        assert m["rps_c32"] > 0 and m["grpc_rps"] > 0, (name, m)
        assert m["cpu_us_per_rq_c32"] > 0 and m["p50_c1_ms"] > 0 and m["added_p50_ms"] > 0, (name, m)
    me = results["meshcore"]
    if me["skipped"]:
        assert "h2 not available in this build" in me["skipped"]
    else:
        assert me["metrics"]["rps_c32"] > 0 and me["metrics"]["grpc_rps"] > 0
    assert "ratios to HAProxy and Envoy" in run.stdout
