"""Configuration: Envoy v3 bootstrap YAML -> validated xDS messages.

    bootstrap.py   loading YAML and reporting errors (file, resource, field path)
    schema.py      SCHEMA: the supported subset of Envoy's schema, as data
                   (SUPPORTED is a readable summary of it)
    walk.py        the walker that enforces SCHEMA on a parsed message
    rules.py       Rule, AnyOf, Violation, the filter tables, Envoy's limits
    listener.py, http.py, route.py, cluster.py, tls.py, rbac.py, telemetry.py
                   each resource's value checks (SCHEMA's Rule.check)
    refs.py        the clusters each filter refers to (checked across resources)

Type names and URLs are meshcore.xds_types'.
"""

from ..durations import duration_ms
from .bootstrap import (
    listener_address,
    load_bootstrap,
    parse_bootstrap,
    validate_bootstrap,
)
from .schema import SUPPORTED, describe_supported

__all__ = [
    "SUPPORTED",
    "describe_supported",
    "duration_ms",
    "listener_address",
    "load_bootstrap",
    "parse_bootstrap",
    "validate_bootstrap",
]
