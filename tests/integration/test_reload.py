"""Config changes while traffic flows: SIGHUP, POST /reload and Engine.apply.

The claim under test (DESIGN.md): a config change never drops a connection.
Client threads run checked echo traffic the whole time (support.load) --
fresh short connections plus one long-lived connection each -- while the
config is rewritten and reloaded several times: weights change, an endpoint
is added and one removed, idle_timeout changes. Zero failures allowed.
"""
import socket

import pytest
from support import config as cfg
from support.net import connect, echo_exchange, is_refused, short_echo, wait_until

import meshcore


def backend_doc(endpoints, idle_timeout="300s", extra_listeners=()):
    return cfg.bootstrap(
        [cfg.tcp_proxy_listener("ingress", "backend", idle_timeout=idle_timeout), *extra_listeners],
        [cfg.static_cluster("backend", endpoints)])


def config_versions(e1, e2, e3):
    """The sequence of changes applied under load; the last one removes e1."""
    return [
        backend_doc([(e1.port, 3), (e2.port, 1)]),  # weights
        backend_doc([(e1.port, 3), (e2.port, 1), (e3.port, 2)]),  # an endpoint added
        backend_doc([(e1.port, 3), (e2.port, 1), (e3.port, 2)], idle_timeout="60s"),  # idle_timeout
        backend_doc([(e1.port, 1), (e2.port, 1), (e3.port, 1)], idle_timeout="45s"),  # weights again
        backend_doc([(e1.port, 1), (e2.port, 5), (e3.port, 1)], idle_timeout="30s"),
        backend_doc([(e2.port, 1), (e3.port, 1)], idle_timeout="30s"),  # e1 removed
    ]


def test_reload_under_load_loses_nothing_subprocess(proxy_factory, echo_factory, load_factory):
    e1, e2, e3 = echo_factory("e1"), echo_factory("e2"), echo_factory("e3")
    proxy = proxy_factory(backend_doc([e1.port, e2.port]))
    port = proxy.listener_port("ingress")
    load = load_factory(port, clients=4)

    versions = config_versions(e1, e2, e3)
    for i, doc in enumerate(versions):
        cfg.write_config(proxy.config_path, doc)
        if i % 2 == 0:
            proxy.reload_via_sighup()
        else:
            assert proxy.post("/reload") == (200, "reloaded\n")
        assert proxy.listener_port("ingress") == port  # the listen socket is kept
        load.progress(50)
        assert not load.failures, load.failures

    # The last reload (a POST: it returns once every worker has the new
    # snapshot) removed e1: once the connections begun before it are done,
    # new connections no longer reach it.
    load.settle()
    e1_accepted = e1.accepted
    e3_accepted = e3.accepted
    load.progress(100)
    load.stop()
    assert load.failures == []
    assert e1.accepted == e1_accepted
    assert e3.accepted > e3_accepted
    assert load.connections > 0 and load.long_lived_exchanges > 0

    st = proxy.stats()
    assert st["server.config_reload_success"] == len(versions)
    assert st["server.config_reload_rejected"] == 0
    assert st["cluster.backend.upstream_cx_connect_fail"] == 0
    assert st["tcp.ingress_tcp.idle_timeout"] == 0
    assert proxy.log().count("config reloaded from") == len(versions)


def test_engine_apply_under_load_loses_nothing(engine_factory, echo_factory, load_factory):
    e1, e2, e3 = echo_factory("e1"), echo_factory("e2"), echo_factory("e3")
    engine = engine_factory(config=backend_doc([e1.port, e2.port]))
    port = engine.listener_port("ingress")
    load = load_factory(port, clients=4)

    for doc in config_versions(e1, e2, e3):
        engine.apply(doc)
        assert engine.listener_port("ingress") == port
        load.progress(50)
        assert not load.failures, load.failures

    load.settle()
    e1_accepted = e1.accepted
    load.progress(100)
    load.stop()
    assert load.failures == []
    assert e1.accepted == e1_accepted  # apply() returned after every worker switched
    st = engine.stats()
    assert st["cluster.backend.upstream_cx_connect_fail"] == 0
    assert st["tcp.ingress_tcp.idle_timeout"] == 0


# ---- rejected reloads ---------------------------------------------------------------------

REDIS = {"name": "envoy.filters.network.redis_proxy",
         "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProxy",
                          "stat_prefix": "redis"}}


def test_bad_config_on_reload_is_rejected_and_old_one_keeps_serving(proxy_factory, echo_factory, load_factory):
    echo = echo_factory()
    good = backend_doc([echo.port])
    proxy = proxy_factory(good, name="mesh")
    port = proxy.listener_port("ingress")
    load = load_factory(port, clients=2)

    bad = backend_doc([echo.port])
    bad["static_resources"]["listeners"][0]["filter_chains"][0]["filters"].insert(0, REDIS)
    cfg.write_config(proxy.config_path, bad)
    message = ('mesh.yaml: listener "ingress": filter_chains[0].filters[0]: '
               "unsupported filter envoy.filters.network.redis_proxy")

    status, body = proxy.post("/reload")
    assert status == 400
    assert body == f"rejected: {message}\n"
    load.progress(10)
    assert proxy.stat("server.config_reload_rejected") == 1

    proxy.reload_via_sighup()  # the same bad file through SIGHUP
    load.progress(10)
    st = proxy.stats()
    assert st["server.config_reload_rejected"] == 2
    assert st["server.config_reload_success"] == 0
    assert f"config reload rejected, keeping the running config: {message}" in proxy.log()

    cfg.write_config(proxy.config_path, "static_resources: [not, a, mapping\n")
    status, body = proxy.post("/reload")
    assert status == 400 and body.startswith("rejected: mesh.yaml: line ")

    # Still the old config: same listener, same port, traffic intact.
    assert proxy.listener_port("ingress") == port
    assert short_echo(port, b"old config serving") == b"old config serving"
    load.progress(10)
    load.stop()
    assert load.failures == []

    cfg.write_config(proxy.config_path, good)
    assert proxy.post("/reload") == (200, "reloaded\n")
    st = proxy.stats()
    assert st["server.config_reload_rejected"] == 3
    assert st["server.config_reload_success"] == 1


def test_reload_with_address_in_use_is_rejected(proxy_factory, echo):
    proxy = proxy_factory(backend_doc([echo.port]), name="mesh")
    port = proxy.listener_port("ingress")

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        taken_port = taken.getsockname()[1]
        cfg.write_config(proxy.config_path, backend_doc(
            [echo.port], extra_listeners=[cfg.tcp_proxy_listener("second", "backend", port=taken_port)]))
        status, body = proxy.post("/reload")
    assert status == 400
    assert body == (f'rejected: mesh.yaml: listener "second": cannot listen on 127.0.0.1:{taken_port}: '
                    "Address already in use\n")
    assert proxy.get("/listeners")[1] == f"ingress::127.0.0.1:{port}\n"
    assert short_echo(port, b"unchanged") == b"unchanged"
    assert proxy.stat("server.config_reload_rejected") == 1
    # /config_dump still shows what runs, not the rejected file.
    assert "second" not in proxy.get("/config_dump")[1]


# ---- listeners added, removed, changed ---------------------------------------------------------


def test_listener_added_removed_and_changed_on_reload(proxy_factory, echo_factory):
    first, second = echo_factory("first"), echo_factory("second")
    clusters = [cfg.static_cluster("first", [first.port]), cfg.static_cluster("second", [second.port])]
    proxy = proxy_factory(cfg.bootstrap([cfg.tcp_proxy_listener("a", "first")], clusters))
    port_a = proxy.listener_port("a")

    # Added: listener b starts accepting.
    cfg.write_config(proxy.config_path, cfg.bootstrap(
        [cfg.tcp_proxy_listener("a", "first"), cfg.tcp_proxy_listener("b", "second")], clusters))
    assert proxy.post("/reload") == (200, "reloaded\n")
    port_b = proxy.listener_port("b")
    assert proxy.listener_port("a") == port_a
    assert short_echo(port_b, b"via b") == b"via b"
    assert second.accepted == 1

    # Removed: b refuses new connections; one opened before keeps working.
    held_b = connect(port_b)
    held_a = connect(port_a)
    try:
        assert echo_exchange(held_b, b"before") == b"before"
        assert echo_exchange(held_a, b"before") == b"before"
        cfg.write_config(proxy.config_path, cfg.bootstrap([cfg.tcp_proxy_listener("a", "first")], clusters))
        proxy.reload_via_sighup()
        assert is_refused(port_b)
        assert echo_exchange(held_b, b"after removal") == b"after removal"
        with pytest.raises(KeyError):
            proxy.listener_port("b")

        # Changed: a now routes to cluster "second"; its port stays, new
        # connections take the new route, the open one keeps its upstream.
        cfg.write_config(proxy.config_path, cfg.bootstrap([cfg.tcp_proxy_listener("a", "second")], clusters))
        assert proxy.post("/reload") == (200, "reloaded\n")
        assert proxy.listener_port("a") == port_a
        before = first.accepted, second.accepted
        assert short_echo(port_a, b"new route") == b"new route"
        assert (first.accepted, second.accepted) == (before[0], before[1] + 1)
        assert echo_exchange(held_a, b"old route") == b"old route"
        assert first.active == 1  # held_a's upstream connection, still to "first"

        # Changed address: a moves to 127.0.0.2; the old address refuses.
        moved = cfg.tcp_proxy_listener("a", "second", address="127.0.0.2")
        cfg.write_config(proxy.config_path, cfg.bootstrap([moved], clusters))
        assert proxy.post("/reload") == (200, "reloaded\n")
        assert is_refused(port_a)
        status, body = proxy.get("/listeners")
        assert body.startswith("a::127.0.0.2:")
        new_port = int(body.strip().rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.2", new_port), timeout=10) as s:
            assert echo_exchange(s, b"moved") == b"moved"
        assert echo_exchange(held_a, b"still old") == b"still old"
        assert echo_exchange(held_b, b"still here") == b"still here"
    finally:
        held_a.close()
        held_b.close()
    wait_until(lambda: proxy.stat(f"listener.127.0.0.1_{port_b}.downstream_cx_active") == 0,
               what="the connection on the removed listener to end")
    assert proxy.stat("server.config_reload_success") == 4


def test_engine_apply_rejects_bad_config_and_keeps_running(engine, echo):
    engine.apply(backend_doc([echo.port]))
    port = engine.listener_port("ingress")
    bad = backend_doc([echo.port])
    bad["static_resources"]["clusters"][0]["lb_policy"] = "MAGLEV"
    with pytest.raises(meshcore.ConfigError, match=r'cluster "backend": lb_policy: unsupported value MAGLEV'):
        engine.apply(bad)
    assert short_echo(port, b"still the old config") == b"still the old config"
