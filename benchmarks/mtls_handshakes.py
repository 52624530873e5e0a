"""bench_mtls.py's handshake measurement: new mTLS handshakes per second against a server
sidecar, made by a Python ssl client in a process of its own, and the server's CPU per handshake.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field

from common import (
    BenchError,
    Proc,
    admin_counters,
    cpu_window,
)

# Concurrent handshakes (client threads) in the two handshake runs.
HS_CONNS = (1, 4)

# The handshake load generator, run as `python -c HANDSHAKE_CLIENT ...` pinned
# to the load core (so its CPU is a child's, off the proxy core). Each thread
# loops: connect, full TLS 1.3 handshake with the client certificate, close
# (a plain close: the server reads the client's last flight, then EOF).
HANDSHAKE_CLIENT = r"""
import json, socket, ssl, sys, threading, time
port, cert, key, ca, threads, duration = sys.argv[1:7]
threads, duration = int(threads), float(duration)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False  # the certificate names a SPIFFE ID, no host
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
ctx.load_verify_locations(ca)
ctx.load_cert_chain(cert, key)
ctx.set_alpn_protocols(["http/1.1"])
addr = ("127.0.0.1", int(port))
counts, errors = [], []
gate = threading.Barrier(threads + 1)
deadline = 0.0

def worker():
    ok = failed = 0
    gate.wait()
    while time.monotonic() < deadline:
        s = socket.socket()
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            s.connect(addr)
            ctx.wrap_socket(s).close()  # wrap_socket does the handshake
            ok += 1
        except (OSError, ValueError) as e:
            failed += 1
            if len(errors) < 5:
                errors.append(f"{type(e).__name__}: {e}")
        finally:
            s.close()
    counts.append((ok, failed))

pool = [threading.Thread(target=worker) for _ in range(threads)]
for t in pool:
    t.start()
t0 = time.monotonic()
deadline = t0 + duration
gate.wait()
for t in pool:
    t.join()
print(json.dumps({"ok": sum(c[0] for c in counts), "failed": sum(c[1] for c in counts),
                  "wall_s": time.monotonic() - t0, "errors": errors}))
"""


@dataclass
class HandshakeRun:
    conns: int
    ok: int
    failed: int
    wall_s: float             # the client's own loop time
    window_s: float           # the CPU reading's window (includes the client's start)
    server_cpu_s: float
    others_cpu_s: float
    errors: list = field(default_factory=list)
    server_counted: int | None = None   # the server's ssl.handshake delta (meshcore, Envoy)
    server_errors: dict = field(default_factory=dict)  # its error-like ssl.* deltas

    @property
    def rate(self) -> float | None:
        return self.ok / self.wall_s if self.wall_s and self.ok else None

    @property
    def cpu_us_per_hs(self) -> float | None:
        return self.server_cpu_s / self.ok * 1e6 if self.ok else None


def run_handshakes(port: int, conns: int, server: Proc, others: list[int], ctx: dict, args,
                   admin_port: int | None) -> HandshakeRun:
    """One handshake run against the server side, its CPU read around it."""
    certs = ctx["certs"]
    cmd = ["taskset", "-c", str(args.load_core), sys.executable, "-c", HANDSHAKE_CLIENT, str(port),
           certs["client_cert"], certs["client_key"], certs["root"], str(conns), str(args.duration)]
    ssl_prefix = f"listener.127.0.0.1_{port}.ssl."
    before = admin_counters(admin_port) if admin_port else None
    with cpu_window([server.pid, *others], {args.proxy_core, args.load_core}) as w:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.duration + 60)
    if out.returncode != 0:
        raise BenchError(f"handshake client failed ({out.returncode}): {out.stderr.strip()[-500:]}")
    doc = json.loads(out.stdout)
    run = HandshakeRun(conns, doc["ok"], doc["failed"], doc["wall_s"], w.wall_s,
                       w.cpu_s[server.pid], w.others_cpu_s, doc["errors"])
    server.check_alive()
    if before is not None:
        time.sleep(0.2)  # the server may still be reading the last client flight
        after = admin_counters(admin_port)
        delta = {k: after.get(k, 0) - before.get(k, 0) for k in after if k.startswith(ssl_prefix)}
        run.server_counted = delta.get(ssl_prefix + "handshake", 0)
        run.server_errors = {k[len(ssl_prefix):]: v for k, v in delta.items()
                             if v and re.search(r"error|fail|no_certificate|session_reused", k)}
    if run.ok == 0:
        raise BenchError(f"no handshake completed against port {port} ({conns} at a time): "
                         f"{'; '.join(run.errors) or 'no error recorded'}")
    return run

