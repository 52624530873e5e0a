"""Cluster references: for each filter type that names clusters, the
(relative path, cluster name) pairs bootstrap.py checks exist."""
from meshcore.xds_types import (
    HCM,
    OTEL_TRACER,
    TCP_PROXY,
    type_name,
)

from .http import (
    all_routes,
)
from .walk import (
    unpack,
)


def _tcp_proxy_clusters(tp):
    if tp.WhichOneof("cluster_specifier") == "cluster":
        yield "cluster", tp.cluster
    for i, cw in enumerate(tp.weighted_clusters.clusters):
        yield f"weighted_clusters.clusters[{i}].name", cw.name


def _hcm_clusters(hcm):
    for path, route in all_routes(hcm.route_config):
        if route.WhichOneof("action") != "route":
            continue
        ra, base = route.route, f"route_config.{path}.route"
        if ra.WhichOneof("cluster_specifier") == "cluster":
            yield f"{base}.cluster", ra.cluster
        for i, cw in enumerate(ra.weighted_clusters.clusters):
            yield f"{base}.weighted_clusters.clusters[{i}].name", cw.name
        for i, mirror in enumerate(ra.request_mirror_policies):
            yield f"{base}.request_mirror_policies[{i}].cluster", mirror.cluster
    if hcm.HasField("tracing") and hcm.tracing.provider.HasField("typed_config"):
        tracer = unpack(hcm.tracing.provider.typed_config)
        base = "tracing.provider.typed_config"
        if type_name(hcm.tracing.provider.typed_config.type_url) == OTEL_TRACER:
            yield f"{base}.http_service.http_uri.cluster", tracer.http_service.http_uri.cluster
        else:
            yield f"{base}.collector_cluster", tracer.collector_cluster


# typed_config type -> function yielding (relative path, cluster name) for each
# cluster the filter refers to; used to check that those clusters exist.
CLUSTER_REFS = {TCP_PROXY: _tcp_proxy_clusters, HCM: _hcm_clusters}
