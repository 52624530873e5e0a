"""The local mesh `meshcore demo` runs on loopback: checkout's applications,
the mesh directory of Istio YAML that describes them, a real `meshcore
control-plane` process (xDS and the certificate service; the CA key stays in
its directory) and one real `meshcore proxy --xds ... --token ...` sidecar
process per workload, which makes its own key, gets its certificate by CSR
and its config over ADS.

Only this machine is involved: applications on 127.0.0.1, sidecar inbound
ports on 127.0.0.1, each sidecar's outbound listeners on its own loopback
address (its node's IP: every sidecar gets a listener on checkout's service
port, as in Istio), ports 0 read back from address files.
"""

from __future__ import annotations

import http.client
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

from meshcore import identity

TRUST_DOMAIN = identity.DEFAULT_TRUST_DOMAIN
INBOUND = "sidecar.meshcore.dev/inbound-ports"
DRAIN_TIMEOUT = 1.0


class DemoError(Exception):
    """A step did not see what it expected; the message says what."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now, for what must be written in the YAML before it binds."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def spiffe_id(service_account: str, namespace: str = "default") -> str:
    return identity.spiffe_id(TRUST_DOMAIN, namespace, service_account)


class App:
    """One version of checkout's application: plaintext HTTP/1.1 with keep-alive,
    names itself in X-Backend. With fail_every=N it answers 503 to every Nth
    request, so the sidecars' retries have something to do."""

    def __init__(self, version: str, fail_every: int = 0):
        self.version = version
        self.fail_every = fail_every
        self.received = 0
        self.failed = 0
        self.paths: set[str] = set()
        self._lock = threading.Lock()
        app = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                app._serve(self)

            def log_message(self, *args) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port: int = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"demo-checkout-{version}", daemon=True)
        self._thread.start()

    def _serve(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.received += 1
            self.paths.add(handler.path)
            fail = bool(self.fail_every) and self.received % self.fail_every == 0
            self.failed += fail
        code = 503 if fail else 200
        body = f"checkout {self.version}: {'unavailable' if fail else 'order placed'}\n".encode()
        head = (f"HTTP/1.1 {code} {'Service Unavailable' if fail else 'OK'}\r\nContent-Type: text/plain\r\n"
                f"Content-Length: {len(body)}\r\nX-Backend: {self.version}\r\n\r\n").encode()
        handler.wfile.write(head + body)  # one write: no Nagle/delayed-ACK stall between head and body

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)


class Workload:
    """A WorkloadEntry of the registry: checkout's have an application and a
    sidecar inbound port (mTLS); frontend is a client only."""

    def __init__(self, name: str, service_account: str, labels: dict[str, str], outbound_address: str,
                 app: App | None = None):
        self.name = name
        self.service_account = service_account
        self.labels = labels
        self.outbound_address = outbound_address
        self.app = app
        self.inbound_port = free_port() if app else None

    @property
    def spiffe_id(self) -> str:
        return spiffe_id(self.service_account)

    def entry_yaml(self) -> str:
        annotations = f'\n  annotations: {{{INBOUND}: "http={self.inbound_port}"}}' if self.app else ""
        ports = f"\n  ports: {{http: {self.app.port}}}" if self.app else ""
        labels = ", ".join(f"{k}: {v}" for k, v in self.labels.items())
        return (f"apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\n"
                f"metadata:\n  name: {self.name}\n  namespace: default{annotations}\n"
                f"spec:\n  address: 127.0.0.1{ports}\n  labels: {{{labels}}}\n"
                f"  serviceAccount: {self.service_account}\n")


ROUTING = """\
# checkout's traffic policy (examples/mesh/checkout.yaml): two subsets by
# version, a {v1}/{v2} canary split, retries on another endpoint, 10s per request.
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: checkout, namespace: default}}
spec:
  host: checkout
  subsets:
  - name: v1
    labels: {{version: v1}}
  - name: v2
    labels: {{version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: checkout, namespace: default}}
spec:
  hosts: [checkout]
  http:
  - route:
    - destination: {{host: checkout, subset: v1}}
      weight: {v1}
    - destination: {{host: checkout, subset: v2}}
      weight: {v2}
    retries:
      attempts: 3
      perTryTimeout: 2s
      retryOn: 5xx,gateway-error
    timeout: 10s
"""


def routing(v1: int = 90, v2: int = 10) -> str:
    """checkout.yaml with the split v1/v2 (percent)."""
    return ROUTING.format(v1=v1, v2=v2)

SECURITY = """\
# Mesh-wide STRICT mTLS: a sidecar's inbound port takes TLS with a client certificate only.
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec:
  mtls: {mode: STRICT}
---
# checkout's admin pages are never served through the mesh, whoever asks.
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: checkout-no-admin, namespace: default}
spec:
  selector:
    matchLabels: {app: checkout}
  action: DENY
  rules:
  - to:
    - operation:
        paths: ["/admin*"]
"""


def write_routing(directory: str, v1: int, v2: int) -> None:
    """Rewrites checkout.yaml with a new split (whole, then renamed into place: the
    control plane never reads half a file)."""
    path = os.path.join(directory, "checkout.yaml")
    with open(path + ".tmp", "w") as f:
        f.write(routing(v1, v2))
    os.replace(path + ".tmp", path)


def write_mesh_dir(directory: str, service_port: int, workloads: list[Workload]) -> list[str]:
    """registry.yaml (the Service and WorkloadEntries), checkout.yaml, security.yaml; returns the names."""
    os.makedirs(directory, exist_ok=True)
    registry = ("# The registry: checkout's Service, and one WorkloadEntry per workload; those with the\n"
                f"# {INBOUND} annotation have a sidecar (peers dial its inbound port, in mTLS).\n"
                "apiVersion: v1\nkind: Service\nmetadata: {name: checkout, namespace: default}\n"
                f"spec:\n  selector: {{app: checkout}}\n  ports:\n  - {{name: http, port: {service_port}}}\n"
                + "".join("---\n" + w.entry_yaml() for w in workloads))
    files = {"registry.yaml": registry, "checkout.yaml": routing(), "security.yaml": SECURITY}
    for name, text in files.items():
        with open(os.path.join(directory, name), "w") as f:
            f.write(text)
    return list(files)


def _meshcore(*args: str) -> list[str]:
    return [sys.executable, "-m", "meshcore", "--log-level", "info", *args]


def _stop(proc: subprocess.Popen, grace: float) -> int:
    """SIGTERM, then SIGKILL if it is not gone after grace seconds; the exit status."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


def _tail(path: str, lines: int = 12) -> str:
    try:
        with open(path, errors="replace") as f:
            tail = f.read().splitlines()[-lines:]
    except OSError:
        return ""
    return "".join(f"    | {line}\n" for line in tail) + f"    (log: {path})"


class ControlPlane:
    """`meshcore control-plane --mesh-dir DIR --ca-dir CA` as a child process: xDS
    and the certificate service on one port, the status page on another (port 0
    the first time, read back from --address-file; the same ports on a restart)."""

    def __init__(self, mesh_dir: str, ca_dir: str, workdir: str):
        self.mesh_dir, self.ca_dir = mesh_dir, ca_dir
        self.log_path = os.path.join(workdir, "control-plane.log")
        self._addr_path = os.path.join(workdir, "control-plane.addresses")
        self.xds = self.status = ""
        self.proc: subprocess.Popen | None = None

    def start(self, deadline: float) -> ControlPlane:
        if os.path.exists(self._addr_path):
            os.unlink(self._addr_path)
        args = _meshcore("control-plane", "--mesh-dir", self.mesh_dir, "--ca-dir", self.ca_dir,
                         "--listen", self.xds or "127.0.0.1:0", "--status", self.status or "127.0.0.1:0",
                         "--address-file", self._addr_path, "--poll-interval", "0.05")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        while not os.path.exists(self._addr_path):
            if self.proc.poll() is not None:
                raise DemoError(f"the control plane exited with {self.proc.returncode}\n" + _tail(self.log_path))
            if time.monotonic() > deadline:
                raise DemoError("the control plane did not start in time\n" + _tail(self.log_path))
            time.sleep(0.05)
        with open(self._addr_path) as f:
            self.xds, self.status = f.read().split()
        return self

    def token(self, service_account: str, path: str) -> str:
        """`meshcore control-plane token default/SA`: the file a sidecar presents for its first certificate."""
        r = subprocess.run(_meshcore("control-plane", "token", f"default/{service_account}", "--ca-dir",
                                     self.ca_dir, "--out", path), capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise DemoError(f"meshcore control-plane token default/{service_account}: {r.stderr.strip()}")
        return path

    def syncz(self) -> dict:
        """The status page's /debug/syncz (docs/control-plane.md)."""
        host, _, port = self.status.rpartition(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            conn.request("GET", "/debug/syncz")
            return json.loads(conn.getresponse().read())
        finally:
            conn.close()

    def stop(self) -> int:
        return _stop(self.proc, 10) if self.proc is not None else 0


class Sidecar:
    """`meshcore proxy --xds CP --workload default/NAME --token FILE` as a child
    process, its output in NAME.log; the admin API's address comes from
    --admin-address-path. Its outbound listeners are on the workload's own
    loopback address (--outbound-address: the IP of its node id)."""

    def __init__(self, workload: Workload, xds: str, token_file: str, workdir: str, cert_ttl: str | None = None):
        self.workload = workload
        self.log_path = os.path.join(workdir, f"{workload.name}.log")
        self._addr_path = os.path.join(workdir, f"{workload.name}.admin")
        self.admin: tuple[str, int] | None = None
        args = _meshcore("proxy", "--xds", xds, "--workload", f"default/{workload.name}", "--token", token_file,
                         "--outbound-address", workload.outbound_address, "--concurrency", "1",
                         "--admin-address", "127.0.0.1:0", "--admin-address-path", self._addr_path,
                         "--drain-timeout", str(DRAIN_TIMEOUT))
        if cert_ttl:
            args += ["--cert-ttl", cert_ttl]
        with open(self.log_path, "wb") as log:
            # its own session: a Ctrl-C in the terminal reaches the demo, which stops the sidecars itself
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    @property
    def admin_text(self) -> str:
        return f"{self.admin[0]}:{self.admin[1]}" if self.admin else "?"

    def wait_ready(self, deadline: float) -> None:
        """Until the admin API answers /ready with 200 (the config applied, listeners bound)."""
        while True:
            if self.proc.poll() is not None:
                raise DemoError(f"the {self.workload.name} sidecar exited with {self.proc.returncode}\n"
                                + self.log_tail())
            if self.admin is None and os.path.exists(self._addr_path):
                with open(self._addr_path) as f:
                    host, _, port = f.read().strip().rpartition(":")
                if port:
                    self.admin = (host, int(port))
            if self.admin is not None:
                try:
                    if self.get("/ready")[0] == 200:
                        return
                except OSError:
                    pass
            if time.monotonic() > deadline:
                raise DemoError(f"the {self.workload.name} sidecar was not ready in time\n" + self.log_tail())
            time.sleep(0.05)

    def get(self, path: str) -> tuple[int, str]:
        """(status, body) of one admin API request."""
        conn = http.client.HTTPConnection(*self.admin, timeout=10)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, resp.read().decode("utf-8", "replace")
        finally:
            conn.close()

    def stats(self) -> dict[str, int]:
        """Counters and gauges (/stats?format=json) by name."""
        status, body = self.get("/stats?format=json")
        if status != 200:
            raise DemoError(f"{self.workload.name} sidecar: GET /stats: {status}")
        return {s["name"]: s["value"] for s in json.loads(body)["stats"] if "name" in s}

    def log_tail(self, lines: int = 12) -> str:
        return _tail(self.log_path, lines)

    def stop(self) -> int:
        """SIGTERM, then SIGKILL if it is not gone after its drain; the exit status."""
        return _stop(self.proc, DRAIN_TIMEOUT + 15)
