"""The inbound mTLS listener of a real sidecar (`meshcore proxy --mesh-dir --ca-dir`)
against real TLS clients, `openssl s_client` and `curl`, with a CA made by
meshcore.ca: the certificate chain and SPIFFE ID it serves, who it lets in
(a valid SVID) and who it refuses (no certificate, another trust domain, an
expired certificate, one without clientAuth), plaintext refused in STRICT and
served in PERMISSIVE, and a client sidecar refusing a server whose SPIFFE ID
is not the one the registry names. The stats say why each was refused."""
from __future__ import annotations

import pytest
from support import mtls
from support.net import free_port, wait_until

TD = "cluster.local"
CHECKOUT_ID = f"spiffe://{TD}/ns/default/sa/checkout"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mtls-handshake")
    authority = mtls.make_ca(tmp / "ca", TD, intermediate=True)
    other = mtls.make_ca(tmp / "ca-other", "other.local", intermediate=False)
    app = mtls.PlainApp("checkout")
    inbound, svc_port = free_port(), free_port()
    docs = [mtls.service("checkout", {"http": svc_port}, {"app": "checkout"}),
            mtls.workload_entry("checkout", "checkout", {"app": "checkout"}, {"http": app.port}, f"http={inbound}")]
    mesh = mtls.write_mesh(tmp / "mesh", *docs, mtls.peer_authentication("STRICT"))
    sidecar = mtls.Sidecar(mesh, "default/checkout", tmp / "ca", tmp / "checkout.log",
                           outbound_address="127.0.0.21").start()
    w = {
        "tmp": tmp, "ca": authority, "app": app, "inbound": inbound, "svc_port": svc_port, "mesh": mesh,
        "docs": docs, "sidecar": sidecar,
        "frontend": mtls.write_svid(authority, tmp / "frontend", "default", "frontend"),
        "other": mtls.write_svid(other, tmp / "other", "default", "frontend"),
        "expired": mtls.write_odd_svid(authority, tmp / "expired", "default", "frontend", expired=True),
        "no_client_auth": mtls.write_odd_svid(authority, tmp / "noauth", "default", "frontend", client_auth=False),
        "two_uris": mtls.write_odd_svid(authority, tmp / "two-uris", "default", "frontend",
                                        extra_uris=[f"spiffe://{TD}/ns/default/sa/admin"]),
    }
    try:
        yield w
    finally:
        sidecar.close()
        app.stop()


def listener_stat(w, name):
    return w["sidecar"].stat(f"listener.127.0.0.1_{w['inbound']}.ssl.{name}")


def url(w):
    return f"https://127.0.0.1:{w['inbound']}/hello"


def test_a_valid_svid_gets_through_and_sees_the_servers_spiffe_id(world):
    w = world
    rc, out = mtls.openssl_connect(w["inbound"], w["frontend"], w["frontend"]["trust-bundle.pem"],
                                   send=b"GET / HTTP/1.1\r\nHost: checkout\r\nConnection: close\r\n\r\n")
    assert rc == 0, out
    assert "Verify return code: 0 (ok)" in out
    chain = mtls.served_chain(out)
    # The served chain: the workload certificate, then the intermediate (the root is in the bundle).
    assert [c.subject.rfc4514_string() for c in chain] == ["O=meshcore", w["ca"].signing_cert.subject.rfc4514_string()]
    assert chain[1] == w["ca"].signing_cert
    from meshcore import ca

    assert ca.spiffe_id_of(chain[0]) == CHECKOUT_ID
    from cryptography.hazmat.primitives import serialization

    san = mtls.x509_san(chain[0].public_bytes(serialization.Encoding.PEM))
    assert f"URI:{CHECKOUT_ID}" in san and "DNS:" not in san and "IP Address:" not in san
    assert "checkout GET /" in out  # the application answered, in plaintext behind the sidecar

    status, body, _ = mtls.curl(url(w), w["frontend"])
    assert (status, body) == (200, "checkout GET /hello")
    assert w["app"].saw(b"GET /hello")


def test_a_connection_without_a_certificate_is_refused(world):
    w = world
    before = listener_stat(w, "no_certificate")
    status, _, rc = mtls.curl(url(w), None, extra=("-k",))
    assert status == 0 and rc != 0
    wait_until(lambda: listener_stat(w, "no_certificate") > before, what="ssl.no_certificate")


@pytest.mark.parametrize("who", ["other", "expired", "no_client_auth"])
def test_certificates_the_trust_bundle_does_not_vouch_for_are_refused(world, who):
    """Another trust domain's CA, an expired certificate, one without the clientAuth usage."""
    w = world
    before = listener_stat(w, "fail_verify_error")
    svid = dict(w[who], **{"trust-bundle.pem": w["frontend"]["trust-bundle.pem"]})
    status, _, rc = mtls.curl(url(w), svid)
    assert status == 0 and rc != 0
    wait_until(lambda: listener_stat(w, "fail_verify_error") > before, what="ssl.fail_verify_error")
    rc, out = mtls.openssl_connect(w["inbound"], svid, svid["trust-bundle.pem"],
                                   send=b"GET / HTTP/1.1\r\nHost: checkout\r\n\r\n")
    assert "checkout GET /" not in out


def test_a_certificate_with_two_uri_sans_is_refused(world):
    """X.509-SVID section 2: a SPIFFE identity is exactly one URI SAN. The chain is
    valid (meshcore's own CA signed it); the handshake still fails, counted as a SAN failure."""
    w = world
    from cryptography import x509

    chain = x509.load_pem_x509_certificates(open(w["two_uris"]["cert-chain.pem"], "rb").read())
    san = chain[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert len(san.get_values_for_type(x509.UniformResourceIdentifier)) == 2
    before = listener_stat(w, "fail_verify_san")
    rc, out = mtls.openssl_connect(w["inbound"], w["two_uris"], w["two_uris"]["trust-bundle.pem"],
                                   send=b"GET / HTTP/1.1\r\nHost: checkout\r\nConnection: close\r\n\r\n")
    assert "checkout GET /" not in out
    wait_until(lambda: listener_stat(w, "fail_verify_san") > before, what="ssl.fail_verify_san")


def test_plaintext_is_refused_in_strict_and_served_in_permissive(world):
    w = world
    before = listener_stat(w, "connection_error")
    status, _, _ = mtls.curl(f"http://127.0.0.1:{w['inbound']}/plain", None)
    assert status == 0
    assert not w["app"].saw(b"GET /plain")
    wait_until(lambda: listener_stat(w, "connection_error") > before, what="ssl.connection_error")

    reloads = w["sidecar"].stat("server.config_reload_success")
    mtls.write_mesh(w["mesh"], *w["docs"], mtls.peer_authentication("PERMISSIVE"))
    wait_until(lambda: w["sidecar"].stat("server.config_reload_success") > reloads, what="the PERMISSIVE reload")
    status, body, _ = mtls.curl(f"http://127.0.0.1:{w['inbound']}/plain", None)
    assert (status, body) == (200, "checkout GET /plain")
    status, body, _ = mtls.curl(url(w), w["frontend"])  # mTLS too, on the same port
    assert (status, body) == (200, "checkout GET /hello")
    mtls.write_mesh(w["mesh"], *w["docs"], mtls.peer_authentication("STRICT"))


def test_a_client_sidecar_refuses_a_server_with_another_spiffe_id(world, tmp_path):
    """The registry says checkout runs as sa/checkout; the server sidecar here holds an
    SVID for sa/impostor (its own mesh directory says so): the client's SAN check fails."""
    w = world
    app = mtls.PlainApp("impostor")
    inbound, svc_port = free_port(), free_port()
    base = [mtls.service("checkout", {"http": svc_port}, {"app": "checkout"}),
            mtls.workload_entry("frontend", "frontend", {"app": "frontend"})]
    client_mesh = mtls.write_mesh(tmp_path / "client", *base, mtls.workload_entry(
        "checkout", "checkout", {"app": "checkout"}, {"http": app.port}, f"http={inbound}"))
    server_mesh = mtls.write_mesh(tmp_path / "server", *base, mtls.workload_entry(
        "checkout", "impostor", {"app": "checkout"}, {"http": app.port}, f"http={inbound}"))
    server = mtls.Sidecar(server_mesh, "default/checkout", w["tmp"] / "ca", tmp_path / "server.log",
                          outbound_address="127.0.0.22")
    client = mtls.Sidecar(client_mesh, "default/frontend", w["tmp"] / "ca", tmp_path / "client.log",
                          outbound_address="127.0.0.23")
    try:
        server.start()
        client.start()
        status, _, _ = mtls.curl(f"http://127.0.0.23:{svc_port}/", None)
        assert status == 503
        cluster = f"cluster.outbound|{svc_port}||checkout.default.svc.cluster.local"
        assert client.stat(f"{cluster}.ssl.fail_verify_san") >= 1
        assert client.stat(f"http.outbound_127.0.0.23_{svc_port}.response_flag_UF") >= 1
        assert not app.saw(b"GET /")
    finally:
        client.close()
        server.close()
        app.stop()
