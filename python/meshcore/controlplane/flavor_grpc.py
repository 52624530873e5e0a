"""The view as a proxyless gRPC client gets it (gRFC A27, A28, A39).

A gRPC channel with the target `xds:///checkout:7070` asks LDS for the
listener named `checkout:7070` (the target's authority), follows its API
listener's HttpConnectionManager to a RouteConfiguration (RDS), picks the
virtual host whose domains match the authority, and then asks CDS and EDS
for the clusters its routes name. It opens no socket listener. So from the
workload's sidecar view:

    LDS  for every `host:port` domain of the virtual hosts of its outbound HTTP
         listeners' routes, an API listener of that name: an HCM with the
         same `rds` (over ADS) and only the HTTP filters gRPC's client knows
         (fault, router; the router last). Socket listeners (inbound,
         outbound, TCP) are left out: the client has no use for them, and a
         listener without api_listener would be NACKed.
    RDS  as they are, without per-route filter configs of filters gRPC does
         not know (it NACKs unknown non-optional ones); a route's
         max_stream_duration is its timeout, as istiod writes it for
         proxyless clients (gRFC A31).
    CDS  EDS clusters as they are, except: LEAST_REQUEST (Istio's default, which
         gRPC C-core NACKs) becomes the ordered policy list [least_request,
         round_robin] (gRFC A52: the first one the client implements);
         another lb_policy gRPC does not implement is served as ROUND_ROBIN;
         TLS transport sockets (their certificates come by SDS, which gRPC
         does not speak) are left out (see docs/control-plane.md,
         "Proxyless gRPC clients").
    EDS  as they are, each group of endpoints given a Locality (meshcore has
         none; gRPC NACKs a group without one) and load_balancing_weight 1 when
         it has none (gRPC drops localities without a weight).
    SDS  nothing (the trust bundle is for TLS contexts gRPC is not served).
"""
from __future__ import annotations

from envoy.config.core.v3 import base_pb2
from envoy.config.listener.v3 import listener_pb2

from meshcore import xds_types
from meshcore.xds import resources as xr

# HTTP filters gRPC's client implements (by the type of their config); anything else is dropped.
CLIENT_FILTERS = {xds_types.HTTP_FAULT, xds_types.ROUTER}
# Cluster.lb_policy values every gRPC client implements (A27 round robin, A42 ring hash).
LB_POLICIES = {"ROUND_ROBIN", "RING_HASH"}


def _filter_type(any_msg) -> str:
    """The config type of an HTTP filter's typed_config (inside a TypedStruct if it is one)."""
    name = any_msg.type_url.rsplit("/", 1)[-1]
    if name in (xds_types.TYPED_STRUCT, xds_types.UDPA_TYPED_STRUCT):
        inner = xds_types.unpack(any_msg)
        return inner.type_url.rsplit("/", 1)[-1]
    return name


def _api_listener(name: str, hcm):
    """A listener named `name` whose api_listener is a copy of hcm with only the filters gRPC knows."""
    from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2

    out = hcm_pb2.HttpConnectionManager(stat_prefix=hcm.stat_prefix)
    out.rds.CopyFrom(hcm.rds)
    filters = [f for f in hcm.http_filters if _filter_type(f.typed_config) in CLIENT_FILTERS]
    routers = [f for f in filters if _filter_type(f.typed_config) == xds_types.ROUTER]
    out.http_filters.extend([f for f in filters if f not in routers] + routers[-1:])
    lst = listener_pb2.Listener(name=name)
    lst.api_listener.api_listener.Pack(out)
    return lst


def _has_port(domain: str) -> bool:
    host, sep, port = domain.rpartition(":")
    return bool(sep and host and port.isdigit() and "*" not in host)


def _listeners(view) -> dict:
    routes = view.messages(xr.RDS)
    out = {}
    for lst in sorted(view.messages(xr.LDS).values(), key=lambda m: m.name):
        if lst.traffic_direction != base_pb2.OUTBOUND:
            continue
        for _, hcm in xr.hcm_filters(lst):
            if not hcm.HasField("rds"):
                continue
            rc = routes.get(hcm.rds.route_config_name)
            for vhost in rc.virtual_hosts if rc is not None else ():
                for domain in vhost.domains:
                    if _has_port(domain) and domain not in out:
                        out[domain] = _api_listener(domain, hcm)
    return out


def _routes(view) -> dict:
    out = {}
    for name, rc in view.messages(xr.RDS).items():
        for vhost in rc.virtual_hosts:
            _drop_unknown_configs(vhost.typed_per_filter_config)
            for route in vhost.routes:
                _drop_unknown_configs(route.typed_per_filter_config)
                if route.HasField("route"):
                    _stream_duration(route.route)
                    for wc in route.route.weighted_clusters.clusters:
                        _drop_unknown_configs(wc.typed_per_filter_config)
        out[name] = rc
    return out


def _stream_duration(action) -> None:
    """istiod's setTimeout for a proxyless gRPC node: max_stream_duration is the route's
    timeout (gRFC A31; the sidecar's max_grpc_timeout is for Envoy)."""
    action.ClearField("max_stream_duration")
    action.ClearField("max_grpc_timeout")
    if action.HasField("timeout"):
        action.max_stream_duration.max_stream_duration.CopyFrom(action.timeout)


def _drop_unknown_configs(configs) -> None:
    for key in [k for k, v in configs.items() if _filter_type(v) not in CLIENT_FILTERS]:
        del configs[key]


def _clusters(view) -> dict:
    from envoy.config.cluster.v3 import cluster_pb2

    out = {}
    for name, c in view.messages(xr.CDS).items():
        if c.lb_policy == cluster_pb2.Cluster.LEAST_REQUEST:
            _least_request_or_round_robin(c)
        elif cluster_pb2.Cluster.LbPolicy.Name(c.lb_policy) not in LB_POLICIES:
            c.lb_policy = cluster_pb2.Cluster.ROUND_ROBIN
        c.ClearField("transport_socket")
        c.ClearField("transport_socket_matches")
        out[name] = c
    return out


def _least_request_or_round_robin(c) -> None:
    """LEAST_REQUEST (Istio's default) as gRFC A52's ordered policy list: gRPC Go and Java
    implement least request (A48) and take it; gRPC C-core (Python, C++) NACKs lb_policy
    LEAST_REQUEST, and skips the list's first entry for round robin."""
    from envoy.extensions.load_balancing_policies.least_request.v3 import least_request_pb2
    from envoy.extensions.load_balancing_policies.round_robin.v3 import round_robin_pb2

    least = least_request_pb2.LeastRequest()
    if c.HasField("least_request_lb_config") and c.least_request_lb_config.HasField("choice_count"):
        least.choice_count.CopyFrom(c.least_request_lb_config.choice_count)
    c.ClearField("least_request_lb_config")
    c.lb_policy = c.ROUND_ROBIN
    for name, config in (("envoy.load_balancing_policies.least_request", least),
                         ("envoy.load_balancing_policies.round_robin", round_robin_pb2.RoundRobin())):
        policy = c.load_balancing_policy.policies.add()
        policy.typed_extension_config.name = name
        policy.typed_extension_config.typed_config.Pack(config)


def _endpoints(view) -> dict:
    out = {}
    for name, cla in view.messages(xr.EDS).items():
        for i, group in enumerate(cla.endpoints):
            if not group.HasField("locality"):
                group.locality.SetInParent()  # gRPC NACKs a group without one ("field not present")
                if i:
                    group.locality.sub_zone = str(i)  # and two groups of one locality in a priority
            if not group.load_balancing_weight.value:
                group.load_balancing_weight.value = 1
        out[name] = cla
    return out


def adapt(view):
    """The view (views.WorkloadView) as a proxyless gRPC client gets it."""
    view = view.replace(xr.LDS, _listeners(view))
    view = view.replace(xr.RDS, _routes(view))
    view = view.replace(xr.CDS, _clusters(view))
    view = view.replace(xr.EDS, _endpoints(view))
    return view.replace(xr.SDS, {})
