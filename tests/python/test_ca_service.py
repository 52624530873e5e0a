"""The certificate service over real gRPC on loopback: bootstrap tokens, CSRs,
renewal by the current certificate, refusals with reasons and counters.
Issued chains are checked with `openssl verify` and `cryptography`."""
from __future__ import annotations

import json
import os
import stat
import subprocess

import grpc
import pytest
from support.ca_service import CAService

from meshcore import ca, pki
from meshcore.controlplane.tokens import TokenStore, read_token_file
from meshcore.xds import ca_proto
from meshcore.xds.ca_client import CertificateClient, CertificateRequestError


@pytest.fixture
def svc(tmp_path):
    s = CAService(tmp_path).start()
    yield s
    s.stop()


def _client(svc, token_file=None, **kw):
    return CertificateClient(svc.target, token_file=token_file, **kw)


def _openssl_verify(svc, tmp_path, cert) -> str:
    leaf, *inter = ca.load_certs(cert.chain_pem)
    (tmp_path / "leaf.pem").write_bytes(pki.certs_to_pem([leaf]))
    (tmp_path / "inter.pem").write_bytes(pki.certs_to_pem(inter))
    (tmp_path / "bundle.pem").write_bytes(cert.bundle_pem)
    r = subprocess.run(["openssl", "verify", "-x509_strict", "-CAfile", str(tmp_path / "bundle.pem"),
                        "-untrusted", str(tmp_path / "inter.pem"), str(tmp_path / "leaf.pem")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def _raw_call(svc, csr_pem: bytes, metadata, validity: int = 0):
    with grpc.insecure_channel(svc.target) as ch:
        call = ch.unary_unary(ca_proto.METHOD_PATH,
                              request_serializer=ca_proto.IstioCertificateRequest.SerializeToString,
                              response_deserializer=ca_proto.IstioCertificateResponse.FromString)
        return call(ca_proto.IstioCertificateRequest(csr=csr_pem.decode(), validity_duration=validity),
                    metadata=metadata, timeout=10)


def _refusal(fn) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        fn()
    return info.value


# ---- bootstrap tokens ---------------------------------------------------------------------------


def test_token_csr_chain_verifies_to_root_with_spiffe_id(svc, tmp_path):
    token_file = svc.token_file("shop", "api")
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    data = read_token_file(token_file)
    assert data["namespace"] == "shop" and data["service_account"] == "api"
    assert data["trust_domain"] == "cluster.local"
    assert data["root_cert"].encode() == svc.authority.trust_bundle_pem
    cert = _client(svc, token_file, ttl="1h").request()
    assert cert.spiffe_id == "spiffe://cluster.local/ns/shop/sa/api"
    assert "OK" in _openssl_verify(svc, tmp_path, cert)
    leaf = ca.load_certs(cert.chain_pem)[0]
    assert pki.spiffe_ids_of(leaf) == ["spiffe://cluster.local/ns/shop/sa/api"]
    assert 3500 <= (leaf.not_valid_after_utc - leaf.not_valid_before_utc).total_seconds() <= 3700
    # the key was made here and the certificate holds it
    key = pki.load_key(cert.key_pem)
    fmt = (pki.serialization.Encoding.DER, pki.serialization.PublicFormat.SubjectPublicKeyInfo)
    assert key.public_key().public_bytes(*fmt) == leaf.public_key().public_bytes(*fmt)
    assert svc.service.counters["issued.token"] == 1


def test_token_store_keeps_only_hashes(svc):
    token_file = svc.token_file("shop", "api")
    token = read_token_file(token_file)["token"]
    store_path = svc.ca_dir / "tokens.json"
    assert stat.S_IMODE(os.stat(store_path).st_mode) == 0o600
    text = store_path.read_text()
    assert token not in text
    assert json.loads(text)["tokens"][0]["namespace"] == "shop"
    # a new store (another process) reads it; a token issued later is seen without a restart
    other = TokenStore(str(svc.ca_dir))
    assert other.lookup(token) == ("shop", "api")
    later = read_token_file(svc.token_file("shop", "web"))["token"]
    assert svc.tokens.lookup(later) == ("shop", "web")
    assert other.lookup(later) == ("shop", "web")
    assert other.lookup("nope") is None
    # the token file holds no private key at all
    assert "PRIVATE KEY" not in open(token_file).read()
    for key in svc.ca_key_bytes():
        assert key not in open(token_file, "rb").read()


def test_unknown_token_refused_with_reason_and_counted(svc, tmp_path):
    token_file = svc.token_file()
    data = read_token_file(token_file)
    data["token"] = data["token"][::-1]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(CertificateRequestError) as info:
        _client(svc, str(bad)).request()
    assert info.value.code == grpc.StatusCode.UNAUTHENTICATED
    assert "not known" in str(info.value)
    assert svc.service.counters["refused.unknown_token"] == 1
    assert svc.service.status()["recent_refusals"][-1]["reason"] == "unknown_token"


def test_expired_token_refused(svc):
    token_file = svc.token_file()
    store = json.loads((svc.ca_dir / "tokens.json").read_text())
    store["tokens"][0]["expires"] = "2001-01-01T00:00:00+00:00"
    (svc.ca_dir / "tokens.json").write_text(json.dumps(store))
    with pytest.raises(CertificateRequestError) as info:
        _client(svc, token_file).request()
    assert info.value.code == grpc.StatusCode.UNAUTHENTICATED
    assert "expired" in str(info.value)
    assert svc.service.counters["refused.expired_token"] == 1


def test_no_credential_and_malformed_authorization_refused(svc):
    csr = pki.make_csr(pki.generate_key(), "spiffe://cluster.local/ns/shop/sa/api")
    e = _refusal(lambda: _raw_call(svc, csr, ()))
    assert e.code() == grpc.StatusCode.UNAUTHENTICATED and "no credential" in e.details()
    e = _refusal(lambda: _raw_call(svc, csr, (("authorization", "Basic abc"),)))
    assert e.code() == grpc.StatusCode.UNAUTHENTICATED and "Bearer" in e.details()
    assert svc.service.counters["refused.no_credential"] == 1
    assert svc.service.counters["refused.bad_authorization"] == 1
    assert svc.service.counters["refused"] == 2


def test_csr_for_another_identity_refused(svc):
    token_file = svc.token_file("shop", "api")
    for override in ({"service_account": "admin"}, {"namespace": "kube-system"}):
        with pytest.raises(CertificateRequestError) as info:
            _client(svc, token_file, **override).request()
        assert info.value.code == grpc.StatusCode.PERMISSION_DENIED
        assert "entitles only to spiffe://cluster.local/ns/shop/sa/api" in str(info.value)
    assert svc.service.counters["refused.identity"] == 2
    assert svc.service.counters.get("issued", 0) == 0


def test_csr_with_extra_san_or_ca_request_refused(svc):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    token = read_token_file(svc.token_file())["token"]
    key = pki.generate_key()
    csr = (x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
           .add_extension(x509.SubjectAlternativeName([
               x509.UniformResourceIdentifier("spiffe://cluster.local/ns/shop/sa/api"),
               x509.DNSName("evil.example")]), critical=False)
           .sign(key, hashes.SHA256())).public_bytes(pki.serialization.Encoding.PEM)
    e = _refusal(lambda: _raw_call(svc, csr, (("authorization", f"Bearer {token}"),)))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "evil.example" in e.details()


def test_ttl_above_max_refused(svc):
    token_file = svc.token_file()
    with pytest.raises(CertificateRequestError) as info:
        _client(svc, token_file, ttl="365d").request()
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "max_workload_ttl" in str(info.value)


# ---- renewal by the current certificate ---------------------------------------------------------


def test_renewal_with_current_certificate(svc, tmp_path):
    client = _client(svc, svc.token_file(), ttl="1h")
    first = client.request()
    client.token = None  # the renewal must stand on the certificate alone
    second = client.request(current=first)
    assert second.serial != first.serial and second.key_pem != first.key_pem
    assert second.spiffe_id == first.spiffe_id
    _openssl_verify(svc, tmp_path, second)
    assert svc.service.counters["issued.renewal"] == 1


def _renewal_metadata(chain_pem: bytes, key, csr_pem: bytes):
    return ((ca_proto.CERT_CHAIN_MD, chain_pem), (ca_proto.CSR_SIGNATURE_MD, ca_proto.sign_proof(key, csr_pem)))


def test_renewal_with_forged_signature_refused(svc):
    cert = _client(svc, svc.token_file()).request()
    thief_key = pki.generate_key()  # holds the (public) chain, not its key
    csr = pki.make_csr(thief_key, cert.spiffe_id)
    e = _refusal(lambda: _raw_call(svc, csr, _renewal_metadata(cert.chain_pem, thief_key, csr)))
    assert e.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "does not verify with the key of the current certificate" in e.details()
    assert svc.service.counters["refused.bad_signature"] == 1


def test_renewal_with_foreign_chain_refused(svc, tmp_path):
    other = ca.CertificateAuthority.init(str(tmp_path / "other-ca"), "cluster.local")  # same name, other root
    key_pem, chain_pem = ca.issue_workload(other, "shop", "api", ttl="1h")
    key = pki.load_key(key_pem)
    csr = pki.make_csr(pki.generate_key(), "spiffe://cluster.local/ns/shop/sa/api")
    e = _refusal(lambda: _raw_call(svc, csr, _renewal_metadata(chain_pem, key, csr)))
    assert e.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "not accepted for renewal" in e.details()
    assert svc.service.counters["refused.bad_chain"] == 1


def test_renewal_with_expired_certificate_refused(svc):
    import time

    key_pem, chain_pem = ca.issue_workload(svc.authority, "shop", "api", ttl="1s")
    end = ca.load_certs(chain_pem)[0].not_valid_after_utc.timestamp()
    time.sleep(max(0.0, end - time.time()) + 1.2)  # notAfter is inclusive (RFC 5280), to the second
    csr = pki.make_csr(pki.generate_key(), "spiffe://cluster.local/ns/shop/sa/api")
    e = _refusal(lambda: _raw_call(svc, csr, _renewal_metadata(chain_pem, pki.load_key(key_pem), csr)))
    assert e.code() == grpc.StatusCode.UNAUTHENTICATED and "expired" in e.details().lower()


def test_renewal_cannot_change_identity(svc):
    cert = _client(svc, svc.token_file("shop", "api")).request()
    key = pki.generate_key()
    csr = pki.make_csr(key, "spiffe://cluster.local/ns/shop/sa/admin")
    e = _refusal(lambda: _raw_call(svc, csr, _renewal_metadata(cert.chain_pem, pki.load_key(cert.key_pem), csr)))
    assert e.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "current certificate entitles only to spiffe://cluster.local/ns/shop/sa/api" in e.details()


def test_rsa_ca_and_rsa_renewal(tmp_path):
    s = CAService(tmp_path, key_type="rsa-2048", intermediate=False).start()
    try:
        client = _client(s, s.token_file(), key_type="rsa-2048")
        first = client.request()
        second = client.request(current=first)
        assert second.serial != first.serial
        assert s.service.counters["issued.renewal"] == 1
    finally:
        s.stop()


# ---- the client checks what it gets -------------------------------------------------------------


def test_client_refuses_a_chain_from_an_untrusted_ca(svc, tmp_path):
    token_file = svc.token_file()
    data = read_token_file(token_file)
    other = ca.CertificateAuthority.init(str(tmp_path / "other-ca"), "cluster.local")
    data["root_cert"] = other.trust_bundle_pem.decode()  # the client trusts another root
    bad = tmp_path / "other-root.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(CertificateRequestError) as info:
        _client(svc, str(bad)).request()
    assert "does not verify to a trusted root" in str(info.value)


def test_cli_token_writes_0600_token_file(svc, tmp_path):
    from support.proxy import run_cli

    out = tmp_path / "tok" / "web.json"
    out.parent.mkdir()
    r = run_cli(["control-plane", "token", "shop/web", "--ca-dir", str(svc.ca_dir), "--out", str(out),
                 "--ttl", "1h"])
    assert r.returncode == 0, r.stderr
    assert "spiffe://cluster.local/ns/shop/sa/web" in r.stdout
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    data = read_token_file(str(out))
    assert svc.tokens.lookup(data["token"]) == ("shop", "web")
    assert _client(svc, str(out)).request().spiffe_id == "spiffe://cluster.local/ns/shop/sa/web"
    assert os.listdir(out.parent) == ["web.json"]
    r = run_cli(["control-plane", "token", "shop", "--ca-dir", str(svc.ca_dir)])
    assert r.returncode == 2 and "NAMESPACE/SERVICE_ACCOUNT" in r.stderr
    r = run_cli(["control-plane", "token", "shop/web", "--ca-dir", str(tmp_path / "nothing")])
    assert r.returncode == 1 and "no such directory" in r.stderr
