"""Distributed tracing: spans recorded by the core, exported off the hot path.

Configured as in Envoy, on an http_connection_manager:

    tracing:
      random_sampling: {value: 1}          # percent; Envoy's default is 100
      provider:
        name: envoy.tracers.opentelemetry  # OTLP/HTTP, protobuf
        typed_config:
          "@type": type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig
          service_name: productpage
          http_service:
            http_uri: {uri: "http://otel:4318/v1/traces", cluster: otel, timeout: 1s}

or `envoy.tracers.zipkin` (`ZipkinConfig`: collector_cluster,
collector_endpoint, collector_endpoint_version HTTP_JSON: Zipkin v2 JSON).

The core propagates the trace context (W3C traceparent, B3) and decides
sampling per request (the caller's decision first, then random_sampling);
a sampled request's access-log record doubles as its span (one per hop:
SERVER on an INBOUND listener, CLIENT on an OUTBOUND one). The record drain
hands spans here; each provider has a bounded queue and a thread that posts
batches to the collector. A collector that is down or slow costs dropped
spans, counted in `tracing.<provider>.spans_dropped`, and never a request's
latency: nothing here runs on a worker.
"""
from __future__ import annotations

import collections
import json
import logging
import threading
import time
from dataclasses import dataclass, field

from meshcore import _core, xds_types
from meshcore.telemetry.access_log import response_flags

log = logging.getLogger("meshcore.tracing")

QUEUE_MAX = 8192      # spans waiting per provider; more are dropped
BATCH_MAX = 512       # spans per request to the collector
FLUSH_INTERVAL = 1.0  # seconds a span may wait for a batch to fill


@dataclass
class Provider:
    """One tracing provider configuration and its exporter."""
    kind: str                 # "opentelemetry" or "zipkin"
    host: str                 # collector address (the cluster's first endpoint)
    port: int
    path: str
    authority: str
    service_name: str
    timeout: float = 1.0
    node: dict = field(default_factory=dict)  # resource / span attributes of this proxy
    queue: collections.deque = field(default_factory=lambda: collections.deque(maxlen=QUEUE_MAX))
    counters: dict = field(default_factory=lambda: dict.fromkeys(
        ("spans_sent", "spans_dropped", "reports_sent", "reports_failed"), 0))

    def key(self) -> tuple:
        return (self.kind, self.host, self.port, self.path, self.authority, self.service_name,
                tuple(sorted(self.node.items())))


def _endpoint_of(clusters, name: str) -> tuple[str, int] | None:
    for c in clusters:
        if c.name == name:
            for loc in c.load_assignment.endpoints:
                for lbe in loc.lb_endpoints:
                    sa = lbe.endpoint.address.socket_address
                    return sa.address, sa.port_value
    return None


def _collector(clusters, name: str) -> tuple[str, int]:
    ep = _endpoint_of(clusters, name)
    if ep is None:  # the validator checks this; a direct caller may not have
        from meshcore.errors import ConfigError

        raise ConfigError(f"tracing: collector cluster {name!r} has no endpoint")
    return ep


def provider_from_xds(tracing, bootstrap, node_metadata: dict) -> Provider:
    """HttpConnectionManager.Tracing (validated) -> Provider; node_metadata:
    the bootstrap node's metadata as a dict (meshcore.plan.SnapshotPlan)."""
    import urllib.parse

    node = bootstrap.node
    md = node_metadata
    attrs = {"node_id": node.id} if node.id else {}
    for key, md_key in (("istio.namespace", "NAMESPACE"), ("istio.mesh_id", "MESH_ID")):
        if isinstance(md.get(md_key), str):
            attrs[key] = md[md_key]
    default_name = node.cluster or md.get("WORKLOAD_NAME") or "meshcore"
    clusters = bootstrap.static_resources.clusters
    tc = tracing.provider.typed_config
    cfg = xds_types.unpack(tc)
    if cfg.DESCRIPTOR.full_name == xds_types.OTEL_TRACER:
        uri = urllib.parse.urlsplit(cfg.http_service.http_uri.uri)
        ep = _collector(clusters, cfg.http_service.http_uri.cluster)
        t = cfg.http_service.http_uri.timeout
        timeout = (t.seconds + t.nanos / 1e9) if cfg.http_service.http_uri.HasField("timeout") else 1.0
        return Provider("opentelemetry", ep[0], ep[1], uri.path or "/v1/traces", uri.netloc or ep[0],
                        cfg.service_name or default_name, timeout, attrs)
    ep = _collector(clusters, cfg.collector_cluster)
    return Provider("zipkin", ep[0], ep[1], cfg.collector_endpoint or "/api/v2/spans",
                    cfg.collector_hostname or cfg.collector_cluster, default_name, 1.0, attrs)


# ---- span encodings -----------------------------------------------------------------------


def _name(r: dict, operations: dict) -> str:
    """operations: tracer id (one per connection manager) -> route name -> decorator."""
    # The route's decorator names the span, as in Envoy; else the host, as Istio's default.
    return operations.get(r["tracer_id"], {}).get(r["route"]) or f"{r['authority'] or '-'}/*"


def _tags(r: dict, p: Provider) -> dict:
    tags = {
        "component": "proxy",
        "http.method": r["method"],
        "http.url": f"http://{r['authority']}{r['path']}",
        "http.protocol": "HTTP/2" if r["http_minor"] == 20 else f"HTTP/1.{r['http_minor']}",
        "http.status_code": str(r["status"]),
        "response_flags": response_flags(r["flags"]),
        "request_size": str(r["bytes_rx"]),
        "response_size": str(r["bytes_tx"]),
        "peer.address": r["downstream_peer"].rsplit(":", 1)[0] if r["downstream_peer"] else "",
        **p.node,
    }
    for key, field_name in (("guid:x-request-id", "request_id"), ("user_agent", "user_agent"),
                            ("upstream_cluster", "upstream_cluster"), ("upstream_address", "upstream_host"),
                            ("peer.principal", "downstream_principal"),
                            ("upstream_peer.principal", "upstream_principal")):
        if r[field_name]:
            tags[key] = r[field_name]
    if r["status"] >= 500 or r["status"] == 0:
        tags["error"] = "true"
    return tags


def scope_spans(resource_spans):
    """ResourceSpans field 2, under either of its names.

    xds-protos bundles a pre-1.0 copy of opentelemetry/proto/trace/v1/trace_pb2.py
    (field 2 named instrumentation_library_spans) that replaces opentelemetry-proto's
    when pip happens to install it second. The wire format is the same, so export
    works with whichever file is on disk."""
    if "scope_spans" in resource_spans.DESCRIPTOR.fields_by_name:
        return resource_spans.scope_spans
    return resource_spans.instrumentation_library_spans


def otlp_request(records: list[dict], p: Provider, operations: dict) -> bytes:
    """An ExportTraceServiceRequest (serialized) for span records."""
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
    from opentelemetry.proto.trace.v1 import trace_pb2

    req = trace_service_pb2.ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    kv = rs.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", p.service_name
    ss = scope_spans(rs).add()
    (ss.scope if "scope" in ss.DESCRIPTOR.fields_by_name else ss.instrumentation_library).name = "meshcore"
    for r in records:
        s = ss.spans.add()
        s.trace_id = bytes.fromhex(r["trace_id"])
        s.span_id = bytes.fromhex(r["span_id"])
        if r["parent_span_id"]:
            s.parent_span_id = bytes.fromhex(r["parent_span_id"])
        s.name = _name(r, operations)
        s.kind = (trace_pb2.Span.SPAN_KIND_CLIENT if r["span_kind"] == "client"
                  else trace_pb2.Span.SPAN_KIND_SERVER)
        s.start_time_unix_nano = r["start_us"] * 1000
        s.end_time_unix_nano = (r["start_us"] + r["duration_us"]) * 1000
        for k, v in _tags(r, p).items():
            a = s.attributes.add()
            a.key, a.value.string_value = k, v
        if r["status"] >= 500 or r["status"] == 0:
            s.status.code = trace_pb2.Status.STATUS_CODE_ERROR
    return req.SerializeToString()


def zipkin_json(records: list[dict], p: Provider, operations: dict) -> bytes:
    """Zipkin v2 JSON (a list of spans) for span records."""
    spans = []
    for r in records:
        s = {
            "traceId": r["trace_id"], "id": r["span_id"], "name": _name(r, operations),
            "kind": "CLIENT" if r["span_kind"] == "client" else "SERVER",
            "timestamp": r["start_us"], "duration": max(r["duration_us"], 1),
            "localEndpoint": {"serviceName": p.service_name},
            "tags": _tags(r, p),
        }
        if r["parent_span_id"]:
            s["parentId"] = r["parent_span_id"]
        spans.append(s)
    return json.dumps(spans, separators=(",", ":")).encode()


# ---- the registry and its exporters ----------------------------------------------------------


class Tracers:
    """Tracer ids handed to the compiler, and one exporter thread per provider."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._exporters: dict[tuple, Provider] = {}  # provider config -> its exporter (queue, counters)
        self._ids: dict[tuple, int] = {}  # (provider config, listener, chain) -> tracer id
        self._providers: dict[int, Provider] = {}  # tracer id -> exporter
        self._operations: dict[int, dict] = {}  # tracer id -> route name -> decorator operation
        self._wake = threading.Condition(self._lock)
        self._stop = False
        self._thread = None

    def plan(self, plan) -> bool:
        """Sets ChainPlan.tracing (tracer id, random sampling per million, span
        kind) on the chains whose HCM traces (meshcore.plan.SnapshotPlan);
        whether any does."""
        traced = False
        for chain in plan.chains:
            hcm = chain.hcm
            if hcm is None or not hcm.HasField("tracing") or not hcm.tracing.HasField("provider"):
                continue
            kind = _core.SPAN_CLIENT if chain.direction == 2 else _core.SPAN_SERVER
            p = provider_from_xds(hcm.tracing, plan.bootstrap, plan.node_metadata)
            # One id per connection manager: its spans are named by its own
            # routes' decorators; connection managers share the exporter.
            ops = {rt.name: rt.decorator.operation for vh in hcm.route_config.virtual_hosts
                   for rt in vh.routes if rt.name and rt.decorator.operation}
            with self._lock:
                exporter = self._exporters.setdefault(p.key(), p)
                tid = self._ids.setdefault((p.key(), chain.listener, chain.index), len(self._ids) + 1)
                self._providers[tid] = exporter
                self._operations[tid] = ops
            pct = hcm.tracing.random_sampling.value if hcm.tracing.HasField("random_sampling") else 100.0
            chain.tracing = (tid, round(pct * 10000), kind)
            traced = True
        if traced:
            self._ensure_thread()
        return traced

    def add(self, records: list[dict]) -> None:
        """Spans from the record drain (records with a tracer id)."""
        with self._lock:
            for r in records:
                p = self._providers.get(r["tracer_id"])
                if p is None:
                    continue
                if len(p.queue) == p.queue.maxlen:
                    p.counters["spans_dropped"] += 1  # the oldest goes
                p.queue.append(r)
            self._wake.notify()

    def counters(self) -> dict:
        """tracing.<kind>.<counter>, summed over providers of a kind."""
        out = {}
        with self._lock:
            for p in self._exporters.values():
                for name, v in p.counters.items():
                    key = f"tracing.{p.kind}.{name}"
                    out[key] = out.get(key, 0) + v
        return out

    def _ensure_thread(self):
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="mc-tracing", daemon=True)
                self._thread.start()

    def _run(self):
        last = time.monotonic()
        while True:
            with self._lock:
                self._wake.wait(timeout=FLUSH_INTERVAL / 4)
                stopping = self._stop
                due = stopping or time.monotonic() - last >= FLUSH_INTERVAL
                work = []
                for p in self._exporters.values():
                    while p.queue and (due or len(p.queue) >= BATCH_MAX):
                        batch = [p.queue.popleft() for _ in range(min(BATCH_MAX, len(p.queue)))]
                        ops = {r["tracer_id"]: self._operations.get(r["tracer_id"], {}) for r in batch}
                        work.append((p, batch, ops))
            if due:
                last = time.monotonic()
            for p, batch, ops in work:
                self._send(p, batch, ops)
            if stopping:
                return

    def _send(self, p: Provider, batch: list[dict], ops: dict) -> None:
        import http.client  # (and ssl, email...): only a proxy that traces pays for them

        if p.kind == "opentelemetry":
            body, ctype = otlp_request(batch, p, ops), "application/x-protobuf"
        else:
            body, ctype = zipkin_json(batch, p, ops), "application/json"
        ok = False
        try:
            conn = http.client.HTTPConnection(p.host, p.port, timeout=p.timeout)
            try:
                conn.request("POST", p.path, body, {"Content-Type": ctype, "Host": p.authority})
                resp = conn.getresponse()
                resp.read()
                ok = 200 <= resp.status < 300
                if not ok:
                    log.warning("%s collector %s:%d answered %d", p.kind, p.host, p.port, resp.status)
            finally:
                conn.close()
        except OSError as e:
            log.debug("%s collector %s:%d: %s", p.kind, p.host, p.port, e)
        with self._lock:
            if ok:
                p.counters["spans_sent"] += len(batch)
                p.counters["reports_sent"] += 1
            else:
                p.counters["spans_dropped"] += len(batch)
                p.counters["reports_failed"] += 1

    def stop(self) -> None:
        """Sends what is queued (one attempt each) and stops the thread."""
        with self._lock:
            self._stop = True
            self._wake.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=10)
