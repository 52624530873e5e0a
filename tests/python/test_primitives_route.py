"""meshcore.route.Router: the proxy's router as a library.

The same RouteConfiguration is applied to a real Engine (one worker, one
real Backend per cluster) and compiled into a Router; the same requests go
through both and every decision must agree: the route's cluster (including
the order of a 90/10 weighted split, which both choose by smooth weighted
round robin), direct responses, redirects, 404s.
"""
import pytest
from support import http as h

from meshcore.errors import ConfigError, RouteConfigError
from meshcore.route import Route, Router

CLUSTERS = ["api", "canary", "stable", "beta", "static"]


def route_config():
    return {"name": "rc", "virtual_hosts": [
        h.vhost("api", ["api.example.com", "*.api.example.com"], [
            h.route("/v1/", "api", name="v1"),
            h.route(None, name="beta-header", match={"prefix": "/", "headers": [
                {"name": "x-beta", "string_match": {"exact": "1"}}]}, route={"cluster": "beta"}),
            h.route("/", name="split", route={"weighted_clusters": {"clusters": [
                {"name": "stable", "weight": 90}, {"name": "canary", "weight": 10}]}}),
        ]),
        h.vhost("www", ["www.example.com"], [
            h.route(None, name="teapot", match={"path": "/tea"},
                    direct_response={"status": 418, "body": {"inline_string": "short and stout"}}),
            h.route(None, name="moved", match={"prefix": "/old"},
                    redirect={"host_redirect": "new.example.com", "response_code": "PERMANENT_REDIRECT"}),
            h.route(None, name="post-only", match={"prefix": "/submit", "headers": [
                {"name": ":method", "string_match": {"exact": "POST"}}]}, route={"cluster": "api"}),
            h.route(None, name="regex", match={"safe_regex": {"regex": "/static/[a-z]+\\.css"}},
                    route={"cluster": "static"}),
            h.route(None, name="query", match={"prefix": "/q", "query_parameters": [
                {"name": "debug", "string_match": {"exact": "1"}}]}, route={"cluster": "beta"}),
        ]),
    ]}


# (method, authority, path, headers)
REQUESTS = [
    ("GET", "api.example.com", "/v1/users", {}),
    ("GET", "x.api.example.com", "/v1/", {}),
    ("GET", "api.example.com", "/home", {"x-beta": "1"}),
    ("GET", "www.example.com", "/tea", {}),
    ("GET", "www.example.com", "/old/page", {}),
    ("POST", "www.example.com", "/submit", {}),
    ("GET", "www.example.com", "/submit", {}),
    ("GET", "www.example.com", "/static/site.css", {}),
    ("GET", "www.example.com", "/static/site.css.map", {}),
    ("GET", "www.example.com", "/q?a=2&debug=1", {}),
    ("GET", "www.example.com", "/q?debug=2", {}),
    ("GET", "nobody.example.org", "/", {}),
] + [("GET", "api.example.com", f"/item/{i}", {}) for i in range(30)]  # the 90/10 split, in order


def expected_answer(router, method, authority, path, headers):
    """What the proxy should answer, from the Router's decision."""
    m = router.match(method, authority, path, headers)
    if m is None:
        return 404, None
    r = m.route
    if r.action == "direct_response":
        return r.direct_status, r.direct_body
    if r.action == "redirect":
        return r.redirect_code, None
    return 200, m.cluster


def test_decisions_equal_the_proxys(engine_factory, backend_factory):
    backends = {name: backend_factory(name) for name in CLUSTERS}
    config = h.bootstrap([h.hcm_listener("http", route_config()["virtual_hosts"])],
                         [h.http_cluster(name, [b.port]) for name, b in backends.items()])
    engine = engine_factory(concurrency=1, config=config)  # one worker: one split state, as one Router
    port = engine.listener_port("http")
    router = Router(route_config())
    got, want = [], []
    for method, authority, path, headers in REQUESTS:
        resp = h.request(port, method, path, host=authority, headers=list(headers.items()),
                         body=b"" if method == "POST" else None)
        status, what = expected_answer(router, method, authority, path, headers)
        want.append((status, what))
        if resp.status == 200:
            got.append((200, resp.header("x-backend")))
        elif resp.status == 418:
            got.append((418, resp.body))
        else:
            got.append((resp.status, None))
    assert got == want
    split = [c for (s, c), rq in zip(got, REQUESTS, strict=True) if rq[2].startswith("/item/")]
    assert split.count("stable") == 27 and split.count("canary") == 3  # 90/10, exact over 30


def test_route_descriptions():
    router = Router(route_config())
    by_name = {r.name: r for r in router.routes}
    assert isinstance(by_name["split"], Route)
    assert by_name["split"].clusters == (("stable", 90), ("canary", 10))
    assert by_name["v1"].clusters == (("api", 1),) and by_name["v1"].virtual_host == "api"
    assert (by_name["teapot"].action, by_name["teapot"].direct_status) == ("direct_response", 418)
    moved = by_name["moved"]
    assert (moved.action, moved.redirect_host, moved.redirect_code) == ("redirect", "new.example.com", 308)
    m = router.match("GET", "www.example.com", "/old/x")
    assert m.cluster is None and m.route is moved


def test_given_hash_picks_by_cumulative_weight():
    router = Router(route_config())
    pick = [router.match("GET", "api.example.com", "/x", hash=k).cluster for k in (0, 89, 90, 99, 100, 189, 190)]
    assert pick == ["stable", "stable", "canary", "canary", "stable", "stable", "canary"]


def test_bytes_and_header_pairs():
    router = Router(route_config())
    assert router.match(b"GET", b"API.example.com", b"/", [(b"X-Beta", b"1")]).route.name == "beta-header"
    many = [(f"x-h{i}", "v") for i in range(40)] + [("x-beta", "1")]  # more than the initial header slots
    assert router.match("GET", "api.example.com", "/", many).route.name == "beta-header"


def test_message_and_dict_build_the_same_router():
    from envoy.config.route.v3 import route_pb2
    from google.protobuf import json_format

    msg = json_format.ParseDict(route_config(), route_pb2.RouteConfiguration())
    a, b = Router(msg), Router(route_config())
    assert [r.name for r in a.routes] == [r.name for r in b.routes]


@pytest.mark.parametrize(("config", "words"), [
    ({"virtual_hosts": [{"name": "v", "domains": ["*"], "routes": [
        {"match": {"prefix": "/"}, "route": {"cluster": "c"}, "tracing": {}}]}]},
     'virtual_hosts[0].routes[0]: unsupported field "tracing"'),
    ({"name": "bad", "virtual_hosts": [{"name": "v", "domainz": ["*"]}]}, 'route configuration "bad"'),
    ({"virtual_hosts": [{"name": "v", "domains": ["*"], "routes": [
        {"match": {"safe_regex": {"regex": "("}}, "route": {"cluster": "c"}}]}]}, "regex"),
    ("not a config", "a message or a dict"),
])
def test_bad_configs_name_the_field(config, words):
    with pytest.raises(RouteConfigError) as e:
        Router(config)
    assert words in str(e.value)
    assert isinstance(e.value, ConfigError)
