"""Outbound listeners per service port, virtual hosts and their domains, TCP
ports, visibility, the workload (proxy node), and a translation the engine
accepts."""
import pathlib
import socket

import pytest
import yaml
from google.protobuf import json_format

import meshcore
from meshcore import xds_types
from meshcore.config import validate_bootstrap
from meshcore.translate import check, load_dir, load_texts, sidecar_config, translate
from meshcore.translate import findings as fnd

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "mesh"


def doc(kind, name, namespace, spec, api="networking.istio.io/v1", **meta):
    return yaml.safe_dump({"apiVersion": api, "kind": kind,
                           "metadata": {"name": name, "namespace": namespace, **meta}, "spec": spec})


def service(name, namespace, ports, selector=None, **meta):
    return doc("Service", name, namespace, {"selector": selector or {"app": name}, "ports": ports}, api="v1", **meta)


def entry(name, namespace, address="10.0.0.1", **labels):
    return doc("WorkloadEntry", name, namespace, {"address": address, "labels": labels or {"app": name}})


CLIENT = entry("client", "default", "10.9.9.9", app="client")


def translation(*docs, workload="default/client", address="127.0.0.1"):
    mesh = load_texts({f"f{i}.yaml": d for i, d in enumerate(docs)})
    assert [str(f) for f in mesh.findings if f.is_error] == []
    return translate(mesh, workload, address)


def good(*docs, **kw):
    t = translation(*docs, **kw)
    assert [str(f) for f in t.errors] == []
    validate_bootstrap(t.bootstrap)
    return t.bootstrap


def listener(b, port):
    return next(ls for ls in b.static_resources.listeners if ls.address.socket_address.port_value == port)


def filter_config(ls):
    """The terminal filter's config (Istio's istio.stats filter comes before a tcp_proxy)."""
    return xds_types.unpack(ls.filter_chains[0].filters[-1].typed_config)


def test_one_listener_per_distinct_port_on_the_outbound_address():
    b = good(CLIENT, service("a", "default", [{"name": "http", "port": 9080}]),
             service("b", "default", [{"name": "http-web", "port": 9080}, {"name": "grpc", "port": 9090}]),
             service("db", "data", [{"name": "tcp-pg", "port": 5432}]), address="127.0.0.2")
    assert [(ls.name, ls.address.socket_address.address, ls.address.socket_address.port_value)
            for ls in b.static_resources.listeners] == [
        ("127.0.0.2_5432", "127.0.0.2", 5432), ("127.0.0.2_9080", "127.0.0.2", 9080),
        ("127.0.0.2_9090", "127.0.0.2", 9090)]
    hcm = filter_config(listener(b, 9080))
    assert hcm.stat_prefix == "outbound_127.0.0.2_9080"
    assert hcm.route_config.name == "9080"
    assert [vh.name for vh in hcm.route_config.virtual_hosts] == [
        "a.default.svc.cluster.local:9080", "b.default.svc.cluster.local:9080"]
    tp = filter_config(listener(b, 5432))
    assert tp.DESCRIPTOR.full_name == xds_types.TCP_PROXY
    assert tp.cluster == "outbound|5432||db.data.svc.cluster.local"


def test_domains_short_name_only_from_the_same_namespace():
    b = good(CLIENT, service("a", "default", [{"name": "http", "port": 80}]),
             service("c", "shop", [{"name": "http", "port": 80}]))
    vhs = {vh.name: list(vh.domains) for vh in filter_config(listener(b, 80)).route_config.virtual_hosts}
    assert vhs["a.default.svc.cluster.local:80"] == [
        "a.default.svc.cluster.local", "a.default.svc.cluster.local:80", "a.default.svc", "a.default.svc:80",
        "a.default", "a.default:80", "a", "a:80"]
    assert vhs["c.shop.svc.cluster.local:80"] == [
        "c.shop.svc.cluster.local", "c.shop.svc.cluster.local:80", "c.shop.svc", "c.shop.svc:80",
        "c.shop", "c.shop:80"]


def test_the_workloads_own_service_is_included_as_istio():
    b = good(CLIENT, service("client", "default", [{"name": "http", "port": 8080}]))
    assert [ls.name for ls in b.static_resources.listeners] == ["127.0.0.1_8080"]


def test_tcp_routes_and_idle_timeout():
    b = good(CLIENT, service("db", "default", [{"name": "tcp", "port": 5432}]),
             entry("db-1", "default", "10.0.0.5", app="db", version="v1"),
             doc("DestinationRule", "db", "default", {
                 "host": "db", "trafficPolicy": {"connectionPool": {"tcp": {"idleTimeout": "30m"}}},
                 "subsets": [{"name": "v1", "labels": {"version": "v1"}},
                             {"name": "v2", "labels": {"version": "v2"}}]}),
             doc("VirtualService", "db", "default", {"hosts": ["db"], "tcp": [
                 {"match": [{"port": 5432}],
                  "route": [{"destination": {"host": "db", "subset": "v1"}, "weight": 80},
                            {"destination": {"host": "db", "subset": "v2"}, "weight": 20}]}]}))
    tp = filter_config(listener(b, 5432))
    assert [(c.name, c.weight) for c in tp.weighted_clusters.clusters] == [
        ("outbound|5432|v1|db.default.svc.cluster.local", 80), ("outbound|5432|v2|db.default.svc.cluster.local", 20)]
    assert tp.idle_timeout.seconds == 1800


def test_two_tcp_services_on_one_port_conflict():
    t = translation(CLIENT, service("a", "default", [{"name": "tcp", "port": 3306}]),
                    service("b", "default", [{"name": "tcp", "port": 3306}]))
    [err] = t.errors
    assert (err.code, err.resource, err.path) == (fnd.PORT_CONFLICT, "Service default/b", "spec.ports")
    assert "TCP port 3306 is used by a.default.svc.cluster.local, b.default.svc.cluster.local" in err.message
    assert filter_config(listener(t.bootstrap, 3306)).cluster == "outbound|3306||a.default.svc.cluster.local"


def test_http_and_tcp_services_on_one_port_conflict():
    t = translation(CLIENT, service("web", "default", [{"name": "http", "port": 8000}]),
                    service("raw", "default", [{"name": "tcp", "port": 8000}]))
    [err] = t.errors
    assert err.code == fnd.PORT_CONFLICT and err.resource == "Service default/raw"
    assert "port 8000 is HTTP for web.default.svc.cluster.local and TCP for raw.default.svc.cluster.local" \
        in err.message


def test_undeclared_protocol_is_tcp_with_a_warning_udp_is_skipped():
    t = translation(CLIENT, service("x", "default", [{"name": "web", "port": 8080},
                                                     {"name": "dns", "port": 53, "protocol": "UDP"}]))
    assert [ls.name for ls in t.bootstrap.static_resources.listeners] == ["127.0.0.1_8080"]
    assert filter_config(listener(t.bootstrap, 8080)).DESCRIPTOR.full_name == xds_types.TCP_PROXY
    messages = [f.message for f in t.findings]
    assert any("declares no protocol" in m for m in messages)
    assert any("UDP ports are not proxied" in m for m in messages)


def test_app_protocol_picks_http():
    b = good(CLIENT, service("x", "default", [{"name": "web", "port": 8080, "appProtocol": "http"}]))
    assert filter_config(listener(b, 8080)).DESCRIPTOR.full_name == xds_types.HCM


def test_export_to_limits_visibility():
    b = good(entry("client", "shop", app="client"),
             service("public", "default", [{"name": "http", "port": 80}]),
             service("private", "default", [{"name": "http", "port": 81}],
                     annotations={"networking.istio.io/exportTo": "."}),
             doc("ServiceEntry", "ext", "default", {"hosts": ["ext.corp"], "ports": [{"number": 82, "name": "http"}],
                                                    "resolution": "STATIC", "endpoints": [{"address": "192.0.2.1"}],
                                                    "exportTo": ["default", "billing"]}),
             workload="shop/client")
    assert [ls.name for ls in b.static_resources.listeners] == ["127.0.0.1_80"]
    assert [c.name for c in b.static_resources.clusters] == ["outbound|80||public.default.svc.cluster.local"]


def test_virtual_service_export_to_dot():
    vs = doc("VirtualService", "a", "default", {"hosts": ["a"], "exportTo": ["."], "http": [
        {"route": [{"destination": {"host": "a"}}], "timeout": "3s"}]})
    a = service("a", "default", [{"name": "http", "port": 80}])
    same = good(CLIENT, a, vs)
    other = good(entry("client", "shop"), a, vs, workload="shop/client")

    def timeout(b):
        return filter_config(listener(b, 80)).route_config.virtual_hosts[0].routes[0].route.timeout.seconds

    assert (timeout(same), timeout(other)) == (3, 0)


def test_virtual_service_hosts_outside_the_registry_on_port_80_only():
    b = good(CLIENT, service("web", "default", [{"name": "http", "port": 80}, {"name": "http-alt", "port": 8080}]),
             doc("VirtualService", "legacy", "default", {"hosts": ["legacy.example.com"], "http": [
                 {"route": [{"destination": {"host": "web"}}]}]}))
    vh80 = [vh.name for vh in filter_config(listener(b, 80)).route_config.virtual_hosts]
    vh8080 = [vh.name for vh in filter_config(listener(b, 8080)).route_config.virtual_hosts]
    assert "legacy.example.com:80" in vh80 and "legacy.example.com:8080" not in vh8080


def test_wildcard_hosts_most_specific_virtual_service_wins():
    svc = service("api", "default", [{"name": "http", "port": 80}])
    wide = doc("VirtualService", "wide", "default", {"hosts": ["*.svc.cluster.local"], "http": [
        {"route": [{"destination": {"host": "api"}}], "timeout": "1s"}]})
    narrow = doc("VirtualService", "narrow", "default", {"hosts": ["*.default.svc.cluster.local"], "http": [
        {"route": [{"destination": {"host": "api"}}], "timeout": "2s"}]})
    b = good(CLIENT, svc, wide, narrow)
    [vh] = filter_config(listener(b, 80)).route_config.virtual_hosts
    assert vh.routes[0].route.timeout.seconds == 2


def test_unknown_workload():
    t = translation(CLIENT, workload="default/nobody")
    [err] = t.errors
    assert err.code == fnd.UNKNOWN_WORKLOAD and "no WorkloadEntry default/nobody" in err.message


def test_unknown_destination_gets_a_blackhole_cluster_and_check_reports_it():
    docs = [CLIENT, service("a", "default", [{"name": "http", "port": 80}]),
            doc("VirtualService", "a", "default", {"hosts": ["a"], "http": [
                {"route": [{"destination": {"host": "gone"}}]}]})]
    b = good(*docs)
    blackhole = next(c for c in b.static_resources.clusters if c.name == "outbound|80||gone.default.svc.cluster.local")
    assert list(blackhole.load_assignment.endpoints) == []
    found = check(load_texts({f"f{i}.yaml": d for i, d in enumerate(docs)}))
    assert [(f.code, f.path) for f in found if f.is_error] == [
        (fnd.UNKNOWN_HOST, "spec.http[0].route[0].destination.host")]


def test_node_identity():
    b = good(CLIENT)
    assert (b.node.id, b.node.cluster) == ("sidecar~10.9.9.9~client.default~default.svc.cluster.local",
                                          "client.default")


def test_the_seed_example_translates_and_is_clean():
    mesh = load_dir(EXAMPLE)
    assert check(mesh) == []
    t = translate(mesh, "default/frontend")
    validate_bootstrap(t.bootstrap)
    d = json_format.MessageToDict(t.bootstrap, preserving_proto_field_name=True)
    assert [ls["name"] for ls in d["static_resources"]["listeners"]] == ["127.0.0.1_9080"]
    assert [c["name"] for c in d["static_resources"]["clusters"]] == [
        "outbound|9080||checkout.default.svc.cluster.local", "outbound|9080|v1|checkout.default.svc.cluster.local",
        "outbound|9080|v2|checkout.default.svc.cluster.local"]
    bootstrap, warnings = sidecar_config(EXAMPLE, "default/frontend")
    assert warnings == [] and bootstrap == t.bootstrap


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("policy", [
    {},
    {"trafficPolicy": {"loadBalancer": {"consistentHash": {"httpHeaderName": "x-user"}},
                       "connectionPool": {"tcp": {"maxConnections": 10}, "http": {"idleTimeout": "5s",
                                                                                 "maxRequestsPerConnection": 3}},
                       "outlierDetection": {"consecutiveGatewayErrors": 2, "baseEjectionTime": "10m"}}},
])
def test_the_engine_accepts_translations(policy):
    port, tcp_port = free_port(), free_port()
    docs = [CLIENT, service("web", "default", [{"name": "http", "port": port}]),
            service("db", "default", [{"name": "tcp", "port": tcp_port}]),
            entry("web-1", "default", "127.0.0.1", app="web", version="v1"),
            doc("DestinationRule", "web", "default", {"host": "web", **policy,
                                                      "subsets": [{"name": "v1", "labels": {"version": "v1"}},
                                                                  {"name": "none", "labels": {"version": "v0"}}]}),
            doc("VirtualService", "web", "default", {"hosts": ["web"], "http": [
                {"match": [{"uri": {"prefix": "/f"}}], "fault": {"abort": {"httpStatus": 418,
                                                                           "percentage": {"value": 100}}},
                 "route": [{"destination": {"host": "web", "subset": "v1"}}]},
                {"match": [{"withoutHeaders": {"x-a": {"exact": "1"}}}], "mirror": {"host": "web"},
                 "route": [{"destination": {"host": "web", "subset": "v1"}, "weight": 50},
                           {"destination": {"host": "web", "subset": "none"}, "weight": 50}]},
                {"directResponse": {"status": 204}}]})]
    b = good(*docs)
    engine = meshcore.Engine(concurrency=1)
    engine.start()
    try:
        engine.apply(b, "translated")
        assert sorted(p for _, _, p in engine.listeners()) == sorted([port, tcp_port])
    finally:
        engine.stop()
