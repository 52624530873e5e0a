"""Configuration: Envoy v3 bootstrap YAML -> validated xDS messages.

See support.py for the supported subset of Envoy's schema (SUPPORTED is a
readable summary of it) and bootstrap.py for loading and error reporting.
"""

from ..durations import duration_ms
from .bootstrap import (
    listener_address,
    load_bootstrap,
    parse_bootstrap,
    validate_bootstrap,
)
from .support import SUPPORTED, describe_supported

__all__ = [
    "SUPPORTED",
    "describe_supported",
    "duration_ms",
    "listener_address",
    "load_bootstrap",
    "parse_bootstrap",
    "validate_bootstrap",
]
