"""Value checks for telemetry: tracing providers (OpenTelemetry, Zipkin) and
access logs (file loggers and their formats)."""
from .rules import (
    duration_problems,
)


def check_tracing(t):
    if not t.HasField("provider"):
        yield "provider", "required (envoy.tracers.opentelemetry or envoy.tracers.zipkin)"
    if t.HasField("random_sampling") and not 0 <= t.random_sampling.value <= 100:
        yield "random_sampling.value", f"{t.random_sampling.value} is out of range (0..100)"


def check_otel_tracer(c):
    if c.HasField("grpc_service"):
        yield "grpc_service", "OTLP/gRPC export is not supported: use http_service (OTLP/HTTP, protobuf)"
    elif not c.HasField("http_service"):
        yield "http_service", "required (OTLP/HTTP export)"


def check_http_uri(u):
    import urllib.parse

    parts = urllib.parse.urlsplit(u.uri)
    if parts.scheme != "http" or not parts.netloc:
        yield "uri", f'"{u.uri}": an http:// URL is required (the collector is reached over plaintext HTTP/1.1)'
    if not u.cluster:
        yield "cluster", "required (the cluster of the collector)"
    yield from duration_problems(u, "timeout")


def check_zipkin_tracer(c):
    if not c.collector_cluster:
        yield "collector_cluster", "required"
    if not c.collector_endpoint.startswith("/"):
        yield "collector_endpoint", 'required, a path (e.g. "/api/v2/spans")'
    if c.HasField("shared_span_context") and c.shared_span_context.value:
        yield "shared_span_context", "true is not supported: every meshcore hop records its own span"


def check_log_format(f):
    from google.protobuf import json_format

    from meshcore.telemetry.access_log import check_format

    which = f.WhichOneof("format")
    texts = []
    if which == "text_format_source":
        if f.text_format_source.WhichOneof("specifier") != "inline_string":
            yield "text_format_source", "only inline_string is supported"
        texts.append(("text_format_source.inline_string", f.text_format_source.inline_string))
    elif which == "text_format":
        texts.append(("text_format", f.text_format))
    elif which == "json_format":

        def strings(v, path):
            if isinstance(v, str):
                yield path, v
            elif isinstance(v, dict):
                for k, x in v.items():
                    yield from strings(x, f"{path}.{k}")

        texts.extend(strings(json_format.MessageToDict(f.json_format), "json_format"))
    for path, text in texts:
        problem = check_format(text)
        if problem:
            yield path, problem


def check_file_access_log(fal):
    if not fal.path:
        yield "path", "required"
