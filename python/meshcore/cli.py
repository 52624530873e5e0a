"""The `meshcore` command."""
from __future__ import annotations

import argparse
import logging
import os
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
                  drain_timeout=args.drain_timeout, splice=args.splice, mesh_dir=args.mesh_dir,
                  workload=args.workload, outbound_address=args.outbound_address, ca_dir=args.ca_dir,
                  cert_ttl=args.cert_ttl, root_namespace=args.root_namespace)
    proxy.start()
    if args.admin_address_path:  # as Envoy's flag: where tests find a port-0 admin API
        host, port = proxy.admin.address
        with open(args.admin_address_path, "w") as f:
            f.write(f"{host}:{port}\n")
    proxy.serve_forever()
    return 0


def _cmd_check(args) -> int:
    """Exit status: 0 no errors (warnings allowed), 1 errors, 2 usage."""
    import json

    from meshcore.translate import check, load_dir

    if not os.path.isdir(args.directory):
        print(f"meshcore check: error: {args.directory}: not a directory", file=sys.stderr)
        return 2
    from meshcore.translate import Security

    mesh = load_dir(args.directory)
    findings = check(mesh, args.workload or None,
                     Security(trust_domain=args.trust_domain, root_namespace=args.root_namespace))
    errors = sum(f.is_error for f in findings)
    warnings = len(findings) - errors
    if args.output == "json":
        json.dump({"directory": args.directory, "errors": errors, "warnings": warnings,
                   "findings": [f.to_dict() for f in findings]}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for f in findings:
            print(f"{f.severity}[{f.code}] {f}")
        if findings:
            print(f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)} "
                  f"in {args.directory}")
        else:
            print(f"no issues found in {args.directory}")
    return 1 if errors else 0


def _workload_ref(text: str) -> str:
    ns, _, name = text.rpartition("/")
    if not name or "/" in ns:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAMESPACE/NAME or NAME")
    return f"{ns or 'default'}/{name}"


def _ip(text: str) -> str:
    import ipaddress

    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IP address") from None
    return text


def _duration(text: str):
    from meshcore.durations import parse_lifetime
    from meshcore.errors import ConfigError

    try:
        return parse_lifetime(text, "--cert-ttl")
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _request_count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number of requests") from None
    if n < 10:
        raise argparse.ArgumentTypeError(f"{n}: at least 10 requests (a 90/10 split needs 10 to show)")
    return n


def _cmd_demo(args) -> int:
    from meshcore.demo import run_demo

    return run_demo(requests=200 if args.quick else args.requests, keep=args.keep)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="meshcore", description="meshcore service mesh")
    p.add_argument("--version", action="version", version=f"meshcore {__version__}")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    sub = p.add_subparsers(dest="command", required=True)

    px = sub.add_parser("proxy", help="run a sidecar proxy from an Envoy v3 bootstrap file or a mesh directory")
    source = px.add_mutually_exclusive_group(required=True)
    source.add_argument("-c", "--config", help="Envoy v3 bootstrap YAML")
    source.add_argument("--mesh-dir", metavar="DIR",
                        help="directory of Istio YAML (VirtualService, DestinationRule, Service, WorkloadEntry...), "
                             "translated for --workload and reloaded when it changes")
    px.add_argument("--workload", type=_workload_ref, metavar="NAMESPACE/NAME",
                    help="with --mesh-dir: the WorkloadEntry this sidecar runs for (NAME alone: namespace default)")
    px.add_argument("--outbound-address", type=_ip,
                    help="with --mesh-dir: the address outbound listeners bind (default 127.0.0.1)")
    px.add_argument("--ca-dir", metavar="CADIR",
                    help="with --mesh-dir: the CA (meshcore ca init) that signs this sidecar's certificate; the key "
                         "is generated here, renewed at half its lifetime (docs/security.md)")
    px.add_argument("--cert-ttl", type=_duration, metavar="DURATION",
                    help="with --ca-dir: lifetime of the sidecar's certificates (default: the CA's workload_ttl)")
    px.add_argument("--root-namespace", metavar="NS",
                    help="with --mesh-dir: the namespace of mesh-wide policies (default istio-system, as Istio)")
    px.add_argument("--concurrency", type=int, default=0, help="worker threads (default: CPU count)")
    px.add_argument("--admin-address", help="HOST:PORT of the admin API "
                    "(default: the bootstrap's admin.address, else 127.0.0.1:15000)")
    px.add_argument("--admin-address-path", help="write the admin API's bound HOST:PORT to this file")
    px.add_argument("--drain-timeout", type=float, default=5.0,
                    help="seconds connections get to finish on shutdown (default 5)")
    px.add_argument("--splice", default="auto", choices=["auto", "always", "never"],
                    help="splice(2) use for plaintext TCP (default auto: bulk transfers)")
    px.set_defaults(func=_cmd_proxy)

    ck = sub.add_parser("check", help="validate a mesh directory and report what would drop or misroute traffic")
    ck.add_argument("directory", metavar="DIR", help="directory of Istio YAML")
    ck.add_argument("-o", "--output", choices=["text", "json"], default="text", help="output format (default text)")
    ck.add_argument("--workload", type=_workload_ref, action="append", metavar="NAMESPACE/NAME",
                    help="translate for these workloads only (default: every WorkloadEntry); repeatable")
    ck.add_argument("--trust-domain", default="cluster.local",
                    help="the mesh's trust domain, for principals in policies (default cluster.local)")
    ck.add_argument("--root-namespace", default="istio-system",
                    help="the namespace of mesh-wide policies (default istio-system, as Istio)")
    ck.set_defaults(func=_cmd_check)

    dm = sub.add_parser("demo", help="run a small local mesh with real traffic: three sidecars, mTLS, "
                        "a 90/10 canary with retries, authorization, and its stats")
    count = dm.add_mutually_exclusive_group()
    count.add_argument("--requests", type=_request_count, default=1000, metavar="N",
                       help="requests frontend sends to checkout (default 1000)")
    count.add_argument("--quick", action="store_true", help="200 requests")
    dm.add_argument("--keep", action="store_true",
                    help="keep the temporary directory: the CA, the mesh's Istio YAML, the sidecars' logs")
    dm.set_defaults(func=_cmd_demo)
    __import__("meshcore.ca_cli").ca_cli.add_ca_parser(sub)  # `meshcore ca ...`: python/meshcore/ca_cli.py
    __import__("meshcore.proxy_config").proxy_config.add_parser(sub)
    __import__("meshcore.stat_cli").stat_cli.add_parser(sub)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "proxy":
        if args.mesh_dir is not None and args.workload is None:
            parser.error("proxy --mesh-dir needs --workload NAMESPACE/NAME")
        if args.mesh_dir is None and (args.workload is not None or args.outbound_address is not None):
            parser.error("proxy --workload and --outbound-address only apply with --mesh-dir")
        if args.mesh_dir is None and (args.ca_dir or args.root_namespace):
            parser.error("proxy --ca-dir and --root-namespace only apply with --mesh-dir")
        if args.cert_ttl is not None and not args.ca_dir:
            parser.error("proxy --cert-ttl needs --ca-dir")
        args.outbound_address = args.outbound_address or "127.0.0.1"
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
