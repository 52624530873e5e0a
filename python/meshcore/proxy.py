"""`meshcore proxy -c FILE`: a sidecar run from an Envoy v3 bootstrap file.

Owns one Engine, the admin API, and the file: SIGHUP or POST /reload
re-reads it; a bad file is rejected (logged, counted in
server.config_reload_rejected) and the running snapshot keeps serving.
SIGTERM, SIGINT or POST /quitquitquit stop gracefully: listeners close,
connections get drain_timeout seconds to finish, then the process exits.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
import time

from meshcore import __version__
from meshcore.admin import AdminContext, AdminServer
from meshcore.config import load_bootstrap
from meshcore.engine import Engine
from meshcore.errors import ConfigError, EngineError

log = logging.getLogger("meshcore.proxy")

DEFAULT_ADMIN = ("127.0.0.1", 15000)


def parse_address(text: str) -> tuple[str, int]:
    """"host:port" or "[v6]:port" -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ConfigError(f"admin address {text!r}: expected HOST:PORT")
    return host.strip("[]"), int(port)


class Proxy:
    def __init__(self, config_path: str, concurrency: int = 0, admin_address: str | None = None,
                 drain_timeout: float = 5.0, splice: str = "auto"):
        self.config_path = config_path
        self.drain_timeout = drain_timeout
        self.engine = Engine(concurrency=concurrency, splice=splice)
        self._admin_override = parse_address(admin_address) if admin_address else None
        self._reload_lock = threading.Lock()
        self._counters = {"server.config_reload_success": 0, "server.config_reload_rejected": 0}
        self._stop_requested = False
        self._reload_requested = False
        self.admin = None

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> None:
        """Loads the file and starts serving; ConfigError/EngineError if it cannot."""
        bootstrap = load_bootstrap(self.config_path)
        self.engine.start()
        try:
            self.engine.apply(bootstrap, os.path.basename(self.config_path))
            host, port = self._admin_address(bootstrap)
            ctx = AdminContext(self.engine, reload=self.reload, quit=self.request_stop,
                               counters=lambda: dict(self._counters), version=f"meshcore/{__version__}")
            try:
                self.admin = AdminServer(ctx, host, port).start()
            except OSError as e:
                raise EngineError(f"admin API: cannot listen on {host}:{port}: {e.strerror}") from None
        except BaseException:
            self.engine.stop()
            raise
        for name, addr, _ in self.engine.listeners():
            log.info("listener %s on %s", name, addr)
        log.info("admin API on http://%s:%d/ (%d workers)", *self.admin.address, self.engine.concurrency)

    def _admin_address(self, bootstrap) -> tuple[str, int]:
        if self._admin_override:
            return self._admin_override
        if bootstrap.HasField("admin") and bootstrap.admin.address.HasField("socket_address"):
            sa = bootstrap.admin.address.socket_address
            return sa.address, sa.port_value
        return DEFAULT_ADMIN

    def reload(self) -> tuple[bool, str]:
        """Re-reads the config file; the old snapshot stays on any error."""
        with self._reload_lock:
            try:
                self.engine.apply(self.config_path)
            except (ConfigError, EngineError) as e:
                self._counters["server.config_reload_rejected"] += 1
                log.error("config reload rejected, keeping the running config: %s", e)
                return False, f"rejected: {e}"
            self._counters["server.config_reload_success"] += 1
            log.info("config reloaded from %s", self.config_path)
            return True, "reloaded"

    def request_stop(self) -> None:
        # Plain attribute writes only: this runs in signal handlers too.
        self._stop_requested = True

    def _on_hup(self, signum, frame):
        self._reload_requested = True

    def _on_term(self, signum, frame):
        self._stop_requested = True

    def serve_forever(self) -> None:
        """Main thread: handles signals until asked to stop, then drains."""
        signal.signal(signal.SIGHUP, self._on_hup)
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGINT, self._on_term)
        while not self._stop_requested:
            time.sleep(0.1)
            if self._reload_requested:
                self._reload_requested = False
                self.reload()
        self.shutdown()

    def shutdown(self) -> None:
        log.info("draining: listeners closed, connections have %.1fs to finish", self.drain_timeout)
        if self.admin:
            self.admin.ctx.draining = True
        self.engine.stop(self.drain_timeout)
        if self.admin:
            self.admin.stop()
        log.info("stopped")
