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
