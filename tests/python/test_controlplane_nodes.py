"""Who a proxy is: Istio's node id and metadata, a proxyless gRPC client's
metadata, and the refusals (a gRPC status and a message naming the problem)."""
from __future__ import annotations

import grpc
import pytest
from controlplane_helpers import EXAMPLES
from envoy.config.core.v3 import base_pb2
from google.protobuf import json_format

from meshcore.controlplane import nodes
from meshcore.translate import Registry, load_dir


def node(id_="", **meta):
    n = base_pb2.Node(id=id_)
    if meta:
        json_format.ParseDict(meta, n.metadata)
    return n


@pytest.fixture(scope="module")
def registry():
    return Registry(load_dir(EXAMPLES / "mesh-mtls"))


def test_istio_sidecar_id_and_metadata(registry):
    ident = nodes.identify(node("sidecar~10.1.2.3~checkout.default~default.svc.cluster.local",
                                NAMESPACE="default", WORKLOAD_NAME="checkout", SERVICE_ACCOUNT="checkout",
                                LABELS={"app": "checkout"}))
    assert (ident.ref, ident.ip, ident.source) == ("default/checkout", "10.1.2.3", "metadata")
    assert nodes.resolve(ident, registry).name == "checkout"
    by_id = nodes.identify(node("sidecar~10.1.2.3~frontend.default~default.svc.cluster.local"))
    assert (by_id.ref, by_id.source) == ("default/frontend", "id")


def test_proxyless_grpc_node_any_id(registry):
    ident = nodes.identify(node("b7e2c1d0-uuid", NAMESPACE="default", WORKLOAD_NAME="frontend"))
    assert ident.ref == "default/frontend" and ident.ip == ""
    assert nodes.resolve(ident, registry).name == "frontend"


@pytest.mark.parametrize(("n", "code", "words"), [
    (None, grpc.StatusCode.INVALID_ARGUMENT, "carries no node"),
    (node("garbage"), grpc.StatusCode.INVALID_ARGUMENT, "NAMESPACE and WORKLOAD_NAME"),
    (node("router~1.2.3.4~gw.default~default.svc.cluster.local"), grpc.StatusCode.INVALID_ARGUMENT, "'router'"),
    (node("sidecar~1.2.3.4~x.default~default.svc.cluster.local", NAMESPACE="other"),
     grpc.StatusCode.INVALID_ARGUMENT, "metadata NAMESPACE 'other'"),
])
def test_unreadable_nodes_refused(n, code, words):
    with pytest.raises(nodes.NodeRefused) as e:
        nodes.identify(n)
    assert e.value.code == code and words in e.value.message


def test_unknown_workload_and_wrong_service_account(registry):
    with pytest.raises(nodes.NodeRefused) as e:
        nodes.resolve(nodes.identify(node("x", NAMESPACE="default", WORKLOAD_NAME="ghost")), registry)
    assert e.value.code == grpc.StatusCode.NOT_FOUND and "default/ghost" in e.value.message
    with pytest.raises(nodes.NodeRefused) as e:
        nodes.resolve(nodes.identify(node("x", NAMESPACE="default", WORKLOAD_NAME="frontend",
                                          SERVICE_ACCOUNT="checkout")), registry)
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT and "'checkout'" in e.value.message
