"""The HTTP data plane's xDS subset (meshcore.config): http_connection_manager,
HTTP filters, routes, and the cluster settings that go with them.

Like test_config_bootstrap.py, every test parses real YAML text: most start
from examples/http.yaml, change one thing and check that the error names the
file, the resource and the field path. FULL (below) sets every supported
field at once and must load.
"""

import copy
import pathlib
import textwrap

import pytest
import yaml
from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.config.cluster.v3 import cluster_pb2

from meshcore import xds_types
from meshcore.config import SUPPORTED, load_bootstrap, parse_bootstrap, validate_bootstrap
from meshcore.config import rules as config_rules
from meshcore.config import schema as config_schema
from meshcore.errors import ConfigError

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "http.yaml"

URL = "type.googleapis.com/"
HCM_TYPE = URL + "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
FAULT_TYPE = URL + "envoy.extensions.filters.http.fault.v3.HTTPFault"
ROUTER_TYPE = URL + "envoy.extensions.filters.http.router.v3.Router"
CORS_TYPE = URL + "envoy.extensions.filters.http.cors.v3.Cors"
PREVIOUS_HOSTS_TYPE = URL + "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
UPSTREAM_HTTP = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
FAULT_KEY = "envoy.filters.http.fault"

# Where errors point, as the message spells it.
LISTENER = 'http.yaml: listener "outbound_http"'
HCM_AT = LISTENER + ": filter_chains[0].filters[0].typed_config"
RC_AT = HCM_AT + ".route_config"
VH_AT = RC_AT + ".virtual_hosts[0]"
CLUSTER_AT = 'http.yaml: cluster "checkout_v1"'
OPTIONS_AT = f'{CLUSTER_AT}: typed_extension_protocol_options["{UPSTREAM_HTTP}"]'

HEALTHZ, CANARY, SPLIT = 0, 1, 2  # the example's routes


_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml: these tests dump YAML ~600 times
_EXAMPLE_DOC = yaml.safe_load(EXAMPLE.read_text())


def example_doc():
    return copy.deepcopy(_EXAMPLE_DOC)


def hcm(doc):
    return doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]


def http_filters(doc):
    return hcm(doc)["http_filters"]


def route_config(doc):
    return hcm(doc)["route_config"]


def vhost(doc, i=0):
    return route_config(doc)["virtual_hosts"][i]


def route(doc, i):
    return vhost(doc)["routes"][i]


def action(doc, i=SPLIT):
    return route(doc, i)["route"]


def retry(doc):
    return action(doc)["retry_policy"]


def match(doc, i=CANARY):
    return route(doc, i)["match"]


def route_fault(doc):
    return route(doc, CANARY)["typed_per_filter_config"][FAULT_KEY]


def cluster(doc, i=0):
    return doc["static_resources"]["clusters"][i]


def upstream_options(doc):
    return cluster(doc)["typed_extension_protocol_options"][UPSTREAM_HTTP]


def at(base, path):
    return f"{base}.{path}" if path else base


def parse_changed(change):
    doc = example_doc()
    change(doc)
    return parse_bootstrap(yaml.dump(doc, Dumper=_DUMPER, sort_keys=False), "http.yaml")


def error_of(change):
    with pytest.raises(ConfigError) as info:
        parse_changed(change)
    return str(info.value)


def check_error(change, where, text):
    """The error names exactly `where` (file, resource, field path) and says `text` (in part)."""
    msg = error_of(change)
    assert msg.startswith(f"{where}: "), msg
    assert text in msg[len(where) + 2 :], msg


def header(key, value="v", **more):
    return {"header": {"key": key, "value": value}, **more}


# ---- what loads ----------------------------------------------------------------------


def test_example_loads():
    from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2

    bs = load_bootstrap(EXAMPLE)
    assert isinstance(bs, bootstrap_pb2.Bootstrap)
    (ls,) = bs.static_resources.listeners
    assert ls.name == "outbound_http"
    assert ls.address.socket_address.port_value == 10080
    assert bs.admin.address.socket_address.port_value == 15000
    (flt,) = ls.filter_chains[0].filters
    assert flt.typed_config.type_url == HCM_TYPE
    h = http_connection_manager_pb2.HttpConnectionManager()
    assert flt.typed_config.Unpack(h)
    assert [f.typed_config.type_url for f in h.http_filters] == [FAULT_TYPE, ROUTER_TYPE]
    (vh,) = h.route_config.virtual_hosts
    assert list(vh.domains) == ["checkout", "checkout.default.svc.cluster.local"]
    healthz, canary, split = vh.routes
    assert healthz.direct_response.status == 200 and healthz.direct_response.body.inline_string == "ok\n"
    assert canary.match.headers[0].string_match.exact == "true" and canary.route.cluster == "checkout_v2"
    assert [(c.name, c.weight.value) for c in split.route.weighted_clusters.clusters] == [
        ("checkout_v1", 90),
        ("checkout_v2", 10),
    ]
    rp = split.route.retry_policy
    assert (rp.retry_on, rp.num_retries.value, rp.per_try_timeout.seconds) == ("5xx,gateway-error", 3, 2)
    assert rp.retry_host_predicate[0].typed_config.type_url == PREVIOUS_HOSTS_TYPE
    assert split.route.timeout.seconds == 10
    v1, v2 = bs.static_resources.clusters
    assert (v1.name, v2.name) == ("checkout_v1", "checkout_v2")
    assert v1.circuit_breakers.thresholds[0].max_connections.value == 1024
    assert v1.outlier_detection.consecutive_5xx.value == 5
    assert [e.endpoint.address.socket_address.port_value for e in v2.load_assignment.endpoints[0].lb_endpoints] == [
        18082
    ]


def test_example_passes_validate_bootstrap():
    validate_bootstrap(load_bootstrap(EXAMPLE), "built")


def test_validate_bootstrap_checks_http_config_built_in_code():
    from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2

    bs = load_bootstrap(EXAMPLE)
    flt = bs.static_resources.listeners[0].filter_chains[0].filters[0]
    h = http_connection_manager_pb2.HttpConnectionManager()
    flt.typed_config.Unpack(h)
    h.codec_type = h.HTTP2
    flt.typed_config.Pack(h)
    with pytest.raises(ConfigError) as info:
        validate_bootstrap(bs, "built")
    assert str(info.value) == (
        'built: listener "outbound_http": filter_chains[0].filters[0].typed_config.codec_type: '
        "unsupported value HTTP2 (supported: AUTO, HTTP1)"
    )

    bs = load_bootstrap(EXAMPLE)
    options = bs.static_resources.clusters[1].typed_extension_protocol_options
    options["envoy.extensions.upstreams.tcp.v3.TcpProtocolOptions"].CopyFrom(options[UPSTREAM_HTTP])
    with pytest.raises(ConfigError) as info:
        validate_bootstrap(bs, "built")
    assert str(info.value) == (
        'built: cluster "checkout_v2": typed_extension_protocol_options: unsupported key '
        f'"envoy.extensions.upstreams.tcp.v3.TcpProtocolOptions" (supported: {UPSTREAM_HTTP})'
    )


FULL = f"""
static_resources:
  listeners:
  - name: full
    address: {{socket_address: {{address: 127.0.0.1, port_value: 10081}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.connection_limit
        typed_config:
          "@type": {URL}envoy.extensions.filters.network.connection_limit.v3.ConnectionLimit
          stat_prefix: full_limit
          max_connections: 100
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": {HCM_TYPE}
          stat_prefix: full
          codec_type: HTTP1
          common_http_protocol_options: {{idle_timeout: 60s, max_requests_per_connection: 100, max_headers_count: 50}}
          http_protocol_options: {{accept_http_10: true}}
          stream_idle_timeout: 30s
          request_timeout: 60s
          request_headers_timeout: 5s
          max_request_headers_kb: 96
          generate_request_id: false
          preserve_external_request_id: true
          use_remote_address: true
          xff_num_trusted_hops: 1
          server_name: meshcore
          http_filters:
          - name: envoy.filters.http.fault
            typed_config:
              "@type": {FAULT_TYPE}
              delay: {{fixed_delay: 0.5s, percentage: {{numerator: 5, denominator: TEN_THOUSAND}}}}
              abort: {{http_status: 503, percentage: {{numerator: 1000, denominator: MILLION}}}}
          - name: envoy.filters.http.router
            typed_config: {{"@type": {ROUTER_TYPE}}}
          route_config:
            name: full
            validate_clusters: false
            request_headers_to_add: [{{header: {{key: x-a, value: "1"}}, append: false}}]
            request_headers_to_remove: [x-b]
            response_headers_to_add: [{{header: {{key: x-c, value: "2"}}, append_action: ADD_IF_ABSENT}}]
            response_headers_to_remove: [x-d]
            virtual_hosts:
            - name: api
              domains: ["api", "*.api.example.com", "api-*", "*"]
              request_headers_to_add: [{{header: {{key: x-vh, value: v}}, append_action: OVERWRITE_IF_EXISTS}}]
              request_headers_to_remove: [x-vh-old]
              response_headers_to_add: [{{header: {{key: x-vh-r, value: v}}}}]
              response_headers_to_remove: [server]
              retry_policy:
                retry_on: "connect-failure, refused-stream,reset,retriable-4xx,retriable-status-codes,unavailable,\\
                  cancelled,deadline-exceeded,resource-exhausted"
                num_retries: 2
                per_try_timeout: 1s
                retry_back_off: {{base_interval: 0.025s, max_interval: 0.25s}}
                retry_host_predicate:
                - name: envoy.retry_host_predicates.previous_hosts
                  typed_config: {{"@type": {PREVIOUS_HOSTS_TYPE}}}
                host_selection_retry_max_attempts: 5
                retriable_status_codes: [503, 429]
              routes:
              - name: exact
                match:
                  path: /exact
                  case_sensitive: false
                  headers:
                  - {{name: x-exact, exact_match: "a"}}
                  - {{name: x-prefix, prefix_match: "a"}}
                  - {{name: x-suffix, suffix_match: "a"}}
                  - {{name: x-contains, contains_match: "a"}}
                  - {{name: x-regex, safe_regex_match: {{google_re2: {{}}, regex: "^a+$"}}}}
                  - {{name: x-present, present_match: true}}
                  - {{name: ":method", string_match: {{exact: GET}}, invert_match: true}}
                  - {{name: x-sm-prefix, string_match: {{prefix: a, ignore_case: true}}}}
                  - {{name: x-sm-suffix, string_match: {{suffix: a}}}}
                  - {{name: x-sm-contains, string_match: {{contains: a}}}}
                  - {{name: x-sm-regex, string_match: {{safe_regex: {{regex: "a|b"}}}}}}
                  - {{name: x-absent}}
                  query_parameters:
                  - {{name: debug, present_match: true}}
                  - {{name: v, string_match: {{exact: "2"}}}}
                route:
                  cluster: a
                  timeout: 5s
                  prefix_rewrite: /
                  host_rewrite_literal: a.internal
                  retry_policy: {{retry_on: 5xx}}
                  request_mirror_policies:
                  - cluster: b
                    runtime_fraction: {{default_value: {{numerator: 50}}}}
                  hash_policy:
                  - header: {{header_name: x-user}}
                  - cookie: {{name: session, ttl: 3600s, path: /}}
                  - connection_properties: {{source_ip: true}}
                    terminal: true
                request_headers_to_add: [{{header: {{key: x-r, value: "1"}}}}]
                request_headers_to_remove: [x-r-old]
                response_headers_to_add: [{{header: {{key: x-r-resp, value: "1"}}}}]
                response_headers_to_remove: [x-r-resp-old]
                typed_per_filter_config:
                  {FAULT_KEY}:
                    "@type": {FAULT_TYPE}
                    abort: {{http_status: 500, percentage: {{numerator: 1}}}}
              - name: regex
                match: {{safe_regex: {{regex: "^/v[0-9]+/.*"}}}}
                route:
                  weighted_clusters: {{clusters: [{{name: a, weight: 1}}, {{name: b, weight: 3}}]}}
                  regex_rewrite: {{pattern: {{regex: "^/v[0-9]+/(.*)"}}, substitution: "/\\\\1"}}
              - name: separated
                match: {{path_separated_prefix: /old}}
                redirect:
                  https_redirect: true
                  host_redirect: new.example.com
                  port_redirect: 8443
                  path_redirect: /new
                  response_code: PERMANENT_REDIRECT
                  strip_query: true
              - name: scheme
                match: {{prefix: /s}}
                redirect: {{scheme_redirect: https, prefix_rewrite: /t}}
              - name: text
                match: {{prefix: /text}}
                direct_response: {{status: 200, body: {{inline_string: hi}}}}
              - name: teapot
                match: {{prefix: /}}
                direct_response: {{status: 418, body: {{inline_bytes: "aGk="}}}}
  clusters:
  - name: a
    connect_timeout: 1s
    lb_policy: RING_HASH
    ring_hash_lb_config: {{minimum_ring_size: 512, maximum_ring_size: 4096, hash_function: XX_HASH}}
    max_requests_per_connection: 1000
    circuit_breakers:
      thresholds:
      - {{priority: DEFAULT, max_connections: 1, max_pending_requests: 1, max_requests: 1, max_retries: 1}}
    outlier_detection:
      consecutive_5xx: 3
      consecutive_gateway_failure: 2
      interval: 5s
      base_ejection_time: 10s
      max_ejection_percent: 20
      max_ejection_time: 60s
      enforcing_consecutive_5xx: 100
      enforcing_consecutive_gateway_failure: 50
    typed_extension_protocol_options:
      {UPSTREAM_HTTP}:
        "@type": {URL}{UPSTREAM_HTTP}
        use_downstream_protocol_config: {{http_protocol_options: {{}}}}
    load_assignment:
      cluster_name: a
      endpoints:
      - lb_endpoints:
        - endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: 18081}}}}}}
  - name: b
    typed_extension_protocol_options:
      {UPSTREAM_HTTP}:
        "@type": {URL}{UPSTREAM_HTTP}
        common_http_protocol_options: {{idle_timeout: 30s, max_requests_per_connection: 10}}
        explicit_http_config: {{http_protocol_options: {{}}}}
"""


def test_full_config_loads():
    bs = parse_bootstrap(FULL, "full.yaml")
    a, b = bs.static_resources.clusters
    assert a.lb_policy == cluster_pb2.Cluster.RING_HASH
    assert a.ring_hash_lb_config.maximum_ring_size.value == 4096
    assert b.typed_extension_protocol_options[UPSTREAM_HTTP].type_url == URL + UPSTREAM_HTTP


def _set_fields(msg, by_type, by_place, place=None):
    """Record which fields are set: per message type, and per (parent type, field)."""
    full = msg.DESCRIPTOR.full_name
    for fd, value in msg.ListFields():
        by_type.setdefault(full, set()).add(fd.name)
        if place:
            by_place.setdefault(place, set()).add(fd.name)
        if fd.message_type is None:
            continue
        if fd.message_type.GetOptions().map_entry:
            items = list(value.values())
        else:
            items = list(value) if fd.is_repeated else [value]
        for item in items:
            if not hasattr(item, "DESCRIPTOR"):
                continue
            if item.DESCRIPTOR.full_name == "google.protobuf.Any":
                item = xds_types.unpack(item)
            _set_fields(item, by_type, by_place, (full, fd.name))


# Rows that test_config_bootstrap.py covers (the L4 and bootstrap subset).
_L4_ROWS = {
    "envoy.config.bootstrap.v3.Bootstrap",
    "envoy.config.bootstrap.v3.Bootstrap.StaticResources",
    "envoy.config.core.v3.Node",
    "envoy.config.bootstrap.v3.Admin",
    "envoy.config.accesslog.v3.AccessLog",
    "envoy.config.core.v3.Address",
    "envoy.config.core.v3.SocketAddress",
    "envoy.config.listener.v3.Listener",
    "envoy.config.endpoint.v3.ClusterLoadAssignment",
    "envoy.config.endpoint.v3.LocalityLbEndpoints",
    "envoy.config.endpoint.v3.LbEndpoint",
}


def test_full_config_sets_every_supported_field():
    """Every field the HTTP rows of SCHEMA list is set somewhere in FULL (and so is accepted).

    Enum fields whose only supported value is the default (Cluster.type
    STATIC, priority DEFAULT, hash_function XX_HASH) cannot be "set".
    """
    by_type, by_place = {}, {}
    _set_fields(parse_bootstrap(FULL), by_type, by_place)
    default_only = {
        (full, name) for full, rule in config_schema.SCHEMA.items()
        for name, values in rule.enums.items() if len(values) == 1
    }
    missing = []
    for full, rule in config_schema.SCHEMA.items():
        if full in _L4_ROWS or "access_loggers" in full or "tcp_proxy" in full or "connection_limit" in full:
            continue
        for name in rule.fields:
            if (full, name) not in default_only and name not in by_type.get(full, ()):
                missing.append(f"{full}.{name}")
        for name, inner in rule.nested.items():
            missing += [f"{full}.{name}.{f}" for f in inner.fields if f not in by_place.get((full, name), ())]
    # TLS, filter chain matching and access-log formats are covered by
    # tests/python/test_config_tls.py and the access-log tests; RBAC by
    # tests/python/test_translate_security_rbac.py; telemetry (Istio filters,
    # tracing, decorators, cluster metadata) by tests/python/test_config_telemetry.py.
    elsewhere = ("transport_socket", "TransportSocket", "TlsInspector", "ListenerFilter", "listener_filters",
                 "filter_chain_match", "FilterChain.name", "FilterChainMatch", "secrets", "Secret", "tls.v3",
                 "DataSource.filename", "access_log", "SubstitutionFormatString", "rbac", "CidrRange", "Int32Range",
                 "PathMatcher", "MetadataMatcher", "ValueMatcher", "OrMatcher", "ListMatcher",
                 "TypedStruct", "tracing", "Tracing", "OpenTelemetryConfig", "ZipkinConfig", "HttpService", "HttpUri",
                 "Percent", "Decorator", "decorator", "Cluster.metadata", "core.v3.Metadata", "traffic_direction")
    missing = [m for m in missing if not any(e in m for e in elsewhere)]
    assert not missing


def test_connection_limit_may_precede_http_connection_manager():
    bs = parse_bootstrap(FULL)
    kinds = [f.typed_config.type_url for f in bs.static_resources.listeners[0].filter_chains[0].filters]
    assert kinds[-1] == HCM_TYPE


def test_camel_case_keys_work_in_http_config():
    text = f"""
    staticResources:
      listeners:
      - name: l
        address: {{socketAddress: {{address: 127.0.0.1, portValue: 10080}}}}
        filterChains:
        - filters:
          - name: hcm
            typedConfig:
              "@type": {HCM_TYPE}
              statPrefix: l
              codecType: AUTO
              routeConfig:
                virtualHosts:
                - name: all
                  domains: ["*"]
                  routes:
                  - match: {{pathSeparatedPrefix: /api}}
                    route: {{cluster: c, retryPolicy: {{retryOn: reset, numRetries: 1}}}}
                    typedPerFilterConfig:
                      {FAULT_KEY}: {{"@type": {FAULT_TYPE}, delay: {{fixedDelay: 1s}}}}
              httpFilters:
              - {{name: {FAULT_KEY}, typedConfig: {{"@type": {FAULT_TYPE}}}}}
              - {{name: router, typedConfig: {{"@type": {ROUTER_TYPE}}}}}
      clusters:
      - name: c
        lbPolicy: RING_HASH
        ringHashLbConfig: {{maximumRingSize: 1024}}
        outlierDetection: {{maxEjectionPercent: 10}}
    """
    bs = parse_bootstrap(textwrap.dedent(text))
    assert bs.static_resources.clusters[0].ring_hash_lb_config.maximum_ring_size.value == 1024


# ---- the listener's filter chain --------------------------------------------------------


def test_http_connection_manager_then_tcp_proxy():
    def change(doc):
        filters = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"]
        filters.append(
            {
                "name": "envoy.filters.network.tcp_proxy",
                "typed_config": {
                    "@type": URL + "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
                    "stat_prefix": "t",
                    "cluster": "checkout_v1",
                },
            }
        )

    check_error(
        change,
        f"{LISTENER}: filter_chains[0].filters[0]",
        "terminal filter envoy.filters.network.http_connection_manager must be the last filter",
    )


def test_chain_without_terminal_names_both_terminals():
    def change(doc):
        doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"] = [
            {
                "name": "envoy.filters.network.connection_limit",
                "typed_config": {
                    "@type": URL + "envoy.extensions.filters.network.connection_limit.v3.ConnectionLimit",
                    "stat_prefix": "l",
                    "max_connections": 1,
                },
            }
        ]

    check_error(
        change,
        f"{LISTENER}: filter_chains[0].filters[0]",
        "the last filter must be terminal (TcpProxy, HttpConnectionManager), "
        "not envoy.filters.network.connection_limit",
    )


# ---- http_connection_manager ------------------------------------------------------------


@pytest.mark.parametrize(
    "change, path, text",
    [
        (lambda h: h.pop("stat_prefix"), "stat_prefix", "required"),
        (lambda h: h.update(stat_prefix=""), "stat_prefix", "required"),
        (lambda h: h.update(codec_type="HTTP2"), "codec_type", "unsupported value HTTP2 (supported: AUTO, HTTP1)"),
        (lambda h: h.update(codec_type="HTTP3"), "codec_type", "unsupported value HTTP3 (supported: AUTO, HTTP1)"),
        (lambda h: h.update(codec_type="SPDY"), "codec_type", "unsupported value SPDY (supported: AUTO, HTTP1)"),
        (
            lambda h: h.pop("route_config"),
            "route_config",
            "required (an inline RouteConfiguration; rds is not supported)",
        ),
        (
            lambda h: h.update(route_config=None, rds={"route_config_name": "r"}),
            "",
            'unsupported field "rds" (supported: stat_prefix, codec_type, route_config, ',
        ),
        (
            lambda h: h.update(access_log=[{"name": "envoy.access_loggers.stdout"}]),
            "access_log[0]",
            "has no typed_config",
        ),
        (lambda h: h.update(via="meshcore"), "", 'unsupported field "via"'),
        (lambda h: h.update(http2_protocol_options={}), "", 'unsupported field "http2_protocol_options"'),
        (
            lambda h: h.update(upgrade_configs=[{"upgrade_type": "websocket"}]),
            "",
            'unsupported field "upgrade_configs"',
        ),
        (lambda h: h.update(drain_timeout="1s"), "", 'unsupported field "drain_timeout"'),
        (lambda h: h.update(normalize_path=True), "", 'unsupported field "normalize_path"'),
        (
            lambda h: h["common_http_protocol_options"].update(max_stream_duration="10s"),
            "common_http_protocol_options",
            'unsupported field "max_stream_duration" (supported: idle_timeout, max_requests_per_connection, '
            "max_headers_count)",
        ),
        (
            lambda h: h["common_http_protocol_options"].update(headers_with_underscores_action="REJECT_REQUEST"),
            "common_http_protocol_options",
            'unsupported field "headers_with_underscores_action"',
        ),
        (
            lambda h: h["common_http_protocol_options"].update(max_headers_count=0),
            "common_http_protocol_options.max_headers_count",
            "must be at least 1",
        ),
        (
            lambda h: h["common_http_protocol_options"].update(idle_timeout="-1s"),
            "common_http_protocol_options.idle_timeout",
            "must not be negative",
        ),
        (
            lambda h: h.update(http_protocol_options={"accept_http_10": True, "allow_absolute_url": True}),
            "http_protocol_options",
            'unsupported field "allow_absolute_url" (supported: accept_http_10)',
        ),
        (
            lambda h: h.update(http_protocol_options={"default_host_for_http_10": "a"}),
            "http_protocol_options",
            'unsupported field "default_host_for_http_10"',
        ),
        (lambda h: h.update(max_request_headers_kb=0), "max_request_headers_kb", "0 is out of range (1..8192)"),
        (
            lambda h: h.update(max_request_headers_kb=8193),
            "max_request_headers_kb",
            "8193 is out of range (1..8192)",
        ),
        (lambda h: h.update(stream_idle_timeout="-1s"), "stream_idle_timeout", "must not be negative"),
        (lambda h: h.update(request_timeout="-0.5s"), "request_timeout", "must not be negative"),
        (lambda h: h.update(request_headers_timeout="-1s"), "request_headers_timeout", "must not be negative"),
        (lambda h: h.update(server_name="a\r\nb"), "server_name", "must not contain CR, LF or NUL"),
        (lambda h: h.update(request_timeout=5), "request_timeout", 'expected a duration such as "1s"'),
        (lambda h: h.update(use_remote_address="yes"), "use_remote_address", 'expected true or false, got "yes"'),
        (lambda h: h.update(xff_num_trusted_hops=-1), "xff_num_trusted_hops", "-1 is out of range"),
    ],
)
def test_hcm_rules(change, path, text):
    check_error(lambda d: change(hcm(d)), at(HCM_AT, path), text)


@pytest.mark.parametrize(
    "field, value",
    [
        ("codec_type", "AUTO"),
        ("max_request_headers_kb", 1),
        ("max_request_headers_kb", 8192),
        ("request_timeout", "0s"),  # 0: disabled, as in Envoy
        ("generate_request_id", False),
        ("preserve_external_request_id", True),
        ("use_remote_address", True),
        ("xff_num_trusted_hops", 2),
        ("server_name", "meshcore"),
        ("http_protocol_options", {"accept_http_10": True}),
        ("http_protocol_options", {}),
    ],
)
def test_hcm_accepts(field, value):
    bs = parse_changed(lambda d: hcm(d).update({field: value}))
    assert bs.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.type_url == HCM_TYPE


# ---- http_filters ---------------------------------------------------------------------


def _cors(doc):
    http_filters(doc).insert(0, {"name": "envoy.filters.http.cors", "typed_config": {"@type": CORS_TYPE}})


@pytest.mark.parametrize(
    "change, path, text",
    [
        (lambda d: hcm(d).update(http_filters=[]), "http_filters", "required (it must end in the router filter)"),
        (lambda d: hcm(d).pop("http_filters"), "http_filters", "required (it must end in the router filter)"),
        (
            lambda d: http_filters(d).pop(),
            "http_filters[0]",
            "the last filter must be terminal (Router), not envoy.filters.http.fault",
        ),
        (
            lambda d: http_filters(d).reverse(),
            "http_filters[0]",
            "terminal filter envoy.filters.http.router must be the last filter",
        ),
        (
            lambda d: http_filters(d).insert(1, copy.deepcopy(http_filters(d)[0])),
            "http_filters[1]",
            "filter envoy.filters.http.fault is already at http_filters[0] (one of each type)",
        ),
        (
            lambda d: http_filters(d).insert(1, copy.deepcopy(http_filters(d)[1])),
            "http_filters[1]",
            "terminal filter envoy.filters.http.router must be the last filter",
        ),
        (_cors, "http_filters[0]", "unsupported http filter envoy.filters.http.cors"),
        (
            lambda d: http_filters(d)[1]["typed_config"].update({"@type": URL + "envoy.nope.v3.Router"}),
            "http_filters[1]",
            f"unsupported http filter envoy.filters.http.router ({URL}envoy.nope.v3.Router)",
        ),
        (
            lambda d: http_filters(d)[1].pop("typed_config"),
            "http_filters[1]",
            "http filter envoy.filters.http.router has no typed_config",
        ),
        (lambda d: http_filters(d)[1].update(name=""), "http_filters[1].name", "required"),
        (lambda d: http_filters(d)[1].update(is_optional=True), "http_filters[1]", 'unsupported field "is_optional"'),
        (lambda d: http_filters(d)[1].update(disabled=True), "http_filters[1]", 'unsupported field "disabled"'),
        (
            lambda d: http_filters(d)[1]["typed_config"].update(suppress_envoy_headers=True),
            "http_filters[1].typed_config",
            'unsupported field "suppress_envoy_headers" (supported: none)',
        ),
        (
            lambda d: http_filters(d)[1]["typed_config"].update(dynamic_stats=False),
            "http_filters[1].typed_config",
            'unsupported field "dynamic_stats" (supported: none)',
        ),
        (
            lambda d: http_filters(d)[1]["typed_config"].update(start_child_span=True),
            "http_filters[1].typed_config",
            'unsupported field "start_child_span"',
        ),
    ],
)
def test_http_filter_rules(change, path, text):
    check_error(change, at(HCM_AT, path), text)


# The fault filter's settings, checked both as the filter's typed_config and as
# a route's typed_per_filter_config (the same subset).
FAULT_PLACES = [
    (lambda d: http_filters(d)[0]["typed_config"], HCM_AT + ".http_filters[0].typed_config"),
    (route_fault, f'{VH_AT}.routes[{CANARY}].typed_per_filter_config["{FAULT_KEY}"]'),
]


@pytest.mark.parametrize("place, where", FAULT_PLACES, ids=["filter", "route"])
@pytest.mark.parametrize(
    "fault, path, text",
    [
        ({"upstream_cluster": "checkout_v1"}, "", 'unsupported field "upstream_cluster" (supported: delay, abort)'),
        ({"max_active_faults": 1}, "", 'unsupported field "max_active_faults"'),
        ({"downstream_nodes": ["a"]}, "", 'unsupported field "downstream_nodes"'),
        ({"headers": [{"name": "x-fault", "present_match": True}]}, "", 'unsupported field "headers"'),
        ({"response_rate_limit": {"fixed_limit": {"limit_kbps": 1}}}, "", 'unsupported field "response_rate_limit"'),
        ({"delay_percent_runtime": "k"}, "", 'unsupported field "delay_percent_runtime"'),
        ({"delay": {"header_delay": {}}}, "delay", 'unsupported field "header_delay" (supported: fixed_delay, '),
        ({"delay": {"percentage": {"numerator": 1}}}, "delay.fixed_delay", "required"),
        ({"delay": {"fixed_delay": "0s"}}, "delay.fixed_delay", "must be greater than 0"),
        ({"abort": {"header_abort": {}}}, "abort", 'unsupported field "header_abort" (supported: http_status, '),
        ({"abort": {"grpc_status": 14}}, "abort", 'unsupported field "grpc_status"'),
        ({"abort": {"percentage": {"numerator": 1}}}, "abort.http_status", "required (200..599)"),
        ({"abort": {"http_status": 199}}, "abort.http_status", "199 is out of range (200..599)"),
        ({"abort": {"http_status": 600}}, "abort.http_status", "600 is out of range (200..599)"),
        (
            {"abort": {"http_status": 503, "percentage": {"numerator": 101}}},
            "abort.percentage.numerator",
            "101 is more than the whole (HUNDRED = 100)",
        ),
        (
            {"delay": {"fixed_delay": "1s", "percentage": {"numerator": 10001, "denominator": "TEN_THOUSAND"}}},
            "delay.percentage.numerator",
            "10001 is more than the whole (TEN_THOUSAND = 10000)",
        ),
        (
            {"delay": {"fixed_delay": "1s", "percentage": {"numerator": 1000001, "denominator": "MILLION"}}},
            "delay.percentage.numerator",
            "1000001 is more than the whole (MILLION = 1000000)",
        ),
        (
            {"delay": {"fixed_delay": "1s", "percentage": {"numerator": 1, "denominator": "BILLION"}}},
            "delay.percentage.denominator",
            "unsupported value BILLION (supported: HUNDRED, TEN_THOUSAND, MILLION)",
        ),
        (
            {"delay": {"fixed_delay": "1s", "percentage": {"numerator": 1, "denominator": 7}}},
            "delay.percentage.denominator",
            "unsupported value 7 (supported: HUNDRED, TEN_THOUSAND, MILLION)",
        ),
    ],
)
def test_fault_rules(place, where, fault, path, text):
    def change(doc):
        tc = place(doc)
        for k in [k for k in tc if k != "@type"]:
            del tc[k]
        tc.update(copy.deepcopy(fault))

    check_error(change, at(where, path), text)


@pytest.mark.parametrize(
    "percentage",
    [
        {"numerator": 100},
        {"numerator": 0},
        {"numerator": 100, "denominator": "HUNDRED"},
        {"numerator": 10000, "denominator": "TEN_THOUSAND"},
        {"numerator": 1000000, "denominator": "MILLION"},
    ],
)
def test_fault_percentages_up_to_the_whole(percentage):
    def change(doc):
        route_fault(doc)["delay"]["percentage"] = percentage
        http_filters(doc)[0]["typed_config"]["abort"] = {"http_status": 200, "percentage": percentage}

    parse_changed(change)


def test_route_fault_needs_the_fault_filter():
    check_error(
        lambda d: http_filters(d).pop(0),
        f'{VH_AT}.routes[{CANARY}].typed_per_filter_config["{FAULT_KEY}"]',
        f"has no effect: http_filters has no fault filter named {FAULT_KEY}",
    )


def test_route_fault_needs_the_fault_filter_by_that_name():
    check_error(
        lambda d: http_filters(d)[0].update(name="my-fault"),
        f'{VH_AT}.routes[{CANARY}].typed_per_filter_config["{FAULT_KEY}"]',
        "has no effect",
    )


def test_fault_filter_without_route_faults_is_fine():
    parse_changed(lambda d: route(d, CANARY).pop("typed_per_filter_config"))


@pytest.mark.parametrize(
    "key, value, where, text",
    [
        (
            "envoy.filters.http.router",
            {"@type": ROUTER_TYPE},
            "typed_per_filter_config",
            'unsupported key "envoy.filters.http.router" (supported: envoy.filters.http.fault)',
        ),
        (
            FAULT_KEY,
            {"@type": CORS_TYPE},
            f'typed_per_filter_config["{FAULT_KEY}"]',
            f"unsupported per-filter config {FAULT_KEY} ({CORS_TYPE})",
        ),
        (
            FAULT_KEY,
            {"@type": URL + "envoy.config.route.v3.FilterConfig", "config": {"@type": FAULT_TYPE}},
            f'typed_per_filter_config["{FAULT_KEY}"]',
            f"unsupported per-filter config {FAULT_KEY} ({URL}envoy.config.route.v3.FilterConfig)",
        ),
    ],
)
def test_typed_per_filter_config_keys_and_types(key, value, where, text):
    def change(doc):
        route(doc, CANARY)["typed_per_filter_config"] = {key: value}

    check_error(change, f"{VH_AT}.routes[{CANARY}].{where}", text)


# ---- route configuration and virtual hosts ------------------------------------------


def _second_vhost(*domains):
    def change(doc):
        routes = [{"match": {"prefix": "/"}, "direct_response": {"status": 404}}]
        route_config(doc)["virtual_hosts"].append({"name": "other", "domains": list(domains), "routes": routes})

    return change


@pytest.mark.parametrize(
    "change, path, text",
    [
        (lambda rc: rc.update(vhds={}), "", 'unsupported field "vhds" (supported: name, virtual_hosts, '),
        (lambda rc: rc.update(internal_only_headers=["x-a"]), "", 'unsupported field "internal_only_headers"'),
        (
            lambda rc: rc.update(max_direct_response_body_size_bytes=1),
            "",
            'unsupported field "max_direct_response_body_size_bytes"',
        ),
        (
            lambda rc: rc.update(ignore_port_in_host_matching=True),
            "",
            'unsupported field "ignore_port_in_host_matching"',
        ),
        (
            lambda rc: rc.update(typed_per_filter_config={FAULT_KEY: {"@type": FAULT_TYPE}}),
            "",
            'unsupported field "typed_per_filter_config"',
        ),
        (
            lambda rc: rc.update(request_mirror_policies=[{"cluster": "checkout_v1"}]),
            "",
            'unsupported field "request_mirror_policies"',
        ),
    ],
)
def test_route_config_rules(change, path, text):
    check_error(lambda d: change(route_config(d)), at(RC_AT, path), text)


@pytest.mark.parametrize(
    "change, path, text",
    [
        (
            _second_vhost("checkout"),
            "virtual_hosts[1].domains[0]",
            'duplicate domain "checkout" (virtual_hosts[0].domains[0] has it too; '
            "domains must be unique across virtual hosts)",
        ),
        (
            _second_vhost("a", "Checkout.Default.svc.cluster.local"),
            "virtual_hosts[1].domains[1]",
            'duplicate domain "Checkout.Default.svc.cluster.local" (virtual_hosts[0].domains[1] has it too',
        ),
        (
            lambda d: (_second_vhost("*")(d), vhost(d)["domains"].append("*")),
            "virtual_hosts[1].domains[0]",
            'duplicate domain "*" (virtual_hosts[0].domains[2] has it too',
        ),
        (
            lambda d: vhost(d)["domains"].append("checkout"),
            "virtual_hosts[0].domains[2]",
            'duplicate domain "checkout" (virtual_hosts[0].domains[0] has it too',
        ),
    ],
)
def test_duplicate_domains(change, path, text):
    check_error(change, at(RC_AT, path), text)


def test_distinct_domains_across_vhosts_are_fine():
    bs = parse_changed(_second_vhost("*", "*.checkout", "checkout-*", "checkout:8080"))
    assert len(bs.static_resources.listeners) == 1


@pytest.mark.parametrize(
    "domain",
    ["*", "*.example.com", "*-bar.example.com", "example.*", "example-*", "checkout:*", "checkout:8080", "[::1]:80"],
)
def test_domain_forms_accepted(domain):
    parse_changed(lambda d: vhost(d).update(domains=[domain]))


@pytest.mark.parametrize(
    "domain, text",
    [
        ("", "must not be empty"),
        ("a.*.com", '"a.*.com": "*" may only be the whole domain, its first character or its last'),
        ("**", '"**": "*" may only be'),
        ("*.example.*", '"*.example.*": "*" may only be'),
        ("*foo*", '"*foo*": "*" may only be'),
        ("foo*bar", '"foo*bar": "*" may only be'),
        ("check out", '"check out" contains whitespace or control characters'),
        ("a\tb", "contains whitespace or control characters"),
    ],
)
def test_domain_forms_rejected(domain, text):
    check_error(lambda d: vhost(d)["domains"].append(domain), f"{VH_AT}.domains[2]", text)


@pytest.mark.parametrize(
    "change, path, text",
    [
        (lambda vh: vh.pop("name"), "name", "required"),
        (lambda vh: vh.pop("domains"), "domains", 'required (at least one domain; "*" matches any)'),
        (lambda vh: vh.update(domains=[]), "domains", "required"),
        (lambda vh: vh.update(require_tls="ALL"), "", 'unsupported field "require_tls" (supported: name, domains, '),
        (lambda vh: vh.update(cors={}), "", 'unsupported field "cors"'),
        (lambda vh: vh.update(rate_limits=[{"actions": []}]), "", 'unsupported field "rate_limits"'),
        (lambda vh: vh.update(virtual_clusters=[{"name": "v"}]), "", 'unsupported field "virtual_clusters"'),
        (
            lambda vh: vh.update(typed_per_filter_config={FAULT_KEY: {"@type": FAULT_TYPE}}),
            "",
            'unsupported field "typed_per_filter_config"',
        ),
        (lambda vh: vh.update(hedge_policy={}), "", 'unsupported field "hedge_policy"'),
        (
            lambda vh: vh.update(include_request_attempt_count=True),
            "",
            'unsupported field "include_request_attempt_count"',
        ),
        (
            lambda vh: vh.update(retry_policy={"retry_on": "5xx,nope"}),
            "retry_policy.retry_on",
            'unsupported retry condition "nope"',
        ),
    ],
)
def test_virtual_host_rules(change, path, text):
    check_error(lambda d: change(vhost(d)), at(VH_AT, path), text)


def test_virtual_host_without_routes_is_fine():
    parse_changed(_second_vhost("nothing-here"))


# ---- header manipulation ---------------------------------------------------------------

# Header lists exist on the route configuration, each virtual host and each route.
HEADER_LIST_OWNERS = [
    (route_config, RC_AT),
    (vhost, VH_AT),
    (lambda d: route(d, SPLIT), f"{VH_AT}.routes[{SPLIT}]"),
]


@pytest.mark.parametrize("owner, where", HEADER_LIST_OWNERS, ids=["route_config", "virtual_host", "route"])
@pytest.mark.parametrize(
    "list_name, entry, path, text",
    [
        ("request_headers_to_add", header(":path", "/x"), "header.key", '":path" cannot be set (Envoy does not let'),
        ("request_headers_to_add", header(":authority"), "header.key", '":authority" cannot be set'),
        ("request_headers_to_add", header("host"), "header.key", '"host" cannot be set'),
        ("request_headers_to_add", header("Host"), "header.key", '"Host" cannot be set'),
        ("response_headers_to_add", header(":status", "500"), "header.key", '":status" cannot be set'),
        ("request_headers_to_add", header("bad header"), "header.key", '"bad header" is not a valid header name'),
        ("request_headers_to_add", header("x:y"), "header.key", '"x:y" is not a valid header name'),
        ("request_headers_to_add", header(""), "header.key", "required"),
        ("request_headers_to_add", {"append_action": "ADD_IF_ABSENT"}, "header", "required"),
        ("request_headers_to_add", header("x-a", "a\r\nx-evil: 1"), "header.value", "must not contain CR, LF or NUL"),
        (
            "request_headers_to_add",
            header("x-a", "%DOWNSTREAM_REMOTE_ADDRESS%"),
            "header.value",
            'substitution commands ("%...%") are not supported',
        ),
        ("response_headers_to_add", header("x-a", "100%"), "header.value", "substitution commands"),
        (
            "request_headers_to_add",
            header("x-a", append=True, append_action="OVERWRITE_IF_EXISTS"),
            "append_action",
            'cannot be used together with the deprecated "append"',
        ),
        (
            "request_headers_to_add",
            header("x-a", keep_empty_value=True),
            "",
            'unsupported field "keep_empty_value" (supported: header, append, append_action)',
        ),
        (
            "request_headers_to_add",
            {"header": {"key": "x-a", "raw_value": "YQ=="}},
            "header",
            'unsupported field "raw_value" (supported: key, value)',
        ),
        ("request_headers_to_remove", ":path", "", '":path" cannot be removed (Envoy does not let'),
        ("request_headers_to_remove", "host", "", '"host" cannot be removed'),
        ("response_headers_to_remove", ":status", "", '":status" cannot be removed'),
        ("response_headers_to_remove", "x y", "", '"x y" is not a valid header name'),
        ("request_headers_to_remove", "", "", "required"),
    ],
)
def test_header_list_rules(owner, where, list_name, entry, path, text):
    def change(doc):
        owner(doc)[list_name] = [copy.deepcopy(entry)]

    check_error(change, at(f"{where}.{list_name}[0]", path), text)


@pytest.mark.parametrize(
    "entry",
    [
        header("x-a"),
        header("x-a", ""),
        header("x-a", append=True),
        header("x-a", append=False, append_action="APPEND_IF_EXISTS_OR_ADD"),
        header("x-a", append_action="APPEND_IF_EXISTS_OR_ADD"),
        header("x-a", append_action="ADD_IF_ABSENT"),
        header("x-a", append_action="OVERWRITE_IF_EXISTS_OR_ADD"),
        header("x-a", append_action="OVERWRITE_IF_EXISTS"),
        header("X-Upper_and.dots~!#$&'*+^`|", 'any text, even "quotes"'),
    ],
)
def test_header_list_entries_accepted(entry):
    parse_changed(lambda d: route_config(d).update(request_headers_to_add=[entry], response_headers_to_add=[entry]))


# ---- routes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, path, text",
    [
        (lambda r: r.pop("match"), "match", "required"),
        (lambda r: r.pop("route"), "", "one of route, redirect or direct_response is required"),
        (
            lambda r: r.update(redirect={"https_redirect": True}),
            "",
            '"route" and "redirect" cannot both be set (only one of: route, redirect, direct_response, ',
        ),
        (
            lambda r: r.update(direct_response={"status": 200}),
            "",
            '"route" and "direct_response" cannot both be set',
        ),
        (
            lambda r: r.update(stat_prefix="op"),
            "",
            'unsupported field "stat_prefix" (supported: name, match, ',
        ),
        (lambda r: r.update(metadata={}), "", 'unsupported field "metadata"'),
        (lambda r: r.update(tracing={}), "", 'unsupported field "tracing"'),
        (
            lambda r: r.update(per_request_buffer_limit_bytes=1),
            "",
            'unsupported field "per_request_buffer_limit_bytes"',
        ),
        (lambda r: r.update(route=None, non_forwarding_action={}), "", 'unsupported field "non_forwarding_action"'),
    ],
)
def test_route_rules(change, path, text):
    check_error(lambda d: change(route(d, SPLIT)), at(f"{VH_AT}.routes[{SPLIT}]", path), text)


@pytest.mark.parametrize(
    "change, path, text",
    [
        (
            lambda m: m.pop("prefix"),
            "",
            "one of prefix, path, safe_regex or path_separated_prefix is required",
        ),
        (lambda m: m.update(path="/a"), "", '"prefix" and "path" cannot both be set'),
        (lambda m: m.update(grpc={}), "", 'unsupported field "grpc" (supported: prefix, path, safe_regex, '),
        (lambda m: m.update(tls_context={"presented": True}), "", 'unsupported field "tls_context"'),
        (
            lambda m: m.update(
                dynamic_metadata=[{"filter": "f", "path": [{"key": "k"}], "value": {"present_match": True}}]
            ),
            "",
            'unsupported field "dynamic_metadata"',
        ),
        (
            lambda m: m.update(runtime_fraction={"default_value": {"numerator": 50}}),
            "",
            'unsupported field "runtime_fraction"',
        ),
        (lambda m: m.update(prefix=None, connect_matcher={}), "", 'unsupported field "connect_matcher"'),
        (
            lambda m: m.update(prefix=None, path_separated_prefix="/api/"),
            "path_separated_prefix",
            '"/api/" is not a path prefix such as "/api" (no "?" or "#", no trailing "/")',
        ),
        (
            lambda m: m.update(prefix=None, path_separated_prefix="/a?b"),
            "path_separated_prefix",
            "is not a path prefix",
        ),
        (lambda m: m.update(prefix=None, path_separated_prefix="/"), "path_separated_prefix", "is not a path prefix"),
        (lambda m: m.update(prefix=None, path_separated_prefix=""), "path_separated_prefix", "is not a path prefix"),
        (lambda m: m.update(case_sensitive="no"), "case_sensitive", 'expected true or false, got "no"'),
        (lambda m: m["headers"][0].pop("name"), "headers[0].name", "required"),
        (lambda m: m["headers"][0].update(name="x canary"), "headers[0].name", '"x canary" is not a valid header name'),
        (
            lambda m: m["headers"][0].update(string_match=None, range_match={"start": 1, "end": 5}),
            "headers[0]",
            'unsupported field "range_match" (supported: name, string_match, ',
        ),
        (
            lambda m: m["headers"][0].update(treat_missing_header_as_empty=True),
            "headers[0]",
            'unsupported field "treat_missing_header_as_empty"',
        ),
        (
            lambda m: m["headers"][0].update(present_match=True),
            "headers[0]",
            '"string_match" and "present_match" cannot both be set',
        ),
        (
            lambda m: m["headers"][0].update(exact_match="true"),
            "headers[0]",
            '"string_match" and "exact_match" cannot both be set',
        ),
        (
            lambda m: m["headers"][0].update(string_match=None, prefix_match=""),
            "headers[0].prefix_match",
            "must not be empty",
        ),
        (
            lambda m: m["headers"][0].update(string_match=None, suffix_match=""),
            "headers[0].suffix_match",
            "must not be empty",
        ),
        (
            lambda m: m["headers"][0].update(string_match=None, contains_match=""),
            "headers[0].contains_match",
            "must not be empty",
        ),
        (
            lambda m: m["headers"][0].update(string_match=None, safe_regex_match={"regex": "a(?!b)"}),
            "headers[0].safe_regex_match.regex",
            '"a(?!b)": lookaround assertions are not RE2 syntax',
        ),
        (
            lambda m: m["headers"][0].update(string_match={"custom": {"name": "x"}}),
            "headers[0].string_match",
            'unsupported field "custom" (supported: exact, prefix, suffix, contains, safe_regex, ignore_case)',
        ),
        (
            lambda m: m["headers"][0].update(string_match={"ignore_case": True}),
            "headers[0].string_match",
            "one of exact, prefix, suffix, contains or safe_regex is required",
        ),
        (
            lambda m: m["headers"][0].update(string_match={"prefix": ""}),
            "headers[0].string_match.prefix",
            "must not be empty",
        ),
        (
            lambda m: m["headers"][0].update(string_match={"suffix": ""}),
            "headers[0].string_match.suffix",
            "must not be empty",
        ),
        (
            lambda m: m["headers"][0].update(string_match={"contains": ""}),
            "headers[0].string_match.contains",
            "must not be empty",
        ),
        (
            lambda m: m["headers"][0].update(string_match={"safe_regex": {"regex": "a"}, "ignore_case": True}),
            "headers[0].string_match.ignore_case",
            "has no effect on safe_regex",
        ),
        (
            lambda m: m["headers"][0].update(string_match={"safe_regex": {"regex": "("}}),
            "headers[0].string_match.safe_regex.regex",
            '"(" is not a valid regex',
        ),
        (lambda m: m.update(query_parameters=[{"present_match": True}]), "query_parameters[0].name", "required"),
        (
            lambda m: m.update(query_parameters=[{"name": "q", "string_match": {}}]),
            "query_parameters[0].string_match",
            "one of exact, prefix, suffix, contains or safe_regex is required",
        ),
        (
            lambda m: m.update(query_parameters=[{"name": "q", "string_match": {"exact": "1"}, "present_match": True}]),
            "query_parameters[0]",
            '"string_match" and "present_match" cannot both be set',
        ),
    ],
)
def test_route_match_rules(change, path, text):
    check_error(lambda d: change(match(d)), at(f"{VH_AT}.routes[{CANARY}].match", path), text)


@pytest.mark.parametrize(
    "change",
    [
        lambda m: m.update(prefix=""),  # matches everything, as in Envoy
        lambda m: m.update(prefix=None, path="/exact"),
        lambda m: m.update(prefix=None, path_separated_prefix="/api"),
        lambda m: m.update(prefix=None, safe_regex={"regex": "/v[0-9]+/.*"}),
        lambda m: m.update(case_sensitive=False),
        lambda m: m["headers"][0].update(string_match=None),  # no rule: the header must be present
        lambda m: m["headers"][0].update(string_match=None, present_match=False),
        lambda m: m["headers"][0].update(string_match=None, exact_match=""),
        lambda m: m["headers"][0].update(string_match={"exact": ""}),
        lambda m: m["headers"][0].update(invert_match=True),
        lambda m: m["headers"][0].update(name=":authority", string_match={"suffix": ".local", "ignore_case": True}),
        lambda m: m.update(query_parameters=[{"name": "q"}]),
    ],
)
def test_route_match_accepts(change):
    parse_changed(lambda d: change(match(d)))


# -- regexes: compiled here with Python's re as a stand-in for RE2


@pytest.mark.parametrize(
    "regex",
    [
        r"^/api/v[0-9]+/.*$",
        r"(?i)/Checkout",
        r"/(?P<id>[a-z]+)/\d{2,4}",
        r"/\pL+/\p{Greek}/\PN",
        r"/a\z",
        r"[[:alpha:]]+",
        r"[\]\[]+",
        r"a\\1",  # an escaped backslash, then "1": not a backreference
        r"[(?=]x",  # "(?=" inside a class is literal
    ],
)
def test_re2_regexes_accepted(regex):
    parse_changed(lambda d: match(d).update(prefix=None, safe_regex={"google_re2": {}, "regex": regex}))


@pytest.mark.parametrize(
    "regex, text",
    [
        ("", "required"),
        ("(", '"(" is not a valid regex: missing ), unterminated subpattern at position 0'),
        ("[a-", '"[a-" is not a valid regex'),
        ("a{2,1}", "is not a valid regex"),
        ("/a(?=b)", '"/a(?=b)": lookaround assertions are not RE2 syntax (Envoy would reject the regex)'),
        ("/a(?<!b)", "lookaround assertions are not RE2 syntax"),
        (r"(a)\1", "backreferences are not RE2 syntax"),
        ("(?P<x>a)(?P=x)", "backreferences are not RE2 syntax"),
        ("(?>a+)b", "atomic groups are not RE2 syntax"),
        ("a++", "possessive quantifiers are not RE2 syntax"),
    ],
)
def test_regexes_rejected(regex, text):
    check_error(
        lambda d: match(d).update(prefix=None, safe_regex={"regex": regex}),
        f"{VH_AT}.routes[{CANARY}].match.safe_regex.regex",
        text,
    )


def test_google_re2_options_unsupported():
    check_error(
        lambda d: match(d).update(prefix=None, safe_regex={"google_re2": {"max_program_size": 100}, "regex": "a"}),
        f"{VH_AT}.routes[{CANARY}].match.safe_regex.google_re2",
        'unsupported field "max_program_size" (supported: none)',
    )


# -- route actions


@pytest.mark.parametrize(
    "change, path, text",
    [
        (lambda ra: ra.pop("weighted_clusters"), "", "one of cluster or weighted_clusters is required"),
        (lambda ra: ra.update(cluster="checkout_v1"), "", '"weighted_clusters" and "cluster" cannot both be set'),
        (
            lambda ra: ra.update(weighted_clusters=None, cluster_header="x-cluster"),
            "",
            'unsupported field "cluster_header" (supported: cluster, weighted_clusters, ',
        ),
        (lambda ra: ra.update(weighted_clusters=None, cluster=""), "cluster", "must not be empty"),
        (lambda ra: ra.update(idle_timeout="10s"), "", 'unsupported field "idle_timeout"'),
        (lambda ra: ra.update(auto_host_rewrite=True), "", 'unsupported field "auto_host_rewrite"'),
        (lambda ra: ra.update(host_rewrite_header="x-host"), "", 'unsupported field "host_rewrite_header"'),
        (lambda ra: ra.update(cors={}), "", 'unsupported field "cors"'),
        (
            lambda ra: ra.update(upgrade_configs=[{"upgrade_type": "websocket"}]),
            "",
            'unsupported field "upgrade_configs"',
        ),
        (lambda ra: ra.update(priority="HIGH"), "", 'unsupported field "priority"'),
        (lambda ra: ra.update(max_stream_duration={}), "", 'unsupported field "max_stream_duration"'),
        (lambda ra: ra.update(path_rewrite="/x"), "", 'unsupported field "path_rewrite"'),
        (lambda ra: ra.update(timeout="-1s"), "timeout", "must not be negative"),
        (lambda ra: ra.update(host_rewrite_literal=""), "host_rewrite_literal", "must be a non-empty host"),
        (
            lambda ra: ra.update(prefix_rewrite="/", regex_rewrite={"pattern": {"regex": "^/"}, "substitution": "/"}),
            "regex_rewrite",
            "cannot be used together with prefix_rewrite",
        ),
        (lambda ra: ra.update(regex_rewrite={"substitution": "/"}), "regex_rewrite.pattern", "required"),
        (
            lambda ra: ra.update(regex_rewrite={"pattern": {"regex": "(?=x)"}, "substitution": "/"}),
            "regex_rewrite.pattern.regex",
            '"(?=x)": lookaround assertions are not RE2 syntax',
        ),
        # weighted clusters
        (
            lambda ra: ra["weighted_clusters"].update(clusters=[]),
            "weighted_clusters.clusters",
            "at least one cluster is required",
        ),
        (
            lambda ra: ra["weighted_clusters"].update(total_weight=100),
            "weighted_clusters",
            'unsupported field "total_weight" (supported: clusters)',
        ),
        (
            lambda ra: ra["weighted_clusters"].update(runtime_key_prefix="k"),
            "weighted_clusters",
            'unsupported field "runtime_key_prefix"',
        ),
        (
            lambda ra: ra["weighted_clusters"].update(header_name="x-w"),
            "weighted_clusters",
            'unsupported field "header_name"',
        ),
        (
            lambda ra: ra["weighted_clusters"]["clusters"][0].update(weight=0),
            "weighted_clusters.clusters[0].weight",
            "must be greater than 0",
        ),
        (
            lambda ra: ra["weighted_clusters"]["clusters"][0].pop("weight"),
            "weighted_clusters.clusters[0].weight",
            "required (at least 1)",
        ),
        (
            lambda ra: ra["weighted_clusters"]["clusters"][0].pop("name"),
            "weighted_clusters.clusters[0].name",
            "required",
        ),
        (
            lambda ra: ra["weighted_clusters"]["clusters"][1].update(name="checkout_v1"),
            "weighted_clusters.clusters[1].name",
            'cluster "checkout_v1" is already at clusters[0]',
        ),
        (
            lambda ra: ra["weighted_clusters"]["clusters"][0].update(request_headers_to_add=[header("x-a")]),
            "weighted_clusters.clusters[0]",
            'unsupported field "request_headers_to_add" (supported: name, weight)',
        ),
        (
            lambda ra: ra["weighted_clusters"]["clusters"][0].update(response_headers_to_remove=["x-a"]),
            "weighted_clusters.clusters[0]",
            'unsupported field "response_headers_to_remove"',
        ),
        (
            lambda ra: ra["weighted_clusters"]["clusters"][0].update(
                typed_per_filter_config={FAULT_KEY: {"@type": FAULT_TYPE}}
            ),
            "weighted_clusters.clusters[0]",
            'unsupported field "typed_per_filter_config"',
        ),
        (
            lambda ra: ra["weighted_clusters"]["clusters"][0].update(cluster_header="x-c"),
            "weighted_clusters.clusters[0]",
            'unsupported field "cluster_header"',
        ),
        (
            lambda ra: ra["weighted_clusters"]["clusters"][0].update(host_rewrite_literal="h"),
            "weighted_clusters.clusters[0]",
            'unsupported field "host_rewrite_literal"',
        ),
        (
            lambda ra: ra["weighted_clusters"]["clusters"][0].update(weight=2**32 - 1),
            "weighted_clusters.clusters",
            "the weights add up to 4294967305, more than 4294967295",
        ),
        # mirrors
        (
            lambda ra: ra.update(request_mirror_policies=[{"runtime_fraction": {"default_value": {"numerator": 1}}}]),
            "request_mirror_policies[0].cluster",
            "required",
        ),
        (
            lambda ra: ra.update(request_mirror_policies=[{"cluster": "checkout_v2", "cluster_header": "x"}]),
            "request_mirror_policies[0]",
            'unsupported field "cluster_header" (supported: cluster, runtime_fraction)',
        ),
        (
            lambda ra: ra.update(request_mirror_policies=[{"cluster": "checkout_v2", "trace_sampled": True}]),
            "request_mirror_policies[0]",
            'unsupported field "trace_sampled"',
        ),
        (
            lambda ra: ra.update(
                request_mirror_policies=[
                    {
                        "cluster": "checkout_v2",
                        "runtime_fraction": {"runtime_key": "k", "default_value": {"numerator": 1}},
                    }
                ]
            ),
            "request_mirror_policies[0].runtime_fraction",
            'unsupported field "runtime_key" (supported: default_value)',
        ),
        (
            lambda ra: ra.update(request_mirror_policies=[{"cluster": "checkout_v2", "runtime_fraction": {}}]),
            "request_mirror_policies[0].runtime_fraction.default_value",
            "required",
        ),
        (
            lambda ra: ra.update(
                request_mirror_policies=[
                    {"cluster": "checkout_v2", "runtime_fraction": {"default_value": {"numerator": 200}}}
                ]
            ),
            "request_mirror_policies[0].runtime_fraction.default_value.numerator",
            "200 is more than the whole (HUNDRED = 100)",
        ),
        # hash policies
        (
            lambda ra: ra.update(hash_policy=[{}]),
            "hash_policy[0]",
            "one of header, cookie or connection_properties is required",
        ),
        (lambda ra: ra.update(hash_policy=[{"terminal": True}]), "hash_policy[0]", "one of header, cookie or"),
        (
            lambda ra: ra.update(hash_policy=[{"query_parameter": {"name": "u"}}]),
            "hash_policy[0]",
            'unsupported field "query_parameter" (supported: header, cookie, connection_properties, terminal)',
        ),
        (
            lambda ra: ra.update(hash_policy=[{"filter_state": {"key": "k"}}]),
            "hash_policy[0]",
            'unsupported field "filter_state"',
        ),
        (lambda ra: ra.update(hash_policy=[{"header": {}}]), "hash_policy[0].header.header_name", "required"),
        (
            lambda ra: ra.update(hash_policy=[{"header": {"header_name": "x-u", "regex_rewrite": {}}}]),
            "hash_policy[0].header",
            'unsupported field "regex_rewrite" (supported: header_name)',
        ),
        (lambda ra: ra.update(hash_policy=[{"cookie": {"ttl": "1s"}}]), "hash_policy[0].cookie.name", "required"),
        (
            lambda ra: ra.update(hash_policy=[{"cookie": {"name": "s", "ttl": "-1s"}}]),
            "hash_policy[0].cookie.ttl",
            "must not be negative",
        ),
        (
            lambda ra: ra.update(hash_policy=[{"cookie": {"name": "s", "attributes": [{"name": "a"}]}}]),
            "hash_policy[0].cookie",
            'unsupported field "attributes" (supported: name, ttl, path)',
        ),
        (
            lambda ra: ra.update(hash_policy=[{"header": {"header_name": "x-u"}, "cookie": {"name": "s"}}]),
            "hash_policy[0]",
            '"header" and "cookie" cannot both be set',
        ),
    ],
)
def test_route_action_rules(change, path, text):
    check_error(lambda d: change(action(d)), at(f"{VH_AT}.routes[{SPLIT}].route", path), text)


# -- retry policies (on a route, and the same on a virtual host)

RETRY_PLACES = [
    (retry, f"{VH_AT}.routes[{SPLIT}].route.retry_policy"),
    (lambda d: vhost(d).setdefault("retry_policy", {"retry_on": "5xx"}), f"{VH_AT}.retry_policy"),
]


@pytest.mark.parametrize("place, where", RETRY_PLACES, ids=["route", "virtual_host"])
@pytest.mark.parametrize(
    "change, path, text",
    [
        (
            lambda rp: rp.update(retry_on="5xx,bogus"),
            "retry_on",
            'unsupported retry condition "bogus" (supported: 5xx, gateway-error, reset, connect-failure, '
            "retriable-4xx, retriable-status-codes, refused-stream, unavailable, cancelled, deadline-exceeded, "
            "resource-exhausted)",
        ),
        (
            lambda rp: rp.update(retry_on="retriable-headers"),
            "retry_on",
            'unsupported retry condition "retriable-headers"',
        ),
        (
            lambda rp: rp.update(retry_on="envoy-ratelimited"),
            "retry_on",
            'unsupported retry condition "envoy-ratelimited"',
        ),
        (lambda rp: rp.update(retry_on="5XX"), "retry_on", 'unsupported retry condition "5XX"'),
        (lambda rp: rp.update(num_retries=-1), "num_retries", "-1 is out of range"),
        (lambda rp: rp.update(per_try_timeout="-1s"), "per_try_timeout", "must not be negative"),
        (
            lambda rp: rp.update(per_try_idle_timeout="1s"),
            "",
            'unsupported field "per_try_idle_timeout" (supported: retry_on, ',
        ),
        (lambda rp: rp.update(retry_priority={"name": "p"}), "", 'unsupported field "retry_priority"'),
        (lambda rp: rp.update(rate_limited_retry_back_off={}), "", 'unsupported field "rate_limited_retry_back_off"'),
        (lambda rp: rp.update(retriable_headers=[{"name": "x-retry"}]), "", 'unsupported field "retriable_headers"'),
        (
            lambda rp: rp.update(retriable_request_headers=[{"name": "x-retry"}]),
            "",
            'unsupported field "retriable_request_headers"',
        ),
        (
            lambda rp: rp.update(retry_options_predicates=[{"name": "p"}]),
            "",
            'unsupported field "retry_options_predicates"',
        ),
        (
            lambda rp: rp.update(host_selection_retry_max_attempts=-1),
            "host_selection_retry_max_attempts",
            "must not be negative",
        ),
        (
            lambda rp: rp.update(retry_on="5xx", retriable_status_codes=[503]),
            "retriable_status_codes",
            'has no effect unless retry_on includes "retriable-status-codes"',
        ),
        (
            lambda rp: rp.update(retry_on="retriable-status-codes", retriable_status_codes=[503, 600]),
            "retriable_status_codes[1]",
            "600 is not an HTTP status (100..599)",
        ),
        (
            lambda rp: rp.update(retry_on="retriable-status-codes", retriable_status_codes=[99]),
            "retriable_status_codes[0]",
            "99 is not an HTTP status (100..599)",
        ),
        (lambda rp: rp.update(retry_back_off={}), "retry_back_off.base_interval", "required"),
        (lambda rp: rp.update(retry_back_off={"max_interval": "1s"}), "retry_back_off.base_interval", "required"),
        (
            lambda rp: rp.update(retry_back_off={"base_interval": "0s"}),
            "retry_back_off.base_interval",
            "must be greater than 0",
        ),
        (
            lambda rp: rp.update(retry_back_off={"base_interval": "0.1s", "max_interval": "0s"}),
            "retry_back_off.max_interval",
            "must be greater than 0",
        ),
        (
            lambda rp: rp.update(retry_back_off={"base_interval": "1s", "max_interval": "0.5s"}),
            "retry_back_off.max_interval",
            "0.5s is less than base_interval (1s)",
        ),
        (
            lambda rp: rp.update(
                retry_host_predicate=[
                    {
                        "name": "envoy.retry_host_predicates.omit_canary_hosts",
                        "typed_config": {
                            "@type": URL + "envoy.extensions.retry.host.omit_canary_hosts.v3.OmitCanaryHostsPredicate"
                        },
                    }
                ]
            ),
            "retry_host_predicate[0]",
            "unsupported retry host predicate envoy.retry_host_predicates.omit_canary_hosts",
        ),
        (
            lambda rp: rp.update(retry_host_predicate=[{"name": "envoy.retry_host_predicates.previous_hosts"}]),
            "retry_host_predicate[0]",
            "retry host predicate envoy.retry_host_predicates.previous_hosts has no typed_config",
        ),
        (
            lambda rp: rp.update(retry_host_predicate=[{"typed_config": {"@type": PREVIOUS_HOSTS_TYPE}}]),
            "retry_host_predicate[0].name",
            "required",
        ),
    ],
)
def test_retry_policy_rules(place, where, change, path, text):
    check_error(lambda d: change(place(d)), at(where, path), text)


@pytest.mark.parametrize("condition", config_rules.RETRY_ON)
def test_every_retry_condition_accepted(condition):
    parse_changed(lambda d: retry(d).update(retry_on=condition))


@pytest.mark.parametrize(
    "policy",
    [
        {"retry_on": " 5xx , reset,,connect-failure "},  # spaces and empty items, as Envoy tolerates
        {"retry_on": "retriable-status-codes", "retriable_status_codes": [503, 100, 599]},
        {"retry_on": "retriable-status-codes"},
        {"retry_back_off": {"base_interval": "0.025s"}},
        {"retry_back_off": {"base_interval": "0.1s", "max_interval": "0.1s"}},
        {"num_retries": 0},
        {},
    ],
)
def test_retry_policies_accepted(policy):
    parse_changed(lambda d: action(d).update(retry_policy=policy))


# -- redirects and direct responses


@pytest.mark.parametrize(
    "code", ["MOVED_PERMANENTLY", "FOUND", "SEE_OTHER", "TEMPORARY_REDIRECT", "PERMANENT_REDIRECT"]
)
def test_redirect_response_codes_accepted(code):
    def change(doc):
        route(doc, SPLIT).pop("route")
        route(doc, SPLIT)["redirect"] = {"https_redirect": True, "response_code": code}

    parse_changed(change)


@pytest.mark.parametrize(
    "redirect, path, text",
    [
        (
            {"https_redirect": True, "scheme_redirect": "https"},
            "",
            '"https_redirect" and "scheme_redirect" cannot both be set',
        ),
        (
            {"path_redirect": "/a", "prefix_rewrite": "/b"},
            "",
            '"path_redirect" and "prefix_rewrite" cannot both be set',
        ),
        (
            {"regex_rewrite": {"pattern": {"regex": "a"}, "substitution": "b"}},
            "",
            'unsupported field "regex_rewrite" (supported: scheme_redirect, https_redirect, host_redirect, ',
        ),
        ({"port_redirect": 70000}, "port_redirect", "70000 is out of range (0..65535)"),
        ({"host_redirect": "a\r\nb"}, "host_redirect", "must not contain CR, LF or NUL"),
        ({"response_code": "MULTIPLE_CHOICES"}, "response_code", "unknown value MULTIPLE_CHOICES"),
    ],
)
def test_redirect_rules(redirect, path, text):
    def change(doc):
        route(doc, SPLIT).pop("route")
        route(doc, SPLIT)["redirect"] = redirect

    check_error(change, at(f"{VH_AT}.routes[{SPLIT}].redirect", path), text)


@pytest.mark.parametrize(
    "direct, path, text",
    [
        ({"body": {"inline_string": "x"}}, "status", "required (100..599)"),
        ({"status": 99}, "status", "99 is out of range (100..599)"),
        ({"status": 600}, "status", "600 is out of range (100..599)"),
        (
            {"status": 200, "body": {"filename": "/etc/motd"}},
            "body",
            'unsupported field "filename" (supported: inline_string, inline_bytes)',
        ),
        ({"status": 200, "body": {"environment_variable": "BODY"}}, "body", 'unsupported field "environment_variable"'),
        (
            {"status": 200, "body_format": {"text_format": "x"}},
            "",
            'unsupported field "body_format" (supported: status, body)',
        ),
        ({"status": 200, "body": {"inline_string": "x" * 4097}}, "body", "4097 bytes is more than 4096"),
        ({"status": 200, "body": {"inline_string": "é" * 2049}}, "body", "4098 bytes is more than 4096"),
        ({"status": 200, "body": {"inline_bytes": "A" * 5464}}, "body", "4098 bytes is more than 4096"),
    ],
)
def test_direct_response_rules(direct, path, text):
    check_error(
        lambda d: route(d, HEALTHZ).update(direct_response=direct),
        at(f"{VH_AT}.routes[{HEALTHZ}].direct_response", path),
        text,
    )


@pytest.mark.parametrize(
    "direct",
    [
        {"status": 100},
        {"status": 599},
        {"status": 204},
        {"status": 200, "body": {"inline_string": "x" * 4096}},
        {"status": 200, "body": {"inline_bytes": "aGVsbG8="}},
        {"status": 503, "body": {}},
    ],
)
def test_direct_responses_accepted(direct):
    parse_changed(lambda d: route(d, HEALTHZ).update(direct_response=direct))


# ---- cluster references across resources ------------------------------------------------


def test_unknown_route_cluster_exact_message():
    msg = error_of(lambda d: action(d, CANARY).update(cluster="nope"))
    assert msg == f'{VH_AT}.routes[{CANARY}].route.cluster: unknown cluster "nope"'


def test_unknown_route_cluster_suggests_close_name():
    msg = error_of(lambda d: action(d, CANARY).update(cluster="checkout-v1"))
    assert msg.endswith('unknown cluster "checkout-v1" (did you mean "checkout_v1"?)')


def test_unknown_weighted_cluster():
    check_error(
        lambda d: action(d)["weighted_clusters"]["clusters"][1].update(name="nope"),
        f"{VH_AT}.routes[{SPLIT}].route.weighted_clusters.clusters[1].name",
        'unknown cluster "nope"',
    )


def test_unknown_mirror_cluster():
    check_error(
        lambda d: action(d).update(request_mirror_policies=[{"cluster": "shadow"}]),
        f"{VH_AT}.routes[{SPLIT}].route.request_mirror_policies[0].cluster",
        'unknown cluster "shadow"',
    )


def test_clusters_checked_even_with_validate_clusters_false():
    def change(doc):
        route_config(doc)["validate_clusters"] = False
        action(doc, CANARY)["cluster"] = "nope"

    check_error(change, f"{VH_AT}.routes[{CANARY}].route.cluster", 'unknown cluster "nope"')


def test_unknown_cluster_in_a_later_virtual_host():
    def change(doc):
        _second_vhost("other")(doc)
        route_config(doc)["virtual_hosts"][1]["routes"].insert(
            0, {"match": {"prefix": "/x"}, "route": {"cluster": "missing"}}
        )

    check_error(change, f"{RC_AT}.virtual_hosts[1].routes[0].route.cluster", 'unknown cluster "missing"')


def test_redirect_and_direct_routes_refer_to_no_cluster():
    def change(doc):
        doc["static_resources"]["clusters"] = []
        vhost(doc)["routes"] = [
            {"match": {"prefix": "/a"}, "redirect": {"path_redirect": "/b"}},
            {"match": {"prefix": "/"}, "direct_response": {"status": 404}},
        ]

    parse_changed(change)


# ---- clusters -----------------------------------------------------------------------


def _http_options(**options):
    def change(doc):
        opts = upstream_options(doc)
        for k in [k for k in opts if k != "@type"]:
            del opts[k]
        opts.update(options)

    return change


@pytest.mark.parametrize(
    "change, path, text",
    [
        (
            lambda c: c.update(lb_policy="MAGLEV"),
            "lb_policy",
            "unsupported value MAGLEV (supported: ROUND_ROBIN, LEAST_REQUEST, RANDOM, RING_HASH)",
        ),
        (lambda c: c.update(ring_hash_lb_config={}), "ring_hash_lb_config", "is only used with lb_policy RING_HASH"),
        (
            lambda c: c.update(lb_policy="RING_HASH", ring_hash_lb_config={"hash_function": "MURMUR_HASH_2"}),
            "ring_hash_lb_config.hash_function",
            "unsupported value MURMUR_HASH_2 (supported: XX_HASH)",
        ),
        (
            lambda c: c.update(lb_policy="RING_HASH", ring_hash_lb_config={"maximum_ring_size": 8388609}),
            "ring_hash_lb_config.maximum_ring_size",
            "8388609 is more than 8388608 (8M)",
        ),
        (
            lambda c: c.update(lb_policy="RING_HASH", ring_hash_lb_config={"minimum_ring_size": 8388609}),
            "ring_hash_lb_config.minimum_ring_size",
            "8388609 is more than 8388608 (8M)",
        ),
        (
            lambda c: c.update(lb_policy="RING_HASH", ring_hash_lb_config={"maximum_ring_size": 512}),
            "ring_hash_lb_config.minimum_ring_size",
            "1024 is more than maximum_ring_size (512)",
        ),
        (
            lambda c: c.update(
                lb_policy="RING_HASH", ring_hash_lb_config={"minimum_ring_size": 2048, "maximum_ring_size": 1024}
            ),
            "ring_hash_lb_config.minimum_ring_size",
            "2048 is more than maximum_ring_size (1024)",
        ),
        (lambda c: c.update(maglev_lb_config={}), "", 'unsupported field "maglev_lb_config"'),
        (lambda c: c.update(common_lb_config={}), "", 'unsupported field "common_lb_config"'),
        # circuit breakers
        (
            lambda c: c["circuit_breakers"]["thresholds"][0].update(priority="HIGH"),
            "circuit_breakers.thresholds[0].priority",
            "unsupported value HIGH (supported: DEFAULT)",
        ),
        (
            lambda c: c["circuit_breakers"]["thresholds"].append({"max_connections": 1}),
            "circuit_breakers.thresholds[1]",
            "priority DEFAULT already has thresholds[0] (one per priority)",
        ),
        (
            lambda c: c["circuit_breakers"].update(per_host_thresholds=[{"max_connections": 1}]),
            "circuit_breakers",
            'unsupported field "per_host_thresholds" (supported: thresholds)',
        ),
        (
            lambda c: c["circuit_breakers"]["thresholds"][0].update(retry_budget={}),
            "circuit_breakers.thresholds[0]",
            'unsupported field "retry_budget" (supported: priority, max_connections, ',
        ),
        (
            lambda c: c["circuit_breakers"]["thresholds"][0].update(track_remaining=True),
            "circuit_breakers.thresholds[0]",
            'unsupported field "track_remaining"',
        ),
        (
            lambda c: c["circuit_breakers"]["thresholds"][0].update(max_connection_pools=1),
            "circuit_breakers.thresholds[0]",
            'unsupported field "max_connection_pools"',
        ),
        # outlier detection
        (
            lambda c: c["outlier_detection"].update(success_rate_minimum_hosts=5),
            "outlier_detection",
            'unsupported field "success_rate_minimum_hosts" (supported: consecutive_5xx, ',
        ),
        (
            lambda c: c["outlier_detection"].update(enforcing_success_rate=0),
            "outlier_detection",
            'unsupported field "enforcing_success_rate"',
        ),
        (
            lambda c: c["outlier_detection"].update(consecutive_local_origin_failure=1),
            "outlier_detection",
            'unsupported field "consecutive_local_origin_failure"',
        ),
        (
            lambda c: c["outlier_detection"].update(split_external_local_origin_errors=True),
            "outlier_detection",
            'unsupported field "split_external_local_origin_errors"',
        ),
        (
            lambda c: c["outlier_detection"].update(failure_percentage_threshold=10),
            "outlier_detection",
            'unsupported field "failure_percentage_threshold"',
        ),
        (
            lambda c: c["outlier_detection"].update(max_ejection_time_jitter="1s"),
            "outlier_detection",
            'unsupported field "max_ejection_time_jitter"',
        ),
        (
            lambda c: c["outlier_detection"].update(max_ejection_percent=101),
            "outlier_detection.max_ejection_percent",
            "101 is out of range (0..100)",
        ),
        (
            lambda c: c["outlier_detection"].update(enforcing_consecutive_5xx=101),
            "outlier_detection.enforcing_consecutive_5xx",
            "101 is out of range (0..100)",
        ),
        (
            lambda c: c["outlier_detection"].update(enforcing_consecutive_gateway_failure=200),
            "outlier_detection.enforcing_consecutive_gateway_failure",
            "200 is out of range (0..100)",
        ),
        (
            lambda c: c["outlier_detection"].update(interval="0s"),
            "outlier_detection.interval",
            "must be greater than 0",
        ),
        (
            lambda c: c["outlier_detection"].update(base_ejection_time="-1s"),
            "outlier_detection.base_ejection_time",
            "must be greater than 0",
        ),
        (
            lambda c: c["outlier_detection"].update(max_ejection_time="0s"),
            "outlier_detection.max_ejection_time",
            "must be greater than 0",
        ),
        (
            lambda c: c["outlier_detection"].update(base_ejection_time="60s", max_ejection_time="30s"),
            "outlier_detection.base_ejection_time",
            "60s is longer than max_ejection_time (30s)",
        ),
        (
            lambda c: c["outlier_detection"].update(base_ejection_time="600s"),
            "outlier_detection.base_ejection_time",
            "600s is longer than max_ejection_time (300s)",
        ),
        # protocol options
        (
            lambda c: c["typed_extension_protocol_options"].update(
                {
                    "envoy.extensions.upstreams.tcp.v3.TcpProtocolOptions": {
                        "@type": URL + "envoy.extensions.upstreams.tcp.v3.TcpProtocolOptions"
                    }
                }
            ),
            "typed_extension_protocol_options",
            f'unsupported key "envoy.extensions.upstreams.tcp.v3.TcpProtocolOptions" (supported: {UPSTREAM_HTTP})',
        ),
        (
            lambda c: c["typed_extension_protocol_options"][UPSTREAM_HTTP].update(
                {"@type": URL + "envoy.extensions.upstreams.tcp.v3.TcpProtocolOptions"}
            ),
            f'typed_extension_protocol_options["{UPSTREAM_HTTP}"]',
            f"unsupported protocol options {UPSTREAM_HTTP} ({URL}envoy.extensions.upstreams.tcp.v3.TcpProtocolOptions)",
        ),
        (lambda c: c.update(http2_protocol_options={}), "", 'unsupported field "http2_protocol_options"'),
        (lambda c: c.update(common_http_protocol_options={}), "", 'unsupported field "common_http_protocol_options"'),
        (lambda c: c.update(http_protocol_options={}), "", 'unsupported field "http_protocol_options"'),
        (
            lambda c: c.update(protocol_selection="USE_DOWNSTREAM_PROTOCOL"),
            "",
            'unsupported field "protocol_selection"',
        ),
        (
            lambda c: c.update(max_requests_per_connection=100),
            "max_requests_per_connection",
            f'cannot be set together with typed_extension_protocol_options["{UPSTREAM_HTTP}"]'
            ".common_http_protocol_options.max_requests_per_connection",
        ),
    ],
)
def test_cluster_rules(change, path, text):
    def both(doc):
        upstream_options(doc)["common_http_protocol_options"]["max_requests_per_connection"] = 10
        change(cluster(doc))

    check_error(both, f"{CLUSTER_AT}: {path}" if path else CLUSTER_AT, text)


@pytest.mark.parametrize(
    "options, path, text",
    [
        ({}, "", "one of explicit_http_config or use_downstream_protocol_config is required"),
        (
            {"common_http_protocol_options": {"idle_timeout": "1s"}},
            "",
            "one of explicit_http_config or use_downstream_protocol_config is required",
        ),
        (
            {"auto_config": {}},
            "",
            'unsupported field "auto_config" (supported: common_http_protocol_options, explicit_http_config, '
            "use_downstream_protocol_config)",
        ),
        (
            {"explicit_http_config": {}},
            "explicit_http_config.http_protocol_options",
            "required (meshcore speaks HTTP/1.1",
        ),
        (
            {"explicit_http_config": {"http2_protocol_options": {}}},
            "explicit_http_config",
            'unsupported field "http2_protocol_options" (supported: http_protocol_options)',
        ),
        (
            {"explicit_http_config": {"http3_protocol_options": {}}},
            "explicit_http_config",
            'unsupported field "http3_protocol_options"',
        ),
        (
            {"explicit_http_config": {"http_protocol_options": {"accept_http_10": True}}},
            "explicit_http_config.http_protocol_options",
            'unsupported field "accept_http_10" (supported: none)',
        ),
        (
            {"use_downstream_protocol_config": {"http2_protocol_options": {}}},
            "use_downstream_protocol_config",
            'unsupported field "http2_protocol_options" (supported: http_protocol_options)',
        ),
        (
            {"use_downstream_protocol_config": {"http_protocol_options": {"enable_trailers": True}}},
            "use_downstream_protocol_config.http_protocol_options",
            'unsupported field "enable_trailers" (supported: none)',
        ),
        (
            {
                "explicit_http_config": {"http_protocol_options": {}},
                "common_http_protocol_options": {"max_headers_count": 10},
            },
            "common_http_protocol_options",
            'unsupported field "max_headers_count" (supported: idle_timeout, max_requests_per_connection)',
        ),
        (
            {
                "explicit_http_config": {"http_protocol_options": {}},
                "common_http_protocol_options": {"idle_timeout": "-1s"},
            },
            "common_http_protocol_options.idle_timeout",
            "must not be negative",
        ),
        (
            {
                "explicit_http_config": {"http_protocol_options": {}},
                "upstream_http_protocol_options": {"auto_sni": True},
            },
            "",
            'unsupported field "upstream_http_protocol_options"',
        ),
        (
            {"explicit_http_config": {"http_protocol_options": {}}, "http_filters": [{"name": "f"}]},
            "",
            'unsupported field "http_filters"',
        ),
        (
            {"explicit_http_config": {"http_protocol_options": {}}, "retry_policy": {}},
            "",
            'unsupported field "retry_policy"',
        ),
    ],
)
def test_upstream_http_protocol_options_rules(options, path, text):
    check_error(_http_options(**options), at(OPTIONS_AT, path), text)


@pytest.mark.parametrize(
    "options",
    [
        {"explicit_http_config": {"http_protocol_options": {}}},
        {"use_downstream_protocol_config": {}},
        {"use_downstream_protocol_config": {"http_protocol_options": {}}},
        {
            "common_http_protocol_options": {"max_requests_per_connection": 1},
            "explicit_http_config": {"http_protocol_options": {}},
        },
    ],
)
def test_upstream_http_protocol_options_accepted(options):
    parse_changed(_http_options(**options))


@pytest.mark.parametrize(
    "change",
    [
        lambda c: c.update(lb_policy="RING_HASH"),
        lambda c: c.update(lb_policy="RING_HASH", ring_hash_lb_config={}),
        lambda c: c.update(lb_policy="RING_HASH", ring_hash_lb_config={"minimum_ring_size": 8388608}),
        lambda c: c.update(lb_policy="RING_HASH", ring_hash_lb_config={"maximum_ring_size": 1024}),
        lambda c: c.update(lb_policy="RING_HASH", ring_hash_lb_config={"hash_function": "XX_HASH"}),
        lambda c: c["circuit_breakers"]["thresholds"][0].update(priority="DEFAULT", max_retries=0),
        lambda c: c.update(circuit_breakers={}),
        lambda c: c.update(circuit_breakers={"thresholds": []}),
        lambda c: c["outlier_detection"].update(max_ejection_percent=100, enforcing_consecutive_5xx=0),
        lambda c: c["outlier_detection"].update(base_ejection_time="300s"),
        lambda c: c["outlier_detection"].update(base_ejection_time="600s", max_ejection_time="600s"),
        lambda c: c.update(outlier_detection={}),
        lambda c: c.update(max_requests_per_connection=100, typed_extension_protocol_options=None),
        lambda c: c.update(max_requests_per_connection=100),  # the example's options do not set it
    ],
)
def test_cluster_settings_accepted(change):
    parse_changed(lambda d: change(cluster(d)))


# ---- the table as documentation -------------------------------------------------------


def test_supported_summary_names_the_http_subset():
    assert "HttpConnectionManager [terminal]" in SUPPORTED
    assert "codec_type (AUTO | HTTP1)" in SUPPORTED
    assert "http_filters" in SUPPORTED and "Router [terminal]" in SUPPORTED
    assert (
        "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager, in "
        "common_http_protocol_options: idle_timeout, max_requests_per_connection, max_headers_count"
    ) in SUPPORTED
    assert f"typed_per_filter_config [{FAULT_KEY}] (per-filter config: HTTPFault)" in SUPPORTED
    assert "envoy.config.core.v3.Http1ProtocolOptions: (no fields)" in SUPPORTED
