"""bench_mtls.py's run of one pair: start it, check it, the wrk runs, the handshake runs."""
from __future__ import annotations

import http.client
import subprocess

from common import (
    BenchError,
    Proc,
    measure_group,
    nginx_accepts,
    peak_rss_kib,
    rss_kib,
    run_wrk,
    wait_port,
)
from mtls_checks import check_request, check_tls_counters, read_counters, run_probes
from mtls_configs import ADMIN_PAIRS, STARTERS
from mtls_handshakes import HS_CONNS, run_handshakes
from mtls_results import Result


def bench_pair(name: str, ctx: dict, args) -> Result:
    res = Result(name)
    procs: dict[str, Proc] = {}
    ports = ctx["ports"]
    admin = name in ADMIN_PAIRS and (name != "meshcore" or ctx["meshcore_launcher"] == "cli")
    accepts_before = nginx_accepts(ctx["upstream_port"])
    try:
        try:
            STARTERS[name](ctx, procs)
        except (BenchError, OSError) as e:
            res.failed = f"could not start: {e}"
            return res
        wait_port(ports["server_port"], proc=procs["server"])
        wait_port(ports["client_port"], proc=procs["client"])
        res.pids = {role: p.pid for role, p in procs.items()}
        res.idle_rss_kib = {role: rss_kib(p.pid) for role, p in procs.items()}

        check_request(ports["client_port"], procs)
        if admin:
            res.counters = check_tls_counters(ctx)
        elif name == "meshcore":
            res.counters_note = "inline launcher: no admin API (TLS shown by the probes only)"
        run_probes(name, ports["server_port"], ctx["certs"], res)

        url = f"http://127.0.0.1:{ports['client_port']}/"
        pids = [procs["client"].pid, procs["server"].pid]

        def alive():
            for p in procs.values():
                p.check_alive()

        res.warmup = run_wrk(url, 32, args.warmup, core=args.load_core)
        alive()
        res.c1 = measure_group(url, 1, args.duration, True, pids, ctx["upstream_pid"],
                               args.proxy_core, args.load_core)
        alive()
        res.c32 = measure_group(url, 32, args.duration, True, pids, ctx["upstream_pid"],
                                args.proxy_core, args.load_core)
        alive()
        # Minus one: the reading's own connection.
        res.upstream_conns = nginx_accepts(ctx["upstream_port"]) - accepts_before - 1
        if admin:
            try:
                res.counters = read_counters(ctx)
            except (OSError, http.client.HTTPException, BenchError) as e:
                res.counters_note = f"admin API unreadable: {e}"

        others = [procs["client"].pid, ctx["upstream_pid"]]
        for conns in HS_CONNS:
            res.handshakes[conns] = run_handshakes(
                ports["server_port"], conns, procs["server"], others, ctx, args,
                ctx["server_admin_port"] if admin else None)
        alive()
        res.peak_rss_kib = {role: peak_rss_kib(p.pid) for role, p in procs.items()}
    except (BenchError, OSError, subprocess.SubprocessError, ValueError) as e:
        res.failed = str(e)
    finally:
        for role in ("client", "server"):
            if role in procs:
                procs[role].stop()
    return res

