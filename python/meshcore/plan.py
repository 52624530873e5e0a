"""The compile plan: one ChainPlan per (listener, filter chain).

A validated Bootstrap is walked once here: each filter chain gets a ChainPlan
holding its terminal filter (HttpConnectionManager or TcpProxy) unpacked once
and the names of its filters. The engine's telemetry then fills in what it
owns, chain by chain, on the same plans:

    log_id   access log (telemetry.access_log.AccessLogs.register)
    istio    Istio metrics: (reporter, peer metadata, its id) (telemetry.istio_metrics)
    tracing  (tracer id, random sampling per million, span kind) (telemetry.tracing)

and the plans go to the compiler (meshcore._core.compile_snapshot, ext/compile.pxi)
keyed by (listener name, chain index). The C-facing structs do not change:
the compiler reads a chain's fields where it used to read three side tables.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from google.protobuf import json_format

from meshcore import xds_types

INBOUND, OUTBOUND = 1, 2  # envoy.config.core.v3.TrafficDirection


@dataclass
class ChainPlan:
    listener: str
    index: int
    direction: int  # the listener's traffic_direction (0 unspecified, INBOUND, OUTBOUND)
    terminal: object = None  # the chain's HttpConnectionManager or TcpProxy message, or None
    filter_names: tuple = ()  # its network filters, then its HTTP filters
    log_id: int = 0
    istio: tuple | None = None
    tracing: tuple | None = None

    @property
    def key(self) -> tuple[str, int]:
        return self.listener, self.index

    @property
    def hcm(self):
        t = self.terminal
        return t if t is not None and t.DESCRIPTOR.full_name == xds_types.HCM else None

    @property
    def tcp_proxy(self):
        t = self.terminal
        return t if t is not None and t.DESCRIPTOR.full_name == xds_types.TCP_PROXY else None

    @property
    def access_logs(self) -> list:
        """The access_log entries of the chain's terminal filter."""
        return list(self.terminal.access_log) if self.terminal is not None else []


@dataclass
class SnapshotPlan:
    bootstrap: object
    chains: list[ChainPlan] = field(default_factory=list)
    node_metadata: dict = field(default_factory=dict)  # bootstrap.node.metadata as a dict

    def by_key(self) -> dict[tuple[str, int], ChainPlan]:
        return {c.key: c for c in self.chains}


def plan_snapshot(bootstrap) -> SnapshotPlan:
    """The one pass over a validated Bootstrap's listeners and their chains."""
    md = json_format.MessageToDict(bootstrap.node.metadata) if bootstrap.HasField("node") else {}
    plan = SnapshotPlan(bootstrap, node_metadata=md)
    for listener in bootstrap.static_resources.listeners:
        for k, chain in enumerate(listener.filter_chains):
            terminal = xds_types.terminal_filter(chain)
            names = [f.name for f in chain.filters]
            if terminal is not None and terminal.DESCRIPTOR.full_name == xds_types.HCM:
                names += [h.name for h in terminal.http_filters]
            plan.chains.append(ChainPlan(listener.name, k, listener.traffic_direction, terminal, tuple(names)))
    return plan
