"""`meshcore demo`: a small local mesh with real traffic (three sidecars, mTLS,
a 90/10 canary with retries, authorization) and its stats; meshcore.demo runs it."""
from __future__ import annotations

import argparse


def request_count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number of requests") from None
    if n < 10:
        raise argparse.ArgumentTypeError(f"{n}: at least 10 requests (a 90/10 split needs 10 to show)")
    return n


def run(args) -> int:
    from meshcore.demo import run_demo

    return run_demo(requests=200 if args.quick else args.requests, keep=args.keep)


def register(subparsers) -> None:
    dm = subparsers.add_parser("demo", help="run a small local mesh with real traffic: three sidecars, mTLS, "
                               "a 90/10 canary with retries, authorization, and its stats")
    count = dm.add_mutually_exclusive_group()
    count.add_argument("--requests", type=request_count, default=1000, metavar="N",
                       help="requests frontend sends to checkout (default 1000)")
    count.add_argument("--quick", action="store_true", help="200 requests")
    dm.add_argument("--keep", action="store_true",
                    help="keep the temporary directory: the CA, the mesh's Istio YAML, the sidecars' logs")
    dm.set_defaults(func=run)
