"""The supported subset of Envoy's xDS v3 schema, as data, and the walker that enforces it.

meshcore reads Envoy's own message types but implements only part of them.
A field we do not implement must never be accepted and silently ignored: the
user would believe, say, a filter_chain_match is in force when it is not. So
every field that is SET in a parsed message is checked against `SCHEMA`; an
unlisted field is an error. Adding a feature means adding table rows (and,
for new typed_config types, a row in the filter tables) -- the walker stays
generic.

Limits of "set": proto3 scalars equal to their default (0, "", false, the
first enum value) are indistinguishable from unset and so pass. That is safe:
the default value means Envoy's default behaviour, which is what we do.
"""

import ipaddress
import os
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.trace.v3 import opentelemetry_pb2, zipkin_pb2  # noqa: F401

from meshcore import xds_types
from meshcore.xds_types import (  # noqa: F401 (also support.HCM, ... for callers)
    CONNECTION_LIMIT,
    DOWNSTREAM_TLS,
    FAULT_FILTER_NAME,
    FILE_ACCESS_LOG,
    HCM,
    HTTP_FAULT,
    HTTP_RBAC,
    ISTIO_PEER_METADATA,
    ISTIO_STATS_CONFIG,
    ISTIO_TCP_METADATA_EXCHANGE,
    NETWORK_RBAC,
    OTEL_TRACER,
    PREVIOUS_HOSTS,
    ROUTER,
    STDERR_ACCESS_LOG,
    STDOUT_ACCESS_LOG,
    TCP_PROXY,
    TLS_INSPECTOR,
    TYPED_STRUCT,
    UDPA_TYPED_STRUCT,
    UPSTREAM_HTTP_OPTIONS,
    UPSTREAM_TLS,
    ZIPKIN_TRACER,
    UnknownType,
    find_type,
    type_name,
    type_url,
)

_TLS = "envoy.extensions.transport_sockets.tls.v3."
_RBAC = "envoy.config.rbac.v3."

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

_ROUTE = "envoy.config.route.v3."
_HCM_PKG = "envoy.extensions.filters.network.http_connection_manager.v3."
_CLUSTER = "envoy.config.cluster.v3."


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
# error and unavailable, cancelled, deadline-exceeded and resource-exhausted
# are gRPC statuses (grpc-status, which needs HTTP/2): they are accepted so
# that Envoy and Istio configs load, but can never trigger on the HTTP/1.1
# data plane.
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
)

# Envoy's default RouteConfiguration.max_direct_response_body_size_bytes.
MAX_DIRECT_RESPONSE_BODY = 4096
MAX_RING_SIZE = 8 * 1024 * 1024  # Envoy's limit on RingHashLbConfig.*_ring_size (8M)


# ---- value rules -------------------------------------------------------------


def _ms(d) -> float:
    return d.seconds * 1000 + d.nanos / 1e6


def _show_ms(ms: float) -> str:
    return f"{ms / 1000:g}s"


def _durations(msg, *names, positive=False):
    """Problems with the Duration fields `names` of msg: negative, or not positive."""
    for name in names:
        if msg.HasField(name):
            ms = _ms(getattr(msg, name))
            if positive and ms <= 0:
                yield name, "must be greater than 0"
            elif ms < 0:
                yield name, "must not be negative"


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 field-name
_BAD_VALUE = re.compile(r"[\r\n\x00]")  # what Envoy's HTTP_HEADER_VALUE (non-strict) rejects
_UNMODIFIABLE = 'Envoy does not let header lists change pseudo-headers (":...") or host'


def _header_name_problem(name, pseudo_ok=False):
    if not name:
        return "required"
    bare = name[1:] if pseudo_ok and name.startswith(":") else name
    if not _TOKEN.fullmatch(bare):
        return f'"{name}" is not a valid header name'
    return None


def _modifiable(name):
    return not name.startswith(":") and name.lower() != "host"


def _header_removals(msg):
    """request/response_headers_to_remove of msg (RouteConfiguration, VirtualHost, Route)."""
    for list_name in ("request_headers_to_remove", "response_headers_to_remove"):
        for i, name in enumerate(getattr(msg, list_name)):
            problem = _header_name_problem(name, pseudo_ok=True)
            if problem is None and not _modifiable(name):
                problem = f'"{name}" cannot be removed ({_UNMODIFIABLE})'
            if problem:
                yield f"{list_name}[{i}]", problem


def _check_socket_address(sa):
    if not sa.address:
        yield "address", "required (an IPv4 or IPv6 literal)"
    else:
        try:
            ipaddress.ip_address(sa.address)
        except ValueError:
            yield "address", f'"{sa.address}" is not an IP address (hostnames are not supported)'
    if sa.port_value > 65535:
        yield "port_value", f"{sa.port_value} is out of range (0..65535)"


def _check_address(a):
    if not a.HasField("socket_address"):
        yield "socket_address", "required"


def _check_listener(ls):
    if not ls.name:
        yield "name", "required"
    if ls.traffic_direction == 0:
        for path, name in _istio_filters(ls):
            if name == "istio.stats":
                yield path, ("istio.stats needs the listener's traffic_direction (INBOUND reports as destination, "
                             "OUTBOUND as source)")
    if not ls.HasField("address"):
        yield "address", "required"
    if not ls.filter_chains:
        yield "filter_chains", "required"
    transports = [fc.filter_chain_match.transport_protocol for fc in ls.filter_chains]
    if len(transports) > 1:
        # Several chains are told apart by transport only (tls_inspector):
        # at most one per transport, and the inspector must be there.
        if len(set(transports)) != len(transports):
            yield "filter_chains", "two filter chains match the same transport_protocol"
        if not any(lf.typed_config.type_url.endswith(TLS_INSPECTOR) for lf in ls.listener_filters):
            yield "listener_filters", ("filter chains matched on transport_protocol need the "
                                       "envoy.filters.listener.tls_inspector listener filter")


def _istio_filters(ls):
    """(path, name) of the Istio telemetry filters in a listener's chains and HCMs."""
    for c, chain in enumerate(ls.filter_chains):
        for f, flt in enumerate(chain.filters):
            base = f"filter_chains[{c}].filters[{f}]"
            if flt.name in ISTIO_FILTERS:
                yield base, flt.name
            if type_name(flt.typed_config.type_url) == HCM:
                hcm = unpack(flt.typed_config)
                for h, hf in enumerate(hcm.http_filters):
                    if hf.name in ISTIO_FILTERS:
                        yield f"{base}.typed_config.http_filters[{h}]", hf.name


def _check_typed_struct_filter(f):
    """A filter configured by a TypedStruct: only Istio's telemetry filters, by name."""
    if type_name(f.typed_config.type_url) not in (TYPED_STRUCT, UDPA_TYPED_STRUCT):
        return
    if f.name not in ISTIO_FILTERS:
        yield "name", (f'"{f.name}": a TypedStruct config is only supported for Istio\'s telemetry filters '
                       f'({", ".join(ISTIO_FILTERS)})')
        return
    urls, keys = ISTIO_FILTERS[f.name]
    ts = unpack(f.typed_config)
    if ts.type_url not in urls:
        yield "typed_config.type_url", f'"{ts.type_url}" is not a {f.name} config (supported: {", ".join(urls)})'
    for key in ts.value.fields:
        if key not in keys:
            yield f"typed_config.value.{key}", f'unsupported field "{key}" (supported: {", ".join(keys)})'
    reporter = ts.value.fields.get("reporter")
    if reporter is not None and reporter.string_value not in ("", "UNSPECIFIED"):
        yield "typed_config.value.reporter", (f'unsupported value "{reporter.string_value}" (meshcore reports '
                                              "as the listener's traffic_direction says: UNSPECIFIED)")


def _check_network_filter(f):
    yield from _needs_typed_config("filter")(f)
    yield from _check_typed_struct_filter(f)


def _check_http_filter(f):
    yield from _needs_typed_config("http filter")(f)
    yield from _check_typed_struct_filter(f)


def _check_filter_names(filters, list_name):
    seen = {}
    for i, f in enumerate(filters):
        if f.name in ISTIO_FILTERS:
            if f.name in seen:
                yield f"{list_name}[{i}]", f"filter {f.name} is already at {list_name}[{seen[f.name]}]"
            seen[f.name] = i


def _check_tracing(t):
    if not t.HasField("provider"):
        yield "provider", "required (envoy.tracers.opentelemetry or envoy.tracers.zipkin)"
    if t.HasField("random_sampling") and not 0 <= t.random_sampling.value <= 100:
        yield "random_sampling.value", f"{t.random_sampling.value} is out of range (0..100)"


def _check_otel_tracer(c):
    if c.HasField("grpc_service"):
        yield "grpc_service", "OTLP/gRPC export is not supported: use http_service (OTLP/HTTP, protobuf)"
    elif not c.HasField("http_service"):
        yield "http_service", "required (OTLP/HTTP export)"


def _check_http_uri(u):
    import urllib.parse

    parts = urllib.parse.urlsplit(u.uri)
    if parts.scheme != "http" or not parts.netloc:
        yield "uri", f'"{u.uri}": an http:// URL is required (the collector is reached over plaintext HTTP/1.1)'
    if not u.cluster:
        yield "cluster", "required (the cluster of the collector)"
    yield from _durations(u, "timeout")


def _check_zipkin_tracer(c):
    if not c.collector_cluster:
        yield "collector_cluster", "required"
    if not c.collector_endpoint.startswith("/"):
        yield "collector_endpoint", 'required, a path (e.g. "/api/v2/spans")'
    if c.HasField("shared_span_context") and c.shared_span_context.value:
        yield "shared_span_context", "true is not supported: every meshcore hop records its own span"


def _chain(filters, table, list_name, empty_text):
    """Order rules of a filter list: one filter of each type, the terminal one last.

    Filter types were vetted by the walk below the message already.
    """
    if not filters:
        yield list_name, empty_text
        return
    seen = {}
    last = len(filters) - 1
    for i, f in enumerate(filters):
        kind = type_name(f.typed_config.type_url)
        if kind in seen and kind not in REPEATABLE_FILTERS:
            yield (
                f"{list_name}[{i}]",
                f"filter {f.name or kind} is already at {list_name}[{seen[kind]}] (one of each type)",
            )
        seen[kind] = i
        terminal = table.get(kind, False)
        if terminal and i != last:
            yield f"{list_name}[{i}]", f"terminal filter {f.name or kind} must be the last filter"
        if not terminal and i == last:
            terminals = ", ".join(t.rsplit(".", 1)[-1] for t, term in table.items() if term)
            yield f"{list_name}[{i}]", f"the last filter must be terminal ({terminals}), not {f.name or kind}"


def _check_filter_chain(fc):
    tp = fc.filter_chain_match.transport_protocol
    if tp not in ("", "tls", "raw_buffer"):
        yield "filter_chain_match.transport_protocol", f'"{tp}" is not one of "tls", "raw_buffer"'
    if tp == "tls" and not fc.HasField("transport_socket"):
        yield "transport_socket", 'required when transport_protocol is "tls"'
    yield from _chain(
        fc.filters, NETWORK_FILTERS, "filters", "required (the chain must end in tcp_proxy or http_connection_manager)"
    )
    yield from _check_filter_names(fc.filters, "filters")


def _needs_typed_config(noun):
    def check(f):
        if not f.name:
            yield "name", "required"
        if not f.HasField("typed_config"):
            yield "", f"{noun} {f.name} has no typed_config (meshcore picks {noun}s by their typed_config @type)"

    return check


def _check_connection_limit(cl):
    if not cl.stat_prefix:
        yield "stat_prefix", "required"
    if not cl.HasField("max_connections"):
        yield "max_connections", "required"
    elif cl.max_connections.value < 1:
        yield "max_connections", "must be greater than 0"


def _check_tcp_proxy(tp):
    if not tp.stat_prefix:
        yield "stat_prefix", "required"
    which = tp.WhichOneof("cluster_specifier")
    if which is None:
        yield "", "one of cluster or weighted_clusters is required"
    elif which == "cluster" and not tp.cluster:
        yield "cluster", "must not be empty"
    yield from _durations(tp, "idle_timeout")
    if tp.HasField("max_connect_attempts") and tp.max_connect_attempts.value < 1:
        yield "max_connect_attempts", "must be at least 1"


def _check_weighted_clusters(wc):
    if not wc.clusters:
        yield "clusters", "at least one cluster is required"


def _check_cluster_weight(cw):
    if not cw.name:
        yield "name", "required"
    if cw.weight < 1:
        yield "weight", "must be greater than 0"


# -- http_connection_manager


def _routes(route_config):
    """(path relative to the RouteConfiguration, Route) for every route."""
    for v, vh in enumerate(route_config.virtual_hosts):
        for r, route in enumerate(vh.routes):
            yield f"virtual_hosts[{v}].routes[{r}]", route


def _check_hcm(hcm):
    if not hcm.stat_prefix:
        yield "stat_prefix", "required"
    if not hcm.HasField("route_config"):
        yield "route_config", "required (an inline RouteConfiguration; rds is not supported)"
    yield from _chain(hcm.http_filters, HTTP_FILTERS, "http_filters", "required (it must end in the router filter)")
    yield from _check_filter_names(hcm.http_filters, "http_filters")
    if hcm.HasField("max_request_headers_kb") and not 1 <= hcm.max_request_headers_kb.value <= 8192:
        yield "max_request_headers_kb", f"{hcm.max_request_headers_kb.value} is out of range (1..8192)"
    yield from _durations(hcm, "stream_idle_timeout", "request_timeout", "request_headers_timeout")
    if _BAD_VALUE.search(hcm.server_name):
        yield "server_name", "must not contain CR, LF or NUL"
    # A route's fault settings apply through the fault filter of that name, as in
    # Envoy; without it they would be accepted and never take effect.
    has_fault = any(
        f.name == FAULT_FILTER_NAME and type_name(f.typed_config.type_url) == HTTP_FAULT for f in hcm.http_filters
    )
    if not has_fault:
        for path, route in _routes(hcm.route_config):
            if FAULT_FILTER_NAME in route.typed_per_filter_config:
                yield (
                    f'route_config.{path}.typed_per_filter_config["{FAULT_FILTER_NAME}"]',
                    f"has no effect: http_filters has no fault filter named {FAULT_FILTER_NAME}",
                )


def _check_http_options(o):  # core.v3.HttpProtocolOptions, in a listener or a cluster
    yield from _durations(o, "idle_timeout")
    if o.HasField("max_headers_count") and o.max_headers_count.value < 1:
        yield "max_headers_count", "must be at least 1"


_DENOMINATORS = {"HUNDRED": 100, "TEN_THOUSAND": 10_000, "MILLION": 1_000_000}


def _check_fractional_percent(fp):
    name = fp.DESCRIPTOR.fields_by_name["denominator"].enum_type.values_by_number[fp.denominator].name
    whole = _DENOMINATORS[name]
    if fp.numerator > whole:
        yield "numerator", f"{fp.numerator} is more than the whole ({name} = {whole})"


def _check_fault_delay(d):
    if d.WhichOneof("fault_delay_secifier") is None:  # sic: Envoy's spelling
        yield "fixed_delay", "required"
    else:
        yield from _durations(d, "fixed_delay", positive=True)


def _check_fault_abort(a):
    if a.WhichOneof("error_type") is None:
        yield "http_status", "required (200..599)"
    elif not 200 <= a.http_status <= 599:
        yield "http_status", f"{a.http_status} is out of range (200..599)"


# -- routes


def _domain_problem(domain):
    if not domain:
        return "must not be empty"
    if re.search(r"[\x00-\x20\x7f]", domain):
        return f'"{domain}" contains whitespace or control characters'
    if "*" in domain and (domain.count("*") > 1 or not (domain[0] == "*" or domain[-1] == "*")):
        # Envoy's forms: "*", a suffix wildcard ("*.example.com", "*-bar.example.com")
        # and a prefix wildcard ("example.*", "example-*").
        return f'"{domain}": "*" may only be the whole domain, its first character or its last'
    return None


def _check_route_config(rc):
    first = {}
    for v, vh in enumerate(rc.virtual_hosts):
        for d, domain in enumerate(vh.domains):
            here = f"virtual_hosts[{v}].domains[{d}]"
            where = first.setdefault(domain.lower(), here)  # host matching ignores case
            if where != here:
                text = f'duplicate domain "{domain}" ({where} has it too; domains must be unique across virtual hosts)'
                yield here, text
    yield from _header_removals(rc)


def _check_virtual_host(vh):
    if not vh.name:
        yield "name", "required"
    if not vh.domains:
        yield "domains", 'required (at least one domain; "*" matches any)'
    for i, domain in enumerate(vh.domains):
        problem = _domain_problem(domain)
        if problem:
            yield f"domains[{i}]", problem
    yield from _header_removals(vh)


def _check_route(r):
    if not r.HasField("match"):
        yield "match", "required"
    if r.WhichOneof("action") is None:
        yield "", "one of route, redirect or direct_response is required"
    yield from _header_removals(r)


def _check_route_match(m):
    which = m.WhichOneof("path_specifier")
    if which is None:
        yield "", "one of prefix, path, safe_regex or path_separated_prefix is required"
    elif which == "path_separated_prefix" and not re.fullmatch(r"[^?#]+[^?#/]", m.path_separated_prefix):
        text = 'is not a path prefix such as "/api" (no "?" or "#", no trailing "/")'
        yield "path_separated_prefix", f'"{m.path_separated_prefix}" {text}'


# Regexes. Envoy compiles them with RE2; meshcore's core compiles them with
# PCRE2, whose syntax is a superset of RE2's. Here Python's `re` (also close to
# a superset) is the first approximation of "RE2 accepts it": the constructs
# RE2 lacks are refused first (Envoy would reject them and PCRE2 would not), RE2
# spellings Python lacks (\z, \pL, \p{Greek}) are translated, then it must
# compile. Still refused although RE2 takes them: \Q...\E, \C and inline flags
# after the start, e.g. "a(?i)b".
_RE2_ESCAPE = re.compile(r"\\(?:[pP](?:\{[^}]*\}|[A-Za-z])|.)", re.S)


def _python_spelling(m):
    text = m.group(0)
    if text == "\\z":
        return "\\Z"
    if text[1] in "pP":
        return "."  # a one-character class; only compiling matters here
    return text


def _non_re2(regex):
    """The name of a construct RE2 does not have (lookaround, backreference, ...) used in regex, or None."""
    i, n, in_class = 0, len(regex), False
    while i < n:
        c = regex[i]
        if c == "\\":
            nxt = regex[i + 1 : i + 2]
            if not in_class and nxt.isdigit() and nxt != "0":
                return "backreferences"
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
            i += 1
            if regex[i : i + 1] == "^":
                i += 1
            if regex[i : i + 1] == "]":  # a "]" first in a class is literal
                i += 1
            continue
        elif regex.startswith(("(?=", "(?!", "(?<=", "(?<!"), i):
            return "lookaround assertions"
        elif regex.startswith("(?>", i):
            return "atomic groups"
        elif regex.startswith("(?P=", i):
            return "backreferences"
        elif c in "*+?}" and regex[i + 1 : i + 2] == "+":
            return "possessive quantifiers"
        i += 1
    return None


def _regex_problem(regex):
    if not regex:
        return "required"
    construct = _non_re2(regex)
    if construct:
        return f'"{regex}": {construct} are not RE2 syntax (Envoy would reject the regex)'
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # FutureWarning for RE2's "[[:alpha:]]"
            re.compile(_RE2_ESCAPE.sub(_python_spelling, regex))
    except re.error as e:
        return f'"{regex}" is not a valid regex: {e}'
    return None


def _check_regex_matcher(rm):
    problem = _regex_problem(rm.regex)
    if problem:
        yield "regex", problem


def _check_regex_substitution(rs):
    if not rs.HasField("pattern"):
        yield "pattern", "required"


def _check_header_matcher(hm):
    problem = _header_name_problem(hm.name, pseudo_ok=True)  # ":authority", ":method" are matchable
    if problem:
        yield "name", problem
    which = hm.WhichOneof("header_match_specifier")
    if which in ("prefix_match", "suffix_match", "contains_match") and not getattr(hm, which):
        yield which, "must not be empty"


def _check_string_matcher(sm):
    which = sm.WhichOneof("match_pattern")
    if which is None:
        yield "", "one of exact, prefix, suffix, contains or safe_regex is required"
    elif which in ("prefix", "suffix", "contains") and not getattr(sm, which):
        yield which, "must not be empty"
    elif which == "safe_regex" and sm.ignore_case:
        yield "ignore_case", 'has no effect on safe_regex (Envoy rejects it; use "(?i)" in the regex)'


def _check_query_parameter_matcher(qm):
    if not qm.name:
        yield "name", "required"


def _check_route_action(ra):
    which = ra.WhichOneof("cluster_specifier")
    if which is None:
        yield "", "one of cluster or weighted_clusters is required"
    elif which == "cluster" and not ra.cluster:
        yield "cluster", "must not be empty"
    if ra.prefix_rewrite and ra.HasField("regex_rewrite"):
        yield "regex_rewrite", "cannot be used together with prefix_rewrite"
    if ra.WhichOneof("host_rewrite_specifier") == "host_rewrite_literal" and (
        not ra.host_rewrite_literal or _BAD_VALUE.search(ra.host_rewrite_literal)
    ):
        yield "host_rewrite_literal", "must be a non-empty host without CR, LF or NUL"
    yield from _durations(ra, "timeout")


def _check_route_weighted_clusters(wc):
    if not wc.clusters:
        yield "clusters", "at least one cluster is required"
    first = {}
    for i, cw in enumerate(wc.clusters):
        where = first.setdefault(cw.name, i)
        if where != i:
            yield f"clusters[{i}].name", f'cluster "{cw.name}" is already at clusters[{where}]'
    total = sum(cw.weight.value for cw in wc.clusters)
    if total > 2**32 - 1:
        yield "clusters", f"the weights add up to {total}, more than 4294967295"


def _check_route_cluster_weight(cw):
    if not cw.name:
        yield "name", "required"
    if not cw.HasField("weight"):
        yield "weight", "required (at least 1)"
    elif cw.weight.value < 1:
        yield "weight", "must be greater than 0"


def _check_retry_policy(rp):
    conditions = [c.strip() for c in rp.retry_on.split(",") if c.strip()]
    for c in conditions:
        if c not in RETRY_ON:
            yield "retry_on", f'unsupported retry condition "{c}" (supported: {", ".join(RETRY_ON)})'
    yield from _durations(rp, "per_try_timeout")
    if rp.host_selection_retry_max_attempts < 0:
        yield "host_selection_retry_max_attempts", "must not be negative"
    for i, code in enumerate(rp.retriable_status_codes):
        if not 100 <= code <= 599:
            yield f"retriable_status_codes[{i}]", f"{code} is not an HTTP status (100..599)"
    if rp.retriable_status_codes and "retriable-status-codes" not in conditions:
        yield "retriable_status_codes", 'has no effect unless retry_on includes "retriable-status-codes"'


def _check_retry_back_off(bo):
    if not bo.HasField("base_interval"):
        yield "base_interval", "required"
    yield from _durations(bo, "base_interval", "max_interval", positive=True)
    if bo.HasField("base_interval") and bo.HasField("max_interval"):
        base, most = _ms(bo.base_interval), _ms(bo.max_interval)
        if most < base:
            yield "max_interval", f"{_show_ms(most)} is less than base_interval ({_show_ms(base)})"


def _check_mirror_policy(mp):
    if not mp.cluster:
        yield "cluster", "required"


def _check_runtime_fraction(rf):
    if not rf.HasField("default_value"):
        yield "default_value", "required"


def _check_hash_policy(hp):
    if hp.WhichOneof("policy_specifier") is None:
        yield "", "one of header, cookie or connection_properties is required"


def _check_hash_header(h):
    problem = _header_name_problem(h.header_name, pseudo_ok=True)
    if problem:
        yield "header_name", problem


def _check_hash_cookie(c):
    if not c.name:
        yield "name", "required"
    yield from _durations(c, "ttl")


def _check_redirect(r):
    if r.port_redirect > 65535:
        yield "port_redirect", f"{r.port_redirect} is out of range (0..65535)"
    for name in ("scheme_redirect", "host_redirect", "path_redirect", "prefix_rewrite"):
        if _BAD_VALUE.search(getattr(r, name)):
            yield name, "must not contain CR, LF or NUL"


def _check_direct_response(dr):
    if dr.status == 0:
        yield "status", "required (100..599)"
    elif not 100 <= dr.status <= 599:
        yield "status", f"{dr.status} is out of range (100..599)"
    which = dr.body.WhichOneof("specifier")
    size = len(dr.body.inline_string.encode()) if which == "inline_string" else len(dr.body.inline_bytes)
    if size > MAX_DIRECT_RESPONSE_BODY:
        yield "body", f"{size} bytes is more than {MAX_DIRECT_RESPONSE_BODY} (Envoy's default limit)"


def _check_header_value_option(o):
    if not o.HasField("header"):
        yield "header", "required"
    if o.HasField("append") and o.append_action != 0:  # 0: APPEND_IF_EXISTS_OR_ADD, what append means
        yield "append_action", 'cannot be used together with the deprecated "append" (as in Envoy)'


def _check_header_value(hv):
    problem = _header_name_problem(hv.key, pseudo_ok=True)
    if problem is None and not _modifiable(hv.key):
        problem = f'"{hv.key}" cannot be set ({_UNMODIFIABLE})'
    if problem:
        yield "key", problem
    if _BAD_VALUE.search(hv.value):
        yield "value", "must not contain CR, LF or NUL"
    elif "%" in hv.value:
        # Envoy reads %...% as a substitution command (%DOWNSTREAM_REMOTE_ADDRESS%);
        # meshcore has none, and would otherwise send the text literally.
        yield "value", 'substitution commands ("%...%") are not supported, so "%" may not appear in a value'


# -- clusters


def _check_cluster(c):
    if not c.name:
        yield "name", "required"
    if c.HasField("connect_timeout") and _ms(c.connect_timeout) <= 0:
        yield "connect_timeout", "must be greater than 0"
    if c.HasField("ring_hash_lb_config") and c.lb_policy != cluster_pb2.Cluster.RING_HASH:
        yield "ring_hash_lb_config", "is only used with lb_policy RING_HASH"
    options = c.typed_extension_protocol_options.get(UPSTREAM_HTTP_OPTIONS)
    if (
        c.HasField("max_requests_per_connection")
        and options is not None
        and unpack(options).common_http_protocol_options.HasField("max_requests_per_connection")
    ):
        yield (
            "max_requests_per_connection",
            f'cannot be set together with typed_extension_protocol_options["{UPSTREAM_HTTP_OPTIONS}"]'
            ".common_http_protocol_options.max_requests_per_connection (as in Envoy)",
        )


def _check_load_assignment(la):
    if not la.cluster_name:  # Envoy requires it too
        yield "cluster_name", "required"


def _check_lb_endpoint(lbe):
    if not lbe.HasField("endpoint"):
        yield "endpoint", "required"
    if lbe.HasField("load_balancing_weight") and lbe.load_balancing_weight.value < 1:
        yield "load_balancing_weight", "must be at least 1"


def _check_endpoint(ep):
    if not ep.HasField("address"):
        yield "address", "required"
    elif ep.address.socket_address.port_value == 0:
        yield "address.socket_address.port_value", "required (1..65535)"


def _check_ring_hash(rh):
    low = rh.minimum_ring_size.value if rh.HasField("minimum_ring_size") else 1024  # Envoy's defaults
    high = rh.maximum_ring_size.value if rh.HasField("maximum_ring_size") else MAX_RING_SIZE
    for name, value in (("minimum_ring_size", low), ("maximum_ring_size", high)):
        if value > MAX_RING_SIZE:
            yield name, f"{value} is more than {MAX_RING_SIZE} (8M)"
    if low > high:
        yield "minimum_ring_size", f"{low} is more than maximum_ring_size ({high})"


def _check_circuit_breakers(cb):
    first = {}
    for i, t in enumerate(cb.thresholds):
        where = first.setdefault(t.priority, i)
        if where != i:
            name = t.DESCRIPTOR.fields_by_name["priority"].enum_type.values_by_number[t.priority].name
            yield f"thresholds[{i}]", f"priority {name} already has thresholds[{where}] (one per priority)"


_PERCENTS = ("max_ejection_percent", "enforcing_consecutive_5xx", "enforcing_consecutive_gateway_failure")


def _check_outlier_detection(od):
    for name in _PERCENTS:
        if od.HasField(name) and getattr(od, name).value > 100:
            yield name, f"{getattr(od, name).value} is out of range (0..100)"
    yield from _durations(od, "interval", "base_ejection_time", "max_ejection_time", positive=True)
    base = _ms(od.base_ejection_time) if od.HasField("base_ejection_time") else 30_000  # Envoy's defaults
    most = _ms(od.max_ejection_time) if od.HasField("max_ejection_time") else 300_000
    if base > most:
        yield "base_ejection_time", f"{_show_ms(base)} is longer than max_ejection_time ({_show_ms(most)})"


def _check_upstream_http_options(o):
    if o.WhichOneof("upstream_protocol_options") is None:
        yield "", "one of explicit_http_config or use_downstream_protocol_config is required"


def _check_explicit_http_config(e):
    if e.WhichOneof("protocol_config") is None:
        yield "http_protocol_options", "required (meshcore speaks HTTP/1.1 to upstreams)"


def _check_log_format(f):
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


def _check_file_access_log(fal):
    if not fal.path:
        yield "path", "required"


def _check_transport_socket(ts):
    if not ts.HasField("typed_config"):
        yield "", "transport socket has no typed_config"


def _check_common_tls(c):
    if len(c.tls_certificates) + len(c.tls_certificate_sds_secret_configs) > 1:
        yield "tls_certificates", "one certificate only"
    p = c.tls_params
    if p.tls_maximum_protocol_version and p.tls_minimum_protocol_version > p.tls_maximum_protocol_version:
        yield "tls_params", "tls_minimum_protocol_version is above tls_maximum_protocol_version"
    if p.tls_minimum_protocol_version in (1, 2) or p.tls_maximum_protocol_version in (1, 2):
        yield "tls_params", "TLS 1.0 and 1.1 are not supported (TLSv1_2 or TLSv1_3)"


def _check_downstream_tls(d):
    c = d.common_tls_context
    if not c.tls_certificates and not c.tls_certificate_sds_secret_configs:
        yield "common_tls_context", "a downstream TLS context needs a certificate (tls_certificates or a secret)"
    if d.require_client_certificate.value and c.WhichOneof("validation_context_type") is None:
        yield "require_client_certificate", "needs a validation context (trusted_ca) to verify clients against"


def _check_tls_certificate(t):
    if not t.HasField("certificate_chain"):
        yield "certificate_chain", "required"
    if not t.HasField("private_key"):
        yield "private_key", "required"


def _check_san_matcher(m):
    if m.san_type != 3:  # URI
        yield "san_type", "only URI (SPIFFE IDs) is supported"
    if m.matcher.WhichOneof("match_pattern") == "safe_regex":
        yield "matcher", "safe_regex is not supported for SAN matching"


def _check_data_source(d):
    if d.WhichOneof("specifier") == "filename" and not os.path.isfile(d.filename):
        yield "filename", f"no such file: {d.filename}"


def _check_secret(s):
    if not s.name:
        yield "name", "required"
    if s.WhichOneof("type") not in ("tls_certificate", "validation_context"):
        yield "", "a secret must hold tls_certificate or validation_context"


def _check_sds_config(c):
    if c.HasField("sds_config"):
        yield "sds_config", "dynamic SDS is not supported: use static_resources.secrets by name"


# -- RBAC (envoy.filters.http.rbac, envoy.filters.network.rbac)


def _check_rbac_filter(f):
    # Envoy enforces nothing when `rules` is absent; meshcore's core would read
    # an absent `rules` as an ALLOW with no policy (deny all), so it is required.
    if not f.HasField("rules"):
        yield "rules", "required (without rules Envoy enforces nothing: leave the filter out instead)"


def _check_network_rbac(f):
    yield from _check_rbac_filter(f)
    if not f.stat_prefix:
        yield "stat_prefix", "required"


def _check_rbac_rules(r):
    for name in r.policies:
        if not name:
            yield "policies", "a policy name must not be empty"


def _check_rbac_policy(p):
    if not p.permissions:
        yield "permissions", "required (at least one; {any: true} matches everything)"
    if not p.principals:
        yield "principals", "required (at least one; {any: true} matches everyone)"


def _check_permission(p):
    which = p.WhichOneof("rule")
    if which is None:
        yield "", "one rule is required (and_rules, or_rules, not_rule, any, header, url_path, destination_ip, " \
                  "destination_port, destination_port_range, requested_server_name, metadata)"
    elif which == "destination_port" and p.destination_port > 65535:
        yield "destination_port", f"{p.destination_port} is out of range (0..65535)"
    elif which == "any" and not p.any:
        yield "any", "must be true (as in Envoy)"


def _check_principal(p):
    which = p.WhichOneof("identifier")
    if which is None:
        yield "", "one identifier is required (and_ids, or_ids, not_id, any, authenticated, direct_remote_ip, " \
                  "remote_ip, source_ip, header, url_path, metadata)"
    elif which == "any" and not p.any:
        yield "any", "must be true (as in Envoy)"


def _check_permission_set(s):
    if not s.rules:
        yield "rules", "at least one rule is required"


def _check_principal_set(s):
    if not s.ids:
        yield "ids", "at least one identifier is required"


def _check_cidr(c):
    try:
        ip = ipaddress.ip_address(c.address_prefix)
    except ValueError:
        yield "address_prefix", f'"{c.address_prefix}" is not an IP address'
        return
    if c.HasField("prefix_len") and c.prefix_len.value > ip.max_prefixlen:
        yield "prefix_len", f"{c.prefix_len.value} is out of range (0..{ip.max_prefixlen})"


def _check_port_range(r):
    if not 0 <= r.start < r.end <= 65536:
        yield "", f"[{r.start}, {r.end}) is not a port range (start < end, within 0..65536)"


def _check_path_matcher(p):
    if not p.HasField("path"):
        yield "path", "required"


def _check_metadata_matcher(m):
    if m.invert:
        # meshcore has no dynamic metadata: its core never matches a metadata
        # matcher, so an inverted one would have to match always.
        yield "invert", "not supported (meshcore has no dynamic metadata; metadata matchers never match)"


# ---- the table -------------------------------------------------------------------

_HEADER_OPS = (
    "request_headers_to_add",
    "request_headers_to_remove",
    "response_headers_to_add",
    "response_headers_to_remove",
)

SCHEMA = {
    "envoy.config.bootstrap.v3.Bootstrap": Rule(("node", "static_resources", "admin")),
    "envoy.config.bootstrap.v3.Bootstrap.StaticResources": Rule(("listeners", "clusters", "secrets")),
    "envoy.config.core.v3.Node": Rule(("id", "cluster", "metadata")),
    "envoy.config.bootstrap.v3.Admin": Rule(("address", "access_log_path", "access_log")),
    "envoy.config.accesslog.v3.AccessLog": Rule(
        ("name", "typed_config"),
        anys={"typed_config": AnyOf("access logger", ACCESS_LOGGERS)},
        check=_needs_typed_config("access logger"),
    ),
    "envoy.extensions.access_loggers.file.v3.FileAccessLog": Rule(
        ("path", "log_format"), check=_check_file_access_log
    ),
    "envoy.extensions.access_loggers.stream.v3.StdoutAccessLog": Rule(("log_format",)),
    "envoy.extensions.access_loggers.stream.v3.StderrAccessLog": Rule(("log_format",)),
    "envoy.config.core.v3.SubstitutionFormatString": Rule(
        ("text_format_source", "json_format", "text_format"), check=_check_log_format
    ),
    "envoy.config.core.v3.Address": Rule(("socket_address",), check=_check_address),
    "envoy.config.core.v3.SocketAddress": Rule(
        ("address", "port_value", "protocol"), enums={"protocol": ("TCP",)}, check=_check_socket_address
    ),
    # -- listeners
    "envoy.config.listener.v3.Listener": Rule(
        ("name", "address", "stat_prefix", "tcp_backlog_size", "enable_reuse_port", "filter_chains",
         "listener_filters", "listener_filters_timeout", "traffic_direction"),
        check=_check_listener,
    ),
    "envoy.config.listener.v3.ListenerFilter": Rule(
        ("name", "typed_config"),
        anys={"typed_config": AnyOf("listener filter", {TLS_INSPECTOR: False})},
        check=_needs_typed_config("listener filter"),
    ),
    TLS_INSPECTOR: Rule(()),
    "envoy.config.listener.v3.FilterChain": Rule(
        ("filters", "filter_chain_match", "transport_socket", "transport_socket_connect_timeout", "name"),
        check=_check_filter_chain,
    ),
    "envoy.config.listener.v3.FilterChainMatch": Rule(("transport_protocol",)),
    "envoy.config.core.v3.TransportSocket": Rule(
        ("name", "typed_config"),
        anys={"typed_config": AnyOf("transport socket", {DOWNSTREAM_TLS: False, UPSTREAM_TLS: False})},
        check=_check_transport_socket,
    ),
    DOWNSTREAM_TLS: Rule(("common_tls_context", "require_client_certificate"), check=_check_downstream_tls),
    UPSTREAM_TLS: Rule(("common_tls_context", "sni")),
    _TLS + "CommonTlsContext": Rule(
        ("tls_params", "tls_certificates", "tls_certificate_sds_secret_configs", "validation_context",
         "validation_context_sds_secret_config", "combined_validation_context", "alpn_protocols"),
        check=_check_common_tls,
    ),
    _TLS + "CommonTlsContext.CombinedCertificateValidationContext": Rule(
        ("default_validation_context", "validation_context_sds_secret_config")
    ),
    _TLS + "TlsParameters": Rule(
        ("tls_minimum_protocol_version", "tls_maximum_protocol_version", "cipher_suites")
    ),
    _TLS + "TlsCertificate": Rule(("certificate_chain", "private_key"), check=_check_tls_certificate),
    _TLS + "CertificateValidationContext": Rule(
        ("trusted_ca", "match_typed_subject_alt_names", "match_subject_alt_names")
    ),
    _TLS + "SubjectAltNameMatcher": Rule(("san_type", "matcher"), check=_check_san_matcher),
    _TLS + "SdsSecretConfig": Rule(("name", "sds_config"), check=_check_sds_config),
    _TLS + "Secret": Rule(("name", "tls_certificate", "validation_context"), check=_check_secret),
    "envoy.config.listener.v3.Filter": Rule(
        ("name", "typed_config"),
        anys={"typed_config": AnyOf("filter", NETWORK_FILTERS)},
        check=_check_network_filter,
    ),
    TYPED_STRUCT: Rule(("type_url", "value")),  # which filter may use it: _check_typed_struct_filter
    UDPA_TYPED_STRUCT: Rule(("type_url", "value")),
    CONNECTION_LIMIT: Rule(("stat_prefix", "max_connections"), check=_check_connection_limit),
    TCP_PROXY: Rule(
        ("stat_prefix", "cluster", "weighted_clusters", "idle_timeout", "max_connect_attempts", "access_log"),
        check=_check_tcp_proxy,
    ),
    TCP_PROXY + ".WeightedCluster": Rule(("clusters",), check=_check_weighted_clusters),
    # -- RBAC: evaluated in the core (route/rbac.c). Metadata matchers (JWT
    # claims, other filters' dynamic metadata) never match: meshcore has no
    # filter that writes dynamic metadata. requested_server_name: see docs.
    HTTP_RBAC: Rule(("rules", "shadow_rules_stat_prefix"), check=_check_rbac_filter),
    NETWORK_RBAC: Rule(("rules", "stat_prefix", "shadow_rules_stat_prefix"), check=_check_network_rbac),
    _RBAC + "RBAC": Rule(("action", "policies"), enums={"action": ("ALLOW", "DENY")}, check=_check_rbac_rules),
    _RBAC + "Policy": Rule(("permissions", "principals"), check=_check_rbac_policy),
    _RBAC + "Permission": Rule(
        ("and_rules", "or_rules", "not_rule", "any", "header", "url_path", "destination_ip", "destination_port",
         "destination_port_range", "requested_server_name", "metadata"),
        check=_check_permission,
    ),
    _RBAC + "Permission.Set": Rule(("rules",), check=_check_permission_set),
    _RBAC + "Principal": Rule(
        ("and_ids", "or_ids", "not_id", "any", "authenticated", "source_ip", "direct_remote_ip", "remote_ip",
         "header", "url_path", "metadata"),
        check=_check_principal,
    ),
    _RBAC + "Principal.Set": Rule(("ids",), check=_check_principal_set),
    _RBAC + "Principal.Authenticated": Rule(("principal_name",)),
    "envoy.config.core.v3.CidrRange": Rule(("address_prefix", "prefix_len"), check=_check_cidr),
    "envoy.type.v3.Int32Range": Rule(("start", "end"), check=_check_port_range),
    "envoy.type.matcher.v3.PathMatcher": Rule(("path",), check=_check_path_matcher),
    "envoy.type.matcher.v3.MetadataMatcher": Rule(("filter", "path", "value", "invert"),
                                                  check=_check_metadata_matcher),
    "envoy.type.matcher.v3.MetadataMatcher.PathSegment": Rule(("key",)),
    "envoy.type.matcher.v3.ValueMatcher": Rule(("string_match", "or_match", "list_match")),
    "envoy.type.matcher.v3.OrMatcher": Rule(("value_matchers",)),
    "envoy.type.matcher.v3.ListMatcher": Rule(("one_of",)),
    TCP_PROXY + ".WeightedCluster.ClusterWeight": Rule(("name", "weight"), check=_check_cluster_weight),
    # -- http_connection_manager (access_log: not yet)
    HCM: Rule(
        (
            "stat_prefix",
            "codec_type",
            "route_config",
            "http_filters",
            "common_http_protocol_options",
            "stream_idle_timeout",
            "request_timeout",
            "request_headers_timeout",
            "max_request_headers_kb",
            "generate_request_id",
            "preserve_external_request_id",
            "use_remote_address",
            "xff_num_trusted_hops",
            "server_name",
            "http_protocol_options",
            "access_log",
            "tracing",
        ),
        enums={"codec_type": ("AUTO", "HTTP1")},
        nested={
            "common_http_protocol_options": Rule(
                ("idle_timeout", "max_requests_per_connection", "max_headers_count"), check=_check_http_options
            ),
            "http_protocol_options": Rule(("accept_http_10",)),
            "tracing": Rule(("random_sampling", "provider"), check=_check_tracing),
        },
        check=_check_hcm,
    ),
    "envoy.type.v3.Percent": Rule(("value",)),
    "envoy.config.trace.v3.Tracing.Http": Rule(
        ("name", "typed_config"),
        anys={"typed_config": AnyOf("tracer", {OTEL_TRACER: False, ZIPKIN_TRACER: False})},
        check=_needs_typed_config("tracer"),
    ),
    OTEL_TRACER: Rule(("service_name", "http_service", "grpc_service"), check=_check_otel_tracer),
    "envoy.config.core.v3.HttpService": Rule(("http_uri",)),
    "envoy.config.core.v3.HttpUri": Rule(("uri", "cluster", "timeout"), check=_check_http_uri),
    ZIPKIN_TRACER: Rule(
        ("collector_cluster", "collector_endpoint", "collector_endpoint_version", "collector_hostname",
         "trace_id_128bit", "shared_span_context"),
        enums={"collector_endpoint_version": ("HTTP_JSON",)},
        check=_check_zipkin_tracer,
    ),
    _HCM_PKG + "HttpFilter": Rule(
        ("name", "typed_config"),
        anys={"typed_config": AnyOf("http filter", HTTP_FILTERS)},
        check=_check_http_filter,
    ),
    ROUTER: Rule(()),  # any router setting is one we do not implement
    HTTP_FAULT: Rule(("delay", "abort")),  # empty is fine: Istio's filter-level config, routes set the faults
    "envoy.extensions.filters.common.fault.v3.FaultDelay": Rule(
        ("fixed_delay", "percentage"), check=_check_fault_delay
    ),
    "envoy.extensions.filters.http.fault.v3.FaultAbort": Rule(("http_status", "percentage"), check=_check_fault_abort),
    "envoy.type.v3.FractionalPercent": Rule(
        ("numerator", "denominator"),
        enums={"denominator": tuple(_DENOMINATORS)},
        check=_check_fractional_percent,
    ),
    # -- routes
    _ROUTE + "RouteConfiguration": Rule(
        ("name", "virtual_hosts", *_HEADER_OPS, "validate_clusters"),  # validate_clusters: we always do
        check=_check_route_config,
    ),
    _ROUTE + "VirtualHost": Rule(
        ("name", "domains", "routes", *_HEADER_OPS, "retry_policy"), check=_check_virtual_host
    ),
    _ROUTE + "Route": Rule(
        ("name", "match", "route", "redirect", "direct_response", *_HEADER_OPS, "typed_per_filter_config",
         "decorator"),
        anys={"typed_per_filter_config": AnyOf("per-filter config", {HTTP_FAULT: False})},
        keys={"typed_per_filter_config": (FAULT_FILTER_NAME,)},
        check=_check_route,
    ),
    _ROUTE + "Decorator": Rule(("operation",)),  # names the route's spans
    _ROUTE + "RouteMatch": Rule(
        (
            "prefix",
            "path",
            "safe_regex",
            "path_separated_prefix",
            "case_sensitive",
            "headers",
            "query_parameters",
        ),
        check=_check_route_match,
    ),
    "envoy.type.matcher.v3.RegexMatcher": Rule(("google_re2", "regex"), check=_check_regex_matcher),
    "envoy.type.matcher.v3.RegexMatcher.GoogleRE2": Rule(()),
    "envoy.type.matcher.v3.RegexMatchAndSubstitute": Rule(
        ("pattern", "substitution"), check=_check_regex_substitution
    ),
    _ROUTE + "HeaderMatcher": Rule(
        (
            "name",
            "string_match",
            "present_match",
            "invert_match",
            # deprecated, still written by Istio and older configs
            "exact_match",
            "prefix_match",
            "suffix_match",
            "contains_match",
            "safe_regex_match",
        ),
        check=_check_header_matcher,
    ),
    _ROUTE + "QueryParameterMatcher": Rule(
        ("name", "string_match", "present_match"), check=_check_query_parameter_matcher
    ),
    "envoy.type.matcher.v3.StringMatcher": Rule(
        ("exact", "prefix", "suffix", "contains", "safe_regex", "ignore_case"), check=_check_string_matcher
    ),
    _ROUTE + "RouteAction": Rule(
        (
            "cluster",
            "weighted_clusters",
            "timeout",
            "retry_policy",
            "prefix_rewrite",
            "regex_rewrite",
            "host_rewrite_literal",
            "request_mirror_policies",
            "hash_policy",
        ),
        check=_check_route_action,
    ),
    _ROUTE + "WeightedCluster": Rule(("clusters",), check=_check_route_weighted_clusters),
    _ROUTE + "WeightedCluster.ClusterWeight": Rule(("name", "weight"), check=_check_route_cluster_weight),
    _ROUTE + "RetryPolicy": Rule(
        (
            "retry_on",
            "num_retries",
            "per_try_timeout",
            "retry_back_off",
            "retry_host_predicate",
            "host_selection_retry_max_attempts",
            "retriable_status_codes",
        ),
        check=_check_retry_policy,
    ),
    _ROUTE + "RetryPolicy.RetryBackOff": Rule(("base_interval", "max_interval"), check=_check_retry_back_off),
    _ROUTE + "RetryPolicy.RetryHostPredicate": Rule(
        ("name", "typed_config"),
        anys={"typed_config": AnyOf("retry host predicate", {PREVIOUS_HOSTS: False})},
        check=_needs_typed_config("retry host predicate"),
    ),
    PREVIOUS_HOSTS: Rule(()),
    _ROUTE + "RouteAction.RequestMirrorPolicy": Rule(("cluster", "runtime_fraction"), check=_check_mirror_policy),
    "envoy.config.core.v3.RuntimeFractionalPercent": Rule(("default_value",), check=_check_runtime_fraction),
    _ROUTE + "RouteAction.HashPolicy": Rule(
        ("header", "cookie", "connection_properties", "terminal"), check=_check_hash_policy
    ),
    _ROUTE + "RouteAction.HashPolicy.Header": Rule(("header_name",), check=_check_hash_header),
    _ROUTE + "RouteAction.HashPolicy.Cookie": Rule(("name", "ttl", "path"), check=_check_hash_cookie),
    _ROUTE + "RouteAction.HashPolicy.ConnectionProperties": Rule(("source_ip",)),
    _ROUTE + "RedirectAction": Rule(
        (
            "scheme_redirect",
            "https_redirect",
            "host_redirect",
            "port_redirect",
            "path_redirect",
            "prefix_rewrite",
            "response_code",
            "strip_query",
        ),
        check=_check_redirect,
    ),
    _ROUTE + "DirectResponseAction": Rule(
        ("status", "body"),
        nested={"body": Rule(("inline_string", "inline_bytes"))},
        check=_check_direct_response,
    ),
    # Certificates, keys and trust bundles: inline or from a file (read by
    # the compiler, in Python; the core never opens files).
    "envoy.config.core.v3.DataSource": Rule(("inline_string", "inline_bytes", "filename"), check=_check_data_source),
    "envoy.config.core.v3.HeaderValueOption": Rule(
        ("header", "append", "append_action"), check=_check_header_value_option
    ),
    "envoy.config.core.v3.HeaderValue": Rule(("key", "value"), check=_check_header_value),
    # -- clusters
    _CLUSTER + "Cluster": Rule(
        (
            "name",
            "type",
            "connect_timeout",
            "lb_policy",
            "load_assignment",
            "ring_hash_lb_config",
            "circuit_breakers",
            "outlier_detection",
            "typed_extension_protocol_options",
            "max_requests_per_connection",  # deprecated; or in typed_extension_protocol_options
            "transport_socket",
            "metadata",  # filter_metadata.istio.services: the destination_service labels
        ),
        enums={"type": ("STATIC",), "lb_policy": ("ROUND_ROBIN", "LEAST_REQUEST", "RANDOM", "RING_HASH")},
        anys={"typed_extension_protocol_options": AnyOf("protocol options", {UPSTREAM_HTTP_OPTIONS: False})},
        keys={"typed_extension_protocol_options": (UPSTREAM_HTTP_OPTIONS,)},
        check=_check_cluster,
    ),
    "envoy.config.core.v3.Metadata": Rule(("filter_metadata",)),
    _CLUSTER + "Cluster.RingHashLbConfig": Rule(
        ("minimum_ring_size", "maximum_ring_size", "hash_function"),
        enums={"hash_function": ("XX_HASH",)},
        check=_check_ring_hash,
    ),
    _CLUSTER + "CircuitBreakers": Rule(("thresholds",), check=_check_circuit_breakers),
    _CLUSTER + "CircuitBreakers.Thresholds": Rule(
        ("priority", "max_connections", "max_pending_requests", "max_requests", "max_retries"),
        enums={"priority": ("DEFAULT",)},
    ),
    _CLUSTER + "OutlierDetection": Rule(
        (
            "consecutive_5xx",
            "consecutive_gateway_failure",
            "interval",
            "base_ejection_time",
            "max_ejection_percent",
            "max_ejection_time",
            "enforcing_consecutive_5xx",
            "enforcing_consecutive_gateway_failure",
        ),
        check=_check_outlier_detection,
    ),
    UPSTREAM_HTTP_OPTIONS: Rule(
        ("common_http_protocol_options", "explicit_http_config", "use_downstream_protocol_config"),
        check=_check_upstream_http_options,
    ),
    UPSTREAM_HTTP_OPTIONS + ".ExplicitHttpConfig": Rule(
        ("http_protocol_options",), check=_check_explicit_http_config
    ),
    UPSTREAM_HTTP_OPTIONS + ".UseDownstreamHttpConfig": Rule(("http_protocol_options",)),
    # In a cluster; the http_connection_manager's own rows are in its `nested`.
    "envoy.config.core.v3.HttpProtocolOptions": Rule(
        ("idle_timeout", "max_requests_per_connection"), check=_check_http_options
    ),
    "envoy.config.core.v3.Http1ProtocolOptions": Rule(()),  # HTTP/1.1 with its defaults: set as {}
    "envoy.config.endpoint.v3.ClusterLoadAssignment": Rule(
        ("cluster_name", "endpoints"), check=_check_load_assignment
    ),
    "envoy.config.endpoint.v3.LocalityLbEndpoints": Rule(("lb_endpoints",)),
    "envoy.config.endpoint.v3.LbEndpoint": Rule(
        ("endpoint", "load_balancing_weight"), check=_check_lb_endpoint
    ),
    "envoy.config.endpoint.v3.Endpoint": Rule(("address",), check=_check_endpoint),
}


# ---- cluster references (checked across resources by bootstrap.py) ---------------------


def _tcp_proxy_clusters(tp):
    if tp.WhichOneof("cluster_specifier") == "cluster":
        yield "cluster", tp.cluster
    for i, cw in enumerate(tp.weighted_clusters.clusters):
        yield f"weighted_clusters.clusters[{i}].name", cw.name


def _hcm_clusters(hcm):
    for path, route in _routes(hcm.route_config):
        if route.WhichOneof("action") != "route":
            continue
        ra, base = route.route, f"route_config.{path}.route"
        if ra.WhichOneof("cluster_specifier") == "cluster":
            yield f"{base}.cluster", ra.cluster
        for i, cw in enumerate(ra.weighted_clusters.clusters):
            yield f"{base}.weighted_clusters.clusters[{i}].name", cw.name
        for i, mirror in enumerate(ra.request_mirror_policies):
            yield f"{base}.request_mirror_policies[{i}].cluster", mirror.cluster
    if hcm.HasField("tracing") and hcm.tracing.provider.HasField("typed_config"):
        tracer = unpack(hcm.tracing.provider.typed_config)
        base = "tracing.provider.typed_config"
        if type_name(hcm.tracing.provider.typed_config.type_url) == OTEL_TRACER:
            yield f"{base}.http_service.http_uri.cluster", tracer.http_service.http_uri.cluster
        else:
            yield f"{base}.collector_cluster", tracer.collector_cluster


# typed_config type -> function yielding (relative path, cluster name) for each
# cluster the filter refers to; used to check that those clusters exist.
CLUSTER_REFS = {TCP_PROXY: _tcp_proxy_clusters, HCM: _hcm_clusters}


def unpack(any_msg):
    """The message inside an Any, as an instance of its generated class
    (xds_types.unpack; a Violation for an unknown type)."""
    try:
        return xds_types.unpack(any_msg)
    except UnknownType as e:
        raise Violation("", str(e)) from None


def any_slot(message_full_name: str, field_name: str) -> AnyOf | None:
    rule = SCHEMA.get(message_full_name)
    return rule.anys.get(field_name) if rule else None


def allowed_keys(message_full_name: str, field_name: str) -> tuple | None:
    rule = SCHEMA.get(message_full_name)
    return rule.keys.get(field_name) if rule else None


def unsupported_key(key, allowed) -> str:
    return f'unsupported key "{key}" (supported: {", ".join(allowed)})'


def unsupported_extension(slot: AnyOf, name: str, type_url: str, known: bool) -> str:
    """The message for a typed_config we do not accept.

    A real Envoy type is named by its extension name alone (the user knows
    what it is); an unresolvable @type also shows the URL, which is likely
    the mistake. So does a map entry (known=False), whose key names the
    filter the config is for rather than its type.
    """
    if known and name:
        return f"unsupported {slot.noun} {name}"
    return f"unsupported {slot.noun} {name} ({type_url})" if name else f"unsupported {slot.noun} {type_url}"


# ---- the walker --------------------------------------------------------------------


def _join(path: str, name: str) -> str:
    if not name:
        return path
    if not path or name.startswith("["):
        return path + name
    return f"{path}.{name}"


def _is_map(fd) -> bool:
    return fd.message_type is not None and fd.message_type.GetOptions().map_entry


def walk(msg, path: str = "", rule: Rule | None = None) -> None:
    """Raise Violation for the first field of `msg` (recursively) outside the supported subset.

    `rule` overrides SCHEMA's row for msg's type (a parent's Rule.nested).
    """
    full = msg.DESCRIPTOR.full_name
    if full in LEAVES:
        return
    if rule is None:
        rule = SCHEMA.get(full, Rule(()))  # unknown message type: nothing in it is supported
    listed = msg.ListFields()
    for fd, _ in listed:
        if fd.name not in rule.fields:
            supported = ", ".join(rule.fields) or "none"
            raise Violation(path, f'unsupported field "{fd.name}" (supported: {supported})')
    for fd, value in listed:
        fpath = _join(path, fd.name)
        if _is_map(fd):
            allowed = rule.keys.get(fd.name)
            for key in sorted(value):
                if allowed is not None and key not in allowed:
                    raise Violation(fpath, unsupported_key(key, allowed))
            value_fd = fd.message_type.fields_by_name["value"]
            items = [(f'{fpath}["{key}"]', value[key], key) for key in sorted(value)]
        else:
            value_fd = fd
            if fd.is_repeated:
                items = [(_join(fpath, f"[{i}]"), v, None) for i, v in enumerate(value)]
            else:
                items = [(fpath, value, None)]
        for ipath, item, key in items:
            if value_fd.enum_type is not None and fd.name in rule.enums:
                allowed = rule.enums[fd.name]
                known = value_fd.enum_type.values_by_number.get(item)
                vname = known.name if known else str(item)
                if vname not in allowed:
                    raise Violation(ipath, f"unsupported value {vname} (supported: {', '.join(allowed)})")
            elif value_fd.message_type is not None and value_fd.message_type.full_name == "google.protobuf.Any":
                slot = rule.anys.get(fd.name)
                if slot is None:  # an Any field the table lets through must say what it may hold
                    raise Violation(path, f'unsupported field "{fd.name}"')
                if key is None:  # a filter: named by a sibling field; errors name the filter
                    _walk_any(slot, getattr(msg, slot.name_field, ""), item, path, ipath, True)
                else:  # a map entry: named by its key; errors name the entry
                    _walk_any(slot, key, item, ipath, ipath, False)
            elif value_fd.message_type is not None:
                walk(item, ipath, rule.nested.get(fd.name))
    if rule.check:
        for rel, text in rule.check(msg):
            raise Violation(_join(path, rel), text)


def _walk_any(slot, name, any_msg, where, path, by_name):
    desc = find_type(any_msg.type_url)
    if desc is None or desc.full_name not in slot.types:
        known = by_name and desc is not None
        raise Violation(where, unsupported_extension(slot, name, any_msg.type_url, known))
    walk(unpack(any_msg), path)


# ---- documentation -------------------------------------------------------------------


def _describe(rule: Rule) -> str:
    parts = []
    for name in rule.fields:
        label = name
        if name in rule.keys:
            label += f" [{' | '.join(rule.keys[name])}]"
        if name in rule.enums:
            label += f" ({' | '.join(rule.enums[name])})"
        elif name in rule.anys:
            slot = rule.anys[name]
            kinds = ", ".join(
                t.rsplit(".", 1)[-1] + (" [terminal]" if terminal else "") for t, terminal in slot.types.items()
            )
            label += f" ({slot.noun}: {kinds})"
        parts.append(label)
    return ", ".join(parts) if parts else "(no fields)"


def describe_supported() -> str:
    """The supported subset as text, one message per line, generated from SCHEMA."""
    lines = []
    for full, rule in SCHEMA.items():
        lines.append(f"{full}: {_describe(rule)}")
        for name, inner in rule.nested.items():
            lines.append(f"{full}, in {name}: {_describe(inner)}")
    return "\n".join(lines)


SUPPORTED = describe_supported()
