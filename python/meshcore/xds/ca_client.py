"""A workload's certificates from the control plane's certificate service, by CSR.

`CertificateClient` makes one request: a key generated here (it never
leaves), a CSR for the workload's SPIFFE ID, authenticated by the bootstrap
token (first certificate) or by the current certificate and a signature over
the CSR made with its key (renewal; meshcore.xds.ca_proto). The answer is
checked before it is taken: the chain must verify to a root already trusted
(the token file's, then the bundle last received), name the SPIFFE ID asked
for, and hold our public key. The roots sent with it become the trust bundle
(a CA in a root rotation sends both roots).

`CertificateKeeper` holds the current certificate: the first one at
`start()` (blocking), then a renewal at `renew_fraction` of each
certificate's lifetime; a failed renewal is retried with jittered
exponential back-off while the current certificate keeps being served.
Listeners are called with each new certificate (the proxy re-applies its
Secrets, the agent pushes them over SDS).
"""
from __future__ import annotations

import logging
import random
import threading
import time

import grpc

from meshcore.certs import MIN_RENEW_DELAY, Certificate
from meshcore.errors import CAError, ConfigError
from meshcore.xds import ca_proto

log = logging.getLogger("meshcore.xds.ca_client")

REQUEST_TIMEOUT = 10.0  # seconds per CreateCertificate call
RETRY_MIN, RETRY_MAX = 0.2, 30.0  # seconds: back-off between failed renewals


class CertificateRequestError(CAError):
    """The certificate service refused a request, or could not be reached; `code` is the gRPC status."""

    def __init__(self, message: str, code: grpc.StatusCode | None = None):
        super().__init__(message)
        self.code = code


class CertificateClient:
    """Requests certificates for one workload identity from the certificate service at `target`."""

    def __init__(self, target: str, token_file: str | None = None, trust_domain: str | None = None,
                 namespace: str | None = None, service_account: str | None = None, ttl=None,
                 key_type: str = "ec-p256"):
        from meshcore import pki

        self.target = target
        self.token = None
        roots_pem = None
        if token_file is not None:
            from meshcore.controlplane.tokens import read_token_file

            data = read_token_file(token_file)
            self.token = data["token"]
            trust_domain = trust_domain or data["trust_domain"]
            namespace = namespace or data["namespace"]
            service_account = service_account or data["service_account"]
            roots_pem = data["root_cert"].encode()
        if not (trust_domain and namespace and service_account):
            raise ConfigError("certificate client: trust domain, namespace and service account are needed "
                              "(give a token file, or all three)")
        from meshcore.identity import workload_id

        self.trust_domain, self.namespace, self.service_account = trust_domain, namespace, service_account
        self.spiffe_id = workload_id(trust_domain, namespace, service_account)
        self.ttl_seconds = int(_seconds(ttl)) if ttl is not None else 0
        self.key_type = key_type
        self.roots = pki.load_certs(roots_pem, f"{token_file}: root_cert") if roots_pem else []
        self._channel = grpc.insecure_channel(target)
        self._call = self._channel.unary_unary(
            ca_proto.METHOD_PATH, request_serializer=ca_proto.IstioCertificateRequest.SerializeToString,
            response_deserializer=ca_proto.IstioCertificateResponse.FromString)

    def close(self) -> None:
        self._channel.close()

    def request(self, key_pem: bytes | None = None, current: Certificate | None = None) -> Certificate:
        """A new certificate for a new key (or `key_pem`); renewal by `current` when given,
        else by the bootstrap token. CertificateRequestError with the server's reason if refused."""
        from meshcore import pki

        key = pki.load_key(key_pem) if key_pem is not None else pki.generate_key(self.key_type)
        csr_pem = pki.make_csr(key, self.spiffe_id)
        if current is not None:
            proof = ca_proto.sign_proof(pki.load_key(current.key_pem), csr_pem)
            metadata = ((ca_proto.CERT_CHAIN_MD, current.chain_pem), (ca_proto.CSR_SIGNATURE_MD, proof))
        elif self.token is not None:
            metadata = ((ca_proto.AUTHORIZATION, ca_proto.BEARER + self.token),)
        else:
            raise CertificateRequestError("certificate client: no token and no current certificate to renew with")
        req = ca_proto.IstioCertificateRequest(csr=csr_pem.decode(), validity_duration=self.ttl_seconds)
        try:
            resp = self._call(req, metadata=metadata, timeout=REQUEST_TIMEOUT)
        except grpc.RpcError as e:
            code = e.code() if hasattr(e, "code") else None
            name = code.name if code is not None else "ERROR"
            raise CertificateRequestError(f"certificate service {self.target}: {name}: {e.details()}", code) from None
        return self._accept(resp, key, current)

    def _accept(self, resp, key, current: Certificate | None) -> Certificate:
        """The response checked and made a Certificate; CertificateRequestError if it does not hold up."""
        from meshcore import pki

        try:
            certs = [c for entry in resp.cert_chain for c in pki.load_certs(entry, "cert_chain")]
        except ConfigError as e:
            raise CertificateRequestError(f"certificate service {self.target}: bad response: {e}") from None
        chain = [c for c in certs if not pki.is_self_signed(c)]
        roots = [c for c in certs if pki.is_self_signed(c)]
        trusted = self.roots or (pki.load_certs(current.bundle_pem) if current is not None else roots)
        try:
            leaf = ca_proto.verify_chain(chain, trusted)
        except ValueError as e:
            raise CertificateRequestError(f"certificate service {self.target}: the chain it sent does not verify "
                                          f"to a trusted root: {e}") from None
        from cryptography.hazmat.primitives import serialization

        fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        if leaf.public_key().public_bytes(*fmt) != key.public_key().public_bytes(*fmt):
            raise CertificateRequestError(f"certificate service {self.target}: the certificate is not for our key")
        if pki.spiffe_id_of(leaf) != self.spiffe_id:
            raise CertificateRequestError(f"certificate service {self.target}: the certificate is for "
                                          f"{pki.spiffe_id_of(leaf)}, not {self.spiffe_id}")
        if roots:
            self.roots = roots
        return Certificate(self.spiffe_id, pki.key_to_pem(key), pki.certs_to_pem(chain),
                           pki.certs_to_pem(self.roots or trusted), leaf.serial_number, leaf.not_valid_before_utc,
                           leaf.not_valid_after_utc, time.time())


def _seconds(ttl) -> float:
    import datetime as dt

    if isinstance(ttl, (int, float)):
        return float(ttl)
    if isinstance(ttl, dt.timedelta):
        return ttl.total_seconds()
    from meshcore.durations import parse_lifetime

    return parse_lifetime(ttl, "ttl").total_seconds()


class CertificateKeeper:
    """The current certificate of one workload, renewed in the background."""

    def __init__(self, client: CertificateClient, on_change=None, renew_fraction: float = 0.5):
        if not 0 < renew_fraction < 1:
            raise ConfigError(f"renew_fraction {renew_fraction}: must be between 0 and 1")
        self.client = client
        self.renew_fraction = renew_fraction
        self.current: Certificate | None = None
        self.renewals = 0  # successful renewals
        self.failures = 0  # failed attempts since start
        self.last_error: str | None = None
        self._listeners = [on_change] if on_change is not None else []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add_listener(self, callback) -> None:
        """callback(certificate) after each new certificate (from the renewal thread)."""
        self._listeners.append(callback)

    def renew_at(self, cert: Certificate) -> float:
        life = cert.not_after.timestamp() - cert.issued_at
        return cert.issued_at + max(MIN_RENEW_DELAY, life * self.renew_fraction)

    def start(self, wait: float = 0.0) -> Certificate:
        """The first certificate (blocking), then the renewal thread. A refusal raises at once
        (CertificateRequestError with the server's reason); an unreachable service is retried for `wait` s."""
        deadline = time.monotonic() + wait
        delay = RETRY_MIN
        while True:
            try:
                self.current = self.client.request()
                break
            except CertificateRequestError as e:
                if e.code != grpc.StatusCode.UNAVAILABLE or time.monotonic() + delay > deadline:
                    raise
                log.info("%s; retrying in %.1fs", e, delay)
                if self._stop.wait(delay):
                    raise
                delay = min(delay * 2, RETRY_MAX)
        log.info("certificate %s", self.current.describe())
        self._thread = threading.Thread(target=self._run, name="cert-keeper", daemon=True)
        self._thread.start()
        return self.current

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=REQUEST_TIMEOUT + 5)
        self.client.close()

    def renew(self) -> Certificate:
        """One renewal now (by the current certificate while it is valid, else by the token)."""
        cur = self.current
        valid = cur is not None and cur.not_after.timestamp() > time.time()
        if not valid and self.client.token is None and cur is not None:
            raise CertificateRequestError(f"certificate {cur.describe()} expired and no bootstrap token to "
                                          "start again with")
        new = self.client.request(current=cur if valid else None)
        self.current = new
        self.renewals += 1
        log.info("certificate renewed: %s", new.describe())
        for cb in list(self._listeners):
            try:
                cb(new)
            except Exception:  # noqa: BLE001 - one listener's bug must not stop the renewals
                log.exception("certificate listener failed")
        return new

    def _run(self) -> None:
        due = self.renew_at(self.current)
        delay = RETRY_MIN
        while not self._stop.wait(max(0.0, due - time.time())):
            try:
                self.renew()
            except Exception as e:  # noqa: BLE001 - keep serving the current one, try again
                self.failures += 1
                self.last_error = str(e)
                left = self.current.not_after.timestamp() - time.time()
                wait = min(delay, RETRY_MAX, max(RETRY_MIN, left / 4)) * random.uniform(0.5, 1.0)
                log.warning("certificate renewal failed (%s); retrying in %.1fs", e, wait)
                due = time.time() + wait
                delay = min(delay * 2, RETRY_MAX)
                continue
            delay = RETRY_MIN
            due = self.renew_at(self.current)
