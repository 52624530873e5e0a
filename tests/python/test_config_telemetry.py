"""Validation of the telemetry parts of a bootstrap: Istio's istio.stats and
istio.metadata_exchange filters (TypedStruct configs), the listener's
traffic_direction, HCM tracing (OpenTelemetry over HTTP, Zipkin JSON), route
decorators and cluster metadata. Each bad config names the file, the
resource and the field, and says what would be accepted."""
from __future__ import annotations

import copy

import pytest
import yaml

from meshcore.config import parse_bootstrap
from meshcore.errors import ConfigError

HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER = {"name": "envoy.filters.http.router",
          "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}
TCP_PROXY = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"


def istio_filter(name, type_url, value=None, struct="udpa.type.v1.TypedStruct"):
    tc = {"@type": f"type.googleapis.com/{struct}", "type_url": type_url}
    if value is not None:
        tc["value"] = value
    return {"name": name, "typed_config": tc}


STATS = istio_filter("istio.stats", "type.googleapis.com/stats.PluginConfig")
EXCHANGE = istio_filter("istio.metadata_exchange", "type.googleapis.com/io.istio.http.peer_metadata.Config",
                        {"upstream_discovery": [{"istio_headers": {}}],
                         "upstream_propagation": [{"istio_headers": {}}]})
OTEL = {"name": "envoy.tracers.opentelemetry",
        "typed_config": {"@type": "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig",
                         "service_name": "productpage",
                         "http_service": {"http_uri": {"uri": "http://otel:4318/v1/traces", "cluster": "otel",
                                                       "timeout": "1s"}}}}
ZIPKIN = {"name": "envoy.tracers.zipkin",
          "typed_config": {"@type": "type.googleapis.com/envoy.config.trace.v3.ZipkinConfig",
                           "collector_cluster": "otel", "collector_endpoint": "/api/v2/spans",
                           "collector_endpoint_version": "HTTP_JSON"}}


def cluster(name, port=9, **extra):
    return {"name": name, "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
        {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}]}, **extra}


def doc():
    hcm = {"@type": HCM, "stat_prefix": "outbound",
           "tracing": {"random_sampling": {"value": 1}, "provider": OTEL},
           "route_config": {"virtual_hosts": [{"name": "a", "domains": ["*"], "routes": [
               {"name": "r", "decorator": {"operation": "reviews:9080/*"}, "match": {"prefix": "/"},
                "route": {"cluster": "outbound|9080||reviews.default.svc.cluster.local"}}]}]},
           "http_filters": [EXCHANGE, STATS, ROUTER]}
    tcp = {"@type": TCP_PROXY, "stat_prefix": "tcp", "cluster": "otel"}
    return {
        "node": {"id": "sidecar~127.0.0.1~productpage-v1.default~default.svc.cluster.local",
                 "metadata": {"NAMESPACE": "default", "LABELS": {"app": "productpage"}}},
        "static_resources": {
            "listeners": [
                {"name": "outbound", "traffic_direction": "OUTBOUND",
                 "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                 "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                                 "typed_config": hcm}]}]},
                {"name": "inbound-tcp", "traffic_direction": "INBOUND",
                 "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                 "filter_chains": [{"filters": [
                     istio_filter("istio.stats", "type.googleapis.com/stats.PluginConfig",
                                  struct="xds.type.v3.TypedStruct"),
                     {"name": "envoy.filters.network.tcp_proxy", "typed_config": tcp}]}]},
            ],
            "clusters": [
                cluster("outbound|9080||reviews.default.svc.cluster.local", metadata={"filter_metadata": {"istio": {
                    "services": [{"host": "reviews.default.svc.cluster.local", "name": "reviews",
                                  "namespace": "default"}]}}}),
                cluster("otel", 4318),
            ],
        },
    }


def hcm_of(d):
    return d["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]


def load(d):
    return parse_bootstrap(yaml.safe_dump(d), "mesh.yaml")


def error(change) -> str:
    d = copy.deepcopy(doc())
    change(d)
    with pytest.raises(ConfigError) as e:
        load(d)
    return str(e.value)


def test_a_full_telemetry_config_loads():
    b = load(doc())
    assert b.static_resources.listeners[0].traffic_direction == 2


def test_zipkin_loads_too():
    d = doc()
    hcm_of(d)["tracing"]["provider"] = ZIPKIN
    load(d)


def test_istio_stats_needs_a_traffic_direction():
    def change(d):
        del d["static_resources"]["listeners"][1]["traffic_direction"]
    text = error(change)
    assert 'mesh.yaml: listener "inbound-tcp": filter_chains[0].filters[0]: istio.stats needs' in text
    assert "traffic_direction" in text


@pytest.mark.parametrize("change, where, what", [
    (lambda h: h["http_filters"].insert(0, istio_filter("istio.telemetry", "type.googleapis.com/stats.PluginConfig")),
     "http_filters[0].name", "only supported for Istio's telemetry filters"),
    (lambda h: h["http_filters"].__setitem__(1, istio_filter("istio.stats", "type.googleapis.com/other.Config")),
     "http_filters[1].typed_config.type_url", "is not a istio.stats config"),
    (lambda h: h["http_filters"].__setitem__(1, istio_filter(
        "istio.stats", "type.googleapis.com/stats.PluginConfig", {"metrics": [{"name": "requests_total"}]})),
     "http_filters[1].typed_config.value.metrics", 'unsupported field "metrics"'),
    (lambda h: h["http_filters"].__setitem__(1, istio_filter(
        "istio.stats", "type.googleapis.com/stats.PluginConfig", {"reporter": "SERVER_GATEWAY"})),
     "http_filters[1].typed_config.value.reporter", 'unsupported value "SERVER_GATEWAY"'),
    (lambda h: h["http_filters"].insert(1, STATS),
     "http_filters[2]", "filter istio.stats is already at http_filters[1]"),
    (lambda h: h["tracing"].pop("provider"), "tracing.provider", "required"),
    (lambda h: h["tracing"].__setitem__("random_sampling", {"value": 150}),
     "tracing.random_sampling.value", "out of range (0..100)"),
    (lambda h: h["tracing"]["provider"]["typed_config"].update(
        grpc_service={"envoy_grpc": {"cluster_name": "otel"}}),
     "grpc_service", "OTLP/gRPC export is not supported"),
    (lambda h: h["tracing"]["provider"]["typed_config"]["http_service"]["http_uri"].update(uri="https://otel/v1"),
     "http_uri.uri", "an http:// URL is required"),
    (lambda h: h["tracing"]["provider"]["typed_config"]["http_service"]["http_uri"].update(cluster="nope"),
     "http_service.http_uri.cluster", 'unknown cluster "nope"'),
])
def test_bad_telemetry_is_named(change, where, what):
    text = error(lambda d: change(hcm_of(d)))
    assert text.startswith('mesh.yaml: listener "outbound": filter_chains[0].filters[0].typed_config.'), text
    assert where in text and what in text, text


@pytest.mark.parametrize("field, value, what", [
    ("shared_span_context", True, "every meshcore hop records its own span"),
    ("collector_endpoint_version", "HTTP_PROTO", "unsupported value HTTP_PROTO"),
    ("collector_cluster", "nope", 'unknown cluster "nope"'),
])
def test_bad_zipkin_is_named(field, value, what):
    def change(d):
        z = copy.deepcopy(ZIPKIN)
        z["typed_config"][field] = value
        hcm_of(d)["tracing"]["provider"] = z
    text = error(change)
    assert f"tracing.provider.typed_config.{field}" in text and what in text, text
