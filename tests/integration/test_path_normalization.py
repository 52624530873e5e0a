"""Path normalization before RBAC and routing (HCM normalize_path,
merge_slashes, path_with_escaped_slashes_action), end to end.

A DENY rule on the prefix /admin guards the listener. Requests are written
on raw sockets (curl and the stdlib would normalize some paths themselves);
the Backend reports the path it received, which must be the normalized one.
The option sets are Istio's pathNormalization levels (meshconfig.py):
NONE, BASE, MERGE_SLASHES, DECODE_AND_MERGE_SLASHES.
"""
import pytest
from support import http as h
from support.net import wait_until

HTTP_RBAC = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"

LEVELS = {
    "NONE": {"normalize_path": False},
    "BASE": {"normalize_path": True},
    "MERGE_SLASHES": {"normalize_path": True, "merge_slashes": True},
    "DECODE_AND_MERGE_SLASHES": {"normalize_path": True, "merge_slashes": True,
                                 "path_with_escaped_slashes_action": "UNESCAPE_AND_FORWARD"},
}


def deny_admin() -> dict:
    rules = {"action": "DENY", "policies": {"deny-admin": {
        "permissions": [{"url_path": {"path": {"prefix": "/admin"}}}],
        "principals": [{"any": True}]}}}
    return {"name": "envoy.filters.http.rbac", "typed_config": {"@type": HTTP_RBAC, "rules": rules}}


@pytest.fixture
def proxy(engine_factory, backend_factory):
    """make(**hcm) -> (port, backend, engine): a DENY /admin listener."""
    def make(**hcm):
        backend = backend_factory("paths")
        doc = h.bootstrap([h.hcm_listener("http", http_filters=[deny_admin()], **hcm)],
                          [h.http_cluster("backend", [backend.port])])
        engine = engine_factory(config=doc)
        return engine.listener_port("http"), backend, engine
    return make


# (path as sent, {level: path the upstream gets, or 403 when the DENY rule caught it})
CASES = [
    ("/x/../admin", {"NONE": "/x/../admin", "BASE": 403, "MERGE_SLASHES": 403, "DECODE_AND_MERGE_SLASHES": 403}),
    ("//admin", {"NONE": "//admin", "BASE": "//admin", "MERGE_SLASHES": 403, "DECODE_AND_MERGE_SLASHES": 403}),
    ("/%61dmin", {"NONE": "/%61dmin", "BASE": 403, "MERGE_SLASHES": 403, "DECODE_AND_MERGE_SLASHES": 403}),
    ("/./admin/x", {"NONE": "/./admin/x", "BASE": 403, "MERGE_SLASHES": 403, "DECODE_AND_MERGE_SLASHES": 403}),
    ("/x\\..\\admin", {"NONE": "/x\\..\\admin", "BASE": 403, "MERGE_SLASHES": 403,
                       "DECODE_AND_MERGE_SLASHES": 403}),
    ("/x%2F..%2Fadmin", {"NONE": "/x%2F..%2Fadmin", "BASE": "/x%2F..%2Fadmin", "MERGE_SLASHES": "/x%2F..%2Fadmin",
                         "DECODE_AND_MERGE_SLASHES": 403}),
    # Istio's normalization table (istio.io, "Authorization Policy Normalization")
    ("/some%2fdata/%61%62%63", {"NONE": "/some%2fdata/%61%62%63", "BASE": "/some%2fdata/abc",
                                "MERGE_SLASHES": "/some%2fdata/abc", "DECODE_AND_MERGE_SLASHES": "/some/data/abc"}),
    ("/some\\data", {"NONE": "/some\\data", "BASE": "/some/data", "MERGE_SLASHES": "/some/data",
                     "DECODE_AND_MERGE_SLASHES": "/some/data"}),
    ("/some//data///abc", {"NONE": "/some//data///abc", "BASE": "/some//data///abc",
                           "MERGE_SLASHES": "/some/data/abc", "DECODE_AND_MERGE_SLASHES": "/some/data/abc"}),
    ("/public/./data/abc/../xyz", {"NONE": "/public/./data/abc/../xyz", "BASE": "/public/data/xyz",
                                   "MERGE_SLASHES": "/public/data/xyz",
                                   "DECODE_AND_MERGE_SLASHES": "/public/data/xyz"}),
    ("/%2d%5f%7e%30?v=1", {"NONE": "/%2d%5f%7e%30?v=1", "BASE": "/-_~0?v=1", "MERGE_SLASHES": "/-_~0?v=1",
                           "DECODE_AND_MERGE_SLASHES": "/-_~0?v=1"}),
    ("/a/../b?q=/../admin", {"NONE": "/a/../b?q=/../admin", "BASE": "/b?q=/../admin",
                             "MERGE_SLASHES": "/b?q=/../admin", "DECODE_AND_MERGE_SLASHES": "/b?q=/../admin"}),
    ("/ok", {"NONE": "/ok", "BASE": "/ok", "MERGE_SLASHES": "/ok", "DECODE_AND_MERGE_SLASHES": "/ok"}),
]


@pytest.mark.parametrize("level", list(LEVELS))
def test_levels_deny_and_forward_the_normalized_path(proxy, level):
    port, backend, _ = proxy(**LEVELS[level])
    with h.Conn(port) as c:
        for path, want in CASES:
            r = c.request("GET", path)
            expected = want[level]
            if expected == 403:
                assert r.status == 403, (path, r.status, r.header("x-path"))
            else:
                assert r.status == 200, (path, r.status)
                assert r.header("x-path") == expected, path
    # the upstream got exactly the forwarded paths
    forwarded = [w[level] for _, w in CASES if w[level] != 403]
    assert [q.target for q in backend.requests] == forwarded


def test_nul_escape_is_refused(proxy):
    port, backend, engine = proxy(normalize_path=True)
    r = h.request(port, "GET", "/a%00b")
    assert r.status == 400
    assert backend.count() == 0
    h.wait_stat(engine, "http.http.downstream_rq_failed_path_normalization", 1)


def test_reject_request_on_escaped_slashes(proxy):
    port, backend, engine = proxy(path_with_escaped_slashes_action="REJECT_REQUEST")
    for path in ("/a%2Fb", "/a%2fb", "/a%5Cb", "/admin%5c"):
        assert h.request(port, "GET", path).status == 400, path
    assert h.request(port, "GET", "/a/b%20").status == 200
    assert backend.count() == 1
    h.wait_stat(engine, "http.http.downstream_rq_failed_path_normalization", 4)


def test_unescape_and_redirect(proxy):
    port, backend, engine = proxy(normalize_path=True, path_with_escaped_slashes_action="UNESCAPE_AND_REDIRECT")
    r = h.request(port, "GET", "/a%2Fb/%2e%2e/c?x=1")
    assert r.status == 307
    assert r.header("location") == "/a/c?x=1"
    r = h.request(port, "GET", "/d%2fe")
    assert r.status == 307 and r.header("location") == "/d/e"
    assert backend.count() == 0
    assert h.request(port, "GET", "/a/c?x=1").status == 200
    h.wait_stat(engine, "http.http.downstream_rq_redirected_with_normalized_path", 2)


def test_keep_unchanged_forwards_escaped_slashes(proxy):
    port, backend, _ = proxy(normalize_path=True, path_with_escaped_slashes_action="KEEP_UNCHANGED")
    r = h.request(port, "GET", "/a%2Fb/../c")
    assert r.status == 200 and r.header("x-path") == "/c"


def test_long_paths_and_queries_are_normalized(proxy):
    """Normalization is done in place in the request target's own bytes: no
    length limit but the parser's (8 KiB of target); the query moves up
    behind the shortened path and is forwarded untouched."""
    port, backend, _ = proxy(normalize_path=True, merge_slashes=True)
    query = "q=" + "/../x%2e" * 400
    path = "//" + "a/./" * 700 + "b"
    r = h.request(port, "GET", f"{path}?{query}")
    assert r.status == 200
    assert r.header("x-path") == "/" + "a/" * 700 + "b?" + query
    clean = "/" + "c" * 7000
    r = h.request(port, "GET", clean)
    assert r.status == 200 and r.header("x-path") == clean


def test_routing_sees_the_normalized_path(engine_factory, backend_factory):
    admin = backend_factory("admin")
    other = backend_factory("other")
    routes = [h.route("/admin", "admin"), h.route("/", "other")]
    doc = h.bootstrap([h.hcm_listener("http", routes=routes, normalize_path=True, merge_slashes=True)],
                      [h.http_cluster("admin", [admin.port]), h.http_cluster("other", [other.port])])
    engine = engine_factory(config=doc)
    port = engine.listener_port("http")
    for path in ("/x/../admin/a", "//admin/a", "/%61dmin/a"):
        r = h.request(port, "GET", path)
        assert r.status == 200 and r.header("x-backend") == "admin", path
        assert r.header("x-path") == "/admin/a"


def test_access_log_records_the_normalized_path(proxy, tmp_path):
    """%REQ(:PATH)% is the path after normalization (as Envoy's, whose
    normalization rewrites the :path header)."""
    log = tmp_path / "paths.log"
    access_log = [{"name": "envoy.access_loggers.file", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog", "path": str(log),
        "log_format": {"text_format_source": {"inline_string": "%RESPONSE_CODE% %REQ(:PATH)%\n"}}}}]
    port, _, engine = proxy(normalize_path=True, merge_slashes=True, access_log=access_log)
    assert h.request(port, "GET", "/a/./b//c?x=/../y").status == 200
    assert h.request(port, "GET", "/x/../admin").status == 403

    def lines():
        engine.flush_access_logs()
        return log.read_text().splitlines() if log.exists() else []
    wait_until(lambda: len(lines()) >= 2, what="2 access log records")
    assert lines() == ["200 /a/b/c?x=/../y", "403 /admin"]
