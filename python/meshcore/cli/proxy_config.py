"""`meshcore proxy-config listeners|routes|clusters|endpoints|secrets ADMIN_ADDR`
(alias `pc`): what a running proxy holds, one row per thing, from its admin
API. The rows are built by meshcore.proxy_config."""
from __future__ import annotations

import argparse
import sys

import meshcore.proxy_config as pc
from meshcore.admin.client import Admin, admin_address


def _cmd(args) -> int:
    admin = Admin(args.admin, args.timeout)
    rows = pc.select(args.kind_name, pc.collect(args.kind_name, admin), args)
    sys.stdout.write(pc.render(rows, pc.COLUMNS[args.kind_name], args.output))
    return 0


def register(subparsers) -> argparse.ArgumentParser:
    """Adds `meshcore proxy-config` (alias `pc`) to the `meshcore` subcommands."""
    cmd = subparsers.add_parser(
        "proxy-config", aliases=["pc"], help="show a running proxy's listeners, routes, clusters, endpoints, "
        "secrets (from its admin API)",
        description="Summarise a running meshcore proxy's configuration and live state from its admin API, "
                    "as `istioctl proxy-config` does for Envoy. See docs/cli.md.")
    kinds = cmd.add_subparsers(dest="kind", required=True, metavar="{" + ",".join(pc.KINDS) + "}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("admin", metavar="ADMIN_ADDR", type=admin_address,
                        help="the proxy's admin API: HOST:PORT, or a port on 127.0.0.1")
    common.add_argument("-o", "--output", choices=["table", "json", "yaml"], default="table",
                        help="table (default), or the rows as json / yaml")
    common.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the admin API (default 5)")

    def kind(name, aliases, help_text):
        p = kinds.add_parser(name, aliases=aliases, parents=[common], help=help_text, description=help_text)
        p.set_defaults(func=_cmd, kind_name=name)
        return p

    p = kind("listeners", ["listener", "l"], "a row per listener and filter chain")
    p.add_argument("--name", help="only this listener")
    p.add_argument("--port", type=int, help="only listeners on this port (bound or configured)")
    p.add_argument("--address", help="only listeners bound to this IP")
    p = kind("routes", ["route", "r"], "a row per route")
    p.add_argument("--name", help="only this route configuration")
    p.add_argument("--cluster", help="only routes sending to (or mirroring to) this cluster")
    p.add_argument("--domain", help="only virtual hosts listing this domain")
    p = kind("clusters", ["cluster", "c"], "a row per cluster, with live circuit-breaker gauges")
    p.add_argument("--name", help="only this cluster")
    p = kind("endpoints", ["endpoint", "ep"], "a row per endpoint of every cluster")
    p.add_argument("--cluster", help="only this cluster's endpoints")
    p.add_argument("--address", help="only endpoints with this IP")
    p.add_argument("--port", type=int, help="only endpoints on this port")
    p.add_argument("--status", choices=["healthy", "ejected", "unhealthy"],
                   help="only endpoints in this state")
    p = kind("secrets", ["secret", "s"], "a row per static secret (certificates and trust bundles)")
    p.add_argument("--name", help="only this secret")
    return cmd
