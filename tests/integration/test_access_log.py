"""Access logs end to end: records written by the workers, drained and
formatted off the hot path (JSON by default, Envoy format strings, per-TCP
connection records), and bad formats rejected by name."""
import http.client
import json
import socket

import pytest
from support import config as cfg
from support.net import free_port, wait_until

from meshcore.errors import ConfigError

HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
FILE_LOG = "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog"
ROUTER = {"name": "envoy.filters.http.router",
          "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}


def file_log(path, text=None, json_format=None):
    tc = {"@type": FILE_LOG, "path": str(path)}
    if text is not None:
        tc["log_format"] = {"text_format_source": {"inline_string": text}}
    if json_format is not None:
        tc["log_format"] = {"json_format": json_format}
    return {"name": "envoy.access_loggers.file", "typed_config": tc}


def http_listener(access_log):
    return {
        "name": "http",
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
        "filter_chains": [{"filters": [{"name": "hcm", "typed_config": {
            "@type": HCM, "stat_prefix": "in", "access_log": access_log, "http_filters": [ROUTER],
            "route_config": {"virtual_hosts": [{"name": "v", "domains": ["*"], "routes": [
                {"name": "dead_route", "match": {"prefix": "/dead"}, "route": {"cluster": "dead"}},
                {"name": "main", "match": {"prefix": "/"}, "route": {"cluster": "app"}},
            ]}]}}}]}],
    }


def get(port, path, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


@pytest.fixture
def http_upstream_port(http_upstream_factory):
    return http_upstream_factory(b"ok").port


def flushed_lines(engine, path, n: int) -> list:
    """The log file's lines once it has n: a record is written when the
    exchange is done, which the client can see a moment before the worker
    gets there."""
    def ready():
        engine.flush_access_logs()
        return path.exists() and len(path.read_text().splitlines()) >= n
    wait_until(ready, what=f"{n} records in {path.name}")
    return path.read_text().splitlines()


def test_http_records_default_json_and_text(http_upstream_port, engine_factory, tmp_path):
    doc = cfg.bootstrap(
        [http_listener([file_log(tmp_path / "json.log"),
                        file_log(tmp_path / "text.log",
                                 "%REQ(:METHOD)% %REQ(:PATH)% %RESPONSE_CODE% %RESPONSE_FLAGS% %ROUTE_NAME%\n")])],
        [cfg.static_cluster("app", [http_upstream_port]), cfg.static_cluster("dead", [free_port()])])
    engine = engine_factory(config=doc)
    port = engine.listener_port("http")
    assert get(port, "/a?x=1", {"user-agent": "probe/1", "x-request-id": "rid-1"})[0] == 200
    assert get(port, "/dead")[0] == 503
    # A record is written once the exchange is done, which the client can
    # see a moment before the worker gets there.
    flushed_lines(engine, tmp_path / "text.log", 2)
    text = (tmp_path / "text.log").read_text().splitlines()
    assert text == ["GET /a?x=1 200 - main", "GET /dead 503 UF dead_route"]
    records = [json.loads(line) for line in (tmp_path / "json.log").read_text().splitlines()]
    ok, failed = records
    assert ok["method"] == "GET" and ok["path"] == "/a?x=1" and ok["response_code"] == 200
    assert ok["user_agent"] == "probe/1" and ok["request_id"] == "rid-1"
    assert ok["upstream_cluster"] == "app" and ok["upstream_host"] == f"127.0.0.1:{http_upstream_port}"
    assert ok["response_flags"] == "-" and ok["protocol"] == "HTTP/1.1" and ok["attempts"] == 1
    assert ok["upstream_service_time_ms"] is not None and ok["duration_ms"] >= 0
    assert failed["response_code"] == 503 and failed["response_flags"] == "UF"
    assert failed["upstream_service_time_ms"] is None


def test_json_format_keeps_types(http_upstream_port, engine_factory, tmp_path):
    doc = cfg.bootstrap(
        [http_listener([file_log(tmp_path / "j.log", json_format={
            "code": "%RESPONSE_CODE%", "line": "%REQ(:METHOD)% %REQ(:PATH)%", "fixed": "x"})])],
        [cfg.static_cluster("app", [http_upstream_port]), cfg.static_cluster("dead", [1])])
    engine = engine_factory(config=doc)
    assert get(engine.listener_port("http"), "/z")[0] == 200
    flushed_lines(engine, tmp_path / "j.log", 1)
    assert json.loads((tmp_path / "j.log").read_text()) == {"code": 200, "line": "GET /z", "fixed": "x"}


def test_tcp_connection_record(engine_factory, echo, tmp_path):
    listener = cfg.tcp_proxy_listener("ingress", "backend")
    listener["filter_chains"][0]["filters"][-1]["typed_config"]["access_log"] = [file_log(tmp_path / "tcp.log")]
    engine = engine_factory(config=cfg.bootstrap([listener], [cfg.static_cluster("backend", [echo.port])]))
    with socket.create_connection(("127.0.0.1", engine.listener_port("ingress"))) as s:
        s.sendall(b"hello")
        s.shutdown(socket.SHUT_WR)
        assert s.recv(100) == b"hello"
    engine.stop(5)
    rec = json.loads((tmp_path / "tcp.log").read_text())
    assert rec["protocol"] == "TCP" and rec["bytes_received"] == 5 and rec["bytes_sent"] == 5
    assert rec["upstream_cluster"] == "backend" and rec["upstream_host"] == f"127.0.0.1:{echo.port}"


@pytest.mark.parametrize("fmt,complaint", [
    ("%NOPE%", "unsupported command operator %NOPE%"),
    ("%REQ(X-CUSTOM)%", "meshcore records only"),
])
def test_unsupported_format_rejected_by_name(engine_factory, tmp_path, fmt, complaint):
    doc = cfg.bootstrap([http_listener([file_log(tmp_path / "x.log", fmt)])],
                        [cfg.static_cluster("app", [1]), cfg.static_cluster("dead", [1])])
    engine = engine_factory()
    with pytest.raises(ConfigError) as e:
        engine.apply(doc, "a.yaml")
    assert "access_log[0]" in str(e.value) and complaint in str(e.value)


def test_reapplying_a_config_reuses_its_log_files(http_upstream_port, engine_factory, tmp_path):
    """A reload or a certificate rotation re-applies the config: the same
    access_log keeps its one open file."""
    import os

    path = tmp_path / "json.log"
    doc = cfg.bootstrap([http_listener([file_log(path)])], [cfg.static_cluster("app", [http_upstream_port]),
                                                           cfg.static_cluster("dead", [free_port()])])
    engine = engine_factory(config=doc)
    for _ in range(5):
        engine.apply(doc)
        assert get(engine.listener_port("http"), "/a")[0] == 200
    flushed_lines(engine, path, 5)
    fds = [fd for fd in os.listdir("/proc/self/fd")
           if os.path.realpath(f"/proc/self/fd/{fd}") == os.path.realpath(path)]
    assert len(fds) == 1
