"""Access logs: records drained from the core's per-worker rings, formatted
and written off the hot path.

Configured as in Envoy: `access_log` on an http_connection_manager or a
tcp_proxy, with the file / stdout / stderr loggers and a `log_format`:

- `json_format`: a JSON object per record; string values may hold command
  operators (`%RESPONSE_CODE%`), as in Envoy.
- `text_format_source.inline_string` (or the deprecated `text_format`):
  Envoy's format strings.
- no `log_format`: meshcore's default, one JSON object per record with every
  field it records (Envoy's default is a text line; JSON is easier to ship).

Workers append to rings; a full ring drops the record and counts it
(`server.access_log_dropped`); the drain thread here never slows a request.
"""
from __future__ import annotations

import datetime
import json
import logging
import os
import re
import sys
import threading

log = logging.getLogger("meshcore.accesslog")

_RF_NAMES = ("UH", "UF", "UO", "NR", "URX", "UT", "DC", "UC", "DI", "FI", "UPE", "DPE", "LR", "UR", "SI", "UAEX")


def response_flags(bits: int) -> str:
    names = [n for i, n in enumerate(_RF_NAMES) if bits & (1 << i)]
    return ",".join(names) if names else "-"


def _start_time(r, arg=None):
    t = datetime.datetime.fromtimestamp(r["start_us"] / 1e6, datetime.timezone.utc)
    if arg:
        # Envoy's strftime-style formats, minus its %f extensions.
        return t.strftime(arg.replace("%3f", f"{t.microsecond // 1000:03d}").replace("%6f", f"{t.microsecond:06d}"))
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _protocol(r):
    return f"HTTP/1.{r['http_minor']}" if r["kind"] == "http" else "-"


def _ms(us):
    return None if us is None or us < 0 else us // 1000


# Request headers the core records, by lower-case name (for %REQ(...)%).
_REQ = {
    ":method": "method",
    ":path": "path",
    ":authority": "authority",
    "host": "authority",
    "user-agent": "user_agent",
    "x-request-id": "request_id",
    "x-forwarded-for": "forwarded_for",
}

# Envoy command operators meshcore fills in (name -> record -> value).
OPERATORS = {
    "START_TIME": _start_time,
    "PROTOCOL": lambda r, a=None: _protocol(r),
    "RESPONSE_CODE": lambda r, a=None: r["status"],
    "RESPONSE_FLAGS": lambda r, a=None: response_flags(r["flags"]),
    "BYTES_RECEIVED": lambda r, a=None: r["bytes_rx"],
    "BYTES_SENT": lambda r, a=None: r["bytes_tx"],
    "DURATION": lambda r, a=None: r["duration_us"] // 1000,
    "UPSTREAM_HOST": lambda r, a=None: r["upstream_host"] or None,
    "UPSTREAM_CLUSTER": lambda r, a=None: r["upstream_cluster"] or None,
    "ROUTE_NAME": lambda r, a=None: r["route"] or None,
    "DOWNSTREAM_REMOTE_ADDRESS": lambda r, a=None: r["downstream_peer"] or None,
    "DOWNSTREAM_PEER_URI_SAN": lambda r, a=None: r["downstream_principal"] or None,
    "UPSTREAM_PEER_URI_SAN": lambda r, a=None: r["upstream_principal"] or None,
    "UPSTREAM_REQUEST_ATTEMPT_COUNT": lambda r, a=None: r["attempts"],
    "TRACE_ID": lambda r, a=None: r["trace_id"] or None,
    "REQ": lambda r, a=None: r.get(_REQ.get((a or "").lower(), ""), "") or None,
    "RESP": lambda r, a=None: (_ms(r["upstream_service_us"])
                               if (a or "").lower() == "x-envoy-upstream-service-time" else None),
}

_OP = re.compile(r"%([A-Z_]+)(?:\(([^)]*)\))?(?::\d+)?%")


def check_format(fmt: str) -> str | None:
    """None if every operator in fmt is supported, else the complaint."""
    for m in _OP.finditer(fmt):
        name, arg = m.group(1), m.group(2)
        if name not in OPERATORS:
            return f"unsupported command operator %{name}%"
        if name in ("REQ", "RESP"):
            header = (arg or "").split("?")[0].lower()
            if name == "REQ" and header not in _REQ:
                return f"%REQ({arg})%: meshcore records only {', '.join(sorted(_REQ))}"
            if name == "RESP" and header != "x-envoy-upstream-service-time":
                return f"%RESP({arg})%: meshcore records only x-envoy-upstream-service-time"
    return None


def _render(fmt: str, r: dict) -> str:
    def one(m):
        v = OPERATORS[m.group(1)](r, (m.group(2) or "").split("?")[0] or None)
        return "-" if v is None or v == "" else str(v)
    return _OP.sub(one, fmt)


def _render_value(v, r):
    if isinstance(v, str):
        m = _OP.fullmatch(v)
        if m:  # a lone operator keeps its type (numbers stay numbers), as Envoy
            return OPERATORS[m.group(1)](r, (m.group(2) or "").split("?")[0] or None)
        return _render(v, r)
    if isinstance(v, dict):
        return {k: _render_value(x, r) for k, x in v.items()}
    return v


def default_record(r: dict) -> dict:
    """meshcore's default JSON access-log record."""
    http = r["kind"] == "http"
    out = {
        "start_time": _start_time(r),
        "protocol": _protocol(r) if http else "TCP",
        "duration_ms": r["duration_us"] / 1000,
        "bytes_received": r["bytes_rx"],
        "bytes_sent": r["bytes_tx"],
        "response_flags": response_flags(r["flags"]),
        "upstream_host": r["upstream_host"] or None,
        "upstream_cluster": r["upstream_cluster"] or None,
        "downstream_remote_address": r["downstream_peer"] or None,
        "downstream_peer_principal": r["downstream_principal"] or None,
        "upstream_peer_principal": r["upstream_principal"] or None,
    }
    if http:
        out.update({
            "method": r["method"],
            "authority": r["authority"],
            "path": r["path"],
            "response_code": r["status"],
            "upstream_service_time_ms": _ms(r["upstream_service_us"]),
            "route_name": r["route"] or None,
            "request_id": r["request_id"] or None,
            "trace_id": r["trace_id"] or None,
            "user_agent": r["user_agent"] or None,
            "x_forwarded_for": r["forwarded_for"] or None,
            "attempts": r["attempts"],
        })
    return out


class Sink:
    """One configured access_log: where records go and how they look."""

    def __init__(self, path: str | None, stream=None, text: str | None = None, json_format: dict | None = None):
        self.path, self.stream, self.text, self.json_format = path, stream, text, json_format
        self._file = None

    def format(self, r: dict) -> str:
        if self.text is not None:
            line = _render(self.text, r)
            return line if line.endswith("\n") else line + "\n"
        obj = _render_value(self.json_format, r) if self.json_format is not None else default_record(r)
        return json.dumps(obj, separators=(",", ":")) + "\n"

    def write(self, lines: list[str]) -> None:
        if self.stream is not None:
            self.stream.write("".join(lines))
            self.stream.flush()
            return
        if self._file is None:
            self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (kept open)
        self._file.write("".join(lines))
        self._file.flush()

    def close(self):
        if self._file:
            self._file.close()
            self._file = None


def sink_from_xds(access_log) -> Sink:
    """An envoy.config.accesslog.v3.AccessLog (validated) -> Sink."""
    from envoy.extensions.access_loggers.file.v3 import file_pb2
    from envoy.extensions.access_loggers.stream.v3 import stream_pb2
    from google.protobuf import json_format as jf

    url = access_log.typed_config.type_url.rsplit("/", 1)[-1]
    if url.endswith("FileAccessLog"):
        cfg = file_pb2.FileAccessLog()
        path, stream = None, None
        access_log.typed_config.Unpack(cfg)
        path = cfg.path
        if path == "/dev/stdout":
            path, stream = None, sys.stdout
        elif path == "/dev/stderr":
            path, stream = None, sys.stderr
    else:
        cfg = stream_pb2.StdoutAccessLog() if url.endswith("StdoutAccessLog") else stream_pb2.StderrAccessLog()
        access_log.typed_config.Unpack(cfg)
        path, stream = None, sys.stdout if url.endswith("StdoutAccessLog") else sys.stderr
    text = json_obj = None
    if cfg.HasField("log_format"):
        lf = cfg.log_format
        which = lf.WhichOneof("format")
        if which == "json_format":
            json_obj = jf.MessageToDict(lf.json_format)
        elif which == "text_format_source":
            text = lf.text_format_source.inline_string
        elif which == "text_format":
            text = lf.text_format
    return Sink(path, stream, text, json_obj)


class AccessLogs:
    """Log ids handed to the compiler, their sinks, and the drain thread."""

    def __init__(self, engine_core, interval: float = 0.1, spans=None):
        self._core = engine_core
        self._spans = spans  # where records that are spans go (meshcore.tracing.Tracers.add)
        self._interval = interval
        self._sinks: dict[int, list[Sink]] = {}
        self._ids: dict[tuple, int] = {}  # serialized AccessLog list -> its id
        self._next = 1
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None

    def register(self, access_logs) -> int:
        """An id for a list of xDS AccessLog messages (0 when empty). The
        same list gets the same id and sinks: a reload (or a certificate
        rotation, which re-applies the config) opens no new files."""
        if not access_logs:
            return 0
        key = tuple(a.SerializeToString(deterministic=True) for a in access_logs)
        with self._lock:
            if key in self._ids:
                return self._ids[key]
        sinks = [sink_from_xds(a) for a in access_logs]
        with self._lock:
            log_id = self._next
            self._next += 1
            self._sinks[log_id] = sinks
            self._ids[key] = log_id
        self._ensure_thread()
        return log_id

    def ensure_thread(self):
        """Starts the drain thread (once): for spans, when no access log does."""
        self._ensure_thread()

    def _ensure_thread(self):
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="mc-access-log", daemon=True)
            self._thread.start()

    def _run(self):
        while not self._stop.wait(self._interval):
            self.drain()
        self.drain()

    def drain(self) -> int:
        records = self._core.drain_access_log()
        if not records:
            return 0
        records.sort(key=lambda r: r["start_us"])  # workers' rings interleave
        out: dict[int, list] = {}
        with self._lock:
            for r in records:
                for i, sink in enumerate(self._sinks.get(r["log_id"], ())):
                    out.setdefault((r["log_id"], i), (sink, []))[1].append(sink.format(r))
        for sink, lines in out.values():
            try:
                sink.write(lines)
            except OSError as e:  # a full disk must not take the proxy down
                log.error("access log %s: %s", sink.path or "stream", e)
        if self._spans is not None:
            spans = [r for r in records if r.get("tracer_id")]
            if spans:
                self._spans(spans)
        return len(records)

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            for sinks in self._sinks.values():
                for s in sinks:
                    s.close()


def ensure_dir(path: str) -> None:
    d = os.path.dirname(path)
    if d:
        os.makedirs(d, exist_ok=True)
