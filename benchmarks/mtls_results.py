"""bench_mtls.py's result of one pair (or of direct) and the figures derived from it."""
from __future__ import annotations

from dataclasses import dataclass, field

from common import (
    GroupMeasurement,
    WrkResult,
    mib,
)

# Added latency is pair p50 minus direct p50; at or below zero (noise) it is
# clamped to wrk's resolution, 1 us, so that ratios stay finite. Flagged.
ADDED_LATENCY_EPSILON_MS = 0.001


@dataclass
class Result:
    name: str
    warmup: WrkResult | None = None
    c1: GroupMeasurement | None = None
    c32: GroupMeasurement | None = None
    pids: dict = field(default_factory=dict)           # role ("client", "server") -> pid
    idle_rss_kib: dict = field(default_factory=dict)   # role -> VmRSS once listening
    peak_rss_kib: dict = field(default_factory=dict)   # role -> VmHWM at the end
    upstream_conns: int | None = None
    probes: dict = field(default_factory=dict)         # probe -> what happened
    handshakes: dict = field(default_factory=dict)     # conns -> HandshakeRun
    counters: dict = field(default_factory=dict)       # role -> {counter: value} after the wrk runs
    counters_note: str | None = None
    skipped: str | None = None
    failed: str | None = None
    metrics: dict = field(default_factory=dict)


def _sum(values) -> int | None:
    values = list(values)
    return sum(values) if values and all(v is not None for v in values) else None


def derive(results: dict[str, Result]) -> None:
    """Fills each result's `metrics`: the figures the targets are stated in."""
    direct = results["direct"]
    for r in results.values():
        if r.c1 is None or r.c32 is None:
            continue
        m = r.metrics
        m["p50_ms"], m["p99_ms"] = r.c1.wrk.p50_ms, r.c1.wrk.p99_ms
        m["rps_c32"] = r.c32.wrk.rps
        runs = (r.c1.wrk, r.c32.wrk)
        m["errors"] = sum(w.errors for w in runs)
        m["non2xx"] = sum(w.non2xx for w in runs)
        m["socket_errors"] = sum(w.socket_errors for w in runs)
        m["warmup_errors"] = r.warmup.errors if r.warmup else 0
        m["requests_total"] = sum(w.requests for w in runs) + (r.warmup.requests if r.warmup else 0)
        for conns in ("c1", "c32"):
            meas = getattr(r, conns)
            per = meas.cpu_s_per_rq
            m[f"cpu_us_per_rq_{conns}"] = per * 1e6 if per is not None else None
            if r.pids and meas.wrk.requests:
                for role, pid in r.pids.items():
                    m[f"cpu_us_per_rq_{conns}_{role}"] = meas.cpu_by_pid[pid] / meas.wrk.requests * 1e6
        busy = r.c32.proxy_cpu_s
        m["core_busy_c32"] = busy / r.c32.wall_s if busy is not None else None
        m["others"] = max(r.c1.others_share, r.c32.others_share)
        m["upstream_conns"] = r.upstream_conns
        for role in ("client", "server"):
            m[f"idle_rss_mib_{role}"] = mib(r.idle_rss_kib.get(role))
            m[f"peak_rss_mib_{role}"] = mib(r.peak_rss_kib.get(role))
        m["idle_rss_mib"] = mib(_sum(r.idle_rss_kib.values())) if r.idle_rss_kib else None
        m["peak_rss_mib"] = mib(_sum(r.peak_rss_kib.values())) if r.peak_rss_kib else None
        hs_others = []
        for n, hs in r.handshakes.items():
            m[f"hs_rate_{n}"] = hs.rate
            m[f"hs_cpu_us_{n}"] = hs.cpu_us_per_hs
            m[f"hs_core_busy_{n}"] = hs.server_cpu_s / hs.window_s if hs.window_s else None
            m[f"hs_failed_{n}"] = hs.failed
            hs_others.append(hs.others_cpu_s / hs.window_s if hs.window_s else 0.0)
        m["hs_others"] = max(hs_others) if hs_others else None
        if r is direct or direct.c1 is None:
            continue
        for pct in ("p50", "p99"):
            added = m[f"{pct}_ms"] - getattr(direct.c1.wrk, f"{pct}_ms")
            m[f"added_{pct}_ms_raw"] = added
            m[f"{pct}_clamped"] = added < ADDED_LATENCY_EPSILON_MS
            m[f"added_{pct}_ms"] = max(added, ADDED_LATENCY_EPSILON_MS)


def had_errors(r: Result) -> bool:
    return bool(r.metrics.get("errors") or r.metrics.get("warmup_errors"))

