"""benchmarks/bench_primitives.py in quick mode: it runs end to end and
prints a figure for every primitive and every alternative (the routers are
checked to agree inside it). No speed is asserted: budgets are read from
the benchmark's own output, never from a test."""
import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_quick_mode_produces_figures(tmp_path):
    out = tmp_path / "figures.json"
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_primitives.py"), "--quick",
                        "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    figures = json.loads(out.read_text())
    names = {name for table in figures for name in table["ns"]}
    assert {"meshcore parse_request", "meshcore HttpRequestParser", "httptools", "h11", "meshcore Router.match",
            "Python router", "meshcore WeightedPicker.pick", "random.choices", "Python smooth WRR",
            "meshcore.tls", "ssl (no SPIFFE check)"} <= names
    assert all(ns > 0 for table in figures for ns in table["ns"].values())
    assert "x" in r.stdout  # ratios printed
