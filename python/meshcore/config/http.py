"""Value checks for the http_connection_manager: its fields, HTTP protocol
options and the fault filter."""
from meshcore.xds_types import (
    FAULT_FILTER_NAME,
    HTTP_FAULT,
    type_name,
)

from .listener import (
    check_chain,
    check_filter_names,
)
from .rules import (
    BAD_VALUE,
    HTTP_FILTERS,
    duration_ms_float,
    duration_problems,
)


def all_routes(route_config):
    """(path relative to the RouteConfiguration, Route) for every route."""
    for v, vh in enumerate(route_config.virtual_hosts):
        for r, route in enumerate(vh.routes):
            yield f"virtual_hosts[{v}].routes[{r}]", route


def check_hcm(hcm):
    if not hcm.stat_prefix:
        yield "stat_prefix", "required"
    if not hcm.HasField("route_config"):
        yield "route_config", "required (an inline RouteConfiguration; rds is not supported)"
    yield from check_chain(hcm.http_filters, HTTP_FILTERS, "http_filters",
                           "required (it must end in the router filter)")
    yield from check_filter_names(hcm.http_filters, "http_filters")
    if hcm.HasField("max_request_headers_kb") and not 1 <= hcm.max_request_headers_kb.value <= 8192:
        yield "max_request_headers_kb", f"{hcm.max_request_headers_kb.value} is out of range (1..8192)"
    yield from duration_problems(hcm, "stream_idle_timeout", "request_timeout", "request_headers_timeout")
    if BAD_VALUE.search(hcm.server_name):
        yield "server_name", "must not contain CR, LF or NUL"
    # A route's fault settings apply through the fault filter of that name, as in
    # Envoy; without it they would be accepted and never take effect.
    has_fault = any(
        f.name == FAULT_FILTER_NAME and type_name(f.typed_config.type_url) == HTTP_FAULT for f in hcm.http_filters
    )
    if not has_fault:
        for path, route in all_routes(hcm.route_config):
            if FAULT_FILTER_NAME in route.typed_per_filter_config:
                yield (
                    f'route_config.{path}.typed_per_filter_config["{FAULT_FILTER_NAME}"]',
                    f"has no effect: http_filters has no fault filter named {FAULT_FILTER_NAME}",
                )


def check_http_options(o):  # core.v3.HttpProtocolOptions, in a listener or a cluster
    yield from duration_problems(o, "idle_timeout", "max_stream_duration")
    if o.HasField("max_headers_count") and o.max_headers_count.value < 1:
        yield "max_headers_count", "must be at least 1"


def check_http2_options(o):  # core.v3.Http2ProtocolOptions, downstream (docs/http2.md)
    ranges = {"max_concurrent_streams": (1, 2**31 - 1), "initial_stream_window_size": (65535, 2**31 - 1),
              "initial_connection_window_size": (65535, 2**31 - 1), "max_outbound_control_frames": (1, 2**31 - 1)}
    for field, (lo, hi) in ranges.items():
        if o.HasField(field) and not lo <= getattr(o, field).value <= hi:
            yield field, f"{getattr(o, field).value} is out of range ({lo}..{hi})"


def check_keepalive(k):  # core.v3.KeepaliveSettings: Envoy's validate rules (docs/http2.md)
    if not k.HasField("timeout"):
        yield "timeout", "required (at least 1ms): how long to wait for the PING's ACK"
    for name in ("interval", "timeout", "connection_idle_interval"):
        if k.HasField(name) and duration_ms_float(getattr(k, name)) < 1:
            yield name, "must be at least 1ms"
    if k.HasField("interval_jitter") and not 0 <= k.interval_jitter.value <= 100:
        yield "interval_jitter.value", f"{k.interval_jitter.value:g} is out of range (0..100)"


DENOMINATORS = {"HUNDRED": 100, "TEN_THOUSAND": 10_000, "MILLION": 1_000_000}


def check_fractional_percent(fp):
    name = fp.DESCRIPTOR.fields_by_name["denominator"].enum_type.values_by_number[fp.denominator].name
    whole = DENOMINATORS[name]
    if fp.numerator > whole:
        yield "numerator", f"{fp.numerator} is more than the whole ({name} = {whole})"


def check_fault_delay(d):
    if d.WhichOneof("fault_delay_secifier") is None:  # sic: Envoy's spelling
        yield "fixed_delay", "required"
    else:
        yield from duration_problems(d, "fixed_delay", positive=True)


def check_fault_abort(a):
    if a.WhichOneof("error_type") is None:
        yield "http_status", "required (200..599)"
    elif not 200 <= a.http_status <= 599:
        yield "http_status", f"{a.http_status} is out of range (200..599)"


# the upgrades the codecs tunnel (Envoy compares the type case-insensitively)
UPGRADE_TYPES = ("websocket",)


def check_upgrade_config(u):
    if u.upgrade_type.lower() not in UPGRADE_TYPES:
        yield "upgrade_type", f'unsupported upgrade "{u.upgrade_type}" (supported: {", ".join(UPGRADE_TYPES)})'
