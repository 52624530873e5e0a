"""The bootstrap's overload_manager: what meshcore implements of it.

One resource monitor, envoy.resource_monitors.global_downstream_max_connections
(DownstreamConnectionsConfig.max_active_downstream_connections): a count of
downstream connections over every listener and worker, checked at accept;
a connection over it is closed at once and counted in
listener.<name>.downstream_global_cx_overflow. Without it the engine derives
a limit from RLIMIT_NOFILE (docs/hardening.md).

Heap, cgroup-memory and injected-resource monitors and every overload action
are refused: meshcore does not measure those resources, so accepting them
would promise protection it does not give.
"""
from envoy.extensions.resource_monitors.downstream_connections.v3 import (  # noqa: F401 (registers the type)
    downstream_connections_pb2,
)

GLOBAL_CX_MONITOR = "envoy.resource_monitors.global_downstream_max_connections"
GLOBAL_CX_PRESSURE = f"overload.{GLOBAL_CX_MONITOR}.pressure"  # gauge, percent (Envoy 1.39+)
DOWNSTREAM_CONNECTIONS = (
    "envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig"
)


def check_overload_manager(om):  # envoy.config.overload.v3.OverloadManager
    for i, rm in enumerate(om.resource_monitors):
        if rm.name != GLOBAL_CX_MONITOR:
            yield f"resource_monitors[{i}].name", f"must be {GLOBAL_CX_MONITOR} for {DOWNSTREAM_CONNECTIONS}"
            return
        if i:
            yield f"resource_monitors[{i}]", f"{GLOBAL_CX_MONITOR} is configured twice"
            return


def check_downstream_connections(cfg):  # DownstreamConnectionsConfig
    if cfg.max_active_downstream_connections <= 0:
        yield "max_active_downstream_connections", "must be greater than 0"


def check_overload_action(action):  # envoy.config.overload.v3.OverloadAction
    yield "name", (f"unsupported overload action {action.name!r}: meshcore has no heap or descriptor "
                   f"resource monitor to trigger actions; {GLOBAL_CX_MONITOR} limits connections by itself "
                   "(docs/hardening.md)")


def global_max_connections(bootstrap) -> int:
    """max_active_downstream_connections of a validated bootstrap; 0 when not configured."""
    for rm in bootstrap.overload_manager.resource_monitors:
        if rm.name == GLOBAL_CX_MONITOR:
            cfg = downstream_connections_pb2.DownstreamConnectionsConfig()
            rm.typed_config.Unpack(cfg)
            return cfg.max_active_downstream_connections
    return 0
