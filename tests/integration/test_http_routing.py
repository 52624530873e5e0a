"""Routing end to end: virtual hosts, route matchers, local answers (no route,
direct_response, redirects), rewrites and header manipulation.

One Backend serves every route; each virtual host and route tags the request
with a header (x-vhost, x-route) through request_headers_to_add, and the
Backend reflects those tags in its response, so a test reads which virtual
host and route the proxy picked from the client's response and checks what
the upstream received from the Backend's log.
"""
import base64

import pytest
from support import http as h


def add(key, value, action=None):
    opt = {"header": {"key": key, "value": value}}
    if action:
        opt["append_action"] = action
    return opt


def tagged(name, match, **kw):
    """A route to cluster "backend" that tags its requests x-route: name."""
    kw.setdefault("request_headers_to_add", [])
    kw["request_headers_to_add"] = kw["request_headers_to_add"] + [add("x-route", name)]
    return h.route(match=match, cluster="backend", **kw)


def tag_vhost(name, domains, routes=None, **kw):
    routes = routes or [h.route("/", "backend")]
    return h.vhost(name, domains, routes, request_headers_to_add=[add("x-vhost", name)], **kw)


def reflect(req):
    return h.Reply(200, [("x-vhost", req.header("x-vhost") or "-"), ("x-route", req.header("x-route") or "-"),
                         ("x-path", req.target), ("x-host", req.header("host") or "-")], req.body or b"")


@pytest.fixture
def routed(engine_factory, backend_factory):
    """make(virtual_hosts, **hcm) -> (engine, port, backend)."""
    def make(virtual_hosts, **hcm):
        backend = backend_factory("routes", reflect)
        doc = h.bootstrap([h.hcm_listener("http", virtual_hosts, **hcm)], [h.http_cluster("backend", [backend.port])])
        engine = engine_factory(config=doc)
        return engine, engine.listener_port("http"), backend
    return make


# ---- virtual hosts ------------------------------------------------------------------------------

VHOSTS = [
    tag_vhost("exact", ["api.example.com"]),
    tag_vhost("suffix", ["*.example.com"]),
    tag_vhost("suffix-longer", ["*.eu.example.com"]),
    tag_vhost("suffix-dash", ["*-canary.example.org"]),
    tag_vhost("prefix", ["shop.*"]),
    tag_vhost("fallback", ["*"]),
]


@pytest.mark.parametrize(("host", "vhost"), [
    ("api.example.com", "exact"),
    ("API.Example.COM", "exact"),
    ("www.example.com", "suffix"),
    ("a.b.example.com", "suffix"),
    ("x.eu.example.com", "suffix-longer"),
    ("api-canary.example.org", "suffix-dash"),
    ("shop.local", "prefix"),
    ("example.com", "fallback"),
    (".example.com", "fallback"),
    ("other.net", "fallback"),
])
def test_virtual_host_by_host_header(routed, host, vhost):
    _, port, _ = routed(VHOSTS)
    resp = h.request(port, "GET", "/", host=host)
    assert resp.status == 200 and resp.header("x-vhost") == vhost


def test_absolute_form_target_authority_picks_the_virtual_host(routed):
    _, port, backend = routed(VHOSTS)
    resp = h.request(port, "GET", "http://api.example.com/p?q=1", host="other.net")
    assert resp.header("x-vhost") == "exact"
    (req,) = backend.requests
    assert req.target == "/p?q=1", "origin-form upstream"
    assert req.header("host") == "api.example.com"


def test_no_matching_virtual_host_is_404_no_route(routed):
    engine, port, backend = routed([tag_vhost("only", ["only.test"])])
    resp = h.request(port, "GET", "/", host="elsewhere.test")
    assert resp.status == 404
    h.wait_stat(engine, "http.http.response_flag_NR", 1)
    assert h.stat(engine, "http.http.no_route") == 1
    assert backend.accepted == 0


# ---- route matching ---------------------------------------------------------------------------------

ROUTES = [
    tagged("exact-path", {"path": "/exact"}),
    tagged("regex-path", {"safe_regex": {"regex": "/regex/[0-9]+"}}),
    tagged("case-insensitive", {"prefix": "/CI/", "case_sensitive": False}),
    tagged("h-exact", {"prefix": "/h", "headers": [{"name": "x-exact", "string_match": {"exact": "yes"}}]}),
    tagged("h-prefix", {"prefix": "/h", "headers": [{"name": "x-pre", "string_match": {"prefix": "abc"}}]}),
    tagged("h-suffix", {"prefix": "/h", "headers": [{"name": "x-suf", "string_match": {"suffix": "xyz"}}]}),
    tagged("h-regex", {"prefix": "/h", "headers": [{"name": "x-re",
                                                     "string_match": {"safe_regex": {"regex": "v[0-9]+"}}}]}),
    tagged("h-present", {"prefix": "/h", "headers": [{"name": "x-present", "present_match": True}]}),
    tagged("h-invert", {"prefix": "/h", "headers": [{"name": "x-inv", "string_match": {"exact": "no"},
                                                     "invert_match": True}]}),
    tagged("h-two", {"prefix": "/both", "headers": [{"name": "x-a", "string_match": {"exact": "1"}},
                                                    {"name": "x-b", "string_match": {"exact": "2"}}]}),
    tagged("q-exact", {"prefix": "/q", "query_parameters": [{"name": "debug", "string_match": {"exact": "1"}}]}),
    tagged("q-present", {"prefix": "/q", "query_parameters": [{"name": "trace", "present_match": True}]}),
    tagged("m-post", {"prefix": "/m", "headers": [{"name": ":method", "string_match": {"exact": "POST"}}]}),
    tagged("m-other", {"prefix": "/m"}),
    tagged("prefix-deep", {"prefix": "/p/deep"}),
    tagged("prefix", {"prefix": "/p"}),
]


@pytest.mark.parametrize(("method", "path", "headers", "route"), [
    ("GET", "/exact", [], "exact-path"),
    ("GET", "/exact?x=1", [], "exact-path"),
    ("GET", "/regex/123", [], "regex-path"),
    ("GET", "/regex/1?q=2", [], "regex-path"),
    ("GET", "/ci/Thing", [], "case-insensitive"),
    ("GET", "/h", [("x-exact", "yes")], "h-exact"),
    ("GET", "/h", [("x-pre", "abcdef")], "h-prefix"),
    ("GET", "/h", [("x-suf", "uvwxyz")], "h-suffix"),
    ("GET", "/h", [("x-re", "v42")], "h-regex"),
    ("GET", "/h", [("x-present", "")], "h-present"),
    ("GET", "/h", [("x-inv", "yes")], "h-invert"),
    ("GET", "/both", [("x-a", "1"), ("x-b", "2")], "h-two"),
    ("GET", "/q?debug=1", [], "q-exact"),
    ("GET", "/q?a=b&trace", [], "q-present"),
    ("GET", "/q?trace=on&debug=0", [], "q-present"),
    ("POST", "/m", [], "m-post"),
    ("PUT", "/m", [], "m-other"),
    ("GET", "/p/deeper", [], "prefix-deep"),
    ("GET", "/p/shallow", [], "prefix"),
])
def test_route_matchers(routed, method, path, headers, route):
    _, port, _ = routed([h.vhost("all", ["*"], ROUTES)])
    resp = h.request(port, method, path, headers=headers, body=b"" if method in ("POST", "PUT") else None)
    assert resp.status == 200, resp.body
    assert resp.header("x-route") == route


@pytest.mark.parametrize(("path", "headers"), [
    ("/exact/more", []),                        # exact path is not a prefix
    ("/regex/12a", []),                         # the regex must match the whole path
    ("/regexx/1", []),
    ("/h", [("x-exact", "YES")]),               # exact is case sensitive
    ("/h", [("x-pre", "xabc")]),
    ("/h", [("x-suf", "xyzz")]),
    ("/h", [("x-re", "v4x")]),
    ("/h", [("x-inv", "no")]),                  # inverted exact match
    ("/h", []),                                 # inverted match needs the header present
    ("/both", [("x-a", "1")]),                  # every header matcher must match
    ("/q?debug=2", []),
    ("/q?debugx=1", []),
    ("/nowhere", []),
])
def test_no_route_is_404_with_NR(routed, path, headers):
    engine, port, backend = routed([h.vhost("all", ["*"], ROUTES)])
    resp = h.request(port, "GET", path, headers=headers)
    assert resp.status == 404, resp.headers
    h.wait_stat(engine, "http.http.response_flag_NR", 1)
    st = engine.stats()
    assert st["http.http.no_route"] == 1 and st["http.http.downstream_rq_4xx"] == 1
    assert backend.accepted == 0


# ---- local answers ------------------------------------------------------------------------------------


def test_direct_response(routed):
    engine, port, backend = routed([h.vhost("all", ["*"], [
        h.route("/healthz", direct_response={"status": 200, "body": {"inline_string": "ok\n"}}),
        h.route("/teapot", direct_response={"status": 418}),
        h.route("/", "backend"),
    ])])
    with h.Conn(port) as c:
        ok = c.request("GET", "/healthz")
        assert (ok.status, ok.body) == (200, b"ok\n")
        tea = c.request("GET", "/teapot")
        assert (tea.status, tea.body) == (418, b"")
        assert c.request("GET", "/other").status == 200  # same connection, still usable
    h.wait_stat(engine, "http.http.rq_direct_response", 2)
    assert backend.count() == 1


@pytest.mark.parametrize(("redirect", "path", "status", "location"), [
    ({"path_redirect": "/new"}, "/r/x?a=1", 301, "http://redirects.test/new?a=1"),
    ({"host_redirect": "elsewhere.test", "response_code": "FOUND"}, "/r/x", 302, "http://elsewhere.test/r/x"),
    ({"https_redirect": True}, "/r/secure?q=1", 301, "https://redirects.test/r/secure?q=1"),
    ({"scheme_redirect": "https", "port_redirect": 8443}, "/r/p", 301, "https://redirects.test:8443/r/p"),
    ({"prefix_rewrite": "/moved/"}, "/r/page?q=1", 301, "http://redirects.test/moved/page?q=1"),
    ({"path_redirect": "/stripped", "strip_query": True}, "/r/x?secret=1", 301, "http://redirects.test/stripped"),
    ({"response_code": "TEMPORARY_REDIRECT", "host_redirect": "t.test"}, "/r/t", 307, "http://t.test/r/t"),
    ({"response_code": "PERMANENT_REDIRECT", "path_redirect": "/p"}, "/r/z", 308, "http://redirects.test/p"),
])
def test_redirect(routed, redirect, path, status, location):
    engine, port, backend = routed([h.vhost("redirects", ["redirects.test"], [h.route("/r/", redirect=redirect)])])
    resp = h.request(port, "GET", path, host="redirects.test")
    assert resp.status == status
    assert resp.header("location") == location
    h.wait_stat(engine, "http.http.rq_redirect", 1)
    assert backend.accepted == 0


@pytest.mark.parametrize(("redirect", "host", "path", "location"), [
    ({"https_redirect": True}, "redirects.test:80", "/r/x", "https://redirects.test/r/x"),
    ({"path_redirect": "/new?v=2"}, "redirects.test", "/r/x?a=1", "http://redirects.test/new?v=2"),
], ids=["https-drops-port-80", "path-redirect-query-wins"])
def test_redirect_edge_cases(routed, redirect, host, path, location):
    _, port, _ = routed([h.vhost("redirects", ["redirects.test"], [h.route("/r/", redirect=redirect)])])
    resp = h.request(port, "GET", path, host=host)
    assert resp.header("location") == location


# ---- rewrites ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("action", "path", "upstream_path"), [
    ({"prefix_rewrite": "/v2/"}, "/api/users?id=7", "/v2/users?id=7"),
    ({"prefix_rewrite": "/"}, "/api/x/y", "/x/y"),
    ({"regex_rewrite": {"pattern": {"regex": "^/api/([^/]+)(/.*)$"}, "substitution": "\\2/instance/\\1"}},
     "/api/foo/v1/list?x=1", "/v1/list/instance/foo?x=1"),
    ({"regex_rewrite": {"pattern": {"regex": "o"}, "substitution": "0"}}, "/api/foo/boo", "/api/f00/b00"),
])
def test_path_rewrite_is_what_the_upstream_sees(routed, action, path, upstream_path):
    _, port, backend = routed([h.vhost("all", ["*"], [h.route("/api/", "backend", route=action)])])
    assert h.request(port, "GET", path).status == 200
    assert backend.requests[0].target == upstream_path


def test_host_rewrite_literal_is_what_the_upstream_sees(routed):
    _, port, backend = routed([h.vhost("all", ["*"], [
        h.route("/", "backend", route={"host_rewrite_literal": "rewritten.internal"})])])
    assert h.request(port, "GET", "/", host="public.example").status == 200
    (req,) = backend.requests
    assert req.headers_named("host") == ["rewritten.internal"]


# ---- header manipulation -----------------------------------------------------------------------------

ADD = "APPEND_IF_EXISTS_OR_ADD"
OVERWRITE = "OVERWRITE_IF_EXISTS_OR_ADD"
IF_ABSENT = "ADD_IF_ABSENT"


def three_levels(route_kw, vhost_kw, config_kw):
    return [h.vhost("all", ["*"], [h.route("/", "backend", **route_kw)], **vhost_kw)], {"route_config": config_kw}


def test_request_headers_added_and_removed_at_three_levels(routed):
    vhosts, hcm = three_levels(
        {"request_headers_to_add": [add("x-at-route", "r"), add("x-over", "route", OVERWRITE),
                                    add("x-app", "route", ADD), add("x-absent", "route", IF_ABSENT),
                                    add("x-present", "route", IF_ABSENT)],
         "request_headers_to_remove": ["x-drop-route"]},
        {"request_headers_to_add": [add("x-at-vhost", "v")], "request_headers_to_remove": ["x-drop-vhost"]},
        {"request_headers_to_add": [add("x-at-config", "c")], "request_headers_to_remove": ["x-drop-config"]})
    _, port, backend = routed(vhosts, **hcm)
    assert h.request(port, "GET", "/", headers=[
        ("x-over", "client"), ("x-app", "client"), ("x-present", "client"), ("x-drop-route", "1"),
        ("x-drop-vhost", "1"), ("x-drop-config", "1"), ("x-keep", "1")]).status == 200
    (req,) = backend.requests
    assert req.headers_named("x-at-route") == ["r"]
    assert req.headers_named("x-at-vhost") == ["v"]
    assert req.headers_named("x-at-config") == ["c"]
    assert req.headers_named("x-over") == ["route"]
    assert ",".join(req.headers_named("x-app")).replace(" ", "") == "client,route"
    assert req.headers_named("x-absent") == ["route"]
    assert req.headers_named("x-present") == ["client"]
    for gone in ("x-drop-route", "x-drop-vhost", "x-drop-config"):
        assert not req.has(gone)
    assert req.headers_named("x-keep") == ["1"]


def test_overwrite_at_two_levels_route_config_wins(routed):
    """Envoy applies route, then virtual host, then route configuration
    (most_specific_header_mutations_wins: false): the last overwrite wins."""
    vhosts, hcm = three_levels({"request_headers_to_add": [add("x-prec", "route", OVERWRITE)]},
                               {"request_headers_to_add": [add("x-prec", "vhost", OVERWRITE)]},
                               {"request_headers_to_add": [add("x-prec", "config", OVERWRITE)]})
    _, port, backend = routed(vhosts, **hcm)
    assert h.request(port, "GET", "/", headers=[("x-prec", "client")]).status == 200
    assert backend.requests[0].headers_named("x-prec") == ["config"]


@pytest.mark.parametrize(("route_op", "config_kw", "expected"), [
    (add("x-mix", "route", ADD), {"request_headers_to_add": [add("x-mix", "config", OVERWRITE)]}, ["config"]),
    (add("x-mix", "route", ADD), {"request_headers_to_remove": ["x-mix"]}, []),
    (add("x-mix", "route", ADD), {"request_headers_to_add": [add("x-mix", "config", IF_ABSENT)]}, ["route"]),
], ids=["append-then-overwrite", "add-then-remove", "add-then-add-if-absent"])
def test_later_level_sees_what_an_earlier_level_added(routed, route_op, config_kw, expected):
    vhosts, hcm = three_levels({"request_headers_to_add": [route_op]}, {}, config_kw)
    _, port, backend = routed(vhosts, **hcm)
    assert h.request(port, "GET", "/").status == 200
    assert backend.requests[0].headers_named("x-mix") == expected


def test_response_headers_added_and_removed_at_three_levels(engine_factory, backend_factory):
    backend = backend_factory("resp", lambda req: h.Reply(200, [
        ("x-resp-over", "backend"), ("x-resp-app", "backend"), ("x-drop-route", "1"), ("x-drop-vhost", "1"),
        ("x-drop-config", "1"), ("x-keep", "1")], b"body"))
    vhosts, hcm = three_levels(
        {"response_headers_to_add": [add("x-resp-over", "route", OVERWRITE), add("x-resp-app", "route", ADD),
                                     add("x-r", "r")],
         "response_headers_to_remove": ["x-drop-route"]},
        {"response_headers_to_add": [add("x-v", "v")], "response_headers_to_remove": ["x-drop-vhost"]},
        {"response_headers_to_add": [add("x-c", "c")], "response_headers_to_remove": ["x-drop-config"]})
    doc = h.bootstrap([h.hcm_listener("http", vhosts, **hcm)], [h.http_cluster("backend", [backend.port])])
    engine = engine_factory(config=doc)
    resp = h.request(engine.listener_port("http"), "GET", "/")
    assert resp.status == 200 and resp.body == b"body"
    assert resp.headers_named("x-resp-over") == ["route"]
    assert ",".join(resp.headers_named("x-resp-app")).replace(" ", "") == "backend,route"
    assert (resp.header("x-r"), resp.header("x-v"), resp.header("x-c")) == ("r", "v", "c")
    for gone in ("x-drop-route", "x-drop-vhost", "x-drop-config"):
        assert not resp.has(gone)
    assert resp.header("x-keep") == "1"


@pytest.mark.parametrize("kind", ["direct_response", "redirect"])
def test_response_headers_to_add_apply_to_local_answers(routed, kind):
    action = ({"direct_response": {"status": 200, "body": {"inline_string": "local"}}} if kind == "direct_response"
              else {"redirect": {"path_redirect": "/elsewhere"}})
    _, port, _ = routed([h.vhost("all", ["*"], [h.route("/", response_headers_to_add=[add("x-local", "yes")],
                                                       **action)])])
    resp = h.request(port, "GET", "/")
    assert resp.status in (200, 301)
    assert resp.header("x-local") == "yes"


@pytest.mark.parametrize(("ops", "name", "expected"), [
    ({"request_headers_to_remove": ["x-forwarded-for"]}, "x-forwarded-for", []),
    ({"request_headers_to_remove": ["x-forwarded-proto"]}, "x-forwarded-proto", []),
    ({"request_headers_to_remove": ["x-request-id"]}, "x-request-id", []),
    ({"request_headers_to_add": [add("x-forwarded-for", "10.9.9.9", OVERWRITE)]}, "x-forwarded-for", ["10.9.9.9"]),
], ids=["remove-xff", "remove-xfp", "remove-request-id", "overwrite-xff"])
def test_route_header_operations_apply_to_proxy_set_headers(routed, ops, name, expected):
    _, port, backend = routed([h.vhost("all", ["*"], [h.route("/", "backend", **ops)])])
    assert h.request(port, "GET", "/").status == 200
    assert backend.requests[0].headers_named(name) == expected


def test_repeated_header_is_matched_on_its_joined_values(routed):
    _, port, backend = routed([h.vhost("all", ["*"], ROUTES)])
    resp = h.request(port, "GET", "/h", headers=[("x-exact", "no"), ("x-exact", "yes")])
    assert resp.status == 404, resp.header("x-route")


@pytest.mark.parametrize("size", [100, 700])
def test_direct_response_bodies(routed, size):
    body = "".join(chr(ord("a") + i % 26) for i in range(size))
    _, port, _ = routed([h.vhost("all", ["*"], [
        h.route("/", direct_response={"status": 200, "body": {"inline_string": body}})])])
    resp = h.request(port, "GET", "/")
    assert (resp.status, resp.body) == (200, body.encode())


@pytest.mark.parametrize("size", [1000, 4096])
def test_direct_response_bodies_up_to_the_4_kib_limit(routed, size):
    body = "".join(chr(ord("a") + i % 26) for i in range(size))
    _, port, _ = routed([h.vhost("all", ["*"], [
        h.route("/", direct_response={"status": 200, "body": {"inline_string": body}})])])
    resp = h.request(port, "GET", "/")
    assert (resp.status, resp.body) == (200, body.encode())


def test_direct_response_inline_bytes_with_nul(routed):
    raw = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
    _, port, _ = routed([h.vhost("all", ["*"], [h.route("/", direct_response={
        "status": 200, "body": {"inline_bytes": base64.b64encode(raw).decode()}})])])
    resp = h.request(port, "GET", "/")
    assert (resp.status, resp.body) == (200, raw)


def test_server_name_applies_to_local_replies_too(routed):
    _, port, _ = routed([h.vhost("all", ["*"], [h.route("/up", "backend"), h.route("/redir", redirect={
        "path_redirect": "/up"})])], server_name="edge-proxy")
    assert h.request(port, "GET", "/up").headers_named("server") == ["edge-proxy"]
    assert h.request(port, "GET", "/missing").headers_named("server") == ["edge-proxy"]
    assert h.request(port, "GET", "/redir").headers_named("server") == ["edge-proxy"]
