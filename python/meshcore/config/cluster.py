"""Value checks for clusters: load assignments, endpoints, ring hash, circuit
breakers, outlier detection and upstream HTTP options."""
from envoy.config.cluster.v3 import cluster_pb2

from meshcore.xds_types import (
    UPSTREAM_HTTP_OPTIONS,
    unpack,  # the walk resolved the type already
)

from .rules import (
    MAX_RING_SIZE,
    duration_ms_float,
    duration_problems,
    show_ms,
)


def check_cluster(c):
    if not c.name:
        yield "name", "required"
    if c.HasField("connect_timeout") and duration_ms_float(c.connect_timeout) <= 0:
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


def check_load_assignment(la):
    if not la.cluster_name:  # Envoy requires it too
        yield "cluster_name", "required"


def check_lb_endpoint(lbe):
    if not lbe.HasField("endpoint"):
        yield "endpoint", "required"
    if lbe.HasField("load_balancing_weight") and lbe.load_balancing_weight.value < 1:
        yield "load_balancing_weight", "must be at least 1"


def check_endpoint(ep):
    if not ep.HasField("address"):
        yield "address", "required"
    elif ep.address.socket_address.port_value == 0:
        yield "address.socket_address.port_value", "required (1..65535)"


def check_ring_hash(rh):
    low = rh.minimum_ring_size.value if rh.HasField("minimum_ring_size") else 1024  # Envoy's defaults
    high = rh.maximum_ring_size.value if rh.HasField("maximum_ring_size") else MAX_RING_SIZE
    for name, value in (("minimum_ring_size", low), ("maximum_ring_size", high)):
        if value > MAX_RING_SIZE:
            yield name, f"{value} is more than {MAX_RING_SIZE} (8M)"
    if low > high:
        yield "minimum_ring_size", f"{low} is more than maximum_ring_size ({high})"


def check_circuit_breakers(cb):
    first = {}
    for i, t in enumerate(cb.thresholds):
        where = first.setdefault(t.priority, i)
        if where != i:
            name = t.DESCRIPTOR.fields_by_name["priority"].enum_type.values_by_number[t.priority].name
            yield f"thresholds[{i}]", f"priority {name} already has thresholds[{where}] (one per priority)"


_PERCENTS = ("max_ejection_percent", "enforcing_consecutive_5xx", "enforcing_consecutive_gateway_failure")


def check_outlier_detection(od):
    for name in _PERCENTS:
        if od.HasField(name) and getattr(od, name).value > 100:
            yield name, f"{getattr(od, name).value} is out of range (0..100)"
    yield from duration_problems(od, "interval", "base_ejection_time", "max_ejection_time", positive=True)
    base = duration_ms_float(od.base_ejection_time) if od.HasField("base_ejection_time") else 30_000  # Envoy's defaults
    most = duration_ms_float(od.max_ejection_time) if od.HasField("max_ejection_time") else 300_000
    if base > most:
        yield "base_ejection_time", f"{show_ms(base)} is longer than max_ejection_time ({show_ms(most)})"


def check_upstream_http_options(o):
    if o.WhichOneof("upstream_protocol_options") is None:
        yield "", "one of explicit_http_config or use_downstream_protocol_config is required"


def check_upstream_http2_options(o):  # core.v3.Http2ProtocolOptions toward an upstream, Envoy's ranges
    if o.HasField("max_concurrent_streams") and not 1 <= o.max_concurrent_streams.value <= 2147483647:
        yield "max_concurrent_streams", "must be at least 1 (and at most 2147483647)"
    for field in ("initial_stream_window_size", "initial_connection_window_size"):
        if o.HasField(field) and not 65535 <= getattr(o, field).value <= 2147483647:
            yield field, "must be between 65535 and 2147483647 (RFC 9113 windows)"


def check_explicit_http_config(e):
    if e.WhichOneof("protocol_config") is None:
        yield "http_protocol_options", "one of http_protocol_options or http2_protocol_options is required"
