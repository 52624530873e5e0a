"""The HTTP data plane's xDS subset (meshcore.config): http_connection_manager,
HTTP filters, routes, and the cluster settings that go with them.

Like test_config_bootstrap.py, every test parses real YAML text: most start
from examples/http.yaml, change one thing and check that the error names the
file, the resource and the field path. FULL (below) sets every supported
field at once and must load. This file: what loads, the filter chain, the
http_connection_manager and its HTTP filters; test_config_http_vhosts.py,
_routes.py and _clusters.py the rest; config_http_helpers.py what they share.
"""
import copy
import textwrap

import pytest
from config_http_helpers import (
    CANARY,
    CORS_TYPE,
    EXAMPLE,
    FAULT_KEY,
    FAULT_TYPE,
    HCM_AT,
    HCM_TYPE,
    LISTENER,
    PREVIOUS_HOSTS_TYPE,
    ROUTER_TYPE,
    UPSTREAM_HTTP,
    URL,
    VH_AT,
    at,
    check_error,
    hcm,
    http_filters,
    parse_changed,
    route,
    route_fault,
)
from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.config.cluster.v3 import cluster_pb2

from meshcore import xds_types
from meshcore.config import load_bootstrap, parse_bootstrap, validate_bootstrap
from meshcore.config import schema as config_schema
from meshcore.errors import ConfigError

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
    h.codec_type = h.HTTP3
    flt.typed_config.Pack(h)
    with pytest.raises(ConfigError) as info:
        validate_bootstrap(bs, "built")
    assert str(info.value) == (
        'built: listener "outbound_http": filter_chains[0].filters[0].typed_config.codec_type: '
        "unsupported value HTTP3 (supported: AUTO, HTTP1, HTTP2)"
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
          common_http_protocol_options:
            {{idle_timeout: 60s, max_requests_per_connection: 100, max_headers_count: 50, max_stream_duration: 300s}}
          upgrade_configs: [{{upgrade_type: websocket, enabled: true}}]
          http_protocol_options: {{accept_http_10: true, default_host_for_http_10: legacy.svc}}
          http2_protocol_options: {{max_concurrent_streams: 50, initial_stream_window_size: 131072,
                                   initial_connection_window_size: 2097152, max_outbound_control_frames: 500,
                                   max_consecutive_inbound_frames_with_empty_payload: 2, allow_connect: true,
                                   connection_keepalive: {{interval: 30s, timeout: 5s,
                                                          interval_jitter: {{value: 10}}}}}}
          stream_idle_timeout: 30s
          request_timeout: 60s
          request_headers_timeout: 5s
          max_request_headers_kb: 96
          generate_request_id: false
          preserve_external_request_id: true
          use_remote_address: true
          xff_num_trusted_hops: 1
          server_name: meshcore
          normalize_path: true
          merge_slashes: true
          path_with_escaped_slashes_action: UNESCAPE_AND_REDIRECT
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
                  cancelled,deadline-exceeded,resource-exhausted,internal"
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
                  max_stream_duration:
                    {{max_stream_duration: 0s, grpc_timeout_header_max: 2s, grpc_timeout_header_offset: 0.01s}}
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
                  max_grpc_timeout: 5s
                  grpc_timeout_offset: 0.01s
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
        use_downstream_protocol_config:
          http_protocol_options: {{}}
          http2_protocol_options: {{max_concurrent_streams: 10, initial_stream_window_size: 65535,
                                   initial_connection_window_size: 1048576}}
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
  - name: h2
    typed_extension_protocol_options:
      {UPSTREAM_HTTP}:
        "@type": {URL}{UPSTREAM_HTTP}
        explicit_http_config:
          http2_protocol_options:
            {{max_concurrent_streams: 100, initial_stream_window_size: 65536, initial_connection_window_size: 1048576,
             connection_keepalive: {{interval: 30s, timeout: 5s, interval_jitter: {{value: 10}},
                                    connection_idle_interval: 60s}}}}
  - name: either
    typed_extension_protocol_options:
      {UPSTREAM_HTTP}:
        "@type": {URL}{UPSTREAM_HTTP}
        use_downstream_protocol_config: {{http_protocol_options: {{}}, http2_protocol_options: {{}}}}
  - name: c
    typed_extension_protocol_options:
      {UPSTREAM_HTTP}:
        "@type": {URL}{UPSTREAM_HTTP}
        explicit_http_config: {{http2_protocol_options: {{max_concurrent_streams: 100}}}}
  - name: d
    http2_protocol_options: {{initial_connection_window_size: 65535}}
"""


def test_full_config_loads():
    bs = parse_bootstrap(FULL, "full.yaml")
    a, b, _, _, c, d = bs.static_resources.clusters
    assert c.name == "c" and d.http2_protocol_options.initial_connection_window_size.value == 65535
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
                 "Percent", "Decorator", "decorator", "Cluster.metadata", "core.v3.Metadata", "traffic_direction",
                 # the overload manager, buffer limits and underscores: tests/python/test_config_overload.py
                 "overload", "resource_monitors", "per_connection_buffer_limit_bytes",
                 "headers_with_underscores_action")
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
        (lambda h: h.update(codec_type="HTTP3"), "codec_type",
         "unsupported value HTTP3 (supported: AUTO, HTTP1, HTTP2)"),
        (lambda h: h.update(codec_type="SPDY"), "codec_type", "unsupported value SPDY (supported: AUTO, HTTP1, HTTP2)"),
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
        (lambda h: h.update(http2_protocol_options={"max_concurrent_streams": 0}),
         "http2_protocol_options.max_concurrent_streams", "0 is out of range (1..2147483647)"),
        (lambda h: h.update(http2_protocol_options={"initial_stream_window_size": 1024}),
         "http2_protocol_options.initial_stream_window_size", "1024 is out of range (65535..2147483647)"),
        (lambda h: h.update(http2_protocol_options={"hpack_table_size": 0}),
         "http2_protocol_options", 'unsupported field "hpack_table_size"'),
        (
            lambda h: h.update(upgrade_configs=[{"upgrade_type": "CONNECT"}]),
            "upgrade_configs[0].upgrade_type",
            'unsupported upgrade "CONNECT" (supported: websocket)',
        ),
        (lambda h: h.update(drain_timeout="1s"), "", 'unsupported field "drain_timeout"'),
        (
            lambda h: h["common_http_protocol_options"].update(max_stream_duration="-10s"),
            "common_http_protocol_options.max_stream_duration",
            "must not be negative",
        ),
        (
            lambda h: h["common_http_protocol_options"].update(max_connection_duration="60s"),
            "common_http_protocol_options",
            'unsupported field "max_connection_duration" (supported: idle_timeout, max_requests_per_connection, '
            "max_headers_count, headers_with_underscores_action, max_stream_duration)",
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
            'unsupported field "allow_absolute_url" (supported: accept_http_10, default_host_for_http_10)',
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
        (lambda h: h.update(normalize_path="yes"), "normalize_path", 'expected true or false, got "yes"'),
        (
            lambda h: h.update(path_with_escaped_slashes_action="DROP"),
            "path_with_escaped_slashes_action",
            "DROP",
        ),
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
        ("normalize_path", True),
        ("merge_slashes", True),
        ("path_with_escaped_slashes_action", "REJECT_REQUEST"),
        ("path_with_escaped_slashes_action", "UNESCAPE_AND_FORWARD"),
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
