"""controlplane.flavor_grpc: a workload's sidecar view as a proxyless gRPC
client gets it (API listeners named host:port, filters gRPC knows, clusters
and localities as gRPC C-core accepts them). The real client is in
tests/integration/test_grpc_proxyless.py."""
from __future__ import annotations

import pathlib

from envoy.extensions.filters.http.fault.v3 import fault_pb2

from meshcore import xds_types
from meshcore.controlplane import views
from meshcore.controlplane.flavor_grpc import CLIENT_FILTERS, _filter_type
from meshcore.translate import Security, load_dir
from meshcore.xds import resources as xr

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"


def grpc_view(directory="mesh-mtls", workload="default/frontend"):
    base = views.build("v1", load_dir(EXAMPLES / directory), Security(), "roots").views[workload]
    return base, base.for_node("", "grpc")


def test_api_listeners_named_host_port_with_the_routes_and_known_filters():
    base, view = grpc_view()
    assert base.for_node("", "grpc") is view  # cached per flavor: "changed?" stays an identity test
    lds = views.messages_of(view, xr.LDS)
    # the HTTP port's virtual host domains with a port; the TCP port (9090) and socket listeners are left out
    assert sorted(lds) == sorted(f"{h}:9080" for h in ("checkout", "checkout.default", "checkout.default.svc",
                                                       "checkout.default.svc.cluster.local"))
    for name, lst in lds.items():
        assert lst.name == name and not lst.HasField("address") and not lst.filter_chains
        hcm = xds_types.unpack(lst.api_listener.api_listener)
        assert hcm.DESCRIPTOR.full_name == xds_types.HCM
        assert hcm.rds.route_config_name == "9080" and hcm.rds.config_source.HasField("ads")
        types = [_filter_type(f.typed_config) for f in hcm.http_filters]
        assert types[-1] == xds_types.ROUTER and set(types) <= CLIENT_FILTERS  # istio.* TypedStructs dropped
    # no per-route configs to drop; max_stream_duration is the route's timeout (istiod's proxyless setTimeout)
    base_rds, rds = views.messages_of(base, xr.RDS), views.messages_of(view, xr.RDS)
    assert sorted(rds) == sorted(base_rds)
    for name, rc in rds.items():
        for vh, base_vh in zip(rc.virtual_hosts, base_rds[name].virtual_hosts, strict=True):
            for route, base_route in zip(vh.routes, base_vh.routes, strict=True):
                # the sidecar's max_grpc_timeout (or the default route's max_stream_duration) goes
                assert base_route.route.HasField("max_grpc_timeout") or base_route.route.HasField("max_stream_duration")
                assert not route.route.HasField("max_grpc_timeout")
                assert not route.route.max_stream_duration.HasField("grpc_timeout_header_max")
                assert route.route.max_stream_duration.max_stream_duration == route.route.timeout
                for r in (route.route, base_route.route):
                    r.ClearField("max_stream_duration")
                    r.ClearField("max_grpc_timeout")
    assert rds == base_rds
    assert not view.of(xr.SDS)


def test_clusters_and_endpoints_as_grpc_accepts_them():
    base, view = grpc_view()
    before = views.messages_of(base, xr.CDS)
    assert any(c.HasField("transport_socket") or c.transport_socket_matches for c in before.values())  # mTLS
    clusters = views.messages_of(view, xr.CDS)
    assert sorted(clusters) == sorted(before)
    for c in clusters.values():
        assert not c.HasField("transport_socket") and not c.transport_socket_matches
        if before[c.name].lb_policy == before[c.name].LEAST_REQUEST:
            names = [p.typed_extension_config.name for p in c.load_balancing_policy.policies]
            assert names == ["envoy.load_balancing_policies.least_request", "envoy.load_balancing_policies.round_robin"]
    cla = views.messages_of(view, xr.EDS)
    assert cla and all(g.HasField("locality") and g.load_balancing_weight.value == 1
                       for c in cla.values() for g in c.endpoints)


def test_fault_filter_and_per_route_fault_are_kept():
    from google.protobuf import any_pb2, json_format

    from meshcore.controlplane import flavor_grpc

    base, _ = grpc_view()
    routes = views.messages_of(base, xr.RDS)
    fault = any_pb2.Any()
    fault.Pack(json_format.ParseDict({"abort": {"http_status": 503, "percentage": {"numerator": 10}}},
                                     fault_pb2.HTTPFault()))
    other = any_pb2.Any(type_url="type.googleapis.com/istio.unknown.Config")
    for rc in routes.values():
        for vh in rc.virtual_hosts:
            for r in vh.routes:
                r.typed_per_filter_config["envoy.filters.http.fault"].CopyFrom(fault)
                r.typed_per_filter_config["istio.unknown"].CopyFrom(other)
    view = flavor_grpc.adapt(views.replace_type(base, xr.RDS, routes))
    for rc in views.messages_of(view, xr.RDS).values():
        for vh in rc.virtual_hosts:
            for r in vh.routes:
                assert list(r.typed_per_filter_config) == ["envoy.filters.http.fault"]
