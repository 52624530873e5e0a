"""Engine.set_weights and Engine.set_endpoints: the fast paths for a weights-only
or endpoints-only change (meshcore.incremental, engine/engine_incremental.c,
worker/snapshot_derive.c), checked with real requests through a real engine
to real upstreams: traffic follows the change, a bad change is refused with
the resource and field named and the running config stays, and the engine's
Bootstrap (what /config_dump shows) follows too.
"""
from collections import Counter

import pytest
from google.protobuf import json_format
from support import http as h

from meshcore.errors import ConfigError, EngineError


def split_doc(v1, v2, w1=1, w2=3, extra_clusters=()):
    split = {"weighted_clusters": {"clusters": [{"name": "v1", "weight": w1}, {"name": "v2", "weight": w2}]}}
    return h.bootstrap([h.hcm_listener("http", routes=[h.route("/", route=split, name="split")])],
                       [h.http_cluster("v1", [v1.port]), h.http_cluster("v2", [v2.port]), *extra_clusters])


def served(engine, n):
    resps = h.many(engine.listener_port("http"), n)
    assert Counter(r.status for r in resps) == {200: n}
    return Counter(r.header("x-backend") for r in resps)


def test_set_weights_moves_traffic_in_place(engine_factory, backend_factory):
    v1, v2 = backend_factory("v1"), backend_factory("v2")
    engine = engine_factory(concurrency=1, config=split_doc(v1, v2))  # one worker: exact smooth-WRR counts
    before = served(engine, 40)
    assert before == {"v1": 10, "v2": 30}
    assert engine.set_weights("split", {"v1": 3, "v2": 1}) == 1
    after = served(engine, 400)
    assert abs(after["v1"] - 300) <= 2 and abs(after["v2"] - 100) <= 2, after
    # The engine's Bootstrap says what runs, the next apply starts from it.
    from meshcore import xds_types

    hcm = engine.bootstrap.static_resources.listeners[0].filter_chains[0].filters[0].typed_config

    wcs = xds_types.unpack(hcm).route_config.virtual_hosts[0].routes[0].route.weighted_clusters.clusters
    assert [(c.name, c.weight.value) for c in wcs] == [("v1", 3), ("v2", 1)]
    engine.apply(engine.bootstrap)
    again = served(engine, 400)
    assert abs(again["v1"] - 300) <= 2, again


def test_set_weights_refuses_what_apply_refuses_and_keeps_running(engine_factory, backend_factory):
    v1, v2 = backend_factory("v1"), backend_factory("v2")
    doc = split_doc(v1, v2)
    engine = engine_factory(concurrency=1, config=doc)
    applied = engine.bootstrap.SerializeToString()
    at = 'listener "http": filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes[0]'
    with pytest.raises(ConfigError) as e:
        engine.set_weights("split", {"v1": 0, "v2": 3})
    assert str(e.value) == f"<dict>: {at}.route.weighted_clusters.clusters[0].weight: must be greater than 0"
    # The same value in a full apply fails with the same words.
    bad = split_doc(v1, v2, w1=0)
    with pytest.raises(ConfigError) as full:
        engine.apply(bad)
    assert str(full.value) == str(e.value)
    with pytest.raises(ConfigError, match='no route named "nope"'):
        engine.set_weights("nope", {"v1": 1, "v2": 1})
    with pytest.raises(ConfigError, match="splits between v1, v2; the weights name v1, v3"):
        engine.set_weights("split", {"v1": 1, "v3": 1})
    with pytest.raises(ConfigError, match="is not an integer"):
        engine.set_weights("split", {"v1": 1.5, "v2": 1})
    assert engine.bootstrap.SerializeToString() == applied
    assert served(engine, 40) == {"v1": 10, "v2": 30}


def test_set_endpoints_moves_a_cluster_and_shares_the_rest(engine_factory, backend_factory):
    v1, v2, v1b = backend_factory("v1"), backend_factory("v2"), backend_factory("v1b")
    engine = engine_factory(concurrency=2, config=split_doc(v1, v2, 1, 1))
    assert served(engine, 20) == {"v1": 10, "v2": 10}
    engine.set_endpoints("v1", [("127.0.0.1", v1b.port)])
    assert served(engine, 20) == {"v1b": 10, "v2": 10}
    st = engine.stats()
    assert st["cluster.v1.upstream_rq_total"] == 20  # the cluster's stats go on: same cluster, new endpoints
    la = engine.bootstrap.static_resources.clusters[0].load_assignment
    assert [e.endpoint.address.socket_address.port_value for e in la.endpoints[0].lb_endpoints] == [v1b.port]
    # Several changes in a row, then weights, then a full apply of the result.
    engine.set_endpoints("v1", [("127.0.0.1", v1.port, 1), ("127.0.0.1", v1b.port, 1)])
    engine.set_weights("split", {"v1": 1, "v2": 1})
    got = served(engine, 40)
    assert got["v1"] + got["v1b"] == 20 and got["v1"] > 0 and got["v1b"] > 0, got
    engine.apply(engine.bootstrap)
    got = served(engine, 40)
    assert got["v1"] + got["v1b"] == 20, got
    assert engine.host_outlier("v1", "127.0.0.1", v1b.port) == (False, 0)


def test_set_endpoints_refuses_bad_endpoints_and_keeps_running(engine_factory, backend_factory):
    v1, v2 = backend_factory("v1"), backend_factory("v2")
    engine = engine_factory(concurrency=1, config=split_doc(v1, v2, 1, 1))
    with pytest.raises(ConfigError) as e:
        engine.set_endpoints("v1", [("backend.local", 80)])
    assert str(e.value) == ('<dict>: cluster "v1": load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.'
                            'socket_address.address: "backend.local" is not an IP address (hostnames are not '
                            'supported)')
    with pytest.raises(ConfigError, match='cluster "v9": not in the running config'):
        engine.set_endpoints("v9", [("127.0.0.1", 80)])
    with pytest.raises(ConfigError, match="port 70000 is not an integer in 0..65535"):
        engine.set_endpoints("v1", [("127.0.0.1", 70000)])
    assert served(engine, 20) == {"v1": 10, "v2": 10}


def test_set_endpoints_takes_a_cluster_load_assignment(engine_factory, backend_factory):
    from envoy.config.endpoint.v3 import endpoint_pb2

    v1, v2, v3 = backend_factory("v1"), backend_factory("v2"), backend_factory("v3")
    engine = engine_factory(concurrency=1, config=split_doc(v1, v2, 1, 1))
    cla = json_format.ParseDict({"cluster_name": "v2", "endpoints": [{"lb_endpoints": [
        {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": v3.port}}}}]}]},
        endpoint_pb2.ClusterLoadAssignment())
    engine.set_endpoints("v2", cla)
    assert served(engine, 20) == {"v1": 10, "v3": 10}


def test_incremental_changes_need_a_running_config():
    import meshcore

    engine = meshcore.Engine(concurrency=1)
    with pytest.raises(EngineError, match="no config applied yet"):
        engine.set_weights("split", {"a": 1})
    with pytest.raises(EngineError, match="no config applied yet"):
        engine.set_endpoints("a", [])


def test_the_callers_bootstrap_is_never_modified(engine_factory, backend_factory):
    from envoy.config.bootstrap.v3 import bootstrap_pb2

    v1, v2 = backend_factory("v1"), backend_factory("v2")
    msg = json_format.ParseDict(split_doc(v1, v2), bootstrap_pb2.Bootstrap())
    before = msg.SerializeToString()
    engine = engine_factory(concurrency=1, config=msg)
    engine.set_weights("split", {"v1": 5, "v2": 5})
    engine.set_endpoints("v2", [("127.0.0.1", v1.port)])
    assert engine.bootstrap is not msg
    assert msg.SerializeToString() == before


# ---- the xDS client's fast path: an EDS-only update --------------------------------------


@pytest.mark.parametrize("mode", ["delta", "sotw"])
def test_an_eds_only_update_takes_the_endpoints_path(mode):
    from envoy.config.endpoint.v3 import endpoint_pb2
    from support.ads import ScriptedAds, workload_resources
    from support.net import wait_until

    from meshcore.config import validate_bootstrap
    from meshcore.xds import client as xc
    from meshcore.xds import resources as xr

    full, fast = [], []

    def apply(bootstrap):
        validate_bootstrap(bootstrap, "<xds>")
        full.append(bootstrap)

    def apply_endpoints(endpoints):
        for cla in endpoints.values():
            for lle in cla.endpoints:
                for lbe in lle.lb_endpoints:
                    if lbe.endpoint.address.socket_address.port_value == 0:
                        raise ConfigError('cluster "backend": endpoint port 0')
        fast.append(endpoints)

    res = workload_resources(h.simple([18080]))
    ads = ScriptedAds()
    client = xc.XdsClient(ads.target, xc.node("shop/checkout", "10.1.2.3"), apply, mode=mode,
                          backoff=xc.Backoff(0.05, 0.4), apply_endpoints=apply_endpoints).start()
    try:
        s = ads.next_stream()
        for t in (xr.CDS, xr.LDS):
            s.recv(t)
            s.send(s.response(t, res.of(t), "v1"))
        for t in (xr.EDS, xr.RDS):
            s.recv(t)
            s.send(s.response(t, res.of(t), "v1"))
        wait_until(lambda: client.ready, what="first config applied")
        applied_full = len(full)

        def cla(port):
            msg = endpoint_pb2.ClusterLoadAssignment(cluster_name="backend")
            msg.endpoints.add().lb_endpoints.add().endpoint.address.socket_address.port_value = port
            msg.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address = "127.0.0.1"
            return msg

        s.send(s.response(xr.EDS, {"backend": cla(18081)}, "v2"))
        wait_until(lambda: len(fast) == 1, what="the endpoints path")
        assert len(full) == applied_full  # no full apply for it
        port = fast[0]["backend"].endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value
        assert port == 18081
        # A refused endpoint list is NACKed with the reason; the running config stays.
        s.send(s.response(xr.EDS, {"backend": cla(0)}, "v3"))
        wait_until(lambda: client.types[xr.EDS].nacks == 1, what="the NACK")
        assert "port 0" in client.types[xr.EDS].last_nack["message"]
        assert len(fast) == 1 and len(full) == applied_full
    finally:
        client.stop()
        ads.stop()


def test_a_file_gone_since_the_last_apply_is_named_as_on_a_first_apply(tmp_path, engine_factory, backend_factory):
    """Resources validated by the previous apply are not walked again; a
    certificate file removed since is still reported by resource and field."""
    from envoy.config.bootstrap.v3 import bootstrap_pb2

    import meshcore
    from meshcore import ca

    authority = ca.CertificateAuthority.init(str(tmp_path / "ca"), "cluster.local", intermediate=False)
    files = ca.write_workload_dir(authority, str(tmp_path / "w"), "default", "w")
    v1 = backend_factory("v1")
    doc = h.simple([v1.port])
    doc["static_resources"]["clusters"][0]["transport_socket"] = {
        "name": "envoy.transport_sockets.tls", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
            "common_tls_context": {"tls_certificates": [{
                "certificate_chain": {"filename": files["cert-chain.pem"]},
                "private_key": {"filename": files["key.pem"]}}]}}}
    msg = json_format.ParseDict(doc, bootstrap_pb2.Bootstrap())
    engine = engine_factory(concurrency=1, config=msg)
    engine.apply(msg)  # validated before: not walked again
    (tmp_path / "w" / "key.pem").unlink()
    with pytest.raises(ConfigError) as again:
        engine.apply(msg)
    with pytest.raises(ConfigError) as first:
        meshcore.Engine(concurrency=1).apply(msg)
    assert str(again.value) == str(first.value)
    assert "private_key.filename: no such file" in str(again.value)


# ---- a full apply that only changes weights or endpoints --------------------------------


def as_message(doc):
    from envoy.config.bootstrap.v3 import bootstrap_pb2

    return json_format.ParseDict(doc, bootstrap_pb2.Bootstrap())


def test_an_apply_that_only_changes_weights_and_endpoints_skips_the_compile(engine_factory, backend_factory):
    v1, v2, v3 = backend_factory("v1"), backend_factory("v2"), backend_factory("v3")
    engine = engine_factory(concurrency=1, config=as_message(split_doc(v1, v2, 1, 3)))
    running = engine._changes  # replaced by every full compile
    assert served(engine, 40) == {"v1": 10, "v2": 30}
    moved = split_doc(v1, v2, 3, 1)
    moved["static_resources"]["clusters"][1] = h.http_cluster("v2", [v3.port])
    engine.apply(as_message(moved))
    assert engine._changes is running  # the set_weights / set_endpoints way
    got = served(engine, 400)
    assert abs(got["v1"] - 300) <= 2 and abs(got["v3"] - 100) <= 2, got
    assert engine.bootstrap == as_message(moved)
    # Anything else is a full apply.
    engine.apply(as_message(split_doc(v1, v2, 1, 1, extra_clusters=[h.http_cluster("v3", [v3.port])])))
    assert engine._changes is not running
    assert served(engine, 20) == {"v1": 10, "v2": 10}


def test_a_refused_change_reads_as_a_full_apply_refusal(engine_factory, backend_factory):
    v1, v2 = backend_factory("v1"), backend_factory("v2")
    engine = engine_factory(concurrency=1, config=as_message(split_doc(v1, v2)))
    bad = as_message(split_doc(v1, v2, w1=0))
    with pytest.raises(ConfigError) as incremental:
        engine.apply(bad)
    import meshcore

    with pytest.raises(ConfigError) as full:
        meshcore.Engine(concurrency=1).apply(bad)
    assert str(incremental.value) == str(full.value)
    bad_ep = split_doc(v1, v2)
    bad_ep["static_resources"]["clusters"][0]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"][
        "address"]["socket_address"]["address"] = "example.com"
    with pytest.raises(ConfigError) as incremental:
        engine.apply(as_message(bad_ep))
    with pytest.raises(ConfigError) as full:
        meshcore.Engine(concurrency=1).apply(as_message(bad_ep))
    assert str(incremental.value) == str(full.value)
    assert served(engine, 40) == {"v1": 10, "v2": 30}
