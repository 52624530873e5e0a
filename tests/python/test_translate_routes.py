"""VirtualService -> Envoy routes: golden-ish assertions on the RouteConfiguration
messages of translated Bootstraps, each of which validate_bootstrap accepts."""
import pytest
import yaml
from envoy.config.core.v3 import base_pb2
from google.protobuf import json_format

from meshcore import xds_types
from meshcore.config import validate_bootstrap
from meshcore.translate import load_texts, translate

REGISTRY = """
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}]
---
apiVersion: v1
kind: Service
metadata: {name: ratings, namespace: default}
spec:
  selector: {app: ratings}
  ports: [{name: http-api, port: 9080}, {name: http-admin, port: 9901}]
---
apiVersion: v1
kind: Service
metadata: {name: catalog, namespace: shop}
spec:
  selector: {app: catalog}
  ports: [{name: http, port: 8000, targetPort: 18000}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  - {name: v3, labels: {version: v3}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v1, namespace: default}
spec: {address: 10.0.0.1, labels: {app: reviews, version: v1}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v2, namespace: default}
spec: {address: 10.0.0.2, labels: {app: reviews, version: v2}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v3, namespace: default}
spec: {address: 10.0.0.3, labels: {app: reviews, version: v3}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ratings-1, namespace: default}
spec: {address: 10.0.1.1, labels: {app: ratings}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: catalog-1, namespace: shop}
spec: {address: 10.0.2.1, labels: {app: catalog}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: productpage, namespace: default}
spec: {address: 10.0.3.1, labels: {app: productpage, version: v1}}
"""


def vs(spec: str, name="reviews", namespace="default") -> str:
    return yaml.safe_dump({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                           "metadata": {"name": name, "namespace": namespace}, "spec": yaml.safe_load(spec)})


def xds(*docs, workload="default/productpage"):
    mesh = load_texts({"registry.yaml": REGISTRY, **{f"vs{i}.yaml": d for i, d in enumerate(docs)}})
    assert [str(f) for f in mesh.findings if f.is_error] == []
    t = translate(mesh, workload)
    assert [str(f) for f in t.errors] == []
    validate_bootstrap(t.bootstrap)  # what the engine will accept
    return t.bootstrap


def hcm(bootstrap, port):
    for ls in bootstrap.static_resources.listeners:
        if ls.address.socket_address.port_value == port:
            return xds_types.unpack(ls.filter_chains[0].filters[0].typed_config)
    raise KeyError(port)


def vhost(bootstrap, port, host):
    for vh in hcm(bootstrap, port).route_config.virtual_hosts:
        if vh.name == f"{host}:{port}":
            return vh
    raise KeyError(host)


def routes(bootstrap, port=9080, host="reviews.default.svc.cluster.local"):
    return list(vhost(bootstrap, port, host).routes)


def as_dict(msg):
    return json_format.MessageToDict(msg, preserving_proto_field_name=True)


V1 = "outbound|9080|v1|reviews.default.svc.cluster.local"
V2 = "outbound|9080|v2|reviews.default.svc.cluster.local"
V3 = "outbound|9080|v3|reviews.default.svc.cluster.local"
DEFAULT_RETRY = {
    "retry_on": "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes",
    "num_retries": 2,
    "retriable_status_codes": [503],
    "retry_host_predicate": [{"name": "envoy.retry_host_predicates.previous_hosts", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"}}],
    "host_selection_retry_max_attempts": "5",
}


def test_no_virtual_service_default_route_as_istio():
    b = xds()
    [r] = routes(b)
    assert as_dict(r) == {"name": "default", "match": {"prefix": "/"},
                          "route": {"cluster": "outbound|9080||reviews.default.svc.cluster.local",
                                    "timeout": "0s", "retry_policy": DEFAULT_RETRY,
                                    # BuildDefaultHTTPInboundRoute's stream limits (gRPC: grpc-timeout uncapped)
                                    "max_stream_duration": {"max_stream_duration": "0s",
                                                            "grpc_timeout_header_max": "0s"}}}


def test_weighted_split_with_retries_and_timeout():
    b = xds(vs("""
hosts: [reviews]
http:
- route:
  - {destination: {host: reviews, subset: v1}, weight: 90}
  - {destination: {host: reviews, subset: v2}, weight: 10}
  retries: {attempts: 3, perTryTimeout: 2s, retryOn: "5xx,gateway-error"}
  timeout: 10s
"""))
    [r] = routes(b)
    ra = r.route
    assert [(c.name, c.weight.value) for c in ra.weighted_clusters.clusters] == [(V1, 90), (V2, 10)]
    assert ra.timeout.seconds == 10
    rp = ra.retry_policy
    assert rp.retry_on == "5xx,gateway-error"
    assert rp.num_retries.value == 3
    assert rp.per_try_timeout.seconds == 2
    assert list(rp.retriable_status_codes) == []  # Istio replaces the default 503 when retryOn is given
    assert [p.name for p in rp.retry_host_predicate] == ["envoy.retry_host_predicates.previous_hosts"]
    assert rp.host_selection_retry_max_attempts == 5


def test_vs_without_retries_gets_istio_default_retries_and_no_timeout():
    b = xds(vs("{hosts: [reviews], http: [{route: [{destination: {host: reviews, subset: v1}}]}]}"))
    [r] = routes(b)
    assert as_dict(r.route) == {"cluster": V1, "timeout": "0s", "retry_policy": DEFAULT_RETRY,
                                "max_grpc_timeout": "0s"}


def test_retries_status_codes_in_retry_on_and_disabling():
    b = xds(vs("""
hosts: [reviews]
http:
- match: [{uri: {prefix: /a}}]
  route: [{destination: {host: reviews}}]
  retries: {attempts: 1, retryOn: "gateway-error,503,429", retryIgnorePreviousHosts: false, backoff: 100ms}
- match: [{uri: {prefix: /b}}]
  route: [{destination: {host: reviews}}]
  retries: {attempts: 0}
- route: [{destination: {host: reviews}}]
  retries: {attempts: 2, retryOn: "reset,internal,envoy-ratelimited"}
"""))
    a, no_retries, c = routes(b)
    assert as_dict(a.route.retry_policy) == {
        "retry_on": "gateway-error,retriable-status-codes", "num_retries": 1, "retriable_status_codes": [503, 429],
        "host_selection_retry_max_attempts": "5", "retry_back_off": {"base_interval": "0.100s"}}
    assert not no_retries.route.HasField("retry_policy")
    assert c.route.retry_policy.retry_on == "reset,internal"  # gRPC's names pass through; envoy-ratelimited warned


def test_matches_one_route_per_match_entry_same_action():
    b = xds(vs("""
hosts: [reviews]
http:
- name: api
  match:
  - name: exact
    uri: {exact: /api}
  - uri: {prefix: /static}
    ignoreUriCase: true
  - uri: {regex: "/v[0-9]+/.*"}
    method: {exact: POST}
    authority: {prefix: reviews}
    scheme: {exact: http}
    headers: {end-user: {exact: jason}, x-canary: {}, x-b: {prefix: b}, x-re: {regex: "a.*"}}
    queryParams: {debug: {}, q: {exact: "1"}}
  route: [{destination: {host: reviews, subset: v2}}]
- route: [{destination: {host: reviews, subset: v1}}]
"""))
    r1, r2, r3, r4 = routes(b)
    assert (r1.name, r2.name, r3.name, r4.name) == ("api.exact", "api", "api", "")
    assert as_dict(r1.match) == {"path": "/api", "case_sensitive": True}
    assert as_dict(r2.match) == {"prefix": "/static", "case_sensitive": False}
    assert as_dict(r3.match) == {
        "safe_regex": {"regex": "/v[0-9]+/.*"}, "case_sensitive": True,
        "headers": [
            {"name": ":authority", "string_match": {"prefix": "reviews"}},
            {"name": ":method", "string_match": {"exact": "POST"}},
            {"name": ":scheme", "string_match": {"exact": "http"}},
            {"name": "end-user", "string_match": {"exact": "jason"}},
            {"name": "x-b", "string_match": {"prefix": "b"}},
            {"name": "x-canary", "present_match": True},
            {"name": "x-re", "string_match": {"safe_regex": {"regex": "a.*"}}},
        ],
        "query_parameters": [{"name": "debug", "present_match": True},
                             {"name": "q", "string_match": {"exact": "1"}}],
    }
    assert r1.route.cluster == r2.route.cluster == r3.route.cluster == V2
    assert as_dict(r4.match) == {"prefix": "/"}
    assert r4.route.cluster == V1


def test_without_headers_inverts_and_covers_the_missing_header():
    b = xds(vs("""
hosts: [reviews]
http:
- match: [{withoutHeaders: {x-debug: {exact: "on"}, x-internal: {}}}]
  route: [{destination: {host: reviews, subset: v2}}]
"""))
    absent, other_value = routes(b)
    assert [as_dict(h) for h in absent.match.headers] == [
        {"name": "x-debug", "present_match": True, "invert_match": True},
        {"name": "x-internal", "present_match": True, "invert_match": True}]
    assert [as_dict(h) for h in other_value.match.headers] == [
        {"name": "x-debug", "string_match": {"exact": "on"}, "invert_match": True},
        {"name": "x-internal", "present_match": True, "invert_match": True}]


def test_translation_stops_after_a_catch_all_and_no_fallback_route_is_added():
    b = xds(vs("""
hosts: [reviews]
http:
- match: [{uri: {prefix: /a}}, {uri: {prefix: /}}, {uri: {prefix: /never}}]
  route: [{destination: {host: reviews, subset: v1}}]
- route: [{destination: {host: reviews, subset: v2}}]
"""), vs("""
hosts: [ratings]
http:
- match: [{uri: {prefix: /only}}]
  route: [{destination: {host: ratings}}]
""", name="ratings"))
    assert [as_dict(r.match).get("prefix") for r in routes(b)] == ["/a", "/"]
    # No route matches /other on ratings: the router answers 404, as Envoy under Istio.
    [only] = routes(b, host="ratings.default.svc.cluster.local")
    assert only.match.prefix == "/only"


def test_source_labels_namespace_gateways_and_port_select_matches_for_this_proxy():
    b = xds(vs("""
hosts: [reviews]
http:
- match: [{sourceLabels: {app: productpage}, uri: {prefix: /mine}}]
  route: [{destination: {host: reviews, subset: v1}}]
- match: [{sourceLabels: {app: other}, uri: {prefix: /theirs}}]
  route: [{destination: {host: reviews, subset: v1}}]
- match: [{sourceNamespace: default, uri: {prefix: /ns}}, {sourceNamespace: shop, uri: {prefix: /shop}}]
  route: [{destination: {host: reviews, subset: v2}}]
- match: [{gateways: [mesh], uri: {prefix: /mesh}}, {gateways: [edge/gw], uri: {prefix: /edge}}]
  route: [{destination: {host: reviews, subset: v2}}]
- match: [{port: 9080, uri: {prefix: /p9080}}, {port: 9901, uri: {prefix: /p9901}}]
  route: [{destination: {host: reviews, subset: v3}}]
"""))
    assert [r.match.prefix for r in routes(b)] == ["/mine", "/ns", "/mesh", "/p9080"]


def test_gateway_only_virtual_services_do_not_apply_to_sidecars():
    b = xds(vs("""
hosts: [reviews]
gateways: [edge/gw]
http: [{route: [{destination: {host: reviews, subset: v1}}]}]
"""))
    assert routes(b)[0].name == "default"


def test_fault_injection_per_route_and_the_fault_filter():
    b = xds(vs("""
hosts: [reviews]
http:
- match: [{headers: {end-user: {exact: jason}}}]
  fault:
    delay: {fixedDelay: 7s, percentage: {value: 100}}
    abort: {httpStatus: 500, percentage: {value: 0.1}}
  route: [{destination: {host: reviews, subset: v1}}]
- fault: {delay: {fixedDelay: 1s, percent: 5}}
  route: [{destination: {host: reviews, subset: v1}}]
"""))
    jason, rest = routes(b)
    fault = xds_types.unpack(jason.typed_per_filter_config[xds_types.FAULT_FILTER_NAME])
    assert as_dict(fault) == {
        "delay": {"fixed_delay": "7s", "percentage": {"numerator": 1000000, "denominator": "MILLION"}},
        "abort": {"http_status": 500, "percentage": {"numerator": 1000, "denominator": "MILLION"}}}
    fault = xds_types.unpack(rest.typed_per_filter_config[xds_types.FAULT_FILTER_NAME])
    assert as_dict(fault) == {"delay": {"fixed_delay": "1s", "percentage": {"numerator": 5}}}  # HUNDRED = 0
    assert [f.name for f in hcm(b, 9080).http_filters] == [
        "istio.metadata_exchange", "envoy.filters.http.fault", "istio.stats", "envoy.filters.http.router"]


def test_no_fault_no_fault_filter():
    b = xds(vs("{hosts: [reviews], http: [{route: [{destination: {host: reviews}}]}]}"))
    assert [f.name for f in hcm(b, 9080).http_filters] == [
        "istio.metadata_exchange", "istio.stats", "envoy.filters.http.router"]


def test_mirror_and_mirrors():
    b = xds(vs("""
hosts: [reviews]
http:
- match: [{uri: {prefix: /a}}]
  route: [{destination: {host: reviews, subset: v1}}]
  mirror: {host: reviews, subset: v3}
  mirrorPercentage: {value: 12.5}
- match: [{uri: {prefix: /b}}]
  route: [{destination: {host: reviews, subset: v1}}]
  mirror: {host: reviews, subset: v2}
- match: [{uri: {prefix: /c}}]
  route: [{destination: {host: reviews, subset: v1}}]
  mirrors:
  - {destination: {host: reviews, subset: v2}, percentage: {value: 5}}
  - {destination: {host: ratings, port: {number: 9901}}}
  - {destination: {host: reviews, subset: v3}, percentage: {value: 0}}
"""))
    a, b_, c = routes(b)
    assert [as_dict(m) for m in a.route.request_mirror_policies] == [
        {"cluster": V3, "runtime_fraction": {"default_value": {"numerator": 125000, "denominator": "MILLION"}}}]
    assert [as_dict(m) for m in b_.route.request_mirror_policies] == [
        {"cluster": V2, "runtime_fraction": {"default_value": {"numerator": 100}}}]
    assert [m.cluster for m in c.route.request_mirror_policies] == [
        V2, "outbound|9901||ratings.default.svc.cluster.local"]


def test_rewrite_redirect_and_direct_response():
    b = xds(vs("""
hosts: [reviews]
http:
- match: [{uri: {prefix: /old}}]
  rewrite: {uri: /new, authority: reviews.internal}
  route: [{destination: {host: reviews, subset: v1}}]
- match: [{uri: {regex: "/legacy/.*"}}]
  rewrite: {uri: /modern}
  route: [{destination: {host: reviews, subset: v1}}]
- match: [{uri: {prefix: /v}}]
  rewrite: {uriRegexRewrite: {match: "^/v([0-9]+)/(.*)", rewrite: "/\\\\2?version=\\\\1"}}
  route: [{destination: {host: reviews, subset: v1}}]
- match: [{uri: {exact: /moved}}]
  redirect: {uri: /here, authority: example.com, scheme: https, port: 8443, redirectCode: 307}
- match: [{uri: {exact: /same-port}}]
  redirect: {authority: example.com, derivePort: FROM_REQUEST_PORT}
- match: [{uri: {exact: /http80}}]
  redirect: {uri: /x, port: 80}
- match: [{uri: {exact: /healthz}}]
  directResponse: {status: 200, body: {string: "ok\\n"}}
- match: [{uri: {exact: /bytes}}]
  directResponse: {status: 503, body: {bytes: "AAEC"}}
"""))
    prefix, regex, regex_rw, moved, same, http80, healthz, raw = routes(b)
    assert prefix.route.prefix_rewrite == "/new"
    assert prefix.route.host_rewrite_literal == "reviews.internal"
    # Envoy rewrites a regex route's whole path with prefix_rewrite; meshcore's core spells it as a regex.
    assert as_dict(regex.route.regex_rewrite) == {"pattern": {"regex": "^.*$"}, "substitution": "/modern"}
    assert as_dict(regex_rw.route.regex_rewrite) == {"pattern": {"regex": "^/v([0-9]+)/(.*)"},
                                                     "substitution": "/\\2?version=\\1"}
    assert as_dict(moved.redirect) == {"path_redirect": "/here", "host_redirect": "example.com",
                                       "scheme_redirect": "https", "port_redirect": 8443,
                                       "response_code": "TEMPORARY_REDIRECT"}
    assert as_dict(same.redirect) == {"host_redirect": "example.com", "port_redirect": 9080}
    assert as_dict(http80.redirect) == {"path_redirect": "/x"}  # no explicit :80 for http, as Istio
    assert as_dict(healthz.direct_response) == {"status": 200, "body": {"inline_string": "ok\n"}}
    assert raw.direct_response.body.inline_bytes == b"\x00\x01\x02"


def test_header_operations_route_and_single_destination():
    b = xds(vs("""
hosts: [reviews]
http:
- headers:
    request:
      set: {x-b: "2", x-a: "1", ":authority": reviews.example}
      add: {x-c: "3"}
      remove: [x-drop, host]
    response:
      set: {x-served-by: mesh}
      add: {x-trace: "t"}
      remove: [server]
  route:
  - destination: {host: reviews, subset: v1}
    headers: {request: {set: {x-dest: "d"}}}
"""))
    [r] = routes(b)
    hvo = base_pb2.HeaderValueOption
    set_, add = hvo.OVERWRITE_IF_EXISTS_OR_ADD, hvo.APPEND_IF_EXISTS_OR_ADD
    assert [(h.header.key, h.header.value, h.append_action) for h in r.request_headers_to_add] == [
        ("x-a", "1", set_), ("x-b", "2", set_), ("x-c", "3", add), ("x-dest", "d", set_)]
    assert list(r.request_headers_to_remove) == ["x-drop"]  # pseudo-headers and host are not removable
    assert [(h.header.key, h.append_action) for h in r.response_headers_to_add] == [("x-served-by", set_),
                                                                                   ("x-trace", add)]
    assert list(r.response_headers_to_remove) == ["server"]
    assert r.route.host_rewrite_literal == "reviews.example"


def test_zero_weight_destinations_are_left_out_of_a_split():
    b = xds(vs("""
hosts: [reviews]
http:
- route:
  - {destination: {host: reviews, subset: v1}, weight: 100}
  - {destination: {host: reviews, subset: v2}, weight: 0}
"""))
    [r] = routes(b)
    assert [c.name for c in r.route.weighted_clusters.clusters] == [V1]


def test_destination_port_defaults_and_short_names_resolve_in_the_vs_namespace():
    b = xds(vs("""
hosts: [catalog.shop.svc.cluster.local]
http:
- match: [{uri: {prefix: /a}}]
  route: [{destination: {host: catalog.shop.svc.cluster.local}}]
- route: [{destination: {host: catalog}}]
""", name="catalog", namespace="shop"))
    a, short = routes(b, port=8000, host="catalog.shop.svc.cluster.local")
    assert a.route.cluster == "outbound|8000||catalog.shop.svc.cluster.local"  # the service's only port
    assert short.route.cluster == "outbound|8000||catalog.shop.svc.cluster.local"


def test_consistent_hash_gives_hash_policy_and_retries_without_previous_hosts():
    dr = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings, namespace: default}
spec:
  host: ratings
  trafficPolicy:
    loadBalancer: {consistentHash: {httpCookie: {name: user, ttl: 60s, path: /}}}
    portLevelSettings:
    - port: {number: 9901}
      loadBalancer: {consistentHash: {useSourceIp: true}}
"""
    b = xds(dr, vs("""
hosts: [reviews]
http: [{route: [{destination: {host: ratings, port: {number: 9080}}}]}]
"""))
    [r] = routes(b)
    assert [as_dict(h) for h in r.route.hash_policy] == [{"cookie": {"name": "user", "ttl": "60s", "path": "/"}}]
    assert list(r.route.retry_policy.retry_host_predicate) == []  # Istio's DefaultConsistentHashPolicy
    [admin] = routes(b, port=9901, host="ratings.default.svc.cluster.local")
    assert [as_dict(h) for h in admin.route.hash_policy] == [{"connection_properties": {"source_ip": True}}]


@pytest.mark.parametrize("value, numerator", [(100, 1000000), (50, 500000), (0.1, 1000), (0.0001, 1), (0, 0)])
def test_percentages_per_million_as_istio(value, numerator):
    from meshcore.translate.routes import fraction

    assert fraction(value) == {"numerator": numerator, "denominator": "MILLION"}
