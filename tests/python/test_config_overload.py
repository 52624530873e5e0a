"""The bootstrap's overload_manager: the global downstream connection limit,
the fixed_heap and injected_resource monitors and five actions are accepted;
what meshcore does not implement is refused naming the field."""
import pytest
import yaml

from meshcore.config import parse_bootstrap
from meshcore.config.overload import global_max_connections, overload_plan
from meshcore.errors import ConfigError

DC = "type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig"
HEAP = "type.googleapis.com/envoy.extensions.resource_monitors.fixed_heap.v3.FixedHeapConfig"
CGROUP = "type.googleapis.com/envoy.extensions.resource_monitors.cgroup_memory.v3.CgroupMemoryConfig"
HEAP_MONITOR = {"name": "envoy.resource_monitors.fixed_heap",
                "typed_config": {"@type": HEAP, "max_heap_size_bytes": 1 << 30}}


def _action(name, trigger=None, monitor="envoy.resource_monitors.fixed_heap"):
    return {"name": name, "triggers": [{"name": monitor, **(trigger or {"threshold": {"value": 0.9}})}]}


def _doc(overload):
    return yaml.safe_dump({"static_resources": {"listeners": [], "clusters": []}, "overload_manager": overload})


def _monitor(n, name="envoy.resource_monitors.global_downstream_max_connections", url=DC):
    return {"name": name, "typed_config": {"@type": url, "max_active_downstream_connections": n}}


def test_global_downstream_max_connections_is_read():
    b = parse_bootstrap(_doc({"resource_monitors": [_monitor(5000)]}), "b.yaml")
    assert global_max_connections(b) == 5000
    assert global_max_connections(parse_bootstrap(_doc({}), "b.yaml")) == 0


@pytest.mark.parametrize("overload, where, what", [
    ({"resource_monitors": [_monitor(0)]}, "max_active_downstream_connections", "greater than 0"),
    ({"resource_monitors": [_monitor(10), _monitor(20)]}, "resource_monitors[1]", "configured twice"),
    ({"resource_monitors": [_monitor(10, name="envoy.resource_monitors.downstream")]},
     "resource_monitors[0].name", "unsupported resource monitor 'envoy.resource_monitors.downstream'"),
    ({"resource_monitors": [{"name": "envoy.resource_monitors.cgroup_memory",
                             "typed_config": {"@type": CGROUP, "max_memory_bytes": 1 << 30}}]},
     "resource_monitors[0]", "unsupported resource monitor envoy.resource_monitors.cgroup_memory"),
    ({"resource_monitors": [{"name": "envoy.resource_monitors.fixed_heap",
                             "typed_config": {"@type": HEAP}}]},
     "max_heap_size_bytes", "greater than 0"),
    ({"resource_monitors": [{"name": "envoy.resource_monitors.fixed_heap",
                             "typed_config": {"@type": DC, "max_active_downstream_connections": 5}}]},
     "resource_monitors[0].typed_config", "takes envoy.extensions.resource_monitors.fixed_heap.v3.FixedHeapConfig"),
    ({"resource_monitors": [HEAP_MONITOR], "actions": [_action("envoy.overload_actions.reduce_timeouts")]},
     "actions[0].name", "unsupported overload action 'envoy.overload_actions.reduce_timeouts'"),
    ({"resource_monitors": [HEAP_MONITOR],
      "actions": [_action("envoy.overload_actions.shrink_heap", monitor="envoy.resource_monitors.injected_resource")]},
     "actions[0].triggers[0].name", "'envoy.resource_monitors.injected_resource' is not a configured resource monitor"),
    ({"resource_monitors": [HEAP_MONITOR],
      "actions": [_action("envoy.overload_actions.shrink_heap", {"threshold": {"value": 1.5}})]},
     "actions[0].triggers[0].threshold.value", "must be in [0, 1]"),
    ({"resource_monitors": [HEAP_MONITOR], "actions": [_action(
        "envoy.overload_actions.shrink_heap", {"scaled": {"scaling_threshold": 0.9, "saturation_threshold": 0.8}})]},
     "actions[0].triggers[0].scaled", "scaling_threshold < saturation_threshold"),
    ({"resource_monitors": [HEAP_MONITOR], "actions": [{"name": "envoy.overload_actions.shrink_heap"}]},
     "actions[0].triggers", "at least one trigger"),
    ({"resource_monitors": [HEAP_MONITOR], "actions": [_action("envoy.overload_actions.shrink_heap"),
                                                       _action("envoy.overload_actions.shrink_heap")]},
     "actions[1].name", "configured twice"),
    ({"loadshed_points": [{"name": "envoy.load_shed_points.tcp_listener_accept"}]},
     "overload_manager", 'unsupported field "loadshed_points"'),
])
def test_what_is_not_implemented_is_refused(overload, where, what):
    with pytest.raises(ConfigError) as e:
        parse_bootstrap(_doc(overload), "b.yaml")
    msg = str(e.value)
    assert "b.yaml" in msg and where in msg and what in msg, msg


def test_monitors_and_actions_are_planned_for_the_core():
    injected = {"name": "envoy.resource_monitors.injected_resource", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.resource_monitors.injected_resource.v3.InjectedResourceConfig",
        "filename": "/run/pressure"}}
    b = parse_bootstrap(_doc({
        "refresh_interval": "0.25s",
        "resource_monitors": [HEAP_MONITOR, injected, _monitor(100)],
        "actions": [_action("envoy.overload_actions.stop_accepting_requests"),
                    _action("envoy.overload_actions.disable_http_keepalive",
                            {"scaled": {"scaling_threshold": 0.5, "saturation_threshold": 0.8}},
                            monitor="envoy.resource_monitors.injected_resource"),
                    _action("envoy.overload_actions.stop_accepting_connections",
                            monitor="envoy.resource_monitors.global_downstream_max_connections")]}), "b.yaml")
    assert overload_plan(b) == (250, [
        ("envoy.resource_monitors.fixed_heap", "fixed_heap", 1 << 30, ""),
        ("envoy.resource_monitors.injected_resource", "injected_resource", 0, "/run/pressure"),
        ("envoy.resource_monitors.global_downstream_max_connections", "downstream_connections", 100, "")], [
        ("envoy.overload_actions.stop_accepting_requests", 0, False, 0.9, 0.0),
        ("envoy.overload_actions.disable_http_keepalive", 1, True, 0.5, 0.8),
        ("envoy.overload_actions.stop_accepting_connections", 2, False, 0.9, 0.0)])
    assert overload_plan(parse_bootstrap(_doc({}), "b.yaml")) == (1000, [], [])  # Envoy's default interval


def test_fixed_heap_pressure_follows_the_heap_in_use():
    """The sampler's fixed_heap reads malloc's bytes in use: an embedded
    engine sees 256 MiB held by its own process."""
    from meshcore import Engine

    held_bytes = 256 << 20
    doc = {"static_resources": {"listeners": [], "clusters": []}, "overload_manager": {
        "resource_monitors": [{"name": "envoy.resource_monitors.fixed_heap",
                               "typed_config": {"@type": HEAP, "max_heap_size_bytes": 1 << 30}}]}}
    with Engine(concurrency=1) as e:
        e.apply(doc)
        before = e.stats()["overload.envoy.resource_monitors.fixed_heap.pressure"]
        held = bytearray(held_bytes)
        e._core.overload_sample()
        during = e.stats()["overload.envoy.resource_monitors.fixed_heap.pressure"]
        del held
        e._core.overload_sample()
        after = e.stats()["overload.envoy.resource_monitors.fixed_heap.pressure"]
    assert during - before >= 24 and during - after >= 24, (before, during, after)  # 25% of the max, rounded


def test_headers_with_underscores_action_is_accepted_on_the_hcm_only():
    from meshcore.config.schema import SCHEMA

    hcm = SCHEMA["envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"]
    assert "headers_with_underscores_action" in hcm.nested["common_http_protocol_options"].fields


def _with_buffer_limits(listener_limit, cluster_limit):
    cluster = {"name": "c", "type": "STATIC", "load_assignment": {"cluster_name": "c", "endpoints": []}}
    listener = {"name": "l", "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                "filter_chains": [{"filters": [{"name": "envoy.filters.network.tcp_proxy", "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
                    "stat_prefix": "t", "cluster": "c"}}]}]}
    if listener_limit is not None:
        listener["per_connection_buffer_limit_bytes"] = listener_limit
    if cluster_limit is not None:
        cluster["per_connection_buffer_limit_bytes"] = cluster_limit
    return yaml.safe_dump({"static_resources": {"listeners": [listener], "clusters": [cluster]}})


def test_per_connection_buffer_limit_bytes():
    parse_bootstrap(_with_buffer_limits(32768, 1 << 20), "b.yaml")  # met as is: one 16 KiB buffer per direction
    for doc, where in ((_with_buffer_limits(1024, None), 'listener "l"'),
                       (_with_buffer_limits(None, 4096), 'cluster "c"')):
        with pytest.raises(ConfigError) as e:
            parse_bootstrap(doc, "b.yaml")
        assert where in str(e.value) and "per_connection_buffer_limit_bytes: " in str(e.value), str(e.value)
        assert "below 16384" in str(e.value), str(e.value)
