"""bench_telemetry.py's telemetry readings: what a telemetry-on target reported (access-log
lines, spans, Prometheus scrapes, counters) and the checks against the requests it served.
"""
from __future__ import annotations

import http.client
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from common import http_get
from telemetry_configs import SAMPLING_PERCENT
from telemetry_targets import Variant

# Requests wrk may leave in flight when it stops (warm-up, -c1, -c32): a proxy
# serves (and logs) them, wrk does not count them.
IN_FLIGHT_MAX = 32 + 1 + 32


# After a telemetry-on target's runs: the access log and the collector's
# count must stay unchanged this long before they are read (meshcore exports
# spans at least every second, Envoy flushes its log every second).
QUIET_S = 2.5
QUIET_TIMEOUT_S = 15.0


@dataclass
class Telemetry:
    """What a telemetry-on target reported, and what it should have."""

    log_lines: int | None = None       # access-log lines (HAProxy: "GET" lines of its stdout)
    proxy_requests: int | None = None  # the proxy's downstream_rq_total (admin API)
    spans_received: int | None = None  # by the collector, during this target
    collector_posts: int | None = None
    collector_bad: int = 0
    istio_requests: float | None = None  # sum of istio_requests_total, scraped after the runs
    scrapes: list = field(default_factory=list)  # [(when, status, ms, bytes)]
    counters: dict = field(default_factory=dict)  # telemetry counters (admin API)
    problems: list = field(default_factory=list)


def scrape(admin_port: int, when: str, into: list) -> str | None:
    """One GET /stats/prometheus, as Prometheus would make it; (when, status, ms,
    bytes) goes into `into`. Returns the text (None on failure)."""
    t0 = time.monotonic()
    try:
        status, body = http_get(admin_port, "/stats/prometheus", timeout=10.0)
    except (OSError, http.client.HTTPException) as e:
        into.append((when, f"{type(e).__name__}: {e}", None, 0))
        return None
    into.append((when, status, (time.monotonic() - t0) * 1e3, len(body)))
    return body.decode(errors="replace") if status == 200 else None


def prom_sum(text: str, name: str) -> float | None:
    """The sum of every sample of `name` in Prometheus text (None if absent)."""
    total, seen = 0.0, False
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            try:
                total += float(line.rsplit(" ", 1)[1])
                seen = True
            except ValueError:
                pass
    return total if seen else None


def file_size(path: Path | None) -> int:
    try:
        return path.stat().st_size if path else 0
    except OSError:
        return 0


def count_lines(path: Path, needle: bytes | None = None) -> int:
    n = 0
    with open(path, "rb") as f:
        for line in f:
            if needle is None or needle in line:
                n += 1
    return n


def wait_quiet(probe, quiet_s: float = QUIET_S, timeout_s: float = QUIET_TIMEOUT_S) -> bool:
    """Polls probe() until its value has not changed for quiet_s; False on timeout."""
    deadline = time.monotonic() + timeout_s
    last, since = probe(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = probe()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return True
    return False


# Telemetry counters of interest (admin API), when present.
TELEMETRY_COUNTER = re.compile(r"^(server\.access_log_dropped|tracing\.|filesystem\.|access_logs\.)")


def check_telemetry(v: Variant, t: Telemetry, wrk_total: int) -> None:
    """Fills t.problems: what a telemetry-on target should have reported and did not."""
    served = t.proxy_requests
    if v.access_log and t.log_lines is not None:
        if served is not None:
            if t.log_lines != served:
                t.problems.append(f"access log: {t.log_lines:,} lines for {served:,} requests served "
                                  f"({served - t.log_lines:+,} missing)")
        elif not wrk_total <= t.log_lines <= wrk_total + IN_FLIGHT_MAX:
            t.problems.append(f"access log: {t.log_lines:,} lines for {wrk_total:,} requests wrk "
                              f"completed (+ at most {IN_FLIGHT_MAX} in flight)")
    dropped = t.counters.get("server.access_log_dropped")
    if dropped:
        t.problems.append(f"server.access_log_dropped = {dropped:,}: records lost before "
                          "they were written (or exported as spans)")
    if v.tracing:
        n = served if served is not None else wrk_total
        p = SAMPLING_PERCENT / 100
        expect, slack = n * p, 4 * math.sqrt(n * p * (1 - p)) + 2
        got = t.spans_received
        if got is None:
            t.problems.append("tracing: the collector could not be read")
        elif abs(got - expect) > slack:
            why = ""
            if dropped:
                why = (f" (a span is its request's record in the access-log ring, which dropped "
                       f"{dropped / n:.0%} of them; tracing.opentelemetry.spans_dropped = "
                       f"{t.counters.get('tracing.opentelemetry.spans_dropped', 'n/a')})")
            t.problems.append(f"tracing: {got:,} spans received for {n:,} requests at "
                              f"{SAMPLING_PERCENT:g}%: expected {expect:,.0f} +- {slack:,.0f}{why}")
        sent = t.counters.get("tracing.opentelemetry.spans_sent")
        if got is not None and sent is not None and sent != got:
            t.problems.append(f"tracing: the proxy counts {sent:,} spans sent, the collector "
                              f"received {got:,}")
        for k in ("tracing.opentelemetry.spans_dropped", "tracing.opentelemetry.reports_failed"):
            if t.counters.get(k):
                t.problems.append(f"{k} = {t.counters[k]:,}")
        if t.collector_bad:
            t.problems.append(f"collector: {t.collector_bad} malformed export request(s)")
    if v.metrics and t.scrapes:
        bad = [s for s in t.scrapes if s[1] != 200]
        if bad:
            t.problems.append(f"/stats/prometheus failed: {bad[0][1]} ({bad[0][0]})")
        if t.istio_requests is None:
            t.problems.append("istio_requests_total missing from /stats/prometheus")
        elif served is not None and t.istio_requests != served:
            t.problems.append(f"istio_requests_total = {t.istio_requests:,.0f} for {served:,} "
                              "requests served")

