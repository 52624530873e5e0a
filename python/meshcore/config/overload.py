"""The bootstrap's overload_manager: what meshcore implements of it.

Resource monitors (docs/hardening.md):
- envoy.resource_monitors.global_downstream_max_connections
  (DownstreamConnectionsConfig.max_active_downstream_connections): a count of
  downstream connections over every listener and worker, checked at accept;
  a connection over it is closed at once and counted in
  listener.<name>.downstream_global_cx_overflow. Without it the engine derives
  a limit from RLIMIT_NOFILE. meshcore also samples it as a pressure
  (active / max) that an action's trigger may name.
- envoy.resource_monitors.fixed_heap (FixedHeapConfig.max_heap_size_bytes):
  bytes malloc has handed out and not had back / max.
- envoy.resource_monitors.injected_resource (InjectedResourceConfig.filename):
  a number in [0, 1] read from a file, for tests and operators.

Actions, with threshold or scaled triggers (an action acts when saturated):
stop_accepting_requests, disable_http_keepalive, stop_accepting_connections,
reject_incoming_connections, shrink_heap. Other monitors and actions are
refused: meshcore does not measure or do them, so accepting them would
promise protection it does not give.
"""
from typing import Any

from envoy.extensions.resource_monitors.downstream_connections.v3 import (  # noqa: F401 (registers the type)
    downstream_connections_pb2,
)
from envoy.extensions.resource_monitors.fixed_heap.v3 import fixed_heap_pb2  # noqa: F401 (registers the type)
from envoy.extensions.resource_monitors.injected_resource.v3 import (  # noqa: F401 (registers the type)
    injected_resource_pb2,
)

GLOBAL_CX_MONITOR = "envoy.resource_monitors.global_downstream_max_connections"
GLOBAL_CX_PRESSURE = f"overload.{GLOBAL_CX_MONITOR}.pressure"  # gauge, percent (Envoy 1.39+)
FIXED_HEAP_MONITOR = "envoy.resource_monitors.fixed_heap"
INJECTED_MONITOR = "envoy.resource_monitors.injected_resource"
DOWNSTREAM_CONNECTIONS = (
    "envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig"
)
FIXED_HEAP = "envoy.extensions.resource_monitors.fixed_heap.v3.FixedHeapConfig"
INJECTED_RESOURCE = "envoy.extensions.resource_monitors.injected_resource.v3.InjectedResourceConfig"

# monitor name -> (its config's type, the core's monitor kind)
MONITORS = {
    GLOBAL_CX_MONITOR: (DOWNSTREAM_CONNECTIONS, "downstream_connections"),
    FIXED_HEAP_MONITOR: (FIXED_HEAP, "fixed_heap"),
    INJECTED_MONITOR: (INJECTED_RESOURCE, "injected_resource"),
}
# What the core does (mc_om_action_t, ext/_core.pyx OVERLOAD_ACTIONS).
ACTIONS = (
    "envoy.overload_actions.stop_accepting_requests",
    "envoy.overload_actions.disable_http_keepalive",
    "envoy.overload_actions.stop_accepting_connections",
    "envoy.overload_actions.reject_incoming_connections",
    "envoy.overload_actions.shrink_heap",
)
DEFAULT_REFRESH_MS = 1000  # Envoy's default refresh_interval

# (refresh_interval_ms, [(name, kind, max, path)], [(action, monitor index, scaled, lo, hi)])
OverloadPlan = tuple[int, list[tuple[str, str, int, str]], list[tuple[str, int, bool, float, float]]]


def check_overload_manager(om):  # envoy.config.overload.v3.OverloadManager
    seen = set()
    for i, rm in enumerate(om.resource_monitors):
        if rm.name not in MONITORS:
            yield f"resource_monitors[{i}].name", (f"unsupported resource monitor {rm.name!r}: meshcore has "
                                                   f"{', '.join(MONITORS)} (docs/hardening.md)")
            return
        want = MONITORS[rm.name][0]
        if not rm.typed_config.type_url.endswith("/" + want):
            yield f"resource_monitors[{i}].typed_config", f"{rm.name} takes {want}"
            return
        if rm.name in seen:
            yield f"resource_monitors[{i}]", f"{rm.name} is configured twice"
            return
        seen.add(rm.name)
    if om.HasField("refresh_interval") and om.refresh_interval.ToNanoseconds() < 1_000_000:
        yield "refresh_interval", "must be at least 1ms"
    actions = set()
    for i, a in enumerate(om.actions):
        if a.name in actions:
            yield f"actions[{i}].name", f"{a.name} is configured twice"
        actions.add(a.name)
        for j, t in enumerate(a.triggers):
            if t.name not in seen:
                yield f"actions[{i}].triggers[{j}].name", (f"{t.name!r} is not a configured resource monitor "
                                                           f"(resource_monitors: {', '.join(sorted(seen)) or 'none'})")


def check_downstream_connections(cfg):  # DownstreamConnectionsConfig
    if cfg.max_active_downstream_connections <= 0:
        yield "max_active_downstream_connections", "must be greater than 0"


def check_fixed_heap(cfg):  # FixedHeapConfig
    if cfg.max_heap_size_bytes <= 0:
        yield "max_heap_size_bytes", "must be greater than 0"


def check_injected_resource(cfg):  # InjectedResourceConfig
    if not cfg.filename:
        yield "filename", "required"


def check_overload_action(action):  # envoy.config.overload.v3.OverloadAction
    if action.name not in ACTIONS:
        yield "name", (f"unsupported overload action {action.name!r}: meshcore implements "
                       f"{', '.join(ACTIONS)} (docs/hardening.md)")
    elif not action.triggers:
        yield "triggers", "at least one trigger is required"


def check_trigger(t):  # envoy.config.overload.v3.Trigger
    kind = t.WhichOneof("trigger_oneof")
    if kind is None:
        yield "", "a trigger needs threshold or scaled"
    elif kind == "threshold" and not 0 <= t.threshold.value <= 1:
        yield "threshold.value", "must be in [0, 1]"
    elif kind == "scaled":
        lo, hi = t.scaled.scaling_threshold, t.scaled.saturation_threshold
        if not (0 <= lo < hi <= 1):
            yield "scaled", "needs 0 <= scaling_threshold < saturation_threshold <= 1"


def global_max_connections(bootstrap) -> int:
    """max_active_downstream_connections of a validated bootstrap; 0 when not configured."""
    for rm in bootstrap.overload_manager.resource_monitors:
        if rm.name == GLOBAL_CX_MONITOR:
            cfg = downstream_connections_pb2.DownstreamConnectionsConfig()
            rm.typed_config.Unpack(cfg)
            return cfg.max_active_downstream_connections
    return 0


def overload_plan(bootstrap: Any) -> OverloadPlan:
    """What the core's sampler runs for a validated bootstrap:
    (refresh_interval_ms, [(name, kind, max, path)], [(action, monitor index, scaled, lo, hi)]).
    No monitors: nothing to sample."""
    om = bootstrap.overload_manager
    interval = om.refresh_interval.ToMilliseconds() if om.HasField("refresh_interval") else DEFAULT_REFRESH_MS
    monitors: list[tuple[str, str, int, str]] = []
    index: dict[str, int] = {}
    for rm in om.resource_monitors:
        _, kind = MONITORS[rm.name]
        mx, path = 0, ""
        if kind == "downstream_connections":
            mx = global_max_connections(bootstrap)
        elif kind == "fixed_heap":
            cfg = fixed_heap_pb2.FixedHeapConfig()
            rm.typed_config.Unpack(cfg)
            mx = cfg.max_heap_size_bytes
        else:
            cfg = injected_resource_pb2.InjectedResourceConfig()
            rm.typed_config.Unpack(cfg)
            path = cfg.filename
        index[rm.name] = len(monitors)
        monitors.append((rm.name, kind, mx, path))
    triggers: list[tuple[str, int, bool, float, float]] = []
    for a in om.actions:
        for t in a.triggers:
            if t.WhichOneof("trigger_oneof") == "scaled":
                triggers.append((a.name, index[t.name], True, t.scaled.scaling_threshold,
                                 t.scaled.saturation_threshold))
            else:
                triggers.append((a.name, index[t.name], False, t.threshold.value, 0.0))
    return max(1, interval), monitors, triggers
