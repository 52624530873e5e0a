"""The ADS server over real gRPC: state of the world and delta, ACK/NACK,
nonces, wildcard and named subscriptions, who a proxy is."""
from __future__ import annotations

import controlplane_helpers as cph
import grpc
import pytest
from envoy.service.discovery.v3 import discovery_pb2
from support.ads_client import CDS, EDS, LDS, RDS, SDS, AdsClient, sidecar_node

from meshcore.xds import resources as xr

mesh, control_plane = cph.mesh, cph.control_plane  # the fixtures
proxy_status, status, wait_for = cph.proxy_status, cph.status, cph.wait_for


@pytest.fixture
def client(control_plane):
    made = []

    def make(cp, workload="default/frontend", delta=False, **kw):
        ns, name = workload.split("/")
        node = kw.pop("node", None) or sidecar_node(ns, name)
        c = AdsClient(f"127.0.0.1:{cp.port}", node, delta=delta, **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def subscribe_all(c):
    """Subscribes as Envoy does: CDS and LDS wildcard, then EDS/RDS/SDS by the names they refer to."""
    c.subscribe(CDS)
    c.subscribe(LDS)
    c.wait(lambda c: c.of_type(CDS) and c.of_type(LDS), what="CDS and LDS")
    with c.lock:
        eds = sorted(n for n, a in c.held[CDS].items())
        rds = set()
        for a in c.held[LDS].values():
            rds |= _route_names(a)
    c.subscribe(EDS, eds)
    c.subscribe(RDS, sorted(rds))
    c.subscribe(SDS, ["ROOTCA", "default"])
    c.wait(lambda c: c.of_type(EDS) and c.of_type(RDS) and c.of_type(SDS), what="EDS, RDS, SDS")


def _route_names(any_listener) -> set:
    from meshcore import xds_types

    lst = xr.MESSAGE_CLASS[LDS]()
    any_listener.Unpack(lst)
    out = set()
    for chain in lst.filter_chains:
        hcm = xds_types.http_connection_manager(chain)
        if hcm is not None and hcm.HasField("rds"):
            out.add(hcm.rds.route_config_name)
    return out


@pytest.mark.parametrize("delta", [False, True], ids=["sotw", "delta"])
def test_subscribe_all_types_and_every_response_acked(control_plane, client, delta):
    cp = control_plane()
    c = client(cp, "default/checkout", delta=delta)
    subscribe_all(c)
    held = {xr.SHORT_NAME[t]: set(names) for t, names in c.held.items()}
    view = cp.pusher.current.views["default/checkout"]
    for t in xr.PUSH_ORDER:
        assert held[xr.SHORT_NAME[t]] == set(view.of(t)), t
    assert held["SDS"] == {"ROOTCA"}  # the workload's key is never served
    nonces = [r.nonce for r in c.responses]
    assert len(set(nonces)) == len(nonces)  # a fresh nonce per response
    p = wait_for(lambda: all(t["state"] == "SYNCED" for t in proxy_status(cp, "default/checkout")["types"].values())
                 and proxy_status(cp, "default/checkout"), what="all SYNCED")
    assert p["mode"] == ("delta" if delta else "sotw")
    assert set(p["types"]) == {"CDS", "EDS", "LDS", "RDS", "SDS"}
    for st in p["types"].values():
        assert st["acked_version"] == st["sent_version"]
    if delta:
        for r in c.responses:
            assert all(res.version for res in r.resources)  # per-resource versions


def test_sotw_nack_recorded_and_last_acked_kept(control_plane, client, mesh):
    cp = control_plane()
    refuse = {"on": False}
    c = client(cp, "default/frontend", nack=lambda r: "bad cluster: test refuses it"
               if refuse["on"] and r.type_url == CDS else None)
    subscribe_all(c)
    acked = c.acked[CDS]
    refuse["on"] = True
    mesh.edit("registry.yaml", "port: 9080", "port: 9081")
    wait_for(lambda: proxy_status(cp, "default/frontend")["types"]["CDS"]["state"] == "NACK", what="NACK")
    st = proxy_status(cp, "default/frontend")["types"]["CDS"]
    assert st["last_nack"]["message"] == "bad cluster: test refuses it"
    assert st["acked_version"] == acked  # the last ACKed stays what the proxy runs
    assert st["sent_version"] != acked
    assert status(cp)["counters"]["nacks"] >= 1


def test_stale_nonce_ignored_in_sotw(control_plane, client):
    cp = control_plane()
    c = client(cp)
    subscribe_all(c)
    n = len(c.responses)
    before = proxy_status(cp, "default/frontend")["types"]["CDS"]
    # a NACK naming a nonce that is not the last one sent: stale, so not recorded
    c.send_raw(discovery_pb2.DiscoveryRequest(type_url=CDS, response_nonce="not-a-nonce-we-sent",
                                              error_detail={"code": 3, "message": "stale"}))
    c.subscribe(CDS)  # a request that is answered: the stream has processed the stale one
    wait_for(lambda: proxy_status(cp, "default/frontend")["stale_nonces"] >= 1, what="stale counted")
    after = proxy_status(cp, "default/frontend")["types"]["CDS"]
    assert after["last_nack"] is None and after["nacks"] == 0
    assert after["acked_nonce"] == before["acked_nonce"]
    assert len(c.responses) == n


def test_wildcard_and_named(control_plane, client):
    cp = control_plane()
    c = client(cp, "default/checkout")
    c.subscribe(CDS)  # wildcard: every cluster
    c.wait(lambda c: c.of_type(CDS), what="CDS")
    clusters = cp.pusher.current.views["default/checkout"].of(CDS)
    assert set(c.held[CDS]) == set(clusters)
    one = sorted(clusters)[0]
    c.subscribe(EDS, [one])  # named: just that one
    c.wait(lambda c: c.of_type(EDS), what="EDS")
    assert set(c.held[EDS]) == {one}
    c.subscribe(RDS, [])  # a named type with no names asks for nothing
    c.subscribe(SDS, ["*"])  # an explicit wildcard
    c.wait(lambda c: c.of_type(SDS), what="SDS")
    assert not c.of_type(RDS)


@pytest.mark.parametrize("delta", [False, True], ids=["sotw", "delta"])
def test_resource_requested_before_it_exists_arrives_when_it_appears(control_plane, client, mesh, delta):
    cp = control_plane()
    c = client(cp, "default/frontend", delta=delta)
    subscribe_all(c)
    wanted = "outbound|9070||ledger.default.svc.cluster.local"
    c.subscribe(EDS, [wanted])
    wait_for(lambda: wanted in proxy_status(cp, "default/frontend")["types"]["EDS"]["subscribed"], what="sub")
    assert wanted not in c.held[EDS]
    mesh.write("ledger.yaml", LEDGER)
    c.wait(lambda c: wanted in c.held[EDS], what="the new endpoints")


LEDGER = """apiVersion: v1
kind: Service
metadata: {name: ledger, namespace: default}
spec:
  selector: {app: ledger}
  ports: [{name: http, port: 9070}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ledger, namespace: default}
spec:
  address: 127.0.0.1
  ports: {http: 18070}
  labels: {app: ledger}
  serviceAccount: ledger
"""


def test_unknown_node_refused_with_a_message(control_plane, client):
    cp = control_plane()
    c = client(cp, "default/nobody")
    c.subscribe(CDS)
    err = c.wait_error()
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert "default/nobody" in err.details() and "WorkloadEntry" in err.details()
    assert not c.responses
    from support.ads_client import sidecar_node as node_of

    from meshcore.controlplane.nodes import ID_SHAPE

    bad = client(cp, "default/x", node=node_of("default", "x", metadata=False).__class__(id="garbage"))
    bad.subscribe(CDS)
    err = bad.wait_error()
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert ID_SHAPE in err.details() and "garbage" in err.details()
    assert status(cp)["counters"]["nodes_refused"] == 2


def test_node_by_id_only_and_proxyless_metadata(control_plane, client):
    from envoy.config.core.v3 import base_pb2
    from google.protobuf import json_format

    cp = control_plane()
    by_id = client(cp, node=sidecar_node("default", "checkout", metadata=False))
    by_id.subscribe(CDS)
    by_id.wait(lambda c: c.of_type(CDS), what="served by id")
    grpc_node = base_pb2.Node(id="3f1c0b9e-proxyless")
    json_format.ParseDict({"NAMESPACE": "default", "WORKLOAD_NAME": "frontend"}, grpc_node.metadata)
    proxyless = client(cp, node=grpc_node)
    proxyless.subscribe(LDS)
    proxyless.wait(lambda c: c.of_type(LDS), what="served by metadata")
    workloads = {p["workload"] for p in status(cp)["proxies"]}
    assert workloads == {"default/checkout", "default/frontend"}


def test_status_ready_metrics_and_not_found(control_plane, client):
    import urllib.error
    import urllib.request

    cp = control_plane()
    c = client(cp)
    subscribe_all(c)
    base = f"http://127.0.0.1:{cp.status_port}"
    with urllib.request.urlopen(base + "/ready", timeout=5) as r:
        assert r.status == 200
    with urllib.request.urlopen(base + "/metrics", timeout=5) as r:
        text = r.read().decode()
    assert 'meshcore_cp_responses{type="CDS"} 1' in text
    assert "meshcore_cp_connected_proxies 1" in text
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(base + "/nope", timeout=5)
    assert e.value.code == 404
