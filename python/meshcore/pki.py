"""X.509 material, CA or not: keys, CSRs and certificates (make, load, write
as PEM, inspect), and the file writes that keep keys private.

Rules kept here: private keys are written 0600 from the moment they exist
and files are replaced atomically (write a temporary file, rename). The CA
that signs (meshcore.ca) and the sidecar that holds a certificate
(meshcore.certs) both use these; identities are meshcore.identity's.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import tempfile

from meshcore.extras import require

require("cryptography", "meshcore's CA and certificate handling")

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, rsa  # noqa: E402

from meshcore.errors import CAError, ConfigError, CSRRejected  # noqa: E402
from meshcore.identity import parse_spiffe_id  # noqa: E402

log = logging.getLogger("meshcore.ca")

KEY_TYPES = ("ec-p256", "rsa-2048")
DEFAULT_KEY_TYPE = "ec-p256"
# Accepted in CSRs: what TLS peers (OpenSSL, Go, BoringSSL) all handle.
CSR_EC_CURVES = {"secp256r1": "ec-p256", "secp384r1": "ec-p384"}
CSR_RSA_SIZES = (2048, 3072, 4096)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


# ---- keys and CSRs -----------------------------------------------------------------


def generate_key(key_type: str = DEFAULT_KEY_TYPE):
    """A new private key: "ec-p256" (ECDSA P-256, the default) or "rsa-2048"."""
    if key_type == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "rsa-2048":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ConfigError(f"key type {key_type!r}: expected one of {', '.join(KEY_TYPES)}")


def key_type_of(key) -> str:
    """"ec-p256", "rsa-2048", ... for a public or private key."""
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        name = key.curve.name
        return CSR_EC_CURVES.get(name, f"ec-{name}")
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return f"rsa-{key.key_size}"
    return type(key).__name__


def key_to_pem(key) -> bytes:
    """PKCS#8 PEM, unencrypted (protect it with file permissions: 0600)."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def load_key(pem: bytes | str, source: str = "private key"):
    """A private key from PEM; ConfigError if it is not one (or is encrypted)."""
    if isinstance(pem, str):
        pem = pem.encode()
    try:
        return serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{source}: not an unencrypted PEM private key ({e})") from None


def make_csr(key, spiffe_id: str) -> bytes:
    """A PEM certificate signing request for `spiffe_id`, signed by `key` (a
    private key object or PEM): empty subject, the SPIFFE ID as its only SAN."""
    _, segments = parse_spiffe_id(spiffe_id)
    if not segments:
        raise ConfigError(f"SPIFFE ID {spiffe_id!r}: a workload ID needs a path (SPIFFE X509-SVID 3.1)")
    if isinstance(key, (bytes, str)):
        key = load_key(key)
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([]))
           .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(spiffe_id)]), critical=False)
           .sign(key, hashes.SHA256()))
    return csr.public_bytes(serialization.Encoding.PEM)


def load_csr(pem: bytes | str, source: str = "CSR") -> x509.CertificateSigningRequest:
    if isinstance(pem, str):
        pem = pem.encode()
    if b"-----BEGIN CERTIFICATE REQUEST-----" not in pem:
        raise CSRRejected(f"{source}: not a PEM certificate signing request")
    try:
        return x509.load_pem_x509_csr(pem)
    except ValueError as e:
        raise CSRRejected(f"{source}: malformed certificate signing request ({str(e).split('.')[0]})") from None


# ---- certificates ------------------------------------------------------------------


def load_certs(data: bytes | str, source: str = "PEM") -> list[x509.Certificate]:
    """Every certificate in a PEM blob, in order; ConfigError if there is none."""
    if isinstance(data, str):
        data = data.encode()
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise ConfigError(f"{source}: no PEM certificate in it")
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError as e:
        raise ConfigError(f"{source}: malformed PEM certificate ({str(e).split('.')[0]})") from None


def certs_to_pem(certs) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def spiffe_ids_of(cert: x509.Certificate | x509.CertificateSigningRequest) -> list[str]:
    """The URI SANs of a certificate or CSR that start with spiffe://."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [u for u in san.get_values_for_type(x509.UniformResourceIdentifier) if u.startswith("spiffe://")]


def spiffe_id_of(cert: x509.Certificate) -> str | None:
    """The certificate's SPIFFE ID, or None; an SVID has exactly one URI SAN."""
    ids = spiffe_ids_of(cert)
    return ids[0] if len(ids) == 1 else None


def is_ca_cert(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def is_self_signed(cert: x509.Certificate) -> bool:
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except Exception:  # InvalidSignature, ValueError, TypeError: not signed by its own key
        return False
    return True


def fingerprint(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def describe(cert: x509.Certificate) -> dict:
    """What `meshcore ca inspect` prints about one certificate."""
    now = utc_now()
    not_after = cert.not_valid_after_utc
    return {
        "spiffe_id": spiffe_id_of(cert),
        "uri_sans": spiffe_ids_of(cert),
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "serial": format(cert.serial_number, "x"),
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": not_after.isoformat(),
        "expires_in_seconds": int((not_after - now).total_seconds()),
        "key_type": key_type_of(cert.public_key()),
        "ca": is_ca_cert(cert),
        "self_signed": is_self_signed(cert),
        "sha256": fingerprint(cert),
    }



# ---- files -------------------------------------------------------------------------


def read_file(path: str, what: str = "file") -> bytes:
    """The bytes of a file; CAError (not OSError) if it cannot be read."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise CAError(f"{path}: cannot read {what}: {e.strerror}") from None


def write_file(path: str, data: bytes, mode: int = 0o644) -> None:
    """Atomically replaces `path` (temporary file in the same directory, then
    rename): a reader sees the old content or the new, never half of it. The
    temporary file is created 0600, so a key is never readable by others."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    except OSError as e:
        raise CAError(f"{path}: cannot write: {e.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise CAError(f"{path}: cannot write: {e.strerror}") from None


def write_key(path: str, key) -> None:
    """The key as PKCS#8 PEM, mode 0600."""
    write_file(path, key_to_pem(key), mode=0o600)


def make_dirs(directory: str, mode: int) -> None:
    try:
        os.makedirs(directory, mode=mode, exist_ok=True)
    except OSError as e:
        raise CAError(f"{directory}: cannot create directory: {e.strerror}") from None
    if not os.path.isdir(directory):
        raise CAError(f"{directory}: not a directory")


def check_key_permissions(path: str) -> None:
    try:
        mode = os.stat(path).st_mode & 0o777
    except OSError:
        return
    if mode & 0o077:
        log.warning("%s: private key is readable by others (mode %o); chmod 600 it", path, mode)
