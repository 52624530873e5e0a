"""bench_mtls.py's identities and the certificates every pair uses, made by `meshcore ca`."""
from __future__ import annotations

import subprocess
from pathlib import Path

from common import BenchError

TRUST_DOMAIN = "cluster.local"
CLIENT_ID = f"spiffe://{TRUST_DOMAIN}/ns/default/sa/client"
SERVER_ID = f"spiffe://{TRUST_DOMAIN}/ns/default/sa/server"
# Same CA, another workload: a server sidecar matching the client's SPIFFE ID
# must refuse it.
INTRUDER_ID = f"spiffe://{TRUST_DOMAIN}/ns/default/sa/intruder"


def make_certs(workdir: Path, python: str) -> dict[str, str]:
    """A trust domain and three workload certificates from `meshcore ca`
    (run as `python -m meshcore ca`, the CLI the docs describe). Returns the
    paths every pair's configuration uses."""
    d = workdir / "certs"
    d.mkdir()
    ca_dir = d / "ca"

    def ca_cli(*argv):
        out = subprocess.run([python, "-m", "meshcore", "ca", *argv], capture_output=True,
                             text=True, timeout=60)
        if out.returncode != 0:
            raise BenchError(f"meshcore ca {argv[0]} failed ({out.returncode}): "
                             f"{(out.stderr or out.stdout).strip()}")

    ca_cli("init", "--trust-domain", TRUST_DOMAIN, "--dir", str(ca_dir), "--key-type", "ec-p256")
    certs = {"root": str(ca_dir / "root-cert.pem")}
    for sa in ("client", "server", "intruder"):
        ca_cli("issue", "--dir", str(ca_dir), "--ns", "default", "--sa", sa, "--ttl", "24h",
               "--out", str(d / sa))
        certs[f"{sa}_cert"] = str(d / sa / "cert-chain.pem")
        certs[f"{sa}_key"] = str(d / sa / "key.pem")
    # HAProxy's `crt`: the same certificate and key, in one file.
    for sa in ("client", "server"):
        pem = d / f"{sa}.pem"
        pem.write_bytes(Path(certs[f"{sa}_cert"]).read_bytes() + Path(certs[f"{sa}_key"]).read_bytes())
        pem.chmod(0o600)
        certs[f"{sa}_pem"] = str(pem)
    return certs
