"""bench_telemetry.py's reporting: the on/off rows with the issue's budget, the tables,
the telemetry reported, the warnings and counters printed, and each result as JSON.
"""
from __future__ import annotations

from dataclasses import dataclass

from bench_http import (
    had_errors,
    print_target_tables,
)
from common import (
    Target,
    fmt,
    measurement_dict,
    print_table,
    ratio,
)
from telemetry_configs import SAMPLING_PERCENT
from telemetry_measure import SETTLE_S, Result

# Added latency <= 0 is clamped to this (wrk's resolution) before dividing.
ADDED_LATENCY_EPSILON_MS = 0.001

# Above this share of one core used by other work during a run, the row is flagged.
NOISY_SHARE = 0.10

# Client connections carrying requests per target (check, warm-up 32, 1, 32),
# and the point past which upstream connections were not kept alive.
CLIENT_CONNS = 1 + 32 + 1 + 32
CHURN_CONNS = CLIENT_CONNS + 32


# The budget: meshcore's CPU per request with telemetry on / off.
BUDGET = 1.10
TARGETS = [
    Target("cpu_us_per_rq_c1", "CPU/request @1 conn", "off", "max", BUDGET),
    Target("cpu_us_per_rq_c32", "CPU/request @32 conns", "off", "max", BUDGET),
]


# The on-vs-off comparison: (metric, label, unit scale for display, digits).
COMPARED = [
    ("cpu_us_per_rq_c1", "CPU us/request @1", 1, 2),
    ("cpu_us_per_rq_c32", "CPU us/request @32", 1, 2),
    ("added_p50_ms", "added p50 us", 1000, 0),
    ("added_p99_ms", "added p99 us", 1000, 0),
    ("rps_c32", "req/s @32", 1, 0),
    ("peak_rss_mib", "peak RSS MiB", 1, 1),
]


@dataclass
class OnOffRow:
    subject: str    # "meshcore on"
    peer: str       # "meshcore off"
    metric: str
    label: str
    off: float | None
    on: float | None
    ratio: float | None
    target: str | None = None
    met: bool | None = None
    note: str = ""


def on_off_rows(results: dict[str, Result]) -> list[OnOffRow]:
    rows = []
    for r in results.values():
        v = r.variant
        if v is None or not v.on or not r.metrics:
            continue
        off = results.get(f"{v.proxy}-off")
        if off is None or not off.metrics:
            continue
        for metric, label, _, _ in COMPARED:
            a, b = r.metrics.get(metric), off.metrics.get(metric)
            q = ratio(a, b)
            target = next((t for t in TARGETS if t.metric == metric), None) if v.budget else None
            notes = []
            if metric.startswith("added_"):
                pct = metric.split("_")[1]
                who = [x.name for x in (r, off) if x.metrics.get(f"{pct}_clamped")]
                if who:
                    notes.append(f"{', '.join(who)} clamped to {ADDED_LATENCY_EPSILON_MS * 1000:g} us")
            erred = [x.name for x in (r, off) if had_errors(x)]
            if erred:
                notes.append(f"errors: {', '.join(erred)}")
            rows.append(OnOffRow(r.name, off.name, metric, label, b, a, q,
                                 target.describe() if target else None,
                                 target.met(q) if target and q is not None else None,
                                 "; ".join(notes)))
    return rows


def print_results(results: dict[str, Result], rows: list[OnOffRow]) -> None:
    print_target_tables(results)
    print("\n  @1 = wrk -c1 (latency), @32 = wrk -c32 (throughput); +p50/+p99 = added over direct;\n"
          "  non-2xx, sock err = wrk's counts over both measured runs;\n"
          f"  CPU = the proxy process's utime+stime from the start of that wrk run to {SETTLE_S:g} s "
          "after its end\n  (deferred log and span work included) / requests wrk completed;\n"
          "  core @32 = share of its core the proxy used during the -c32 run;\n"
          "  RSS start = once listening, end = after the runs, + = end - start, peak = VmHWM;\n"
          f"  upstream conns = connections opened to the upstream nginx over the whole target;\n"
          "  others = CPU on the two cores used by anything else (other jobs, hypervisor steal;\n"
          "  not the trace collector) during the noisier of its two runs, as a share of one core.")
    noisy = [r.name for r in results.values() if (r.metrics.get("others") or 0) > NOISY_SHARE]
    if noisy:
        print(f"  WARNING: {', '.join(noisy)} ran while other work took > {NOISY_SHARE:.0%} "
              "of a core: their figures are\n  suspect; rerun when the machine is quiet.")
    unsaturated = [r.name for r in results.values()
                   if (r.metrics.get("core_busy_c32") or 1.0) < 0.9]
    if unsaturated:
        print(f"  note: {', '.join(unsaturated)} used < 90% of the proxy core at 32 conns, so "
              "the proxy was not what\n  limited req/s: CPU/rq is the better efficiency figure.")
    churn = [f"{r.name} ({r.upstream_conns:,})" for n, r in results.items()
             if n != "direct" and r.upstream_conns is not None and r.upstream_conns > CHURN_CONNS]
    if churn:
        print(f"  WARNING: upstream connections not kept alive by {', '.join(churn)}: more than "
              f"{CHURN_CONNS} opened\n  ({CLIENT_CONNS} client connections carried requests).")

    print_telemetry(results)
    print_errors(results)
    print_counters(results)

    if not rows:
        print("\nno on/off ratios: a proxy must have run with telemetry both off and on.")
        return
    print("\ntelemetry on vs off (ratio = on / off, same proxy, same run; budget from the issue):\n")
    table = []
    for row in rows:
        scale, digits = next((s, d) for m, _, s, d in COMPARED if m == row.metric)
        off = row.off * scale if row.off is not None else None
        on = row.on * scale if row.on is not None else None
        delta = on - off if on is not None and off is not None else None
        verdict = "" if row.met is None else ("met" if row.met else "MISSED")
        if row.target and row.ratio is None:
            verdict = "n/a"
        table.append([row.subject, row.label, fmt(off, digits), fmt(on, digits),
                      "n/a" if delta is None else f"{delta:+,.{digits}f}",
                      fmt(row.ratio, 3, "x"), row.target or "-", verdict or "-", row.note])
    print_table(["target", "metric", "off", "on", "on - off", "on/off", "target", "verdict",
                 "note"], table)
    print(f"\n  added latency <= 0 is clamped to {ADDED_LATENCY_EPSILON_MS * 1000:g} us before "
          "dividing (noted where it happened).")
    print_budget(results, rows)


def _ratio_of(rows: list[OnOffRow], subject: str, metric: str) -> float | None:
    return next((r.ratio for r in rows if r.subject == subject and r.metric == metric), None)


def print_budget(results: dict[str, Result], rows: list[OnOffRow]) -> None:
    judged = [r for r in rows if r.met is not None]
    if judged:
        parts = [f"@{r.metric.rsplit('_c', 1)[1]} {r.ratio:.3f}x {'met' if r.met else 'MISSED'}"
                 for r in judged]
        print(f"  budget: meshcore CPU/request telemetry-on / telemetry-off <= {BUDGET:.2f}: "
              + "; ".join(parts))
    elif "meshcore-on" in results:
        print(f"  budget: meshcore CPU/request telemetry-on / telemetry-off <= {BUDGET:.2f}: n/a "
              "(meshcore on or off did not run)")
    for r in results.values():
        v = r.variant
        if v is None or not v.on or v.budget:
            continue
        c1 = _ratio_of(rows, r.name, "cpu_us_per_rq_c1")
        c32 = _ratio_of(rows, r.name, "cpu_us_per_rq_c32")
        if c1 is None and c32 is None:
            continue
        print(f"  for information: {r.name} ({v.telemetry}{'; ' + v.note if v.note else ''}): "
              f"CPU/request on/off @1 {fmt(c1, 3, 'x')}, @32 {fmt(c32, 3, 'x')}")
    if judged:
        met = sum(1 for r in judged if r.met)
        print(f"  {met}/{len(judged)} targets met "
              "(reported only: a miss does not fail the run; compare ratios within one run).")


def scrape_summary(scrapes: list) -> str:
    if not scrapes:
        return "none"
    times = ", ".join(f"{s[2]:.0f}" for s in scrapes)
    return f"{len(scrapes)}: {times} ms, {scrapes[-1][3] / 1024:.0f} KiB"


def print_telemetry(results: dict[str, Result]) -> None:
    """What each telemetry-on target reported, against the requests it served."""
    shown = [r for r in results.values() if r.telemetry is not None]
    if not shown:
        return
    print("\ntelemetry reported (whole target: check request, warm-up and both runs):\n")
    table = []
    for r in shown:
        t, v = r.telemetry, r.variant
        wrk_total = (r.metrics.get("requests_total") or 0) + 1
        scrapes = [s for s in t.scrapes if s[1] == 200]
        expect = (t.proxy_requests or wrk_total) * SAMPLING_PERCENT / 100
        table.append([
            r.name,
            fmt(wrk_total),
            fmt(t.proxy_requests),
            fmt(t.log_lines) if v.access_log else "-",
            fmt(t.counters.get("server.access_log_dropped")) if v.proxy == "meshcore" else "-",
            (f"{t.spans_received:,} / {expect:,.0f}" if t.spans_received is not None else "n/a")
            if v.tracing else "-",
            fmt(t.collector_posts) if v.tracing else "-",
            fmt(t.istio_requests, 0) if v.metrics else "-",
            scrape_summary(scrapes) if v.metrics else "-",
            "ok" if not t.problems else f"{len(t.problems)} PROBLEM(S)",
        ])
    print_table(["target", "wrk + check", "proxy rq", "log lines", "log dropped",
                 f"spans / {SAMPLING_PERCENT:g}%", "exports", "istio_requests", "scrapes",
                 "check"], table)
    print("  wrk + check = requests wrk completed (warm-up and runs) + the check request;\n"
          "  proxy rq = downstream_rq_total (admin API; it also counts the requests wrk left in "
          "flight);\n"
          "  log lines = lines in the access log once the proxy stopped (HAProxy: its \"GET\" "
          "lines);\n"
          "  log dropped = meshcore's server.access_log_dropped;\n"
          f"  spans = received by the collector / {SAMPLING_PERCENT:g}% of proxy rq; "
          "exports = OTLP POSTs received;\n"
          "  istio_requests = sum of istio_requests_total in a scrape after the runs;\n"
          "  scrapes = /stats/prometheus: before the warm-up (not measured), halfway through "
          "each\n  measured run, after the runs; their time and the last one's size.")
    for r in shown:
        if r.variant.note:
            print(f"  {r.name}: {r.variant.telemetry}; {r.variant.note}")
        else:
            print(f"  {r.name}: {r.variant.telemetry}")


def print_errors(results: dict[str, Result]) -> None:
    """Per-target error counts and telemetry problems; meshcore's in a banner."""
    for r in results.values():
        m = r.metrics
        lines = []
        if m and had_errors(r):
            lines.append(f"{m['errors']:,} errors in the measured runs (non-2xx {m['non2xx']:,}, "
                         f"socket {m['socket_errors']:,}), {m['warmup_errors']:,} in the warm-up")
        if r.telemetry is not None:
            lines += [f"telemetry: {p}" for p in r.telemetry.problems]
        if not lines:
            continue
        if r.name.startswith("meshcore"):
            bar = "!" * 78
            body = "\n".join(f"!!! {r.name}: {x}" for x in lines)
            print(f"\n{bar}\n{body}\n!!! see its counters below and its log (rerun with "
                  f"--keep-workdir).\n{bar}")
        else:
            for x in lines:
                print(f"  WARNING: {r.name}: {x}")


def print_counters(results: dict[str, Result]) -> None:
    shown = [r for r in results.values() if r.counters or r.counters_note]
    if not shown:
        return
    print("\nproxy-side counters (admin API, whole target; non-zero error-like ones and telemetry "
          "ones listed):")
    for r in shown:
        if r.counters_note and not r.counters:
            print(f"  {r.name}: {r.counters_note}")
            continue
        ctx = {k: val for k, val in r.counters.items() if k.endswith(("downstream_cx_total",
               "downstream_rq_total")) or (k.startswith("cluster.") and
                                           k.endswith(("upstream_cx_total", "upstream_rq_total"))
                                           and not k.startswith("cluster.collector."))}
        notable = {k: val for k, val in r.counters.items() if k not in ctx}
        wrk_total = r.metrics.get("requests_total")
        head = ", ".join(f"{k.rsplit('.', 1)[1]} {val:,}" for k, val in ctx.items())
        print(f"  {r.name}: {head}" + (f" (wrk completed {wrk_total:,})" if wrk_total else ""))
        for k, val in notable.items():
            print(f"    {k}: {val:,}")
        if not notable:
            print("    no error, reset, retry, non-2xx or telemetry counter is set")
    print("  (wrk closes its connections with requests in flight at the end of each run: a few\n"
          "  dozen resets or cancelled requests per target are expected, not errors)")



def result_dict(r: Result) -> dict:
    t = r.telemetry
    return {
        "target": r.name,
        "proxy": r.variant.proxy if r.variant else None,
        "telemetry": r.variant.telemetry if r.variant else None,
        "warmup": r.warmup.to_dict() if r.warmup else None,
        "c1": measurement_dict(r.c1),
        "c32": measurement_dict(r.c32),
        "metrics": r.metrics,
        "counters": r.counters,
        "reported": None if t is None else {
            "log_lines": t.log_lines, "proxy_requests": t.proxy_requests,
            "spans_received": t.spans_received, "collector_posts": t.collector_posts,
            "istio_requests_total": t.istio_requests,
            "scrapes": [{"when": s[0], "status": s[1], "ms": s[2], "bytes": s[3]} for s in t.scrapes],
            "problems": t.problems,
        },
        "skipped": r.skipped,
        "failed": r.failed,
    }


