"""`meshcore ca ...`: the certificate authority's commands (meshcore.ca does the work).

    ca init      create a trust domain: root (+ intermediate), bundle, ca.yaml
    ca issue     key generated right here + workload certificate into a directory
    ca csr       a key (generated if missing) and a CSR for a SPIFFE ID
    ca sign-csr  sign a CSR: the pure CSR flow, no key travels
    ca bundle    several CAs' roots in one trust bundle (root rotation)
    ca inspect   what a certificate, chain, CSR or key file holds

Registered like every subcommand, by register(subparsers) (meshcore/cli/__init__.py).
User errors raise MeshcoreError subclasses, which cli.main() prints without a
traceback (exit 1); bad arguments exit 2 (argparse).

meshcore.ca (and with it `cryptography`, ~0.1 s) is imported only when a `ca`
command runs, not every time the parser is built for `meshcore proxy`; the
few constants the parser shows are repeated here (a test keeps them equal).
"""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import sys

from meshcore.cli.args import lifetime_text
from meshcore.errors import ConfigError

# Repeated from meshcore.ca (tests/python/test_ca.py checks they agree).
KEY_TYPES = ("ec-p256", "rsa-2048")
DEFAULT_KEY_TYPE = "ec-p256"
DEFAULT_ROOT_LIFETIME = "10y"
DEFAULT_WORKLOAD_TTL = "24h"


def _when(iso: str, seconds_left: int) -> str:
    from meshcore import ca

    # Two largest units are enough to read: "3649d23h", "59m58s".
    left = "".join(re.findall(r"\d+[dhms]", ca.format_lifetime(dt.timedelta(seconds=abs(seconds_left))))[:2])
    return f"{iso} (expires in {left})" if seconds_left > 0 else f"{iso} (EXPIRED {left} ago)"


def _cmd_init(args) -> int:
    from meshcore import ca

    authority = ca.CertificateAuthority.init(
        args.dir, args.trust_domain, key_type=args.key_type, intermediate=args.intermediate,
        root_lifetime=args.root_lifetime, intermediate_lifetime=args.intermediate_lifetime,
        workload_ttl=args.workload_ttl)
    root = authority.root_cert
    print(f"created trust domain {authority.trust_domain} in {args.dir}")
    print(f"  root:     {os.path.join(args.dir, ca.ROOT_CERT)} ({authority.key_type}, "
          f"until {root.not_valid_after_utc.isoformat()})")
    if authority.intermediates:
        print(f"  signing:  {os.path.join(args.dir, ca.INTERMEDIATE_CERT)} (intermediate)")
    print(f"  bundle:   {os.path.join(args.dir, ca.TRUST_BUNDLE)}")
    print(f"  workload certificates: {ca.format_lifetime(authority.workload_ttl)} by default; "
          f"keep {os.path.join(args.dir, '*-key.pem')} secret")
    return 0


def _cmd_issue(args) -> int:
    from meshcore import ca

    authority = ca.CertificateAuthority.load(args.dir)
    paths = ca.write_workload_dir(authority, args.out, args.ns, args.sa, ttl=args.ttl, key_type=args.key_type)
    leaf = ca.load_certs(ca.read_file(paths[ca.CERT_CHAIN]))[0]
    print(f"issued {ca.spiffe_id_of(leaf)} until {leaf.not_valid_after_utc.isoformat()}")
    for name in (ca.WORKLOAD_KEY, ca.CERT_CHAIN, ca.ROOT_CERT, ca.TRUST_BUNDLE):
        print(f"  {paths[name]}")
    return 0


def _cmd_csr(args) -> int:
    from meshcore import ca

    if os.path.exists(args.key):
        if args.key_type:
            raise ConfigError(f"{args.key}: exists; --key-type only applies when the key is generated")
        key = ca.load_key(ca.read_file(args.key, "private key"), args.key)
        made = False
    else:
        key = ca.generate_key(args.key_type or DEFAULT_KEY_TYPE)
        made = True
    csr = ca.make_csr(key, args.spiffe_id)  # validate the ID before writing anything
    if made:
        ca.write_key(args.key, key)
        print(f"generated {ca.key_type_of(key)} key {args.key} (mode 0600)")
    _output(args.out, csr)
    if args.out != "-":
        print(f"wrote CSR for {args.spiffe_id} to {args.out}")
    return 0


def _cmd_sign_csr(args) -> int:
    from meshcore import ca

    authority = ca.CertificateAuthority.load(args.dir)
    csr = sys.stdin.buffer.read() if args.csr == "-" else ca.read_file(args.csr, "CSR")
    chain = authority.sign_csr(csr, ttl=args.ttl, namespace=args.ns, service_account=args.sa)
    _output(args.out, chain)
    if args.out != "-":
        leaf = ca.load_certs(chain)[0]
        print(f"signed {ca.spiffe_id_of(leaf)} until {leaf.not_valid_after_utc.isoformat()} -> {args.out}")
    return 0


def _cmd_bundle(args) -> int:
    from meshcore import ca

    roots = ca.write_bundle(args.out, args.sources)
    print(f"wrote {len(roots)} root{'s' * (len(roots) != 1)} to {args.out}")
    for root in roots:
        print(f"  {root.subject.rfc4514_string()}  {ca.spiffe_id_of(root) or ''}  sha256:{ca.fingerprint(root)[:16]}")
    return 0


def _cmd_inspect(args) -> int:
    from meshcore import ca

    data = sys.stdin.buffer.read() if args.file == "-" else ca.read_file(args.file)
    if b"-----BEGIN CERTIFICATE REQUEST-----" in data:
        csr = ca.load_csr(data, args.file)
        info = [{"kind": "csr", "spiffe_ids": ca.spiffe_ids_of(csr), "subject": csr.subject.rfc4514_string(),
                 "key_type": ca.key_type_of(csr.public_key()), "signature_valid": csr.is_signature_valid}]
    elif b"PRIVATE KEY-----" in data:
        key = ca.load_key(data, args.file)
        info = [{"kind": "private key", "key_type": ca.key_type_of(key)}]
    else:
        info = [{"kind": "certificate", **ca.describe(c)} for c in ca.load_certs(data, args.file)]
    if args.output == "json":
        json.dump(info, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    for i, item in enumerate(info, 1):
        kind = item["kind"]
        print(f"{args.file}: {kind}" + (f" {i} of {len(info)}" if len(info) > 1 else ""))
        if kind == "certificate":
            sid = item["spiffe_id"] or (f"none ({len(item['uri_sans'])} URI SANs)" if item["uri_sans"] else "none")
            role = "root CA" if item["ca"] and item["self_signed"] else "CA" if item["ca"] else "workload (leaf)"
            rows = [("SPIFFE ID", sid), ("role", role), ("subject", item["subject"]), ("issuer", item["issuer"]),
                    ("serial", item["serial"]), ("not before", item["not_before"]),
                    ("not after", _when(item["not_after"], item["expires_in_seconds"])),
                    ("key", item["key_type"]), ("sha256", item["sha256"])]
        elif kind == "csr":
            rows = [("SPIFFE ID", ", ".join(item["spiffe_ids"]) or "none"), ("subject", item["subject"] or "(empty)"),
                    ("key", item["key_type"]), ("signature", "valid" if item["signature_valid"] else "INVALID")]
        else:
            rows = [("key", item["key_type"])]
        for label, value in rows:
            print(f"  {label + ':':<12}{value}")
    return 0


def _output(path: str, data: bytes) -> None:
    from meshcore import ca

    if path == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        ca.write_file(path, data)


def register(subparsers) -> None:
    """Adds `meshcore ca ...` to the top-level subparsers."""
    p = subparsers.add_parser("ca", help="certificate authority: create a trust domain, issue SPIFFE X.509 SVIDs",
                       description="Certificate authority: create a trust domain, issue SPIFFE X.509 SVIDs "
                                   "(docs/ca.md).")
    cmds = p.add_subparsers(dest="ca_command", required=True, metavar="COMMAND")

    c = cmds.add_parser("init", help="create a trust domain: root key and certificate (+ intermediate)")
    c.add_argument("--trust-domain", required=True, metavar="TD", help="e.g. cluster.local")
    c.add_argument("--dir", required=True, help="CA directory to create (refused if it already holds a CA)")
    c.add_argument("--key-type", choices=KEY_TYPES, default=DEFAULT_KEY_TYPE,
                   help=f"CA key type, also the default for workload keys (default {DEFAULT_KEY_TYPE})")
    c.add_argument("--intermediate", action="store_true",
                   help="also create an intermediate that signs workloads (the root key can then go offline)")
    c.add_argument("--root-lifetime", type=lifetime_text, default=DEFAULT_ROOT_LIFETIME, metavar="DURATION",
                   help=f"default {DEFAULT_ROOT_LIFETIME}")
    c.add_argument("--intermediate-lifetime", type=lifetime_text, metavar="DURATION",
                   help="default: the root's lifetime")
    c.add_argument("--workload-ttl", type=lifetime_text, default=DEFAULT_WORKLOAD_TTL, metavar="DURATION",
                   help=f"default workload certificate lifetime, kept in ca.yaml (default {DEFAULT_WORKLOAD_TTL})")
    c.set_defaults(func=_cmd_init)

    c = cmds.add_parser("issue", help="generate a workload key here and issue its certificate into a directory")
    c.add_argument("--dir", required=True, help="CA directory")
    c.add_argument("--ns", required=True, metavar="NAMESPACE")
    c.add_argument("--sa", required=True, metavar="SERVICE_ACCOUNT")
    c.add_argument("--ttl", type=lifetime_text, metavar="DURATION", help="certificate lifetime (default: ca.yaml's)")
    c.add_argument("--key-type", choices=KEY_TYPES, help="workload key type (default: the CA's)")
    c.add_argument("--out", required=True, metavar="OUTDIR",
                   help="writes key.pem (0600), cert-chain.pem, root-cert.pem, trust-bundle.pem")
    c.set_defaults(func=_cmd_issue)

    c = cmds.add_parser("csr", help="make a CSR for a SPIFFE ID (generating the key if the file does not exist)")
    c.add_argument("--key", required=True, metavar="KEYFILE", help="private key PEM; generated (0600) if missing")
    c.add_argument("--key-type", choices=KEY_TYPES, help=f"for a generated key (default {DEFAULT_KEY_TYPE})")
    c.add_argument("--spiffe-id", required=True, metavar="ID", help="spiffe://TD/ns/NAMESPACE/sa/SERVICE_ACCOUNT")
    c.add_argument("--out", required=True, metavar="FILE", help="CSR PEM ('-': stdout)")
    c.set_defaults(func=_cmd_csr)

    c = cmds.add_parser("sign-csr", help="sign a workload CSR (the pure CSR flow: no private key travels)")
    c.add_argument("--dir", required=True, help="CA directory")
    c.add_argument("--csr", required=True, metavar="FILE", help="CSR PEM ('-': stdin)")
    c.add_argument("--ttl", type=lifetime_text, metavar="DURATION", help="certificate lifetime (default: ca.yaml's)")
    c.add_argument("--ns", metavar="NAMESPACE", help="with --sa: the identity the CSR must ask for")
    c.add_argument("--sa", metavar="SERVICE_ACCOUNT")
    c.add_argument("--out", required=True, metavar="FILE",
                   help="certificate chain PEM: workload certificate + intermediates ('-': stdout)")
    c.set_defaults(func=_cmd_sign_csr)

    c = cmds.add_parser("bundle", help="write a trust bundle: the roots of several CAs, deduplicated")
    c.add_argument("--out", required=True, metavar="FILE", help="bundle PEM (may be one of the sources)")
    c.add_argument("sources", nargs="+", metavar="CADIR_OR_PEM",
                   help="CA directories (root-cert.pem + trust-bundle.pem) or PEM files of roots")
    c.set_defaults(func=_cmd_bundle)

    c = cmds.add_parser("inspect", help="show the SPIFFE ID, validity, key type and issuer of a certificate")
    c.add_argument("file", metavar="FILE", help="certificate, chain, bundle, CSR or key PEM ('-': stdin)")
    c.add_argument("-o", "--output", choices=["text", "json"], default="text", help="output format (default text)")
    c.set_defaults(func=_cmd_inspect)
