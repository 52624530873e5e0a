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
from meshcore._core import Route, RouteMatch, Router
from meshcore.errors import RouteConfigError

__all__ = ["Route", "RouteConfigError", "RouteMatch", "Router"]
