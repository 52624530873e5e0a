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

import importlib
import ipaddress
import pkgutil
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

# Import every message type that may appear inside an Any, so that json_format
# can resolve "@type" while parsing. HTTP types are registered even though no
# HTTP filter is supported yet: a config using them then fails with
# "unsupported filter ..." rather than an unresolvable type.
from envoy.extensions.access_loggers.file.v3 import file_pb2  # noqa: F401
from envoy.extensions.access_loggers.stream.v3 import stream_pb2  # noqa: F401
from envoy.extensions.filters.http.fault.v3 import fault_pb2  # noqa: F401
from envoy.extensions.filters.http.router.v3 import router_pb2  # noqa: F401
from envoy.extensions.filters.network.connection_limit.v3 import connection_limit_pb2  # noqa: F401
from envoy.extensions.filters.network.http_connection_manager.v3 import (  # noqa: F401
    http_connection_manager_pb2,
)
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2  # noqa: F401
from google.protobuf import any_pb2, descriptor_pool, message_factory

TCP_PROXY = "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
CONNECTION_LIMIT = "envoy.extensions.filters.network.connection_limit.v3.ConnectionLimit"


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
    sibling field that names the extension, used in error messages.
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
    anys:   field name -> AnyOf for google.protobuf.Any fields.
    check:  value rules for the message; yields (relative path, text). Runs
            after the fields below it have been walked, so a child's
            "unsupported" is reported before a parent's consequence of it.
    """

    fields: tuple
    enums: dict = field(default_factory=dict)
    anys: dict = field(default_factory=dict)
    check: Callable[[object], Iterator[tuple]] | None = None


# Messages whose content is free-form (Struct) or a single value (Duration,
# wrappers): not walked further. Whether they may be set is the parent's rule.
LEAVES = frozenset(
    {
        "google.protobuf.Struct",
        "google.protobuf.Value",
        "google.protobuf.ListValue",
        "google.protobuf.Duration",
    }
    | {
        f"google.protobuf.{t}Value"
        for t in ("Bool", "Int32", "UInt32", "Int64", "UInt64", "Float", "Double", "String")
    }
)

# typed_config types allowed in a listener's filter chain (True = terminal).
NETWORK_FILTERS = {CONNECTION_LIMIT: False, TCP_PROXY: True}

ACCESS_LOGGERS = {
    "envoy.extensions.access_loggers.file.v3.FileAccessLog": False,
    "envoy.extensions.access_loggers.stream.v3.StdoutAccessLog": False,
    "envoy.extensions.access_loggers.stream.v3.StderrAccessLog": False,
}


# ---- value rules -------------------------------------------------------------


def _ms(d) -> float:
    return d.seconds * 1000 + d.nanos / 1e6


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
    if not ls.HasField("address"):
        yield "address", "required"
    if len(ls.filter_chains) != 1:
        yield "filter_chains", f"exactly one filter chain is supported, got {len(ls.filter_chains)}"


def _check_filter_chain(fc):
    # Filter types were vetted by the walk below this message already.
    if not fc.filters:
        yield "filters", "required (the chain must end in a terminal filter such as tcp_proxy)"
        return
    seen = {}
    last = len(fc.filters) - 1
    for i, f in enumerate(fc.filters):
        kind = type_name(f.typed_config.type_url)
        if kind in seen:
            yield (
                f"filters[{i}]",
                f"filter {f.name or kind} is already at filters[{seen[kind]}] (one of each type)",
            )
        seen[kind] = i
        terminal = NETWORK_FILTERS.get(kind, False)
        if terminal and i != last:
            yield f"filters[{i}]", f"terminal filter {f.name or kind} must be the last filter"
        if not terminal and i == last:
            terminals = ", ".join(t.rsplit(".", 1)[-1] for t, term in NETWORK_FILTERS.items() if term)
            yield f"filters[{i}]", f"the last filter must be terminal ({terminals}), not {f.name or kind}"


def _check_filter(f):
    if not f.name:
        yield "name", "required"
    if not f.HasField("typed_config"):
        yield "", f"filter {f.name} has no typed_config (meshcore picks a filter by its typed_config @type)"


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
    if tp.HasField("idle_timeout") and _ms(tp.idle_timeout) < 0:
        yield "idle_timeout", "must not be negative"
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


def _check_cluster(c):
    if not c.name:
        yield "name", "required"
    if c.HasField("connect_timeout") and _ms(c.connect_timeout) <= 0:
        yield "connect_timeout", "must be greater than 0"


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


def _check_file_access_log(fal):
    if not fal.path:
        yield "path", "required"


# ---- the table -------------------------------------------------------------------

SCHEMA = {
    "envoy.config.bootstrap.v3.Bootstrap": Rule(("node", "static_resources", "admin")),
    "envoy.config.bootstrap.v3.Bootstrap.StaticResources": Rule(("listeners", "clusters")),
    "envoy.config.core.v3.Node": Rule(("id", "cluster", "metadata")),
    "envoy.config.bootstrap.v3.Admin": Rule(("address", "access_log_path", "access_log")),
    "envoy.config.accesslog.v3.AccessLog": Rule(
        ("name", "typed_config"), anys={"typed_config": AnyOf("access logger", ACCESS_LOGGERS)}
    ),
    "envoy.extensions.access_loggers.file.v3.FileAccessLog": Rule(("path",), check=_check_file_access_log),
    "envoy.extensions.access_loggers.stream.v3.StdoutAccessLog": Rule(()),
    "envoy.extensions.access_loggers.stream.v3.StderrAccessLog": Rule(()),
    "envoy.config.core.v3.Address": Rule(("socket_address",), check=_check_address),
    "envoy.config.core.v3.SocketAddress": Rule(
        ("address", "port_value", "protocol"), enums={"protocol": ("TCP",)}, check=_check_socket_address
    ),
    # -- listeners
    "envoy.config.listener.v3.Listener": Rule(
        ("name", "address", "stat_prefix", "tcp_backlog_size", "enable_reuse_port", "filter_chains"),
        check=_check_listener,
    ),
    "envoy.config.listener.v3.FilterChain": Rule(("filters",), check=_check_filter_chain),
    "envoy.config.listener.v3.Filter": Rule(
        ("name", "typed_config"), anys={"typed_config": AnyOf("filter", NETWORK_FILTERS)}, check=_check_filter
    ),
    CONNECTION_LIMIT: Rule(("stat_prefix", "max_connections"), check=_check_connection_limit),
    TCP_PROXY: Rule(
        ("stat_prefix", "cluster", "weighted_clusters", "idle_timeout", "max_connect_attempts"),
        check=_check_tcp_proxy,
    ),
    TCP_PROXY + ".WeightedCluster": Rule(("clusters",), check=_check_weighted_clusters),
    TCP_PROXY + ".WeightedCluster.ClusterWeight": Rule(("name", "weight"), check=_check_cluster_weight),
    # -- clusters
    "envoy.config.cluster.v3.Cluster": Rule(
        ("name", "type", "connect_timeout", "lb_policy", "load_assignment"),
        enums={"type": ("STATIC",), "lb_policy": ("ROUND_ROBIN", "LEAST_REQUEST", "RANDOM")},
        check=_check_cluster,
    ),
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


# typed_config type -> function yielding (relative path, cluster name) for each
# cluster the filter refers to; used to check that those clusters exist.
CLUSTER_REFS = {TCP_PROXY: _tcp_proxy_clusters}


# ---- Any resolution ------------------------------------------------------------------

# Packages whose *_pb2 modules may be imported to resolve a type named in a
# config. Never anything else: the name comes from user input.
_TYPE_ROOTS = ("envoy.", "xds.", "udpa.")
_TYPE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")


def type_name(type_url: str) -> str:
    """The message full name of an Any type URL ("type.googleapis.com/a.b.C" -> "a.b.C")."""
    return type_url.rsplit("/", 1)[-1]


def find_type(type_url: str):
    """The descriptor for a type URL, or None when no such message exists.

    Types not imported yet are looked up in xds-protos' own package tree, so
    that a real Envoy extension we do not support ("RedisProxy") is told apart
    from a misspelt or foreign type URL.
    """
    name = type_name(type_url)
    pool = descriptor_pool.Default()
    try:
        return pool.FindMessageTypeByName(name)
    except KeyError:
        pass
    if not _TYPE_NAME.match(name) or not name.startswith(_TYPE_ROOTS):
        return None
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):  # "a.b.v3.Msg.Inner" -> try "a.b.v3.Msg", "a.b.v3", ...
        package = ".".join(parts[:cut])
        try:
            mod = importlib.import_module(package)
        except ImportError:
            continue
        for info in pkgutil.iter_modules(getattr(mod, "__path__", [])):
            if info.name.endswith("_pb2"):
                try:
                    importlib.import_module(f"{package}.{info.name}")
                except Exception:  # noqa: BLE001 - a module that fails to load just doesn't resolve
                    pass
        break
    try:
        return pool.FindMessageTypeByName(name)
    except KeyError:
        return None


def unpack(any_msg: any_pb2.Any):
    """The message inside an Any, as an instance of its generated class."""
    desc = find_type(any_msg.type_url)
    if desc is None:
        raise Violation("", f"unknown type {any_msg.type_url}")
    msg = message_factory.GetMessageClass(desc)()
    any_msg.Unpack(msg)
    return msg


def any_slot(message_full_name: str, field_name: str) -> AnyOf | None:
    rule = SCHEMA.get(message_full_name)
    return rule.anys.get(field_name) if rule else None


def unsupported_extension(slot: AnyOf, name: str, type_url: str, known: bool) -> str:
    """The message for a typed_config we do not accept.

    A real Envoy type is named by its extension name alone (the user knows
    what it is); an unresolvable @type also shows the URL, which is likely
    the mistake.
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


def walk(msg, path: str = "") -> None:
    """Raise Violation for the first field of `msg` (recursively) outside the supported subset."""
    full = msg.DESCRIPTOR.full_name
    if full in LEAVES:
        return
    rule = SCHEMA.get(full, Rule(()))  # unknown message type: nothing in it is supported
    listed = msg.ListFields()
    for fd, _ in listed:
        if fd.name not in rule.fields:
            supported = ", ".join(rule.fields) or "none"
            raise Violation(path, f'unsupported field "{fd.name}" (supported: {supported})')
    for fd, value in listed:
        fpath = _join(path, fd.name)
        if fd.is_repeated:
            items = [(_join(fpath, f"[{i}]"), v) for i, v in enumerate(value)]
        else:
            items = [(fpath, value)]
        for ipath, item in items:
            if fd.enum_type is not None and fd.name in rule.enums:
                allowed = rule.enums[fd.name]
                known = fd.enum_type.values_by_number.get(item)
                vname = known.name if known else str(item)
                if vname not in allowed:
                    raise Violation(ipath, f"unsupported value {vname} (supported: {', '.join(allowed)})")
            elif fd.message_type is not None and fd.message_type.full_name == "google.protobuf.Any":
                _walk_any(msg, fd.name, rule.anys.get(fd.name), item, path, ipath)
            elif fd.message_type is not None:
                walk(item, ipath)
    if rule.check:
        for rel, text in rule.check(msg):
            raise Violation(_join(path, rel), text)


def _walk_any(parent, field_name, slot, any_msg, parent_path, path):
    if slot is None:  # an Any field the table lets through must say what it may hold
        raise Violation(parent_path, f'unsupported field "{field_name}"')
    desc = find_type(any_msg.type_url)
    if desc is None or desc.full_name not in slot.types:
        name = getattr(parent, slot.name_field, "")
        raise Violation(parent_path, unsupported_extension(slot, name, any_msg.type_url, desc is not None))
    walk(unpack(any_msg), path)


# ---- documentation -------------------------------------------------------------------


def describe_supported() -> str:
    """The supported subset as text, one message per line, generated from SCHEMA."""
    lines = []
    for full, rule in SCHEMA.items():
        parts = []
        for name in rule.fields:
            if name in rule.enums:
                name += f" ({' | '.join(rule.enums[name])})"
            elif name in rule.anys:
                slot = rule.anys[name]
                kinds = ", ".join(
                    t.rsplit(".", 1)[-1] + (" [terminal]" if terminal else "")
                    for t, terminal in slot.types.items()
                )
                name += f" ({slot.noun}: {kinds})"
            parts.append(name)
        lines.append(f"{full}: {', '.join(parts) if parts else '(no fields)'}")
    return "\n".join(lines)


SUPPORTED = describe_supported()
