"""Istio telemetry in the translation (translate/telemetry.py, meshconfig.py):
the node metadata, traffic directions, Istio's filters in Istio's order,
cluster metadata, the peers registry, and what the Telemetry API and the
MeshConfig (ConfigMap istio) turn into — tracing, access logs, metrics on
and off — with Istio's precedence, and the findings for what cannot be
done."""
from __future__ import annotations

import textwrap

import pytest
from google.protobuf import json_format

from meshcore.config import validate_bootstrap
from meshcore.errors import ConfigError
from meshcore.telemetry.istio_metrics import Workload
from meshcore.translate import Security, check, load_texts, sidecar_translation, translate
from meshcore.translate import findings as fnd

# bookinfo-like: productpage (a client), reviews v1..v3 behind a sidecar, a TCP
# service, a collector outside the mesh as a ServiceEntry.
REGISTRY = """
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec: {selector: {app: reviews}, ports: [{name: http, port: 9080}]}
---
apiVersion: v1
kind: Service
metadata: {name: mongo, namespace: default}
spec: {selector: {app: reviews, version: v1}, ports: [{name: tcp-mongo, port: 27017}]}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: reviews-v1
  namespace: default
  annotations: {"sidecar.meshcore.dev/inbound-ports": "http=29080,tcp-mongo=29017"}
spec:
  address: 10.0.0.5
  ports: {http: 19080, tcp-mongo: 19017}
  labels: {app: reviews, version: v1}
  serviceAccount: bookinfo-reviews
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v2, namespace: default}
spec: {address: 10.0.0.6, ports: {http: 19080}, labels: {app: reviews, version: v2}, serviceAccount: bookinfo-reviews}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v3, namespace: default}
spec: {address: 10.0.0.7, ports: {http: 19080}, labels: {app: reviews, version: v3, tier: x},
       serviceAccount: bookinfo-reviews}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: productpage-v1, namespace: default}
spec: {address: 10.0.0.9, labels: {app: productpage, version: v1}, serviceAccount: bookinfo-productpage}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: loose, namespace: default}
spec: {address: 10.0.0.10, labels: {app: loose}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: otel, namespace: observability}
spec:
  hosts: [otel.observability.svc.cluster.local]
  ports: [{number: 4318, name: http-otlp, protocol: HTTP}, {number: 9411, name: http-zipkin, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 10.0.0.20}]
"""

PROVIDERS = """
    extensionProviders:
    - name: otel
      opentelemetry: {service: otel.observability.svc.cluster.local, port: 4318, http: {path: /v1/traces, timeout: 2s}}
    - name: zipkin
      zipkin: {service: otel.observability.svc.cluster.local, port: 9411}
    - name: otel-grpc
      opentelemetry: {service: otel.observability.svc.cluster.local, port: 4317}
    - name: nowhere
      opentelemetry: {service: nowhere.example.com, port: 4318, http: {}}
    - name: file-json
      envoyFileAccessLog:
        path: /tmp/mesh.log
        logFormat: {labels: {code: "%RESPONSE_CODE%", who: "%DOWNSTREAM_PEER_URI_SAN%"}}
    - name: file-text
      envoyFileAccessLog: {path: /tmp/mesh.txt, logFormat: {text: "%RESPONSE_CODE% %REQ(:PATH)%"}}
    - name: dd
      datadog: {service: dd.example.com, port: 8126}
"""


def mesh_config(body: str, ns: str = "istio-system", name: str = "istio") -> str:
    """The ConfigMap istio with body (MeshConfig YAML) as its data.mesh."""
    lines = "\n".join("    " + line for line in textwrap.dedent(body).strip("\n").splitlines())
    return (f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: {ns}}}\n"
            f"data:\n  mesh: |\n{lines}\n---\n")


def telemetry(spec: str, ns: str = "istio-system", name: str = "mesh-default",
              api: str = "telemetry.istio.io/v1") -> str:
    return f"apiVersion: {api}\nkind: Telemetry\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n{spec}\n---\n"


def run(*extra, workload="default/productpage-v1", security=None):
    mesh = load_texts({"registry.yaml": REGISTRY, **{f"t{i}.yaml": e for i, e in enumerate(extra)}})
    assert [str(f) for f in mesh.findings if f.is_error] == []
    t = translate(mesh, workload, security=security or Security())
    doc = json_format.MessageToDict(t.bootstrap, preserving_proto_field_name=True)
    return t, doc


def good(*extra, **kw):
    t, doc = run(*extra, **kw)
    assert [str(f) for f in t.errors] == []
    validate_bootstrap(t.bootstrap)  # within meshcore's xDS subset
    return t, doc


def listener(doc, name):
    return next(x for x in doc["static_resources"]["listeners"] if x["name"] == name)


def cluster(doc, name):
    return next(x for x in doc["static_resources"]["clusters"] if x["name"] == name)


def hcm(doc, name, chain=0):
    return listener(doc, name)["filter_chains"][chain]["filters"][-1]["typed_config"]


def names(filters):
    return [f["name"] for f in filters]


def findings_of(mesh_texts, code=None):
    found = check(load_texts({"registry.yaml": REGISTRY, **{f"t{i}.yaml": e for i, e in enumerate(mesh_texts)}}))
    return [f for f in found if code is None or f.code == code]


OTEL_EVERYWHERE = telemetry("  tracing: [{providers: [{name: otel}], randomSamplingPercentage: 100}]")


# ---- metrics: node, directions, filters, clusters -----------------------------------------------------


def test_node_metadata_is_the_workload_entry():
    _, doc = good(workload="default/reviews-v1")
    assert doc["node"]["cluster"] == "reviews.default"
    assert doc["node"]["metadata"] == {
        "NAME": "reviews-v1", "NAMESPACE": "default", "WORKLOAD_NAME": "reviews-v1",
        "LABELS": {"app": "reviews", "version": "v1"}, "SERVICE_ACCOUNT": "bookinfo-reviews",
        "MESH_ID": "cluster.local", "CLUSTER_ID": "Kubernetes"}
    _, doc = good(workload="default/loose", security=Security(trust_domain="example.org"))
    assert doc["node"]["metadata"]["SERVICE_ACCOUNT"] == "default"
    assert doc["node"]["metadata"]["MESH_ID"] == "example.org"
    # what the core's metrics read from it
    w = Workload.from_metadata(doc["node"]["metadata"])
    assert (w.workload, w.namespace, w.app, w.version, w.cluster) == ("loose", "default", "loose", "unknown",
                                                                      "Kubernetes")


ISTIO_STATS = {"name": "istio.stats", "typed_config": {
    "@type": "type.googleapis.com/udpa.type.v1.TypedStruct", "type_url": "type.googleapis.com/stats.PluginConfig"}}


def exchange(side):
    return {"name": "istio.metadata_exchange", "typed_config": {
        "@type": "type.googleapis.com/udpa.type.v1.TypedStruct",
        "type_url": "type.googleapis.com/io.istio.http.peer_metadata.Config",
        "value": {f"{side}_discovery": [{"istio_headers": {}}], f"{side}_propagation": [{"istio_headers": {}}]}}}


def test_outbound_listeners_have_the_direction_and_istios_filters_in_order():
    _, doc = good()
    http = listener(doc, "127.0.0.1_9080")
    assert http["traffic_direction"] == "OUTBOUND"
    filters = hcm(doc, "127.0.0.1_9080")["http_filters"]
    assert names(filters) == ["istio.metadata_exchange", "istio.stats", "envoy.filters.http.router"]
    assert filters[0] == exchange("upstream") and filters[1] == ISTIO_STATS
    tcp = listener(doc, "127.0.0.1_27017")
    assert tcp["traffic_direction"] == "OUTBOUND"
    assert names(tcp["filter_chains"][0]["filters"]) == ["istio.stats", "envoy.filters.network.tcp_proxy"]
    assert tcp["filter_chains"][0]["filters"][0] == ISTIO_STATS


def test_the_fault_filter_sits_between_the_exchange_and_stats():
    vs = """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - fault: {abort: {httpStatus: 503, percentage: {value: 10}}}
    route: [{destination: {host: reviews}}]
"""
    _, doc = good(vs)
    assert names(hcm(doc, "127.0.0.1_9080")["http_filters"]) == [
        "istio.metadata_exchange", "envoy.filters.http.fault", "istio.stats", "envoy.filters.http.router"]


def test_inbound_listeners_rbac_before_stats():
    authz = """apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: reviews, namespace: default}
spec:
  selector: {matchLabels: {app: reviews}}
  rules: [{from: [{source: {namespaces: [default]}}]}]
"""
    certs = Security(secrets=({"name": "default", "tls_certificate": {
        "certificate_chain": {"inline_string": "x"}, "private_key": {"inline_string": "y"}}},
        {"name": "ROOTCA", "validation_context": {"trusted_ca": {"inline_string": "z"}}}))
    _, doc = good(authz, workload="default/reviews-v1", security=certs)
    http = listener(doc, "inbound_10.0.0.5_29080")
    assert http["traffic_direction"] == "INBOUND"
    for k in range(len(http["filter_chains"])):  # PERMISSIVE: the TLS and the plaintext chain alike
        filters = hcm(doc, "inbound_10.0.0.5_29080", k)["http_filters"]
        assert names(filters) == ["istio.metadata_exchange", "envoy.filters.http.rbac", "istio.stats",
                                  "envoy.filters.http.router"]
        assert filters[0] == exchange("downstream")
    tcp = listener(doc, "inbound_10.0.0.5_29017")
    assert tcp["traffic_direction"] == "INBOUND"
    assert names(tcp["filter_chains"][0]["filters"]) == [
        "envoy.filters.network.rbac", "istio.stats", "envoy.filters.network.tcp_proxy"]


def test_clusters_name_their_service():
    _, doc = good(workload="default/reviews-v1")

    def services(name):
        return cluster(doc, name)["metadata"]["filter_metadata"]["istio"]["services"]

    assert services("outbound|9080||reviews.default.svc.cluster.local") == [
        {"host": "reviews.default.svc.cluster.local", "name": "reviews", "namespace": "default"}]
    # a ServiceEntry's service name is its host, as in Istio
    assert services("outbound|4318||otel.observability.svc.cluster.local") == [
        {"host": "otel.observability.svc.cluster.local", "name": "otel.observability.svc.cluster.local",
         "namespace": "observability"}]
    # inbound: the service of that port, so the destination reporter names it too
    assert services("inbound|19080||") == [
        {"host": "reviews.default.svc.cluster.local", "name": "reviews", "namespace": "default"}]
    assert services("inbound|19017||") == [
        {"host": "mongo.default.svc.cluster.local", "name": "mongo", "namespace": "default"}]


def test_peers_registry_keeps_what_workloads_of_one_principal_agree_on():
    t, _ = good()
    reviews = t.peers["spiffe://cluster.local/ns/default/sa/bookinfo-reviews"]
    assert reviews == {"NAMESPACE": "default", "SERVICE_ACCOUNT": "bookinfo-reviews", "MESH_ID": "cluster.local",
                       "CLUSTER_ID": "Kubernetes", "LABELS": {"app": "reviews"}}
    w = Workload.from_metadata(reviews)
    assert (w.workload, w.app, w.version, w.canonical_service) == ("unknown", "reviews", "unknown", "reviews")
    pp = Workload.from_metadata(t.peers["spiffe://cluster.local/ns/default/sa/bookinfo-productpage"])
    assert (pp.workload, pp.app, pp.version) == ("productpage-v1", "productpage", "v1")
    assert not any("/sa/default" in p for p in t.peers)  # "loose" has no service account


# ---- metrics: Telemetry ---------------------------------------------------------------------------


def stats_on(doc):
    return {"out": "istio.stats" in names(hcm(doc, "127.0.0.1_9080")["http_filters"]),
            "tcp": "istio.stats" in names(listener(doc, "127.0.0.1_27017")["filter_chains"][0]["filters"])}


DISABLE_ALL = "  metrics: [{providers: [{name: prometheus}], overrides: [{disabled: true}]}]"


def test_a_telemetry_turns_metrics_off_and_a_narrower_one_on_again():
    _, doc = good(telemetry(DISABLE_ALL, ns="default", name="quiet"))
    assert stats_on(doc) == {"out": False, "tcp": False}
    # the exchange stays: the peer's metrics still learn who this is
    assert names(hcm(doc, "127.0.0.1_9080")["http_filters"])[0] == "istio.metadata_exchange"
    again = telemetry("  selector: {matchLabels: {app: productpage}}\n"
                      "  metrics: [{overrides: [{disabled: false}]}]", ns="default", name="pp")
    _, doc = good(telemetry(DISABLE_ALL, name="mesh-wide"), again)
    assert stats_on(doc) == {"out": True, "tcp": True}
    _, doc = good(telemetry(DISABLE_ALL, name="mesh-wide"), again, workload="default/reviews-v1",
                  security=Security(secrets=()))
    assert stats_on(doc) == {"out": False, "tcp": False}


def test_metrics_off_for_one_side():
    client_off = telemetry("  metrics: [{overrides: [{match: {mode: CLIENT}, disabled: true}]}]")
    _, doc = good(client_off, workload="default/reviews-v1", security=Security(secrets=()))
    assert stats_on(doc) == {"out": False, "tcp": False}
    assert "istio.stats" in names(hcm(doc, "inbound_10.0.0.5_29080")["http_filters"])


def test_other_metric_overrides_are_warned():
    t, doc = good(telemetry("""  metrics:
  - overrides:
    - match: {metric: REQUEST_COUNT}
      tagOverrides: {request_host: {value: request.host}}
    reportingInterval: 15s"""))
    assert stats_on(doc) == {"out": True, "tcp": True}
    found = {(f.path, f.code) for f in findings_of([telemetry("""  metrics:
  - overrides:
    - match: {metric: REQUEST_COUNT}
      tagOverrides: {request_host: {value: request.host}}
    reportingInterval: 15s""")]) if f.severity == fnd.WARNING}
    assert ("spec.metrics[0].overrides[0].match", fnd.UNSUPPORTED) in found
    assert ("spec.metrics[0].overrides[0].tagOverrides", fnd.IGNORED) in found
    assert ("spec.metrics[0].reportingInterval", fnd.IGNORED) in found


# ---- tracing ---------------------------------------------------------------------------------------------


def test_opentelemetry_tracing_on_every_http_connection_manager():
    _, doc = good(mesh_config(PROVIDERS), OTEL_EVERYWHERE, workload="default/reviews-v1",
                  security=Security(secrets=()))
    expected = {"random_sampling": {"value": 100.0}, "provider": {
        "name": "envoy.tracers.opentelemetry", "typed_config": {
            "@type": "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig",
            "service_name": "reviews.default",
            "http_service": {"http_uri": {"uri": "http://otel.observability.svc.cluster.local:4318/v1/traces",
                                          "cluster": "outbound|4318||otel.observability.svc.cluster.local",
                                          "timeout": "2s"}}}}}
    assert hcm(doc, "127.0.0.1_9080")["tracing"] == expected
    assert hcm(doc, "inbound_10.0.0.5_29080")["tracing"] == expected
    assert "tracing" not in listener(doc, "127.0.0.1_27017")["filter_chains"][0]["filters"][-1]["typed_config"]


def test_zipkin_tracing():
    _, doc = good(mesh_config(PROVIDERS), telemetry("  tracing: [{providers: [{name: zipkin}]}]"))
    assert hcm(doc, "127.0.0.1_9080")["tracing"] == {"random_sampling": {"value": 1.0}, "provider": {
        "name": "envoy.tracers.zipkin", "typed_config": {
            "@type": "type.googleapis.com/envoy.config.trace.v3.ZipkinConfig",
            "collector_cluster": "outbound|9411||otel.observability.svc.cluster.local",
            "collector_endpoint": "/api/v2/spans", "collector_endpoint_version": "HTTP_JSON",
            "collector_hostname": "otel.observability.svc.cluster.local", "trace_id_128bit": True,
            "shared_span_context": False}}}


def sampling(doc, name="127.0.0.1_9080"):
    t = hcm(doc, name).get("tracing")
    return t and t["random_sampling"]["value"]


def test_sampling_defaults():
    providers = mesh_config(PROVIDERS + "    defaultProviders: {tracing: [otel]}\n")
    assert sampling(good(providers)[1]) == 1.0  # Istio's default
    with_default = mesh_config(PROVIDERS + "    defaultProviders: {tracing: [otel]}\n"
                               "    defaultConfig: {tracing: {sampling: 25}}\n")
    assert sampling(good(with_default)[1]) == 25.0
    assert sampling(good(with_default, telemetry("  tracing: [{randomSamplingPercentage: 60}]"))[1]) == 60.0


def test_no_tracing_without_a_provider():
    _, doc = good(mesh_config(PROVIDERS))
    assert "tracing" not in hcm(doc, "127.0.0.1_9080")
    t, doc = good(mesh_config(PROVIDERS + "    enableTracing: true\n"))
    assert "tracing" not in hcm(doc, "127.0.0.1_9080")
    assert [(f.path, f.code) for f in t.findings if f.resource.startswith("ConfigMap")] == [
        ("data.mesh.enableTracing", fnd.IGNORED)]


def test_telemetry_precedence_workload_over_namespace_over_mesh():
    mesh_wide = telemetry("  tracing: [{providers: [{name: otel}], randomSamplingPercentage: 10}]")
    namespace = telemetry("  tracing: [{randomSamplingPercentage: 20}]", ns="default", name="ns")
    workload = telemetry("  selector: {matchLabels: {app: productpage}}\n"
                         "  tracing: [{providers: [{name: zipkin}]}]", ns="default", name="pp")
    other_ns = telemetry("  tracing: [{randomSamplingPercentage: 90}]", ns="shop", name="shop")
    other_wl = telemetry("  selector: {matchLabels: {app: reviews}}\n"
                         "  tracing: [{disableSpanReporting: true}]", ns="default", name="rv")
    cfg = mesh_config(PROVIDERS)
    assert sampling(good(cfg, mesh_wide, other_ns)[1]) == 10.0
    _, doc = good(cfg, mesh_wide, namespace, other_ns, other_wl)
    assert sampling(doc) == 20.0  # the namespace's sampling, the mesh's provider
    assert hcm(doc, "127.0.0.1_9080")["tracing"]["provider"]["name"] == "envoy.tracers.opentelemetry"
    _, doc = good(cfg, mesh_wide, namespace, workload, other_wl)
    assert sampling(doc) == 20.0
    assert hcm(doc, "127.0.0.1_9080")["tracing"]["provider"]["name"] == "envoy.tracers.zipkin"
    # reviews' own Telemetry turns its spans off
    _, doc = good(cfg, mesh_wide, namespace, workload, other_wl, workload="default/reviews-v1",
                  security=Security(secrets=()))
    assert "tracing" not in hcm(doc, "127.0.0.1_9080")


def test_default_providers_apply_without_any_telemetry_and_v1alpha1_is_read():
    _, doc = good(mesh_config(PROVIDERS + "    defaultProviders: {tracing: [zipkin]}\n"))
    assert hcm(doc, "127.0.0.1_9080")["tracing"]["provider"]["name"] == "envoy.tracers.zipkin"
    _, doc = good(mesh_config(PROVIDERS + "    defaultProviders: {tracing: [zipkin]}\n"),
                  telemetry("  tracing: [{providers: [{name: otel}]}]", api="telemetry.istio.io/v1alpha1"))
    assert hcm(doc, "127.0.0.1_9080")["tracing"]["provider"]["name"] == "envoy.tracers.opentelemetry"


def test_match_mode_picks_the_side():
    server_only = telemetry("  tracing: [{match: {mode: SERVER}, providers: [{name: otel}]}]")
    _, doc = good(mesh_config(PROVIDERS), server_only, workload="default/reviews-v1",
                  security=Security(secrets=()))
    assert "tracing" not in hcm(doc, "127.0.0.1_9080")
    assert hcm(doc, "inbound_10.0.0.5_29080")["tracing"]["provider"]["name"] == "envoy.tracers.opentelemetry"


# ---- access logs ----------------------------------------------------------------------------------


def access_logs(doc, name="127.0.0.1_9080"):
    return [a["typed_config"] for a in hcm(doc, name).get("access_log", [])]


def tcp_access_logs(doc):
    tp = listener(doc, "127.0.0.1_27017")["filter_chains"][0]["filters"][-1]["typed_config"]
    return [a["typed_config"] for a in tp.get("access_log", [])]


FILE_LOG = "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog"


def test_mesh_config_access_log_file_text_and_json():
    _, doc = good(mesh_config("accessLogFile: /dev/stdout"))
    [log] = access_logs(doc)
    assert log["@type"] == FILE_LOG and log["path"] == "/dev/stdout"
    text = log["log_format"]["text_format_source"]["inline_string"]
    assert text.startswith('[%START_TIME%] "%REQ(:METHOD)% %REQ(:PATH)% %PROTOCOL%" %RESPONSE_CODE%')
    assert tcp_access_logs(doc) == [log]  # the same on tcp_proxy
    _, doc = good(mesh_config("accessLogFile: /var/log/a.log\naccessLogEncoding: JSON"))
    assert access_logs(doc) == [{"@type": FILE_LOG, "path": "/var/log/a.log"}]  # meshcore's default JSON record
    _, doc = good(mesh_config("accessLogFile: /dev/stdout\naccessLogEncoding: JSON\n"
                              'accessLogFormat: \'{"code": "%RESPONSE_CODE%", '
                              '"path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%"}\''))
    assert access_logs(doc)[0]["log_format"] == {  # A?B: the core renders B when A is not recorded, as Envoy
        "json_format": {"code": "%RESPONSE_CODE%", "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%"}}
    cfg = mesh_config('accessLogFile: /dev/stdout\naccessLogFormat: "%RESPONSE_CODE% %UPSTREAM_LOCAL_ADDRESS%"')
    _, doc = good(cfg)
    assert access_logs(doc)[0]["log_format"] == {"text_format_source": {"inline_string": "%RESPONSE_CODE% -\n"}}
    assert [(f.path, f.code) for f in findings_of([cfg]) if "UPSTREAM_LOCAL_ADDRESS" in f.message] == [
        ("data.mesh.accessLogFormat", fnd.IGNORED)]
    _, doc = good()
    assert access_logs(doc) == [] and tcp_access_logs(doc) == []


def test_telemetry_access_logging_providers_and_disabled():
    cfg = mesh_config(PROVIDERS + "    accessLogFile: /var/log/legacy.log\n")
    _, doc = good(cfg, telemetry("  accessLogging: [{providers: [{name: file-json}, {name: envoy}]}]"))
    assert [(a["path"], a.get("log_format")) for a in access_logs(doc)] == [
        ("/tmp/mesh.log", {"json_format": {"code": "%RESPONSE_CODE%", "who": "%DOWNSTREAM_PEER_URI_SAN%"}}),
        ("/dev/stdout", access_logs(good(mesh_config("accessLogFile: /dev/stdout"))[1])[0]["log_format"])]
    _, doc = good(cfg, telemetry("  accessLogging: [{providers: [{name: file-text}]}]"))
    assert access_logs(doc) == [{"@type": FILE_LOG, "path": "/tmp/mesh.txt", "log_format": {
        "text_format_source": {"inline_string": "%RESPONSE_CODE% %REQ(:PATH)%\n"}}}]
    # a namespace's Telemetry turns the mesh's off: the legacy accessLogFile does not come back
    _, doc = good(cfg, telemetry("  accessLogging: [{providers: [{name: envoy}]}]"),
                  telemetry("  accessLogging: [{disabled: true}]", ns="default", name="quiet"))
    assert access_logs(doc) == [] and tcp_access_logs(doc) == []
    _, doc = good(mesh_config(PROVIDERS + "    defaultProviders: {accessLogging: [envoy]}\n"))
    assert [a["path"] for a in access_logs(doc)] == ["/dev/stdout"]


# ---- errors and warnings ----------------------------------------------------------------------------


def errors(*extra, workload="default/productpage-v1"):
    t, _ = run(*extra, workload=workload)
    return [(f.code, f.resource, f.path) for f in t.errors], [str(f) for f in t.errors]


def test_an_unknown_provider_is_an_error():
    got, text = errors(mesh_config(PROVIDERS), telemetry("  tracing: [{providers: [{name: jaeger}]}]"))
    assert got == [(fnd.UNKNOWN_PROVIDER, "Telemetry istio-system/mesh-default", "spec.tracing[0].providers[0].name")]
    assert 'unknown provider "jaeger"' in text[0] and "ConfigMap istio-system/istio" in text[0]
    got, _ = errors(mesh_config(PROVIDERS + "    defaultProviders: {accessLogging: [nope]}\n"))
    assert got == [(fnd.UNKNOWN_PROVIDER, "ConfigMap istio-system/istio",
                    "data.mesh.defaultProviders.accessLogging[0]")]
    got, text = errors(mesh_config(PROVIDERS), telemetry("  tracing: [{providers: [{name: file-json}]}]"))
    assert got == [(fnd.UNKNOWN_PROVIDER, "Telemetry istio-system/mesh-default", "spec.tracing[0].providers[0].name")]
    assert "is not a tracing provider" in text[0]
    got, text = errors(mesh_config(PROVIDERS), telemetry("  tracing: [{providers: [{name: dd}]}]"))
    assert got == [(fnd.UNSUPPORTED, "Telemetry istio-system/mesh-default", "spec.tracing[0].providers[0].name")]
    assert "datadog" in text[0]


def test_a_collector_the_registry_does_not_know_is_an_error():
    got, text = errors(mesh_config(PROVIDERS), telemetry("  tracing: [{providers: [{name: nowhere}]}]"))
    assert got == [(fnd.UNKNOWN_HOST, "ConfigMap istio-system/istio", "data.mesh.extensionProviders[3].opentelemetry"
                                                                      ".service")]
    assert 'provider "nowhere": unknown collector service nowhere.example.com' in text[0]
    bad_port = PROVIDERS.replace("port: 4318, http: {path", "port: 4000, http: {path")
    got, text = errors(mesh_config(bad_port), OTEL_EVERYWHERE)
    assert got == [(fnd.UNKNOWN_HOST, "ConfigMap istio-system/istio", "data.mesh.extensionProviders[0].opentelemetry"
                                                                      ".port")]
    # not exported to the workload's namespace: no cluster for it there
    hidden = REGISTRY.replace("  resolution: STATIC\n", "  resolution: STATIC\n  exportTo: [observability]\n")
    mesh = load_texts({"registry.yaml": hidden, "m.yaml": mesh_config(PROVIDERS), "t.yaml": OTEL_EVERYWHERE})
    t = translate(mesh, "default/productpage-v1")
    assert [(f.code, f.path) for f in t.errors] == [(fnd.UNKNOWN_HOST, "data.mesh.extensionProviders[0].opentelemetry"
                                                                         ".service")]
    assert "not exported to namespace default" in str(t.errors[0])


def test_opentelemetry_over_grpc_is_an_error_where_it_is_used():
    got, text = errors(mesh_config(PROVIDERS), telemetry("  tracing: [{providers: [{name: otel-grpc}]}]"))
    assert got == [(fnd.UNSUPPORTED, "ConfigMap istio-system/istio", "data.mesh.extensionProviders[2].opentelemetry")]
    assert "OTLP/HTTP only" in text[0]
    assert errors(mesh_config(PROVIDERS))[0] == []  # defined, unused: fine


def test_the_proxy_refuses_a_directory_with_a_telemetry_error(tmp_path):
    (tmp_path / "registry.yaml").write_text(REGISTRY)
    (tmp_path / "mesh.yaml").write_text(mesh_config(PROVIDERS) + telemetry("  tracing: [{providers: [{name: x}]}]"))
    with pytest.raises(ConfigError, match='unknown provider "x"'):
        sidecar_translation(tmp_path, "default/productpage-v1")


def test_check_reports_provider_problems_of_namespaces_without_workloads():
    found = findings_of([mesh_config(PROVIDERS),
                         telemetry("  tracing: [{providers: [{name: nope}]}]", ns="empty", name="t")])
    assert [(f.code, f.resource) for f in found if f.is_error] == [(fnd.UNKNOWN_PROVIDER, "Telemetry empty/t")]


def test_warnings():
    found = findings_of([
        mesh_config(PROVIDERS + "    outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n    trustDomain: other.org\n"),
        mesh_config("accessLogFile: /dev/stdout", ns="default"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app-settings, namespace: default}\ndata: {a: b}\n---\n",
        telemetry("""  tracing:
  - providers: [{name: otel}, {name: zipkin}]
    customTags: {env: {literal: {value: prod}}}
  accessLogging: [{providers: [{name: envoy}], filter: {expression: "response.code >= 400"}}]"""),
        telemetry("  targetRefs: [{kind: Gateway, name: ingress}]\n  tracing: [{}]", ns="default", name="gw"),
        telemetry("  tracing: [{}]", name="second"),
        telemetry("  selector: {matchLabels: {app: nothing}}\n  tracing: [{}]", ns="default", name="none"),
    ])
    got = {(f.code, f.resource, f.path) for f in found if not f.is_error}
    assert {
        (fnd.IGNORED, "ConfigMap istio-system/istio", "data.mesh.outboundTrafficPolicy"),
        (fnd.IGNORED, "ConfigMap istio-system/istio", "data.mesh.trustDomain"),
        (fnd.IGNORED, "ConfigMap default/istio", "metadata.namespace"),
        (fnd.UNSUPPORTED_KIND, "ConfigMap default/app-settings", ""),
        (fnd.IGNORED, "Telemetry istio-system/mesh-default", "spec.tracing[0].providers"),
        (fnd.IGNORED, "Telemetry istio-system/mesh-default", "spec.tracing[0].customTags"),
        (fnd.IGNORED, "Telemetry istio-system/mesh-default", "spec.accessLogging[0].filter"),
        (fnd.IGNORED, "Telemetry default/gw", "spec.targetRefs"),
        (fnd.DUPLICATE, "Telemetry istio-system/second", "metadata.name"),
        (fnd.NO_WORKLOAD, "Telemetry default/none", "spec.selector"),
    } <= got, sorted(got)
    assert [str(f) for f in found if f.is_error] == []
    other = next(f for f in found if f.resource == "ConfigMap default/app-settings")
    assert "not a mesh resource meshcore reads, ignored" in other.message


@pytest.mark.parametrize("doc, path, text", [
    (telemetry("  tracing: [{randomSamplingPercentage: 150}]"), "spec.tracing[0].randomSamplingPercentage",
     "out of range"),
    (telemetry("  selector: {matchLabels: {app: x}}\n  targetRefs: [{kind: Gateway, name: g}]"), "spec",
     "only one of targetRefs or selector"),
    (telemetry("  tracing: [{providers: [{}]}]"), "spec.tracing[0].providers[0].name", "Required value"),
    (telemetry("  tracing: [{match: {mode: BOTH}}]"), "spec.tracing[0].match.mode", "Unsupported value"),
    (telemetry("  metrics: [{overrides: [{tagOverrides: {x: {operation: UPSERT}}}]}]"),
     'spec.metrics[0].overrides[0].tagOverrides["x"]', "value must be set"),
    (telemetry("  tracing: []", api="telemetry.istio.io/v2"), "apiVersion", "unknown version"),
    (mesh_config("extensionProviders:\n- {name: a, prometheus: {}}\n- {name: a, prometheus: {}}"),
     "data.mesh.extensionProviders[1].name", 'duplicate extension provider name "a"'),
    (mesh_config("extensionProviders:\n- {name: a, zipkin: {port: 9411}}"),
     "data.mesh.extensionProviders[0].zipkin.service", "Required value"),
    (mesh_config("extensionProviders:\n- {name: a}"), "data.mesh.extensionProviders[0]", "a provider kind is required"),
    (mesh_config("accessLogEncoding: XML"), "data.mesh.accessLogEncoding", "Unsupported value"),
    (mesh_config("defaultConfig: {tracing: {sampling: 101}}"), "data.mesh.defaultConfig.tracing.sampling",
     "out of range"),
    (mesh_config("[not, a, mapping]"), "data.mesh", "expected a mapping"),
    (mesh_config("a: b: c"), "data.mesh", "not valid YAML"),
])
def test_invalid_telemetry_and_mesh_config(doc, path, text):
    mesh = load_texts({"t.yaml": doc})
    errs = [f for f in mesh.findings if f.is_error]
    assert any(f.path == path and text in f.message for f in errs), [str(f) for f in mesh.findings]
    assert mesh.resources == []
