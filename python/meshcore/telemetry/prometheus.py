"""Prometheus exposition of the engine's stats, through prometheus_client.

Names follow Envoy's /stats/prometheus: the scope kind becomes part of the
metric name and the scope's name a label, so dashboards written for Envoy
find what they expect:

    cluster.backend.upstream_cx_total  ->  envoy_cluster_upstream_cx_total{envoy_cluster_name="backend"}
    listener.127.0.0.1_10000.downstream_cx_active
        ->  envoy_listener_downstream_cx_active{envoy_listener_address="127.0.0.1_10000"}

Counters always end in _total (prometheus_client adds it where Envoy's name
lacks it) and duration histograms are in seconds (`upstream_cx_connect_ms` ->
`envoy_cluster_upstream_cx_connect_seconds`), both of which
`promtool check metrics` requires. Histograms are re-bucketed from the
core's log-linear buckets to Envoy's default bounds.
"""
from __future__ import annotations

import re

from meshcore.extras import require

require("prometheus_client", "the Prometheus exposition (/stats/prometheus)")

from prometheus_client import CollectorRegistry, generate_latest  # noqa: E402
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily  # noqa: E402
from prometheus_client.exposition import CONTENT_TYPE_LATEST  # noqa: E402
from prometheus_client.utils import floatToGoString  # noqa: E402

from meshcore.telemetry.stats import Stats  # noqa: E402

# Scope kind -> the label that carries the scope's name (Envoy's tag names).
SCOPE_LABELS = {
    "cluster": "envoy_cluster_name",
    "listener": "envoy_listener_address",
    "tcp": "envoy_tcp_prefix",
    "connection_limit": "envoy_connection_limit_prefix",
    "http": "envoy_http_conn_manager_prefix",
}

_INVALID = re.compile(r"[^a-zA-Z0-9_:]")


def _seconds(stat: str) -> str:
    # Envoy's "_ms" histograms in base units: promtool rejects abbreviated
    # units and any unit but seconds for durations.
    return stat[:-3] + "_seconds" if stat.endswith("_ms") else stat


def _metric_name(*parts: str) -> str:
    return _INVALID.sub("_", "_".join(("envoy",) + parts))


class StatsCollector:
    """A prometheus_client collector over a stats snapshot."""

    def __init__(self, stats: Stats):
        self.stats = stats

    def collect(self):
        families = {}

        def family(cls, name, doc, labels, **kw):
            f = families.get(name)
            if f is None:
                f = families[name] = cls(name, doc, labels=labels, **kw)
            return f

        for scope in self.stats.scopes:
            label = SCOPE_LABELS.get(scope.kind)
            labels = [label] if label else []
            values = [scope.name] if label else []
            for stat, v in scope.counters.items():
                family(CounterMetricFamily, _metric_name(scope.kind, stat), stat, labels).add_metric(values, v)
            for stat, v in scope.gauges.items():
                family(GaugeMetricFamily, _metric_name(scope.kind, stat), stat, labels).add_metric(values, v)
            for stat, h in scope.histograms.items():
                scale = 1000.0 if stat.endswith("_ms") else 1.0
                buckets = [(floatToGoString(le / scale), n) for le, n in h.cumulative()]
                family(HistogramMetricFamily, _metric_name(scope.kind, _seconds(stat)), stat, labels).add_metric(
                    values, buckets, h.sum / scale)
        # Counters kept outside the core (config reloads...), named like "server.x".
        core_names = {f"{s.prefix}.{k}" for s in self.stats.scopes for k in s.counters}
        for name, v in self.stats.counters.items():
            if name not in core_names:
                family(CounterMetricFamily, _metric_name(*name.split(".")), name, []).add_metric([], v)
        yield from families.values()


def exposition(stats: Stats, *collectors) -> tuple[str, str]:
    """(body, content type) of the Prometheus text format for stats and any
    other collectors (e.g. the engine's Istio metrics)."""
    registry = CollectorRegistry(auto_describe=False)
    for c in collectors:
        registry.register(c)
    registry.register(StatsCollector(stats))
    return generate_latest(registry).decode(), CONTENT_TYPE_LATEST
