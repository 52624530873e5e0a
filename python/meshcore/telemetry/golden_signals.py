"""`meshcore stat ADMIN_ADDR [ADMIN_ADDR ...]`: golden signals between workloads.

What `linkerd viz stat` shows, read straight from the proxies instead of a
Prometheus server: for each source -> destination pair, requests per second,
success rate and latency percentiles over a window, from Istio's standard
metrics on each proxy's admin API (`/stats/prometheus`):

    istio_requests_total                 counter, one series per label set
    istio_request_duration_milliseconds  histogram, Istio's (Envoy's default) buckets
    istio_tcp_connections_opened_total   counters, TCP connections and bytes
    istio_tcp_connections_closed_total
    istio_tcp_sent_bytes_total, istio_tcp_received_bytes_total

Every proxy is scraped twice, `--window` seconds apart; the rows are the
differences (a counter that went down, or a proxy whose uptime says it
restarted, counts from zero: Prometheus's reset rule), divided by the time
measured between that proxy's two scrapes. Percentiles are PromQL's
histogram_quantile over the bucket differences: linear interpolation inside
the bucket the rank falls in, the highest finite bound when it falls in +Inf.

Each request is counted by two sidecars, the client's (reporter="source")
and the server's (reporter="destination"). A row is never the sum of both:
`--reporter auto` (the default) takes the destination's count for a row
when any scraped proxy reports it as destination, the source's otherwise;
`source` / `destination` take one side only; `both` shows each side as its
own row. The REPORTER column says which side a row counts.

The rows are pure functions of parsed scrapes (`parse`, `delta`, `rows`),
so they can be tested on text. The command is meshcore/cli/stat.py;
http.client and prometheus_client are imported only when it runs (the CLI
imports this module every time its parser is built, `meshcore proxy` included).
"""
from __future__ import annotations

import logging
import math
import time

from meshcore.admin.client import Admin, show_address
from meshcore.errors import MeshcoreError
from meshcore.proxy_config.dump import render_table

log = logging.getLogger("meshcore.stat")

REPORTERS = ("auto", "destination", "source", "both")
QUANTILES = (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))

REQUESTS = "istio_requests_total"
DURATION = "istio_request_duration_milliseconds"
TCP = {"istio_tcp_connections_opened_total": "connections_opened",
       "istio_tcp_connections_closed_total": "connections_closed",
       "istio_tcp_sent_bytes_total": "sent_bytes",
       "istio_tcp_received_bytes_total": "received_bytes"}
_COUNTERS = (REQUESTS,) + tuple(TCP)
# The exposition also holds Envoy's stats and Istio's size histograms: only
# these families are parsed (a sidecar's text is easily a few hundred kB).
_WANTED_LINES = (REQUESTS, DURATION + "_", "istio_tcp_") + tuple(
    f"# {kind} {name}" for kind in ("TYPE", "HELP") for name in (REQUESTS + " ", DURATION + " ", "istio_tcp_"))

UNKNOWN = "unknown"
NO_METRICS = ("no istio_requests_total: is istio.stats configured? (an istio.stats filter on a listener "
              "with traffic_direction INBOUND or OUTBOUND; nothing is counted before its first request)")


# ---- scraping ----------------------------------------------------------------------------------


def _get(addr: tuple[str, int], path: str, timeout: float) -> tuple[int, str]:
    """(status, body) of GET path; an unreachable admin API is a MeshcoreError naming it."""
    status, _, body = Admin(addr, timeout).fetch(path)
    return status, body


def _uptime(addr: tuple[str, int], timeout: float) -> float | None:
    """Seconds since the proxy started (/server_info), None when it does not say."""
    import json

    try:
        status, body = _get(addr, "/server_info", timeout)
        if status != 200:
            return None
        return float(str(json.loads(body).get("uptime_current_epoch", "")).rstrip("s"))
    except (MeshcoreError, ValueError, AttributeError):
        return None


class Scrape:
    """One proxy's Istio series at one moment.

    counters: (name, labels) -> value; histograms: labels -> (buckets, sum)
    with buckets a tuple of (le text, cumulative count) in le order. labels
    is a sorted tuple of (name, value) pairs."""

    def __init__(self, address: str, at: float, counters: dict, histograms: dict, uptime: float | None = None):
        self.address = address
        self.at = at
        self.counters = counters
        self.histograms = histograms
        self.uptime = uptime

    @property
    def has_metrics(self) -> bool:
        return bool(self.counters or self.histograms)


def parse(text: str, address: str = "", at: float = 0.0, uptime: float | None = None) -> Scrape:
    """The Istio series of a Prometheus text exposition."""
    from prometheus_client.parser import text_string_to_metric_families

    wanted = "\n".join(line for line in text.splitlines() if line.startswith(_WANTED_LINES)) + "\n"
    counters, buckets, sums = {}, {}, {}
    for family in text_string_to_metric_families(wanted):
        for s in family.samples:
            if s.name in _COUNTERS:
                counters[(s.name, tuple(sorted(s.labels.items())))] = s.value
            elif s.name == DURATION + "_bucket":
                labels = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
                buckets.setdefault(labels, []).append((s.labels["le"], s.value))
            elif s.name == DURATION + "_sum":
                sums[tuple(sorted(s.labels.items()))] = s.value
    histograms = {labels: (tuple(sorted(b, key=lambda x: float(x[0]))), sums.get(labels, 0.0))
                  for labels, b in buckets.items()}
    return Scrape(address, at, counters, histograms, uptime)


def scrape(addr: tuple[str, int], timeout: float) -> Scrape:
    """Reads one proxy's /stats/prometheus (and its uptime, best effort)."""
    where = show_address(addr)
    start = time.monotonic()
    status, body = _get(addr, "/stats/prometheus", timeout)
    at = (start + time.monotonic()) / 2  # the counters were read somewhere in between
    if status != 200:
        line = body.strip().splitlines()[0] if body.strip() else ""
        raise MeshcoreError(f"admin API at {where}: GET /stats/prometheus: {status}" + (f": {line}" if line else ""))
    try:
        return parse(body, where, at, _uptime(addr, timeout))
    except ValueError as e:
        raise MeshcoreError(f"admin API at {where}: /stats/prometheus is not Prometheus text: {e}") from None


# ---- differences over the window -------------------------------------------------------------------


class Delta:
    """What one proxy counted between two scrapes.

    counters, histograms: as in Scrape, but differences. totals: the second
    scrape's counters (TCP connections still open = opened - closed).
    resets: series counted from zero because they went down."""

    def __init__(self, address: str, elapsed: float, counters: dict, histograms: dict, totals: dict,
                 resets: int, restarted: bool, has_metrics: bool):
        self.address = address
        self.elapsed = elapsed
        self.counters = counters
        self.histograms = histograms
        self.totals = totals
        self.resets = resets
        self.restarted = restarted
        self.has_metrics = has_metrics


def restarted(before: Scrape, after: Scrape) -> bool:
    """True when the proxy's uptime says it started after the first scrape.

    Uptimes are whole seconds (meshcore, Envoy): without a restart, after >
    before + elapsed - 1; one more second of margin for the wall clock
    /server_info counts in and the moment each was read."""
    if before.uptime is None or after.uptime is None:
        return False
    return after.uptime < before.uptime + (after.at - before.at) - 2


def delta(before: Scrape, after: Scrape) -> Delta:
    """after - before, series by series, with Prometheus's counter-reset rule:
    a series that went down (or was not there before) counts from zero."""
    fresh = restarted(before, after)
    resets = 0
    counters = {}
    for key, v in after.counters.items():
        old = None if fresh else before.counters.get(key)
        if old is not None and v < old:
            resets += 1
            old = None
        counters[key] = v - (old or 0)
    histograms = {}
    for labels, (buckets, total) in after.histograms.items():
        old = None if fresh else before.histograms.get(labels)
        if old is not None:
            old_buckets, old_total = old
            if ([le for le, _ in old_buckets] != [le for le, _ in buckets]
                    or any(n < o for (_, n), (_, o) in zip(buckets, old_buckets, strict=True))):
                resets += 1
                old = None
        if old is None:
            histograms[labels] = (buckets, total)
        else:
            histograms[labels] = (tuple((le, n - o) for (le, n), (_, o) in zip(buckets, old[0], strict=True)),
                                  total - old[1])
    return Delta(after.address, after.at - before.at, counters, histograms, dict(after.counters), resets, fresh,
                 before.has_metrics or after.has_metrics)


# ---- quantiles ---------------------------------------------------------------------------------------------


def histogram_quantile(q: float, buckets) -> float | None:
    """PromQL's histogram_quantile over cumulative (upper bound, count) pairs;
    None where PromQL gives NaN (no observations, no +Inf bucket)."""
    bs = sorted((float(le), float(n)) for le, n in buckets)
    if len(bs) < 2 or not math.isinf(bs[-1][0]):
        return None
    fixed, top = [], 0.0
    for le, n in bs:  # PromQL forces cumulative counts monotonic
        top = max(top, n)
        fixed.append((le, top))
    observations = fixed[-1][1]
    if observations == 0:
        return None
    rank = q * observations
    b = next((i for i in range(len(fixed) - 1) if fixed[i][1] >= rank), len(fixed) - 1)
    if b == len(fixed) - 1:  # in the +Inf bucket: the highest finite bound
        return fixed[-2][0]
    if b == 0 and fixed[0][0] <= 0:
        return fixed[0][0]
    start, end, count = 0.0, fixed[b][0], fixed[b][1]
    if b > 0:
        start = fixed[b - 1][0]
        count -= fixed[b - 1][1]
        rank -= fixed[b - 1][1]
    return start + (end - start) * (rank / count)


# ---- rows -------------------------------------------------------------------------------------------------


def _num(v: float):
    return int(v) if float(v).is_integer() else v


def _name(ns: str, workload: str) -> str:
    return UNKNOWN if ns == workload == UNKNOWN else f"{ns}/{workload}"


def failed(labels: dict) -> bool:
    """A request fails on a 5xx, or for gRPC on a grpc-status other than OK
    (0); 4xx and 0 (no response: the client went away first) do not."""
    return labels.get("response_code", "").startswith("5") or labels.get("grpc_response_status", "") not in ("", "0")


def _matches_workload(text: str, ns: str, workload: str) -> bool:
    want_ns, _, want = text.rpartition("/")
    return workload == want and (not want_ns or ns == want_ns)


def _matches_to(text: str, lb: dict) -> bool:
    if "/" in text:
        return _matches_workload(text, lb.get("destination_workload_namespace", UNKNOWN),
                                 lb.get("destination_workload", UNKNOWN))
    svc, name, ns = (lb.get("destination_service", UNKNOWN), lb.get("destination_service_name", UNKNOWN),
                     lb.get("destination_service_namespace", UNKNOWN))
    return text in (lb.get("destination_workload", UNKNOWN), svc, name, f"{name}.{ns}")


class Filters:
    """--namespace (the destination's), --from (a source workload), --to (a
    destination workload or service)."""

    def __init__(self, namespace: str | None = None, source: str | None = None, to: str | None = None):
        self.namespace = namespace
        self.source = source
        self.to = to

    def keep(self, lb: dict, by: str) -> bool:
        if self.namespace is not None:
            ns_label = "destination_service_namespace" if by == "service" else "destination_workload_namespace"
            if lb.get(ns_label, UNKNOWN) != self.namespace:
                return False
        if self.source is not None and not _matches_workload(
                self.source, lb.get("source_workload_namespace", UNKNOWN), lb.get("source_workload", UNKNOWN)):
            return False
        return self.to is None or _matches_to(self.to, lb)


def _key(lb: dict, by: str) -> tuple:
    src = (lb.get("source_workload_namespace", UNKNOWN), lb.get("source_workload", UNKNOWN))
    if by == "service":
        return src, (lb.get("destination_service", UNKNOWN),)
    return src, (lb.get("destination_workload_namespace", UNKNOWN), lb.get("destination_workload", UNKNOWN))


class _Row:
    def __init__(self):
        self.http = self.tcp = False
        self.requests = self.successes = 0.0
        self.codes: dict[str, float] = {}
        self.rps = 0.0
        self.buckets: dict[str, float] = {}
        self.duration_sum = 0.0
        self.tcp_counts = dict.fromkeys(TCP.values(), 0.0)
        self.tcp_open = 0.0
        self.services: set[str] = set()
        self.workloads: set[str] = set()
        self.proxies: set[str] = set()
        self.sample: dict = {}


def rows(deltas, by: str = "workload", reporter: str = "auto", filters: Filters | None = None) -> list[dict]:
    """The table's rows (dicts, as `-o json` prints them) from each proxy's Delta."""
    filters = filters or Filters()
    acc: dict[tuple, _Row] = {}

    def row(lb: dict, d: Delta) -> _Row | None:
        if not filters.keep(lb, by):
            return None
        r = acc.setdefault((lb.get("reporter", UNKNOWN),) + _key(lb, by), _Row())
        r.sample = lb
        r.proxies.add(d.address)
        r.services.add(lb.get("destination_service", UNKNOWN))
        r.workloads.add(_name(lb.get("destination_workload_namespace", UNKNOWN),
                              lb.get("destination_workload", UNKNOWN)))
        return r

    for d in deltas:
        for (name, labels), v in d.counters.items():
            lb = dict(labels)
            r = row(lb, d)
            if r is None:
                continue
            if name == REQUESTS:
                r.http = True
                r.requests += v
                r.rps += v / d.elapsed if d.elapsed > 0 else 0.0
                if not failed(lb):
                    r.successes += v
                code = lb.get("response_code", UNKNOWN)
                r.codes[code] = r.codes.get(code, 0) + v
            else:
                r.tcp = True
                r.tcp_counts[TCP[name]] += v
                if name == "istio_tcp_connections_opened_total":
                    r.tcp_open += d.totals[(name, labels)]
                elif name == "istio_tcp_connections_closed_total":
                    r.tcp_open -= d.totals[(name, labels)]
        for labels, (buckets, total) in d.histograms.items():
            r = row(dict(labels), d)
            if r is None:
                continue
            r.http = True
            for le, n in buckets:
                r.buckets[le] = r.buckets.get(le, 0) + n
            r.duration_sum += total

    chosen = []
    for (rep, *key), r in acc.items():
        if reporter == "auto":
            if rep == "source" and ("destination", *key) in acc:
                continue  # the same requests, as the server's sidecar counted them
        elif reporter != "both" and rep != reporter:
            continue
        chosen.append((rep, key, r))
    out = [_row_dict(rep, key, r, by) for rep, key, r in chosen]
    out.sort(key=lambda x: (x["source"], x["destination"], x["reporter"]))
    return out


def _row_dict(reporter: str, key, r: _Row, by: str) -> dict:
    (src_ns, src), dst = key
    lb = r.sample
    d = {"reporter": reporter, "source": _name(src_ns, src), "source_workload": src, "source_namespace": src_ns}
    if by == "service":
        d.update({"destination": dst[0], "destination_service": dst[0],
                  "destination_service_name": lb.get("destination_service_name", UNKNOWN),
                  "destination_service_namespace": lb.get("destination_service_namespace", UNKNOWN),
                  "destination_workloads": sorted(r.workloads)})
    else:
        d.update({"destination": _name(*dst), "destination_workload": dst[1], "destination_namespace": dst[0],
                  "destination_services": sorted(r.services)})
    requests = int(r.requests)
    buckets = sorted(r.buckets.items(), key=lambda x: float(x[0]))
    d.update({
        "protocol": "http" if r.http else "tcp",
        "requests": requests if r.http else None,
        "successes": int(r.successes) if r.http else None,
        "failures": int(r.requests - r.successes) if r.http else None,
        "response_codes": {k: _num(v) for k, v in sorted(r.codes.items())},
        "rps": r.rps if r.http else None,
        "success_rate": r.successes / r.requests if r.requests else None,
        "latency_ms": {name: histogram_quantile(q, buckets) for name, q in QUANTILES},
        "duration_ms": {"count": _num(buckets[-1][1]) if buckets else 0, "sum": r.duration_sum,
                        "buckets": {le: _num(n) for le, n in buckets}},
        "tcp": ({k: _num(v) for k, v in r.tcp_counts.items()} | {"connections_open": _num(r.tcp_open)}
                if r.tcp else None),
        "proxies": sorted(r.proxies),
    })
    return d


# ---- output -----------------------------------------------------------------------------------------------


def _rps(v) -> str:
    if v is None:
        return "-"
    return f"{v:.1f}rps" if v == 0 or v >= 0.1 else f"{v:.2g}rps"


def _ms(v) -> str:
    if v is None:
        return "-"
    return f"{v:.2f}ms" if v < 1 else f"{v:.1f}ms" if v < 100 else f"{v:.0f}ms"


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.2f}%"


COLUMNS = [
    ("SOURCE", lambda r: r["source"]),
    ("DESTINATION", lambda r: r["destination"]),
    ("REPORTER", lambda r: r["reporter"]),
    ("RPS", lambda r: _rps(r["rps"])),
    ("SUCCESS", lambda r: _pct(r["success_rate"])),
    ("P50", lambda r: _ms(r["latency_ms"]["p50"])),
    ("P95", lambda r: _ms(r["latency_ms"]["p95"])),
    ("P99", lambda r: _ms(r["latency_ms"]["p99"])),
]
TCP_COLUMN = ("TCP CONN", lambda r: "-" if r["tcp"] is None else str(r["tcp"]["connections_open"]))


def table(rows_: list[dict]) -> str:
    columns = COLUMNS + ([TCP_COLUMN] if any(r["tcp"] is not None for r in rows_) else [])
    return render_table(columns, rows_)
