"""The HTTP xDS subset: cluster references across resources, and the
cluster settings that go with HTTP. Helpers and the example: config_http_helpers.py."""

import pytest
from config_http_helpers import (
    CANARY,
    CLUSTER_AT,
    FAULT_KEY,
    OPTIONS_AT,
    RC_AT,
    SPLIT,
    UPSTREAM_HTTP,
    URL,
    VH_AT,
    action,
    at,
    check_error,
    cluster,
    error_of,
    parse_changed,
    route_config,
    second_vhost,
    upstream_options,
    vhost,
)

from meshcore.config import SUPPORTED

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
        second_vhost("other")(doc)
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
        (
            lambda c: c.update(http2_protocol_options={"hpack_table_size": 4096}),
            "http2_protocol_options",
            'unsupported field "hpack_table_size" (supported: max_concurrent_streams, initial_stream_window_size, '
            "initial_connection_window_size, connection_keepalive)",
        ),
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
            "one of http_protocol_options or http2_protocol_options is required",
        ),
        (
            {"explicit_http_config": {"http2_protocol_options": {"max_concurrent_streams": 0}}},
            "explicit_http_config.http2_protocol_options.max_concurrent_streams",
            "0 is out of range (1..2147483647)",
        ),
        (
            {"explicit_http_config": {"http2_protocol_options": {"connection_keepalive": {"interval": "1s"}}}},
            "explicit_http_config.http2_protocol_options.connection_keepalive.timeout",
            "required (at least 1ms): how long to wait for the PING's ACK",
        ),
        (
            {"explicit_http_config": {"http2_protocol_options": {"connection_keepalive": {"timeout": "0s"}}}},
            "explicit_http_config.http2_protocol_options.connection_keepalive.timeout",
            "must be at least 1ms",
        ),
        (
            {"explicit_http_config": {"http2_protocol_options": {
                "connection_keepalive": {"timeout": "1s", "interval": "-1s"}}}},
            "explicit_http_config.http2_protocol_options.connection_keepalive.interval",
            "must be at least 1ms",
        ),
        (
            {"explicit_http_config": {"http2_protocol_options": {
                "connection_keepalive": {"timeout": "1s", "connection_idle_interval": "0.0001s"}}}},
            "explicit_http_config.http2_protocol_options.connection_keepalive.connection_idle_interval",
            "must be at least 1ms",
        ),
        (
            {"explicit_http_config": {"http2_protocol_options": {
                "connection_keepalive": {"timeout": "1s", "interval": "ten"}}}},
            "explicit_http_config.http2_protocol_options.connection_keepalive.interval",
            'expected a duration such as "1s"',
        ),
        (
            {"explicit_http_config": {"http2_protocol_options": {
                "connection_keepalive": {"timeout": "1s", "interval_jitter": {"value": 150}}}}},
            "explicit_http_config.http2_protocol_options.connection_keepalive.interval_jitter.value",
            "150 is out of range (0..100)",
        ),
        (
            {"explicit_http_config": {"http2_protocol_options": {
                "connection_keepalive": {"timeout": "1s", "interval_timeout": "1s"}}}},
            "explicit_http_config.http2_protocol_options.connection_keepalive",
            'unknown field "interval_timeout"',
        ),
        (
            {"use_downstream_protocol_config": {"http2_protocol_options": {"connection_keepalive": {}}}},
            "use_downstream_protocol_config.http2_protocol_options.connection_keepalive.timeout",
            "required",
        ),
        (
            {"explicit_http_config": {"http2_protocol_options": {"allow_connect": True}}},
            "explicit_http_config.http2_protocol_options",
            'unsupported field "allow_connect"',
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
            {"use_downstream_protocol_config": {"http3_protocol_options": {}}},
            "use_downstream_protocol_config",
            'unsupported field "http3_protocol_options" (supported: http_protocol_options, http2_protocol_options)',
        ),
        (
            {"use_downstream_protocol_config": {"http2_protocol_options": {"max_concurrent_streams": 0}}},
            "use_downstream_protocol_config.http2_protocol_options.max_concurrent_streams",
            "0 is out of range (1..2147483647)",
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
        {"explicit_http_config": {"http2_protocol_options": {"connection_keepalive": {"timeout": "1s"}}}},
        {"explicit_http_config": {"http2_protocol_options": {"connection_keepalive": {
            "interval": "30s", "timeout": "5s", "interval_jitter": {"value": 0}, "connection_idle_interval": "60s"}}}},
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
    assert "codec_type (AUTO | HTTP1 | HTTP2)" in SUPPORTED
    assert "http_filters" in SUPPORTED and "Router [terminal]" in SUPPORTED
    assert (
        "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager, in "
        "common_http_protocol_options: idle_timeout, max_requests_per_connection, max_headers_count"
    ) in SUPPORTED
    assert f"typed_per_filter_config [{FAULT_KEY}] (per-filter config: HTTPFault)" in SUPPORTED
    assert "envoy.config.core.v3.Http1ProtocolOptions: (no fields)" in SUPPORTED
