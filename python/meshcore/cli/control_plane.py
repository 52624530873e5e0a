"""`meshcore control-plane --mesh-dir DIR --ca-dir CADIR`: serve xDS (ADS over
gRPC) to the mesh's proxies from a directory of Istio YAML, with a status page
(docs/control-plane.md). Runs until SIGTERM or SIGINT.

`meshcore control-plane token NS/SA` is the bootstrap-token sub-command (the
certificate service's; see the marked place below)."""
from __future__ import annotations

from meshcore.cli.args import bounded


def run(args) -> int:
    import logging
    import signal
    import threading

    from meshcore.controlplane.server import ControlPlane

    cp = ControlPlane(args.mesh_dir, args.ca_dir, listen=args.listen, status=args.status or None,
                      poll_interval=args.poll_interval, window=args.coalesce_window / 1000.0,
                      root_namespace=args.root_namespace)
    cp.start()
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    try:
        if args.address_file:  # where tests find port-0 addresses: the xDS one, then the status one
            host = args.listen.rpartition(":")[0].strip("[]")
            lines = [f"{host}:{cp.port}"]
            if cp.status_port:
                lines.append(f"{args.status.rpartition(':')[0].strip('[]')}:{cp.status_port}")
            tmp = args.address_file + ".tmp"
            with open(tmp, "w") as f:
                f.write("\n".join(lines) + "\n")
            import os

            os.replace(tmp, args.address_file)
        while not stop.wait(1.0):
            pass
        logging.getLogger("meshcore.controlplane").info("stopping")
    finally:
        cp.stop()
    return 0


def _register_token(sub) -> None:
    """`meshcore control-plane token NS/SA` (cli/control_plane_token.py): needs no mesh directory."""
    from meshcore.cli.control_plane_token import register_token

    register_token(sub)
    sub.choices["token"].set_defaults(check_args=None)


def check_args(parser, args) -> None:
    if args.mesh_dir is None or args.ca_dir is None:
        parser.error("control-plane needs --mesh-dir DIR and --ca-dir CADIR")


_ms = bounded("milliseconds", 0, 60000)
_seconds = bounded("seconds", 0.001, 60)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "control-plane", help="serve xDS (ADS over gRPC) to the proxies from a mesh directory",
        description="Watches a directory of Istio YAML, validates each change as `meshcore check` does, and "
                    "streams every connected proxy its sidecar's LDS/RDS/CDS/EDS/SDS resources over ADS "
                    "(state of the world and delta). See docs/control-plane.md.")
    p.add_argument("--mesh-dir", metavar="DIR", help="the directory of Istio YAML (watched)")
    p.add_argument("--ca-dir", metavar="CADIR", help="the CA's directory (`meshcore ca init`): trust domain and bundle")
    p.add_argument("--listen", default="127.0.0.1:15010", metavar="HOST:PORT",
                   help="the gRPC (xDS) address (default 127.0.0.1:15010; port 0 picks one)")
    p.add_argument("--status", default="127.0.0.1:15014", metavar="HOST:PORT",
                   help="the status page: /debug/syncz, /ready, /metrics (default 127.0.0.1:15014; '' for none)")
    p.add_argument("--address-file", metavar="PATH",
                   help="write the bound addresses there, one HOST:PORT a line: xDS, then status")
    p.add_argument("--root-namespace", metavar="NS", help="Istio's meshConfig.rootNamespace (default istio-system)")
    p.add_argument("--coalesce-window", type=_ms, default=30.0, metavar="MS",
                   help="changes after a push are merged for this long (default 30 ms); a lone change is pushed "
                        "at once")
    p.add_argument("--poll-interval", type=_seconds, default=0.05, metavar="SECONDS",
                   help="how often the mesh directory is looked at (default 0.05)")
    p.set_defaults(func=run, check_args=check_args)
    _register_token(p.add_subparsers(dest="control_plane_command", metavar="{token}"))
