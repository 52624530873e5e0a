"""Routing with the proxy's own router (meshcore.route).

``Router(route_config)`` compiles a RouteConfiguration (an xDS message or
its dict) once, through the same compile path and C router
(src/meshcore/route/router.c) as the sidecar; ``match(method, authority,
path, headers)`` then returns a ``RouteMatch`` (the ``Route`` and the
cluster chosen) or None, with no protobuf work per call. Weighted clusters
are chosen as one proxy worker chooses them (smooth weighted round robin,
state per route), or from a hash you give.

Not applied here (the proxy does them before routing, per listener): path
normalization and the HTTP/1.0 default host. Pass the path as the proxy
would see it.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from envoy.config.route.v3.route_pb2 import RouteConfiguration  # Any: pyproject.toml ignores the protos' missing stubs

from meshcore import _core
from meshcore._core import Route, RouteMatch
from meshcore.config.route_config import route_configuration
from meshcore.errors import RouteConfigError

__all__ = ["Route", "RouteConfigError", "RouteMatch", "Router"]


class Router(_core.Router):
    """A compiled route table: ``match(method, authority, path, headers=None,
    hash=None)`` -> RouteMatch or None (the proxy's 404). Built from a
    RouteConfiguration message or its dict (xDS JSON shape), checked against
    meshcore's supported subset first: RouteConfigError names the field.
    match() is the C extension's own method (no Python frame per call)."""

    def __init__(self, route_config: RouteConfiguration | Mapping[str, Any]) -> None:
        super().__init__(route_configuration(route_config))
