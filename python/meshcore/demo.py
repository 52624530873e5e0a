"""`meshcore demo`: a small Istio mesh on this machine, with real traffic.

The demo is frontend's application: it calls checkout in plaintext through
frontend's sidecar. checkout runs as v1 and as a v2 canary that answers 503
to every 5th request, each behind its own sidecar. Between the sidecars
there is mTLS only. The mesh is Istio's own YAML (a 90/10 split with
retries, STRICT mTLS, an AuthorizationPolicy), served by a real `meshcore
control-plane` (xDS, and the certificate service: no sidecar ever sees the CA
key) to real `meshcore proxy --xds` processes (demo_mesh.py); the canary is
then shifted 90/10 -> 50/50 -> 0/100 while traffic flows. Every step checks what it shows: one
that does not see what Istio would show fails the demo (exit status 1), and
whatever happens, every process the demo started is stopped.
"""
from __future__ import annotations

import collections
import http.client
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

from meshcore import ca
from meshcore.demo_mesh import (
    TRUST_DOMAIN,
    App,
    ControlPlane,
    DemoError,
    Sidecar,
    Workload,
    free_port,
    write_mesh_dir,
    write_routing,
)
from meshcore.errors import MeshcoreError
from meshcore.telemetry import golden_signals as gs
from meshcore.translate import Security, check, load_dir

STEPS = 9
CANARY_STEPS = ((50, 50), (0, 100))  # after the first 90/10
CANARY_REQUESTS = 200  # measured per step
HOST = "checkout.default.svc.cluster.local"
V2_FAILS_EVERY = 5


def _percentile(sorted_ms: list[float], q: float) -> float:
    """Nearest rank: the smallest value at least q of the samples are not above."""
    return sorted_ms[max(0, math.ceil(q * len(sorted_ms)) - 1)]


def _call(port: int, path: str) -> tuple[int, str]:
    """One request of frontend's application, on a connection of its own."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.request("GET", path, headers={"Host": "checkout"})
        resp = conn.getresponse()
        return resp.status, resp.read().decode(errors="replace").strip()
    finally:
        conn.close()


def _plaintext_probe(port: int) -> str:
    """What a client without TLS gets from a STRICT inbound port: a GET in plaintext."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        try:
            s.sendall(b"GET / HTTP/1.1\r\nHost: checkout\r\n\r\n")
            data = s.recv(4096)
        except ConnectionResetError:
            return "reset"
        except TimeoutError:
            return "no answer"
    if data.startswith(b"HTTP/"):
        return data.split(b"\r\n", 1)[0].decode(errors="replace")
    if data[:1] == b"\x15":
        return "a TLS alert, then closed"
    return "closed" if not data else f"{len(data)} bytes that are not HTTP"


class _Load:
    """frontend's application calling checkout in the background, one keep-alive
    connection, until stopped: what it sent and what did not come back 200."""

    def __init__(self, port: int):
        self.port = port
        self.sent = 0
        self.failures: collections.Counter = collections.Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-load", daemon=True)

    def start(self) -> _Load:
        self._thread.start()
        return self

    def _run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        while not self._stop.is_set():
            try:
                conn.request("GET", "/", headers={"Host": "checkout"})
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    self.failures[resp.status] += 1
            except (OSError, http.client.HTTPException) as e:
                self.failures[type(e).__name__] += 1
                conn.close()
            self.sent += 1
        conn.close()

    def wait_sent(self, n: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        target = self.sent + n
        while self.sent < target:
            if time.monotonic() > deadline:
                raise DemoError(f"the background load sent {self.sent}/{target} requests in {timeout:.0f}s")
            time.sleep(0.01)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=20)


class Demo:
    """The steps, in order, and what they started (stopped by close())."""

    def __init__(self, workdir: str, requests: int):
        self.workdir = workdir
        self.requests = requests
        self.ca_dir = os.path.join(workdir, "ca")
        self.mesh_dir = os.path.join(workdir, "mesh")
        self.apps: list[App] = []
        self.sidecars: dict[str, Sidecar] = {}
        self.cp: ControlPlane | None = None
        self.tokens: dict[str, str] = {}
        self.step = ""

    def _step(self, n: int, title: str) -> None:
        self.step = f"step {n}/{STEPS}"
        print(f"\n[{n}/{STEPS}] {title}", flush=True)

    def run(self) -> None:
        self.trust_domain()
        self.mesh()
        self.control_plane()
        self.start_sidecars()
        before = self.scrape()
        self.traffic()
        self.canary()
        self.mtls()
        self.authorization()
        self.stat(before)

    def trust_domain(self) -> None:
        self._step(1, "the mesh's CA (meshcore ca init)")
        authority = ca.CertificateAuthority.init(self.ca_dir, TRUST_DOMAIN)
        root = authority.trust_bundle[0]
        print(f"  meshcore ca init --trust-domain {TRUST_DOMAIN} --dir {self.ca_dir}")
        print(f"  root certificate {authority.key_type}, until {root.not_valid_after_utc:%Y-%m-%d}; its key stays "
              f"in {self.ca_dir}, read by the control plane only")

    def mesh(self) -> None:
        self._step(2, f"the mesh: Istio YAML in {self.mesh_dir}")
        self.v1, self.v2 = App("v1"), App("v2", fail_every=V2_FAILS_EVERY)
        self.apps += [self.v1, self.v2]
        self.service_port = free_port()
        self.frontend = Workload("frontend", "frontend", {"app": "frontend"}, "127.0.0.1")
        self.checkout = [Workload(f"checkout-{a.version}", "checkout", {"app": "checkout", "version": a.version},
                                  f"127.0.0.{i + 2}", a) for i, a in enumerate(self.apps)]
        write_mesh_dir(self.mesh_dir, self.service_port, [*self.checkout, self.frontend])
        print(f"  registry.yaml  Service checkout (http {self.service_port}); WorkloadEntries checkout-v1, "
              "checkout-v2 (with sidecars), frontend")
        print("  checkout.yaml  DestinationRule subsets v1, v2; VirtualService 90/10 split, "
              "retries 3 x 2s on 5xx,gateway-error, timeout 10s")
        print("  security.yaml  PeerAuthentication STRICT (mesh-wide); AuthorizationPolicy DENY /admin* on checkout")
        findings = check(load_dir(self.mesh_dir), None, Security(trust_domain=TRUST_DOMAIN))
        for f in findings:
            print(f"  {f.severity}[{f.code}] {f}")
        if any(f.is_error for f in findings):
            raise DemoError("meshcore check found errors in the generated mesh directory")
        print(f"  meshcore check: {len(findings) or 'no'} issue{'s' * (len(findings) != 1)}")

    def control_plane(self) -> None:
        self._step(3, "the control plane: meshcore control-plane --mesh-dir --ca-dir (xDS + certificates)")
        self.cp = ControlPlane(self.mesh_dir, self.ca_dir, self.workdir).start(time.monotonic() + 60)
        print(f"  xDS (ADS, delta and SotW) and the certificate service on {self.cp.xds}; "
              f"status on http://{self.cp.status}/debug/syncz")
        for sa in sorted({w.service_account for w in [*self.checkout, self.frontend]}):
            self.tokens[sa] = self.cp.token(sa, os.path.join(self.workdir, f"{sa}.token"))
            print(f"  meshcore control-plane token default/{sa}  -> {sa}.token (a bootstrap token: one identity, "
                  "no key)")

    def start_sidecars(self) -> None:
        self._step(4, "one sidecar per workload: meshcore proxy --xds CP --workload default/NAME --token FILE")
        t0 = time.monotonic()
        for w in [*self.checkout, self.frontend]:
            self.sidecars[w.name] = Sidecar(w, self.cp.xds, self.tokens[w.service_account], self.workdir)
        for s in self.sidecars.values():
            s.wait_ready(t0 + 60)
        print("  each made its key, got its certificate by CSR and its config over xDS (no sidecar has the CA)")
        for w in self.checkout:
            fails = f" (503 to every {V2_FAILS_EVERY}th)" if w.app.fail_every else ""
            print(f"  {w.name:<12} {w.spiffe_id}  inbound :{w.inbound_port} (mTLS) -> app :{w.app.port}{fails}, "
                  f"admin :{self.sidecars[w.name].admin[1]}")
        print(f"  {'frontend':<12} {self.frontend.spiffe_id}  outbound :{self.service_port} (Host: checkout), "
              f"admin :{self.sidecars['frontend'].admin[1]}")
        print(f"  all ready (/ready 200) in {time.monotonic() - t0:.1f}s; meshcore proxy-status:")
        version = self._wait_synced(time.monotonic() + 30)
        print("".join(f"  {line}\n" for line in self._proxy_status().splitlines()), end="")
        print(f"  config version {version}: every proxy SYNCED")

    def _proxy_status(self) -> str:
        r = subprocess.run([sys.executable, "-m", "meshcore", "proxy-status", self.cp.status], capture_output=True,
                           text=True, timeout=30)
        if r.returncode != 0:
            raise DemoError(f"meshcore proxy-status: {r.stderr.strip()}")
        return r.stdout.rstrip()

    def _wait_synced(self, deadline: float, after: str | None = None) -> str:
        """Until the control plane's config is newer than `after` and every proxy ACKed all of it; its version."""
        while True:
            z = self.cp.syncz()
            version = z["config"]["version"]
            proxies = z["proxies"]
            if (version != after and len(proxies) == len(self.sidecars)
                    and all(p["config_version"] == version for p in proxies)
                    and all(t.get("acked") == t.get("sent") for p in proxies for t in p["types"].values())):
                return version
            if time.monotonic() > deadline:
                raise DemoError(f"the proxies did not all ACK config {version} in time")
            time.sleep(0.02)

    def scrape(self) -> dict[str, gs.Scrape]:
        return {name: gs.scrape(s.admin, 10.0) for name, s in self.sidecars.items()}

    def traffic(self) -> None:
        n = self.requests
        self._step(5, f"traffic: {n} GET / from frontend, one keep-alive connection to its sidecar")
        codes: collections.Counter = collections.Counter()
        answered: collections.Counter = collections.Counter()
        latencies: list[float] = []
        retried_ms: list[float] = []  # the requests v2 failed: their retry waited a back-off
        conn = http.client.HTTPConnection("127.0.0.1", self.service_port, timeout=15)
        try:
            for _ in range(n):
                failed_before = self.v2.failed
                t0 = time.perf_counter()
                try:
                    conn.request("GET", "/", headers={"Host": "checkout"})
                    resp = conn.getresponse()
                    resp.read()
                except (OSError, http.client.HTTPException) as e:
                    codes[type(e).__name__] += 1
                    conn.close()
                    continue
                latencies.append(1000 * (time.perf_counter() - t0))
                if self.v2.failed > failed_before:
                    retried_ms.append(latencies[-1])
                codes[resp.status] += 1
                answered[resp.getheader("X-Backend", "?")] += 1
        finally:
            conn.close()
        routed = {"v1": self.v1.received - self.v2.failed, "v2": self.v2.received}
        print("  routed by the split   " + "   ".join(f"{v} {c:4d} ({100 * c / n:5.1f}%)" for v, c in routed.items())
              + "   configured 90/10")
        print("  answered (X-Backend)  " + "   ".join(f"{v} {answered[v]:4d} ({100 * answered[v] / n:5.1f}%)"
                                                    for v in routed))
        retried = self._retries()
        print(f"  v2 answered 503 to {self.v2.failed} requests; frontend's sidecar retried {retried} of them on v1")
        ok = codes[200]
        print(f"  the application saw {ok}/{n} 200 OK ({100 * ok / n:.2f}% success)"
              + ("" if ok == n else f"; also {dict((k, v) for k, v in codes.items() if k != 200)}"))
        if latencies:
            latencies.sort()
            print(f"  latency through both sidecars: p50 {_percentile(latencies, 0.5):.2f} ms, "
                  f"p99 {_percentile(latencies, 0.99):.2f} ms"
                  + (f"; the {len(retried_ms)} retried: {min(retried_ms):.1f} to {max(retried_ms):.1f} ms "
                     "(jittered retry back-off, 25 ms base)" if retried_ms else ""))
        if ok != n:
            raise DemoError(f"success rate {100 * ok / n:.2f}%, expected 100% (v2's 503s retried on v1)")
        if abs(routed["v2"] - n / 10) > max(0.02 * n, 1):
            raise DemoError(f"split {routed['v1']}/{routed['v2']}: more than 2% off the configured 90/10")
        if retried != self.v2.failed or answered["v1"] != self.v1.received:
            raise DemoError(f"v2 failed {self.v2.failed} requests, {retried} retries counted, "
                            f"v1 answered {answered['v1']} and received {self.v1.received}")

    def canary(self) -> None:
        self._step(6, "a live canary: checkout's VirtualService edited 90/10 -> 50/50 -> 0/100 while traffic flows")
        load = _Load(self.service_port).start()
        try:
            load.wait_sent(20)
            version = self._wait_synced(time.monotonic() + 30)
            for v1, v2 in CANARY_STEPS:
                edited = time.monotonic()
                write_routing(self.mesh_dir, v1, v2)
                version = self._wait_synced(time.monotonic() + 30, after=version)
                applied_ms = 1000 * (time.monotonic() - edited)
                load.wait_sent(2)  # the request in flight when the last ACK came may be the old split's
                before = (self.v1.received, self.v2.received, self.v2.failed)
                load.wait_sent(CANARY_REQUESTS)
                d1, d2, failed = (a - b for a, b in zip((self.v1.received, self.v2.received, self.v2.failed),
                                                        before, strict=True))
                # v2's 503s are retried on v1 while v1 is in the split, else on v2 itself
                routed = {"v1": d1 - failed, "v2": d2} if v1 else {"v1": d1, "v2": d2 - failed}
                n = routed["v1"] + routed["v2"]
                print(f"  {v1}/{v2}: checkout.yaml edited; pushed and ACKed by every proxy in {applied_ms:.0f} ms "
                      f"(config {version}); the next {n}: v1 {routed['v1']} ({100 * routed['v1'] / n:.1f}%), "
                      f"v2 {routed['v2']} ({100 * routed['v2'] / n:.1f}%)")
                if abs(routed["v2"] - n * v2 / 100) > max(0.01 * n, 1):
                    raise DemoError(f"{v1}/{v2}: observed v1 {routed['v1']} / v2 {routed['v2']}, "
                                    "more than 1% off the configured split")
        finally:
            load.stop()
        failed = sum(load.failures.values())
        print(f"  {load.sent} requests during the shift, {failed} failed"
              + (f": {dict(load.failures)}" if failed else ""))
        if failed:
            raise DemoError(f"{failed} requests failed while the split moved")

    def _retries(self) -> int:
        """Retries frontend's sidecar made after v2 failed (Envoy's upstream_rq_retry of the v2 subset)."""
        stats = self.sidecars["frontend"].stats()
        return stats.get(f"cluster.outbound|{self.service_port}|v2|{HOST}.upstream_rq_retry", 0)

    def mtls(self) -> None:
        self._step(7, "mTLS: who called, as the server sidecars saw it (GET /stats/prometheus)")
        want = {"source_principal": self.frontend.spiffe_id, "connection_security_policy": "mutual_tls"}
        shown = ("reporter", "source_principal", "destination_workload", "response_code",
                 "connection_security_policy")
        for w in self.checkout:
            status, text = self.sidecars[w.name].get("/stats/prometheus")
            series = [(dict(labels), v) for (name, labels), v in gs.parse(text).counters.items()
                      if name == gs.REQUESTS and dict(labels).get("reporter") == "destination"]
            if status != 200 or not series:
                raise DemoError(f"{w.name}'s sidecar reports no istio_requests_total (GET /stats/prometheus {status})")
            for labels, value in sorted(series, key=lambda s: s[0].get("response_code", "")):
                print(f"  {w.name}: istio_requests_total{{"
                      + ",".join(f'{k}="{labels.get(k, "")}"' for k in shown) + f",...}} {value:g}")
                if any(labels.get(k) != v for k, v in want.items()):
                    raise DemoError(f"{w.name}'s sidecar counted requests that were not mTLS from frontend: {labels}")
        port = self.checkout[0].inbound_port
        sidecar = self.sidecars[self.checkout[0].name]
        errors = f"listener.127.0.0.1_{port}.ssl.connection_error"
        before = sidecar.stats().get(errors, 0)
        got = _plaintext_probe(port)
        deadline = time.monotonic() + 2
        while (after := sidecar.stats().get(errors, 0)) == before and time.monotonic() < deadline:
            time.sleep(0.05)
        print(f"  a plaintext GET straight to checkout-v1's inbound port :{port}: {got} ({errors} {after})")
        if got.startswith("HTTP"):
            raise DemoError(f"a STRICT inbound port answered plaintext HTTP: {got}")

    def authorization(self) -> None:
        self._step(8, "authorization: AuthorizationPolicy checkout-no-admin (DENY /admin*)")
        prefixes = [f"http.inbound_127.0.0.1_{w.app.port}.rbac.denied" for w in self.checkout]
        before = [self.sidecars[w.name].stats().get(p, 0) for w, p in zip(self.checkout, prefixes, strict=True)]
        status, body = _call(self.service_port, "/admin/users")
        after = [self.sidecars[w.name].stats().get(p, 0) for w, p in zip(self.checkout, prefixes, strict=True)]
        by = [w.name for w, b, a in zip(self.checkout, before, after, strict=True) if a > b]
        seen = any(p.startswith("/admin") for a in self.apps for p in a.paths)
        print(f"  GET /admin/users from frontend: {status} {body!r}, denied by {' and '.join(by) or '?'}'s sidecar; "
              f"the application {'SAW IT' if seen else 'never saw it'}")
        if (status, body) != (403, "RBAC: access denied") or seen:
            raise DemoError(f"GET /admin/users: {status} {body!r}, expected 403 'RBAC: access denied'")

    def stat(self, before: dict[str, gs.Scrape]) -> None:
        """The table over everything since the sidecars started, each request as the server's sidecar counted it."""
        after = self.scrape()
        admins = " ".join(s.admin_text for s in self.sidecars.values())
        self._step(9, f"meshcore stat --reporter destination {admins}")
        rows = gs.rows([gs.delta(before[name], after[name]) for name in after], reporter="destination")
        if {r["destination"] for r in rows if r["source"] == "default/frontend"} != {
                f"default/{w.name}" for w in self.checkout}:
            raise DemoError(f"meshcore stat does not show frontend calling both checkouts: {rows}")
        print("".join(f"  {line}\n" for line in gs.table(rows).splitlines()), end="")
        print("  v2's own sidecar counts its app's 503s; frontend's application saw none: they were retried on v1")

    def close(self) -> list[int]:
        """Stops the sidecars (frontend first), then the applications; the sidecars' exit statuses."""
        codes = [s.stop() for s in reversed(self.sidecars.values())]
        if self.cp is not None:
            codes.append(self.cp.stop())
        for a in self.apps:
            a.stop()
        return codes


def run_demo(requests: int = 1000, keep: bool = False) -> int:
    """0 when every step saw what it expected, 1 when one did not (its workdir is kept
    for the logs), 130 when interrupted; the sidecars and applications are stopped in every case."""
    workdir = tempfile.mkdtemp(prefix="meshcore-demo-")
    print(f"meshcore demo: frontend calls checkout (v1, and a v2 canary) through sidecars, in {workdir}")
    demo = Demo(workdir, requests)
    failure = None
    interrupted = False
    try:
        demo.run()
    except (DemoError, MeshcoreError, OSError) as e:
        failure = f"{demo.step}: {e}"
    except KeyboardInterrupt:
        interrupted = True
    finally:
        codes = demo.close()
    print(f"\nstopped {len(codes) - 1} sidecars and the control plane (SIGTERM): exit status "
          f"{', '.join(map(str, codes)) or '-'}", flush=True)
    if failure is None and not interrupted and any(codes):
        failure = f"a sidecar or the control plane did not stop cleanly: exit status {codes}"
    if failure is not None:
        print(f"meshcore demo: FAILED: {failure}\n  (CA, mesh YAML and sidecar logs kept in {workdir})",
              file=sys.stderr)
        return 1
    if keep:
        print(f"kept {workdir}: ca/, mesh/ (the Istio YAML), one log per sidecar")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    print("meshcore demo: interrupted" if interrupted else "meshcore demo: OK")
    return 130 if interrupted else 0
