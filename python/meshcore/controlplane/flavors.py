"""What the control plane serves, adapted to who asks (nodes.flavor_of).

    meshcore  a meshcore sidecar: the translation as it is (the default)
    envoy     a real Envoy with istio-agent's part played by `meshcore agent`:
              the same resources, made acceptable to a stock Envoy build
              (flavor_envoy.py)
    grpc      a proxyless gRPC client (xds:/// targets): API listeners named
              host:port for the services it may call (flavor_grpc.py)

`adapt(view, flavor)` returns a WorkloadView (the same one when nothing
changes); views.WorkloadView.for_node caches it per node kind.
"""
from __future__ import annotations

from .nodes import ENVOY, GRPC, MESHCORE

__all__ = ["ENVOY", "GRPC", "MESHCORE", "adapt"]


def adapt(view, flavor: str):
    if flavor == ENVOY:
        from . import flavor_envoy

        return flavor_envoy.adapt(view)
    if flavor == GRPC:
        from . import flavor_grpc

        return flavor_grpc.adapt(view)
    return view
