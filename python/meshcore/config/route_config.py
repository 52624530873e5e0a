"""A RouteConfiguration on its own (meshcore.route.Router): from a dict (the
xDS JSON/YAML shape) or a message, checked against the supported subset as a
listener's inline route_config is, errors naming the resource and field."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from envoy.config.route.v3 import route_pb2
from google.protobuf import json_format

from meshcore.errors import RouteConfigError

from .rules import Violation
from .walk import walk


def route_configuration(value: route_pb2.RouteConfiguration | Mapping[str, Any]) -> route_pb2.RouteConfiguration:
    """value as a checked RouteConfiguration; RouteConfigError naming the field."""
    if isinstance(value, route_pb2.RouteConfiguration):
        rc = value
    elif isinstance(value, Mapping):
        rc = route_pb2.RouteConfiguration()
        try:
            json_format.ParseDict(dict(value), rc)
        except (json_format.ParseError, TypeError, ValueError) as e:
            raise RouteConfigError(f"{_label(value.get('name'))}: {e}") from None
    else:
        raise RouteConfigError(f"a RouteConfiguration is a message or a dict, not {type(value).__name__}")
    try:
        walk(rc)
    except Violation as v:
        raise RouteConfigError(": ".join(p for p in (_label(rc.name), v.path, v.text) if p)) from None
    return rc


def _label(name: object) -> str:
    return f'route configuration "{name}"' if isinstance(name, str) and name else "route configuration"
