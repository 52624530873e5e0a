"""`meshcore agent --xds HOST:PORT --workload NS/NAME --token FILE --sds-socket PATH`:
istio-agent's part for a real Envoy (meshcore.agent)."""
from __future__ import annotations

from meshcore.cli.args import lifetime, workload_ref


def run(args) -> int:
    from meshcore.agent import Agent

    bootstrap = None
    if args.envoy_bootstrap:
        bootstrap = {"path": args.envoy_bootstrap, "ip": args.ip, "mode": args.ads,
                     "labels": dict(label.split("=", 1) for label in args.label)}
    agent = Agent(args.xds, args.workload, args.token, args.sds_socket, ttl=args.cert_ttl, wait=args.wait,
                  envoy_bootstrap=bootstrap)
    agent.start()
    agent.serve_forever()
    return 0


def register(subparsers) -> None:
    ag = subparsers.add_parser("agent", help="get a workload's certificate from the control plane by CSR, renew "
                               "it, and serve it to Envoy over SDS on a Unix socket")
    ag.add_argument("--xds", required=True, metavar="HOST:PORT",
                    help="the control plane's gRPC address (its certificate service)")
    ag.add_argument("--workload", required=True, type=workload_ref, metavar="NAMESPACE/NAME",
                    help="the workload this agent runs for (its namespace must be the token's)")
    ag.add_argument("--token", required=True, metavar="FILE",
                    help="bootstrap token file (meshcore control-plane token NS/SA)")
    ag.add_argument("--sds-socket", required=True, metavar="PATH",
                    help="Unix socket to serve SDS on (secrets `default` and `ROOTCA`); created once the first "
                         "certificate is there")
    ag.add_argument("--cert-ttl", type=lifetime("--cert-ttl"), metavar="DURATION",
                    help="lifetime to ask for (default: the CA's workload_ttl)")
    ag.add_argument("--wait", type=float, default=30.0, metavar="SECONDS",
                    help="how long to retry an unreachable control plane at start (default 30)")
    ag.add_argument("--envoy-bootstrap", metavar="PATH",
                    help="also write the Envoy sidecar's bootstrap here, as istio-agent does: ADS to --xds on the "
                         "cluster xds-grpc, SDS on --sds-socket (cluster sds-grpc), admin on 127.0.0.1:0")
    ag.add_argument("--ip", default="127.0.0.1", metavar="IP",
                    help="the workload's IP for the node id sidecar~IP~NAME.NS~NS.svc.cluster.local (the control "
                         "plane binds its outbound listeners there; default 127.0.0.1)")
    ag.add_argument("--label", action="append", default=[], type=_label, metavar="KEY=VALUE",
                    help="a workload label for the node metadata LABELS (repeatable)")
    ag.add_argument("--ads", choices=("delta", "sotw"), default="delta",
                    help="the bootstrap's ADS variant: delta (DELTA_GRPC, the default) or sotw (GRPC)")
    ag.set_defaults(func=run)


def _label(text: str) -> str:
    import argparse

    if "=" not in text or not text.split("=", 1)[0]:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return text
