"""Proxyless gRPC: a real grpcio client with an `xds:///checkout:7070` target
and a GRPC_XDS_BOOTSTRAP file pointing at `meshcore control-plane` resolves
and balances by the control plane's resources, with no sidecar anywhere: two
grpcio server versions behind a VirtualService weighted split, 90/10 then
edited to 50/50 while the client runs (docs/control-plane.md, "Proxyless
gRPC clients")."""
from __future__ import annotations

import json
import time
import urllib.request

import pytest
from support.grpc_xds import VersionServer, XdsClient, write_bootstrap
from support.mtls import service, workload_entry, write_mesh
from support.net import wait_until

from meshcore import ca
from meshcore.demo_mesh import ControlPlane

PORT = 7070  # the Service's port: a name in the route tables, bound by no one
TARGET = f"checkout:{PORT}"


def virtual_service(v1: int, v2: int) -> str:
    return ("apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
            "metadata: {name: checkout, namespace: default}\n"
            "spec:\n  hosts: [checkout]\n  http:\n  - route:\n"
            f"    - {{destination: {{host: checkout, subset: v1}}, weight: {v1}}}\n"
            f"    - {{destination: {{host: checkout, subset: v2}}, weight: {v2}}}\n")


DESTINATION_RULE = ("apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
                    "metadata: {name: checkout, namespace: default}\n"
                    "spec:\n  host: checkout\n  subsets:\n"
                    "  - {name: v1, labels: {version: v1}}\n  - {name: v2, labels: {version: v2}}\n")


def syncz(status: str) -> dict:
    with urllib.request.urlopen(f"http://{status}/debug/syncz", timeout=5) as r:
        return json.loads(r.read())


def grpc_node(status: str) -> dict | None:
    return next((p for p in syncz(status)["proxies"] if p["node_id"] == "proxyless-1"), None)


def synced(node: dict | None) -> bool:
    return bool(node) and set(node["types"]) >= {"LDS", "RDS", "CDS", "EDS"} and all(
        t["state"] == "SYNCED" for t in node["types"].values())


@pytest.fixture
def servers():
    started = [VersionServer("v1"), VersionServer("v2")]
    yield started
    for s in started:
        s.stop()


@pytest.fixture
def mesh_and_cp(tmp_path, servers):
    v1, v2 = servers
    mesh = write_mesh(
        tmp_path / "mesh",
        service("checkout", {"grpc": PORT}, {"app": "checkout"}),
        # no inbound-ports annotation: no sidecar, the endpoints are the servers' own ports
        workload_entry("checkout-v1", "checkout", {"app": "checkout", "version": "v1"}, {"grpc": v1.port}),
        workload_entry("checkout-v2", "checkout", {"app": "checkout", "version": "v2"}, {"grpc": v2.port}),
        workload_entry("frontend", "frontend", {"app": "frontend"}),
        DESTINATION_RULE)
    (mesh / "vs.yaml").write_text(virtual_service(90, 10))
    ca.CertificateAuthority.init(str(tmp_path / "ca"), "cluster.local")
    cp = ControlPlane(str(mesh), str(tmp_path / "ca"), str(tmp_path)).start(time.monotonic() + 30)
    try:
        yield mesh, cp.xds, cp.status
    finally:
        cp.stop()


def test_proxyless_grpc_client_follows_a_weighted_split(tmp_path, servers, mesh_and_cp):
    mesh, xds, status = mesh_and_cp
    bootstrap = write_bootstrap(tmp_path / "bootstrap.json", xds, "default", "frontend")
    client = XdsClient(TARGET, bootstrap, tmp_path / "client.log")
    try:
        first = client.ready()
        assert first["failed"] == 0, (first, (tmp_path / "client.log").read_text())

        # what gRPC asked for and ACKed: the API listener by name, its routes, clusters, endpoints
        node = wait_until(lambda: synced(n := grpc_node(status)) and n, timeout=15, what="the gRPC node SYNCED")
        assert node["workload"] == "default/frontend" and node["mode"] == "sotw"
        assert node["types"]["LDS"]["subscribed"] == [TARGET]
        assert node["types"]["RDS"]["subscribed"] == [str(PORT)]
        assert all(t["nacks"] == 0 and t["last_nack"] is None for t in node["types"].values()), node

        out = client.calls(1000)
        assert out["failed"] == 0, out
        counts = out["counts"]
        assert counts.get("v1", 0) + counts.get("v2", 0) == 1000
        assert 60 <= counts.get("v2", 0) <= 140, counts  # 10% of 1000, +-4.2 standard deviations
        print("90/10:", counts)

        # the edit reaches the running client: RDS pushed, ACKed
        rds_before = node["types"]["RDS"]["acked_version"]
        (mesh / ".vs.tmp").write_text(virtual_service(50, 50))
        (mesh / ".vs.tmp").rename(mesh / "vs.yaml")
        node = wait_until(lambda: synced(n := grpc_node(status)) and n["types"]["RDS"]["acked_version"] != rds_before
                          and n, timeout=15, what="the 50/50 routes ACKed")
        out = client.calls(1000)
        assert out["failed"] == 0, out
        assert 420 <= out["counts"].get("v2", 0) <= 580, out["counts"]  # 50% +-5 standard deviations
        print("50/50:", out["counts"])
        assert node["types"]["RDS"]["pushes"] >= 1 and node["types"]["EDS"]["nacks"] == 0
        assert syncz(status)["counters"]["nacks"] == 0
    finally:
        assert client.close() == 0, (tmp_path / "client.log").read_text()
