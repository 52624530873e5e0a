"""`meshcore check DIR`: validate a mesh directory and report what would drop
or misroute traffic. Exit status: 0 no errors (warnings allowed), 1 errors, 2 usage."""
from __future__ import annotations

import os
import sys

from meshcore.cli.args import workload_ref
from meshcore.identity import DEFAULT_TRUST_DOMAIN


def run(args) -> int:
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


def register(subparsers) -> None:
    ck = subparsers.add_parser("check", help="validate a mesh directory and report what would drop or misroute "
                               "traffic")
    ck.add_argument("directory", metavar="DIR", help="directory of Istio YAML")
    ck.add_argument("-o", "--output", choices=["text", "json"], default="text", help="output format (default text)")
    ck.add_argument("--workload", type=workload_ref, action="append", metavar="NAMESPACE/NAME",
                    help="translate for these workloads only (default: every WorkloadEntry); repeatable")
    ck.add_argument("--trust-domain", default=DEFAULT_TRUST_DOMAIN,
                    help=f"the mesh's trust domain, for principals in policies (default {DEFAULT_TRUST_DOMAIN})")
    ck.add_argument("--root-namespace", default="istio-system",
                    help="the namespace of mesh-wide policies (default istio-system, as Istio)")
    ck.set_defaults(func=run)
