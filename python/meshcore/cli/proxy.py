"""`meshcore proxy`: run a sidecar from an Envoy v3 bootstrap file (-c), a
directory of Istio YAML (--mesh-dir, for one --workload) or a control plane
over xDS (--xds, for one --workload)."""
from __future__ import annotations

from meshcore.cli.args import ip, lifetime, workload_ref


def run(args) -> int:
    from meshcore.proxy import Proxy

    xds = None
    if args.xds is not None:
        from meshcore.proxy_xds import XdsSource

        # --outbound-address: the IP the node id names; the control plane binds this sidecar's
        # outbound listeners there (several sidecars on one machine, as in the demo)
        xds = XdsSource(args.xds, mode=args.xds_mode, token_file=args.token, service_account=args.service_account,
                        node_ip=args.node_ip, cert_ttl=args.cert_ttl)
    proxy = Proxy(args.config, concurrency=args.concurrency, admin_address=args.admin_address,
                  drain_timeout=args.drain_timeout, splice=args.splice, mesh_dir=args.mesh_dir,
                  workload=args.workload, outbound_address=args.outbound_address, ca_dir=args.ca_dir,
                  cert_ttl=args.cert_ttl, root_namespace=args.root_namespace, xds=xds)
    proxy.start()
    if args.admin_address_path:  # as Envoy's flag: where tests find a port-0 admin API
        host, port = proxy.admin.address
        with open(args.admin_address_path, "w") as f:
            f.write(f"{host}:{port}\n")
    proxy.serve_forever()
    return 0


def check_args(parser, args) -> None:
    """What argparse alone cannot say: flags that only apply together (parser.error: exit 2)."""
    if args.mesh_dir is not None and args.workload is None:
        parser.error("proxy --mesh-dir needs --workload NAMESPACE/NAME")
    if args.xds is not None and args.workload is None:
        parser.error("proxy --xds needs --workload NAMESPACE/NAME")
    if args.xds is None and (args.token or args.service_account or args.xds_mode):
        parser.error("proxy --token, --service-account and --xds-mode only apply with --xds")
    if args.mesh_dir is None and args.xds is None and args.outbound_address is not None:
        parser.error("proxy --outbound-address only applies with --mesh-dir or --xds")
    if args.mesh_dir is None and args.xds is None and args.workload is not None:
        parser.error("proxy --workload only applies with --mesh-dir or --xds")
    if args.mesh_dir is None and (args.ca_dir or args.root_namespace):
        parser.error("proxy --ca-dir and --root-namespace only apply with --mesh-dir")
    if args.cert_ttl is not None and not args.ca_dir and args.xds is None:
        parser.error("proxy --cert-ttl needs --ca-dir or --xds")
    args.node_ip = args.outbound_address if args.xds is not None else None  # None: the IP towards the control plane
    args.outbound_address = args.outbound_address or "127.0.0.1"
    args.xds_mode = args.xds_mode or "delta"


def register(subparsers) -> None:
    px = subparsers.add_parser("proxy", help="run a sidecar proxy from an Envoy v3 bootstrap file or a mesh directory")
    source = px.add_mutually_exclusive_group(required=True)
    source.add_argument("-c", "--config", help="Envoy v3 bootstrap YAML")
    source.add_argument("--mesh-dir", metavar="DIR",
                        help="directory of Istio YAML (VirtualService, DestinationRule, Service, WorkloadEntry...), "
                             "translated for --workload and reloaded when it changes")
    source.add_argument("--xds", metavar="HOST:PORT",
                        help="a control plane (meshcore control-plane): config over ADS, the certificate by CSR "
                             "(docs/xds-client.md)")
    px.add_argument("--workload", type=workload_ref, metavar="NAMESPACE/NAME",
                    help="with --mesh-dir or --xds: the WorkloadEntry this sidecar runs for "
                         "(NAME alone: namespace default)")
    px.add_argument("--token", metavar="FILE",
                    help="with --xds: the bootstrap token (meshcore control-plane token NS/SA) for the first "
                         "certificate")
    px.add_argument("--xds-mode", choices=["delta", "sotw"],
                    help="with --xds: incremental (delta, the default) or state-of-the-world ADS")
    px.add_argument("--service-account", metavar="SA",
                    help="with --xds: the workload's service account (default: default)")
    px.add_argument("--outbound-address", type=ip,
                    help="with --mesh-dir: the address outbound listeners bind (default 127.0.0.1); with --xds: the IP "
                         "in the node id, where the control plane binds this sidecar's outbound listeners")
    px.add_argument("--ca-dir", metavar="CADIR",
                    help="with --mesh-dir: the CA (meshcore ca init) that signs this sidecar's certificate; the key "
                         "is generated here, renewed at half its lifetime (docs/security.md)")
    px.add_argument("--cert-ttl", type=lifetime("--cert-ttl"), metavar="DURATION",
                    help="with --ca-dir or --xds: lifetime of the sidecar's certificates "
                         "(default: the CA's workload_ttl)")
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
    px.set_defaults(func=run, check_args=check_args)
