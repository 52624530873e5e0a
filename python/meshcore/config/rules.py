"""The vocabulary of meshcore's supported xDS subset: Rule (what one message
type may set), AnyOf (what a typed_config may hold), Violation (a broken
rule, at a path), the filter and logger tables, Envoy's limits, and the
small value helpers (duration_problems, header names) every resource's checks use.

Limits of "set": proto3 scalars equal to their default (0, "", false, the
first enum value) are indistinguishable from unset and so pass. That is safe:
the default value means Envoy's default behaviour, which is what we do.
"""

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from meshcore.xds_types import (
    CONNECTION_LIMIT,
    FILE_ACCESS_LOG,
    HCM,
    HTTP_FAULT,
    HTTP_RBAC,
    ISTIO_PEER_METADATA,
    ISTIO_STATS_CONFIG,
    ISTIO_TCP_METADATA_EXCHANGE,
    NETWORK_RBAC,
    ROUTER,
    STDERR_ACCESS_LOG,
    STDOUT_ACCESS_LOG,
    TCP_PROXY,
    TYPED_STRUCT,
    UDPA_TYPED_STRUCT,
    type_url,
)

# Istio's telemetry filters, configured (as Istio writes them) by a TypedStruct
# naming the real config type: filter name -> accepted type URLs, and the keys
# of their value meshcore implements (docs/telemetry.md).
ISTIO_FILTERS = {
    "istio.stats": ((type_url(ISTIO_STATS_CONFIG),),
                    ("disable_host_header_fallback", "tcp_reporting_duration", "reporter")),
    "istio.metadata_exchange": ((type_url(ISTIO_PEER_METADATA), type_url(ISTIO_TCP_METADATA_EXCHANGE)),
                                ("upstream_discovery", "downstream_discovery", "upstream_propagation",
                                 "downstream_propagation", "protocol", "enable_discovery")),
}


class Violation(Exception):
    """A rule was broken at `path` (relative to the resource being walked)."""

    def __init__(self, path: str, text: str):
        super().__init__(f"{path}: {text}" if path else text)
        self.path = path
        self.text = text


@dataclass(frozen=True)
class AnyOf:
    """An Any field (typed_config): which types it may hold and what to call them.

    `types` maps a message full name to True when that filter is terminal
    (must be the last in its chain), False otherwise. `name_field` is the
    sibling field that names the extension, used in error messages; in a map
    (typed_per_filter_config) the entry's key names it instead.
    """

    noun: str
    types: dict
    name_field: str = "name"


@dataclass(frozen=True)
class Rule:
    """What meshcore supports of one message type.

    fields: the field names that may be set.
    enums:  field name -> the enum value names supported (others rejected);
            an enum field listed in `fields` but not here takes any value.
    anys:   field name -> AnyOf for google.protobuf.Any fields (also map
            fields whose values are Any).
    check:  value rules for the message; yields (relative path, text). Runs
            after the fields below it have been walked, so a child's
            "unsupported" is reported before a parent's consequence of it.
    keys:   map field name -> the keys it may have (others rejected).
    nested: field name -> the Rule for the message in that field, where it
            differs from its type's row in SCHEMA (the same message type
            supports different fields in different places, e.g.
            core.v3.Http1ProtocolOptions in a listener vs. in a cluster).
    """

    fields: tuple
    enums: dict = field(default_factory=dict)
    anys: dict = field(default_factory=dict)
    check: Callable[[object], Iterator[tuple]] | None = None
    keys: dict = field(default_factory=dict)
    nested: dict = field(default_factory=dict)


# Messages whose content is free-form (Struct) or a single value (Duration,
# wrappers): not walked further. Whether they may be set is the parent's rule.
LEAVES = frozenset(
    {
        "google.protobuf.Struct",
        "google.protobuf.Value",
        "google.protobuf.ListValue",
        "google.protobuf.Duration",
        "envoy.config.core.v3.GrpcService",  # only ever refused, by its parent's check
    }
    | {
        f"google.protobuf.{t}Value"
        for t in ("Bool", "Int32", "UInt32", "Int64", "UInt64", "Float", "Double", "String")
    }
)


# typed_config types allowed in a listener's filter chain (True = terminal).
NETWORK_FILTERS = {CONNECTION_LIMIT: False, NETWORK_RBAC: False, TCP_PROXY: True, HCM: True,
                   TYPED_STRUCT: False, UDPA_TYPED_STRUCT: False}


# typed_config types allowed in an http_connection_manager's http_filters.
HTTP_FILTERS = {HTTP_FAULT: False, HTTP_RBAC: False, ROUTER: True, TYPED_STRUCT: False, UDPA_TYPED_STRUCT: False}


# Filter types that may appear several times in one chain, evaluated in order
# (Istio writes a DENY and an ALLOW RBAC filter, in that order).
REPEATABLE_FILTERS = frozenset({HTTP_RBAC, NETWORK_RBAC, TYPED_STRUCT, UDPA_TYPED_STRUCT})


ACCESS_LOGGERS = {FILE_ACCESS_LOG: False, STDOUT_ACCESS_LOG: False, STDERR_ACCESS_LOG: False}


# Retry conditions (RetryPolicy.retry_on). refused-stream is an HTTP/2 stream
# error (REFUSED_STREAM from an HTTP/2 upstream); unavailable, cancelled,
# deadline-exceeded, internal and resource-exhausted are gRPC statuses, read
# from the grpc-status of a response head (trailers-only responses), as Envoy.
RETRY_ON = (
    "5xx",
    "gateway-error",
    "reset",
    "connect-failure",
    "retriable-4xx",
    "retriable-status-codes",
    "refused-stream",
    "unavailable",
    "cancelled",
    "deadline-exceeded",
    "resource-exhausted",
    "internal",  # gRPC status 13
)


# Envoy's default RouteConfiguration.max_direct_response_body_size_bytes.
MAX_DIRECT_RESPONSE_BODY = 4096

# per_connection_buffer_limit_bytes (listeners, clusters): meshcore buffers at
# most one 16 KiB buffer per connection and direction before it stops reading
# (plus a request head up to max_request_headers_kb), so any limit from this
# size up is met as is; a smaller one it cannot honour is refused.
MIN_BUFFER_LIMIT = 16 * 1024


def buffer_limit_problems(msg):
    if msg.HasField("per_connection_buffer_limit_bytes"):
        v = msg.per_connection_buffer_limit_bytes.value
        if v < MIN_BUFFER_LIMIT:
            yield ("per_connection_buffer_limit_bytes",
                   f"{v} is below {MIN_BUFFER_LIMIT}: meshcore reads into one 16 KiB buffer per connection and "
                   f"direction and cannot buffer less (docs/hardening.md)")


MAX_RING_SIZE = 8 * 1024 * 1024  # Envoy's limit on RingHashLbConfig.*_ring_size (8M)


def duration_ms_float(d) -> float:
    return d.seconds * 1000 + d.nanos / 1e6


def show_ms(ms: float) -> str:
    return f"{ms / 1000:g}s"


def duration_problems(msg, *names, positive=False):
    """Problems with the Duration fields `names` of msg: negative, or not positive."""
    for name in names:
        if msg.HasField(name):
            ms = duration_ms_float(getattr(msg, name))
            if positive and ms <= 0:
                yield name, "must be greater than 0"
            elif ms < 0:
                yield name, "must not be negative"


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 field-name


BAD_VALUE = re.compile(r"[\r\n\x00]")  # what Envoy's HTTP_HEADER_VALUE (non-strict) rejects


UNMODIFIABLE = 'Envoy does not let header lists change pseudo-headers (":...") or host'


def header_name_problem(name, pseudo_ok=False):
    if not name:
        return "required"
    bare = name[1:] if pseudo_ok and name.startswith(":") else name
    if not _TOKEN.fullmatch(bare):
        return f'"{name}" is not a valid header name'
    return None


def modifiable(name):
    return not name.startswith(":") and name.lower() != "host"


def header_removals(msg):
    """request/response_headers_to_remove of msg (RouteConfiguration, VirtualHost, Route)."""
    for list_name in ("request_headers_to_remove", "response_headers_to_remove"):
        for i, name in enumerate(getattr(msg, list_name)):
            problem = header_name_problem(name, pseudo_ok=True)
            if problem is None and not modifiable(name):
                problem = f'"{name}" cannot be removed ({UNMODIFIABLE})'
            if problem:
                yield f"{list_name}[{i}]", problem
