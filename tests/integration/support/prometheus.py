"""A real Prometheus server (Debian's `prometheus`, 2.x) on loopback, and its HTTP API.

`Prometheus(workdir, {"name": port, ...}).start()` writes a config that
scrapes every named target (127.0.0.1:port, `metrics_path`, every
`interval`, each with a `sidecar="name"` target label), starts the server
with its own TSDB under workdir and the web API on port 0, reads the bound
port from its log line `msg="Listening on" address=127.0.0.1:PORT` and
waits for /-/ready. The process's output goes to a file; stop() leaves no
process behind (SIGTERM, then SIGKILL).

Queries go through /api/v1/query and come back as (labels, value) pairs.
Scrape timestamps are the wall clock at the start of each scrape, on the
same clock as time.time() in the test process.
"""
from __future__ import annotations

import json
import pathlib
import re
import shutil
import signal
import subprocess
import urllib.error
import urllib.parse
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from .net import wait_until

LISTEN_LINE = re.compile(r'msg="Listening on" address=([0-9.]+):(\d+)')
JOB = "meshcore"


def binary() -> str | None:
    return shutil.which("prometheus")


class Prometheus:
    def __init__(self, workdir, targets: dict[str, int], *, metrics_path: str = "/stats/prometheus",
                 interval: str = "1s"):
        self.workdir = pathlib.Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.targets = dict(targets)
        self.metrics_path = metrics_path
        self.interval = interval
        self.config_path = self.workdir / "prometheus.yml"
        self.log_path = self.workdir / "prometheus.log"
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None

    def config(self) -> str:
        # JSON is YAML: no dependency on a YAML writer for this one file.
        return json.dumps({
            "global": {"scrape_interval": self.interval, "scrape_timeout": self.interval,
                       "evaluation_interval": self.interval},
            "scrape_configs": [{
                "job_name": JOB, "metrics_path": self.metrics_path,
                "static_configs": [{"targets": [f"127.0.0.1:{port}"], "labels": {"sidecar": name}}
                                   for name, port in self.targets.items()]}]}, indent=2)

    # -- lifecycle ----------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> Prometheus:
        self.config_path.write_text(self.config())
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [binary() or "prometheus", f"--config.file={self.config_path}",
             f"--storage.tsdb.path={self.workdir / 'data'}", "--web.listen-address=127.0.0.1:0",
             "--web.enable-lifecycle"],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

        def listening():
            if self.proc.poll() is not None:
                raise AssertionError(f"prometheus exited with {self.proc.returncode}:\n{self.log()}")
            m = LISTEN_LINE.search(self.log())
            return m and int(m.group(2))

        self.port = wait_until(listening, timeout, what="prometheus's 'Listening on' log line")
        wait_until(lambda: self._status("/-/ready") == 200, timeout, what="prometheus /-/ready")
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
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

    # -- HTTP API -------------------------------------------------------------------

    def _get(self, path: str, **params) -> tuple[int, str]:
        url = f"http://127.0.0.1:{self.port}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(errors="replace")

    def _status(self, path: str) -> int | None:
        try:
            return self._get(path)[0]
        except OSError:
            return None

    def api(self, path: str, **params):
        """The `data` of a successful /api/v1 answer."""
        status, body = self._get(f"/api/v1/{path}", **params)
        doc = json.loads(body)
        assert status == 200 and doc.get("status") == "success", f"/api/v1/{path} {params}: {status} {body}"
        return doc["data"]

    def query(self, expr: str, at: float | None = None) -> list[tuple[dict, float]]:
        """An instant query (at a wall-clock time, default now): [(labels, value)]."""
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self.api("query", **params)
        if data["resultType"] == "scalar":
            return [({}, float(data["result"][1]))]
        assert data["resultType"] == "vector", data
        return [(r["metric"], float(r["value"][1])) for r in data["result"]]

    def value(self, expr: str, at: float | None = None) -> float:
        """The one value an expression returns (it must return exactly one)."""
        result = self.query(expr, at)
        assert len(result) == 1, f"{expr}: {result}"
        return result[0][1]

    def active_targets(self) -> list[dict]:
        return self.api("targets", state="active")["activeTargets"]

    def wait_targets_up(self, timeout: float = 30.0) -> list[dict]:
        def up():
            targets = self.active_targets()
            return len(targets) == len(self.targets) and all(t["health"] == "up" for t in targets) and targets

        return wait_until(up, timeout, interval=0.1, what=f"{len(self.targets)} targets up")

    def wait_scraped_after(self, mark: float, timeout: float = 30.0) -> None:
        """Waits until every target has been scraped by a scrape that started
        after `mark` (time.time()) and whose samples are stored: the `up`
        sample is committed with the scraped ones and carries their timestamp."""
        def scraped():
            stamps = self.query(f'timestamp(up{{job="{JOB}"}})')
            return len(stamps) == len(self.targets) and all(v > mark for _, v in stamps)

        wait_until(scraped, timeout, interval=0.1, what="a scrape of every target after the mark")

    def own_metrics(self) -> dict[str, float]:
        """Prometheus's own /metrics, summed by sample name."""
        status, body = self._get("/metrics")
        assert status == 200, body
        out: dict[str, float] = {}
        for fam in text_string_to_metric_families(body):
            for s in fam.samples:
                out[s.name] = out.get(s.name, 0.0) + s.value
        return out
