"""A workload's config as dynamic xDS resources, and back.

The translation (meshcore.translate) produces one Envoy Bootstrap per
workload with everything inline: route configurations inside their
http_connection_manager, endpoints inside their cluster, TLS secrets named
`default` and `ROOTCA` (Istio's SDS names). A control plane serves the same
config as the resources of five types, the way istiod does:

    LDS  Listener               each http_connection_manager refers to its routes by
                                name (rds over ADS) instead of holding them
    RDS  RouteConfiguration     the route configurations, by name
    CDS  Cluster                clusters with endpoints become type EDS (eds over ADS)
    EDS  ClusterLoadAssignment  their endpoints, by cluster name
    SDS  Secret                 ROOTCA, the trust bundle (public); `default` (the key
                                and certificate) never leaves the workload

TLS contexts name `default` and `ROOTCA` with Istio's sds_config: the local
agent's `sds-grpc` cluster, which is how a real Envoy gets them. A meshcore
proxy resolves both names itself (its key was made on its own machine).

`split` is the control plane's side; `materialize` is the proxy's: it puts
the pieces back into one Bootstrap of static resources, which the engine
applies exactly as in file mode (one compiler for every transport). Both are
pure functions over protobuf messages.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2

from meshcore import xds_types
from meshcore.identity import CERT_SECRET, ROOT_SECRET

LISTENER = "envoy.config.listener.v3.Listener"
ROUTE_CONFIGURATION = "envoy.config.route.v3.RouteConfiguration"
CLUSTER = "envoy.config.cluster.v3.Cluster"
CLUSTER_LOAD_ASSIGNMENT = "envoy.config.endpoint.v3.ClusterLoadAssignment"
SECRET = "envoy.extensions.transport_sockets.tls.v3.Secret"

LDS, RDS, CDS, EDS, SDS = (xds_types.type_url(n) for n in
                           (LISTENER, ROUTE_CONFIGURATION, CLUSTER, CLUSTER_LOAD_ASSIGNMENT, SECRET))
# Make before break: a cluster exists before a route points at it, endpoints
# before their cluster warms, listeners before their routes (xds_protocol.rst).
PUSH_ORDER = (CDS, EDS, LDS, RDS, SDS)
MESSAGE_CLASS = {LDS: listener_pb2.Listener, RDS: route_pb2.RouteConfiguration, CDS: cluster_pb2.Cluster,
                 EDS: endpoint_pb2.ClusterLoadAssignment, SDS: secret_pb2.Secret}
SHORT_NAME = {LDS: "LDS", RDS: "RDS", CDS: "CDS", EDS: "EDS", SDS: "SDS"}

# Istio's: the secrets come from the local agent over a Unix socket.
SDS_CLUSTER = "sds-grpc"


@dataclass
class Resources:
    """The resources of one workload, by type URL, then by name."""

    by_type: dict = field(default_factory=lambda: {t: {} for t in PUSH_ORDER})

    def add(self, type_url: str, name: str, message) -> None:
        self.by_type.setdefault(type_url, {})[name] = message

    def of(self, type_url: str) -> dict:
        return self.by_type.get(type_url, {})

    def names(self, type_url: str) -> set:
        return set(self.of(type_url))


def hcm_filters(listener):
    """(filter, its HttpConnectionManager unpacked) for every HCM in the listener's
    chains; a caller that changes the HCM packs it back with filter.typed_config.Pack."""
    for chain in listener.filter_chains:
        for f in chain.filters:
            if f.HasField("typed_config") and xds_types.is_a(f.typed_config, xds_types.HCM):
                yield f, xds_types.unpack(f.typed_config)


def _ads_source():
    return {"ads": {}, "resource_api_version": "V3"}


def _agent_sds_source():
    return {"api_config_source": {"api_type": "GRPC", "transport_api_version": "V3",
                                  "grpc_services": [{"envoy_grpc": {"cluster_name": SDS_CLUSTER}}]},
            "resource_api_version": "V3"}


def _walk_sds_configs(message, visit):
    """Calls visit(SdsSecretConfig) for every SDS secret config inside message,
    including those inside Any fields (transport sockets)."""
    from google.protobuf import any_pb2

    for fd, value in message.ListFields():
        if fd.message_type is None:
            continue
        repeated = fd.is_repeated if hasattr(fd, "is_repeated") else fd.label == fd.LABEL_REPEATED
        items = value if repeated else [value]
        if fd.message_type.GetOptions().map_entry:
            items = value.values() if fd.message_type.fields_by_name["value"].message_type else []
        for item in items:
            if fd.message_type.full_name == "envoy.extensions.transport_sockets.tls.v3.SdsSecretConfig":
                visit(item)
            elif isinstance(item, any_pb2.Any):
                try:
                    inner = xds_types.unpack(item)
                except xds_types.UnknownType:
                    continue  # config validation names it; nothing of ours is inside
                _walk_sds_configs(inner, visit)
                item.Pack(inner)
            else:
                _walk_sds_configs(item, visit)


def _point_secrets_at_agent(message):
    def visit(sds):
        if sds.name in (CERT_SECRET, ROOT_SECRET):
            from google.protobuf import json_format

            sds.sds_config.Clear()
            json_format.ParseDict(_agent_sds_source(), sds.sds_config)

    _walk_sds_configs(message, visit)


def _strip_sds_sources(message):
    _walk_sds_configs(message, lambda sds: sds.ClearField("sds_config"))


def split(bootstrap: bootstrap_pb2.Bootstrap, root_bundle_pem: str | None = None) -> Resources:
    """The control plane's side: a workload's Bootstrap as LDS/RDS/CDS/EDS/SDS resources."""
    from google.protobuf import json_format

    out = Resources()
    static = bootstrap.static_resources
    for listener in static.listeners:
        lst = listener_pb2.Listener()
        lst.CopyFrom(listener)
        for f, hcm in hcm_filters(lst):
            if not hcm.HasField("route_config"):
                continue
            rc = route_pb2.RouteConfiguration()
            rc.CopyFrom(hcm.route_config)
            out.add(RDS, rc.name, rc)
            hcm.ClearField("route_config")
            json_format.ParseDict({"config_source": _ads_source(), "route_config_name": rc.name}, hcm.rds)
            f.typed_config.Pack(hcm)
        _point_secrets_at_agent(lst)
        out.add(LDS, lst.name, lst)
    for cluster in static.clusters:
        c = cluster_pb2.Cluster()
        c.CopyFrom(cluster)
        if c.type == cluster_pb2.Cluster.STATIC and c.HasField("load_assignment"):
            cla = endpoint_pb2.ClusterLoadAssignment()
            cla.CopyFrom(c.load_assignment)
            cla.cluster_name = c.name
            out.add(EDS, c.name, cla)
            c.ClearField("load_assignment")
            c.type = cluster_pb2.Cluster.EDS
            json_format.ParseDict({"eds_config": _ads_source(), "service_name": c.name}, c.eds_cluster_config)
        _point_secrets_at_agent(c)
        out.add(CDS, c.name, c)
    if root_bundle_pem:
        secret = secret_pb2.Secret(name=ROOT_SECRET)
        secret.validation_context.trusted_ca.inline_string = root_bundle_pem
        out.add(SDS, ROOT_SECRET, secret)
    return out


class Incomplete(Exception):
    """The resources do not make a whole config yet (a route or endpoints named but not received)."""


def materialize(resources: Resources, secrets=(), base: bootstrap_pb2.Bootstrap | None = None,
                allow_missing_endpoints: bool = False) -> bootstrap_pb2.Bootstrap:
    """The proxy's side: one Bootstrap of static resources from what ADS delivered.

    secrets: this proxy's own Secrets (Envoy JSON dicts or messages), `default`
    and `ROOTCA`, resolved locally; they replace any received ones of the same
    name. base: a Bootstrap to start from (node, admin, stats config).
    Incomplete when a listener's routes or a cluster's endpoints are missing
    (unless allow_missing_endpoints: then such a cluster has none)."""
    from google.protobuf import json_format

    bootstrap = bootstrap_pb2.Bootstrap()
    if base is not None:
        bootstrap.CopyFrom(base)
        bootstrap.ClearField("static_resources")
        bootstrap.ClearField("dynamic_resources")
    static = bootstrap.static_resources
    routes = resources.of(RDS)
    for name in sorted(resources.of(LDS)):
        lst = static.listeners.add()
        lst.CopyFrom(resources.of(LDS)[name])
        for f, hcm in hcm_filters(lst):
            if not hcm.HasField("rds"):
                continue
            rc = routes.get(hcm.rds.route_config_name)
            if rc is None:
                raise Incomplete(f"listener {name}: route configuration {hcm.rds.route_config_name!r} "
                                 "not received")
            hcm.ClearField("rds")
            hcm.route_config.CopyFrom(rc)
            f.typed_config.Pack(hcm)
        _strip_sds_sources(lst)
    loads = resources.of(EDS)
    for name in sorted(resources.of(CDS)):
        c = static.clusters.add()
        c.CopyFrom(resources.of(CDS)[name])
        if c.type == cluster_pb2.Cluster.EDS:
            service = c.eds_cluster_config.service_name or c.name
            cla = loads.get(service)
            if cla is None and not allow_missing_endpoints:
                raise Incomplete(f"cluster {name}: endpoints ({service!r}) not received")
            c.ClearField("eds_cluster_config")
            c.type = cluster_pb2.Cluster.STATIC
            c.load_assignment.cluster_name = c.name
            if cla is not None:
                c.load_assignment.endpoints.extend(cla.endpoints)
                if cla.HasField("policy"):
                    c.load_assignment.policy.CopyFrom(cla.policy)
        _strip_sds_sources(c)
    local = {}
    for s in secrets:
        msg = s if isinstance(s, secret_pb2.Secret) else json_format.ParseDict(s, secret_pb2.Secret())
        local[msg.name] = msg
    received = {n: m for n, m in resources.of(SDS).items() if n not in local}
    for name in sorted({**received, **local}):
        static.secrets.add().CopyFrom(local.get(name) or received[name])
    return bootstrap
