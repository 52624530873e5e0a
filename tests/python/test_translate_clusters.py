"""DestinationRule, Service, ServiceEntry and WorkloadEntry -> Envoy clusters."""
import pytest
import yaml
from envoy.config.cluster.v3 import cluster_pb2
from google.protobuf import json_format

from meshcore import xds_types
from meshcore.config import validate_bootstrap
from meshcore.translate import load_texts, translate

SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec:
  selector: {app: reviews}
  ports:
  - {name: http, port: 9080}
  - {name: http-metrics, port: 9090, targetPort: 19090}
  - {name: http-named, port: 9091, targetPort: admin}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v1, namespace: default}
spec: {address: 10.0.0.1, ports: {http: 18080, admin: 18091}, labels: {app: reviews, version: v1}, weight: 3}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v2, namespace: default}
spec: {address: 10.0.0.2, labels: {app: reviews, version: v2}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-elsewhere, namespace: other}
spec: {address: 10.0.9.9, labels: {app: reviews, version: v1}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: client, namespace: default}
spec: {address: 10.0.5.5, labels: {app: client}}
"""


def dr(spec, name="reviews", namespace="default"):
    return yaml.safe_dump({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                           "metadata": {"name": name, "namespace": namespace}, "spec": yaml.safe_load(spec)})


def clusters(*docs, workload="default/client"):
    mesh = load_texts({"registry.yaml": SERVICE, **{f"d{i}.yaml": d for i, d in enumerate(docs)}})
    assert [str(f) for f in mesh.findings if f.is_error] == []
    t = translate(mesh, workload)
    assert [str(f) for f in t.errors] == []
    validate_bootstrap(t.bootstrap)
    return {c.name: c for c in t.bootstrap.static_resources.clusters}


def as_dict(msg):
    d = json_format.MessageToDict(msg, preserving_proto_field_name=True)
    if isinstance(msg, cluster_pb2.Cluster):
        d["lb_policy"] = cluster_pb2.Cluster.LbPolicy.Name(msg.lb_policy)  # ROUND_ROBIN is proto3's default
    return d


def endpoints(c):
    return [(e.endpoint.address.socket_address.address, e.endpoint.address.socket_address.port_value,
             e.load_balancing_weight.value) for le in c.load_assignment.endpoints for e in le.lb_endpoints]


R = "reviews.default.svc.cluster.local"


def test_default_cluster_as_istio():
    c = clusters()[f"outbound|9080||{R}"]
    d = as_dict(c)
    assert d["type"] == "STATIC"
    assert d["connect_timeout"] == "10s"
    assert d["lb_policy"] == "LEAST_REQUEST"
    assert d["circuit_breakers"] == {"thresholds": [{"max_connections": 4294967295, "max_pending_requests":
                                                     4294967295, "max_requests": 4294967295,
                                                     "max_retries": 4294967295}]}
    assert "outlier_detection" not in d
    opts = xds_types.unpack(c.typed_extension_protocol_options[xds_types.UPSTREAM_HTTP_OPTIONS])
    assert opts.explicit_http_config.HasField("http_protocol_options")
    # Endpoints: the WorkloadEntries of the Service's namespace with its selector's labels.
    assert endpoints(c) == [("10.0.0.1", 18080, 3), ("10.0.0.2", 9080, 0)]


def test_endpoint_ports_named_port_then_target_port_then_port():
    cs = clusters()
    assert endpoints(cs[f"outbound|9090||{R}"]) == [("10.0.0.1", 19090, 3), ("10.0.0.2", 19090, 0)]
    # targetPort "admin" names a WorkloadEntry port; reviews-v2 has none, so the port itself.
    assert endpoints(cs[f"outbound|9091||{R}"]) == [("10.0.0.1", 18091, 3), ("10.0.0.2", 9091, 0)]


def test_subset_clusters_select_by_labels_per_port():
    cs = clusters(dr("{host: reviews, subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: "
                     "{version: v2}}, {name: none, labels: {version: v9}}]}"))
    assert endpoints(cs[f"outbound|9080|v1|{R}"]) == [("10.0.0.1", 18080, 3)]
    assert endpoints(cs[f"outbound|9090|v2|{R}"]) == [("10.0.0.2", 19090, 0)]
    assert endpoints(cs[f"outbound|9080|none|{R}"]) == []  # a 503 for whoever routes there (check warns)


@pytest.mark.parametrize("simple, lb", [("ROUND_ROBIN", "ROUND_ROBIN"), ("LEAST_CONN", "LEAST_REQUEST"),
                                        ("LEAST_REQUEST", "LEAST_REQUEST"), ("RANDOM", "RANDOM"),
                                        ("UNSPECIFIED", "LEAST_REQUEST")])
def test_simple_load_balancers(simple, lb):
    c = clusters(dr(f"{{host: reviews, trafficPolicy: {{loadBalancer: {{simple: {simple}}}}}}}"))[f"outbound|9080||{R}"]
    assert as_dict(c)["lb_policy"] == lb


def test_consistent_hash_is_ring_hash():
    cs = clusters(dr("""
host: reviews
trafficPolicy:
  loadBalancer: {consistentHash: {httpHeaderName: x-user, minimumRingSize: 4096}}
subsets:
- name: v1
  labels: {version: v1}
  trafficPolicy: {loadBalancer: {consistentHash: {useSourceIp: true, ringHash: {minimumRingSize: 256}}}}
"""))
    assert as_dict(cs[f"outbound|9080||{R}"])["lb_policy"] == "RING_HASH"
    assert cs[f"outbound|9080||{R}"].ring_hash_lb_config.minimum_ring_size.value == 4096
    assert cs[f"outbound|9080|v1|{R}"].ring_hash_lb_config.minimum_ring_size.value == 256


def test_connection_pool_and_outlier_detection():
    c = clusters(dr("""
host: reviews
trafficPolicy:
  connectionPool:
    tcp: {maxConnections: 100, connectTimeout: 250ms}
    http: {http1MaxPendingRequests: 10, http2MaxRequests: 200, maxRequestsPerConnection: 5, maxRetries: 4,
           idleTimeout: 90s}
  outlierDetection: {consecutive5xxErrors: 7, consecutiveGatewayErrors: 3, interval: 5s, baseEjectionTime: 1m,
                     maxEjectionPercent: 50}
"""))[f"outbound|9080||{R}"]
    d = as_dict(c)
    assert d["connect_timeout"] == "0.250s"
    assert d["circuit_breakers"] == {"thresholds": [{"max_connections": 100, "max_pending_requests": 10,
                                                     "max_requests": 200, "max_retries": 4}]}
    assert d["outlier_detection"] == {
        "consecutive_5xx": 7, "enforcing_consecutive_5xx": 100,
        # Envoy's enforcing_consecutive_gateway_failure defaults to 0: Istio sets 100.
        "consecutive_gateway_failure": 3, "enforcing_consecutive_gateway_failure": 100,
        "interval": "5s", "base_ejection_time": "60s", "max_ejection_percent": 50}
    opts = xds_types.unpack(c.typed_extension_protocol_options[xds_types.UPSTREAM_HTTP_OPTIONS])
    assert as_dict(opts.common_http_protocol_options) == {"idle_timeout": "90s", "max_requests_per_connection": 5}


def test_outlier_detection_zero_disables_and_deprecated_consecutive_errors():
    cs = clusters(dr("""
host: reviews
trafficPolicy: {outlierDetection: {consecutive5xxErrors: 0, consecutiveGatewayErrors: 0}}
subsets:
- name: v1
  labels: {version: v1}
  trafficPolicy: {outlierDetection: {consecutiveErrors: 4, baseEjectionTime: 10m}}
"""))
    assert as_dict(cs[f"outbound|9080||{R}"])["outlier_detection"] == {
        "consecutive_5xx": 0, "enforcing_consecutive_5xx": 0,
        "consecutive_gateway_failure": 0, "enforcing_consecutive_gateway_failure": 0}
    assert as_dict(cs[f"outbound|9080|v1|{R}"])["outlier_detection"] == {
        "consecutive_5xx": 4, "enforcing_consecutive_5xx": 100,
        "base_ejection_time": "600s", "max_ejection_time": "600s"}  # Envoy needs max >= base


def test_port_level_settings_and_subset_policies_override_whole_sections():
    cs = clusters(dr("""
host: reviews
trafficPolicy:
  loadBalancer: {simple: RANDOM}
  connectionPool: {tcp: {maxConnections: 10}}
  portLevelSettings:
  - port: {number: 9090}
    connectionPool: {http: {maxRetries: 1}}
subsets:
- name: v1
  labels: {version: v1}
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
    portLevelSettings:
    - port: {number: 9091}
      loadBalancer: {simple: LEAST_REQUEST}
"""))

    def summary(name):
        d = as_dict(cs[name])
        return d["lb_policy"], d["circuit_breakers"]["thresholds"][0]["max_connections"], \
            d["circuit_breakers"]["thresholds"][0]["max_retries"]

    big = 4294967295
    assert summary(f"outbound|9080||{R}") == ("RANDOM", 10, big)
    assert summary(f"outbound|9090||{R}") == ("RANDOM", big, 1)  # the port's connectionPool replaces the whole
    assert summary(f"outbound|9080|v1|{R}") == ("ROUND_ROBIN", 10, big)
    assert summary(f"outbound|9090|v1|{R}") == ("ROUND_ROBIN", big, 1)
    assert summary(f"outbound|9091|v1|{R}") == ("LEAST_REQUEST", 10, big)


def test_destination_rule_selection_workload_selector_and_namespaces():
    selected = dr("{host: reviews, workloadSelector: {matchLabels: {app: client}}, trafficPolicy: "
                  "{loadBalancer: {simple: RANDOM}}}", name="for-client")
    other_ns = dr("{host: reviews.default.svc.cluster.local, trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}}",
                  name="from-elsewhere", namespace="elsewhere")
    assert as_dict(clusters(selected)[f"outbound|9080||{R}"])["lb_policy"] == "RANDOM"
    assert as_dict(clusters(selected, workload="default/reviews-v2")[f"outbound|9080||{R}"])["lb_policy"] \
        == "LEAST_REQUEST"
    # A rule in the proxy's (or the service's) namespace beats one from elsewhere.
    cs = clusters(other_ns, dr("{host: reviews, trafficPolicy: {loadBalancer: {simple: RANDOM}}}"))
    assert as_dict(cs[f"outbound|9080||{R}"])["lb_policy"] == "RANDOM"
    assert as_dict(clusters(other_ns)[f"outbound|9080||{R}"])["lb_policy"] == "ROUND_ROBIN"


def test_static_service_entry_clusters():
    se = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: payments, namespace: default}
spec:
  hosts: [payments.example.com]
  ports: [{number: 8443, name: http-api, protocol: HTTP, targetPort: 9443}, {number: 5432, name: db, protocol: TCP}]
  resolution: STATIC
  endpoints:
  - {address: 192.0.2.10, ports: {http-api: 18443}, labels: {zone: a}, weight: 2}
  - {address: 192.0.2.11, labels: {zone: b}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: payments, namespace: default}
spec:
  host: payments.example.com
  subsets: [{name: a, labels: {zone: a}}]
"""
    cs = clusters(se)
    assert endpoints(cs["outbound|8443||payments.example.com"]) == [("192.0.2.10", 18443, 2), ("192.0.2.11", 9443, 0)]
    assert endpoints(cs["outbound|5432||payments.example.com"]) == [("192.0.2.10", 5432, 2), ("192.0.2.11", 5432, 0)]
    assert endpoints(cs["outbound|8443|a|payments.example.com"]) == [("192.0.2.10", 18443, 2)]
    assert not cs["outbound|5432||payments.example.com"].typed_extension_protocol_options  # TCP: no HTTP options


def test_service_entry_workload_selector():
    se = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: legacy, namespace: default}
spec:
  hosts: [legacy.corp]
  ports: [{number: 80, name: http}]
  resolution: STATIC
  workloadSelector: {labels: {version: v2}}
"""
    assert endpoints(clusters(se)["outbound|80||legacy.corp"]) == [("10.0.0.2", 80, 0)]
