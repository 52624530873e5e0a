"""The overload manager's resource monitors and actions in a real `meshcore
proxy` (docs/hardening.md): Envoy's injected_resource monitor drives the
pressure from a file so each action is tested deterministically; fixed_heap
is checked against the heap it measures."""
import os
import socket

from support import config as cfg
from support.http import Conn, hcm_listener, http_cluster, route
from support.net import wait_until

INJECTED = "envoy.resource_monitors.injected_resource"
INJECTED_TYPE = ("type.googleapis.com/envoy.extensions.resource_monitors."
                 "injected_resource.v3.InjectedResourceConfig")
HEAP = "envoy.resource_monitors.fixed_heap"
HEAP_TYPE = "type.googleapis.com/envoy.extensions.resource_monitors.fixed_heap.v3.FixedHeapConfig"
STOP_REQUESTS = "envoy.overload_actions.stop_accepting_requests"
NO_KEEPALIVE = "envoy.overload_actions.disable_http_keepalive"
STOP_CONNECTIONS = "envoy.overload_actions.stop_accepting_connections"


def _threshold(action, monitor, value):
    return {"name": action, "triggers": [{"name": monitor, "threshold": {"value": value}}]}


def _doc(backend_port, monitor, actions):
    doc = cfg.bootstrap([hcm_listener("http", routes=[route("/", "backend")], stat_prefix="in", codec_type="AUTO")],
                        [http_cluster("backend", [backend_port])])
    doc["overload_manager"] = {"refresh_interval": "0.05s", "resource_monitors": [monitor], "actions": actions}
    return doc


def _injected(path):
    return {"name": INJECTED, "typed_config": {"@type": INJECTED_TYPE, "filename": str(path)}}


def _set_pressure(path, value):
    """Atomically, as Envoy asks of the file (a rename)."""
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(f"{value}\n")
    os.replace(tmp, path)


def _status(port):
    with Conn(port) as c:
        return c.request("GET", "/x").status


def test_stop_accepting_requests_answers_503_ol_while_pressure_is_high(proxy_factory, backend_factory, tmp_path):
    backend = backend_factory()
    pressure = tmp_path / "pressure"
    _set_pressure(pressure, 0)
    proxy = proxy_factory(_doc(backend.port, _injected(pressure), [_threshold(STOP_REQUESTS, INJECTED, 0.9)]))
    port = proxy.listener_port("http")
    assert _status(port) == 200
    _set_pressure(pressure, 0.95)
    wait_until(lambda: _status(port) == 503, 10, what="requests refused under pressure")
    accepted = backend.accepted
    with Conn(port) as c:
        r = c.request("GET", "/refused")
        assert (r.status, r.body) == (503, b"envoy overloaded")
    assert backend.accepted == accepted  # never forwarded
    st = proxy.stats()
    assert st[f"overload.{INJECTED}.pressure"] == 95
    assert st[f"overload.{STOP_REQUESTS}.active"] == 1
    assert st[f"overload.{STOP_REQUESTS}.scale_percent"] == 100
    assert st["http.in.downstream_rq_overload_close"] >= 2
    assert st["http.in.response_flag_OL"] == st["http.in.downstream_rq_overload_close"]
    status, prom = proxy.get("/stats/prometheus")
    assert status == 200
    assert "envoy_overload_envoy_resource_monitors_injected_resource_pressure 95.0" in prom
    assert "envoy_overload_envoy_overload_actions_stop_accepting_requests_active 1.0" in prom
    assert 'envoy_http_downstream_rq_overload_close_total{envoy_http_conn_manager_prefix="in"}' in prom

    _set_pressure(pressure, 0.2)
    wait_until(lambda: _status(port) == 200, 10, what="service resumed once the pressure dropped")
    assert proxy.stat(f"overload.{STOP_REQUESTS}.active") == 0

    _set_pressure(pressure, "not a number")  # a failed update keeps the last good pressure
    wait_until(lambda: proxy.stat(f"overload.{INJECTED}.failed_updates") > 0, 10, what="a failed update")
    assert proxy.stat(f"overload.{INJECTED}.pressure") == 20
    assert _status(port) == 200


def test_disable_http_keepalive_closes_after_the_response(proxy_factory, backend_factory, tmp_path):
    backend = backend_factory()
    pressure = tmp_path / "pressure"
    _set_pressure(pressure, 0)
    scaled = {"name": NO_KEEPALIVE, "triggers": [
        {"name": INJECTED, "scaled": {"scaling_threshold": 0.5, "saturation_threshold": 0.8}}]}
    proxy = proxy_factory(_doc(backend.port, _injected(pressure), [scaled]))
    port = proxy.listener_port("http")
    with Conn(port) as c:
        r = c.request("GET", "/a")
        assert r.status == 200 and r.header("connection") is None
        assert c.request("GET", "/b").status == 200  # kept alive
    _set_pressure(pressure, 0.65)  # scaling, not saturated: keep-alive stays
    wait_until(lambda: proxy.stat(f"overload.{NO_KEEPALIVE}.scale_percent") == 50, 10, what="half way")
    assert proxy.stat(f"overload.{NO_KEEPALIVE}.active") == 0
    with Conn(port) as c:
        assert c.request("GET", "/c").header("connection") is None
    _set_pressure(pressure, 0.9)
    wait_until(lambda: proxy.stat(f"overload.{NO_KEEPALIVE}.active") == 1, 10, what="saturated")
    with Conn(port) as c:
        r = c.request("GET", "/d")
        assert r.status == 200 and r.header("connection") == "close"
        c.sock.settimeout(10)
        assert c.sock.recv(1) == b""  # and the proxy closes
    assert proxy.stat("http.in.downstream_cx_overload_disable_keepalive") == 1


def _h2_exchange(port, n_requests):
    """n requests on one h2c connection (prior knowledge, the h2 package):
    ([status per request], whether a GOAWAY came)."""
    import h2.config
    import h2.connection
    import h2.events

    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    statuses, goaway = {}, False
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        for i in range(n_requests):
            sid = conn.get_next_available_stream_id()
            conn.send_headers(sid, [(":method", "GET"), (":path", f"/h2/{i}"), (":scheme", "http"),
                                    (":authority", "x")], end_stream=True)
            s.sendall(conn.data_to_send())
            while sid not in statuses:
                try:
                    data = s.recv(65536)
                except ConnectionResetError:
                    data = b""
                if not data:
                    return list(statuses.values()), goaway
                for ev in conn.receive_data(data):
                    if isinstance(ev, h2.events.ResponseReceived):
                        statuses[ev.stream_id] = dict(ev.headers)[b":status"]
                    elif isinstance(ev, h2.events.ConnectionTerminated):
                        goaway = True
                try:  # acknowledgements; after a GOAWAY the proxy may have closed already
                    s.sendall(conn.data_to_send())
                except (BrokenPipeError, ConnectionResetError):
                    if not goaway:
                        raise
            if goaway:
                break
    return list(statuses.values()), goaway


def test_disable_http_keepalive_sends_goaway_on_http2(proxy_factory, backend_factory, tmp_path):
    backend = backend_factory()
    pressure = tmp_path / "pressure"
    _set_pressure(pressure, 0)
    proxy = proxy_factory(_doc(backend.port, _injected(pressure), [_threshold(NO_KEEPALIVE, INJECTED, 0.5)]))
    port = proxy.listener_port("http")
    assert _h2_exchange(port, 2) == ([b"200", b"200"], False)
    _set_pressure(pressure, 0.6)
    wait_until(lambda: proxy.stat(f"overload.{NO_KEEPALIVE}.active") == 1, 10, what="saturated")
    assert _h2_exchange(port, 2) == ([b"200"], True)  # the stream served, then GOAWAY
    assert proxy.stat("http.in.downstream_cx_overload_disable_keepalive") == 1


def test_stop_accepting_connections_leaves_them_in_the_backlog(proxy_factory, backend_factory, tmp_path):
    backend = backend_factory()
    pressure = tmp_path / "pressure"
    _set_pressure(pressure, 1)
    proxy = proxy_factory(_doc(backend.port, _injected(pressure), [_threshold(STOP_CONNECTIONS, INJECTED, 0.9)]))
    port = proxy.listener_port("http")
    wait_until(lambda: proxy.stat(f"overload.{STOP_CONNECTIONS}.active") == 1, 10, what="the action on")
    waiting = socket.create_connection(("127.0.0.1", port))  # the kernel completes it: the backlog
    waiting.sendall(b"GET /queued HTTP/1.1\r\nhost: x\r\n\r\n")
    waiting.settimeout(0.5)
    try:
        assert waiting.recv(1) == b"", "answered while the action is on"
    except TimeoutError:
        pass  # not accepted: no answer
    assert proxy.stats().get(f"listener.127.0.0.1_{port}.downstream_cx_total", 0) == 0
    assert proxy.get("/ready") == (200, "LIVE\n")  # the admin API is not a listener
    _set_pressure(pressure, 0)
    waiting.settimeout(10)
    assert waiting.recv(12) == b"HTTP/1.1 200"  # served once the pressure dropped
    waiting.close()
    assert _status(port) == 200


def test_fixed_heap_pressure_is_the_heap_in_use(proxy_factory, backend_factory):
    backend = backend_factory()
    tiny = {"name": HEAP, "typed_config": {"@type": HEAP_TYPE, "max_heap_size_bytes": 1}}
    proxy = proxy_factory(_doc(backend.port, tiny, [_threshold(STOP_REQUESTS, HEAP, 0.99)]))
    port = proxy.listener_port("http")
    wait_until(lambda: proxy.stat(f"overload.{HEAP}.pressure") == 100, 10, what="the heap over a 1-byte max")
    with Conn(port) as c:
        r = c.request("GET", "/x")
    assert r.status == 503 and proxy.stat("http.in.response_flag_OL") == 1


def test_reject_incoming_connections_closes_and_counts(proxy_factory, backend_factory, tmp_path):
    backend = backend_factory()
    pressure = tmp_path / "pressure"
    _set_pressure(pressure, 0.95)
    reject = "envoy.overload_actions.reject_incoming_connections"
    proxy = proxy_factory(_doc(backend.port, _injected(pressure), [_threshold(reject, INJECTED, 0.9)]))
    port = proxy.listener_port("http")
    wait_until(lambda: proxy.stat(f"overload.{reject}.active") == 1, 10, what="the action on")
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(10)
    try:
        assert s.recv(1) == b""  # accepted, then closed at once
    except ConnectionResetError:
        pass
    s.close()
    st = proxy.stats()
    assert st[f"listener.127.0.0.1_{port}.downstream_cx_overload_reject"] == 1
    assert st.get(f"listener.127.0.0.1_{port}.downstream_cx_total", 0) == 0
    assert st["server.total_connections"] == 0
    _set_pressure(pressure, 0)
    wait_until(lambda: proxy.stat(f"overload.{reject}.active") == 0, 10, what="the action off")
    assert _status(port) == 200
