"""The route shape the Istio translation writes for a VirtualService timeout
(`timeout` plus the deprecated `max_grpc_timeout`, as istiod writes it for
sidecars) holds on a real Envoy and on meshcore: a plain HTTP request to a
slow backend gets the 504. The shape it replaced, `timeout` with
`max_stream_duration.grpc_timeout_header_max`, does not hold on Envoy: a
route with max_stream_duration takes Envoy's "new timeouts", and its router
then ignores `timeout` (the control below), so the translation must not go
back to it."""
from __future__ import annotations

import http.client
import time

import pytest
import yaml
from support import http as h
from support.envoy import EnvoyProcess, envoy_binary
from support.net import free_port, wait_until

from meshcore.translate.routes import grpc_timeout

pytestmark = pytest.mark.skipif(envoy_binary() is None, reason="envoy not installed (scripts/setup.sh)")
SLOW = 3.0  # the backend's delay; the routes allow 0.3 s


def slow(req):
    time.sleep(SLOW)
    return h.Reply(body=b"late\n")


def doc_with(backend_port: int, action: dict, port: int = 0) -> dict:
    route = h.route("/", route={"cluster": "backend", **action})
    doc = h.simple([backend_port], routes=[route])
    doc["static_resources"]["listeners"][0]["address"]["socket_address"]["port_value"] = port
    return doc


def status_of(port: int) -> int:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=SLOW * 4)
    try:
        c.request("GET", "/")
        r = c.getresponse()
        r.read()
        return r.status
    finally:
        c.close()


def envoy_status(tmp_path, backend_port: int, action: dict, name: str) -> int:
    port = free_port()
    doc = doc_with(backend_port, action, port)
    doc["admin"] = {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}}
    envoy = EnvoyProcess(tmp_path, yaml.safe_dump(doc), name=name).start()
    try:
        wait_until(lambda: envoy.admin_get("/ready")[0] == 200, timeout=30, what="envoy's listeners")
        return status_of(port)
    finally:
        envoy.stop()


def test_translated_timeout_holds_on_envoy_and_meshcore(backend_factory, engine_factory, tmp_path):
    backend = backend_factory("slow", slow)
    action = grpc_timeout("0.3s")
    assert action == {"timeout": "0.3s", "max_grpc_timeout": "0.3s"}  # istiod's setTimeout for sidecars
    assert envoy_status(tmp_path, backend.port, action, "envoy-timeout") == 504
    engine = engine_factory(config=doc_with(backend.port, action))
    assert status_of(engine.listener_port("http")) == 504


def test_envoy_ignores_timeout_beside_max_stream_duration(backend_factory, tmp_path):
    backend = backend_factory("slow", slow)
    action = {"timeout": "0.3s", "max_stream_duration": {"grpc_timeout_header_max": "0.3s"}}
    assert envoy_status(tmp_path, backend.port, action, "envoy-new-timeouts") == 200
