"""`meshcore proxy -c FILE` as a real subprocess, and its admin API.

The admin API binds port 0 (`--admin-address 127.0.0.1:0`); the bound port
is read from the proxy's own log line "admin API on http://HOST:PORT/".
The process's output goes to a file (never a pipe nobody reads).
"""
from __future__ import annotations

import http.client
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys

from .net import wait_until

ADMIN_LINE = re.compile(r"admin API on http://([0-9.]+):(\d+)/")


def meshcore_command() -> list[str]:
    """The installed `meshcore` console script next to this interpreter."""
    exe = pathlib.Path(sys.executable).parent / "meshcore"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("meshcore")
    return [found] if found else [sys.executable, "-m", "meshcore"]


def run_cli(args, timeout: float = 60.0, cwd=None) -> subprocess.CompletedProcess:
    """Runs `meshcore ARGS...` to completion (for commands expected to exit)."""
    return subprocess.run(meshcore_command() + list(args), capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)


class ProxyProcess:
    def __init__(self, config_path, log_path, *, concurrency: int = 2, drain_timeout: float | None = None,
                 extra_args=(), admin_address: str = "127.0.0.1:0"):
        self.config_path = pathlib.Path(config_path)
        self.log_path = pathlib.Path(log_path)
        self.args = ["--log-level", "info", "proxy", "-c", str(self.config_path),
                     "--concurrency", str(concurrency)]
        if admin_address:
            self.args += ["--admin-address", admin_address]
        if drain_timeout is not None:
            self.args += ["--drain-timeout", str(drain_timeout)]
        self.args += list(extra_args)
        self.proc: subprocess.Popen | None = None
        self.admin_port: int | None = None

    # -- lifecycle ----------------------------------------------------------

    def start(self, timeout: float = 30.0) -> ProxyProcess:
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(meshcore_command() + self.args, stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

        def admin_logged():
            if self.proc.poll() is not None:
                raise AssertionError(f"meshcore proxy exited with {self.proc.returncode}:\n{self.log()}")
            m = ADMIN_LINE.search(self.log())
            return m and int(m.group(2))

        self.admin_port = wait_until(admin_logged, timeout, what="the admin API log line")
        wait_until(lambda: self.get("/ready")[0] == 200, timeout, what="/ready 200")
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 30.0) -> int:
        """Waits for the process to exit; returns its exit code."""
        return self.proc.wait(timeout=timeout)

    def close(self) -> None:
        """Always leaves no process behind: SIGTERM, then SIGKILL if it hangs."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()

    # -- admin API ------------------------------------------------------------------

    def request(self, method: str, path: str, body: bytes | None = None, timeout: float = 30.0):
        """(status, body text, headers) of one admin request."""
        conn = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=timeout)
        try:
            conn.request(method, path, body=body)
            resp = conn.getresponse()
            return resp.status, resp.read().decode(), dict(resp.getheaders())
        finally:
            conn.close()

    def get(self, path: str):
        status, body, _ = self.request("GET", path)
        return status, body

    def post(self, path: str):
        status, body, _ = self.request("POST", path)
        return status, body

    def stats(self) -> dict:
        """Counters and gauges from /stats?format=json."""
        status, body = self.get("/stats?format=json")
        assert status == 200, body
        return {s["name"]: s["value"] for s in json.loads(body)["stats"] if "name" in s}

    def stat(self, name: str) -> int:
        return self.stats()[name]

    def listener_port(self, name: str) -> int:
        status, body = self.get("/listeners?format=json")
        assert status == 200, body
        for ls in json.loads(body)["listener_statuses"]:
            if ls["name"] == name:
                return ls["local_address"]["socket_address"]["port_value"]
        raise KeyError(name)

    def reload_via_sighup(self, timeout: float = 30.0) -> None:
        """SIGHUP, then waits until the reload is counted (accepted or rejected)."""
        before = self._reload_count()
        self.send_signal(signal.SIGHUP)
        wait_until(lambda: self._reload_count() > before, timeout, what="the SIGHUP reload to be counted")

    def _reload_count(self) -> int:
        st = self.stats()
        return st["server.config_reload_success"] + st["server.config_reload_rejected"]


def child_pids(pid: int | None = None) -> set[int]:
    """Live (or zombie) children of pid (default: this process)."""
    pid = pid or os.getpid()
    out = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # pid (comm) state ppid ...; comm may contain spaces and parens
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            out.add(int(entry))
    return out


def native_thread_names() -> list[str]:
    """Names of this process's OS threads (pthreads included)."""
    names = []
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/comm") as f:
                names.append(f.read().strip())
        except OSError:
            pass
    return names


