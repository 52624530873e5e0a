"""Access logs: formats compiled here, records formatted and written by the core.

Configured as in Envoy: `access_log` on an http_connection_manager or a
tcp_proxy, with the file / stdout / stderr loggers and a `log_format`:

- `json_format`: a JSON object per record; string values may hold command
  operators (`%RESPONSE_CODE%`), as in Envoy; a lone operator keeps its type
  (numbers stay numbers, absent values are null).
- `text_format_source.inline_string` (or the deprecated `text_format`):
  Envoy's format strings (absent values print "-").
- no `log_format`: meshcore's default, one JSON object per record with every
  field it records (Envoy's default is a text line; JSON is easier to ship).

Workers copy each record into a per-worker ring; the engine's log writer
thread (C, worker/alog_writer.c) formats the lines with the format compiled
here and writes them. A full ring drops the record and counts it
(`server.access_log_dropped`): the hot path never waits for logging, and
Python never touches a record. Spans (sampled requests' records) come back
through the same writer; the span thread here hands them to the tracer.
"""
from __future__ import annotations

import json
import logging
import re
import threading

from meshcore import _core

log = logging.getLogger("meshcore.accesslog")

_RF_NAMES = ("UH", "UF", "UO", "NR", "URX", "UT", "DC", "UC", "DI", "FI", "UPE", "DPE", "LR", "UR", "SI", "UAEX", "OL",
             "DT")


def response_flags(bits: int) -> str:
    names = [n for i, n in enumerate(_RF_NAMES) if bits & (1 << i)]
    return ",".join(names) if names else "-"


# Request headers a record keeps, by lower-case name (for %REQ(...)%).
_REQ = {
    ":method": "REQ_METHOD",
    ":path": "REQ_PATH",
    ":authority": "REQ_AUTHORITY",
    "host": "REQ_AUTHORITY",
    "user-agent": "REQ_USER_AGENT",
    "x-request-id": "REQ_REQUEST_ID",
    "x-forwarded-for": "REQ_FORWARDED_FOR",
}

# Envoy command operators meshcore fills in (the REQ / RESP ones by header above).
OPERATORS = ("START_TIME", "PROTOCOL", "RESPONSE_CODE", "RESPONSE_FLAGS", "RESPONSE_CODE_DETAILS",
             "BYTES_RECEIVED", "BYTES_SENT", "DURATION", "UPSTREAM_HOST", "UPSTREAM_CLUSTER", "ROUTE_NAME",
             "DOWNSTREAM_REMOTE_ADDRESS", "DOWNSTREAM_PEER_URI_SAN", "UPSTREAM_PEER_URI_SAN",
             "UPSTREAM_REQUEST_ATTEMPT_COUNT", "TRACE_ID", "REQ", "RESP", "GRPC_STATUS", "GRPC_STATUS_NUMBER")
GRPC_STATUS_FORMATS = ("CAMEL_STRING", "SNAKE_STRING", "NUMBER")
# Only meshcore's default record uses these.
_INTERNAL = {"MC_PROTOCOL_OR_TCP": "PROTOCOL_OR_TCP", "MC_DURATION_MS": "DURATION_MS_FLOAT"}

_OP = re.compile(r"%([A-Z_]+)(?:\(([^)]*)\))?(?::\d+)?%")


def _recorded(arg: str | None) -> str | None:
    """%REQ(A?B)%: the first of the headers a record keeps (A is tried first in
    Envoy; a header meshcore does not record is never there), or None."""
    for header in (arg or "").lower().split("?"):
        if header in _REQ:
            return header
    return None


def check_format(fmt: str) -> str | None:
    """None if every operator in fmt is supported, else the complaint."""
    for m in _OP.finditer(fmt):
        name, arg = m.group(1), m.group(2)
        if name not in OPERATORS:
            return f"unsupported command operator %{name}%"
        if name == "REQ" and _recorded(arg) is None:
            return f"%REQ({arg})%: meshcore records only {', '.join(sorted(_REQ))}"
        if name == "GRPC_STATUS" and arg is not None and arg not in GRPC_STATUS_FORMATS:
            return f"%GRPC_STATUS({arg})%: the format is one of {', '.join(GRPC_STATUS_FORMATS)}"
        if name == "RESP":
            header = (arg or "").split("?")[0].lower()
            if header != "x-envoy-upstream-service-time":
                return f"%RESP({arg})%: meshcore records only x-envoy-upstream-service-time"
    return None


# ---- compiling formats into the core's segments ------------------------------------------------


def _op(m: re.Match, style: int, internal: bool = False) -> tuple:
    name, arg = m.group(1), m.group(2)
    if internal and name in _INTERNAL:
        return (_core.ALOG_OPS[_INTERNAL[name]], style, None)
    if name == "REQ":
        return (_core.ALOG_OPS[_REQ[_recorded(arg)]], style, None)
    if name == "RESP":
        return (_core.ALOG_OPS["RESP_UPSTREAM_SERVICE_TIME"], style, None)
    if name in ("GRPC_STATUS", "GRPC_STATUS_NUMBER"):
        fmt = "NUMBER" if name == "GRPC_STATUS_NUMBER" else arg
        return (_core.ALOG_OPS["GRPC_STATUS"], style, None if fmt in (None, "CAMEL_STRING") else fmt)
    return (_core.ALOG_OPS[name], style, arg if name == "START_TIME" else None)


def _literal(text: str) -> tuple:
    return (_core.ALOG_OPS["LITERAL"], _core.ALOG_TEXT, text)


def _string_parts(s: str, style: int, escape, internal: bool) -> list:
    out, pos = [], 0
    for m in _OP.finditer(s):
        if m.start() > pos:
            out.append(_literal(escape(s[pos:m.start()])))
        out.append(_op(m, style, internal))
        pos = m.end()
    if pos < len(s):
        out.append(_literal(escape(s[pos:])))
    return out


def _json_parts(v, internal: bool) -> list:
    if isinstance(v, str):
        m = _OP.fullmatch(v)
        if m:  # a lone operator keeps its type (numbers stay numbers), as Envoy
            return [_op(m, _core.ALOG_JSON_VALUE, internal)]
        return [_literal('"'), *_string_parts(v, _core.ALOG_JSON_STRING, lambda t: json.dumps(t)[1:-1], internal),
                _literal('"')]
    if isinstance(v, dict):
        out = [_literal("{")]
        for i, (k, x) in enumerate(v.items()):
            out.append(_literal(("," if i else "") + json.dumps(str(k)) + ":"))
            out += _json_parts(x, internal)
        return out + [_literal("}")]
    if isinstance(v, list):
        out = [_literal("[")]
        for i, x in enumerate(v):
            if i:
                out.append(_literal(","))
            out += _json_parts(x, internal)
        return out + [_literal("]")]
    return [_literal(json.dumps(v))]


def _merge(parts: list) -> list:
    """Adjacent literals joined: fewer segments to walk per record."""
    out = []
    for p in parts:
        if out and p[0] == 0 and out[-1][0] == 0:
            out[-1] = (0, out[-1][1], out[-1][2] + p[2])
        else:
            out.append(p)
    return out


def compile_text(fmt: str) -> list:
    """Envoy's text format -> segments (a line ends in a newline)."""
    return _merge(_string_parts(fmt if fmt.endswith("\n") else fmt + "\n", _core.ALOG_TEXT, lambda t: t, False))


def compile_json(obj: dict, internal: bool = False) -> list:
    """A json_format (dict) -> segments of one JSON object per line."""
    return _merge(_json_parts(obj, internal) + [_literal("\n")])


_DEFAULT_COMMON = {
    "start_time": "%START_TIME%",
    "protocol": "%MC_PROTOCOL_OR_TCP%",
    "duration_ms": "%MC_DURATION_MS%",
    "bytes_received": "%BYTES_RECEIVED%",
    "bytes_sent": "%BYTES_SENT%",
    "response_flags": "%RESPONSE_FLAGS%",
    "upstream_host": "%UPSTREAM_HOST%",
    "upstream_cluster": "%UPSTREAM_CLUSTER%",
    "downstream_remote_address": "%DOWNSTREAM_REMOTE_ADDRESS%",
    "downstream_peer_principal": "%DOWNSTREAM_PEER_URI_SAN%",
    "upstream_peer_principal": "%UPSTREAM_PEER_URI_SAN%",
}
# meshcore's default record: one JSON object with every field a record keeps.
DEFAULT_HTTP = {
    **_DEFAULT_COMMON,
    "method": "%REQ(:METHOD)%",
    "authority": "%REQ(:AUTHORITY)%",
    "path": "%REQ(:PATH)%",
    "response_code": "%RESPONSE_CODE%",
    "upstream_service_time_ms": "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%",
    "route_name": "%ROUTE_NAME%",
    "request_id": "%REQ(X-REQUEST-ID)%",
    "trace_id": "%TRACE_ID%",
    "user_agent": "%REQ(USER-AGENT)%",
    "x_forwarded_for": "%REQ(X-FORWARDED-FOR)%",
    "attempts": "%UPSTREAM_REQUEST_ATTEMPT_COUNT%",
    "response_code_details": "%RESPONSE_CODE_DETAILS%",
}
DEFAULT_TCP = {**_DEFAULT_COMMON, "response_code_details": "%RESPONSE_CODE_DETAILS%"}


def sink_from_xds(access_log) -> tuple:
    """An envoy.config.accesslog.v3.AccessLog (validated) -> (path or None,
    fd, HTTP format, TCP format), formats compiled."""
    from envoy.extensions.access_loggers.file.v3 import file_pb2
    from envoy.extensions.access_loggers.stream.v3 import stream_pb2
    from google.protobuf import json_format as jf

    url = access_log.typed_config.type_url.rsplit("/", 1)[-1]
    path, fd = None, 1
    if url.endswith("FileAccessLog"):
        cfg = file_pb2.FileAccessLog()
        access_log.typed_config.Unpack(cfg)
        path = cfg.path
        if path in ("/dev/stdout", "/dev/stderr"):
            path, fd = None, 1 if path == "/dev/stdout" else 2
    else:
        cfg = stream_pb2.StdoutAccessLog() if url.endswith("StdoutAccessLog") else stream_pb2.StderrAccessLog()
        access_log.typed_config.Unpack(cfg)
        fd = 1 if url.endswith("StdoutAccessLog") else 2
    if cfg.HasField("log_format"):
        lf = cfg.log_format
        which = lf.WhichOneof("format")
        if which == "json_format":
            fmt = compile_json(jf.MessageToDict(lf.json_format))
        else:
            fmt = compile_text(lf.text_format_source.inline_string if which == "text_format_source"
                               else lf.text_format)
        return path, fd, fmt, fmt
    return path, fd, compile_json(DEFAULT_HTTP, internal=True), compile_json(DEFAULT_TCP, internal=True)


class AccessLogs:
    """Log ids handed to the compiler, their sinks in the core, and the
    thread that takes spans from the core to the tracer."""

    def __init__(self, engine_core, interval: float = 0.1, spans=None):
        self._core = engine_core
        self._interval = interval
        self._spans = spans  # where spans go (meshcore.telemetry.tracing.Tracers.add)
        self._ids: dict[tuple, int] = {}  # serialized AccessLog list -> its id
        self._next = 1
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None

    def register(self, access_logs) -> int:
        """An id for a list of xDS AccessLog messages (0 when empty). The
        same list gets the same id and sinks: a reload (or a certificate
        rotation, which re-applies the config) opens no new files. OSError
        if a file cannot be opened."""
        if not access_logs:
            return 0
        key = tuple(a.SerializeToString(deterministic=True) for a in access_logs)
        with self._lock:
            if key in self._ids:
                return self._ids[key]
            log_id = self._next
            for a in access_logs:
                path, fd, http, tcp = sink_from_xds(a)
                self._core.alog_add_sink(log_id, path, fd, http, tcp)
            self._next += 1
            self._ids[key] = log_id
            return log_id

    def ensure_thread(self) -> None:
        """Starts the span thread (once)."""
        with self._lock:
            if self._thread is None and self._spans is not None:
                self._core.drain_spans(0)  # tells the core to keep spans for us
                self._thread = threading.Thread(target=self._run, name="mc-spans", daemon=True)
                self._thread.start()

    def _run(self):
        while not self._stop.wait(self._interval):
            self._take_spans()
        self._take_spans()

    def _take_spans(self):
        while True:
            spans = self._core.drain_spans()
            if spans:
                self._spans(spans)
            if len(spans) < 1024:
                return

    def drain(self) -> None:
        """Writes every record produced so far (and hands over its spans)."""
        self._core.alog_flush()
        if self._thread is not None:
            self._take_spans()

    def stop(self) -> None:
        """After the engine stopped (its writer wrote the last records)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
