"""controlplane.views: per workload, what the control plane serves; per node,
its outbound listeners on the IP its node id names (several sidecars of one
machine each bind their own address, as the demo's do)."""
from __future__ import annotations

import pathlib

from envoy.config.listener.v3 import listener_pb2

from meshcore.controlplane import views
from meshcore.translate import Security, load_dir
from meshcore.xds import resources as xr

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"


def snapshot(directory="mesh"):
    return views.build("v1", load_dir(EXAMPLES / directory), Security(), "roots")


def listeners(view):
    out = {}
    for name, entry in view.of(xr.LDS).items():
        lst = listener_pb2.Listener()
        lst.ParseFromString(entry.any.value)
        out[name] = lst
    return out


def test_outbound_listeners_bind_the_nodes_ip():
    view = snapshot().views["default/frontend"]
    base = listeners(view)
    assert base and all(x.address.socket_address.address == "127.0.0.1" for x in base.values())
    mine = view.for_node("127.0.0.7")
    rebound = listeners(mine)
    assert sorted(rebound) == sorted(n.replace("127.0.0.1_", "127.0.0.7_") for n in base)
    assert all(x.address.socket_address.address == "127.0.0.7" for x in rebound.values())
    assert mine.of(xr.RDS) == view.of(xr.RDS) and mine.of(xr.CDS) == view.of(xr.CDS)  # shared, not copied
    assert mine.version != view.version
    assert view.for_node("127.0.0.7") is mine  # cached: "changed?" stays an identity test
    assert view.for_node("127.0.0.1") is view and view.for_node("") is view and view.for_node("pod-x") is view


def test_inbound_listeners_keep_their_address():
    view = snapshot("mesh-mtls").views["default/checkout"]
    before = {n: x for n, x in listeners(view).items() if n.startswith("inbound")}
    after = {n: x for n, x in listeners(view.for_node("127.0.0.9")).items() if n.startswith("inbound")}
    assert before and before == after


def test_an_unchanged_view_stays_the_same_object_across_versions():
    mesh = load_dir(EXAMPLES / "mesh")
    first = views.build("v1", mesh, Security(), "roots")
    second = views.build("v2", mesh, Security(), "roots", previous=first)
    ref = "default/frontend"
    assert second.views[ref] is first.views[ref]
    assert second.views[ref].for_node("127.0.0.7") is first.views[ref].for_node("127.0.0.7")
