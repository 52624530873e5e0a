"""xDS v3 type names and type URLs, defined once, and the one helper that
unpacks a typed config.

Every Any meshcore reads or writes names its type here: config validation,
translation (Istio -> xDS), telemetry planning, the admin API, and the
compiler in ext/ (meshcore._core) all import these constants rather than
spelling "type.googleapis.com/..." themselves.

    HCM                      the message's full name (what a descriptor says)
    type_url(HCM)            "type.googleapis.com/envoy...HttpConnectionManager" (what an Any says)
    unpack(any_msg)          the message inside an Any, as its generated class
    terminal_filter(chain)   a filter chain's HttpConnectionManager or TcpProxy, unpacked

Importing this module imports the generated classes of every type that may
appear inside an Any of a supported config, so that json_format resolves
"@type" while parsing and unpack() finds their classes.
"""
from __future__ import annotations

import importlib
import pkgutil
import re

from envoy.config.trace.v3 import opentelemetry_pb2, zipkin_pb2  # noqa: F401
from envoy.extensions.access_loggers.file.v3 import file_pb2  # noqa: F401
from envoy.extensions.access_loggers.stream.v3 import stream_pb2  # noqa: F401
from envoy.extensions.filters.http.fault.v3 import fault_pb2  # noqa: F401
from envoy.extensions.filters.http.rbac.v3 import rbac_pb2 as http_rbac_pb2  # noqa: F401
from envoy.extensions.filters.http.router.v3 import router_pb2  # noqa: F401
from envoy.extensions.filters.listener.tls_inspector.v3 import tls_inspector_pb2  # noqa: F401
from envoy.extensions.filters.network.connection_limit.v3 import connection_limit_pb2  # noqa: F401
from envoy.extensions.filters.network.http_connection_manager.v3 import (  # noqa: F401
    http_connection_manager_pb2,
)
from envoy.extensions.filters.network.rbac.v3 import rbac_pb2 as network_rbac_pb2  # noqa: F401
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2  # noqa: F401
from envoy.extensions.retry.host.previous_hosts.v3 import previous_hosts_pb2  # noqa: F401
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2  # noqa: F401
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2  # noqa: F401
from google.protobuf import descriptor_pool, message_factory
from udpa.type.v1 import typed_struct_pb2 as udpa_typed_struct_pb2  # noqa: F401
from xds.type.v3 import typed_struct_pb2  # noqa: F401

TYPE_URL_PREFIX = "type.googleapis.com/"

# ---- message full names ------------------------------------------------------------------

# network filters
TCP_PROXY = "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
HCM = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
CONNECTION_LIMIT = "envoy.extensions.filters.network.connection_limit.v3.ConnectionLimit"
NETWORK_RBAC = "envoy.extensions.filters.network.rbac.v3.RBAC"
# listener filters
TLS_INSPECTOR = "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"
# HTTP filters
HTTP_FAULT = "envoy.extensions.filters.http.fault.v3.HTTPFault"
HTTP_RBAC = "envoy.extensions.filters.http.rbac.v3.RBAC"
ROUTER = "envoy.extensions.filters.http.router.v3.Router"
# transport sockets
DOWNSTREAM_TLS = "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
UPSTREAM_TLS = "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
# clusters and routes
UPSTREAM_HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
PREVIOUS_HOSTS = "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
# tracers
OTEL_TRACER = "envoy.config.trace.v3.OpenTelemetryConfig"
ZIPKIN_TRACER = "envoy.config.trace.v3.ZipkinConfig"
# access loggers
FILE_ACCESS_LOG = "envoy.extensions.access_loggers.file.v3.FileAccessLog"
STDOUT_ACCESS_LOG = "envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"
STDERR_ACCESS_LOG = "envoy.extensions.access_loggers.stream.v3.StderrAccessLog"
# typed structs (Istio's telemetry filters are configured through them)
TYPED_STRUCT = "xds.type.v3.TypedStruct"
UDPA_TYPED_STRUCT = "udpa.type.v1.TypedStruct"
# inside a TypedStruct: Istio's filter configs (no generated classes; never unpacked)
ISTIO_STATS_CONFIG = "stats.PluginConfig"
ISTIO_PEER_METADATA = "io.istio.http.peer_metadata.Config"
ISTIO_TCP_METADATA_EXCHANGE = "envoy.tcp.metadataexchange.config.MetadataExchange"

# Filter names meshcore gives meaning to (not type URLs)
# The key of the fault filter's entry in a route's typed_per_filter_config;
# as in Envoy it must also be the name of the fault filter in http_filters.
FAULT_FILTER_NAME = "envoy.filters.http.fault"


def type_url(name: str) -> str:
    """A message full name's type URL ("a.b.C" -> "type.googleapis.com/a.b.C")."""
    return TYPE_URL_PREFIX + name


def type_name(url: str) -> str:
    """The message full name of an Any type URL ("type.googleapis.com/a.b.C" -> "a.b.C")."""
    return url.rsplit("/", 1)[-1]


# ---- resolution --------------------------------------------------------------------------

# Packages whose *_pb2 modules may be imported to resolve a type named in a
# config. Never anything else: the name comes from user input.
_TYPE_ROOTS = ("envoy.", "xds.", "udpa.")
_TYPE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")


class UnknownType(LookupError):
    """An Any names a message type that does not exist (or is not Envoy's)."""


def find_type(url: str):
    """The descriptor for a type URL, or None when no such message exists.

    Types not imported yet are looked up in xds-protos' own package tree, so
    that a real Envoy extension we do not support ("RedisProxy") is told apart
    from a misspelt or foreign type URL.
    """
    name = type_name(url)
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


def unpack(any_msg):
    """The message inside an Any (a typed_config), as an instance of its
    generated class; UnknownType when its type URL names no message."""
    desc = find_type(any_msg.type_url)
    if desc is None:
        raise UnknownType(f"unknown type {any_msg.type_url}")
    msg = message_factory.GetMessageClass(desc)()
    any_msg.Unpack(msg)
    return msg


def is_a(any_msg, name: str) -> bool:
    """Whether an Any holds the message `name` (a full name above)."""
    return any_msg.type_url == type_url(name)


TERMINAL_FILTERS = (HCM, TCP_PROXY)


def terminal_filter(chain):
    """A filter chain's terminal filter (HttpConnectionManager or TcpProxy),
    unpacked; None if it has neither. A validated chain has exactly one, last."""
    for f in reversed(chain.filters):
        if type_name(f.typed_config.type_url) in TERMINAL_FILTERS:
            return unpack(f.typed_config)
    return None


def http_connection_manager(chain):
    """A filter chain's HttpConnectionManager, unpacked, or None."""
    msg = terminal_filter(chain)
    return msg if msg is not None and msg.DESCRIPTOR.full_name == HCM else None
