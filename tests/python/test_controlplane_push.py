"""Pushes: only the proxies whose resources changed, only the changed types,
in make-before-break order; delta removals and reconnects; bursts coalesced
while a lone change goes out at once; a bad config rejected while the last
good one is served. Counters and order are asserted, never timings."""
from __future__ import annotations

import controlplane_helpers as cph
import pytest
from support.ads_client import CDS, EDS, LDS, RDS, SDS, AdsClient, sidecar_node

mesh, control_plane = cph.mesh, cph.control_plane  # the fixtures
proxy_status, status, wait_for = cph.proxy_status, cph.status, cph.wait_for

ISLAND = """apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: loner, namespace: island}
spec:
  address: 127.0.0.1
  labels: {app: loner}
  serviceAccount: loner
"""
LEDGER = """apiVersion: v1
kind: Service
metadata: {name: %(name)s, namespace: default}
spec:
  selector: {app: %(name)s}
  ports: [{name: http, port: %(port)d}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: %(name)s, namespace: default}
spec:
  address: 127.0.0.1
  ports: {http: 1%(port)d}
  labels: {app: %(name)s}
  serviceAccount: %(name)s
"""
BAD_VS = """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bad, namespace: default}
spec:
  hosts: [checkout]
  http:
  - route:
    - destination: {host: checkout}
      weight: lots
"""


@pytest.fixture
def clients(control_plane):
    made = []

    def make(cp, workload, delta=False, types=(CDS, EDS, LDS, RDS, SDS), **kw):
        ns, name = workload.split("/")
        c = AdsClient(f"127.0.0.1:{cp.port}", kw.pop("node", None) or sidecar_node(ns, name), delta=delta, **kw)
        made.append(c)
        for t in types:
            c.subscribe(t, [] if t in (CDS, LDS) else ["*"])  # everything, as wildcards
        c.wait(lambda c: all(c.of_type(t) for t in types), what=f"{workload}: every type")
        wait_for(lambda: all(s["state"] == "SYNCED" for s in proxy_status(cp, workload)["types"].values()),
                 what=f"{workload} SYNCED")
        return c

    yield make
    for c in made:
        c.close()


def types_after(c, n):
    return [r.type_url for r in c.responses[n:]]


def test_endpoint_change_sends_eds_only_and_only_to_affected_proxies(control_plane, clients, mesh):
    mesh.edit("registry.yaml", "metadata: {name: checkout, namespace: default}",
              "metadata: {name: checkout, namespace: default, annotations: {networking.istio.io/exportTo: '.'}}")
    mesh.write("island.yaml", ISLAND)
    cp = control_plane()
    frontend = clients(cp, "default/frontend")
    batch = clients(cp, "default/batch", delta=True)
    loner = clients(cp, "island/loner")
    n_front, n_batch, n_loner = len(frontend.responses), len(batch.responses), len(loner.responses)
    pushes_before = status(cp)["counters"]["pushes"]
    mesh.edit("registry.yaml", "http=28081", "http=28091")  # checkout's inbound port: where peers dial it
    frontend.wait(lambda c: len(c.responses) > n_front, what="frontend's push")
    batch.wait(lambda c: len(c.responses) > n_batch, what="batch's push")
    wait_for(lambda: status(cp)["counters"]["pushes"].get("EDS", 0) >= pushes_before.get("EDS", 0) + 2,
             what="the pushes counted")
    assert types_after(frontend, n_front) == [EDS]
    assert types_after(batch, n_batch) == [EDS]
    assert len(loner.responses) == n_loner  # sees nothing of checkout: nothing sent
    assert proxy_status(cp, "island/loner")["pushes"] == 0
    counters = status(cp)["counters"]["pushes"]
    assert counters.get("CDS", 0) == pushes_before.get("CDS", 0)  # no type but EDS was pushed to anyone...
    assert counters.get("LDS", 0) == pushes_before.get("LDS", 0)  # ...no proxy of checkout is connected


def test_push_order_make_before_break_delta(control_plane, clients, mesh):
    cp = control_plane()
    c = clients(cp, "default/frontend", delta=True)
    n = len(c.responses)
    mesh.write("ledger.yaml", LEDGER % {"name": "ledger", "port": 9070})
    c.wait(lambda c: RDS in types_after(c, n), what="the push")
    assert types_after(c, n) == [CDS, EDS, LDS, RDS]  # clusters, endpoints, listeners, routes
    assert all(not r.removed_resources for r in c.responses[n:])
    n = len(c.responses)
    (mesh.root / "ledger.yaml").unlink()
    c.wait(lambda c: len(types_after(c, n)) >= 4, what="the removal")
    removed = [(r.type_url, list(r.removed_resources)) for r in c.responses[n:]]
    assert [t for t, _ in removed] == [LDS, RDS, CDS, EDS]  # referrers go first
    assert all(names for _, names in removed)
    assert not any(r.resources for r in c.responses[n:])
    assert "outbound|9070||ledger.default.svc.cluster.local" not in c.held[CDS]


def test_push_order_make_before_break_sotw(control_plane, clients, mesh):
    mesh.write("ledger.yaml", LEDGER % {"name": "ledger", "port": 9070})
    cp = control_plane()
    c = clients(cp, "default/frontend")
    n = len(c.responses)
    mesh.write("ledger.yaml", LEDGER % {"name": "audit", "port": 9071})  # one cluster out, one in
    c.wait(lambda c: types_after(c, n).count(EDS) == 2, what="both phases")
    # every type here both gains and loses a resource: first the new ones with the old kept
    # (updates in push order), then the final sets (removals: referrers first)
    assert types_after(c, n) == [CDS, EDS, LDS, RDS, LDS, RDS, CDS, EDS]
    first, last = c.responses[n], c.responses[n + 6]
    old, new = "outbound|9070||ledger.default.svc.cluster.local", "outbound|9071||audit.default.svc.cluster.local"

    def names(r):
        from envoy.config.cluster.v3 import cluster_pb2

        out = set()
        for a in r.resources:
            m = cluster_pb2.Cluster()
            a.Unpack(m)
            out.add(m.name)
        return out

    assert {old, new} <= names(first)  # the new cluster comes while the old one is still there
    assert new in names(last) and old not in names(last)  # removed once nothing points at it


def test_delta_reconnect_with_initial_resource_versions(control_plane, clients, mesh):
    cp = control_plane()
    c = clients(cp, "default/frontend", delta=True)
    have = {t: dict(v) for t, v in c.versions.items()}
    c.close()
    mesh.edit("registry.yaml", "http=28081", "http=28091")  # one endpoint set changes meanwhile
    wait_for(lambda: status(cp)["counters"]["rebuilds"] >= 2, what="the rebuild")
    again = AdsClient(f"127.0.0.1:{cp.port}", sidecar_node("default", "frontend"), delta=True)
    try:
        again.subscribe(CDS, initial={**have[CDS], "outbound|1||gone.default.svc.cluster.local": "0ld"})
        again.subscribe(EDS, ["*"], initial=have[EDS])
        again.wait(lambda c: c.of_type(CDS) and c.of_type(EDS), what="CDS and EDS")
        cds, eds = again.of_type(CDS)[0], again.of_type(EDS)[0]
        assert not cds.resources  # every cluster is there at the version the proxy has
        assert list(cds.removed_resources) == ["outbound|1||gone.default.svc.cluster.local"]
        changed = [r.name for r in eds.resources]
        assert changed == ["outbound|9080||checkout.default.svc.cluster.local"]
        assert have[EDS][changed[0]] != eds.resources[0].version
    finally:
        again.close()


def test_delta_unsubscribe_and_subscribe(control_plane, clients, mesh):
    cp = control_plane()
    c = clients(cp, "default/frontend", delta=True, types=(CDS,))
    one = sorted(c.held[CDS])[0]
    c.subscribe(EDS, [one])
    c.wait(lambda c: one in c.held[EDS], what="named EDS")
    c.unsubscribe(EDS, [one])
    wait_for(lambda: proxy_status(cp, "default/frontend")["types"]["EDS"]["subscribed"] == [], what="unsubscribed")
    n = len(c.responses)
    mesh.edit("registry.yaml", "http=28081", "http=28091")
    wait_for(lambda: status(cp)["counters"]["rebuilds"] >= 2, what="the rebuild")
    c.subscribe(CDS, ["*"])  # a request the server answers only if there is news: a fence
    wait_for(lambda: proxy_status(cp, "default/frontend")["config_version"] == cp.pusher.current.version,
             what="the push considered")
    assert EDS not in types_after(c, n)  # it no longer asks for it


def test_lone_change_is_pushed_without_waiting_for_the_window(control_plane, clients, mesh):
    cp = control_plane(window=3600)  # were a change to wait for the window, this test would time out
    c = clients(cp, "default/frontend")
    n = len(c.responses)
    mesh.edit("registry.yaml", "http=28081", "http=28091")
    c.wait(lambda c: EDS in types_after(c, n), timeout=20, what="the lone change")
    counters = status(cp)["counters"]
    assert counters["immediate_rebuilds"] == 1 and counters["coalesced_rebuilds"] == 0
    assert counters["push_latency"]["count"] >= 1


def test_burst_of_changes_is_coalesced(control_plane, clients, mesh):
    import time

    cp = control_plane(window=0.25)
    c = clients(cp, "default/frontend")
    n = len(c.responses)
    burst, port = 20, 28081
    for i in range(burst):
        mesh.edit("registry.yaml", f"http={port},", f"http={28100 + i},")
        port = 28100 + i
        time.sleep(0.02)  # twice the poll interval: the store sees the changes one by one
    c.wait(lambda c: port in endpoint_ports(c), timeout=20, what="the last change")
    wait_for(lambda: status(cp)["counters"]["rebuilds"] >= 2, what="rebuilds")
    counters = status(cp)["counters"]
    pushes = len(types_after(c, n))
    assert counters["changes_detected"] > pushes  # fewer pushes than changes...
    assert pushes < burst / 2, (pushes, counters)
    print(f"burst of {burst}: {pushes} pushes, counters {counters}")
    assert counters["merged_changes"] > 0
    assert counters["immediate_rebuilds"] >= 1  # ...and the first went out at once


def endpoint_ports(c) -> set:
    from envoy.config.endpoint.v3 import endpoint_pb2

    out = set()
    for a in c.held[EDS].values():
        cla = endpoint_pb2.ClusterLoadAssignment()
        a.Unpack(cla)
        out |= {e.endpoint.address.socket_address.port_value for lb in cla.endpoints for e in lb.lb_endpoints}
    return out


def test_invalid_config_rejected_and_last_good_served(control_plane, clients, mesh):
    cp = control_plane()
    c = clients(cp, "default/frontend")
    good = cp.pusher.current.version
    n = len(c.responses)
    mesh.write("bad.yaml", BAD_VS)
    wait_for(lambda: status(cp)["config"]["rejected"], what="the rejection")
    s = status(cp)
    rejected = s["config"]["rejected"][-1]
    assert any('weight: expected an integer, got "lots"' in r for r in rejected["reasons"])
    assert s["config"]["version"] == good and s["counters"]["rejected_versions"] >= 1
    assert len(c.responses) == n  # nothing pushed
    late = AdsClient(f"127.0.0.1:{cp.port}", sidecar_node("default", "checkout"))
    try:  # a proxy connecting now gets the last good config
        late.subscribe(CDS)
        late.wait(lambda c: c.of_type(CDS), what="the last good config")
        assert set(late.held[CDS]) == set(cp.pusher.current.views["default/checkout"].of(CDS))
    finally:
        late.close()
    (mesh.root / "bad.yaml").unlink()
    mesh.edit("registry.yaml", "http=28081", "http=28091")
    c.wait(lambda c: EDS in types_after(c, n), what="the next good change")
    assert status(cp)["config"]["version"] != good


def test_workload_removed_closes_its_streams(control_plane, clients, mesh):
    import grpc

    mesh.write("ledger.yaml", LEDGER % {"name": "ledger", "port": 9070})
    cp = control_plane()
    c = clients(cp, "default/ledger", types=(CDS,))
    (mesh.root / "ledger.yaml").unlink()
    err = c.wait_error()
    assert err.code() == grpc.StatusCode.NOT_FOUND and "default/ledger" in err.details()
