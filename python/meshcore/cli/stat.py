"""`meshcore stat ADMIN_ADDR [ADMIN_ADDR ...]`: golden signals between workloads
(requests per second, success rate, latency), read from the proxies' Istio
metrics over their admin APIs. The work is meshcore.telemetry.golden_signals."""
from __future__ import annotations

import argparse
import logging
import math
import sys
import time

from meshcore.admin.client import admin_address, show_address
from meshcore.errors import MeshcoreError
from meshcore.telemetry import golden_signals as gs

log = logging.getLogger("meshcore.stat")


def _window(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected seconds") from None
    if not (v > 0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"{text!r}: the window must be more than 0 seconds")
    return v


def _cmd(args) -> int:
    import json

    addrs = list(dict.fromkeys(args.admin))  # the same proxy twice would count twice
    errors: list[str] = []
    first: dict = {}
    for addr in addrs:
        try:
            first[addr] = gs.scrape(addr, args.timeout)
        except MeshcoreError as e:
            errors.append(str(e))
    second: dict = {}
    if first:
        where = ", ".join(show_address(a) for a in first)
        log.debug("first scrape done: %s; next in %gs", where, args.window)
        if sys.stderr.isatty():
            print(f"meshcore stat: sampling {where} for {args.window:g}s...", file=sys.stderr, flush=True)
        time.sleep(args.window)
        for addr in first:
            try:
                second[addr] = gs.scrape(addr, args.timeout)
            except MeshcoreError as e:
                errors.append(str(e))
    for e in errors:
        print(f"meshcore: error: {e}", file=sys.stderr)
    if not second:
        return 1
    deltas = [gs.delta(first[a], second[a]) for a in second]
    for d in deltas:
        if not d.has_metrics:
            print(f"meshcore: {d.address}: {gs.NO_METRICS}", file=sys.stderr)
        if d.restarted:
            log.info("%s restarted during the window: its counters are counted from zero", d.address)
    result = gs.rows(deltas, args.by, args.reporter, gs.Filters(args.namespace, args.source, args.to))
    if args.output == "json":
        doc = {"window_seconds": args.window, "reporter": args.reporter, "by": args.by,
               "proxies": [{"address": d.address, "elapsed_seconds": d.elapsed, "istio_metrics": d.has_metrics,
                            "counter_resets": d.resets, "restarted": d.restarted} for d in deltas],
               "errors": errors, "rows": result}
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    else:
        sys.stdout.write(gs.table(result))
    return 1 if errors else 0


def register(subparsers) -> argparse.ArgumentParser:
    """Adds `meshcore stat` to the `meshcore` subcommands."""
    p = subparsers.add_parser(
        "stat", help="requests per second, success rate and latency between workloads (from proxies' admin APIs)",
        description="Golden signals per source -> destination, as `linkerd viz stat` shows them: every proxy's "
                    "Istio metrics (/stats/prometheus) are read twice, WINDOW seconds apart, and the table shows "
                    "what was counted in between. See docs/cli.md.")
    p.add_argument("admin", nargs="+", metavar="ADMIN_ADDR", type=admin_address,
                   help="a proxy's admin API: HOST:PORT, or a port on 127.0.0.1; several proxies are combined")
    p.add_argument("--window", type=_window, default=10.0, metavar="SECONDS",
                   help="seconds between the two scrapes (default 10)")
    p.add_argument("--reporter", choices=gs.REPORTERS, default="auto",
                   help="whose count to show: auto (default) the destination sidecar's where one reports the "
                        "pair, else the source's; source; destination; both, as separate rows")
    p.add_argument("--by", choices=["workload", "service"], default="workload",
                   help="rows per source workload -> destination workload (default) or destination service")
    p.add_argument("-o", "--output", choices=["table", "json"], default="table",
                   help="table (default), or json: unrounded numbers and the raw counts")
    p.add_argument("-n", "--namespace", metavar="NS", help="only destinations in this namespace")
    p.add_argument("--from", dest="source", metavar="[NS/]WORKLOAD", help="only requests from this workload")
    p.add_argument("--to", metavar="[NS/]WORKLOAD|SERVICE",
                   help="only requests to this workload, or this service (host, NAME or NAME.NS)")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for each admin API (default 5)")
    p.set_defaults(func=_cmd)
    return p
