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
from meshcore.errors import ConfigError, EngineError
from meshcore.incremental import Changes
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
        self._tls_cache = _core.TlsCache()  # SSL_CTX shared across clusters and applies
        self.tracers = Tracers()
        self._access_logs = AccessLogs(self._core, spans=self.tracers.add)
        self.istio = IstioMetrics(self._core)  # Istio's standard metrics (istio_requests_total, ...)
        self._lock = threading.Lock()
        self._apply_lock = threading.Lock()  # one config change at a time, in the order they come
        self._started = False
        self._stopped = False
        self._changes: Changes | None = None  # the running config (see the bootstrap property)
        self._validated = None  # serialized resources the last apply validated
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
        with self._apply_lock:
            if not self._apply_changes(config, filename):
                self._publish(self._compile(config, filename))

    async def apply_async(self, config, filename: str | None = None) -> None:
        """apply() without blocking the event loop: loading, validation, the
        compile and the publish (which waits for the workers) run on a
        worker thread; the C parts release the GIL. Errors as apply()."""
        import asyncio

        await asyncio.get_running_loop().run_in_executor(None, self.apply, config, filename)

    async def stop_async(self, drain_timeout: float = 0.0) -> None:
        """stop() on a worker thread: the drain and the join do not block the loop."""
        import asyncio

        await asyncio.get_running_loop().run_in_executor(None, self.stop, drain_timeout)

    def _compile(self, config, filename):
        """Everything an apply does before the core publishes: (bootstrap,
        source, plan, Istio plan, SnapshotBuilder)."""
        bootstrap, source, validated = self._load(config, filename, self._validated)
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
            self._tls_cache.begin()
            builder = _core.compile_snapshot(res.listeners, res.clusters, plan.by_key(), secrets, istio.services,
                                             self._tls_cache)
        except OSError as e:  # a certificate file named by the config
            if validated is not None and self._validated:
                # Gone since an earlier apply validated the resource naming it:
                # the full walk names the resource and field (config/tls.py).
                validate_bootstrap(bootstrap, source)
            raise ConfigError(f"{source}: cannot read {e.filename}: {e.strerror}") from None
        except _core.CoreError as e:
            raise EngineError(f"{source}: {e}") from None
        return bootstrap, source, plan, istio, builder, validated

    def _publish(self, compiled) -> None:
        bootstrap, source, plan, istio, builder, validated = compiled
        with self._lock:
            if self._stopped:
                raise EngineError("engine is stopped")
            try:
                self._core.apply(builder)
            except _core.CoreError as e:
                raise EngineError(f"{source}: {e}") from None
            self._changes = Changes(bootstrap, plan, source, reads_files=builder.reads_files)
            self._validated = validated  # what the next apply need not walk again
            self.source = source
            self.istio.adopt(istio)
            self._stamp()

    def _apply_changes(self, config, filename) -> bool:
        """A Bootstrap that differs from the running config only in route weights
        and cluster endpoints goes the set_weights / set_endpoints way (no
        compile); True if it did. Not for configs that read certificate files
        (the same Bootstrap may mean new certificates: a rotation re-applies it)."""
        from envoy.config.bootstrap.v3 import bootstrap_pb2

        changes = self._changes
        if changes is None or changes.reads_files or not isinstance(config, bootstrap_pb2.Bootstrap):
            return False
        source = filename or "<bootstrap>"
        found = changes.diff(config, source)
        if found is None:
            return False
        weights, endpoints = found
        with self._lock:
            if self._stopped:
                raise EngineError("engine is stopped")
            try:
                if endpoints:
                    self._core.set_endpoints([core for core, _ in endpoints])
                if weights:
                    self._core.set_route_weights([(r.listener, r.chain, r.vhost, r.route, w) for r, w in weights])
            except _core.CoreError as e:
                raise EngineError(f"{source}: {e}") from None
            changes.endpoints_applied([msg for _, msg in endpoints])
            changes.weights_applied(weights)
            changes.source = self.source = source
            self._stamp()
        return True

    def _stamp(self) -> None:
        self.applied_at = Timestamp()
        self.applied_at.GetCurrentTime()

    @property
    def bootstrap(self):
        """The Bootstrap message last applied, with the weights and endpoints
        changed since (set_weights, set_endpoints); None before the first apply."""
        changes = self._changes
        return changes.bootstrap() if changes is not None else None

    # -- incremental changes (meshcore.incremental) --------------------------------------

    def set_weights(self, route: str, weights, *, vhost: str | None = None, listener: str | None = None) -> int:
        """New weights for the weighted clusters of the route(s) named `route`
        (in `vhost` and `listener` if given): weights maps each of the route's
        clusters to its weight, as the config's weighted_clusters would. In
        place, in microseconds to a few milliseconds whatever the config's
        size; requests already split keep their cluster. Returns how many
        routes changed. ConfigError (nothing changed) for an unknown route, a
        cluster set that is not the route's, or a weight the config would
        refuse."""
        with self._apply_lock:
            changes = self._running()
            todo = changes.weights(route, weights, vhost, listener)
            try:
                self._core.set_route_weights([(r.listener, r.chain, r.vhost, r.route, w) for r, w in todo])
            except _core.CoreError as e:
                raise EngineError(f"{changes.source}: {e}") from None
            changes.weights_applied(todo)
            self._stamp()
            return len(todo)

    def set_endpoints(self, cluster: str, endpoints) -> None:
        """Replaces a cluster's endpoints: `endpoints` is [(ip, port)] or
        [(ip, port, weight)], or a ClusterLoadAssignment. A new snapshot that
        shares everything else with the running one (no compile); checked as
        an apply checks a cluster (ConfigError naming the field, nothing
        changed)."""
        self.set_endpoints_many({cluster: endpoints})

    def set_endpoints_many(self, endpoints: dict) -> None:
        """set_endpoints for several clusters ({cluster: endpoints}) in one snapshot."""
        with self._apply_lock:
            changes = self._running()
            todo = [changes.endpoints(c, eps) for c, eps in endpoints.items()]
            with self._lock:
                if self._stopped:
                    raise EngineError("engine is stopped")
                try:
                    self._core.set_endpoints([core for core, _ in todo])
                except _core.CoreError as e:
                    raise EngineError(f"{changes.source}: {e}") from None
            changes.endpoints_applied([msg for _, msg in todo])
            self._stamp()

    def _running(self) -> Changes:
        if self._changes is None:
            raise EngineError("no config applied yet")
        return self._changes

    @staticmethod
    def _load(config, filename, known=None):
        """(validated Bootstrap, source, its serialized resources for the next
        validation: see config.validate_bootstrap's `known`)."""
        from envoy.config.bootstrap.v3 import bootstrap_pb2

        if isinstance(config, bootstrap_pb2.Bootstrap):
            source = filename or "<bootstrap>"
            return config, source, validate_bootstrap(config, source, known)
        if isinstance(config, dict):
            import yaml

            source = filename or "<dict>"
            return parse_bootstrap(yaml.safe_dump(config), source), source, None
        if isinstance(config, os.PathLike) or (isinstance(config, str) and "\n" not in config):
            return load_bootstrap(config), os.path.basename(os.fspath(config)), None
        if isinstance(config, str):
            source = filename or "<string>"
            return parse_bootstrap(config, source), source, None
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
        return Stats(scopes_from_core(self._core.stats()), extra)

    def flush_access_logs(self) -> None:
        """Writes the access-log records produced so far now (the core's log
        writer does it every 20 ms) and hands their spans to the tracer."""
        self._access_logs.drain()

