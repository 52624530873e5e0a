"""meshcore.Engine: the data plane embedded in a Python program.

    engine = meshcore.Engine(concurrency=2)
    engine.start()
    engine.apply("examples/l4.yaml")   # or a Bootstrap message, or YAML text
    ...
    engine.stats()["cluster.backend.upstream_cx_total"]
    engine.stop(drain_timeout=5)

The engine's worker threads are plain pthreads running C; they never take
the GIL, so Python code in the same process does not slow the proxy down
and vice versa. Every method here is a control-plane call (milliseconds).
"""
from __future__ import annotations

import os
import threading

from google.protobuf.timestamp_pb2 import Timestamp

from meshcore import _core
from meshcore.config import load_bootstrap, parse_bootstrap, validate_bootstrap
from meshcore.config.overload import GLOBAL_CX_PRESSURE, global_max_connections
from meshcore.errors import ConfigError, EngineError
from meshcore.plan import plan_snapshot
from meshcore.telemetry.access_log import AccessLogs
from meshcore.telemetry.istio_metrics import IstioMetrics
from meshcore.telemetry.stats import Stats, scopes_from_core
from meshcore.telemetry.tracing import Tracers


class Engine:
    """Worker threads with their own event loops, fed config snapshots.

    concurrency: worker threads (0 = one per CPU).
    splice: "auto" (splice(2) for bulk transfers), "always" or "never".
    """

    def __init__(self, concurrency: int = 0, splice: str = "auto",
                 max_connections_per_worker: int = 0):
        self._core = _core.Engine(concurrency, splice, max_connections_per_worker)
        self.tracers = Tracers()
        self._access_logs = AccessLogs(self._core, spans=self.tracers.add)
        self.istio = IstioMetrics(self._core)  # Istio's standard metrics (istio_requests_total, ...)
        self._lock = threading.Lock()
        self._started = False
        self._stopped = False
        self.bootstrap = None   # the Bootstrap message last applied
        self.source = None      # where it came from (file name or "<...>")
        self.applied_at = None  # google.protobuf.Timestamp of that apply

    # -- lifecycle ----------------------------------------------------------

    def start(self) -> Engine:
        with self._lock:
            if not self._started:
                self._core.start()
                self._started = True
        return self

    def stop(self, drain_timeout: float = 0.0) -> None:
        """Stops accepting, lets connections finish for up to drain_timeout
        seconds, closes the rest and joins the workers."""
        with self._lock:
            if self._started and not self._stopped:
                self._core.stop(int(drain_timeout * 1000))
                self._stopped = True
                self._access_logs.stop()  # after the workers: their last records get written
                self.tracers.stop()  # after the drain: its last spans get sent

    def drain_listeners(self) -> None:
        """Stops accepting new connections; existing ones continue."""
        self._core.drain_listeners()

    def __enter__(self) -> Engine:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- config ---------------------------------------------------------------

    def apply(self, config, filename: str | None = None) -> None:
        """Validates, compiles and publishes a config.

        config: a path (str / os.PathLike to a YAML file), a Bootstrap
        message, a dict in Envoy's YAML shape, or YAML text (pass filename
        for error messages). Raises ConfigError (nothing applied) or
        EngineError (e.g. address in use; nothing applied either)."""
        bootstrap, source = self._load(config, filename)
        res = bootstrap.static_resources
        plan = plan_snapshot(bootstrap)  # one ChainPlan per (listener, filter chain)
        try:
            for chain in plan.chains:
                chain.log_id = self._access_logs.register(chain.access_logs)
        except OSError as e:  # the log file cannot be opened: nothing is applied
            raise ConfigError(f"{source}: access log: {e}") from None
        secrets = {s.name: s for s in res.secrets}
        istio = self.istio.plan(plan)
        if self.tracers.plan(plan):
            self._access_logs.ensure_thread()  # spans come out of the record rings
        try:
            builder = _core.compile_snapshot(res.listeners, res.clusters, plan.by_key(), secrets, istio.services,
                                             global_max_connections(bootstrap))
        except OSError as e:  # a certificate file named by the config
            raise ConfigError(f"{source}: cannot read {e.filename}: {e.strerror}") from None
        except _core.CoreError as e:
            raise EngineError(f"{source}: {e}") from None
        with self._lock:
            if self._stopped:
                raise EngineError("engine is stopped")
            try:
                self._core.apply(builder)
            except _core.CoreError as e:
                raise EngineError(f"{source}: {e}") from None
            self.bootstrap, self.source = bootstrap, source
            self.istio.adopt(istio)
            self.applied_at = Timestamp()
            self.applied_at.GetCurrentTime()

    @staticmethod
    def _load(config, filename):
        from envoy.config.bootstrap.v3 import bootstrap_pb2

        if isinstance(config, bootstrap_pb2.Bootstrap):
            source = filename or "<bootstrap>"
            validate_bootstrap(config, source)
            return config, source
        if isinstance(config, dict):
            import yaml

            source = filename or "<dict>"
            return parse_bootstrap(yaml.safe_dump(config), source), source
        if isinstance(config, os.PathLike) or (isinstance(config, str) and "\n" not in config):
            return load_bootstrap(config), os.path.basename(os.fspath(config))
        if isinstance(config, str):
            source = filename or "<string>"
            return parse_bootstrap(config, source), source
        raise ConfigError(f"cannot apply a {type(config).__name__}: "
                          "give a path, YAML text, a dict or a Bootstrap message")

    # -- observation ------------------------------------------------------------

    @property
    def concurrency(self) -> int:
        return self._core.concurrency

    @property
    def active_connections(self) -> int:
        """Downstream connections open right now, across workers."""
        return self._core.active_sessions

    @property
    def downstream_cx_limit(self) -> tuple[int, bool]:
        """(global downstream connection limit, 0 for none; True when the
        config's overload_manager set it, False when derived from RLIMIT_NOFILE)."""
        return self._core.downstream_cx_limit

    def host_outlier(self, cluster: str, ip: str, port: int) -> tuple[bool, int] | None:
        """(ejected now, times ejected) of one of a cluster's hosts, as outlier
        detection sees it; None if the running config has no such host."""
        return self._core.host_outlier(cluster, ip, port)

    def listeners(self) -> list[tuple[str, str, int]]:
        """[(name, "ip:port", port)] of the running snapshot; port is the
        bound one (useful with port_value: 0)."""
        return self._core.listeners()

    def listener_port(self, name: str) -> int:
        for n, _, port in self.listeners():
            if n == name:
                return port
        raise KeyError(name)

    def stats(self, extra_counters: dict | None = None) -> Stats:
        """Every counter, gauge and histogram, summed over workers."""
        ring_dropped, spans_dropped, write_errors = self._core.alog_counters
        extra = {"server.access_log_dropped": ring_dropped, "server.access_log_write_errors": write_errors,
                 "server.spans_dropped": spans_dropped, **self.tracers.counters(),
                 **(extra_counters or {})}
        stats = Stats(scopes_from_core(self._core.stats()), extra)
        limit, _ = self._core.downstream_cx_limit
        if limit:  # Envoy's gauge: active downstream connections as a percent of the global limit
            active = stats.gauges.get("server.total_connections", 0)
            stats.gauges[GLOBAL_CX_PRESSURE] = min(100, active * 100 // limit)
        return stats

    def flush_access_logs(self) -> None:
        """Writes the access-log records produced so far now (the core's log
        writer does it every 20 ms) and hands their spans to the tracer."""
        self._access_logs.drain()

