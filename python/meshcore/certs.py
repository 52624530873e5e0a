"""Certificates for sidecars: provisioning from the CA and rotation.

Two ways a sidecar gets its certificate, one rotation hook in the proxy
(proxy.py `Proxy.rotate_certificates`):

- **From the CA** (`meshcore proxy --mesh-dir DIR --workload NS/NAME --ca-dir CADIR`):
  `Provisioner` generates the workload's key in this process, sends only a
  CSR for `spiffe://<td>/ns/<ns>/sa/<sa>` to the CA (`CertificateAuthority.sign_csr`;
  the control plane will serve the same over gRPC), and hands the certificate
  and the trust bundle to the translation as two inline static Secrets,
  `default` and `ROOTCA` (Istio's SDS names). `renew_at` is about half of the
  certificate's lifetime after it was issued; the proxy then issues a new one
  and re-applies its last config with the new Secrets: new handshakes use it,
  established connections go on with theirs.
- **From files** (`meshcore proxy -c FILE` whose Secrets or TLS contexts name
  `filename`s): `FileWatch` polls those files (inode, size, mtime, as the
  mesh-directory poller does); when one changes (an external `meshcore ca
  issue` rewrote it), the proxy re-applies the config file, which reads them
  anew. A key caught between its renames and the certificate's does not
  match it: the change is retried at the next poll.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from meshcore.errors import ConfigError
from meshcore.identity import CERT_SECRET, ROOT_SECRET

if TYPE_CHECKING:  # cryptography is imported when a certificate is made or read, not by file watching
    from cryptography import x509

    from meshcore import ca as ca_mod

log = logging.getLogger("meshcore.certs")

MIN_RENEW_DELAY = 0.5  # seconds: never renew in a tight loop, however short the TTL


@dataclass(frozen=True)
class Certificate:
    """A workload certificate as the sidecar holds it."""

    spiffe_id: str
    key_pem: bytes
    chain_pem: bytes
    bundle_pem: bytes
    serial: int
    not_before: dt.datetime
    not_after: dt.datetime
    issued_at: float  # time.time() when it was received

    @property
    def renew_at(self) -> float:
        """time.time() at which to renew: half-way from issue to expiry (as Istio's agent)."""
        end = self.not_after.timestamp()
        return self.issued_at + max(MIN_RENEW_DELAY, (end - self.issued_at) / 2)

    def secrets(self) -> tuple:
        """The two static Secrets (Envoy's JSON shape) the translation refers to."""
        return (
            {"name": CERT_SECRET, "tls_certificate": {
                "certificate_chain": {"inline_string": self.chain_pem.decode()},
                "private_key": {"inline_string": self.key_pem.decode()}}},
            {"name": ROOT_SECRET, "validation_context": {"trusted_ca": {"inline_string": self.bundle_pem.decode()}}},
        )

    def describe(self) -> str:
        return (f"{self.spiffe_id} serial {self.serial:x}, valid until "
                f"{self.not_after.isoformat(timespec='seconds')}")


class Provisioner:
    """A workload's certificates from a CA, by CSR: the private key is made here and never leaves."""

    def __init__(self, authority: ca_mod.CertificateAuthority, namespace: str, service_account: str,
                 ttl=None, key_type: str | None = None):
        self.ca = authority
        self.namespace = namespace
        self.service_account = service_account or "default"
        from meshcore import ca as ca_mod

        self.spiffe_id = ca_mod.workload_id(authority.trust_domain, namespace, self.service_account)
        self.ttl = authority.ttl(ttl)  # checked against max_workload_ttl now, not at the first renewal
        self.key_type = key_type or authority.key_type
        self.current: Certificate | None = None

    @classmethod
    def from_dir(cls, ca_dir: str, namespace: str, service_account: str, ttl=None) -> Provisioner:
        from meshcore import ca as ca_mod

        return cls(ca_mod.CertificateAuthority.load(ca_dir), namespace, service_account, ttl)

    @property
    def trust_domain(self) -> str:
        return self.ca.trust_domain

    def issue(self) -> Certificate:
        """A new key, a CSR, the CA's signature: the new current certificate."""
        from meshcore import ca as ca_mod

        key = ca_mod.generate_key(self.key_type)
        csr = ca_mod.make_csr(key, self.spiffe_id)
        # Today the CA is in this process (file mode); the control plane will
        # take the same CSR over gRPC, authenticated as namespace/service account.
        chain = self.ca.sign_csr(csr, self.ttl, namespace=self.namespace, service_account=self.service_account)
        leaf = ca_mod.load_certs(chain, "issued chain")[0]
        self.current = Certificate(self.spiffe_id, ca_mod.key_to_pem(key), chain, self.ca.trust_bundle_pem,
                                   leaf.serial_number, leaf.not_valid_before_utc, leaf.not_valid_after_utc,
                                   time.time())
        return self.current


# ---- files ---------------------------------------------------------------------------------------


def data_source_files(bootstrap) -> list[str]:
    """Every DataSource.filename in the bootstrap's Secrets and TLS transport sockets."""
    from meshcore import xds_types

    out: list[str] = []

    def walk(msg):
        if msg.DESCRIPTOR.full_name == "envoy.config.core.v3.DataSource":
            if msg.WhichOneof("specifier") == "filename" and msg.filename not in out:
                out.append(msg.filename)
            return
        for fd, value in msg.ListFields():
            if fd.message_type is None:
                continue
            if fd.message_type.GetOptions().map_entry:
                items = list(value.values())
            elif fd.is_repeated:
                items = list(value)
            else:
                items = [value]
            for item in items:
                if not hasattr(item, "DESCRIPTOR"):
                    continue
                if item.DESCRIPTOR.full_name == "google.protobuf.Any":
                    if xds_types.type_name(item.type_url) in (xds_types.DOWNSTREAM_TLS, xds_types.UPSTREAM_TLS,
                                                               xds_types.HCM):
                        walk(xds_types.unpack(item))
                else:
                    walk(item)

    walk(bootstrap)
    return out


def certificate_pairs(bootstrap) -> list[tuple[str, str]]:
    """(certificate file, key file) of each tls_certificate that names files."""
    pairs = []
    for s in bootstrap.static_resources.secrets:
        if s.WhichOneof("type") == "tls_certificate":
            t = s.tls_certificate
            if t.certificate_chain.filename and t.private_key.filename:
                pairs.append((t.certificate_chain.filename, t.private_key.filename))
    return pairs


def check_pair(cert_file: str, key_file: str) -> x509.Certificate:
    """The leaf certificate of cert_file; ConfigError unless key_file holds its private key."""
    from cryptography.hazmat.primitives import serialization

    from meshcore import ca as ca_mod

    try:
        with open(cert_file, "rb") as f:
            leaf = ca_mod.load_certs(f.read(), cert_file)[0]
        with open(key_file, "rb") as f:
            key = ca_mod.load_key(f.read(), key_file)
    except OSError as e:
        raise ConfigError(f"cannot read {e.filename}: {e.strerror}") from None
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if key.public_key().public_bytes(*fmt) != leaf.public_key().public_bytes(*fmt):
        raise ConfigError(f"{key_file} does not hold the key of {cert_file} (caught between two renames?)")
    return leaf


def files_signature(paths) -> tuple:
    out = []
    for p in paths:
        try:
            st = os.stat(p)
            out.append((p, st.st_ino, st.st_size, st.st_mtime_ns))
        except OSError:
            out.append((p, None, None, None))
    return tuple(out)


# ---- the timer ------------------------------------------------------------------------------------


class Renewer:
    """A thread that calls `renew()` at `when()` (a time.time()), again after each call;
    after a failed renewal (renew() returns False) it retries a second later."""

    RETRY = 1.0

    def __init__(self, when, renew, name: str = "cert-renewer"):
        self._when, self._renew = when, renew
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Renewer:
        self._thread.start()
        return self

    def _run(self):
        due = self._when()
        while not self._stop.wait(max(0.0, due - time.time())):
            try:
                ok = self._renew()
            except Exception:  # noqa: BLE001 - a renewal bug must not end the renewals
                log.exception("certificate renewal failed")
                ok = False
            due = self._when() if ok else time.time() + self.RETRY

    def stop(self):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
