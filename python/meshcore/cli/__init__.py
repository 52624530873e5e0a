"""The `meshcore` command: one module per subcommand, registered one way.

    proxy.py         meshcore proxy          run a sidecar (-c FILE, or --mesh-dir DIR --workload NS/NAME)
    check.py         meshcore check DIR      validate a mesh directory
    demo.py          meshcore demo           a local mesh with real traffic
    ca.py            meshcore ca ...         the certificate authority
    proxy_config.py  meshcore proxy-config   a running proxy's config and live state (alias pc)
    stat.py          meshcore stat           golden signals between workloads
    control_plane.py meshcore control-plane  serve xDS to the proxies from a mesh directory
    proxy_status.py  meshcore proxy-status   what every proxy connected to a control plane has ACKed
    agent.py         meshcore agent          CSR + local SDS for a real Envoy
    args.py          argparse types the subcommands share

Each subcommand module defines register(subparsers), which adds its parser
and sets `func` (run it: an exit status) and, where flags depend on each
other, `check_args(parser, args)`. Heavy imports happen in `func`, not at
registration: `meshcore proxy` builds the whole parser too.
"""
from __future__ import annotations

import argparse
import logging
import sys

from meshcore import __version__
from meshcore.cli import agent, ca, check, control_plane, demo, proxy, proxy_config, proxy_status, stat
from meshcore.errors import MeshcoreError

# in `meshcore --help` order
COMMANDS = (proxy, control_plane, check, demo, ca, proxy_config, proxy_status, stat, agent)


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="[%(asctime)s.%(msecs)03d][%(levelname)s][%(name)s] %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
        stream=sys.stderr,
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="meshcore", description="meshcore service mesh")
    p.add_argument("--version", action="version", version=f"meshcore {__version__}")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    sub = p.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(sub)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_args = getattr(args, "check_args", None)
    if check_args is not None:
        check_args(parser, args)
    _setup_logging(args.log_level)
    try:
        return args.func(args)
    except MeshcoreError as e:
        print(f"meshcore: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
