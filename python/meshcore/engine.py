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

Lifecycle (docs/embedding.md): an Engine runs once. start() after stop(),
apply() after stop() or after drain_listeners() raise EngineStateError; a
started Engine is kept alive (like a running threading.Thread) until stop(),
and engines still running at interpreter exit are stopped then.
"""
from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Union

from google.protobuf.timestamp_pb2 import Timestamp

from meshcore import _core
from meshcore.config import load_bootstrap, parse_bootstrap, validate_bootstrap
from meshcore.errors import (
    ConfigError,
    EngineError,
    EngineStateError,
    InvalidArgumentError,
    UnknownListenerError,
)
from meshcore.incremental import Changes
from meshcore.plan import plan_snapshot
from meshcore.telemetry.access_log import AccessLogs
from meshcore.telemetry.istio_metrics import IstioMetrics
from meshcore.telemetry.stats import Stats, scopes_from_core
from meshcore.telemetry.tracing import Tracers

if TYPE_CHECKING:
    from envoy.config.bootstrap.v3.bootstrap_pb2 import Bootstrap

# What apply() takes: a path, YAML text, a dict in Envoy's bootstrap shape or a Bootstrap message.
Config = Union[str, "os.PathLike[str]", Mapping[str, Any], "Bootstrap"]

# What set_endpoints() takes: [(ip, port)] or [(ip, port, weight)], or a ClusterLoadAssignment message.
Endpoints = Sequence[tuple[str, int] | tuple[str, int, int]] | Any

Splice = Literal["auto", "always", "never"]
SPLICE_MODES: tuple[Splice, ...] = ("auto", "always", "never")
MAX_CONCURRENCY = 1024  # worker threads; more is a mistake, not a machine
_U32 = 2**32 - 1


class Engine:
    """Worker threads with their own event loops, fed config snapshots.

    concurrency: worker threads (0 = one per CPU).
    splice: "auto" (splice(2) for bulk transfers), "always" or "never".
    """

    def __init__(self, concurrency: int = 0, splice: Splice = "auto",
                 max_connections_per_worker: int = 0) -> None:
        _check_engine_args(concurrency, splice, max_connections_per_worker)
        try:
            self._core = _core.Engine(concurrency, splice, max_connections_per_worker)
        except _core.CoreError as e:
            raise EngineError(f"cannot create the engine: {e}") from None
        self._tls_cache = _core.TlsCache()  # SSL_CTX shared across clusters and applies
        self.tracers = Tracers()
        self._access_logs = AccessLogs(self._core, spans=self.tracers.add)
        self.istio = IstioMetrics(self._core)  # Istio's standard metrics (istio_requests_total, ...)
        self._lock = threading.Lock()
        self._apply_lock = threading.Lock()  # one config change at a time, in the order they come
        self._started = False
        self._stopped = False
        self._drained = False
        self._changes: Changes | None = None  # the running config (see the bootstrap property)
        self._validated: set[Any] | None = None  # serialized resources the last apply validated
        self.source: str | None = None           # where it came from (file name or "<...>")
        self.applied_at: Timestamp | None = None  # google.protobuf.Timestamp of that apply

    # -- lifecycle ----------------------------------------------------------

    def start(self) -> Engine:
        """Starts the workers; returns the engine. Again on a started engine:
        nothing. On a stopped one: EngineStateError (an Engine runs once)."""
        with self._lock:
            if self._stopped:
                raise EngineStateError("start(): the engine is stopped; an Engine runs once, create a new one")
            if not self._started:
                try:
                    self._core.start()
                except _core.CoreError as e:
                    raise EngineError(f"start(): {e}") from None
                self._started = True
                _RUNNING.add(self)  # kept alive until stop(), like a running thread
        return self

    def stop(self, drain_timeout: float = 0.0) -> None:
        """Stops accepting, lets connections finish for up to drain_timeout
        seconds, closes the rest and joins the workers. For good: start() and
        apply() raise EngineStateError afterwards. Again: nothing."""
        timeout_ms = _drain_timeout_ms(drain_timeout)
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            if self._started:
                self._core.stop(timeout_ms)
            _RUNNING.discard(self)
            self._access_logs.stop()  # after the workers: their last records get written
            self.tracers.stop()  # after the drain: its last spans get sent

    def drain_listeners(self) -> None:
        """Stops accepting new connections; existing ones continue. A later
        apply() raises EngineStateError unless given drained_ok=True (it would
        update the open connections' config, and nothing would listen)."""
        with self._lock:
            if self._stopped:
                return
            self._drained = True
            self._core.drain_listeners()

    def _check_can_apply(self, drained_ok: bool) -> None:
        if self._stopped:
            raise EngineStateError("apply(): the engine is stopped; an Engine runs once, create a new one")
        if self._drained and not drained_ok:
            raise EngineStateError("apply(): the listeners are drained (drain_listeners()), so nothing would "
                                   "listen; pass drained_ok=True to update the open connections' config")

    @property
    def state(self) -> str:
        """"created", "running", "drained" or "stopped"."""
        if self._stopped:
            return "stopped"
        if self._drained:
            return "drained"
        return "running" if self._started else "created"

    def __enter__(self) -> Engine:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- config ---------------------------------------------------------------

    def apply(self, config: Config, filename: str | None = None, *, drained_ok: bool = False) -> None:
        """Validates, compiles and publishes a config.

        config: a path (str / os.PathLike to a YAML file), a Bootstrap
        message, a dict in Envoy's YAML shape, or YAML text (pass filename
        for error messages). Raises ConfigError (nothing applied) or
        EngineError (e.g. address in use; nothing applied either);
        EngineStateError after stop(), or after drain_listeners() unless
        drained_ok (the proxy's reload: open connections follow the new config).
        A config that differs from the running one only in route weights and
        cluster endpoints takes set_weights' and set_endpoints' way (no compile)."""
        self._check_can_apply(drained_ok)
        with self._apply_lock:
            if not self._apply_changes(config, filename, drained_ok):
                self._publish(self._compile(config, filename), drained_ok)

    async def apply_async(self, config: Config, filename: str | None = None, *, drained_ok: bool = False) -> None:
        """apply() without blocking the event loop: loading, validation, the
        compile and the publish (which waits for the workers) run on a
        worker thread; the C parts release the GIL. Errors as apply()."""
        import asyncio
        import functools

        await asyncio.get_running_loop().run_in_executor(
            None, functools.partial(self.apply, config, filename, drained_ok=drained_ok))

    async def stop_async(self, drain_timeout: float = 0.0) -> None:
        """stop() on a worker thread: the drain and the join do not block the loop."""
        import asyncio

        await asyncio.get_running_loop().run_in_executor(None, self.stop, drain_timeout)

    def _compile(self, config: Config, filename: str | None) -> tuple[Any, ...]:
        """Everything an apply does before the core publishes: (bootstrap,
        source, plan, Istio plan, SnapshotBuilder, validated resources)."""
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

    def _publish(self, compiled: tuple[Any, ...], drained_ok: bool) -> None:
        bootstrap, source, plan, istio, builder, validated = compiled
        with self._lock:
            self._check_can_apply(drained_ok)
            try:
                self._core.apply(builder)
            except _core.CoreError as e:
                raise EngineError(f"{source}: {e}") from None
            self._changes = Changes(bootstrap, plan, source, reads_files=builder.reads_files)
            self._validated = validated  # what the next apply need not walk again
            self.source = source
            self.istio.adopt(istio)
            self._stamp()

    def _apply_changes(self, config: Config, filename: str | None, drained_ok: bool) -> bool:
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
            self._check_can_apply(drained_ok)
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
    def bootstrap(self) -> Bootstrap | None:
        """The Bootstrap message last applied, with the weights and endpoints
        changed since (set_weights, set_endpoints); None before the first apply."""
        changes = self._changes
        return changes.bootstrap() if changes is not None else None

    # -- incremental changes (meshcore.incremental) --------------------------------------

    def set_weights(self, route: str, weights: Mapping[str, int], *, vhost: str | None = None,
                    listener: str | None = None) -> int:
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
            with self._lock:
                self._check_can_apply(True)
            try:
                self._core.set_route_weights([(r.listener, r.chain, r.vhost, r.route, w) for r, w in todo])
            except _core.CoreError as e:
                raise EngineError(f"{changes.source}: {e}") from None
            changes.weights_applied(todo)
            self._stamp()
            return len(todo)

    def set_endpoints(self, cluster: str, endpoints: Endpoints) -> None:
        """Replaces a cluster's endpoints: `endpoints` is [(ip, port)] or
        [(ip, port, weight)], or a ClusterLoadAssignment. A new snapshot that
        shares everything else with the running one (no compile); checked as
        an apply checks a cluster (ConfigError naming the field, nothing
        changed)."""
        self.set_endpoints_many({cluster: endpoints})

    def set_endpoints_many(self, endpoints: Mapping[str, Endpoints]) -> None:
        """set_endpoints for several clusters ({cluster: endpoints}) in one snapshot."""
        with self._apply_lock:
            changes = self._running()
            todo = [changes.endpoints(c, eps) for c, eps in endpoints.items()]
            with self._lock:
                self._check_can_apply(True)
                try:
                    self._core.set_endpoints([core for core, _ in todo])
                except _core.CoreError as e:
                    raise EngineError(f"{changes.source}: {e}") from None
            changes.endpoints_applied([msg for _, msg in todo])
            self._stamp()

    def _running(self) -> Changes:
        if self._stopped:
            raise EngineStateError("the engine is stopped; an Engine runs once, create a new one")
        if self._changes is None:
            raise EngineError("no config applied yet")
        return self._changes

    @staticmethod
    def _load(config: Config, filename: str | None,
              known: set[Any] | None = None) -> tuple[Bootstrap, str, set[Any] | None]:
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
        """The bound port of listener name; UnknownListenerError naming the
        known listeners if the running config has none by that name."""
        listeners = self.listeners()
        for n, _, port in listeners:
            if n == name:
                return port
        known = ", ".join(repr(n) for n, _, _ in listeners) or "none (nothing applied yet)"
        raise UnknownListenerError(f"no listener {name!r} in the running config; its listeners: {known}")

    def stats(self, extra_counters: Mapping[str, int] | None = None) -> Stats:
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



# ---- arguments and lifetime (kept apart from the apply path) -----------------


def _check_engine_args(concurrency: object, splice: object, max_connections_per_worker: object) -> None:
    """InvalidArgumentError for what _core.Engine would refuse with a Cython
    OverflowError or TypeError."""
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or not 0 <= concurrency <= MAX_CONCURRENCY:
        raise InvalidArgumentError(f"Engine(concurrency={concurrency!r}): worker threads, an int from 0 "
                                   f"(one per CPU) to {MAX_CONCURRENCY}")
    if splice not in SPLICE_MODES:
        raise InvalidArgumentError(f"Engine(splice={splice!r}): one of {', '.join(SPLICE_MODES)}")
    if (isinstance(max_connections_per_worker, bool) or not isinstance(max_connections_per_worker, int)
            or not 0 <= max_connections_per_worker <= _U32):
        raise InvalidArgumentError(f"Engine(max_connections_per_worker={max_connections_per_worker!r}): "
                                   f"an int from 0 (unbounded) to {_U32}")


def _drain_timeout_ms(drain_timeout: object) -> int:
    if (isinstance(drain_timeout, bool) or not isinstance(drain_timeout, (int, float))
            or not 0 <= drain_timeout <= _U32 / 1000):
        raise InvalidArgumentError(f"stop(drain_timeout={drain_timeout!r}): seconds, a number >= 0")
    return int(drain_timeout * 1000)


# Started, not yet stopped engines: a running Engine is not garbage-collected
# (its workers would stop under the program's feet); at interpreter exit the
# ones still running are stopped (no drain) so their access logs get written.
_RUNNING: set[Engine] = set()


@atexit.register
def _stop_running_engines() -> None:
    for engine in list(_RUNNING):
        engine.stop()
