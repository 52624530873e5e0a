"""`meshcore demo`, the project's main job on its built-in default, run as a
user runs it: a real process that starts three real sidecars. It must exit 0
having shown the 90/10 split, the canary's 503s hidden by retries, mTLS
between the sidecars, a 403 from the AuthorizationPolicy and the stat table;
and it must leave neither its temporary directory nor a sidecar behind."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys


def processes_under(path) -> dict[int, str]:
    """pid -> command line of every process whose command line names path (the demo's sidecars do)."""
    out = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(path) in cmd:
            out[int(entry)] = cmd
    return out


def run_demo(tmp_path, *args) -> tuple[int, str]:
    """(exit status, stdout + stderr); the demo's temporary directory goes under tmp_path."""
    proc = subprocess.Popen([sys.executable, "-m", "meshcore", "demo", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**os.environ, "TMPDIR": str(tmp_path)})
    try:
        out, _ = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)  # the demo stops its sidecars on the way out
        out, _ = proc.communicate(timeout=30)
        raise AssertionError(f"meshcore demo did not finish in 120s:\n{out}") from None
    finally:
        leftovers = processes_under(tmp_path)
        for pid in leftovers:
            os.kill(pid, signal.SIGKILL)
    assert not leftovers, f"processes left behind: {leftovers}\n{out}"
    return proc.returncode, out


def test_demo_quick(tmp_path):
    code, out = run_demo(tmp_path, "--quick")
    assert code == 0, out
    assert out.rstrip().endswith("meshcore demo: OK"), out

    split = re.search(r"routed by the split\s+v1\s+(\d+) \(.*\)\s+v2\s+(\d+) \(.*\)\s+configured 90/10", out)
    assert split, out
    v1, v2 = map(int, split.groups())
    assert v1 + v2 == 200 and abs(v2 - 20) <= 4, out  # 90/10 within 2%
    assert re.search(r"answered \(X-Backend\)\s+v1\s+\d+ .*v2\s+\d+", out), out
    retried = re.search(r"v2 answered 503 to (\d+) requests; frontend's sidecar retried (\d+) of them on v1", out)
    assert retried and retried.group(1) == retried.group(2) != "0", out
    assert "the application saw 200/200 200 OK (100.00% success)" in out, out

    frontend = "spiffe://cluster.local/ns/default/sa/frontend"
    for workload in ("checkout-v1", "checkout-v2"):
        assert re.search(rf'{workload}: istio_requests_total\{{reporter="destination",source_principal="{frontend}",'
                         rf'destination_workload="{workload}",response_code="200",'
                         r'connection_security_policy="mutual_tls",\.\.\.\} \d+', out), out
    assert re.search(r"a plaintext GET straight to checkout-v1's inbound port :\d+: (closed|reset|a TLS alert)", out)

    assert "GET /admin/users from frontend: 403 'RBAC: access denied'" in out, out
    assert "the application never saw it" in out, out

    assert re.search(r"SOURCE\s+DESTINATION\s+REPORTER\s+RPS\s+SUCCESS\s+P50\s+P95\s+P99", out), out
    assert re.search(r"default/frontend\s+default/checkout-v1\s+destination\s+\S+\s+100\.00%", out), out
    assert re.search(r"default/frontend\s+default/checkout-v2\s+destination", out), out

    # the control plane: sidecars got their certificates by CSR and their config over xDS
    assert re.search(r"frontend\.default\s+SYNCED\s+SYNCED\s+SYNCED\s+SYNCED\s+SYNCED", out), out
    assert "every proxy SYNCED" in out, out
    steps = re.findall(r"(\d+)/(\d+): checkout\.yaml edited; pushed and ACKed by every proxy in \d+ ms .*?"
                       r"the next (\d+): v1 (\d+) .*?, v2 (\d+) ", out)
    assert [(a, b) for a, b, *_ in steps] == [("50", "50"), ("0", "100")], out
    for _, share, n, _, v2 in steps:
        assert abs(int(v2) - int(n) * int(share) / 100) <= max(0.01 * int(n), 1), out  # within 1%
    assert re.search(r"\d+ requests during the shift, 0 failed", out), out

    assert "stopped 3 sidecars and the control plane (SIGTERM): exit status 0, 0, 0, 0" in out, out
    assert not list(tmp_path.iterdir()), "the demo's temporary directory was not removed"


def test_demo_refuses_too_few_requests(tmp_path):
    code, out = run_demo(tmp_path, "--requests", "5")
    assert code == 2 and "at least 10 requests" in out, out
