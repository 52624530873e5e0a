"""The certificate service's wire format: Istio's `istio.v1.auth.IstioCertificateService`
(istio/api security/v1alpha1/ca.proto), built here at import time from a
FileDescriptorProto (no protoc step), plus meshcore's renewal proof.

    service IstioCertificateService {
      rpc CreateCertificate(IstioCertificateRequest) returns (IstioCertificateResponse);
    }
    message IstioCertificateRequest  { string csr = 1; int64 validity_duration = 3;
                                       google.protobuf.Struct metadata = 4; }
    message IstioCertificateResponse { repeated string cert_chain = 1; }

`validity_duration` is in seconds (0: the CA's default). `cert_chain` holds one
PEM certificate per entry: the workload certificate, its intermediates, then
the roots of the CA's trust bundle (self-signed; the last entry is the root,
as in Istio's response).

Who the caller is travels in gRPC metadata:

- a bootstrap token (`meshcore control-plane token`): `authorization: Bearer <token>`;
- a renewal, by the current certificate: `meshcore-cert-chain-bin` (the
  current chain, PEM) and `meshcore-csr-signature-bin` (a signature over the
  CSR's PEM bytes made with the current private key: ECDSA with SHA-256, or
  RSA PKCS#1 v1.5 with SHA-256). It proves the caller holds the key of a
  certificate the CA issued, without a TLS session to carry it.
"""
from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, struct_pb2

PACKAGE = "istio.v1.auth"
SERVICE = f"{PACKAGE}.IstioCertificateService"
METHOD = "CreateCertificate"
METHOD_PATH = f"/{SERVICE}/{METHOD}"

AUTHORIZATION = "authorization"  # "Bearer <token>"
CERT_CHAIN_MD = "meshcore-cert-chain-bin"  # -bin: gRPC carries the value as bytes
CSR_SIGNATURE_MD = "meshcore-csr-signature-bin"
BEARER = "Bearer "

_FILE_NAME = "istio/v1/auth/ca.proto"


def _file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    F = descriptor_pb2.FieldDescriptorProto
    fd = descriptor_pb2.FileDescriptorProto(name=_FILE_NAME, package=PACKAGE, syntax="proto3",
                                            dependency=[struct_pb2.DESCRIPTOR.name])
    req = fd.message_type.add(name="IstioCertificateRequest")
    req.field.add(name="csr", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL, json_name="csr")
    req.field.add(name="validity_duration", number=3, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL,
                  json_name="validityDuration")
    req.field.add(name="metadata", number=4, type=F.TYPE_MESSAGE, label=F.LABEL_OPTIONAL,
                  type_name=".google.protobuf.Struct", json_name="metadata")
    resp = fd.message_type.add(name="IstioCertificateResponse")
    resp.field.add(name="cert_chain", number=1, type=F.TYPE_STRING, label=F.LABEL_REPEATED, json_name="certChain")
    svc = fd.service.add(name="IstioCertificateService")
    svc.method.add(name=METHOD, input_type=f".{PACKAGE}.IstioCertificateRequest",
                   output_type=f".{PACKAGE}.IstioCertificateResponse")
    return fd


def _build():
    pool = descriptor_pool.Default()
    try:  # already there: this module reloaded, or another library registered Istio's ca.proto
        file_desc = pool.FindFileContainingSymbol(SERVICE)
    except KeyError:
        pool.AddSerializedFile(_file_descriptor().SerializeToString())
        file_desc = pool.FindFileByName(_FILE_NAME)
    messages = file_desc.message_types_by_name
    return (message_factory.GetMessageClass(messages["IstioCertificateRequest"]),
            message_factory.GetMessageClass(messages["IstioCertificateResponse"]))


IstioCertificateRequest, IstioCertificateResponse = _build()


# ---- the renewal proof ----------------------------------------------------------------------------


def sign_proof(private_key, data: bytes) -> bytes:
    """A signature over `data` with the current private key (ECDSA-SHA256 or RSA-PKCS1v15-SHA256)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        return private_key.sign(data, ec.ECDSA(hashes.SHA256()))
    if isinstance(private_key, rsa.RSAPrivateKey):
        return private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    raise TypeError(f"cannot sign with a {type(private_key).__name__}")


def verify_proof(public_key, data: bytes, signature: bytes) -> bool:
    """True if `signature` over `data` verifies with `public_key` (EC or RSA)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

    try:
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        elif isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        else:
            return False
    except (InvalidSignature, ValueError):
        return False
    return True


def verify_chain(chain, roots, at=None):
    """RFC 5280 path validation of `chain` (leaf first, then intermediates;
    cryptography.x509 certificates) to one of `roots`, at `at` (default now).
    Returns the leaf; raises ValueError saying why not."""
    import datetime as dt

    from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

    if not chain:
        raise ValueError("no certificate")
    if not roots:
        raise ValueError("no trusted root")
    at = at or dt.datetime.now(dt.timezone.utc)
    for cert in chain:  # the common failure, said plainly (the verifier's message is generic)
        if cert.not_valid_after_utc < at.replace(microsecond=0):
            raise ValueError(f"certificate {cert.subject.rfc4514_string()} serial {cert.serial_number:x} "
                             f"expired at {cert.not_valid_after_utc.isoformat()}")
        if cert.not_valid_before_utc > at:
            raise ValueError(f"certificate {cert.subject.rfc4514_string()} serial {cert.serial_number:x} "
                             f"is not valid before {cert.not_valid_before_utc.isoformat()}")
    builder = PolicyBuilder().store(Store(list(roots))).time(at)
    try:
        builder.build_client_verifier().verify(chain[0], list(chain[1:]))
    except VerificationError as e:
        raise ValueError(str(e)) from None
    return chain[0]
