"""Stats as Python sees them: the core's scopes turned into Envoy names.

The core keeps counters per (kind, scope name) and per worker; reading sums
the workers (in C) and this module names them the way Envoy does:
``cluster.backend.upstream_cx_total``, ``listener.127.0.0.1_10000.
downstream_cx_active``, ``tcp.ingress_tcp.downstream_cx_rx_bytes_total``.
Histograms are recorded in microseconds and reported in milliseconds.
"""
from __future__ import annotations

import dataclasses
import math
import re

# cluster.<name>.upstream_rq_<code>: listed once a response with that code was
# seen, as Envoy creates the counter then (the core keeps a fixed table of codes).
_PER_CODE = re.compile(r"upstream_rq_\d{3}$")

# Envoy's default histogram buckets (ms), used by /stats/prometheus.
ENVOY_BUCKETS_MS = (
    0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
    300000, 600000, 1800000, 3600000,
)


@dataclasses.dataclass(frozen=True)
class Histogram:
    """A histogram in milliseconds: count, sum and sparse buckets
    ``[(upper_bound_ms, count), ...]`` in increasing order."""

    count: int
    sum: float
    buckets: tuple

    def quantile(self, q: float) -> float:
        """Value below which a fraction q of samples fall (bucket upper bound)."""
        if self.count == 0:
            return math.nan
        rank = q * self.count
        seen = 0
        for upper, n in self.buckets:
            seen += n
            if seen >= rank:
                return upper
        return self.buckets[-1][0]

    def cumulative(self, bounds=ENVOY_BUCKETS_MS):
        """[(le, cumulative count)] for the given bounds, then +Inf.

        A source bucket counts toward ``le`` when its upper bound is <= le, so
        a sample is never reported below its true value (bucket width is at
        most 1/16 of the value)."""
        out, i, seen = [], 0, 0
        for le in bounds:
            while i < len(self.buckets) and self.buckets[i][0] <= le:
                seen += self.buckets[i][1]
                i += 1
            out.append((le, seen))
        out.append((math.inf, self.count))
        return out


@dataclasses.dataclass(frozen=True)
class Scope:
    """One stats scope: kind ("cluster", "listener", ...), name, values."""

    kind: str
    name: str
    counters: dict
    gauges: dict
    histograms: dict

    @property
    def prefix(self) -> str:
        if self.kind == "server":
            return "server"
        return f"{self.kind}.{self.name}"


def _hist(raw) -> Histogram:
    count, total_us, buckets = raw
    return Histogram(count, total_us / 1000.0, tuple((u / 1000.0, n) for u, n in buckets))


def scopes_from_core(raw) -> list[Scope]:
    """Converts _core.Engine.stats() output into Scope objects."""
    out = []
    for kind, name, slots, hists in raw:
        counters = {s: v for s, v, gauge in slots if not gauge and (v or not _PER_CODE.match(s))}
        gauges = {s: v for s, v, gauge in slots if gauge}
        out.append(Scope(kind, name, counters, gauges, {h: _hist(r) for h, r in hists.items()}))
    return out


class Stats:
    """A consistent read of every stat: flat Envoy-style names.

    ``stats["cluster.backend.upstream_cx_total"]`` -> int;
    ``stats.histograms["cluster.backend.upstream_cx_connect_ms"]`` -> Histogram.
    Host scopes (per endpoint, for /clusters) are in ``hosts``.
    """

    def __init__(self, scopes: list[Scope], extra_counters: dict | None = None):
        self.scopes = [s for s in scopes if s.kind != "host"]
        self.hosts = {s.name: s for s in scopes if s.kind == "host"}
        self.counters, self.gauges, self.histograms = {}, {}, {}
        for s in self.scopes:
            for k, v in s.counters.items():
                self.counters[f"{s.prefix}.{k}"] = v
            for k, v in s.gauges.items():
                self.gauges[f"{s.prefix}.{k}"] = v
            for k, v in s.histograms.items():
                self.histograms[f"{s.prefix}.{k}"] = v
        for k, v in (extra_counters or {}).items():
            self.counters[k] = v

    def __getitem__(self, name: str) -> int:
        if name in self.counters:
            return self.counters[name]
        return self.gauges[name]

    def get(self, name: str, default=None):
        try:
            return self[name]
        except KeyError:
            return default

    def __contains__(self, name: str) -> bool:
        return name in self.counters or name in self.gauges

    def values(self) -> dict:
        """Counters and gauges in one dict."""
        return {**self.counters, **self.gauges}
