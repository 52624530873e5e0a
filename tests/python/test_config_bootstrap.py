"""Bootstrap YAML loading and the supported-subset checks (meshcore.config).

Every test parses real YAML text. Most start from examples/l4.yaml, change
one thing (as a dict, dumped back to YAML) and check the error names the
file, the resource and the field path.
"""

import copy
import pathlib
import textwrap

import pytest
import yaml
from envoy.config.bootstrap.v3 import bootstrap_pb2

from meshcore.config import (
    SUPPORTED,
    duration_ms,
    listener_address,
    load_bootstrap,
    parse_bootstrap,
    validate_bootstrap,
)
from meshcore.errors import ConfigError

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "l4.yaml"
TCP_PROXY = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
CONN_LIMIT = "type.googleapis.com/envoy.extensions.filters.network.connection_limit.v3.ConnectionLimit"


def example_doc():
    return yaml.safe_load(EXAMPLE.read_text())


def listener(doc, i=0):
    return doc["static_resources"]["listeners"][i]


def cluster(doc, i=0):
    return doc["static_resources"]["clusters"][i]


def filters(doc):
    return listener(doc)["filter_chains"][0]["filters"]


def tcp_proxy(doc):
    return filters(doc)[-1]["typed_config"]


def lb_endpoints(doc):
    return cluster(doc)["load_assignment"]["endpoints"][0]["lb_endpoints"]


def parse_changed(change):
    """The example with change(doc) applied, dumped to YAML and parsed as l4.yaml."""
    doc = example_doc()
    change(doc)
    return parse_bootstrap(yaml.safe_dump(doc, sort_keys=False), "l4.yaml")


def error_of(change):
    with pytest.raises(ConfigError) as info:
        parse_changed(change)
    return str(info.value)


def error_of_text(text):
    with pytest.raises(ConfigError) as info:
        parse_bootstrap(textwrap.dedent(text), "l4.yaml")
    return str(info.value)


# ---- what loads ----------------------------------------------------------------------


def test_example_loads():
    bs = load_bootstrap(EXAMPLE)
    assert isinstance(bs, bootstrap_pb2.Bootstrap)
    (ls,) = bs.static_resources.listeners
    assert ls.name == "ingress"
    assert listener_address(ls) == ("127.0.0.1", 10000)
    assert bs.admin.address.socket_address.port_value == 15000
    (cl,) = bs.static_resources.clusters
    assert cl.name == "backend"
    assert duration_ms(cl, "connect_timeout", 5000) == 1000
    eps = cl.load_assignment.endpoints[0].lb_endpoints
    assert [e.endpoint.address.socket_address.port_value for e in eps] == [18081, 18082, 18083]
    assert [e.load_balancing_weight.value for e in eps] == [0, 2, 0]  # 0 = unset = weight 1


def test_example_typed_configs_resolve():
    from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2

    bs = load_bootstrap(str(EXAMPLE))
    flts = bs.static_resources.listeners[0].filter_chains[0].filters
    assert [f.typed_config.type_url for f in flts] == [CONN_LIMIT, TCP_PROXY]
    tp = tcp_proxy_pb2.TcpProxy()
    assert flts[1].typed_config.Unpack(tp)
    assert tp.cluster == "backend"
    assert tp.max_connect_attempts.value == 3
    assert duration_ms(tp, "idle_timeout", 3_600_000) == 300_000


def test_camel_case_keys_work():
    text = """
    staticResources:
      listeners:
      - name: ingress
        address: {socketAddress: {address: "::1", portValue: 10000}}
        enableReusePort: true
        tcpBacklogSize: 128
        filterChains:
        - filters:
          - name: envoy.filters.network.tcp_proxy
            typedConfig:
              "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
              statPrefix: ingress_tcp
              weightedClusters: {clusters: [{name: backend, weight: 1}]}
              idleTimeout: 0.5s
              maxConnectAttempts: 2
      clusters:
      - name: backend
        connectTimeout: 0.25s
        lbPolicy: LEAST_REQUEST
        loadAssignment:
          clusterName: backend
          endpoints:
          - lbEndpoints:
            - endpoint: {address: {socketAddress: {address: "::1", portValue: 18081}}}
              loadBalancingWeight: 5
    """
    bs = parse_bootstrap(textwrap.dedent(text))
    ls = bs.static_resources.listeners[0]
    assert listener_address(ls) == ("::1", 10000)
    assert ls.enable_reuse_port.value is True
    cl = bs.static_resources.clusters[0]
    assert duration_ms(cl, "connect_timeout", 5000) == 250
    assert cl.load_assignment.endpoints[0].lb_endpoints[0].load_balancing_weight.value == 5


def test_weighted_clusters_ok():
    def change(doc):
        doc["static_resources"]["clusters"].append(copy.deepcopy(cluster(doc)))
        cluster(doc, 1)["name"] = "canary"
        tp = tcp_proxy(doc)
        del tp["cluster"]
        tp["weighted_clusters"] = {
            "clusters": [{"name": "backend", "weight": 9}, {"name": "canary", "weight": 1}]
        }

    bs = parse_changed(change)
    assert [c.name for c in bs.static_resources.clusters] == ["backend", "canary"]


def test_defaults_and_minimal_config():
    text = """
    static_resources:
      listeners:
      - name: l
        address: {socket_address: {address: 0.0.0.0, port_value: 0}}
        filter_chains:
        - filters:
          - name: tcp
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
              stat_prefix: s
              cluster: empty
      clusters:
      - name: empty
    """
    bs = parse_bootstrap(textwrap.dedent(text))
    cl = bs.static_resources.clusters[0]
    assert cl.type == cl.STATIC and cl.lb_policy == cl.ROUND_ROBIN
    assert duration_ms(cl, "connect_timeout", 5000) == 5000  # unset: Envoy's default
    assert not cl.load_assignment.endpoints  # a cluster with no endpoints is allowed


def test_node_admin_access_log_accepted():
    def change(doc):
        doc["node"]["metadata"] = {"team": "a", "nested": {"x": [1, 2]}}
        doc["admin"]["access_log_path"] = "/dev/null"
        doc["admin"]["access_log"] = [
            {
                "name": "envoy.access_loggers.file",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                    "path": "/tmp/admin.log",
                },
            }
        ]

    bs = parse_changed(change)
    assert bs.node.metadata["team"] == "a"


def test_load_bootstrap_names_file_by_basename(tmp_path):
    path = tmp_path / "mesh.yaml"
    path.write_text("static_resources:\n  listeners: {}\n")
    with pytest.raises(ConfigError) as info:
        load_bootstrap(path)
    assert (
        str(info.value) == "mesh.yaml: top level: static_resources.listeners: expected a list, got a mapping"
    )


def test_load_bootstrap_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="nothere.yaml: cannot read"):
        load_bootstrap(tmp_path / "nothere.yaml")


# ---- YAML and document shape -------------------------------------------------------------


def test_yaml_syntax_error_reports_line():
    msg = error_of_text(
        """\
        static_resources:
          listeners:
          - name: ingress
            address: {socket_address: {address: 127.0.0.1, port_value: 10000}
          clusters: []
        """
    )
    assert msg.startswith("l4.yaml: line 5: ")


def test_yaml_duplicate_key_is_an_error():
    msg = error_of_text(
        """\
        static_resources:
          clusters:
          - name: a
            connect_timeout: 1s
            connect_timeout: 2s
        """
    )
    assert msg == 'l4.yaml: line 5: duplicate key "connect_timeout"'


def test_snake_and_camel_of_the_same_field_is_an_error():
    msg = error_of(lambda d: cluster(d).update(lbPolicy="RANDOM"))
    assert msg == 'l4.yaml: cluster "backend": "lb_policy" is given twice (as "lb_policy" and "lbPolicy")'


@pytest.mark.parametrize("text, what", [("- a\n- b\n", "got a list"), ("42\n", "got 42"), ("", "empty")])
def test_document_must_be_a_mapping(text, what):
    msg = error_of_text(text)
    assert msg.startswith("l4.yaml: top level: ") and what in msg


def test_name_given_for_text_is_used():
    with pytest.raises(ConfigError, match=r"^<string>: top level: "):
        parse_bootstrap("[]")


# ---- filters --------------------------------------------------------------------------


def test_redis_proxy_rejected_with_exact_message():
    msg = error_of_text(
        """\
        static_resources:
          listeners:
          - name: ingress
            address: {socket_address: {address: 127.0.0.1, port_value: 10000}}
            filter_chains:
            - filters:
              - name: envoy.filters.network.redis_proxy
                typed_config:
                  "@type": type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProxy
                  stat_prefix: redis
        """
    )
    expected = 'l4.yaml: listener "ingress": filter_chains[0].filters[0]: '
    assert msg == expected + "unsupported filter envoy.filters.network.redis_proxy"


def test_unknown_type_url_names_filter_and_type():
    url = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxyy"
    msg = error_of(lambda d: tcp_proxy(d).update({"@type": url}))
    assert msg == (
        f'l4.yaml: listener "ingress": filter_chains[0].filters[1]: '
        f"unsupported filter envoy.filters.network.tcp_proxy ({url})"
    )


def test_http_connection_manager_is_a_terminal_filter_now():
    # Supported since the HTTP data plane (test_config_http.py); an HCM without
    # a route table is told what is missing rather than "unsupported filter".
    def change(doc):
        filters(doc)[1] = {
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager."
                "v3.HttpConnectionManager",
                "stat_prefix": "http",
            },
        }

    msg = error_of(change)
    assert msg == (
        'l4.yaml: listener "ingress": filter_chains[0].filters[1].typed_config.route_config: '
        "required (an inline RouteConfiguration; rds is not supported)"
    )


def test_unknown_field_inside_tcp_proxy_reports_path():
    def change(doc):
        tcp_proxy(doc)["clusterr"] = tcp_proxy(doc).pop("cluster")

    msg = error_of(change)
    assert msg == (
        'l4.yaml: listener "ingress": filter_chains[0].filters[1].typed_config: '
        'unknown field "clusterr" (did you mean "cluster"?)'
    )


def test_unsupported_tcp_proxy_field():
    msg = error_of(lambda d: tcp_proxy(d).update(hash_policy=[{"source_ip": {}}]))
    assert msg.startswith('l4.yaml: listener "ingress": filter_chains[0].filters[1].typed_config: ')
    assert 'unsupported field "hash_policy"' in msg


def test_filter_without_typed_config():
    msg = error_of(lambda d: filters(d)[1].pop("typed_config"))
    assert msg.startswith('l4.yaml: listener "ingress": filter_chains[0].filters[1]: ')
    assert "envoy.filters.network.tcp_proxy has no typed_config" in msg


def test_typed_config_without_type():
    msg = error_of(lambda d: tcp_proxy(d).pop("@type"))
    assert msg == 'l4.yaml: listener "ingress": filter_chains[0].filters[1].typed_config: "@type" is required'


def test_connection_limit_must_come_before_tcp_proxy():
    msg = error_of(lambda d: filters(d).reverse())
    assert msg.startswith('l4.yaml: listener "ingress": filter_chains[0].filters[0]: ')
    assert "must be the last filter" in msg


def test_chain_must_end_in_terminal_filter():
    msg = error_of(lambda d: filters(d).pop())
    assert msg.startswith('l4.yaml: listener "ingress": filter_chains[0].filters[0]: ')
    assert "must be terminal" in msg


def test_same_filter_twice():
    msg = error_of(lambda d: filters(d).insert(1, copy.deepcopy(filters(d)[0])))
    assert msg.startswith('l4.yaml: listener "ingress": filter_chains[0].filters[1]: ')
    assert "envoy.filters.network.connection_limit is already at filters[0]" in msg


@pytest.mark.parametrize(
    "change, path, text",
    [
        (lambda tc: tc.update(delay="1s"), "typed_config", 'unsupported field "delay"'),
        (lambda tc: tc.pop("stat_prefix"), "typed_config.stat_prefix", "required"),
        (lambda tc: tc.pop("max_connections"), "typed_config.max_connections", "required"),
        (lambda tc: tc.update(max_connections=0), "typed_config.max_connections", "greater than 0"),
    ],
)
def test_connection_limit_rules(change, path, text):
    msg = error_of(lambda d: change(filters(d)[0]["typed_config"]))
    assert msg.startswith(f'l4.yaml: listener "ingress": filter_chains[0].filters[0].{path}: ')
    assert text in msg


@pytest.mark.parametrize(
    "change, path, text",
    [
        (lambda tp: tp.update(stat_prefix=""), "typed_config.stat_prefix", "required"),
        (lambda tp: tp.pop("cluster"), "typed_config", "one of cluster or weighted_clusters is required"),
        (
            lambda tp: tp.update(weighted_clusters={"clusters": [{"name": "backend", "weight": 1}]}),
            "typed_config",
            '"cluster" and "weighted_clusters" cannot both be set',
        ),
        (lambda tp: tp.update(max_connect_attempts=0), "typed_config.max_connect_attempts", "at least 1"),
        (
            lambda tp: tp.update(max_connect_attempts="x"),
            "typed_config.max_connect_attempts",
            'expected an integer, got "x"',
        ),
        (lambda tp: tp.update(idle_timeout=300), "typed_config.idle_timeout", "expected a duration"),
        (lambda tp: tp.update(idle_timeout="-1s"), "typed_config.idle_timeout", "must not be negative"),
    ],
)
def test_tcp_proxy_rules(change, path, text):
    msg = error_of(lambda d: change(tcp_proxy(d)))
    assert msg.startswith(f'l4.yaml: listener "ingress": filter_chains[0].filters[1].{path}: ')
    assert text in msg


@pytest.mark.parametrize(
    "weighted, path, text",
    [
        ({"clusters": []}, "weighted_clusters.clusters", "at least one cluster is required"),
        (
            {"clusters": [{"name": "backend", "weight": 0}]},
            "weighted_clusters.clusters[0].weight",
            "must be greater than 0",
        ),
        (
            {"clusters": [{"name": "backend", "weigth": 1}]},
            "weighted_clusters.clusters[0]",
            'unknown field "weigth" (did you mean "weight"?)',
        ),
        (
            {"clusters": [{"name": "backend", "weight": 1}, {"name": "nope", "weight": 1}]},
            "weighted_clusters.clusters[1].name",
            'unknown cluster "nope"',
        ),
    ],
)
def test_weighted_cluster_rules(weighted, path, text):
    def change(doc):
        tp = tcp_proxy(doc)
        del tp["cluster"]
        tp["weighted_clusters"] = weighted

    msg = error_of(change)
    assert msg == f'l4.yaml: listener "ingress": filter_chains[0].filters[1].typed_config.{path}: {text}'


def test_unknown_cluster_reference():
    msg = error_of(lambda d: tcp_proxy(d).update(cluster="nope"))
    expected = 'l4.yaml: listener "ingress": filter_chains[0].filters[1].typed_config.cluster: '
    assert msg == expected + 'unknown cluster "nope"'


def test_unknown_cluster_reference_suggests_close_name():
    msg = error_of(lambda d: tcp_proxy(d).update(cluster="backnd"))
    assert msg.endswith('unknown cluster "backnd" (did you mean "backend"?)')


# ---- listeners ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, path, text",
    [
        (
            lambda ls: ls.update(listener_filters=[{"name": "tls_inspector"}]),
            "listener_filters[0]",
            "listener filter tls_inspector has no typed_config",
        ),
        (
            lambda ls: ls["filter_chains"][0].update(filter_chain_match={"destination_port": 1}),
            "filter_chains[0].filter_chain_match",
            'unsupported field "destination_port" (supported: transport_protocol)',
        ),
        (
            lambda ls: ls["filter_chains"][0].update(transport_socket={"name": "tls"}),
            "filter_chains[0].transport_socket",
            "transport socket has no typed_config",
        ),
        (
            lambda ls: ls["filter_chains"].append(copy.deepcopy(ls["filter_chains"][0])),
            "filter_chains",
            "two filter chains match the same transport_protocol",
        ),
        (
            lambda ls: ls.update(filter_chains=[]),
            "filter_chains",
            "required",
        ),
        (lambda ls: ls.update(filter_chains={}), "filter_chains", "expected a list, got a mapping"),
        (lambda ls: ls.pop("address"), "address", "required"),
        (
            lambda ls: ls["address"]["socket_address"].update(port_value=70000),
            "address.socket_address.port_value",
            "70000 is out of range (0..65535)",
        ),
        (
            lambda ls: ls["address"]["socket_address"].update(port_value="http"),
            "address.socket_address.port_value",
            'expected an integer, got "http"',
        ),
        (
            lambda ls: ls["address"]["socket_address"].update(address="localhost"),
            "address.socket_address.address",
            "not an IP address",
        ),
        (
            lambda ls: ls["address"]["socket_address"].update(protocol="UDP"),
            "address.socket_address.protocol",
            "unsupported value UDP (supported: TCP)",
        ),
        (
            lambda ls: ls["address"]["socket_address"].update(resolver_name="dns"),
            "address.socket_address",
            'unsupported field "resolver_name"',
        ),
        (
            lambda ls: ls["address"]["socket_address"].update(named_port="http", port_value=None),
            "address.socket_address",
            'unsupported field "named_port"',
        ),
        (lambda ls: ls.update(address={"pipe": {"path": "/tmp/s"}}), "address", 'unsupported field "pipe"'),
        (
            lambda ls: ls.update(per_connection_buffer_limit_bytes=1024),
            "per_connection_buffer_limit_bytes",
            "1024 is below 16384",
        ),
    ],
)
def test_listener_rules(change, path, text):
    msg = error_of(lambda d: change(listener(d)))
    prefix = 'l4.yaml: listener "ingress": ' + (f"{path}: " if path else "")
    assert msg.startswith(prefix), msg
    assert text in msg


def test_listener_without_name_is_named_by_index():
    msg = error_of(lambda d: listener(d).pop("name"))
    assert msg == "l4.yaml: static_resources.listeners[0]: name: required"


def test_duplicate_listener_names():
    def change(doc):
        doc["static_resources"]["listeners"].append(copy.deepcopy(listener(doc)))
        listener(doc, 1)["address"]["socket_address"]["port_value"] = 10001

    msg = error_of(change)
    assert msg.startswith('l4.yaml: listener "ingress": name: duplicate listener name')


def test_duplicate_listener_addresses():
    def change(doc):
        doc["static_resources"]["listeners"].append(copy.deepcopy(listener(doc)))
        listener(doc, 1)["name"] = "second"

    msg = error_of(change)
    assert msg == 'l4.yaml: listener "second": address: 127.0.0.1:10000 is already used by listener "ingress"'


def test_duplicate_ipv6_addresses_compare_as_addresses():
    def change(doc):
        doc["static_resources"]["listeners"].append(copy.deepcopy(listener(doc)))
        listener(doc)["address"]["socket_address"]["address"] = "::1"
        listener(doc, 1)["address"]["socket_address"]["address"] = "0:0::1"
        listener(doc, 1)["name"] = "second"

    assert error_of(change).endswith('address: [0:0::1]:10000 is already used by listener "ingress"')


def test_port_zero_listeners_may_share_an_address():
    def change(doc):
        doc["static_resources"]["listeners"].append(copy.deepcopy(listener(doc)))
        listener(doc, 1)["name"] = "second"
        for ls in doc["static_resources"]["listeners"]:
            ls["address"]["socket_address"]["port_value"] = 0

    assert len(parse_changed(change).static_resources.listeners) == 2


# ---- clusters -------------------------------------------------------------------------


def test_lb_policy_maglev_rejected_with_exact_message():
    msg = error_of(lambda d: cluster(d).update(lb_policy="MAGLEV"))
    expected = 'l4.yaml: cluster "backend": lb_policy: '
    assert msg == expected + "unsupported value MAGLEV (supported: ROUND_ROBIN, LEAST_REQUEST, RANDOM, RING_HASH)"


def test_misspelt_field_in_lb_endpoint_with_exact_message():
    def change(doc):
        ep = lb_endpoints(doc)[1]
        ep["weigth"] = ep.pop("load_balancing_weight")

    msg = error_of(change)
    assert (
        msg
        == 'l4.yaml: cluster "backend": load_assignment.endpoints[0].lb_endpoints[1]: unknown field "weigth"'
    )


@pytest.mark.parametrize(
    "change, path, text",
    [
        (lambda c: c.update(type="STRICT_DNS"), "type", "unsupported value STRICT_DNS (supported: STATIC)"),
        (lambda c: c.update(type="NOPE"), "type", "unsupported value NOPE (supported: STATIC)"),
        (lambda c: c.update(connect_timeout="0s"), "connect_timeout", "must be greater than 0"),
        (lambda c: c.update(connect_timeout="soon"), "connect_timeout", "expected a duration"),
        (lambda c: c.update(common_lb_config={}), "", 'unsupported field "common_lb_config"'),
        (lambda c: c["load_assignment"].pop("cluster_name"), "load_assignment.cluster_name", "required"),
        (
            lambda c: c["load_assignment"]["endpoints"][0].update(locality={"zone": "a"}),
            "load_assignment.endpoints[0]",
            'unsupported field "locality"',
        ),
        (
            lambda c: c["load_assignment"]["endpoints"][0].update(priority=1),
            "load_assignment.endpoints[0]",
            'unsupported field "priority"',
        ),
        (
            lambda c: c["load_assignment"]["endpoints"][0].update(load_balancing_weight=2),
            "load_assignment.endpoints[0]",
            'unsupported field "load_balancing_weight"',
        ),
        (
            lambda c: c["load_assignment"]["endpoints"][0]["lb_endpoints"][1].update(load_balancing_weight=0),
            "load_assignment.endpoints[0].lb_endpoints[1].load_balancing_weight",
            "at least 1",
        ),
        (
            lambda c: c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"].update(
                hostname="h"
            ),
            "load_assignment.endpoints[0].lb_endpoints[0].endpoint",
            'unsupported field "hostname"',
        ),
        (
            lambda c: c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"][
                "socket_address"
            ].update(port_value=0),
            "load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value",
            "required",
        ),
        (
            lambda c: c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"][
                "socket_address"
            ].update(address="backend.local"),
            "load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address",
            '"backend.local" is not an IP address',
        ),
    ],
)
def test_cluster_rules(change, path, text):
    msg = error_of(lambda d: change(cluster(d)))
    prefix = 'l4.yaml: cluster "backend": ' + (f"{path}: " if path else "")
    assert msg.startswith(prefix), msg
    assert text in msg


def test_duplicate_cluster_names():
    def change(doc):
        doc["static_resources"]["clusters"].append(copy.deepcopy(cluster(doc)))

    msg = error_of(change)
    expected = 'l4.yaml: cluster "backend": name: '
    assert msg == expected + "duplicate cluster name (static_resources.clusters[0] has it too)"


# ---- top level ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, label, text",
    [
        (lambda d: d.update(dynamic_resources={}), "top level", 'unsupported field "dynamic_resources"'),
        (
            lambda d: d.update(layered_runtime={"layers": []}),
            "top level",
            'unsupported field "layered_runtime"',
        ),
        (
            lambda d: d.update(stats_sinks=[{"name": "statsd"}]),
            "top level",
            'unsupported field "stats_sinks"',
        ),
        (
            lambda d: d["static_resources"].update(secrets=[{"name": "s"}]),
            "top level: static_resources.secrets[0]",
            "a secret must hold tls_certificate or validation_context",
        ),
        (lambda d: d.update(nodes={}), "top level", 'unknown field "nodes" (did you mean "node"?)'),
        (lambda d: d["node"].update(locality={"zone": "a"}), "node", 'unsupported field "locality"'),
        (lambda d: d["admin"].update(profile_path="/tmp/p"), "admin", 'unsupported field "profile_path"'),
        (
            lambda d: d["admin"]["address"]["socket_address"].update(port_value=-1),
            "admin: address.socket_address.port_value",
            "-1 is out of range",
        ),
    ],
)
def test_top_level_rules(change, label, text):
    msg = error_of(change)
    assert msg.startswith(f"l4.yaml: {label}: "), msg
    assert text in msg


# ---- helpers and the table as documentation ---------------------------------------------


def test_duration_ms_rounds_sub_millisecond_up():
    from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2

    tp = tcp_proxy_pb2.TcpProxy()
    assert duration_ms(tp, "idle_timeout", 7) == 7
    tp.idle_timeout.FromMilliseconds(1500)
    assert duration_ms(tp, "idle_timeout", 7) == 1500
    tp.idle_timeout.FromNanoseconds(500_000)
    assert duration_ms(tp, "idle_timeout", 7) == 1  # 0 would mean "no timeout"
    tp.idle_timeout.FromSeconds(0)
    assert duration_ms(tp, "idle_timeout", 7) == 0  # explicitly set to 0: disabled, not the default


def test_validate_bootstrap_checks_a_message_built_in_code():
    bs = load_bootstrap(EXAMPLE)
    validate_bootstrap(bs, "built")
    bs.static_resources.clusters[0].lb_policy = bs.static_resources.clusters[0].MAGLEV
    with pytest.raises(ConfigError, match=r'^built: cluster "backend": lb_policy: unsupported value MAGLEV'):
        validate_bootstrap(bs, "built")


def test_supported_summary_names_the_subset():
    assert "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy: stat_prefix, cluster" in SUPPORTED
    assert "lb_policy (ROUND_ROBIN | LEAST_REQUEST | RANDOM | RING_HASH)" in SUPPORTED
    assert "TcpProxy [terminal]" in SUPPORTED
