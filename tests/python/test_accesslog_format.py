"""The core's access-log formatter (stats/alog_format.c) through formats
compiled by meshcore.telemetry.access_log: Envoy's text and JSON semantics, escaping
that keeps every line valid JSON, and meshcore's default record."""
from __future__ import annotations

import json

import pytest

from meshcore import _core
from meshcore.telemetry.access_log import DEFAULT_HTTP, DEFAULT_TCP, compile_json, compile_text

RECORD = {
    "kind": "http", "http_minor": 1, "status": 503, "flags": 2 | 16, "attempts": 3,
    "start_us": 1_767_225_600_123_456,  # 2026-01-01T00:00:00.123456Z
    "duration_us": 12_345, "upstream_service_us": 7_900, "bytes_rx": 10, "bytes_tx": 2048,
    "method": "GET", "authority": "reviews:9080", "path": "/r?x=1", "user_agent": "curl/8",
    "request_id": "rid-1", "route": "default", "upstream_cluster": "outbound|9080||reviews",
    "upstream_host": "10.0.0.7:9080", "downstream_peer": "127.0.0.1:5555",
    "trace_id": "0af7651916cd43dd8448eb211c80319c", "downstream_principal": "spiffe://td/ns/a/sa/b",
}


def render(fmt, **changes) -> str:
    return _core._render(fmt, {**RECORD, **changes}).decode()


def test_text_format_as_envoy():
    fmt = compile_text("[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" "
                       "%RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% "
                       "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" %UPSTREAM_HOST%")
    assert render(fmt) == ('[2026-01-01T00:00:00.123Z] "GET /r?x=1 HTTP/1.1" 503 UF,URX 10 2048 12 7 "-" '
                           '10.0.0.7:9080\n')


def test_start_time_formats():
    assert render(compile_text("%START_TIME(%Y/%m/%d %H:%M:%S.%6f)%")) == "2026/01/01 00:00:00.123456\n"
    assert render(compile_text("%START_TIME(%s.%3f %%)%")) == "1767225600.123 %\n"


def test_json_keeps_types_and_nulls():
    fmt = compile_json({"code": "%RESPONSE_CODE%", "line": "%REQ(:METHOD)% %REQ(:PATH)%", "fixed": "x",
                        "n": 7, "nested": {"host": "%UPSTREAM_HOST%", "missing": "%REQ(X-FORWARDED-FOR)%"},
                        "ust": "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%", "list": ["%BYTES_SENT%", "a"]})
    line = render(fmt, upstream_service_us=-1)
    assert line.endswith("\n") and line.count("\n") == 1
    assert json.loads(line) == {"code": 503, "line": "GET /r?x=1", "fixed": "x", "n": 7,
                                "nested": {"host": "10.0.0.7:9080", "missing": None}, "ust": None,
                                "list": [2048, "a"]}


@pytest.mark.parametrize("path", ['/a"b\\c', "/tab\there", "/ctl\x01\x1f", "/ünï/ℂ/😀"])
def test_json_lines_are_valid_json_whatever_the_request_holds(path):
    fmt = compile_json({"path": "%REQ(:PATH)%", "in": "p=%REQ(:PATH)%"})
    assert json.loads(render(fmt, path=path)) == {"path": path, "in": f"p={path}"}


def test_invalid_utf8_becomes_replacement_characters():
    fmt = compile_json({"ua": "%REQ(USER-AGENT)%"})
    assert json.loads(render(fmt, user_agent=b"bad\xff\xc3(end")) == {"ua": "bad\ufffd\ufffd(end"}


def test_the_default_records():
    http = json.loads(render(compile_json(DEFAULT_HTTP, internal=True)))
    assert http["start_time"] == "2026-01-01T00:00:00.123Z" and http["protocol"] == "HTTP/1.1"
    assert http["duration_ms"] == 12.345 and http["response_code"] == 503
    assert http["response_flags"] == "UF,URX" and http["upstream_service_time_ms"] == 7
    assert http["trace_id"] == RECORD["trace_id"] and http["x_forwarded_for"] is None
    assert http["downstream_peer_principal"] == "spiffe://td/ns/a/sa/b" and http["upstream_peer_principal"] is None
    tcp = json.loads(render(compile_json(DEFAULT_TCP, internal=True), kind="tcp", status=0, flags=0))
    assert tcp["protocol"] == "TCP" and tcp["response_flags"] == "-" and "method" not in tcp


def test_http10_and_tcp_protocols():
    fmt = compile_text("%PROTOCOL%")
    assert render(fmt, http_minor=0) == "HTTP/1.0\n"
    assert render(fmt, kind="tcp") == "-\n"
