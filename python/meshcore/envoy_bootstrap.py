"""The bootstrap a real Envoy sidecar starts from, as istio-agent writes it
(`meshcore agent --envoy-bootstrap PATH`, docs/envoy.md).

Nothing of the mesh is in it: who the proxy is (node id and metadata, read
by the control plane as controlplane/nodes.py says), where its config comes
from (ADS on the static cluster `xds-grpc`, HTTP/2, the control plane's
address) and where its certificate comes from (the static cluster
`sds-grpc`, HTTP/2 over the agent's Unix socket: secrets `default` and
`ROOTCA`). Admin on 127.0.0.1, port 0 (Envoy's --admin-address-path says
which port it got).

    node.id    sidecar~IP~NAME.NAMESPACE~NAMESPACE.svc.cluster.local
    metadata   NAMESPACE, WORKLOAD_NAME, SERVICE_ACCOUNT, LABELS (as istio-agent sends them)

Envoy sets node.user_agent_name to "envoy" itself: that is how the control
plane knows to serve it the Envoy flavor of the view (flavor_envoy.py).
"""
from __future__ import annotations

import ipaddress

from meshcore.xds.resources import SDS_CLUSTER

XDS_CLUSTER = "xds-grpc"  # Istio's name for the ADS cluster
ADS_TYPES = {"delta": "DELTA_GRPC", "sotw": "GRPC"}


def node_id(ip: str, namespace: str, name: str) -> str:
    return f"sidecar~{ip}~{name}.{namespace}~{namespace}.svc.cluster.local"


def _h2() -> dict:
    return {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
        "explicit_http_config": {"http2_protocol_options": {}}}}


def _xds_cluster(xds: str) -> dict:
    host, _, port = xds.rpartition(":")
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
        kind = "STATIC"
    except ValueError:
        kind = "STRICT_DNS"  # a name: resolved as istio-agent's xds-grpc cluster does
    return {"name": XDS_CLUSTER, "type": kind, "connect_timeout": "1s",
            "circuit_breakers": {"thresholds": [{"priority": "DEFAULT", "max_connections": 100000,
                                                 "max_pending_requests": 100000, "max_requests": 100000},
                                                {"priority": "HIGH", "max_connections": 100000,
                                                 "max_pending_requests": 100000, "max_requests": 100000}]},
            "upstream_connection_options": {"tcp_keepalive": {"keepalive_time": 300}},
            "typed_extension_protocol_options": _h2(),
            "load_assignment": {"cluster_name": XDS_CLUSTER, "endpoints": [{"lb_endpoints": [
                {"endpoint": {"address": {"socket_address": {"address": host, "port_value": int(port)}}}}]}]}}


def _sds_cluster(sds_socket: str) -> dict:
    return {"name": SDS_CLUSTER, "type": "STATIC", "connect_timeout": "1s",
            "typed_extension_protocol_options": _h2(),
            "load_assignment": {"cluster_name": SDS_CLUSTER, "endpoints": [{"lb_endpoints": [
                {"endpoint": {"address": {"pipe": {"path": sds_socket}}}}]}]}}


def bootstrap(*, xds: str, namespace: str, name: str, service_account: str, ip: str, sds_socket: str,
              labels: dict | None = None, mode: str = "delta") -> dict:
    """An Envoy v3 Bootstrap (as a dict, for YAML or JSON) for one sidecar."""
    if mode not in ADS_TYPES:
        raise ValueError(f"ADS mode {mode!r}: one of {', '.join(ADS_TYPES)}")
    ads = {"ads": {}, "initial_fetch_timeout": "0s", "resource_api_version": "V3"}
    return {
        "node": {"id": node_id(ip, namespace, name), "cluster": f"{name}.{namespace}",
                 "metadata": {"NAMESPACE": namespace, "WORKLOAD_NAME": name,
                              "SERVICE_ACCOUNT": service_account, "LABELS": dict(labels or {}),
                              "INSTANCE_IPS": ip}},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "dynamic_resources": {
            "ads_config": {"api_type": ADS_TYPES[mode], "transport_api_version": "V3",
                           "set_node_on_first_message_only": True,
                           "grpc_services": [{"envoy_grpc": {"cluster_name": XDS_CLUSTER}}]},
            "cds_config": dict(ads), "lds_config": dict(ads)},
        "static_resources": {"clusters": [_xds_cluster(xds), _sds_cluster(sds_socket)]},
    }


def write(path: str, config: dict) -> None:
    """The bootstrap as YAML, written whole then renamed into place (Envoy never reads half of it)."""
    import os

    import yaml

    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        yaml.safe_dump(config, f, sort_keys=False)
    os.replace(tmp, path)
