"""Who a proxy is: its xDS Node matched to a WorkloadEntry of the registry.

A proxy says who it is the way Istio's sidecars do (istio-agent fills both):

    node.id        sidecar~IP~NAME.NAMESPACE~NAMESPACE.svc.cluster.local
    node.metadata  NAMESPACE, WORKLOAD_NAME, LABELS (a map), SERVICE_ACCOUNT

Metadata comes first: NAMESPACE + WORKLOAD_NAME name the WorkloadEntry. A
node without them is read from its id (NAME is the WorkloadEntry's name,
NAMESPACE the first label of the DNS domain). A proxyless gRPC client's
bootstrap node may have any id (gRPC's own bootstrap generators write a UUID
or the pod's name): it must carry NAMESPACE and WORKLOAD_NAME in its
metadata. When the metadata also names SERVICE_ACCOUNT, it must be the
WorkloadEntry's (a node claiming another identity is refused, not served
someone else's view).

A node that cannot be read is refused with INVALID_ARGUMENT, one that names
no WorkloadEntry with NOT_FOUND; the message names the problem. Nothing is
ever answered with a silent empty config.
"""
from __future__ import annotations

from dataclasses import dataclass

import grpc

SIDECAR = "sidecar"
ID_SHAPE = "sidecar~IP~NAME.NAMESPACE~NAMESPACE.svc.cluster.local"


class NodeRefused(Exception):
    """A node the control plane does not serve: a gRPC status code and a message."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class NodeIdentity:
    """What the node said: the WorkloadEntry it names and where that came from."""

    node_id: str
    namespace: str
    name: str
    ip: str = ""
    service_account: str = ""
    labels: tuple = ()
    source: str = "metadata"  # "metadata" or "id"
    flavor: str = "meshcore"  # who is asking: MESHCORE, ENVOY or GRPC (see flavor_of)

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


def _metadata(node) -> dict:
    from google.protobuf import json_format

    if node is None or not node.HasField("metadata"):
        return {}
    return json_format.MessageToDict(node.metadata)


def parse_id(node_id: str) -> tuple[str, str, str]:
    """Istio's sidecar id -> (ip, name, namespace); ValueError naming what is wrong."""
    parts = node_id.split("~")
    if len(parts) != 4:
        raise ValueError(f"node id {node_id!r} is not {ID_SHAPE}")
    kind, ip, pod, domain = parts
    if kind != SIDECAR:
        raise ValueError(f"node id {node_id!r}: proxy type {kind!r} is not served (only {SIDECAR!r})")
    namespace = domain.split(".", 1)[0]
    if not namespace:
        raise ValueError(f"node id {node_id!r}: no namespace in the DNS domain {domain!r}")
    name = pod[: -len(namespace) - 1] if pod.endswith("." + namespace) else pod
    if not name:
        raise ValueError(f"node id {node_id!r}: no name before .{namespace}")
    return ip, name, namespace


MESHCORE, ENVOY, GRPC = "meshcore", "envoy", "grpc"


def flavor_of(node, meta: dict) -> str:
    """Which client the node is, by what it says of itself: node.user_agent_name
    ("envoy", "meshcore", gRPC's "gRPC Python"/"grpc-go"...) or Istio's proxyless
    marker (metadata GENERATOR "grpc"). The views adapt what they serve to it
    (views.WorkloadView.for_node)."""
    agent = (node.user_agent_name or "").lower() if node is not None else ""
    if str(meta.get("GENERATOR", "")).lower() == "grpc" or agent.startswith("grpc"):
        return GRPC
    if agent == "envoy":
        return ENVOY
    return MESHCORE


def identify(node) -> NodeIdentity:
    """The WorkloadEntry a Node names (not yet checked against the registry)."""
    if node is None or (not node.id and not node.HasField("metadata")):
        raise NodeRefused(grpc.StatusCode.INVALID_ARGUMENT,
                          "the first request carries no node: send node.id "
                          f"({ID_SHAPE}) or node.metadata NAMESPACE and WORKLOAD_NAME")
    meta = _metadata(node)
    labels = meta.get("LABELS") if isinstance(meta.get("LABELS"), dict) else {}
    sa = str(meta.get("SERVICE_ACCOUNT") or "")
    namespace, name = str(meta.get("NAMESPACE") or ""), str(meta.get("WORKLOAD_NAME") or "")
    if namespace and name:
        ip = ""
        try:
            ip = parse_id(node.id)[0]
        except ValueError:
            pass  # proxyless gRPC clients: any id
        return NodeIdentity(node.id, namespace, name, ip, sa, tuple(sorted(labels.items())), "metadata",
                            flavor_of(node, meta))
    try:
        ip, id_name, id_namespace = parse_id(node.id)
    except ValueError as e:
        missing = " and ".join(k for k, v in (("NAMESPACE", namespace), ("WORKLOAD_NAME", name)) if not v)
        raise NodeRefused(grpc.StatusCode.INVALID_ARGUMENT, f"{e}, and its metadata has no {missing}") from None
    if namespace and namespace != id_namespace:
        raise NodeRefused(grpc.StatusCode.INVALID_ARGUMENT,
                          f"node id {node.id!r} names namespace {id_namespace!r}, its metadata NAMESPACE {namespace!r}")
    return NodeIdentity(node.id, id_namespace, name or id_name, ip, sa, tuple(sorted(labels.items())), "id",
                        flavor_of(node, meta))


def resolve(identity: NodeIdentity, registry):
    """The registry's Workload for a node; NodeRefused if none (or another identity)."""
    workload = registry.workload(identity.ref)
    if workload is None:
        raise NodeRefused(grpc.StatusCode.NOT_FOUND,
                          f"node {identity.node_id!r}: no WorkloadEntry {identity.ref} in the mesh config "
                          f"(named by its {identity.source})")
    if identity.service_account and identity.service_account != (workload.service_account or "default"):
        raise NodeRefused(grpc.StatusCode.INVALID_ARGUMENT,
                          f"node {identity.node_id!r}: SERVICE_ACCOUNT {identity.service_account!r} is not "
                          f"{identity.ref}'s ({workload.service_account or 'default'!r})")
    return workload
