"""The control plane's status page, on localhost: what `istioctl proxy-status`
and Istio's /debug/syncz show.

    GET /debug/syncz   JSON (shape in docs/control-plane.md): the config served and
                       rejected, the counters, and per connected proxy and type the
                       version sent and ACKed, the last NACK, push counts
    GET /ready         200 once a good config is served, 503 before
    GET /metrics       the counters in Prometheus text format

One thread, one request at a time (stdlib http.server): a status page must
not be able to take the control plane's threads.
"""
from __future__ import annotations

import http.server
import json
import logging
import threading

log = logging.getLogger("meshcore.controlplane.status")


class _Handler(http.server.BaseHTTPRequestHandler):
    server_version = "meshcore-control-plane"
    timeout = 5

    def log_message(self, fmt, *args):  # noqa: D401 - quiet: status polling is not news
        log.debug("%s " + fmt, self.client_address[0], *args)

    def _send(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802 - http.server's name
        path = self.path.split("?", 1)[0]
        describe = self.server.describe
        try:
            if path == "/debug/syncz":
                body = json.dumps(describe(), indent=1, sort_keys=True).encode()
                return self._send(200, body, "application/json")
            if path == "/ready":
                ready = self.server.ready()
                return self._send(200 if ready else 503, b"ready\n" if ready else b"no config yet\n", "text/plain")
            if path == "/metrics":
                return self._send(200, prometheus(describe()).encode(), "text/plain; version=0.0.4")
        except Exception as e:  # the loop is stopping, or a bug: say so, keep serving
            log.exception("status %s", path)
            return self._send(500, f"{e}\n".encode(), "text/plain")
        self._send(404, b"not found: /debug/syncz, /ready, /metrics\n", "text/plain")


def prometheus(status: dict) -> str:
    counters = status.get("counters", {})
    lines = []
    for name, value in sorted(counters.items()):
        if isinstance(value, int):
            lines += [f"# TYPE meshcore_cp_{name} counter", f"meshcore_cp_{name} {value}"]
    for key in ("pushes", "responses"):
        lines.append(f"# TYPE meshcore_cp_{key} counter")
        for t, n in sorted(counters.get(key, {}).items()):
            lines.append(f'meshcore_cp_{key}{{type="{t}"}} {n}')
    lat = counters.get("push_latency", {})
    lines += ["# TYPE meshcore_cp_push_latency_seconds summary"]
    for q, k in (("0.5", "p50_ms"), ("0.9", "p90_ms"), ("0.99", "p99_ms")):
        if lat.get(k) is not None:
            lines.append(f'meshcore_cp_push_latency_seconds{{quantile="{q}"}} {lat[k] / 1000}')
    lines += [f"meshcore_cp_push_latency_seconds_count {lat.get('count', 0)}",
              f"meshcore_cp_push_latency_seconds_sum {lat.get('sum_ms', 0) / 1000}",
              "# TYPE meshcore_cp_connected_proxies gauge",
              f"meshcore_cp_connected_proxies {len(status.get('proxies', []))}"]
    return "\n".join(lines) + "\n"


class StatusServer:
    """describe(): the /debug/syncz dict; ready(): bool."""

    def __init__(self, address: tuple[str, int], describe, ready):
        self.httpd = http.server.HTTPServer(address, _Handler)
        self.httpd.describe, self.httpd.ready = describe, ready
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    def start(self) -> None:
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="mc-cp-status", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self.httpd.server_close()
