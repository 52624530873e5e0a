"""The supported subset of Envoy's xDS v3 schema, as data: SCHEMA maps each
message type to its Rule (config/rules.py), with the value checks of each
resource from its own module (listener, http, route, cluster, tls, rbac,
telemetry). An unlisted field is an error (config/walk.py enforces it).
Adding a feature means adding table rows (and, for new typed_config types, a
row in the filter tables of rules.py) -- the walker stays generic.

SUPPORTED is a readable summary of the table (docs/xds.md shows it verbatim).
"""
from meshcore.xds_types import (
    CONNECTION_LIMIT,
    DOWNSTREAM_TLS,
    FAULT_FILTER_NAME,
    HCM,
    HTTP_FAULT,
    HTTP_RBAC,
    NETWORK_RBAC,
    OTEL_TRACER,
    PREVIOUS_HOSTS,
    ROUTER,
    TCP_PROXY,
    TLS_INSPECTOR,
    TYPED_STRUCT,
    UDPA_TYPED_STRUCT,
    UPSTREAM_HTTP_OPTIONS,
    UPSTREAM_TLS,
    ZIPKIN_TRACER,
)

from .cluster import (
    check_circuit_breakers,
    check_cluster,
    check_endpoint,
    check_explicit_http_config,
    check_lb_endpoint,
    check_load_assignment,
    check_outlier_detection,
    check_ring_hash,
    check_upstream_http_options,
)
from .http import (
    DENOMINATORS,
    check_fault_abort,
    check_fault_delay,
    check_fractional_percent,
    check_hcm,
    check_http2_options,
    check_http_options,
    check_keepalive,
    check_upgrade_config,
)
from .listener import (
    check_address,
    check_cluster_weight,
    check_connection_limit,
    check_filter_chain,
    check_http_filter,
    check_listener,
    check_network_filter,
    check_socket_address,
    check_tcp_proxy,
    check_weighted_clusters,
    needs_typed_config,
)
from .overload import (
    DOWNSTREAM_CONNECTIONS,
    FIXED_HEAP,
    INJECTED_RESOURCE,
    check_downstream_connections,
    check_fixed_heap,
    check_injected_resource,
    check_overload_action,
    check_overload_manager,
    check_trigger,
)
from .rbac import (
    check_cidr,
    check_metadata_matcher,
    check_network_rbac,
    check_path_matcher,
    check_permission,
    check_permission_set,
    check_port_range,
    check_principal,
    check_principal_set,
    check_rbac_filter,
    check_rbac_policy,
    check_rbac_rules,
)
from .route import (
    check_direct_response,
    check_hash_cookie,
    check_hash_header,
    check_hash_policy,
    check_header_matcher,
    check_header_value,
    check_header_value_option,
    check_max_stream_duration,
    check_mirror_policy,
    check_query_parameter_matcher,
    check_redirect,
    check_regex_matcher,
    check_regex_substitution,
    check_retry_back_off,
    check_retry_policy,
    check_route,
    check_route_action,
    check_route_cluster_weight,
    check_route_config,
    check_route_match,
    check_route_weighted_clusters,
    check_runtime_fraction,
    check_string_matcher,
    check_virtual_host,
)
from .rules import (
    ACCESS_LOGGERS,
    HTTP_FILTERS,
    NETWORK_FILTERS,
    AnyOf,
    Rule,
)
from .telemetry import (
    check_file_access_log,
    check_http_uri,
    check_log_format,
    check_otel_tracer,
    check_tracing,
    check_zipkin_tracer,
)
from .tls import (
    check_common_tls,
    check_data_source,
    check_downstream_tls,
    check_san_matcher,
    check_sds_config,
    check_secret,
    check_tls_certificate,
    check_transport_socket,
)

_TLS = "envoy.extensions.transport_sockets.tls.v3."


_RBAC = "envoy.config.rbac.v3."


_ROUTE = "envoy.config.route.v3."


_HCM_PKG = "envoy.extensions.filters.network.http_connection_manager.v3."


_CLUSTER = "envoy.config.cluster.v3."


# the HTTP/2 settings the codecs honour, downstream and upstream
H2_SETTINGS = ("max_concurrent_streams", "initial_stream_window_size", "initial_connection_window_size",
               "connection_keepalive")
# connection_idle_interval pings before a new stream on an idle client connection: upstream only
KEEPALIVE = ("interval", "timeout", "interval_jitter")


_HEADER_OPS = (
    "request_headers_to_add",
    "request_headers_to_remove",
    "response_headers_to_add",
    "response_headers_to_remove",
)


SCHEMA = {
    "envoy.config.bootstrap.v3.Bootstrap": Rule(("node", "static_resources", "admin", "overload_manager")),
    # -- overload manager (config/overload.py)
    "envoy.config.overload.v3.OverloadManager": Rule(
        ("refresh_interval", "resource_monitors", "actions"), check=check_overload_manager
    ),
    "envoy.config.overload.v3.ResourceMonitor": Rule(
        ("name", "typed_config"),
        anys={"typed_config": AnyOf("resource monitor",
                                    {DOWNSTREAM_CONNECTIONS: False, FIXED_HEAP: False, INJECTED_RESOURCE: False})},
        check=needs_typed_config("resource monitor"),
    ),
    DOWNSTREAM_CONNECTIONS: Rule(("max_active_downstream_connections",), check=check_downstream_connections),
    FIXED_HEAP: Rule(("max_heap_size_bytes",), check=check_fixed_heap),
    INJECTED_RESOURCE: Rule(("filename",), check=check_injected_resource),
    "envoy.config.overload.v3.OverloadAction": Rule(("name", "triggers"), check=check_overload_action),
    "envoy.config.overload.v3.Trigger": Rule(("name", "threshold", "scaled"), check=check_trigger),
    "envoy.config.overload.v3.ThresholdTrigger": Rule(("value",)),
    "envoy.config.overload.v3.ScaledTrigger": Rule(("scaling_threshold", "saturation_threshold")),
    "envoy.config.bootstrap.v3.Bootstrap.StaticResources": Rule(("listeners", "clusters", "secrets")),
    "envoy.config.core.v3.Node": Rule(("id", "cluster", "metadata")),
    "envoy.config.bootstrap.v3.Admin": Rule(("address", "access_log_path", "access_log")),
    "envoy.config.accesslog.v3.AccessLog": Rule(
        ("name", "typed_config"),
        anys={"typed_config": AnyOf("access logger", ACCESS_LOGGERS)},
        check=needs_typed_config("access logger"),
    ),
    "envoy.extensions.access_loggers.file.v3.FileAccessLog": Rule(
        ("path", "log_format"), check=check_file_access_log
    ),
    "envoy.extensions.access_loggers.stream.v3.StdoutAccessLog": Rule(("log_format",)),
    "envoy.extensions.access_loggers.stream.v3.StderrAccessLog": Rule(("log_format",)),
    "envoy.config.core.v3.SubstitutionFormatString": Rule(
        ("text_format_source", "json_format", "text_format"), check=check_log_format
    ),
    "envoy.config.core.v3.Address": Rule(("socket_address",), check=check_address),
    "envoy.config.core.v3.SocketAddress": Rule(
        ("address", "port_value", "protocol"), enums={"protocol": ("TCP",)}, check=check_socket_address
    ),
    # -- listeners
    "envoy.config.listener.v3.Listener": Rule(
        ("name", "address", "stat_prefix", "tcp_backlog_size", "enable_reuse_port", "filter_chains",
         "listener_filters", "listener_filters_timeout", "traffic_direction", "per_connection_buffer_limit_bytes"),
        check=check_listener,
    ),
    "envoy.config.listener.v3.ListenerFilter": Rule(
        ("name", "typed_config"),
        anys={"typed_config": AnyOf("listener filter", {TLS_INSPECTOR: False})},
        check=needs_typed_config("listener filter"),
    ),
    TLS_INSPECTOR: Rule(()),
    "envoy.config.listener.v3.FilterChain": Rule(
        ("filters", "filter_chain_match", "transport_socket", "transport_socket_connect_timeout", "name"),
        check=check_filter_chain,
    ),
    "envoy.config.listener.v3.FilterChainMatch": Rule(("transport_protocol",)),
    "envoy.config.core.v3.TransportSocket": Rule(
        ("name", "typed_config"),
        anys={"typed_config": AnyOf("transport socket", {DOWNSTREAM_TLS: False, UPSTREAM_TLS: False})},
        check=check_transport_socket,
    ),
    DOWNSTREAM_TLS: Rule(("common_tls_context", "require_client_certificate"), check=check_downstream_tls),
    UPSTREAM_TLS: Rule(("common_tls_context", "sni")),
    _TLS + "CommonTlsContext": Rule(
        ("tls_params", "tls_certificates", "tls_certificate_sds_secret_configs", "validation_context",
         "validation_context_sds_secret_config", "combined_validation_context", "alpn_protocols"),
        check=check_common_tls,
    ),
    _TLS + "CommonTlsContext.CombinedCertificateValidationContext": Rule(
        ("default_validation_context", "validation_context_sds_secret_config")
    ),
    _TLS + "TlsParameters": Rule(
        ("tls_minimum_protocol_version", "tls_maximum_protocol_version", "cipher_suites")
    ),
    _TLS + "TlsCertificate": Rule(("certificate_chain", "private_key"), check=check_tls_certificate),
    _TLS + "CertificateValidationContext": Rule(
        ("trusted_ca", "match_typed_subject_alt_names", "match_subject_alt_names")
    ),
    _TLS + "SubjectAltNameMatcher": Rule(("san_type", "matcher"), check=check_san_matcher),
    _TLS + "SdsSecretConfig": Rule(("name", "sds_config"), check=check_sds_config),
    _TLS + "Secret": Rule(("name", "tls_certificate", "validation_context"), check=check_secret),
    "envoy.config.listener.v3.Filter": Rule(
        ("name", "typed_config"),
        anys={"typed_config": AnyOf("filter", NETWORK_FILTERS)},
        check=check_network_filter,
    ),
    TYPED_STRUCT: Rule(("type_url", "value")),  # which filter may use it: check_typed_struct_filter
    UDPA_TYPED_STRUCT: Rule(("type_url", "value")),
    CONNECTION_LIMIT: Rule(("stat_prefix", "max_connections"), check=check_connection_limit),
    TCP_PROXY: Rule(
        ("stat_prefix", "cluster", "weighted_clusters", "idle_timeout", "max_connect_attempts", "access_log"),
        check=check_tcp_proxy,
    ),
    TCP_PROXY + ".WeightedCluster": Rule(("clusters",), check=check_weighted_clusters),
    # -- RBAC: evaluated in the core (route/rbac.c). Metadata matchers (JWT
    # claims, other filters' dynamic metadata) never match: meshcore has no
    # filter that writes dynamic metadata. requested_server_name: see docs.
    HTTP_RBAC: Rule(("rules", "shadow_rules_stat_prefix"), check=check_rbac_filter),
    NETWORK_RBAC: Rule(("rules", "stat_prefix", "shadow_rules_stat_prefix"), check=check_network_rbac),
    _RBAC + "RBAC": Rule(("action", "policies"), enums={"action": ("ALLOW", "DENY")}, check=check_rbac_rules),
    _RBAC + "Policy": Rule(("permissions", "principals"), check=check_rbac_policy),
    _RBAC + "Permission": Rule(
        ("and_rules", "or_rules", "not_rule", "any", "header", "url_path", "destination_ip", "destination_port",
         "destination_port_range", "requested_server_name", "metadata"),
        check=check_permission,
    ),
    _RBAC + "Permission.Set": Rule(("rules",), check=check_permission_set),
    _RBAC + "Principal": Rule(
        ("and_ids", "or_ids", "not_id", "any", "authenticated", "source_ip", "direct_remote_ip", "remote_ip",
         "header", "url_path", "metadata"),
        check=check_principal,
    ),
    _RBAC + "Principal.Set": Rule(("ids",), check=check_principal_set),
    _RBAC + "Principal.Authenticated": Rule(("principal_name",)),
    "envoy.config.core.v3.CidrRange": Rule(("address_prefix", "prefix_len"), check=check_cidr),
    "envoy.type.v3.Int32Range": Rule(("start", "end"), check=check_port_range),
    "envoy.type.matcher.v3.PathMatcher": Rule(("path",), check=check_path_matcher),
    "envoy.type.matcher.v3.MetadataMatcher": Rule(("filter", "path", "value", "invert"),
                                                  check=check_metadata_matcher),
    "envoy.type.matcher.v3.MetadataMatcher.PathSegment": Rule(("key",)),
    "envoy.type.matcher.v3.ValueMatcher": Rule(("string_match", "or_match", "list_match")),
    "envoy.type.matcher.v3.OrMatcher": Rule(("value_matchers",)),
    "envoy.type.matcher.v3.ListMatcher": Rule(("one_of",)),
    TCP_PROXY + ".WeightedCluster.ClusterWeight": Rule(("name", "weight"), check=check_cluster_weight),
    # -- http_connection_manager (access_log: not yet)
    HCM: Rule(
        (
            "stat_prefix",
            "codec_type",
            "route_config",
            "http_filters",
            "common_http_protocol_options",
            "stream_idle_timeout",
            "request_timeout",
            "request_headers_timeout",
            "max_request_headers_kb",
            "generate_request_id",
            "preserve_external_request_id",
            "use_remote_address",
            "xff_num_trusted_hops",
            "server_name",
            "http_protocol_options",
            "access_log",
            "tracing",
            "normalize_path",
            "merge_slashes",
            "path_with_escaped_slashes_action",
                        "http2_protocol_options",
            "upgrade_configs",
        ),
        enums={
            "codec_type": ("AUTO", "HTTP1", "HTTP2"),
            "path_with_escaped_slashes_action": (
                "IMPLEMENTATION_SPECIFIC_DEFAULT", "KEEP_UNCHANGED", "REJECT_REQUEST",
                "UNESCAPE_AND_REDIRECT", "UNESCAPE_AND_FORWARD",
            ),
        },
        nested={
            "common_http_protocol_options": Rule(
                ("idle_timeout", "max_requests_per_connection", "max_headers_count",
                 "headers_with_underscores_action", "max_stream_duration"),
                check=check_http_options,
            ),
            "http_protocol_options": Rule(("accept_http_10", "default_host_for_http_10")),
            "http2_protocol_options": Rule(
                ("max_concurrent_streams", "initial_stream_window_size", "initial_connection_window_size",
                 "max_outbound_control_frames", "max_consecutive_inbound_frames_with_empty_payload",
                 "allow_connect",  # Envoy's switch for RFC 8441; here upgrade_configs decides (docs/http2.md)
                 "connection_keepalive"),
                check=check_http2_options,
                nested={"connection_keepalive": Rule(KEEPALIVE, check=check_keepalive)},
            ),
            "tracing": Rule(("random_sampling", "provider"), check=check_tracing),
        },
        check=check_hcm,
    ),
    # HTTP/1.1 Upgrade (WebSocket) becomes a byte tunnel after the 101
    _HCM_PKG + "HttpConnectionManager.UpgradeConfig": Rule(("upgrade_type", "enabled"), check=check_upgrade_config),
    "envoy.type.v3.Percent": Rule(("value",)),
    "envoy.config.trace.v3.Tracing.Http": Rule(
        ("name", "typed_config"),
        anys={"typed_config": AnyOf("tracer", {OTEL_TRACER: False, ZIPKIN_TRACER: False})},
        check=needs_typed_config("tracer"),
    ),
    OTEL_TRACER: Rule(("service_name", "http_service", "grpc_service"), check=check_otel_tracer),
    "envoy.config.core.v3.HttpService": Rule(("http_uri",)),
    "envoy.config.core.v3.HttpUri": Rule(("uri", "cluster", "timeout"), check=check_http_uri),
    ZIPKIN_TRACER: Rule(
        ("collector_cluster", "collector_endpoint", "collector_endpoint_version", "collector_hostname",
         "trace_id_128bit", "shared_span_context"),
        enums={"collector_endpoint_version": ("HTTP_JSON",)},
        check=check_zipkin_tracer,
    ),
    _HCM_PKG + "HttpFilter": Rule(
        ("name", "typed_config"),
        anys={"typed_config": AnyOf("http filter", HTTP_FILTERS)},
        check=check_http_filter,
    ),
    ROUTER: Rule(()),  # any router setting is one we do not implement
    HTTP_FAULT: Rule(("delay", "abort")),  # empty is fine: Istio's filter-level config, routes set the faults
    "envoy.extensions.filters.common.fault.v3.FaultDelay": Rule(
        ("fixed_delay", "percentage"), check=check_fault_delay
    ),
    "envoy.extensions.filters.http.fault.v3.FaultAbort": Rule(("http_status", "percentage"), check=check_fault_abort),
    "envoy.type.v3.FractionalPercent": Rule(
        ("numerator", "denominator"),
        enums={"denominator": tuple(DENOMINATORS)},
        check=check_fractional_percent,
    ),
    # -- routes
    _ROUTE + "RouteConfiguration": Rule(
        ("name", "virtual_hosts", *_HEADER_OPS, "validate_clusters"),  # validate_clusters: we always do
        check=check_route_config,
    ),
    _ROUTE + "VirtualHost": Rule(
        ("name", "domains", "routes", *_HEADER_OPS, "retry_policy"), check=check_virtual_host
    ),
    _ROUTE + "Route": Rule(
        ("name", "match", "route", "redirect", "direct_response", *_HEADER_OPS, "typed_per_filter_config",
         "decorator"),
        anys={"typed_per_filter_config": AnyOf("per-filter config", {HTTP_FAULT: False})},
        keys={"typed_per_filter_config": (FAULT_FILTER_NAME,)},
        check=check_route,
    ),
    _ROUTE + "Decorator": Rule(("operation",)),  # names the route's spans
    _ROUTE + "RouteMatch": Rule(
        (
            "prefix",
            "path",
            "safe_regex",
            "path_separated_prefix",
            "case_sensitive",
            "headers",
            "query_parameters",
        ),
        check=check_route_match,
    ),
    "envoy.type.matcher.v3.RegexMatcher": Rule(("google_re2", "regex"), check=check_regex_matcher),
    "envoy.type.matcher.v3.RegexMatcher.GoogleRE2": Rule(()),
    "envoy.type.matcher.v3.RegexMatchAndSubstitute": Rule(
        ("pattern", "substitution"), check=check_regex_substitution
    ),
    _ROUTE + "HeaderMatcher": Rule(
        (
            "name",
            "string_match",
            "present_match",
            "invert_match",
            # deprecated, still written by Istio and older configs
            "exact_match",
            "prefix_match",
            "suffix_match",
            "contains_match",
            "safe_regex_match",
        ),
        check=check_header_matcher,
    ),
    _ROUTE + "QueryParameterMatcher": Rule(
        ("name", "string_match", "present_match"), check=check_query_parameter_matcher
    ),
    "envoy.type.matcher.v3.StringMatcher": Rule(
        ("exact", "prefix", "suffix", "contains", "safe_regex", "ignore_case"), check=check_string_matcher
    ),
    _ROUTE + "RouteAction": Rule(
        (
            "cluster",
            "weighted_clusters",
            "timeout",
            "retry_policy",
            "prefix_rewrite",
            "regex_rewrite",
            "host_rewrite_literal",
            "request_mirror_policies",
            "hash_policy",
            "max_stream_duration",  # the stream's limit, grpc-timeout
            "max_grpc_timeout",  # deprecated: istiod's grpc-timeout cap
            "grpc_timeout_offset",  # deprecated
        ),
        check=check_route_action,
    ),
    # a stream's lifetime and gRPC's grpc-timeout header (Envoy's semantics)
    _ROUTE + "RouteAction.MaxStreamDuration": Rule(
        ("max_stream_duration", "grpc_timeout_header_max", "grpc_timeout_header_offset"),
        check=check_max_stream_duration,
    ),
    _ROUTE + "WeightedCluster": Rule(("clusters",), check=check_route_weighted_clusters),
    _ROUTE + "WeightedCluster.ClusterWeight": Rule(("name", "weight"), check=check_route_cluster_weight),
    _ROUTE + "RetryPolicy": Rule(
        (
            "retry_on",
            "num_retries",
            "per_try_timeout",
            "retry_back_off",
            "retry_host_predicate",
            "host_selection_retry_max_attempts",
            "retriable_status_codes",
        ),
        check=check_retry_policy,
    ),
    _ROUTE + "RetryPolicy.RetryBackOff": Rule(("base_interval", "max_interval"), check=check_retry_back_off),
    _ROUTE + "RetryPolicy.RetryHostPredicate": Rule(
        ("name", "typed_config"),
        anys={"typed_config": AnyOf("retry host predicate", {PREVIOUS_HOSTS: False})},
        check=needs_typed_config("retry host predicate"),
    ),
    PREVIOUS_HOSTS: Rule(()),
    _ROUTE + "RouteAction.RequestMirrorPolicy": Rule(("cluster", "runtime_fraction"), check=check_mirror_policy),
    "envoy.config.core.v3.RuntimeFractionalPercent": Rule(("default_value",), check=check_runtime_fraction),
    _ROUTE + "RouteAction.HashPolicy": Rule(
        ("header", "cookie", "connection_properties", "terminal"), check=check_hash_policy
    ),
    _ROUTE + "RouteAction.HashPolicy.Header": Rule(("header_name",), check=check_hash_header),
    _ROUTE + "RouteAction.HashPolicy.Cookie": Rule(("name", "ttl", "path"), check=check_hash_cookie),
    _ROUTE + "RouteAction.HashPolicy.ConnectionProperties": Rule(("source_ip",)),
    _ROUTE + "RedirectAction": Rule(
        (
            "scheme_redirect",
            "https_redirect",
            "host_redirect",
            "port_redirect",
            "path_redirect",
            "prefix_rewrite",
            "response_code",
            "strip_query",
        ),
        check=check_redirect,
    ),
    _ROUTE + "DirectResponseAction": Rule(
        ("status", "body"),
        nested={"body": Rule(("inline_string", "inline_bytes"))},
        check=check_direct_response,
    ),
    # Certificates, keys and trust bundles: inline or from a file (read by
    # the compiler, in Python; the core never opens files).
    "envoy.config.core.v3.DataSource": Rule(("inline_string", "inline_bytes", "filename"), check=check_data_source),
    "envoy.config.core.v3.HeaderValueOption": Rule(
        ("header", "append", "append_action"), check=check_header_value_option
    ),
    "envoy.config.core.v3.HeaderValue": Rule(("key", "value"), check=check_header_value),
    # -- clusters
    _CLUSTER + "Cluster": Rule(
        (
            "name",
            "type",
            "connect_timeout",
            "lb_policy",
            "load_assignment",
            "ring_hash_lb_config",
            "circuit_breakers",
            "outlier_detection",
            "typed_extension_protocol_options",
            "max_requests_per_connection",  # deprecated; or in typed_extension_protocol_options
            "http2_protocol_options",  # deprecated; or in typed_extension_protocol_options
            "transport_socket",
            "metadata",  # filter_metadata.istio.services: the destination_service labels
            "per_connection_buffer_limit_bytes",
        ),
        enums={"type": ("STATIC",), "lb_policy": ("ROUND_ROBIN", "LEAST_REQUEST", "RANDOM", "RING_HASH")},
        anys={"typed_extension_protocol_options": AnyOf("protocol options", {UPSTREAM_HTTP_OPTIONS: False})},
        keys={"typed_extension_protocol_options": (UPSTREAM_HTTP_OPTIONS,)},
        check=check_cluster,
    ),
    "envoy.config.core.v3.Metadata": Rule(("filter_metadata",)),
    _CLUSTER + "Cluster.RingHashLbConfig": Rule(
        ("minimum_ring_size", "maximum_ring_size", "hash_function"),
        enums={"hash_function": ("XX_HASH",)},
        check=check_ring_hash,
    ),
    _CLUSTER + "CircuitBreakers": Rule(("thresholds",), check=check_circuit_breakers),
    _CLUSTER + "CircuitBreakers.Thresholds": Rule(
        ("priority", "max_connections", "max_pending_requests", "max_requests", "max_retries"),
        enums={"priority": ("DEFAULT",)},
    ),
    _CLUSTER + "OutlierDetection": Rule(
        (
            "consecutive_5xx",
            "consecutive_gateway_failure",
            "interval",
            "base_ejection_time",
            "max_ejection_percent",
            "max_ejection_time",
            "enforcing_consecutive_5xx",
            "enforcing_consecutive_gateway_failure",
        ),
        check=check_outlier_detection,
    ),
    UPSTREAM_HTTP_OPTIONS: Rule(
        ("common_http_protocol_options", "explicit_http_config", "use_downstream_protocol_config"),
        check=check_upstream_http_options,
    ),
    UPSTREAM_HTTP_OPTIONS + ".ExplicitHttpConfig": Rule(
        ("http_protocol_options", "http2_protocol_options"), check=check_explicit_http_config
    ),
    UPSTREAM_HTTP_OPTIONS + ".UseDownstreamHttpConfig": Rule(("http_protocol_options", "http2_protocol_options")),
    # HTTP/2 toward a cluster (proxy/h2_upstream.c)
    "envoy.config.core.v3.Http2ProtocolOptions": Rule(H2_SETTINGS, check=check_http2_options),
    "envoy.config.core.v3.KeepaliveSettings": Rule(KEEPALIVE + ("connection_idle_interval",), check=check_keepalive),
    # In a cluster; the http_connection_manager's own rows are in its `nested`.
    "envoy.config.core.v3.HttpProtocolOptions": Rule(
        ("idle_timeout", "max_requests_per_connection"), check=check_http_options
    ),
    "envoy.config.core.v3.Http1ProtocolOptions": Rule(()),  # HTTP/1.1 with its defaults: set as {}
    "envoy.config.endpoint.v3.ClusterLoadAssignment": Rule(
        ("cluster_name", "endpoints"), check=check_load_assignment
    ),
    "envoy.config.endpoint.v3.LocalityLbEndpoints": Rule(("lb_endpoints",)),
    "envoy.config.endpoint.v3.LbEndpoint": Rule(
        ("endpoint", "load_balancing_weight"), check=check_lb_endpoint
    ),
    "envoy.config.endpoint.v3.Endpoint": Rule(("address",), check=check_endpoint),
}


def any_slot(message_full_name: str, field_name: str) -> AnyOf | None:
    rule = SCHEMA.get(message_full_name)
    return rule.anys.get(field_name) if rule else None


def allowed_keys(message_full_name: str, field_name: str) -> tuple | None:
    rule = SCHEMA.get(message_full_name)
    return rule.keys.get(field_name) if rule else None


def _describe(rule: Rule) -> str:
    parts = []
    for name in rule.fields:
        label = name
        if name in rule.keys:
            label += f" [{' | '.join(rule.keys[name])}]"
        if name in rule.enums:
            label += f" ({' | '.join(rule.enums[name])})"
        elif name in rule.anys:
            slot = rule.anys[name]
            kinds = ", ".join(
                t.rsplit(".", 1)[-1] + (" [terminal]" if terminal else "") for t, terminal in slot.types.items()
            )
            label += f" ({slot.noun}: {kinds})"
        parts.append(label)
    return ", ".join(parts) if parts else "(no fields)"


def describe_supported() -> str:
    """The supported subset as text, one message per line, generated from SCHEMA."""
    lines = []
    for full, rule in SCHEMA.items():
        lines.append(f"{full}: {_describe(rule)}")
        for name, inner in rule.nested.items():
            lines.append(f"{full}, in {name}: {_describe(inner)}")
    return "\n".join(lines)


SUPPORTED = describe_supported()
