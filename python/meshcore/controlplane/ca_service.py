"""The certificate service: workloads send a CSR over gRPC and get their chain.

Istio's `istio.v1.auth.IstioCertificateService/CreateCertificate`
(meshcore.xds.ca_proto), registered on the control plane's gRPC server next
to ADS. Who may have which certificate:

- a **bootstrap token** (`authorization: Bearer <token>`, from
  `meshcore control-plane token NS/SA`) entitles to spiffe://<td>/ns/NS/sa/SA;
- the **current certificate** (`meshcore-cert-chain-bin` + a signature over the
  CSR by its key, `meshcore-csr-signature-bin`) entitles to its own SPIFFE ID,
  if its chain verifies to this CA's trust bundle now: a renewal.

The CSR must ask for exactly that ID (or for none, and gets it); the CA
checks the rest (meshcore.ca.CertificateAuthority.sign_csr). A refusal is a
gRPC status whose details say why: UNAUTHENTICATED (no credential, an
unknown or expired token, a chain this CA did not issue or that expired, a
signature that does not verify), PERMISSION_DENIED (a CSR for another
identity), INVALID_ARGUMENT (a malformed CSR, a lifetime above the CA's
max_workload_ttl). Every outcome is counted in `counters`.
"""
from __future__ import annotations

import collections
import logging
import threading
import time

import grpc

from meshcore.errors import ConfigError, CSRRejected
from meshcore.xds import ca_proto

log = logging.getLogger("meshcore.controlplane.ca")

RECENT_REFUSALS = 20


class Refused(Exception):
    def __init__(self, code: grpc.StatusCode, reason: str, message: str):
        super().__init__(message)
        self.code, self.reason = code, reason


class CertificateService:
    """Signs CSRs for authenticated workloads with `authority` (a meshcore.ca.CertificateAuthority)."""

    def __init__(self, authority, token_store):
        self.authority = authority
        self.tokens = token_store
        self._lock = threading.Lock()
        self.counters: dict[str, int] = collections.Counter()
        self.recent_refusals: collections.deque = collections.deque(maxlen=RECENT_REFUSALS)

    def register(self, server: grpc.Server) -> None:
        """Adds the service to a grpc.Server (before it starts)."""
        handler = grpc.unary_unary_rpc_method_handler(
            self.create_certificate,
            request_deserializer=ca_proto.IstioCertificateRequest.FromString,
            response_serializer=ca_proto.IstioCertificateResponse.SerializeToString)
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(ca_proto.SERVICE, {ca_proto.METHOD: handler}),))

    def status(self) -> dict:
        """Counters and the last refusals, for the status page."""
        with self._lock:
            return {"counters": dict(self.counters), "recent_refusals": list(self.recent_refusals)}

    def _count(self, *keys: str) -> None:
        with self._lock:
            for k in keys:
                self.counters[k] += 1

    # -- the RPC --

    def create_certificate(self, request, context):
        self._count("requests")
        peer = context.peer()
        try:
            chain, how = self._sign(request, dict(context.invocation_metadata()))
        except Refused as e:
            with self._lock:
                self.counters["refused"] += 1
                self.counters[f"refused.{e.reason}"] += 1
                self.recent_refusals.append({"time": time.time(), "peer": peer, "reason": e.reason,
                                             "message": str(e)})
            log.warning("certificate request from %s refused: %s", peer, e)
            context.abort(e.code, str(e))
        self._count("issued", f"issued.{how}")
        return ca_proto.IstioCertificateResponse(cert_chain=chain)

    def _sign(self, request, metadata: dict) -> tuple[list[str], str]:
        """(cert_chain entries, "token" or "renewal"); Refused saying why not."""
        from meshcore import pki

        csr_pem = request.csr.encode()
        if metadata.get(ca_proto.CERT_CHAIN_MD) is not None:
            namespace, service_account = self._renewal_identity(csr_pem, metadata)
            how = "renewal"
        else:
            namespace, service_account = self._token_identity(metadata)
            how = "token"
        self._check_identity(csr_pem, namespace, service_account, how)
        ttl = request.validity_duration or None
        try:
            if ttl is not None and ttl < 0:
                raise ConfigError(f"validity_duration {ttl}: must not be negative")
            chain_pem = self.authority.sign_csr(csr_pem, ttl=f"{ttl}s" if ttl else None,
                                                namespace=namespace, service_account=service_account)
        except CSRRejected as e:
            raise Refused(grpc.StatusCode.INVALID_ARGUMENT, "invalid_csr", str(e)) from None
        except ConfigError as e:
            raise Refused(grpc.StatusCode.INVALID_ARGUMENT, "invalid_request", str(e)) from None
        certs = pki.load_certs(chain_pem) + list(self.authority.trust_bundle)
        return [pki.certs_to_pem([c]).decode() for c in certs], how

    def _check_identity(self, csr_pem: bytes, namespace: str, service_account: str, how: str) -> None:
        """PERMISSION_DENIED if the CSR names a SPIFFE ID other than the credential's."""
        from meshcore import pki
        from meshcore.identity import spiffe_id

        entitled = spiffe_id(self.authority.trust_domain, namespace, service_account)
        try:
            asked = pki.spiffe_ids_of(pki.load_csr(csr_pem))
        except (CSRRejected, ValueError) as e:
            raise Refused(grpc.StatusCode.INVALID_ARGUMENT, "invalid_csr", str(e)) from None
        others = [a for a in asked if a != entitled]
        if others:
            credential = "bootstrap token" if how == "token" else "current certificate"
            raise Refused(grpc.StatusCode.PERMISSION_DENIED, "identity",
                          f"CSR asks for {others[0]}, but the {credential} entitles only to {entitled}")

    def _token_identity(self, metadata: dict) -> tuple[str, str]:
        from meshcore.controlplane.tokens import TokenRejected

        auth = metadata.get(ca_proto.AUTHORIZATION)
        if not auth:
            raise Refused(grpc.StatusCode.UNAUTHENTICATED, "no_credential",
                          "no credential: send a bootstrap token (authorization: Bearer ...) or the current "
                          f"certificate ({ca_proto.CERT_CHAIN_MD} + {ca_proto.CSR_SIGNATURE_MD})")
        if not auth.startswith(ca_proto.BEARER) or not auth[len(ca_proto.BEARER):].strip():
            raise Refused(grpc.StatusCode.UNAUTHENTICATED, "bad_authorization",
                          "authorization metadata: expected 'Bearer <token>'")
        try:
            return self.tokens.check(auth[len(ca_proto.BEARER):].strip())
        except TokenRejected as e:
            raise Refused(grpc.StatusCode.UNAUTHENTICATED, e.reason, str(e)) from None

    def _renewal_identity(self, csr_pem: bytes, metadata: dict) -> tuple[str, str]:
        from meshcore import pki
        from meshcore.identity import parse_workload_id

        chain_pem = metadata.get(ca_proto.CERT_CHAIN_MD)
        signature = metadata.get(ca_proto.CSR_SIGNATURE_MD)
        if not isinstance(chain_pem, bytes) or not isinstance(signature, bytes) or not signature:
            raise Refused(grpc.StatusCode.UNAUTHENTICATED, "bad_chain",
                          f"renewal needs {ca_proto.CERT_CHAIN_MD} and {ca_proto.CSR_SIGNATURE_MD}, both binary")
        try:
            chain = pki.load_certs(chain_pem, "current certificate chain")
            leaf = ca_proto.verify_chain(chain, self.authority.trust_bundle)
        except (ConfigError, ValueError) as e:
            raise Refused(grpc.StatusCode.UNAUTHENTICATED, "bad_chain",
                          f"current certificate not accepted for renewal: {e}") from None
        spiffe_id = pki.spiffe_id_of(leaf)
        try:
            trust_domain, namespace, service_account = parse_workload_id(spiffe_id or "")
        except ConfigError as e:
            raise Refused(grpc.StatusCode.UNAUTHENTICATED, "bad_chain",
                          f"current certificate is not a workload SVID: {e}") from None
        if trust_domain != self.authority.trust_domain:
            raise Refused(grpc.StatusCode.UNAUTHENTICATED, "bad_chain",
                          f"current certificate {spiffe_id} is not in trust domain {self.authority.trust_domain}")
        if not ca_proto.verify_proof(leaf.public_key(), csr_pem, signature):
            raise Refused(grpc.StatusCode.UNAUTHENTICATED, "bad_signature",
                          f"the CSR signature does not verify with the key of the current certificate "
                          f"({spiffe_id}): the caller does not hold its private key")
        return namespace, service_account
