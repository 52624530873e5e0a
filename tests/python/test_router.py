"""Route matching in the core (route/router.c), driven with real xDS
Listener messages through meshcore.route.Router: which virtual host and which
route a request lands on, per Envoy's route.v3 semantics."""
import pytest

from meshcore import xds_types
from meshcore.config import parse_bootstrap
from meshcore.route import Router

TEMPLATE = """
static_resources:
  listeners:
  - name: l
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: t
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
          route_config:
            virtual_hosts: %s
  clusters:
  - name: c
    load_assignment:
      cluster_name: c
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 1}}}}]}]
"""


def listener(vhosts_yaml):
    return parse_bootstrap(TEMPLATE % vhosts_yaml, "t.yaml").static_resources.listeners[0]


def router(lis):
    """The Router over a listener's inline route configuration."""
    return Router(xds_types.unpack(lis.filter_chains[0].filters[0].typed_config).route_config)


def route(name, match):
    return {"name": name, "match": match, "route": {"cluster": "c"}}


def vh(name, domains, routes):
    return {"name": name, "domains": domains, "routes": routes}


DOMAINS = listener(str([
    vh("exact", ["api.example.com", "API2.example.com"], [route("r", {"prefix": "/"})]),
    vh("suffix_long", ["*.svc.example.com"], [route("r", {"prefix": "/"})]),
    vh("suffix", ["*.example.com"], [route("r", {"prefix": "/"})]),
    vh("prefix", ["api.*"], [route("r", {"prefix": "/"})]),
    vh("with_port", ["svc:9080"], [route("r", {"prefix": "/"})]),
    vh("any", ["*"], [route("r", {"prefix": "/"})]),
]).replace("'", '"'))
DOMAINS_ROUTER = router(DOMAINS)


@pytest.mark.parametrize("authority,expected", [
    ("api.example.com", "exact"),
    ("Api.Example.Com", "exact"),          # case-insensitive
    ("api2.example.com", "exact"),
    ("api.example.com:8080", "prefix"),    # as Envoy: the port is part of the authority ("api.*")
    ("api2.example.com:81", "exact"),      # nothing matches with the port: tried without it
    ("a.svc.example.com", "suffix_long"),  # the longest wildcard wins
    ("b.example.com", "suffix"),
    ("example.com", "any"),                # "*.example.com" needs something before the dot
    ("api.other.org", "prefix"),
    ("svc:9080", "with_port"),
    ("svc", "any"),
    ("nothing.org", "any"),
])
def test_virtual_host_selection(authority, expected):
    assert DOMAINS_ROUTER.match("GET", authority, "/").route.virtual_host == expected


def test_no_virtual_host_without_catch_all():
    lis = listener(str([vh("only", ["a"], [route("r", {"prefix": "/"})])]).replace("'", '"'))
    assert router(lis).match("GET", "b", "/") is None


ROUTES = listener("""[{"name": "v", "domains": ["*"], "routes": [
  {"name": "exact", "match": {"path": "/exact"}, "route": {"cluster": "c"}},
  {"name": "ci", "match": {"path": "/CI", "case_sensitive": false}, "route": {"cluster": "c"}},
  {"name": "regex", "match": {"safe_regex": {"regex": "/users/[0-9]+"}}, "route": {"cluster": "c"}},
  {"name": "sep", "match": {"path_separated_prefix": "/sep"}, "route": {"cluster": "c"}},
  {"name": "hdr_exact", "match": {"prefix": "/h", "headers": [{"name": "x-a", "string_match": {"exact": "1"}}]},
   "route": {"cluster": "c"}},
  {"name": "hdr_present_inv", "match": {"prefix": "/h", "headers": [{"name": "x-b", "present_match": true,
   "invert_match": true}]}, "route": {"cluster": "c"}},
  {"name": "hdr_regex", "match": {"prefix": "/h", "headers": [{"name": "x-b", "string_match":
   {"safe_regex": {"regex": "v[0-9]"}}}]}, "route": {"cluster": "c"}},
  {"name": "method", "match": {"prefix": "/m", "headers": [{"name": ":method", "string_match": {"exact": "POST"}}]},
   "route": {"cluster": "c"}},
  {"name": "query", "match": {"prefix": "/q", "query_parameters": [{"name": "debug", "string_match":
   {"exact": "1"}}]}, "route": {"cluster": "c"}},
  {"name": "query_present", "match": {"prefix": "/q", "query_parameters": [{"name": "trace",
   "present_match": true}]}, "route": {"cluster": "c"}},
  {"name": "catch_all", "match": {"prefix": "/"}, "route": {"cluster": "c"}}
]}]""")
ROUTES_ROUTER = router(ROUTES)


@pytest.mark.parametrize("method,path,headers,expected", [
    ("GET", "/exact", {}, "exact"),
    ("GET", "/exact?x=1", {}, "exact"),        # path match ignores the query
    ("GET", "/exact/more", {}, "catch_all"),
    ("GET", "/ci", {}, "ci"),
    ("GET", "/users/42", {}, "regex"),
    ("GET", "/users/42x", {}, "catch_all"),    # safe_regex must match the whole path
    ("GET", "/sep", {}, "sep"),
    ("GET", "/sep/x", {}, "sep"),
    ("GET", "/separate", {}, "catch_all"),
    ("GET", "/h", {"x-a": "1"}, "hdr_exact"),
    ("GET", "/h", {"X-A": "1", "x-b": "z"}, "hdr_exact"),
    ("GET", "/h", {}, "hdr_present_inv"),      # x-b absent
    ("GET", "/h", {"x-b": "v7"}, "hdr_regex"),
    ("GET", "/h", {"x-b": "w7"}, "catch_all"),
    ("POST", "/m", {}, "method"),
    ("GET", "/m", {}, "catch_all"),
    ("GET", "/q?debug=1", {}, "query"),
    ("GET", "/q?a=b&debug=1", {}, "query"),
    ("GET", "/q?debug=2", {}, "catch_all"),
    ("GET", "/q?trace", {}, "query_present"),
    ("GET", "/q", {}, "catch_all"),
])
def test_route_match(method, path, headers, expected):
    assert ROUTES_ROUTER.match(method, "any", path, headers).route.name == expected


def test_no_route():
    lis = listener('[{"name": "v", "domains": ["*"], "routes": [{"match": {"path": "/only"}, '
                   '"route": {"cluster": "c"}}]}]')
    assert router(lis).match("GET", "x", "/other") is None
