"""The certificate authority (meshcore.ca, `meshcore ca ...`): real keys,
real certificates, checked three ways: with `cryptography`, with the
`openssl` command-line tool (verify, x509 -ext) and by an mTLS handshake
between two Python `ssl` endpoints holding issued workload certificates.

The SVID rules come from the SPIFFE X509-SVID standard: exactly one URI SAN,
CA=false, key usage digitalSignature (+ keyEncipherment for RSA) critical, no
keyCertSign/cRLSign on leaves, serverAuth + clientAuth."""
import datetime as dt
import json
import os
import pathlib
import re
import shutil
import socket
import ssl
import stat
import subprocess
import sys
import threading

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from meshcore import ca
from meshcore.cli import ca as ca_cli
from meshcore.errors import ConfigError, MeshcoreError

MESHCORE = pathlib.Path(sys.executable).parent / "meshcore"
TD = "cluster.local"
OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="openssl command-line tool not installed")


# ---- helpers -----------------------------------------------------------------------


def now():
    return dt.datetime.now(dt.timezone.utc)


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def openssl(*args):
    return subprocess.run([OPENSSL, *map(str, args)], capture_output=True, text=True, timeout=30)


def meshcore(*args, cwd=None):
    return subprocess.run([str(MESHCORE), *map(str, args)], capture_output=True, text=True, timeout=60, cwd=cwd)


def ext(cert, cls):
    return cert.extensions.get_extension_for_class(cls)


def split_chain(tmp_path, chain_pem, prefix="w"):
    """Writes leaf.pem and (if any) untrusted.pem (the intermediates) for `openssl verify`."""
    certs = ca.load_certs(chain_pem)
    leaf = tmp_path / f"{prefix}-leaf.pem"
    leaf.write_bytes(ca.certs_to_pem(certs[:1]))
    untrusted = None
    if len(certs) > 1:
        untrusted = tmp_path / f"{prefix}-untrusted.pem"
        untrusted.write_bytes(ca.certs_to_pem(certs[1:]))
    return leaf, untrusted


def openssl_verify(bundle, leaf, untrusted=None, *extra):
    args = ["verify", "-x509_strict", *extra, "-CAfile", bundle]
    if untrusted:
        args += ["-untrusted", untrusted]
    return openssl(*args, leaf)


def raw_csr(key, general_names=(), extensions=(), subject=None):
    """A CSR with whatever SANs and extensions a test wants (make_csr only makes good ones)."""
    b = x509.CertificateSigningRequestBuilder().subject_name(subject or x509.Name([]))
    if general_names:
        b = b.add_extension(x509.SubjectAlternativeName(list(general_names)), critical=False)
    for e in extensions:
        b = b.add_extension(e, critical=True)
    return b.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def uri(text):
    return x509.UniformResourceIdentifier(text)


def assert_svid(leaf, spiffe_id, signer, rsa_key):
    """The X509-SVID leaf profile, checked with `cryptography`."""
    san = ext(leaf, x509.SubjectAlternativeName)
    assert list(san.value) == [uri(spiffe_id)]                       # exactly one URI SAN, nothing else
    bc = ext(leaf, x509.BasicConstraints)
    assert bc.critical and bc.value.ca is False
    ku = ext(leaf, x509.KeyUsage)
    assert ku.critical
    assert ku.value.digital_signature
    assert ku.value.key_encipherment is rsa_key
    assert not (ku.value.key_cert_sign or ku.value.crl_sign or ku.value.content_commitment
                or ku.value.data_encipherment or ku.value.key_agreement)
    eku = ext(leaf, x509.ExtendedKeyUsage)
    assert set(eku.value) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert leaf.subject == x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "meshcore")])
    ski = ext(leaf, x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(leaf.public_key())
    aki = ext(leaf, x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ext(signer, x509.SubjectKeyIdentifier).value.digest
    assert 0 < leaf.serial_number < 2 ** 128
    assert leaf.issuer == signer.subject
    leaf.verify_directly_issued_by(signer)
    assert leaf.not_valid_before_utc <= now() < leaf.not_valid_after_utc


def assert_ca_cert(cert, path_length):
    bc = ext(cert, x509.BasicConstraints)
    assert bc.critical and bc.value.ca is True and bc.value.path_length == path_length
    ku = ext(cert, x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign
    assert not ku.value.digital_signature and not ku.value.key_encipherment
    assert list(ext(cert, x509.SubjectAlternativeName).value) == [uri(f"spiffe://{TD}")]
    assert ext(cert, x509.SubjectKeyIdentifier).value == x509.SubjectKeyIdentifier.from_public_key(cert.public_key())


# ---- fixtures: one CA of each kind per module (key generation is the slow part) -----


@pytest.fixture(scope="module")
def ec_ca(tmp_path_factory):
    return ca.CertificateAuthority.init(str(tmp_path_factory.mktemp("ca") / "ec"), TD)


@pytest.fixture(scope="module")
def rsa_ca(tmp_path_factory):
    return ca.CertificateAuthority.init(str(tmp_path_factory.mktemp("ca") / "rsa"), TD, key_type="rsa-2048")


@pytest.fixture(scope="module")
def inter_ca(tmp_path_factory):
    return ca.CertificateAuthority.init(str(tmp_path_factory.mktemp("ca") / "inter"), TD, intermediate=True)


@pytest.fixture(params=["ec", "rsa", "intermediate"])
def any_ca(request, ec_ca, rsa_ca, inter_ca):
    return {"ec": ec_ca, "rsa": rsa_ca, "intermediate": inter_ca}[request.param]


# ---- the CLI's copies of the library's constants ------------------------------------


def test_cli_constants_match_library():
    assert ca_cli.KEY_TYPES == ca.KEY_TYPES
    assert ca_cli.DEFAULT_KEY_TYPE == ca.DEFAULT_KEY_TYPE
    assert ca_cli.DEFAULT_ROOT_LIFETIME == ca.DEFAULT_ROOT_LIFETIME
    assert ca_cli.DEFAULT_WORKLOAD_TTL == ca.DEFAULT_WORKLOAD_TTL


# ---- init --------------------------------------------------------------------------


def test_init_ec_default(ec_ca):
    d = pathlib.Path(ec_ca.directory)
    assert sorted(p.name for p in d.iterdir()) == ["ca.yaml", "cert-chain.pem", "root-cert.pem", "root-key.pem",
                                                   "trust-bundle.pem"]
    assert mode_of(d / "root-key.pem") == 0o600
    assert mode_of(d) == 0o700
    root = ca.load_certs((d / "root-cert.pem").read_bytes())[0]
    assert root.subject == x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "meshcore"),
                                      x509.NameAttribute(NameOID.COMMON_NAME, "cluster.local root")])
    assert root.issuer == root.subject
    root.verify_directly_issued_by(root)
    assert_ca_cert(root, path_length=0)
    assert isinstance(root.public_key(), ec.EllipticCurvePublicKey) and root.public_key().curve.name == "secp256r1"
    assert root.signature_hash_algorithm.name == "sha256"
    key = ca.load_key((d / "root-key.pem").read_bytes())
    assert ca.key_type_of(key) == "ec-p256"
    lifetime = root.not_valid_after_utc - now()
    assert dt.timedelta(days=3649) < lifetime <= dt.timedelta(days=3650)
    assert root.not_valid_before_utc < now() - dt.timedelta(minutes=4)  # backdated for clock skew
    assert ca.load_certs((d / "cert-chain.pem").read_bytes()) == [root]
    assert ca.load_certs((d / "trust-bundle.pem").read_bytes()) == [root]
    assert yaml.safe_load((d / "ca.yaml").read_text()) == {
        "trust_domain": TD, "key_type": "ec-p256", "workload_ttl": "24h", "max_workload_ttl": "90d"}
    assert ec_ca.signing_cert == root and ec_ca.intermediates == [] and ec_ca.trust_bundle == [root]


def test_init_rsa(rsa_ca):
    root = rsa_ca.root_cert
    assert isinstance(root.public_key(), rsa.RSAPublicKey) and root.public_key().key_size == 2048
    assert root.signature_hash_algorithm.name == "sha256"
    assert_ca_cert(root, path_length=0)
    assert rsa_ca.key_type == "rsa-2048"
    assert mode_of(os.path.join(rsa_ca.directory, "root-key.pem")) == 0o600


def test_init_intermediate(inter_ca):
    d = pathlib.Path(inter_ca.directory)
    root = ca.load_certs((d / "root-cert.pem").read_bytes())[0]
    inter = ca.load_certs((d / "intermediate-cert.pem").read_bytes())[0]
    assert_ca_cert(root, path_length=1)
    assert_ca_cert(inter, path_length=0)
    assert inter.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "cluster.local intermediate"
    assert inter.issuer == root.subject
    inter.verify_directly_issued_by(root)
    assert ext(inter, x509.AuthorityKeyIdentifier).value.key_identifier == ext(
        root, x509.SubjectKeyIdentifier).value.digest
    assert inter.not_valid_after_utc <= root.not_valid_after_utc
    assert ca.load_certs((d / "cert-chain.pem").read_bytes()) == [inter, root]
    assert ca.load_certs((d / "trust-bundle.pem").read_bytes()) == [root]
    assert mode_of(d / "intermediate-key.pem") == 0o600
    assert inter_ca.signing_cert == inter and inter_ca.intermediates == [inter]


def test_init_refuses_a_directory_holding_a_ca(ec_ca):
    before = pathlib.Path(ec_ca.directory, "root-key.pem").read_bytes()
    with pytest.raises(ca.CAError, match="already holds a CA"):
        ca.CertificateAuthority.init(ec_ca.directory, TD)
    assert pathlib.Path(ec_ca.directory, "root-key.pem").read_bytes() == before


@pytest.mark.parametrize("trust_domain, message", [
    ("Cluster.Local", "lowercase"), ("a/b", "lowercase"), ("spiffe://cluster.local", "give the name alone"),
    ("", "empty"), ("a:8080", "lowercase"),
])
def test_init_rejects_bad_trust_domains(tmp_path, trust_domain, message):
    with pytest.raises(ConfigError, match=message):
        ca.CertificateAuthority.init(str(tmp_path / "ca"), trust_domain)
    assert not (tmp_path / "ca").exists()


def test_init_rejects_bad_options(tmp_path):
    with pytest.raises(ConfigError, match="key type"):
        ca.CertificateAuthority.init(str(tmp_path / "a"), TD, key_type="dsa-1024")
    with pytest.raises(ConfigError, match="root lifetime"):
        ca.CertificateAuthority.init(str(tmp_path / "b"), TD, root_lifetime="forever")
    with pytest.raises(ConfigError, match="exceeds the max workload TTL"):
        ca.CertificateAuthority.init(str(tmp_path / "c"), TD, workload_ttl="100d")


def test_load_errors(tmp_path, ec_ca, rsa_ca):
    with pytest.raises(ca.CAError, match="no such directory"):
        ca.CertificateAuthority.load(str(tmp_path / "missing"))
    with pytest.raises(ca.CAError, match="not a meshcore CA directory"):
        ca.CertificateAuthority.load(str(tmp_path))

    broken = tmp_path / "broken"
    shutil.copytree(ec_ca.directory, broken)
    (broken / "ca.yaml").write_text("trust_domain: cluster.local\nworkload_ttl: soon\n")
    with pytest.raises(ConfigError, match=r"ca.yaml: workload_ttl: .*'soon'"):
        ca.CertificateAuthority.load(str(broken))
    (broken / "ca.yaml").write_text("trust_domain: cluster.local\ncolour: blue\n")
    with pytest.raises(ConfigError, match="colour: unknown field"):
        ca.CertificateAuthority.load(str(broken))
    (broken / "ca.yaml").write_text("trust_domain: other.example\n")
    with pytest.raises(ca.CAError, match="does not match trust domain 'other.example'"):
        ca.CertificateAuthority.load(str(broken))

    swapped = tmp_path / "swapped"
    shutil.copytree(ec_ca.directory, swapped)
    shutil.copy(os.path.join(rsa_ca.directory, "root-key.pem"), swapped / "root-key.pem")
    with pytest.raises(ca.CAError, match="does not match the public key"):
        ca.CertificateAuthority.load(str(swapped))


def test_root_key_can_go_offline_when_an_intermediate_signs(tmp_path, inter_ca):
    d = tmp_path / "online"
    shutil.copytree(inter_ca.directory, d)
    (d / "root-key.pem").unlink()
    online = ca.CertificateAuthority.load(str(d))
    _, chain = ca.issue_workload(online, "default", "web")
    assert ca.load_certs(chain)[1] == inter_ca.signing_cert


# ---- issuing -----------------------------------------------------------------------


def test_issued_certificate_is_an_x509_svid(any_ca):
    key_pem, chain_pem = ca.issue_workload(any_ca, "default", "web")
    chain = ca.load_certs(chain_pem)
    assert chain[1:] == any_ca.intermediates                        # leaf + intermediates, no root
    leaf = chain[0]
    rsa_key = any_ca.key_type == "rsa-2048"
    assert_svid(leaf, "spiffe://cluster.local/ns/default/sa/web", any_ca.signing_cert, rsa_key)
    key = ca.load_key(key_pem)
    assert ca.key_type_of(key) == any_ca.key_type                   # workload keys default to the CA's type
    pub = serialization.PublicFormat.SubjectPublicKeyInfo
    assert (key.public_key().public_bytes(serialization.Encoding.DER, pub)
            == leaf.public_key().public_bytes(serialization.Encoding.DER, pub))
    # 24 h by default (the end rounded up to a whole second), backdated 60 s.
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc in (dt.timedelta(hours=24, seconds=60),
                                                                    dt.timedelta(hours=24, seconds=61))
    assert now() - dt.timedelta(seconds=62) <= leaf.not_valid_before_utc <= now() - dt.timedelta(seconds=58)


def test_serials_are_random(ec_ca):
    serials = {ca.load_certs(ca.issue_workload(ec_ca, "default", "web")[1])[0].serial_number for _ in range(8)}
    assert len(serials) == 8
    assert max(serials).bit_length() > 100


def test_cryptography_path_validation(any_ca):
    verification = pytest.importorskip("cryptography.x509.verification")
    if not hasattr(verification.PolicyBuilder, "build_client_verifier"):
        pytest.skip("cryptography too old for client verification")
    _, chain_pem = ca.issue_workload(any_ca, "prod", "api")
    chain = ca.load_certs(chain_pem)
    verifier = verification.PolicyBuilder().store(verification.Store(any_ca.trust_bundle)).build_client_verifier()
    verified = verifier.verify(chain[0], chain[1:])
    assert verified.subjects == [uri("spiffe://cluster.local/ns/prod/sa/api")]
    assert verified.chain[-1] == any_ca.root_cert


@needs_openssl
def test_openssl_verifies_and_shows_the_svid_profile(tmp_path, any_ca):
    _, chain_pem = ca.issue_workload(any_ca, "default", "web")
    leaf, untrusted = split_chain(tmp_path, chain_pem)
    assert (untrusted is not None) == bool(any_ca.intermediates)
    bundle = os.path.join(any_ca.directory, "trust-bundle.pem")
    for purpose in ("sslclient", "sslserver"):
        r = openssl_verify(bundle, leaf, untrusted, "-purpose", purpose)
        assert r.returncode == 0 and r.stdout.strip().endswith(": OK"), r.stdout + r.stderr

    r = openssl("x509", "-in", leaf, "-noout", "-ext", "subjectAltName,keyUsage,extendedKeyUsage,basicConstraints")
    assert r.returncode == 0, r.stderr
    out = [line.strip() for line in r.stdout.splitlines()]
    assert "X509v3 Basic Constraints: critical" in out and "CA:FALSE" in out
    assert "X509v3 Key Usage: critical" in out
    assert ("Digital Signature, Key Encipherment" if any_ca.key_type == "rsa-2048" else "Digital Signature") in out
    assert "X509v3 Extended Key Usage:" in out
    assert "TLS Web Server Authentication, TLS Web Client Authentication" in out
    assert "X509v3 Subject Alternative Name:" in out
    assert "URI:spiffe://cluster.local/ns/default/sa/web" in out
    assert "Certificate Sign" not in r.stdout and "DNS:" not in r.stdout

    # The CA certificates as openssl sees them: CA:TRUE, pathlen, cert/CRL signing, critical.
    r = openssl("x509", "-in", os.path.join(any_ca.directory, "root-cert.pem"), "-noout", "-ext",
                "basicConstraints,keyUsage,subjectAltName")
    out = [line.strip() for line in r.stdout.splitlines()]
    assert "X509v3 Basic Constraints: critical" in out
    assert f"CA:TRUE, pathlen:{1 if any_ca.intermediates else 0}" in out
    assert "X509v3 Key Usage: critical" in out and "Certificate Sign, CRL Sign" in out
    assert "URI:spiffe://cluster.local" in out


@needs_openssl
def test_ttl_of_5s_is_valid_now_and_expires_in_5s(tmp_path, inter_ca):
    issued_at = now()
    _, chain_pem = ca.issue_workload(inter_ca, "default", "web", ttl="5s")
    leaf = ca.load_certs(chain_pem)[0]
    assert leaf.not_valid_before_utc <= now() < leaf.not_valid_after_utc
    left = (leaf.not_valid_after_utc - issued_at).total_seconds()
    assert 4 < left <= 6.5, left
    assert leaf.not_valid_before_utc >= issued_at - dt.timedelta(seconds=6)  # backdated by at most the TTL
    leaf_path, untrusted = split_chain(tmp_path, chain_pem)
    bundle = os.path.join(inter_ca.directory, "trust-bundle.pem")
    r = openssl_verify(bundle, leaf_path, untrusted)
    assert r.returncode == 0, r.stdout + r.stderr
    later = int(issued_at.timestamp()) + 10
    r = openssl_verify(bundle, leaf_path, untrusted, "-attime", later)
    assert r.returncode != 0 and "certificate has expired" in r.stdout + r.stderr


def test_ttl_of_1s_is_valid_now(ec_ca):
    leaf = ca.load_certs(ca.issue_workload(ec_ca, "default", "web", ttl=1)[1])[0]
    assert leaf.not_valid_before_utc <= now() < leaf.not_valid_after_utc


def test_ttl_limits(tmp_path, ec_ca):
    with pytest.raises(ConfigError, match="exceeds max_workload_ttl 90d"):
        ca.issue_workload(ec_ca, "default", "web", ttl="91d")
    with pytest.raises(ConfigError, match="ttl"):
        ca.issue_workload(ec_ca, "default", "web", ttl="0s")
    # A workload certificate never outlives the certificate that signed it.
    short = ca.CertificateAuthority.init(str(tmp_path / "short"), TD, root_lifetime="1h", workload_ttl="1h")
    leaf = ca.load_certs(ca.issue_workload(short, "default", "web", ttl="24h")[1])[0]
    assert leaf.not_valid_after_utc == short.root_cert.not_valid_after_utc


def test_default_ttl_comes_from_ca_yaml(tmp_path):
    authority = ca.CertificateAuthority.init(str(tmp_path / "ca"), TD, workload_ttl="2h")
    assert yaml.safe_load(pathlib.Path(tmp_path / "ca" / "ca.yaml").read_text())["workload_ttl"] == "2h"
    leaf = ca.load_certs(ca.issue_workload(authority, "default", "web")[1])[0]
    assert dt.timedelta(hours=2) <= leaf.not_valid_after_utc - now() <= dt.timedelta(hours=2, seconds=2)


def test_rsa_workload_key_from_an_ec_ca(ec_ca):
    key_pem, chain_pem = ca.issue_workload(ec_ca, "default", "web", key_type="rsa-2048")
    leaf = ca.load_certs(chain_pem)[0]
    assert ca.key_type_of(ca.load_key(key_pem)) == "rsa-2048"
    assert_svid(leaf, "spiffe://cluster.local/ns/default/sa/web", ec_ca.signing_cert, rsa_key=True)


# ---- the CSR flow ------------------------------------------------------------------


def test_sign_csr_keeps_the_key_with_the_workload(inter_ca):
    key = ca.generate_key()
    csr = ca.make_csr(key, "spiffe://cluster.local/ns/shop/sa/cart")
    parsed = x509.load_pem_x509_csr(csr)
    assert parsed.is_signature_valid and parsed.subject == x509.Name([])
    assert list(ext(parsed, x509.SubjectAlternativeName).value) == [uri("spiffe://cluster.local/ns/shop/sa/cart")]
    assert b"PRIVATE KEY" not in csr
    chain = ca.load_certs(inter_ca.sign_csr(csr, ttl="1h"))
    assert_svid(chain[0], "spiffe://cluster.local/ns/shop/sa/cart", inter_ca.signing_cert, rsa_key=False)
    # with the caller's identity given, the CSR must ask for that one
    assert ca.load_certs(inter_ca.sign_csr(csr, namespace="shop", service_account="cart"))[0]
    # a CSR without a SAN gets the caller's identity
    bare = raw_csr(key)
    leaf = ca.load_certs(inter_ca.sign_csr(bare, namespace="shop", service_account="cart"))[0]
    assert ca.spiffe_id_of(leaf) == "spiffe://cluster.local/ns/shop/sa/cart"


def _tampered_csr(key):
    der = bytearray(x509.load_pem_x509_csr(ca.make_csr(key, "spiffe://cluster.local/ns/a/sa/b")).public_bytes(
        serialization.Encoding.DER))
    der[-3] ^= 0x01  # inside the signature
    csr = x509.load_der_x509_csr(bytes(der))
    return csr.public_bytes(serialization.Encoding.PEM)


@pytest.mark.parametrize("make, kwargs, message", [
    (lambda k: ca.make_csr(k, "spiffe://other.example/ns/default/sa/web"), {}, "not in trust domain 'cluster.local'"),
    (lambda k: raw_csr(k, [uri("spiffe://cluster.local/ns/default/sa/web"), x509.DNSName("web.default.svc")]), {},
     "DNS:web.default.svc"),
    (lambda k: raw_csr(k, [uri("spiffe://cluster.local/ns/default/sa/web"),
                           uri("spiffe://cluster.local/ns/default/sa/admin")]), {}, "2 URI SANs"),
    (lambda k: raw_csr(k, [x509.DNSName("web")]), {}, "DNS:web"),
    (lambda k: raw_csr(k, [x509.RFC822Name("a@b.c")]), {}, "email:a@b.c"),
    (lambda k: raw_csr(k, [uri("spiffe://cluster.local/ns/default/sa/web")],
                       [x509.BasicConstraints(ca=True, path_length=None)]), {}, "asks for a CA certificate"),
    (lambda k: raw_csr(k, [uri("spiffe://cluster.local/ns/default/sa/web")],
                       [x509.KeyUsage(True, False, False, False, False, True, True, False, False)]), {},
     "CA key usages"),
    (lambda k: ca.make_csr(k, "spiffe://cluster.local/web"), {}, "workload ID has the form"),
    (lambda k: ca.make_csr(k, "spiffe://cluster.local/ns/default/sa/web/extra"), {}, "workload ID has the form"),
    (lambda k: raw_csr(k, [uri("spiffe://cluster.local")]), {}, "workload ID has the form"),
    (lambda k: raw_csr(k, [uri("spiffe://cluster.local/ns/default/sa/web/")]), {}, "must not end with '/'"),
    (lambda k: raw_csr(k, [uri("https://cluster.local/ns/default/sa/web")]), {}, "must start with spiffe://"),
    (lambda k: ca.make_csr(k, "spiffe://cluster.local/ns/default/sa/web"),
     {"namespace": "default", "service_account": "admin"}, "the caller is spiffe://cluster.local/ns/default/sa/admin"),
    (lambda k: raw_csr(k), {}, "no URI SAN"),
    (lambda k: raw_csr(rsa.generate_private_key(public_exponent=65537, key_size=1024),
                       [uri("spiffe://cluster.local/ns/default/sa/web")]), {}, "RSA 1024-bit"),
    (lambda k: raw_csr(ec.generate_private_key(ec.SECP521R1()), [uri("spiffe://cluster.local/ns/default/sa/web")]),
     {}, "curve secp521r1"),
    (_tampered_csr, {}, "signature does not verify"),
    (lambda k: b"-----BEGIN CERTIFICATE REQUEST-----\nnope\n-----END CERTIFICATE REQUEST-----\n", {}, "malformed"),
    (lambda k: b"hello", {}, "not a PEM certificate signing request"),
])
def test_bad_csrs_are_rejected(inter_ca, make, kwargs, message):
    with pytest.raises(ca.CSRRejected, match=message):
        inter_ca.sign_csr(make(ca.generate_key()), ttl="1h", **kwargs)


def test_namespace_and_service_account_go_together(ec_ca):
    csr = ca.make_csr(ca.generate_key(), "spiffe://cluster.local/ns/default/sa/web")
    with pytest.raises(ConfigError, match="give both or neither"):
        ec_ca.sign_csr(csr, namespace="default")


def test_make_csr_validates_the_id():
    with pytest.raises(ConfigError, match="needs a path"):
        ca.make_csr(ca.generate_key(), "spiffe://cluster.local")
    with pytest.raises(ConfigError, match="only letters"):
        ca.make_csr(ca.generate_key(), "spiffe://cluster.local/ns/a b/sa/c")


# ---- bundles -----------------------------------------------------------------------


@needs_openssl
def test_multi_root_bundle_verifies_certs_from_either_root(tmp_path, ec_ca, inter_ca):
    # Root rotation: the old CA (ec_ca) and the new one (inter_ca) share the trust domain.
    bundle = tmp_path / "bundle.pem"
    roots = ca.write_bundle(str(bundle), [ec_ca.directory, inter_ca.directory, ec_ca.directory])
    assert roots == [ec_ca.root_cert, inter_ca.root_cert]              # deduplicated, in order
    assert ca.load_certs(bundle.read_bytes()) == roots
    only_old = tmp_path / "old.pem"
    only_old.write_bytes(ec_ca.root_cert_pem)
    for authority, name in ((ec_ca, "old"), (inter_ca, "new")):
        leaf, untrusted = split_chain(tmp_path, ca.issue_workload(authority, "default", "web")[1], name)
        r = openssl_verify(bundle, leaf, untrusted)
        assert r.returncode == 0, r.stdout + r.stderr
        r = openssl_verify(only_old, leaf, untrusted)
        assert (r.returncode == 0) is (authority is ec_ca), r.stdout + r.stderr


def test_bundle_accepts_files_and_rejects_non_roots(tmp_path, ec_ca, inter_ca, rsa_ca):
    first = tmp_path / "first.pem"
    ca.write_bundle(str(first), [ec_ca.directory, inter_ca.directory])
    # an earlier bundle plus another CA, written over the earlier bundle itself
    roots = ca.write_bundle(str(first), [str(first), rsa_ca.directory])
    assert roots == [ec_ca.root_cert, inter_ca.root_cert, rsa_ca.root_cert]
    with pytest.raises(ConfigError, match="is not a root"):
        ca.bundle_roots([os.path.join(inter_ca.directory, "intermediate-cert.pem")])
    leaf = tmp_path / "leaf.pem"
    leaf.write_bytes(ca.issue_workload(ec_ca, "a", "b")[1])
    with pytest.raises(ConfigError, match="is not a root"):
        ca.bundle_roots([str(leaf)])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ca.CAError, match="not a CA directory"):
        ca.bundle_roots([str(tmp_path / "empty")])
    with pytest.raises(ca.CAError, match="cannot read"):
        ca.bundle_roots([str(tmp_path / "missing.pem")])


def test_a_ca_serves_a_multi_root_bundle_to_its_workloads(tmp_path, ec_ca, inter_ca):
    new = tmp_path / "new"
    shutil.copytree(inter_ca.directory, new)
    ca.write_bundle(str(new / "trust-bundle.pem"), [ec_ca.directory, str(new)])
    authority = ca.CertificateAuthority.load(str(new))
    assert authority.trust_bundle == [ec_ca.root_cert, inter_ca.root_cert]
    paths = ca.write_workload_dir(authority, str(tmp_path / "w"), "default", "web")
    assert ca.load_certs(pathlib.Path(paths["trust-bundle.pem"]).read_bytes()) == authority.trust_bundle
    assert ca.load_certs(pathlib.Path(paths["root-cert.pem"]).read_bytes()) == [inter_ca.root_cert]
    # a bundle without the CA's own root is refused: its workloads could not verify each other
    ca.write_bundle(str(new / "trust-bundle.pem"), [ec_ca.directory])
    with pytest.raises(ca.CAError, match="does not contain this CA's root"):
        ca.CertificateAuthority.load(str(new))


# ---- files -------------------------------------------------------------------------


def test_key_files_are_0600_whatever_the_umask(tmp_path):
    old = os.umask(0)
    try:
        authority = ca.CertificateAuthority.init(str(tmp_path / "ca"), TD, intermediate=True)
        paths = ca.write_workload_dir(authority, str(tmp_path / "w"), "default", "web")
    finally:
        os.umask(old)
    for path in (tmp_path / "ca" / "root-key.pem", tmp_path / "ca" / "intermediate-key.pem", paths["key.pem"]):
        assert mode_of(path) == 0o600, path
    for name in ("root-cert.pem", "cert-chain.pem", "trust-bundle.pem", "ca.yaml"):
        assert mode_of(tmp_path / "ca" / name) == 0o644
    assert mode_of(paths["cert-chain.pem"]) == 0o644
    assert not [p for p in (tmp_path / "w").iterdir() if p.name.endswith(".tmp")]


def test_reissuing_replaces_the_files(tmp_path, ec_ca):
    first = ca.write_workload_dir(ec_ca, str(tmp_path / "w"), "default", "web")
    key1 = pathlib.Path(first["key.pem"]).read_bytes()
    chain1 = pathlib.Path(first["cert-chain.pem"]).read_bytes()
    second = ca.write_workload_dir(ec_ca, str(tmp_path / "w"), "default", "web")
    assert pathlib.Path(second["key.pem"]).read_bytes() != key1          # rotation makes a new key
    assert pathlib.Path(second["cert-chain.pem"]).read_bytes() != chain1
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == [
        "cert-chain.pem", "key.pem", "root-cert.pem", "trust-bundle.pem"]


# ---- mTLS with Python's ssl module -------------------------------------------------


def _tls_context(server, workload_dir, bundle):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(os.path.join(workload_dir, "cert-chain.pem"), os.path.join(workload_dir, "key.pem"))
    ctx.load_verify_locations(bundle)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    if not server:
        ctx.check_hostname = False  # identity is the SPIFFE ID (URI SAN), checked below, not a host name
    return ctx


def _uri_sans(peercert):
    return [v for k, v in peercert.get("subjectAltName", ()) if k == "URI"]


def _handshake(server_ctx, client_ctx):
    """One connection over 127.0.0.1: returns (what the server saw, what the client saw)."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    seen = {}

    def serve():
        try:
            conn, _ = listener.accept()
            conn.settimeout(10)
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                seen["peer"] = _uri_sans(tls.getpeercert())
                tls.sendall(tls.recv(64).upper())
        except (ssl.SSLError, OSError) as e:
            seen["error"] = e

    thread = threading.Thread(target=serve, name="tls-server")
    thread.start()
    client = {}
    try:
        with socket.create_connection(listener.getsockname(), timeout=10) as raw:
            with client_ctx.wrap_socket(raw) as tls:
                client["peer"] = _uri_sans(tls.getpeercert())
                client["version"] = tls.version()
                tls.sendall(b"ping")
                client["reply"] = tls.recv(64)
    except (ssl.SSLError, OSError) as e:
        client["error"] = e
    finally:
        thread.join(10)
        listener.close()
    assert not thread.is_alive()
    return seen, client


@pytest.mark.parametrize("which", ["intermediate", "rsa"])
def test_mutual_tls_with_issued_certificates(tmp_path, which, inter_ca, rsa_ca):
    authority = {"intermediate": inter_ca, "rsa": rsa_ca}[which]
    server_dir = ca.write_workload_dir(authority, str(tmp_path / "server"), "shop", "api", ttl="1h")
    client_dir = ca.write_workload_dir(authority, str(tmp_path / "client"), "shop", "web", ttl="1h")
    server_ctx = _tls_context(True, tmp_path / "server", server_dir["trust-bundle.pem"])
    client_ctx = _tls_context(False, tmp_path / "client", client_dir["trust-bundle.pem"])
    server, client = _handshake(server_ctx, client_ctx)
    assert "error" not in server and "error" not in client, (server, client)
    assert server["peer"] == ["spiffe://cluster.local/ns/shop/sa/web"]
    assert client["peer"] == ["spiffe://cluster.local/ns/shop/sa/api"]
    assert client["reply"] == b"PING"
    assert client["version"] in ("TLSv1.2", "TLSv1.3")


def test_mutual_tls_refuses_a_client_from_an_untrusted_root(tmp_path, inter_ca, ec_ca):
    ca.write_workload_dir(inter_ca, str(tmp_path / "server"), "shop", "api", ttl="1h")
    ca.write_workload_dir(ec_ca, str(tmp_path / "client"), "shop", "web", ttl="1h")  # another root
    server_ctx = _tls_context(True, tmp_path / "server", tmp_path / "server" / "trust-bundle.pem")
    # the client trusts the server's root, the server does not trust the client's
    client_ctx = _tls_context(False, tmp_path / "client", tmp_path / "server" / "trust-bundle.pem")
    server, client = _handshake(server_ctx, client_ctx)
    assert isinstance(server.get("error"), ssl.SSLError), server
    assert "certificate verify failed" in str(server["error"]), server["error"]
    assert "peer" not in server and "reply" not in client


# ---- the CLI, end to end -----------------------------------------------------------


def test_cli_end_to_end(tmp_path):
    cadir, out = tmp_path / "ca", tmp_path / "web"
    r = meshcore("ca", "init", "--trust-domain", TD, "--dir", cadir, "--intermediate", "--root-lifetime", "5y")
    assert r.returncode == 0, r.stderr
    assert "created trust domain cluster.local" in r.stdout
    for name in ("root-cert.pem", "root-key.pem", "intermediate-cert.pem", "intermediate-key.pem",
                 "cert-chain.pem", "trust-bundle.pem", "ca.yaml"):
        assert (cadir / name).is_file(), name
    assert mode_of(cadir / "root-key.pem") == mode_of(cadir / "intermediate-key.pem") == 0o600

    r = meshcore("ca", "issue", "--dir", cadir, "--ns", "default", "--sa", "web", "--ttl", "90m", "--out", out)
    assert r.returncode == 0, r.stderr
    assert "issued spiffe://cluster.local/ns/default/sa/web" in r.stdout
    assert sorted(p.name for p in out.iterdir()) == ["cert-chain.pem", "key.pem", "root-cert.pem",
                                                     "trust-bundle.pem"]
    assert mode_of(out / "key.pem") == 0o600
    assert (out / "root-cert.pem").read_bytes() == (cadir / "root-cert.pem").read_bytes()

    r = meshcore("ca", "inspect", out / "cert-chain.pem", "-o", "json")
    assert r.returncode == 0, r.stderr
    leaf, inter = json.loads(r.stdout)
    assert leaf["spiffe_id"] == "spiffe://cluster.local/ns/default/sa/web" and leaf["ca"] is False
    assert leaf["key_type"] == "ec-p256" and leaf["issuer"] == "CN=cluster.local intermediate,O=meshcore"
    assert 5390 <= leaf["expires_in_seconds"] <= 5401
    assert inter["spiffe_id"] == "spiffe://cluster.local" and inter["ca"] is True
    r = meshcore("ca", "inspect", out / "cert-chain.pem")
    assert r.returncode == 0
    assert "SPIFFE ID:  spiffe://cluster.local/ns/default/sa/web" in r.stdout
    assert "workload (leaf)" in r.stdout and "ec-p256" in r.stdout
    assert re.search(r"expires in 1h(29|30)m\)", r.stdout), r.stdout
    r = meshcore("ca", "inspect", cadir / "root-cert.pem")
    assert "root CA" in r.stdout and "CN=cluster.local root,O=meshcore" in r.stdout

    # the pure CSR flow: the key is made on the workload's side and stays there
    key, csr, chain = tmp_path / "api.key", tmp_path / "api.csr", tmp_path / "api-chain.pem"
    r = meshcore("ca", "csr", "--key", key, "--spiffe-id", "spiffe://cluster.local/ns/shop/sa/api", "--out", csr)
    assert r.returncode == 0, r.stderr
    assert mode_of(key) == 0o600 and b"CERTIFICATE REQUEST" in csr.read_bytes()
    r = meshcore("ca", "inspect", csr)
    assert "spiffe://cluster.local/ns/shop/sa/api" in r.stdout and "valid" in r.stdout
    r = meshcore("ca", "sign-csr", "--dir", cadir, "--csr", csr, "--ttl", "5s", "--out", chain)
    assert r.returncode == 0, r.stderr
    certs = ca.load_certs(chain.read_bytes())
    assert ca.spiffe_id_of(certs[0]) == "spiffe://cluster.local/ns/shop/sa/api" and len(certs) == 2
    assert (certs[0].not_valid_after_utc - now()) <= dt.timedelta(seconds=6)
    # an existing key is reused
    before = key.read_bytes()
    r = meshcore("ca", "csr", "--key", key, "--spiffe-id", "spiffe://cluster.local/ns/shop/sa/api", "--out", "-")
    assert r.returncode == 0 and r.stdout.startswith("-----BEGIN CERTIFICATE REQUEST-----")
    assert key.read_bytes() == before
    if OPENSSL:
        leaf_path, untrusted = split_chain(tmp_path, chain.read_bytes())
        r = openssl_verify(cadir / "trust-bundle.pem", leaf_path, untrusted)
        assert r.returncode == 0, r.stdout + r.stderr
        r = openssl("pkey", "-in", key, "-pubout")
        assert r.returncode == 0
        assert r.stdout.encode() == certs[0].public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    # a second CA and a bundle of both roots
    r = meshcore("ca", "init", "--trust-domain", TD, "--dir", tmp_path / "ca2", "--key-type", "rsa-2048")
    assert r.returncode == 0, r.stderr
    bundle = tmp_path / "bundle.pem"
    r = meshcore("ca", "bundle", "--out", bundle, cadir, tmp_path / "ca2", cadir)
    assert r.returncode == 0, r.stderr
    assert "wrote 2 roots" in r.stdout
    assert len(ca.load_certs(bundle.read_bytes())) == 2
    r = meshcore("ca", "issue", "--dir", tmp_path / "ca2", "--ns", "a", "--sa", "b", "--out", tmp_path / "rsa-w")
    assert r.returncode == 0, r.stderr
    r = meshcore("ca", "inspect", tmp_path / "rsa-w" / "key.pem")
    assert r.returncode == 0 and "rsa-2048" in r.stdout and "BEGIN" not in r.stdout


@pytest.mark.parametrize("args, code, message", [
    (["ca", "issue", "--dir", "{ca}", "--ns", "default", "--sa", "web", "--out", "{tmp}/w", "--ttl", "5x"], 2,
     "argument --ttl: duration '5x'"),
    (["ca", "issue", "--dir", "{tmp}/nope", "--ns", "default", "--sa", "web", "--out", "{tmp}/w"], 1,
     "no such directory"),
    (["ca", "issue", "--dir", "{tmp}", "--ns", "default", "--sa", "web", "--out", "{tmp}/w"], 1,
     "not a meshcore CA directory"),
    (["ca", "issue", "--dir", "{ca}", "--ns", "default", "--sa", "a/b", "--out", "{tmp}/w"], 1,
     "service account 'a/b'"),
    (["ca", "issue", "--dir", "{ca}", "--ns", "default", "--sa", "web", "--out", "{tmp}/w", "--ttl", "1000d"], 1,
     "exceeds max_workload_ttl"),
    (["ca", "init", "--trust-domain", TD, "--dir", "{ca}"], 1, "already holds a CA"),
    (["ca", "init", "--trust-domain", "Bad_Upper", "--dir", "{tmp}/x"], 1, "only lowercase"),
    (["ca", "init", "--trust-domain", TD, "--dir", "{tmp}/x", "--key-type", "dsa"], 2, "invalid choice"),
    (["ca", "sign-csr", "--dir", "{ca}", "--csr", "{other_csr}", "--out", "{tmp}/c.pem"], 1,
     "CSR rejected: SPIFFE ID spiffe://other.example/ns/default/sa/web is not in trust domain 'cluster.local'"),
    (["ca", "sign-csr", "--dir", "{ca}", "--csr", "{tmp}/missing.csr", "--out", "{tmp}/c.pem"], 1, "cannot read CSR"),
    (["ca", "csr", "--key", "{tmp}/k.pem", "--spiffe-id", "spiffe://cluster.local/ns/a b/sa/c", "--out",
      "{tmp}/x.csr"], 1, "only letters"),
    (["ca", "inspect", "{tmp}/missing.pem"], 1, "cannot read"),
    (["ca", "inspect", "{ca}/ca.yaml"], 1, "no PEM certificate"),
    (["ca", "bundle", "--out", "{tmp}/b.pem", "{tmp}"], 1, "not a CA directory"),
    (["ca"], 2, "required"),
])
def test_cli_errors(tmp_path, ec_ca, args, code, message):
    other_csr = tmp_path / "other.csr"
    other_csr.write_bytes(ca.make_csr(ca.generate_key(), "spiffe://other.example/ns/default/sa/web"))
    fill = {"ca": ec_ca.directory, "tmp": tmp_path, "other_csr": other_csr}
    r = meshcore(*[a.format(**fill) for a in args])
    assert r.returncode == code, r.stdout + r.stderr
    assert message in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    if code == 1:
        assert r.stderr.startswith("meshcore: error: ")
    assert not (tmp_path / "k.pem").exists()        # nothing is written when a command fails
    assert not (tmp_path / "c.pem").exists()


def test_errors_are_meshcore_errors():
    assert issubclass(ca.CAError, MeshcoreError) and issubclass(ca.CSRRejected, ca.CAError)
