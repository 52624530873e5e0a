"""`meshcore control-plane token NS/SA --ca-dir CADIR [--out FILE] [--ttl D]`:
a bootstrap token for one workload identity (meshcore.controlplane.tokens).

`register_token(subparsers)` adds the `token` subcommand to the
control-plane command's subparsers (cli/control_plane.py calls it).
"""
from __future__ import annotations

import argparse

from meshcore.cli.args import lifetime


def _ns_sa(text: str) -> tuple[str, str]:
    ns, sep, sa = text.partition("/")
    if not sep or not ns or not sa or "/" in sa:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAMESPACE/SERVICE_ACCOUNT")
    return ns, sa


def run_token(args) -> int:
    import json
    import sys

    from meshcore.controlplane.tokens import TokenStore, write_token_file

    ns, sa = args.identity
    data = TokenStore(args.ca_dir).issue(ns, sa, ttl=args.ttl)
    if args.out:
        write_token_file(args.out, data)
        print(f"token for spiffe://{data['trust_domain']}/ns/{ns}/sa/{sa} until {data['expires']} "
              f"written to {args.out} (0600)")
    else:
        json.dump(data, sys.stdout, indent=1)
        print()
    return 0


def register_token(subparsers) -> None:
    tk = subparsers.add_parser("token", help="issue a bootstrap token for NAMESPACE/SERVICE_ACCOUNT (its first "
                               "certificate)")
    tk.add_argument("identity", type=_ns_sa, metavar="NAMESPACE/SERVICE_ACCOUNT")
    tk.add_argument("--ca-dir", required=True, metavar="CADIR",
                    help="the control plane's CA directory; the token's hash is kept in CADIR/tokens.json")
    tk.add_argument("--out", metavar="FILE", help="write the token file here (mode 0600); default: stdout")
    tk.add_argument("--ttl", type=lifetime("--ttl"), metavar="DURATION", help="how long the token is good "
                    "(default 7d)")
    tk.set_defaults(func=run_token)
