"""`meshcore agent --xds HOST:PORT --workload NS/NAME --token FILE --sds-socket PATH`:
istio-agent's part for a real Envoy (meshcore.agent)."""
from __future__ import annotations

from meshcore.cli.args import lifetime, workload_ref


def run(args) -> int:
    from meshcore.agent import Agent

    agent = Agent(args.xds, args.workload, args.token, args.sds_socket, ttl=args.cert_ttl, wait=args.wait)
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
    ag.set_defaults(func=run)
