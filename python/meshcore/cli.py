"""The `meshcore` command."""
from __future__ import annotations

import argparse
import logging
import sys

from meshcore import __version__
from meshcore.errors import MeshcoreError


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="[%(asctime)s.%(msecs)03d][%(levelname)s][%(name)s] %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
        stream=sys.stderr,
    )


def _cmd_proxy(args) -> int:
    from meshcore.proxy import Proxy

    proxy = Proxy(args.config, concurrency=args.concurrency, admin_address=args.admin_address,
                  drain_timeout=args.drain_timeout, splice=args.splice)
    proxy.start()
    if args.admin_address_path:  # as Envoy's flag: where tests find a port-0 admin API
        host, port = proxy.admin.address
        with open(args.admin_address_path, "w") as f:
            f.write(f"{host}:{port}\n")
    proxy.serve_forever()
    return 0


def _cmd_demo(args) -> int:
    from meshcore.demo import run_demo

    return run_demo(connections=args.connections)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="meshcore", description="meshcore service mesh")
    p.add_argument("--version", action="version", version=f"meshcore {__version__}")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    sub = p.add_subparsers(dest="command", required=True)

    px = sub.add_parser("proxy", help="run a sidecar proxy from an Envoy v3 bootstrap file")
    px.add_argument("-c", "--config", required=True, help="Envoy v3 bootstrap YAML")
    px.add_argument("--concurrency", type=int, default=0, help="worker threads (default: CPU count)")
    px.add_argument("--admin-address", help="HOST:PORT of the admin API "
                    "(default: the bootstrap's admin.address, else 127.0.0.1:15000)")
    px.add_argument("--admin-address-path", help="write the admin API's bound HOST:PORT to this file")
    px.add_argument("--drain-timeout", type=float, default=5.0,
                    help="seconds connections get to finish on shutdown (default 5)")
    px.add_argument("--splice", default="auto", choices=["auto", "always", "never"],
                    help="splice(2) use for plaintext TCP (default auto: bulk transfers)")
    px.set_defaults(func=_cmd_proxy)

    dm = sub.add_parser("demo", help="run a small local mesh with real traffic and show its stats")
    dm.add_argument("--connections", type=int, default=300)
    dm.set_defaults(func=_cmd_demo)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
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
