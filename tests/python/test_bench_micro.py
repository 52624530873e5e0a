"""Micro-benchmarks of the C hot path from Python (pytest-benchmark): the
HTTP/1.1 request parser (meshcore.http.parse_request) and the router's match
on a 1,100-route table (meshcore.route.Router), each call one C parse or
match plus the Python call around it. benchmarks/bench_primitives.py sets
them against their Python alternatives. Nothing here asserts a speed:
budgets are checked by benchmarks/, never in a test. The tests check the
result, so the "worst case" really is the worst case.

    pytest tests/python/test_bench_micro.py --benchmark-only

Skipped without pytest-benchmark.
"""

import pytest

pytest.importorskip("pytest_benchmark")

import yaml  # noqa: E402

from meshcore import xds_types  # noqa: E402
from meshcore.config import parse_bootstrap  # noqa: E402
from meshcore.http import parse_request  # noqa: E402
from meshcore.route import Router  # noqa: E402

N_SERVICES = 1000      # /svc0000/ ... /svc0999/: one prefix route each
HEADER_EVERY = 10      # and a header-matched route before every 10th one
N_CLUSTERS = 8


# ---- the HTTP/1.1 parser ----------------------------------------------------------------

# What wrk sends: the smallest realistic head.
MINIMAL_REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:10080\r\n\r\n"

# A sidecar's typical inbound request: tracing, forwarding and auth headers
# (~900 bytes, 18 headers). The body is not part of the head.
TYPICAL_REQUEST = (
    b"POST /api/v1/orders/4711/items?expand=price&currency=EUR HTTP/1.1\r\n"
    b"Host: checkout.default.svc.cluster.local\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    b"Chrome/120.0.0.0 Safari/537.36\r\n"
    b"Accept: application/json, text/plain, */*\r\n"
    b"Accept-Encoding: gzip, deflate, br\r\n"
    b"Accept-Language: en-US,en;q=0.9,de;q=0.8\r\n"
    b"Content-Type: application/json\r\n"
    b"Content-Length: 128\r\n"
    b"Authorization: Bearer eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwi"
    b"bmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c\r\n"
    b"Cookie: session=5f2b8c1e9a7d4e3f; theme=dark; consent=1\r\n"
    b"X-Request-Id: 3f1c9a2e-7b4d-4c8e-9f60-1a2b3c4d5e6f\r\n"
    b"traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n"
    b"tracestate: rojo=00f067aa0ba902b7,congo=t61rcWkgMzE\r\n"
    b"X-Forwarded-For: 10.0.3.17, 10.0.7.2\r\n"
    b"X-Forwarded-Proto: https\r\n"
    b"X-Envoy-Attempt-Count: 1\r\n"
    b"X-Canary: false\r\n"
    b"Connection: keep-alive\r\n"
    b"\r\n"
)


@pytest.mark.parametrize("request_head", [MINIMAL_REQUEST, TYPICAL_REQUEST], ids=["minimal", "typical"])
def test_h1_parse(benchmark, request_head):
    req = benchmark(parse_request, request_head)
    benchmark.extra_info["bytes"] = len(request_head)
    assert req.head_length == len(request_head)


# ---- the router ------------------------------------------------------------------------------

# The header matchers the header-matched routes cycle through: one of each
# kind the router evaluates differently.
HEADER_MATCHERS = [
    {"name": "x-canary", "string_match": {"exact": "true"}},
    {"name": "x-debug", "present_match": True},
    {"name": "x-client-version", "string_match": {"prefix": "2."}},
    {"name": "x-tenant", "string_match": {"safe_regex": {"regex": "^(acme|globex)-[0-9]+$"}}},
]


def route_table_routes():
    """1,000 prefix routes /svc0000/ ... /svc0999/ and, before every 10th, a
    header-matched route on the same prefix: 1,100 routes, first match wins."""
    routes = []
    for i in range(N_SERVICES):
        prefix = f"/svc{i:04d}/"
        cluster = f"cluster{i % N_CLUSTERS}"
        if i % HEADER_EVERY == 0:
            headers = [HEADER_MATCHERS[(i // HEADER_EVERY) % len(HEADER_MATCHERS)]]
            routes.append({"name": f"svc{i:04d}-hdr", "match": {"prefix": prefix, "headers": headers},
                           "route": {"cluster": f"cluster{(i + 1) % N_CLUSTERS}"}})
        routes.append({"name": f"svc{i:04d}", "match": {"prefix": prefix}, "route": {"cluster": cluster}})
    return routes


ROUTES = route_table_routes()
ROUTE_INDEX = {r["name"]: i for i, r in enumerate(ROUTES)}


def route_table_bootstrap():
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3"
                 ".HttpConnectionManager",
        "stat_prefix": "bench",
        "route_config": {"name": "bench",
                         "virtual_hosts": [{"name": "mesh", "domains": ["*"], "routes": ROUTES}]},
        "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}],
    }
    clusters = [{"name": f"cluster{c}", "type": "STATIC", "connect_timeout": "1s",
                 "load_assignment": {"cluster_name": f"cluster{c}", "endpoints": [{"lb_endpoints": [
                     {"endpoint": {"address": {"socket_address": {
                         "address": "127.0.0.1", "port_value": 18000 + c}}}}]}]}}
                for c in range(N_CLUSTERS)]
    return {"static_resources": {
        "listeners": [{"name": "bench", "address": {"socket_address": {"address": "127.0.0.1",
                                                                        "port_value": 0}},
                       "filter_chains": [{"filters": [{
                           "name": "envoy.filters.network.http_connection_manager",
                           "typed_config": hcm}]}]}],
        "clusters": clusters}}


@pytest.fixture(scope="module")
def router():
    """The Router over the validated 1,100-route table."""
    text = yaml.dump(route_table_bootstrap(), Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper))
    lis = parse_bootstrap(text, "bench-routes.yaml").static_resources.listeners[0]
    return Router(xds_types.unpack(lis.filter_chains[0].filters[0].typed_config).route_config)


# Request headers that are present but match no route's matcher (so every
# header-matched route on the way is evaluated and rejected).
PLAIN_HEADERS = {"user-agent": "bench/1.0", "accept": "*/*", "x-request-id": "3f1c9a2e-7b4d-4c8e",
                 "x-canary": "false", "x-client-version": "1.9.3", "x-tenant": "initech-7"}

ROUTE_CASES = {
    # The last route of the table: every earlier prefix and header matcher
    # is tried first.
    "last-prefix": ("/svc0999/orders/42", PLAIN_HEADERS, "svc0999"),
    # A header-matched route near the end, matched (x-canary: true).
    "header-near-end": ("/svc0960/orders/42", {**PLAIN_HEADERS, "x-canary": "true"}, "svc0960-hdr"),
    # A header-matched route near the end, not matched: falls through to its
    # prefix route after evaluating the regex header matcher.
    "header-regex-miss": ("/svc0990/orders/42", PLAIN_HEADERS, "svc0990"),
    # No route matches: the whole table is scanned (the router answers 404).
    "no-match": ("/unknown/orders/42", PLAIN_HEADERS, None),
}


@pytest.mark.parametrize("case", list(ROUTE_CASES))
def test_route_match_1100_routes(benchmark, router, case):
    path, headers, expected = ROUTE_CASES[case]
    m = benchmark(router.match, "GET", "checkout.default.svc.cluster.local", path, headers)
    benchmark.extra_info["routes"] = len(ROUTES)
    assert (m.route.name if m else None) == expected
