"""Validation of Istio resources: Istio's own rules (CRD schema, CEL, webhook)
and meshcore's support level per field (translated, warned, rejected)."""
import pytest
import yaml

from meshcore.translate import findings as fnd
from meshcore.translate import load_documents
from meshcore.translate.schema import describe
from meshcore.translate.validate import SPECS

API = {"VirtualService": "networking.istio.io/v1", "DestinationRule": "networking.istio.io/v1",
       "ServiceEntry": "networking.istio.io/v1", "WorkloadEntry": "networking.istio.io/v1",
       "PeerAuthentication": "security.istio.io/v1", "AuthorizationPolicy": "security.istio.io/v1",
       "Service": "v1"}


def found(kind, spec_yaml):
    spec = yaml.safe_load(spec_yaml)
    doc = {"apiVersion": API[kind], "kind": kind, "metadata": {"name": "x", "namespace": "ns"}, "spec": spec}
    mesh = load_documents([doc], "f.yaml")
    return [(f.severity, f.code, f.path, f.message) for f in mesh.findings if f.code != fnd.NOT_ENFORCED
            or kind not in ("PeerAuthentication", "AuthorizationPolicy") or f.path]


ROUTE = "route: [{destination: {host: a}}]"


def r(spec):
    return spec.replace("$R", ROUTE)

# (kind, spec, path, message fragment, code)
ERRORS = [
    ("VirtualService", r("{http: [{$R}]}"), "spec.hosts", "Required value", fnd.INVALID),
    ("VirtualService", r("{hosts: ['*'], http: [{$R}]}"), "spec.hosts[0]",
     "wildcard host * is not allowed for virtual services bound to the mesh gateway", fnd.INVALID),
    ("VirtualService", r("{hosts: [a, a], http: [{$R}]}"), "spec.hosts[1]", "duplicate hosts", fnd.INVALID),
    ("VirtualService", r("{hosts: ['*.a.com', 'b.a.com'], http: [{$R}]}"), "spec.hosts[1]",
     "duplicate hosts", fnd.INVALID),
    ("VirtualService", "{hosts: [a]}", "spec", "http, tcp or tls must be provided", fnd.INVALID),
    ("VirtualService", "{hosts: [a], http: [{}]}", "spec.http[0]", "HTTP route or redirect is required", fnd.INVALID),
    ("VirtualService", r("{hosts: [a], http: [{$R, redirect: {uri: /x}}]}"), "spec.http[0]",
     "cannot contain both route and redirect", fnd.INVALID),
    ("VirtualService", "{hosts: [a], http: [{redirect: {uri: /x}, rewrite: {uri: /y}}]}", "spec.http[0]",
     "both rewrite and redirect", fnd.INVALID),
    ("VirtualService", "{hosts: [a], http: [{redirect: {}}]}", "spec.http[0].redirect",
     "redirect must specify URI, authority, scheme, or port", fnd.INVALID),
    ("VirtualService", "{hosts: [a], http: [{redirect: {uri: /x, redirectCode: 200}}]}",
     "spec.http[0].redirect.redirectCode", "must be 3xx", fnd.INVALID),
    ("VirtualService", "{hosts: [a], http: [{redirect: {uri: /x, redirectCode: 304}}]}",
     "spec.http[0].redirect.redirectCode", "can only send 301, 302, 303, 307, 308", fnd.UNSUPPORTED),
    ("VirtualService", "{hosts: [a], http: [{redirect: {uri: /x, scheme: ftp}}]}", "spec.http[0].redirect.scheme",
     "must be \"http\" or \"https\"", fnd.INVALID),
    ("VirtualService", "{hosts: [a], http: [{route: [{destination: {host: a}, weight: 0},"
                       " {destination: {host: b}, weight: 0}]}]}", "spec.http[0].route", "total destination weight = 0",
     fnd.INVALID),
    ("VirtualService", "{hosts: [a], http: [{route: [{destination: {host: a}, weight: -1}]}]}",
     "spec.http[0].route[0].weight", "must be 0..100", fnd.INVALID),
    ("VirtualService", "{hosts: [a], http: [{route: [{destination: {host: '*'}}]}]}",
     "spec.http[0].route[0].destination.host", "invalid destination host *", fnd.INVALID),
    ("VirtualService", "{hosts: [a], http: [{route: [{destination: {host: a, subset: V_1}}]}]}",
     "spec.http[0].route[0].destination.subset", "subset name is invalid", fnd.INVALID),
    ("VirtualService", "{hosts: [a], http: [{route: [{destination: {host: a, port: {number: 70000}}}]}]}",
     "spec.http[0].route[0].destination.port.number", "port number must be between 1-65535", fnd.INVALID),
    ("VirtualService", "{hosts: [a], http: [{route: [{destination: {subset: v1}}]}]}",
     "spec.http[0].route[0].destination.host", "Required value", fnd.INVALID),
    ("VirtualService", r("{hosts: [a], http: [{$R, retries: {attempts: -1}}]}"),
     "spec.http[0].retries.attempts", "attempts cannot be negative", fnd.INVALID),
    ("VirtualService", r("{hosts: [a], http: [{$R, retries: {attempts: 0, perTryTimeout: 1s}}]}"),
     "spec.http[0].retries", "configured when attempts are set to 0", fnd.INVALID),
    ("VirtualService", r("{hosts: [a], http: [{$R, retries: {attempts: 1, retryOn: '5xx,bogus'}}]}"),
     "spec.http[0].retries.retryOn", '"bogus" is not a valid retryOn policy', fnd.INVALID),
    ("VirtualService", r("{hosts: [a], http: [{$R, timeout: 0.1ms}]}"), "spec.http[0].timeout",
     "must be a valid duration greater than 1ms", fnd.INVALID),
    ("VirtualService", r("{hosts: [a], http: [{$R, timeout: 10}]}"), "spec.http[0].timeout",
     'expected a duration such as "10s"', fnd.INVALID),
    ("VirtualService", r("{hosts: [a], http: [{$R, fault: {}}]}"), "spec.http[0].fault",
     "must have an abort and/or a delay", fnd.INVALID),
    ("VirtualService", r("{hosts: [a], http: [{$R, fault: {abort: {httpStatus: 700}}}]}"),
     "spec.http[0].fault.abort.httpStatus", "HTTP status 700 is not in range 200-599", fnd.INVALID),
    ("VirtualService", r("{hosts: [a], http: [{$R, fault: {abort: {http2Error: X}}}]}"),
     "spec.http[0].fault.abort.http2Error", "not supported yet", fnd.INVALID),
    ("VirtualService", r("{hosts: [a], http: [{$R, fault: {abort: {grpcStatus: UNAVAILABLE}}}]}"),
     "spec.http[0].fault.abort.grpcStatus", "aborts with an HTTP status only", fnd.UNSUPPORTED),
    ("VirtualService", r("{hosts: [a], http: [{$R, fault: {delay: {exponentialDelay: 1s}}}]}"),
     "spec.http[0].fault.delay.exponentialDelay", "exponentialDelay not supported yet", fnd.INVALID),
    ("VirtualService", r("{hosts: [a], http: [{$R, fault: {delay: {fixedDelay: 1s, percentage: {value: 101}}}}]}"),
     "spec.http[0].fault.delay.percentage.value", "not in range 0..100", fnd.INVALID),
    ("VirtualService", r("{hosts: [a], http: [{$R, rewrite: {uri: /a, uriRegexRewrite: {match: a, rewrite: b}}}]}"),
     "spec.http[0].rewrite", "may only contain one of URI or UriRegexRewrite", fnd.INVALID),
    ("VirtualService", r("{hosts: [a], http: [{$R, rewrite: {uriRegexRewrite: {match: '(?=x)', rewrite: b}}}]}"),
     "spec.http[0].rewrite.uriRegexRewrite.match", "lookaround", fnd.INVALID),
    ("VirtualService", r("{hosts: [a], http: [{$R, match: [{headers: {'bad header': {exact: x}}}]}]}"),
     'spec.http[0].match[0].headers["bad header"]', "not a valid header name", fnd.INVALID),
    ("VirtualService", r("{hosts: [a], http: [{$R, match: [{uri: {regex: '(a'}}]}]}"),
     "spec.http[0].match[0].uri.regex", "not a valid regex", fnd.INVALID),
    ("VirtualService", r("{hosts: [a], http: [{$R, match: [{uri: {exact: /a, prefix: /b}}]}]}"),
     "spec.http[0].match[0].uri", "cannot both be set", fnd.INVALID),
    ("VirtualService", r("{hosts: [a], http: [{$R, match: [{headers: {x: {prefix: ''}}}]}]}"),
     'spec.http[0].match[0].headers["x"].prefix', "empty prefix", fnd.INVALID),
    ("VirtualService", r("{hosts: [a], http: [{$R, match: [{headers: {'@request.auth.claims.group': {exact: a}}}]}]}"),
     'spec.http[0].match[0].headers["@request.auth.claims.group"]', "JWT claims", fnd.UNSUPPORTED),
    ("VirtualService", r("{hosts: [a], http: [{$R, mirror: {host: b}, mirrors: [{destination: {host: c}}]}]}"),
     "spec.http[0]", "mirror and mirrors cannot both be set", fnd.INVALID),
    ("VirtualService", r("{hosts: [a], http: [{$R, mirrorPercentage: {value: 150}}]}"),
     "spec.http[0].mirrorPercentage.value", "not in range 0..100", fnd.INVALID),
    ("VirtualService", r("{hosts: [a], http: [{$R, corsPolicy: {allowOrigins: [{exact: x}]}}]}"),
     "spec.http[0].corsPolicy", "no CORS filter", fnd.UNSUPPORTED),
    ("VirtualService", "{hosts: [a], http: [{delegate: {name: b}}]}", "spec.http[0].delegate", "delegation",
     fnd.UNSUPPORTED),
    ("VirtualService", "{hosts: [a], http: [{route: [{destination: {host: a}, weight: 50, headers: {request: "
                       "{set: {x: y}}}}, {destination: {host: b}, weight: 50}]}]}",
     "spec.http[0].route[0].headers", "per destination of a weighted split", fnd.UNSUPPORTED),
    ("VirtualService", r("{hosts: [a], http: [{$R, headers: {request: {set: {x: '100%'}}}}]}"),
     'spec.http[0].headers.request.set["x"]', "substitution commands", fnd.UNSUPPORTED),
    ("VirtualService", r("{hosts: [a], http: [{$R, headers: {request: {set: {host: a}}}, rewrite: {authority: b}}]}"),
     "spec.http[0].headers.request", "authority header cannot be set multiple times", fnd.INVALID),
    ("VirtualService", r("{hosts: [a], http: [{$R, directResponse: {status: 200}}]}"), "spec.http[0]",
     "directResponse cannot be set together with route", fnd.INVALID),
    ("VirtualService", "{hosts: [a], http: [{directResponse: {status: 200, body: {string: %s}}}]}" % ("x" * 5000),  # noqa: UP031
     "spec.http[0].directResponse.body", "limited to 4096 bytes", fnd.UNSUPPORTED),
    ("VirtualService", "{hosts: [a], http: [{directResponse: {status: 99}}]}", "spec.http[0].directResponse.status",
     "not in range 200-599", fnd.INVALID),
    ("VirtualService", r("{hosts: [a], http: [{$R, retrys: {}}]}"), "spec.http[0]",
     'unknown field "retrys" (did you mean "retries"?)', fnd.INVALID),
    ("DestinationRule", "{host: a, trafficPolicy: {connectionPool: {http: {http2KeepAlive: {interval: 0.5ms}}}}}",
     "spec.trafficPolicy.connectionPool.http.http2KeepAlive.interval", "greater than 1ms", fnd.INVALID),
    ("VirtualService", r("{hosts: [a], tcp: [{match: [{destinationSubnets: [10.0.0.0/8]}], $R}]}"),
     "spec.tcp[0].match[0].destinationSubnets", "per port, not per address", fnd.UNSUPPORTED),
    ("VirtualService", r("{hosts: [a], gateways: [bad/], http: [{$R}]}"), "spec.gateways[0]",
     "cannot be empty", fnd.INVALID),
    # DestinationRule
    ("DestinationRule", "{subsets: []}", "spec.host", "Required value", fnd.INVALID),
    ("DestinationRule", "{host: a, trafficPolicy: {}}", "spec.trafficPolicy", "must have at least one field",
     fnd.INVALID),
    ("DestinationRule", "{host: a, trafficPolicy: {connectionPool: {}}}", "spec.trafficPolicy.connectionPool",
     "connection pool must have at least one field", fnd.INVALID),
    ("DestinationRule", "{host: a, trafficPolicy: {connectionPool: {tcp: {maxConnections: -1}}}}",
     "spec.trafficPolicy.connectionPool.tcp.maxConnections", "max connections must be non-negative", fnd.INVALID),
    ("DestinationRule", "{host: a, trafficPolicy: {loadBalancer: {simple: PASSTHROUGH}}}",
     "spec.trafficPolicy.loadBalancer.simple", "no original-destination clusters", fnd.UNSUPPORTED),
    ("DestinationRule", "{host: a, trafficPolicy: {loadBalancer: {simple: FASTEST}}}",
     "spec.trafficPolicy.loadBalancer.simple", 'Unsupported value: "FASTEST"', fnd.INVALID),
    ("DestinationRule", "{host: a, trafficPolicy: {loadBalancer: {simple: RANDOM, consistentHash: {useSourceIp: "
                        "true}}}}", "spec.trafficPolicy.loadBalancer", "cannot both be set", fnd.INVALID),
    ("DestinationRule", "{host: a, trafficPolicy: {loadBalancer: {consistentHash: {httpCookie: {ttl: 1s}}}}}",
     "spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.name", "Required value", fnd.INVALID),
    ("DestinationRule", "{host: a, trafficPolicy: {loadBalancer: {consistentHash: {httpQueryParameterName: u}}}}",
     "spec.trafficPolicy.loadBalancer.consistentHash.httpQueryParameterName", "query parameter", fnd.UNSUPPORTED),
    ("DestinationRule", "{host: a, trafficPolicy: {loadBalancer: {consistentHash: {useSourceIp: true, "
                        "maglev: {tableSize: 100}}}}}", "spec.trafficPolicy.loadBalancer.consistentHash.maglev"
     ".tableSize", "prime", fnd.INVALID),
    ("DestinationRule", "{host: a, trafficPolicy: {outlierDetection: {maxEjectionPercent: 101}}}",
     "spec.trafficPolicy.outlierDetection.maxEjectionPercent", "not in range 0..100", fnd.INVALID),
    ("DestinationRule", "{host: a, trafficPolicy: {outlierDetection: {consecutiveLocalOriginFailures: 3}}}",
     "spec.trafficPolicy.outlierDetection", "split external local origin errors is set to false", fnd.INVALID),
    ("DestinationRule", "{host: a, trafficPolicy: {tunnel: {targetHost: b, targetPort: 8080}}}",
     "spec.trafficPolicy.tunnel", "tunneling", fnd.UNSUPPORTED),
    ("DestinationRule", "{host: a, trafficPolicy: {portLevelSettings: [{loadBalancer: {simple: RANDOM}}]}}",
     "spec.trafficPolicy.portLevelSettings[0].port", "Required value", fnd.INVALID),
    ("DestinationRule", "{host: a, subsets: [{name: v1}, {name: v1}]}", "spec.subsets[1].name", "Duplicate value",
     fnd.INVALID),
    ("DestinationRule", "{host: a, subsets: [{labels: {version: v1}}]}", "spec.subsets[0].name", "Required value",
     fnd.INVALID),
    ("DestinationRule", "{host: a, subsets: [{name: v1, labels: {version: '*'}}]}",
     'spec.subsets[0].labels["version"]', "wildcard", fnd.INVALID),
    # ServiceEntry, WorkloadEntry, Service
    ("ServiceEntry", "{hosts: [a.com], resolution: STATIC, endpoints: [{address: b.com}]}",
     "spec.endpoints[0].address", "is not a valid IP address", fnd.INVALID),
    ("ServiceEntry", "{hosts: [a.com], resolution: STATIC, endpoints: [{address: 1.2.3.4, ports: {http: 0}}]}",
     'spec.endpoints[0].ports["http"]', "port must be between 1-65535", fnd.INVALID),
    ("ServiceEntry", "{hosts: [a.com], ports: [{number: 80}]}", "spec.ports[0].name", "Required value", fnd.INVALID),
    ("WorkloadEntry", "{address: db.example.com}", "spec.address", "needs an IP address", fnd.UNSUPPORTED),
    ("WorkloadEntry", "{labels: {app: a}}", "spec", "Address is required", fnd.INVALID),
    ("WorkloadEntry", "{address: 1.2.3.4, ports: {'-bad': 80}}", 'spec.ports["-bad"]', "must be valid", fnd.INVALID),
    ("Service", "{ports: [{port: 80}, {port: 81}]}", "spec.ports[0].name", "must be named", fnd.INVALID),
    ("Service", "{ports: [{name: http, port: 80, targetPort: 0}]}", "spec.ports[0].targetPort",
     "port must be between 1-65535", fnd.INVALID),
    ("Service", "{ports: [{name: http, port: 80, protocol: HTTP}]}", "spec.ports[0].protocol",
     'Unsupported value: "HTTP"', fnd.INVALID),
    ("PeerAuthentication", "{mtls: {mode: SOMETIMES}}", "spec.mtls.mode", "Unsupported value", fnd.INVALID),
]


@pytest.mark.parametrize("kind, spec, path, message, code", ERRORS,
                         ids=[f"{k}-{p}-{m[:30]}" for k, _, p, m, _ in ERRORS])
def test_errors_name_the_field(kind, spec, path, message, code):
    got = found(kind, spec)
    hits = [g for g in got if g[2] == path and message in g[3]]
    assert hits, f"no finding at {path} containing {message!r}: {got}"
    assert hits[0][0] == "error" and hits[0][1] == code


# (kind, spec, path, message fragment, code) for warnings: valid, used, reported
WARNINGS = [
    ("VirtualService", r("{hosts: [a], http: [{$R, match: [{statPrefix: s}]}]}"),
     "spec.http[0].match[0].statPrefix", "not supported by meshcore, ignored", fnd.IGNORED),
    ("VirtualService", r("{hosts: [a], http: [{$R}], tls: [{match: [{sniHosts: [a]}], $R}]}"),
     "spec.tls", "TLS (SNI) routes", fnd.IGNORED),
    ("VirtualService", r("{hosts: [a], http: [{$R, retries: {attempts: 2, retryRemoteLocalities: true}}]}"),
     "spec.http[0].retries.retryRemoteLocalities", "no localities", fnd.IGNORED),
    ("VirtualService", r("{hosts: [a], http: [{$R, mirror: {host: b}, mirrorPercent: 5}]}"),
     "spec.http[0].mirrorPercent", "deprecated", fnd.DEPRECATED),
    ("DestinationRule", "{host: a, trafficPolicy: {loadBalancer: {warmup: {duration: 10s}}}}",
     "spec.trafficPolicy.loadBalancer.warmup", "slow start", fnd.IGNORED),
    ("DestinationRule", "{host: a, trafficPolicy: {loadBalancer: {consistentHash: {useSourceIp: true, "
                        "maglev: {tableSize: 65537}}}}}", "spec.trafficPolicy.loadBalancer.consistentHash.maglev",
     "ring hash", fnd.IGNORED),
    ("DestinationRule", "{host: a, trafficPolicy: {outlierDetection: {consecutiveErrors: 5}}}",
     "spec.trafficPolicy.outlierDetection.consecutiveErrors", "deprecated", fnd.DEPRECATED),
    ("ServiceEntry", "{hosts: [a.com], resolution: DNS}", "spec.resolution", "only STATIC", fnd.UNSUPPORTED),
    ("ServiceEntry", "{hosts: [a.com], addresses: [10.1.2.3], resolution: STATIC}", "spec.addresses",
     "not service addresses", fnd.IGNORED),
    ("WorkloadEntry", "{address: 1.2.3.4, locality: us/east}", "spec.locality", "no localities", fnd.IGNORED),
    ("Service", "{type: ExternalName, externalName: a.com}", "spec.type", "ExternalName", fnd.UNSUPPORTED),
]


@pytest.mark.parametrize("kind, spec, path, message, code", WARNINGS,
                         ids=[f"{k}-{p}-{m[:30]}" for k, _, p, m, _ in WARNINGS])
def test_warnings_name_the_field_and_the_resource_is_kept(kind, spec, path, message, code):
    got = found(kind, spec)
    assert [g for g in got if g[0] == "error"] == []
    hits = [g for g in got if g[2] == path and message in g[3]]
    assert hits, f"no warning at {path} containing {message!r}: {got}"
    assert hits[0][1] == code


@pytest.mark.parametrize("spec", [
    "{host: a, trafficPolicy: {tls: {mode: DISABLE}}}",
    "{host: a, trafficPolicy: {connectionPool: {http: {h2UpgradePolicy: DO_NOT_UPGRADE}}}}",
    "{host: a, trafficPolicy: {connectionPool: {http: {useClientProtocol: false}}}}",
    # translated since issue 10 (HTTP/2 upstream)
    "{host: a, trafficPolicy: {connectionPool: {http: {h2UpgradePolicy: UPGRADE, maxConcurrentStreams: 10}}}}",
    "{host: a, trafficPolicy: {connectionPool: {http: {useClientProtocol: true}}}}",
])
def test_default_values_of_unimplemented_fields_are_quiet(spec):
    assert found("DestinationRule", spec) == []


def test_a_full_virtual_service_is_clean():
    spec = """
hosts: [reviews, reviews.other.svc.cluster.local]
gateways: [mesh]
exportTo: ["."]
http:
- name: jason
  match:
  - name: m1
    uri: {prefix: /api}
    ignoreUriCase: true
    method: {exact: GET}
    authority: {prefix: reviews}
    scheme: {exact: http}
    headers: {end-user: {exact: jason}, x-present: {}}
    withoutHeaders: {x-debug: {regex: "on|yes"}}
    queryParams: {q: {exact: "1"}}
    port: 9080
    sourceLabels: {app: productpage}
    sourceNamespace: default
  route:
  - destination: {host: reviews, subset: v2, port: {number: 9080}}
  rewrite: {uri: /v2/api, authority: reviews-v2}
  timeout: 3s
  retries: {attempts: 4, perTryTimeout: 500ms, retryOn: "gateway-error,503", retryIgnorePreviousHosts: false,
            backoff: 50ms}
  fault: {delay: {fixedDelay: 10ms, percentage: {value: 0.5}}, abort: {httpStatus: 418, percentage: {value: 1}}}
  mirror: {host: reviews, subset: v3}
  mirrorPercentage: {value: 12.5}
  headers:
    request: {set: {x-a: "1"}, add: {x-b: "2"}, remove: [x-c]}
    response: {set: {x-d: "3"}, remove: [x-e]}
- match: [{uri: {exact: /old}}]
  redirect: {uri: /new, authority: example.com, port: 8080, scheme: https, redirectCode: 308}
- match: [{uri: {regex: "/health.*"}}]
  directResponse: {status: 200, body: {string: ok}}
- route:
  - destination: {host: reviews, subset: v1}
    weight: 75
  - destination: {host: reviews, subset: v3}
    weight: 25
  mirrors:
  - destination: {host: reviews, subset: v2}
    percentage: {value: 5}
"""
    assert found("VirtualService", spec) == []


def test_a_full_destination_rule_is_clean():
    spec = """
host: reviews
exportTo: ["*"]
workloadSelector: {matchLabels: {app: productpage}}
trafficPolicy:
  loadBalancer: {simple: LEAST_CONN}
  connectionPool:
    tcp: {maxConnections: 100, connectTimeout: 250ms, idleTimeout: 30m}
    http: {http1MaxPendingRequests: 10, http2MaxRequests: 200, maxRequestsPerConnection: 5, maxRetries: 3,
           idleTimeout: 60s}
  outlierDetection: {consecutive5xxErrors: 7, consecutiveGatewayErrors: 3, interval: 5s, baseEjectionTime: 1m,
                     maxEjectionPercent: 50}
  portLevelSettings:
  - port: {number: 9080}
    loadBalancer: {consistentHash: {httpHeaderName: x-user, ringHash: {minimumRingSize: 2048}}}
subsets:
- name: v1
  labels: {version: v1}
  trafficPolicy:
    loadBalancer: {consistentHash: {httpCookie: {name: session, ttl: 0s, path: /}}}
- name: v2
  labels: {version: v2}
"""
    assert found("DestinationRule", spec) == []


def test_every_field_has_a_documented_status():
    rows = [row for node in SPECS.values() for row in describe(node)]
    assert {status for _, status, _ in rows} == {"translated", "warned", "rejected", "rejected (as Istio)"}
    for path, status, detail in rows:
        if status != "translated":
            assert detail, f"{path}: {status} without a reason"
