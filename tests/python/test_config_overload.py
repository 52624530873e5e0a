"""The bootstrap's overload_manager: the global downstream connection limit
is accepted; what meshcore does not implement is refused naming the field."""
import pytest
import yaml

from meshcore.config import parse_bootstrap
from meshcore.config.overload import global_max_connections
from meshcore.errors import ConfigError

DC = "type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig"
HEAP = "type.googleapis.com/envoy.extensions.resource_monitors.fixed_heap.v3.FixedHeapConfig"


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
     "resource_monitors[0].name", "must be envoy.resource_monitors.global_downstream_max_connections"),
    ({"resource_monitors": [{"name": "envoy.resource_monitors.fixed_heap",
                             "typed_config": {"@type": HEAP, "max_heap_size_bytes": 1 << 30}}]},
     "resource_monitors[0]", "unsupported resource monitor"),
    ({"resource_monitors": [_monitor(10)],
      "actions": [{"name": "envoy.overload_actions.stop_accepting_connections",
                   "triggers": [{"name": "envoy.resource_monitors.global_downstream_max_connections",
                                 "threshold": {"value": 0.9}}]}]},
     "actions[0].name", "unsupported overload action 'envoy.overload_actions.stop_accepting_connections'"),
    ({"loadshed_points": [{"name": "envoy.load_shed_points.tcp_listener_accept"}]},
     "overload_manager", 'unsupported field "loadshed_points"'),
])
def test_what_is_not_implemented_is_refused(overload, where, what):
    with pytest.raises(ConfigError) as e:
        parse_bootstrap(_doc(overload), "b.yaml")
    msg = str(e.value)
    assert "b.yaml" in msg and where in msg and what in msg, msg


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
