"""Value checks for listeners: addresses, filter chains and their network
filters (connection_limit, tcp_proxy, Istio's typed-struct filters)."""

import functools
import ipaddress

from meshcore.xds_types import (
    HCM,
    TLS_INSPECTOR,
    TYPED_STRUCT,
    UDPA_TYPED_STRUCT,
    type_name,
    unpack,  # the walk resolved the type already
)

from .rules import (
    ISTIO_FILTERS,
    NETWORK_FILTERS,
    REPEATABLE_FILTERS,
    duration_problems,
)


@functools.lru_cache(maxsize=16384)
def _is_ip(text: str) -> bool:
    """ipaddress's answer, remembered: a config holds an address per endpoint, the next one the same."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def check_socket_address(sa):
    if not sa.address:
        yield "address", "required (an IPv4 or IPv6 literal)"
    elif not _is_ip(sa.address):
        yield "address", f'"{sa.address}" is not an IP address (hostnames are not supported)'
    if sa.port_value > 65535:
        yield "port_value", f"{sa.port_value} is out of range (0..65535)"


def check_address(a):
    if not a.HasField("socket_address"):
        yield "socket_address", "required"


def check_listener(ls):
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


def check_typed_struct_filter(f):
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


def check_network_filter(f):
    yield from needs_typed_config("filter")(f)
    yield from check_typed_struct_filter(f)


def check_http_filter(f):
    yield from needs_typed_config("http filter")(f)
    yield from check_typed_struct_filter(f)


def check_filter_names(filters, list_name):
    seen = {}
    for i, f in enumerate(filters):
        if f.name in ISTIO_FILTERS:
            if f.name in seen:
                yield f"{list_name}[{i}]", f"filter {f.name} is already at {list_name}[{seen[f.name]}]"
            seen[f.name] = i


def check_chain(filters, table, list_name, empty_text):
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


def check_filter_chain(fc):
    tp = fc.filter_chain_match.transport_protocol
    if tp not in ("", "tls", "raw_buffer"):
        yield "filter_chain_match.transport_protocol", f'"{tp}" is not one of "tls", "raw_buffer"'
    if tp == "tls" and not fc.HasField("transport_socket"):
        yield "transport_socket", 'required when transport_protocol is "tls"'
    yield from check_chain(
        fc.filters, NETWORK_FILTERS, "filters", "required (the chain must end in tcp_proxy or http_connection_manager)"
    )
    yield from check_filter_names(fc.filters, "filters")


def needs_typed_config(noun):
    def check(f):
        if not f.name:
            yield "name", "required"
        if not f.HasField("typed_config"):
            yield "", f"{noun} {f.name} has no typed_config (meshcore picks {noun}s by their typed_config @type)"

    return check


def check_connection_limit(cl):
    if not cl.stat_prefix:
        yield "stat_prefix", "required"
    if not cl.HasField("max_connections"):
        yield "max_connections", "required"
    elif cl.max_connections.value < 1:
        yield "max_connections", "must be greater than 0"


def check_tcp_proxy(tp):
    if not tp.stat_prefix:
        yield "stat_prefix", "required"
    which = tp.WhichOneof("cluster_specifier")
    if which is None:
        yield "", "one of cluster or weighted_clusters is required"
    elif which == "cluster" and not tp.cluster:
        yield "cluster", "must not be empty"
    yield from duration_problems(tp, "idle_timeout")
    if tp.HasField("max_connect_attempts") and tp.max_connect_attempts.value < 1:
        yield "max_connect_attempts", "must be at least 1"


def check_weighted_clusters(wc):
    if not wc.clusters:
        yield "clusters", "at least one cluster is required"


def check_cluster_weight(cw):
    if not cw.name:
        yield "name", "required"
    if cw.weight < 1:
        yield "weight", "must be greater than 0"
