"""controlplane.flavor_envoy: the view a stock Envoy gets (Istio-only HTTP
filters optional, Istio network filters dropped, ROOTCA over ADS), the
meshcore view untouched; envoy_bootstrap: the bootstrap `meshcore agent
--envoy-bootstrap` writes is a valid Envoy v3 Bootstrap."""
from __future__ import annotations

import pathlib

from envoy.config.bootstrap.v3 import bootstrap_pb2
from google.protobuf import json_format

from meshcore import envoy_bootstrap, xds_types
from meshcore.controlplane import flavor_envoy, flavors, views
from meshcore.translate import Security, load_dir
from meshcore.xds import resources as xr

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"


def checkout():
    return views.build("v1", load_dir(EXAMPLES / "mesh-mtls"), Security(), "roots").views["default/checkout"]


def http_filters(lst):
    out = []
    for chain in lst.filter_chains:
        for f in chain.filters:
            if xds_types.type_name(f.typed_config.type_url) == xds_types.HCM:
                out += xds_types.unpack(f.typed_config).http_filters
    return out


def sds_configs(message):
    found = []
    xr._walk_sds_configs(message, found.append)
    return {s.name: s.sds_config for s in found}


def test_istio_filters_are_optional_or_dropped_for_envoy():
    view = checkout()
    envoy = view.for_node("127.0.0.1", flavors.ENVOY)
    assert envoy is not view and view.for_node("127.0.0.1", flavors.ENVOY) is envoy  # cached per flavor
    before, after = views.messages_of(view, xr.LDS), views.messages_of(envoy, xr.LDS)
    assert sorted(before) == sorted(after)
    optional = 0
    for name, lst in after.items():
        for chain in lst.filter_chains:
            assert not any(f.name.startswith("istio.") for f in chain.filters), name  # network filters: dropped
        for hf in http_filters(lst):
            assert hf.is_optional == flavor_envoy.istio_only(hf), (name, hf.name)
            optional += hf.is_optional
    assert optional >= 2
    # the TCP chains keep everything else, in order
    tcp = [f.name for f in after["inbound_127.0.0.1_28082"].filter_chains[0].filters]
    assert tcp == ["envoy.filters.network.rbac", "envoy.filters.network.rbac", "envoy.filters.network.tcp_proxy"]
    # the meshcore flavor is the translation, untouched
    assert any(f.name == "istio.stats" for f in before["127.0.0.1_9090"].filter_chains[0].filters)
    assert not any(hf.is_optional for lst in before.values() for hf in http_filters(lst))
    assert view.for_node("127.0.0.1", flavors.MESHCORE) is view


def test_rootca_comes_over_ads_and_default_from_the_agent():
    envoy = checkout().for_node("127.0.0.1", flavors.ENVOY)
    seen = 0
    for type_url in (xr.LDS, xr.CDS):
        for msg in views.messages_of(envoy, type_url).values():
            sds = sds_configs(msg)
            if not sds:
                continue
            seen += 1
            assert sds["ROOTCA"].HasField("ads")
            assert sds["default"].api_config_source.grpc_services[0].envoy_grpc.cluster_name == xr.SDS_CLUSTER
    assert seen >= 2
    assert envoy.of(xr.SDS) == checkout().of(xr.SDS)  # the ROOTCA secret itself is the same
    base = checkout()
    for msg in views.messages_of(base, xr.CDS).values():
        for sds in sds_configs(msg).values():
            assert not sds.HasField("ads")  # meshcore sidecars: Istio's shape


def test_envoy_bootstrap_is_a_valid_envoy_bootstrap():
    config = envoy_bootstrap.bootstrap(xds="127.0.0.1:15010", namespace="shop", name="api-v1", service_account="api",
                                       ip="10.0.0.7", sds_socket="/run/sds.sock", labels={"app": "api"}, mode="sotw")
    b = json_format.ParseDict(config, bootstrap_pb2.Bootstrap())
    assert b.node.id == "sidecar~10.0.0.7~api-v1.shop~shop.svc.cluster.local"
    meta = json_format.MessageToDict(b.node.metadata)
    assert meta["NAMESPACE"] == "shop" and meta["WORKLOAD_NAME"] == "api-v1" and meta["SERVICE_ACCOUNT"] == "api"
    assert meta["LABELS"] == {"app": "api"}
    assert b.dynamic_resources.ads_config.api_type == b.dynamic_resources.ads_config.GRPC
    assert b.dynamic_resources.lds_config.HasField("ads") and b.dynamic_resources.cds_config.HasField("ads")
    clusters = {c.name: c for c in b.static_resources.clusters}
    assert clusters["xds-grpc"].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.\
        port_value == 15010
    assert clusters["sds-grpc"].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.pipe.path == \
        "/run/sds.sock"
    assert b.admin.address.socket_address.port_value == 0
    delta = envoy_bootstrap.bootstrap(xds="cp.mesh:15010", namespace="shop", name="api", service_account="api",
                                      ip="10.0.0.8", sds_socket="/s")
    assert delta["dynamic_resources"]["ads_config"]["api_type"] == "DELTA_GRPC"
    assert delta["static_resources"]["clusters"][0]["type"] == "STRICT_DNS"
