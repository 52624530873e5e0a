"""meshcore.tls: server and client contexts talking over real sockets
(socketpair and loopback, blocking and asyncio), the proxy's SPIFFE rules
refusing the wrong peer and a two-URI-SAN certificate, and rotation."""
import asyncio
import datetime as dt
import socket
import ssl
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from meshcore.errors import TLSPeerError
from meshcore.tls import ClientContext, PeerPolicy, ServerContext

TD = "cluster.local"
SERVER_ID = f"spiffe://{TD}/ns/shop/sa/checkout"
CLIENT_ID = f"spiffe://{TD}/ns/shop/sa/frontend"


def _pem_key(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class CA:
    """A root CA issuing SVID-shaped leaf certificates (any URI SANs)."""

    def __init__(self, name="test root"):
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.timezone.utc)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                                    critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.pem = self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(self, *uris):
        """(chain PEM, key PEM) for a leaf with these URI SANs."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.timezone.utc)
        b = (x509.CertificateBuilder().subject_name(x509.Name([]))
             .issuer_name(self.cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(hours=1))
             .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
             .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(u) for u in uris]),
                            critical=True))
        cert = b.sign(self.key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)


@pytest.fixture(scope="module")
def ca():
    return CA()


def handshake(server: ServerContext, client: ClientContext):
    """Both sides over a socketpair: ((server result), (client result)),
    each (peer ID, None) or (None, the exception)."""
    a, b = socket.socketpair()
    a.settimeout(10)
    b.settimeout(10)
    out = {}

    def serve():
        try:
            tls, peer = server.wrap_socket(a)
            out["server"] = (peer, None)
            tls.sendall(tls.recv(100).upper())
            tls.close()
        except Exception as e:  # noqa: BLE001
            out["server"] = (None, e)
            a.close()

    t = threading.Thread(target=serve)
    t.start()
    try:
        tls, peer = client.wrap_socket(b)
        try:
            tls.sendall(b"ping")
            out["echo"] = tls.recv(100)
        except (OSError, ssl.SSLError):
            out["echo"] = None
        tls.close()
        out["client"] = (peer, None)
    except Exception as e:  # noqa: BLE001
        out["client"] = (None, e)
        b.close()
    t.join(10)
    return out


def test_mutual_tls_with_spiffe_ids(ca):
    server = ServerContext(*ca.issue(SERVER_ID), ca.pem, trust_domain=TD)
    client = ClientContext(*ca.issue(CLIENT_ID), ca.pem, spiffe_ids=[SERVER_ID])
    out = handshake(server, client)
    assert out["server"] == (CLIENT_ID, None)
    assert out["client"] == (SERVER_ID, None)
    assert out["echo"] == b"PING"


def test_server_identity_mismatch_is_refused(ca):
    server = ServerContext(*ca.issue(SERVER_ID), ca.pem, trust_domain=TD)
    client = ClientContext(*ca.issue(CLIENT_ID), ca.pem, spiffe_ids=[f"spiffe://{TD}/ns/shop/sa/payments"])
    out = handshake(server, client)
    peer, err = out["client"]
    assert isinstance(err, TLSPeerError)
    assert err.reason == "peer identity (URI SAN) is not one of the expected identities"
    assert err.peer == SERVER_ID


def test_client_from_another_trust_domain_is_refused(ca):
    server = ServerContext(*ca.issue(SERVER_ID), ca.pem, trust_domain=TD)
    client = ClientContext(*ca.issue("spiffe://other.domain/ns/x/sa/y"), ca.pem)
    out = handshake(server, client)
    assert isinstance(out["server"][1], TLSPeerError)
    assert out["echo"] in (None, b"")  # the server closed before any application byte


def test_two_uri_sans_are_refused(ca):
    server = ServerContext(*ca.issue(SERVER_ID), ca.pem)  # any identity, but an SVID has one URI SAN
    client = ClientContext(*ca.issue(CLIENT_ID, f"spiffe://{TD}/ns/shop/sa/admin"), ca.pem)
    out = handshake(server, client)
    err = out["server"][1]
    assert isinstance(err, TLSPeerError)
    assert "more than one URI SAN" in err.reason


def test_untrusted_client_fails_the_handshake(ca):
    server = ServerContext(*ca.issue(SERVER_ID), ca.pem)
    client = ClientContext(*CA("someone else").issue(CLIENT_ID), ca.pem)
    out = handshake(server, client)
    assert isinstance(out["server"][1], ssl.SSLError)
    no_cert = handshake(server, ClientContext(trust_bundle=ca.pem))
    assert isinstance(no_cert["server"][1], ssl.SSLError)  # a client certificate is required


def test_peer_policy_on_der(ca):
    chain, _ = ca.issue(SERVER_ID)
    der = x509.load_pem_x509_certificate(chain).public_bytes(serialization.Encoding.DER)
    assert PeerPolicy([SERVER_ID]).check(der) == SERVER_ID
    assert PeerPolicy(trust_domain=TD).check(der) == SERVER_ID
    with pytest.raises(TLSPeerError):
        PeerPolicy(trust_domain="elsewhere.org").check(der)
    with pytest.raises(TLSPeerError):
        PeerPolicy().check(b"not a certificate")
    with pytest.raises(ValueError):
        PeerPolicy([SERVER_ID], trust_domain="elsewhere.org")  # an accepted ID outside the domain


def test_reload_rotates_for_new_connections(ca, tmp_path):
    chain, key = ca.issue(SERVER_ID)
    (tmp_path / "chain.pem").write_bytes(chain)
    (tmp_path / "key.pem").write_bytes(key)
    server = ServerContext(tmp_path / "chain.pem", tmp_path / "key.pem", ca.pem)
    client = ClientContext(*ca.issue(CLIENT_ID), ca.pem)
    assert handshake(server, client)["client"][0] == SERVER_ID
    rotated = f"spiffe://{TD}/ns/shop/sa/checkout-v2"
    chain, key = ca.issue(rotated)
    (tmp_path / "chain.pem").write_bytes(chain)
    (tmp_path / "key.pem").write_bytes(key)
    old = server.ssl_context
    server.reload()  # the files re-read
    assert server.ssl_context is not old
    assert handshake(server, client)["client"][0] == rotated
    with pytest.raises(ssl.SSLError):
        server.reload(cert_chain=b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
    assert handshake(server, client)["client"][0] == rotated  # a bad rotation keeps the old context


def test_asyncio_streams_over_loopback(ca):
    server = ServerContext(*ca.issue(SERVER_ID), ca.pem, trust_domain=TD)
    client = ClientContext(*ca.issue(CLIENT_ID), ca.pem, spiffe_ids=[SERVER_ID])
    seen = []

    async def on_client(reader, writer, peer):
        seen.append(peer)
        writer.write((await reader.readline()).upper())
        await writer.drain()
        writer.close()

    async def main():
        srv = await server.start_server(on_client, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        reader, writer, peer = await client.open_connection("127.0.0.1", port)
        writer.write(b"hello\n")
        line = await reader.readline()
        writer.close()
        bad = ClientContext(*ca.issue(CLIENT_ID), ca.pem, spiffe_ids=[CLIENT_ID])
        with pytest.raises(TLSPeerError):
            await bad.open_connection("127.0.0.1", port)
        srv.close()
        await srv.wait_closed()
        return peer, line

    peer, line = asyncio.run(main())
    assert (peer, line) == (SERVER_ID, b"HELLO\n")
    assert seen[0] == CLIENT_ID
