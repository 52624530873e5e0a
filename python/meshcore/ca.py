"""The mesh's certificate authority: one trust domain's root (optionally an
intermediate under it) and the X.509-SVIDs it issues to workloads.

Keys, CSRs, certificates and key files are meshcore.pki's; SPIFFE IDs
meshcore.identity's; lifetimes meshcore.durations'. Their names are also
importable from here (ca.generate_key, ca.workload_id, ca.parse_lifetime...).

Rules this module keeps:

- Private keys are generated where they are used and never travel. Issuance
  is a CSR flow: the workload (or the `meshcore ca issue` command, writing
  straight into the workload's directory) makes a key and a CSR naming its
  SPIFFE ID; the CA checks the CSR and signs. `issue_workload` runs both
  sides in one process and says so.
- Workload certificates follow the SPIFFE X509-SVID standard: exactly one URI
  SAN `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`, CA=false,
  key usage digitalSignature (+ keyEncipherment for RSA) critical, extended
  key usage serverAuth + clientAuth, short lifetimes. Signing certificates
  carry keyCertSign + cRLSign and the trust domain's own SPIFFE ID
  (`spiffe://<trust-domain>`, no path).
- Nothing from a CSR is copied into a certificate except its public key and,
  once validated, its SPIFFE ID. A CSR asking for anything else (a CA, other
  SAN types, a second URI, another trust domain) is rejected, not trimmed.
- Files are replaced atomically (write a temporary file, rename); key files
  are 0600 from the moment they exist.

A CA directory (`CertificateAuthority.init` / `meshcore ca init`):

    ca.yaml                trust domain, key type, workload TTLs
    root-cert.pem          the self-signed root
    root-key.pem           0600; not needed by `load` when an intermediate signs
    intermediate-cert.pem  optional: the certificate that signs workloads
    intermediate-key.pem   0600
    cert-chain.pem         the signing certificate up to the root (intermediate, root)
    trust-bundle.pem       the roots a proxy trusts (several during a root rotation)

A workload directory (`write_workload_dir` / `meshcore ca issue`): key.pem
(0600), cert-chain.pem (leaf + intermediates; the root travels in the bundle),
root-cert.pem, trust-bundle.pem.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import secrets

import yaml

from meshcore.extras import require

require("cryptography", "meshcore's certificate authority")

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, rsa  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402

from meshcore.durations import format_lifetime, parse_lifetime  # noqa: E402, F401 (ca.parse_lifetime, ...)
from meshcore.errors import CAError, ConfigError, CSRRejected  # noqa: E402, F401 (ca.CAError, ...)
from meshcore.identity import (  # noqa: E402, F401 (ca.workload_id, ... as before)
    MAX_SPIFFE_ID_LENGTH,
    MAX_TRUST_DOMAIN_LENGTH,
    parse_spiffe_id,
    parse_workload_id,
    validate_trust_domain,
    workload_id,
)
from meshcore.pki import (  # noqa: E402, F401 (ca.generate_key, ca.load_certs, ... as before)
    CSR_EC_CURVES,
    CSR_RSA_SIZES,
    DEFAULT_KEY_TYPE,
    KEY_TYPES,
    certs_to_pem,
    check_key_permissions,
    describe,
    fingerprint,
    generate_key,
    is_ca_cert,
    is_self_signed,
    key_to_pem,
    key_type_of,
    load_certs,
    load_csr,
    load_key,
    make_csr,
    make_dirs,
    read_file,
    spiffe_id_of,
    spiffe_ids_of,
    utc_now,
    write_file,
    write_key,
)

log = logging.getLogger("meshcore.ca")




DEFAULT_WORKLOAD_TTL = "24h"
DEFAULT_MAX_WORKLOAD_TTL = "90d"
DEFAULT_ROOT_LIFETIME = "10y"

CA_BACKDATE = dt.timedelta(minutes=5)     # CA certs: tolerate clock skew between nodes
LEAF_BACKDATE = dt.timedelta(seconds=60)  # workload certs: at most this, at most their TTL

ORGANIZATION = "meshcore"

# A CA directory.
CA_CONFIG = "ca.yaml"
ROOT_CERT = "root-cert.pem"
ROOT_KEY = "root-key.pem"
INTERMEDIATE_CERT = "intermediate-cert.pem"
INTERMEDIATE_KEY = "intermediate-key.pem"
CERT_CHAIN = "cert-chain.pem"
TRUST_BUNDLE = "trust-bundle.pem"
# A workload directory (plus CERT_CHAIN, ROOT_CERT, TRUST_BUNDLE).
WORKLOAD_KEY = "key.pem"



# ---- building certificates --------------------------------------------------------


def _serial() -> int:
    """128 random bits, never zero (RFC 5280 4.1.2.2: positive, at most 20 octets)."""
    while True:
        n = secrets.randbits(128)
        if n:
            return n


def _name(common_name: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION)]
    if common_name:
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


def _ski(cert: x509.Certificate) -> x509.SubjectKeyIdentifier:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return x509.SubjectKeyIdentifier.from_public_key(cert.public_key())


_CA_KEY_USAGE = x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                              data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                              encipher_only=False, decipher_only=False)


def _ca_cert(trust_domain: str, common_name: str, public_key, signing_key, issuer: x509.Certificate | None,
             lifetime: dt.timedelta, path_length: int) -> x509.Certificate:
    """A signing certificate: self-signed when issuer is None."""
    now = utc_now().replace(microsecond=0)
    subject = _name(common_name)
    ski = x509.SubjectKeyIdentifier.from_public_key(public_key)
    not_before, not_after = now - CA_BACKDATE, now + lifetime
    if issuer is not None:  # never outlive (or predate) the certificate above
        not_before = max(not_before, issuer.not_valid_before_utc)
        not_after = min(not_after, issuer.not_valid_after_utc)
    aki = (x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski) if issuer is None
           else x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(_ski(issuer)))
    builder = (x509.CertificateBuilder()
               .subject_name(subject)
               .issuer_name(subject if issuer is None else issuer.subject)
               .public_key(public_key)
               .serial_number(_serial())
               .not_valid_before(not_before)
               .not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
               .add_extension(_CA_KEY_USAGE, critical=True)
               .add_extension(x509.SubjectAlternativeName(
                   [x509.UniformResourceIdentifier(f"spiffe://{trust_domain}")]), critical=False)
               .add_extension(ski, critical=False)
               .add_extension(aki, critical=False))
    return builder.sign(signing_key, hashes.SHA256())


# ---- the CA ------------------------------------------------------------------------

_CONFIG_FIELDS = ("trust_domain", "key_type", "workload_ttl", "max_workload_ttl")


class CertificateAuthority:
    """A loaded CA directory: signs CSRs for SPIFFE IDs in its trust domain.

    Attributes: directory, trust_domain, key_type (the CA's own key type and the
    default for workload keys), workload_ttl and max_workload_ttl (timedelta),
    root_cert, signing_cert (the intermediate, or the root), intermediates (the
    certificates between a workload certificate and the root, sent in workload
    chains), trust_bundle (the roots a proxy trusts).
    """

    def __init__(self, directory: str, trust_domain: str, key_type: str, signing_cert: x509.Certificate,
                 signing_key, intermediates: list[x509.Certificate], root_cert: x509.Certificate,
                 trust_bundle: list[x509.Certificate], workload_ttl: dt.timedelta,
                 max_workload_ttl: dt.timedelta):
        self.directory = directory
        self.trust_domain = trust_domain
        self.key_type = key_type
        self.signing_cert = signing_cert
        self._signing_key = signing_key
        self.intermediates = intermediates
        self.root_cert = root_cert
        self.trust_bundle = trust_bundle
        self.workload_ttl = workload_ttl
        self.max_workload_ttl = max_workload_ttl

    def __repr__(self) -> str:
        return (f"<CertificateAuthority {self.trust_domain} in {self.directory}: "
                f"{len(self.intermediates)} intermediate(s), {len(self.trust_bundle)} root(s) trusted>")

    @property
    def root_cert_pem(self) -> bytes:
        return certs_to_pem([self.root_cert])

    @property
    def trust_bundle_pem(self) -> bytes:
        return certs_to_pem(self.trust_bundle)

    # -- creating and loading --

    @classmethod
    def init(cls, directory: str, trust_domain: str, key_type: str = DEFAULT_KEY_TYPE,
             intermediate: bool = False, root_lifetime=DEFAULT_ROOT_LIFETIME, intermediate_lifetime=None,
             workload_ttl=DEFAULT_WORKLOAD_TTL, max_workload_ttl=DEFAULT_MAX_WORKLOAD_TTL
             ) -> CertificateAuthority:
        """Creates a trust domain in `directory` (made 0700 if missing): a root
        key and self-signed root certificate, with `intermediate` also an
        intermediate that signs workloads. Refuses a directory that already
        holds a CA: a CA key is never overwritten."""
        validate_trust_domain(trust_domain)
        if key_type not in KEY_TYPES:
            raise ConfigError(f"key type {key_type!r}: expected one of {', '.join(KEY_TYPES)}")
        root_td = parse_lifetime(root_lifetime, "root lifetime")
        inter_td = parse_lifetime(intermediate_lifetime, "intermediate lifetime") if intermediate_lifetime else root_td
        wl_ttl = parse_lifetime(workload_ttl, "workload TTL")
        max_ttl = parse_lifetime(max_workload_ttl, "max workload TTL")
        if wl_ttl > max_ttl:
            raise ConfigError(f"workload TTL {format_lifetime(wl_ttl)} exceeds the max workload TTL "
                              f"{format_lifetime(max_ttl)}")
        make_dirs(directory, 0o700)
        existing = [n for n in (CA_CONFIG, ROOT_KEY, INTERMEDIATE_KEY, ROOT_CERT)
                    if os.path.exists(os.path.join(directory, n))]
        if existing:
            raise CAError(f"{directory}: already holds a CA ({', '.join(existing)}); "
                          "remove it or choose another directory")

        root_key = generate_key(key_type)
        root = _ca_cert(trust_domain, f"{trust_domain} root", root_key.public_key(), root_key, None, root_td,
                        path_length=1 if intermediate else 0)
        path = lambda name: os.path.join(directory, name)  # noqa: E731
        write_key(path(ROOT_KEY), root_key)
        write_file(path(ROOT_CERT), certs_to_pem([root]))
        chain = [root]
        if intermediate:
            inter_key = generate_key(key_type)
            inter = _ca_cert(trust_domain, f"{trust_domain} intermediate", inter_key.public_key(), root_key,
                             root, inter_td, path_length=0)
            write_key(path(INTERMEDIATE_KEY), inter_key)
            write_file(path(INTERMEDIATE_CERT), certs_to_pem([inter]))
            chain = [inter, root]
        write_file(path(CERT_CHAIN), certs_to_pem(chain))
        write_file(path(TRUST_BUNDLE), certs_to_pem([root]))
        config = {"trust_domain": trust_domain, "key_type": key_type,
                  "workload_ttl": workload_ttl if isinstance(workload_ttl, str) else format_lifetime(wl_ttl),
                  "max_workload_ttl": (max_workload_ttl if isinstance(max_workload_ttl, str)
                                       else format_lifetime(max_ttl))}
        header = ("# meshcore certificate authority, written by `meshcore ca init`.\n"
                  "# The *-key.pem files next to this one are secrets (mode 0600).\n")
        write_file(path(CA_CONFIG), (header + yaml.safe_dump(config, sort_keys=False)).encode())
        log.debug("created trust domain %s in %s (%s%s)", trust_domain, directory, key_type,
                 ", intermediate" if intermediate else "")
        return cls.load(directory)

    @classmethod
    def load(cls, directory: str) -> CertificateAuthority:
        """Reads a CA directory and checks it hangs together: the signing key
        matches the signing certificate, which is a CA, unexpired, first in
        cert-chain.pem, whose last certificate is the root; the trust bundle
        holds the root. Only the signing key is read: with an intermediate,
        root-key.pem may live offline."""
        config_path = os.path.join(directory, CA_CONFIG)
        if not os.path.isdir(directory):
            raise CAError(f"{directory}: no such directory (create a CA with `meshcore ca init`)")
        if not os.path.exists(config_path):
            raise CAError(f"{directory}: not a meshcore CA directory (no {CA_CONFIG}; "
                          "create one with `meshcore ca init`)")
        config = _load_config(config_path)
        path = lambda name: os.path.join(directory, name)  # noqa: E731

        def one_cert(name):
            certs = load_certs(read_file(path(name), "certificate"), path(name))
            if len(certs) != 1:
                raise CAError(f"{path(name)}: expected one certificate, found {len(certs)}")
            return certs[0]

        root = one_cert(ROOT_CERT)
        has_cert, has_key = os.path.exists(path(INTERMEDIATE_CERT)), os.path.exists(path(INTERMEDIATE_KEY))
        if has_cert != has_key:
            raise CAError(f"{directory}: {INTERMEDIATE_CERT} and {INTERMEDIATE_KEY} go together; one is missing")
        signer_name, key_name = (INTERMEDIATE_CERT, INTERMEDIATE_KEY) if has_cert else (ROOT_CERT, ROOT_KEY)
        signer = one_cert(signer_name)
        check_key_permissions(path(key_name))
        signing_key = load_key(read_file(path(key_name), "private key"), path(key_name))
        pub = serialization.PublicFormat.SubjectPublicKeyInfo
        if (signing_key.public_key().public_bytes(serialization.Encoding.DER, pub)
                != signer.public_key().public_bytes(serialization.Encoding.DER, pub)):
            raise CAError(f"{path(key_name)}: does not match the public key of {path(signer_name)}")
        try:
            usage = signer.extensions.get_extension_for_class(x509.KeyUsage).value
            can_sign = is_ca_cert(signer) and usage.key_cert_sign
        except x509.ExtensionNotFound:
            can_sign = False
        if not can_sign:
            raise CAError(f"{path(signer_name)}: not a CA certificate (needs CA=true and keyCertSign)")
        for cert, name in ((root, ROOT_CERT), (signer, signer_name)):
            ids = spiffe_ids_of(cert)
            if ids and ids != [f"spiffe://{config['trust_domain']}"]:
                raise CAError(f"{path(name)}: SPIFFE ID {ids[0]} does not match trust domain "
                              f"{config['trust_domain']!r} in {CA_CONFIG}")

        chain = load_certs(read_file(path(CERT_CHAIN), "certificate chain"), path(CERT_CHAIN))
        if not chain or chain[0] != signer:
            raise CAError(f"{path(CERT_CHAIN)}: must start with the signing certificate ({signer_name})")
        if chain[-1] != root:
            raise CAError(f"{path(CERT_CHAIN)}: must end with the root certificate ({ROOT_CERT})")
        for child, parent in zip(chain, chain[1:], strict=False):
            try:
                child.verify_directly_issued_by(parent)
            except Exception:
                raise CAError(f"{path(CERT_CHAIN)}: {child.subject.rfc4514_string()} is not issued by the "
                              f"next certificate, {parent.subject.rfc4514_string()}") from None
        intermediates = [c for c in chain if not is_self_signed(c)]

        bundle_path = path(TRUST_BUNDLE)
        bundle = [root]
        if os.path.exists(bundle_path):
            bundle = load_certs(read_file(bundle_path, "trust bundle"), bundle_path)
        if root not in bundle:
            raise CAError(f"{bundle_path}: does not contain this CA's root ({ROOT_CERT}); its workloads "
                          "could not verify each other")
        return cls(directory, config["trust_domain"], config["key_type"], signer, signing_key, intermediates,
                   root, bundle, config["workload_ttl"], config["max_workload_ttl"])

    # -- signing --

    def ttl(self, ttl=None) -> dt.timedelta:
        """The requested TTL (default: ca.yaml's workload_ttl), checked against max_workload_ttl."""
        if ttl is None:
            return self.workload_ttl
        td = parse_lifetime(ttl, "ttl")
        if td > self.max_workload_ttl:
            raise ConfigError(f"ttl {format_lifetime(td)} exceeds max_workload_ttl "
                              f"{format_lifetime(self.max_workload_ttl)} "
                              f"({os.path.join(self.directory, CA_CONFIG)})")
        return td

    def sign_csr(self, csr_pem: bytes | str, ttl=None, namespace: str | None = None,
                 service_account: str | None = None) -> bytes:
        """Checks a CSR and returns the PEM chain for it: the workload
        certificate, then the intermediates (not the root: peers have it in
        their trust bundle).

        The CSR's signature must verify (the requester holds the key), its key
        be EC P-256/P-384 or RSA 2048-4096, and its only SAN one URI, a
        workload SPIFFE ID in this trust domain: spiffe://<td>/ns/<ns>/sa/<sa>.
        With `namespace` and `service_account` (who the caller was
        authenticated as), the CSR's ID must be that one, or the CSR may carry
        none and gets that one. CSRs asking for a CA, for key usages of a CA,
        or for other SAN types are rejected (CSRRejected)."""
        csr = load_csr(csr_pem)
        if not csr.is_signature_valid:
            raise CSRRejected("CSR rejected: its signature does not verify")
        _check_csr_key(csr.public_key())
        spiffe_id = self._csr_identity(csr, namespace, service_account)
        leaf = self._issue(csr.public_key(), spiffe_id, self.ttl(ttl))
        return certs_to_pem([leaf, *self.intermediates])

    def _csr_identity(self, csr: x509.CertificateSigningRequest, namespace, service_account) -> str:
        if (namespace is None) != (service_account is None):
            raise ConfigError("namespace and service account go together: give both or neither")
        try:
            extensions = list(csr.extensions)
        except (ValueError, x509.DuplicateExtension) as e:
            raise CSRRejected(f"CSR rejected: unreadable extensions ({e})") from None
        uris = []
        for ext in extensions:
            value = ext.value
            if isinstance(value, x509.BasicConstraints) and value.ca:
                raise CSRRejected("CSR rejected: it asks for a CA certificate (basicConstraints CA=true)")
            if isinstance(value, x509.KeyUsage) and (value.key_cert_sign or value.crl_sign):
                raise CSRRejected("CSR rejected: it asks for CA key usages (keyCertSign/cRLSign)")
            if isinstance(value, x509.SubjectAlternativeName):
                for name in value:
                    if not isinstance(name, x509.UniformResourceIdentifier):
                        raise CSRRejected(f"CSR rejected: SAN {_general_name(name)}: only one URI SAN, "
                                          "the SPIFFE ID, is allowed")
                    uris.append(name.value)
        if len(uris) > 1:
            raise CSRRejected(f"CSR rejected: {len(uris)} URI SANs ({', '.join(uris)}); "
                              "an X.509-SVID has exactly one")
        wanted = (workload_id(self.trust_domain, namespace, service_account)
                  if namespace is not None else None)
        if not uris:
            if wanted is None:
                raise CSRRejected("CSR rejected: no URI SAN (SPIFFE ID), and no namespace/service account given")
            return wanted
        spiffe_id = uris[0]
        try:
            trust_domain, _ = parse_spiffe_id(spiffe_id)
            if trust_domain != self.trust_domain:
                raise CSRRejected(f"CSR rejected: SPIFFE ID {spiffe_id} is not in trust domain "
                                  f"{self.trust_domain!r}")
            parse_workload_id(spiffe_id)
        except ConfigError as e:
            raise CSRRejected(f"CSR rejected: {e}") from None
        if wanted is not None and spiffe_id != wanted:
            raise CSRRejected(f"CSR rejected: it asks for {spiffe_id}, but the caller is {wanted}")
        return spiffe_id

    def _issue(self, public_key, spiffe_id: str, ttl: dt.timedelta) -> x509.Certificate:
        now = utc_now()
        start = now.replace(microsecond=0)
        # Whole seconds: round the end up so a certificate never lives shorter
        # than asked; backdate by at most a minute (clock skew), never by more
        # than the TTL, so a 5 s certificate is valid at once and ends in ~5 s.
        not_after = start + ttl + (dt.timedelta(seconds=1) if now.microsecond else dt.timedelta(0))
        not_before = start - min(LEAF_BACKDATE, ttl)
        signer_end = self.signing_cert.not_valid_after_utc
        if signer_end <= now:
            raise CAError(f"{self.directory}: the signing certificate expired at {signer_end.isoformat()}; "
                          "create a new CA and bundle both roots (docs/ca.md)")
        if not_after > signer_end:
            log.warning("%s: ttl capped at the signing certificate's expiry, %s", spiffe_id, signer_end.isoformat())
            not_after = signer_end
        not_before = max(not_before, self.signing_cert.not_valid_before_utc)
        usage = x509.KeyUsage(digital_signature=True, content_commitment=False,
                              key_encipherment=isinstance(public_key, rsa.RSAPublicKey), data_encipherment=False,
                              key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False,
                              decipher_only=False)
        builder = (x509.CertificateBuilder()
                   .subject_name(_name())
                   .issuer_name(self.signing_cert.subject)
                   .public_key(public_key)
                   .serial_number(_serial())
                   .not_valid_before(not_before)
                   .not_valid_after(not_after)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(usage, critical=True)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                         ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                   .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(spiffe_id)]),
                                  critical=False)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                       _ski(self.signing_cert)), critical=False))
        cert = builder.sign(self._signing_key, hashes.SHA256())
        log.debug("issued %s serial %x until %s", spiffe_id, cert.serial_number, not_after.isoformat())
        return cert


def _general_name(name) -> str:
    kinds = {x509.DNSName: "DNS", x509.IPAddress: "IP", x509.RFC822Name: "email",
             x509.DirectoryName: "directory name", x509.RegisteredID: "registered ID", x509.OtherName: "other name"}
    return f"{kinds.get(type(name), type(name).__name__)}:{name.value}"


def _check_csr_key(public_key) -> None:
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if public_key.curve.name in CSR_EC_CURVES:
            return
        raise CSRRejected(f"CSR rejected: EC curve {public_key.curve.name} (P-256 or P-384 only)")
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size in CSR_RSA_SIZES:
            return
        raise CSRRejected(f"CSR rejected: RSA {public_key.key_size}-bit key (2048, 3072 or 4096 only)")
    raise CSRRejected(f"CSR rejected: {type(public_key).__name__} keys are not supported (EC or RSA only)")


def _load_config(path: str) -> dict:
    try:
        data = yaml.safe_load(read_file(path, "CA config"))
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with {', '.join(_CONFIG_FIELDS)}")
    for key in data:
        if key not in _CONFIG_FIELDS:
            raise ConfigError(f"{path}: {key}: unknown field (known: {', '.join(_CONFIG_FIELDS)})")
    if "trust_domain" not in data:
        raise ConfigError(f"{path}: trust_domain: required")

    def field(name, check):
        try:
            return check(data[name])
        except ConfigError as e:
            raise ConfigError(f"{path}: {name}: {e}") from None

    out = {
        "trust_domain": field("trust_domain", validate_trust_domain),
        "key_type": DEFAULT_KEY_TYPE,
        "workload_ttl": parse_lifetime(DEFAULT_WORKLOAD_TTL),
        "max_workload_ttl": parse_lifetime(DEFAULT_MAX_WORKLOAD_TTL),
    }
    if "key_type" in data:
        if data["key_type"] not in KEY_TYPES:
            raise ConfigError(f"{path}: key_type: {data['key_type']!r}: expected one of {', '.join(KEY_TYPES)}")
        out["key_type"] = data["key_type"]
    for name in ("workload_ttl", "max_workload_ttl"):
        if name in data:
            out[name] = field(name, parse_lifetime)
    if out["workload_ttl"] > out["max_workload_ttl"]:
        raise ConfigError(f"{path}: workload_ttl: longer than max_workload_ttl")
    return out


# ---- workloads and bundles ---------------------------------------------------------


def issue_workload(ca: CertificateAuthority, namespace: str, service_account: str, ttl=None,
                   key_type: str | None = None) -> tuple[bytes, bytes]:
    """Both sides of issuance in this process: generates the workload's key
    HERE, makes a CSR and has `ca` sign it. Returns (key PEM, chain PEM). For
    file mode and tests; a workload elsewhere makes its own key and CSR
    (generate_key, make_csr) and sends only the CSR."""
    key = generate_key(key_type or ca.key_type)
    csr = make_csr(key, workload_id(ca.trust_domain, namespace, service_account))
    chain = ca.sign_csr(csr, ttl, namespace=namespace, service_account=service_account)
    return key_to_pem(key), chain


def write_workload_dir(ca: CertificateAuthority, out_dir: str, namespace: str, service_account: str, ttl=None,
                       key_type: str | None = None) -> dict[str, str]:
    """Issues a workload certificate with a key generated here and writes it
    into `out_dir` (created 0700 if missing): key.pem (0600), cert-chain.pem,
    root-cert.pem, trust-bundle.pem, each replaced atomically. Running it
    again before the certificate's half-life is how a workload rotates.
    Returns {file name: path}."""
    key_pem, chain_pem = issue_workload(ca, namespace, service_account, ttl, key_type)
    make_dirs(out_dir, 0o700)
    paths = {name: os.path.join(out_dir, name) for name in (WORKLOAD_KEY, CERT_CHAIN, ROOT_CERT, TRUST_BUNDLE)}
    write_file(paths[WORKLOAD_KEY], key_pem, mode=0o600)
    write_file(paths[CERT_CHAIN], chain_pem)
    write_file(paths[ROOT_CERT], ca.root_cert_pem)
    write_file(paths[TRUST_BUNDLE], ca.trust_bundle_pem)
    return paths


def bundle_roots(sources) -> list[x509.Certificate]:
    """The roots of several CAs, deduplicated, in order. A source is a CA
    directory (its root-cert.pem and trust-bundle.pem) or a PEM file of root
    certificates (a root, or an earlier bundle). Every certificate must be a
    self-signed CA certificate."""
    out, seen = [], set()
    for source in sources:
        if os.path.isdir(source):
            files = [os.path.join(source, n) for n in (ROOT_CERT, TRUST_BUNDLE)]
            files = [f for f in files if os.path.exists(f)]
            if not files:
                raise CAError(f"{source}: no {ROOT_CERT} or {TRUST_BUNDLE} (not a CA directory)")
        else:
            files = [source]
        for path in files:
            certs = load_certs(read_file(path, "certificates"), path)
            for cert in certs:
                if not is_ca_cert(cert) or not is_self_signed(cert):
                    raise ConfigError(f"{path}: {cert.subject.rfc4514_string()} is not a root "
                                      "(a self-signed CA certificate)")
                fp = fingerprint(cert)
                if fp not in seen:
                    seen.add(fp)
                    out.append(cert)
    if not out:
        raise ConfigError("trust bundle: no sources given")
    return out


def write_bundle(out_path: str, sources) -> list[x509.Certificate]:
    """Writes the deduplicated roots of `sources` (see bundle_roots) to out_path;
    the output may be one of the sources (all are read before writing)."""
    roots = bundle_roots(sources)
    write_file(out_path, certs_to_pem(roots))
    return roots
