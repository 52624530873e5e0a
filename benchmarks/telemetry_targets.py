"""bench_telemetry.py's targets: each proxy with a set of telemetry features (off, on,
and with --breakdown meshcore with each part alone).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Variant:
    """One target: a proxy with a set of telemetry features."""

    key: str            # "meshcore-on"
    proxy: str          # "meshcore", "haproxy", "envoy"
    label: str          # "meshcore on"
    on: bool            # compared with the proxy's "off" target
    metrics: bool = False     # Istio metrics (meshcore) + a Prometheus scrape per run
    access_log: bool = False
    tracing: bool = False
    budget: bool = False      # the budget applies to this one vs off
    note: str = ""

    @property
    def telemetry(self) -> str:
        parts = [p for p, on in (("metrics", self.metrics), ("access log", self.access_log),
                                 ("tracing 1%", self.tracing)) if on]
        return " + ".join(parts) if parts else "none"


def variants(proxies: list[str], breakdown: bool) -> list[Variant]:
    out = []
    if "meshcore" in proxies:
        out += [Variant("meshcore-off", "meshcore", "meshcore off", False),
                Variant("meshcore-on", "meshcore", "meshcore on", True, metrics=True,
                        access_log=True, tracing=True, budget=True)]
        if breakdown:
            out += [Variant("meshcore-log", "meshcore", "meshcore +log", True, access_log=True),
                    Variant("meshcore-metrics", "meshcore", "meshcore +metrics", True, metrics=True),
                    Variant("meshcore-tracing", "meshcore", "meshcore +tracing", True, tracing=True)]
    if "haproxy" in proxies:
        out += [Variant("haproxy-off", "haproxy", "haproxy off", False),
                Variant("haproxy-on", "haproxy", "haproxy on", True, access_log=True,
                        note="httplog to stdout (a file)")]
    if "envoy" in proxies:
        out += [Variant("envoy-off", "envoy", "envoy off", False),
                Variant("envoy-on", "envoy", "envoy on", True, access_log=True,
                        note="access log only: no Istio filters or tracing in upstream Envoy")]
    return out

