"""mTLS with the mesh's identity rules (meshcore.tls).

What this is, honestly: Python's own ``ssl.SSLContext`` (OpenSSL underneath,
as in the proxy) set up as the sidecar sets up its contexts, plus the
proxy's peer-identity rule from the C core (src/meshcore/net/tls.c,
``mc_tls_check_leaf``) run on the verified peer certificate right after the
handshake, before any application byte is read or written. The stdlib
cannot run a Python verify callback inside the handshake, so a refused peer
sees its connection closed just after the handshake instead of a
certificate alert; nothing else differs.

Beyond the stdlib:

- PEM from memory or files (cert chain, key, trust bundle), TLS 1.2-1.3,
  no hostname check (SPIFFE identity replaces it), client certificates
  required by a server context unless told otherwise;
- SPIFFE peer verification with the proxy's rules: exactly one URI SAN
  (a certificate with two is refused, as Envoy would not), matched against
  accepted IDs or a trust domain (``TLSPeerError`` otherwise);
- ``reload()`` for rotation: new PEM (or the same files re-read) builds a
  new ``ssl.SSLContext``; new connections use it, open ones keep theirs.

Use ``wrap_socket`` on a plain socket, ``open_connection`` /
``start_server`` with asyncio streams, or ``ssl_context`` with any asyncio
API and then ``check_transport(transport)`` in ``connection_made``.
"""
from __future__ import annotations

import asyncio
import os
import socket
import ssl
import tempfile
from collections.abc import Awaitable, Callable, Iterable
from typing import Union

from meshcore._core import PeerPolicy
from meshcore.errors import TLSPeerError

PemSource = Union[bytes, str, "os.PathLike[str]"]
"""PEM content (bytes, or str holding "-----BEGIN"), or a path to a PEM file."""

__all__ = ["ClientContext", "PeerPolicy", "PemSource", "ServerContext", "TLSPeerError"]


def _read(src: PemSource) -> bytes:
    if isinstance(src, bytes):
        return src
    if isinstance(src, str) and "-----BEGIN" in src:
        return src.encode()
    with open(src, "rb") as f:
        return f.read()


class _Context:
    """What the server and client contexts share."""

    _server: bool

    def __init__(self, cert_chain: PemSource | None, private_key: PemSource | None, trust_bundle: PemSource | None,
                 *, spiffe_ids: Iterable[str] = (), trust_domain: str | None = None,
                 alpn: Iterable[str] = ()) -> None:
        self.policy = PeerPolicy(tuple(spiffe_ids), trust_domain)
        self._alpn = list(alpn)
        self._sources = (cert_chain, private_key, trust_bundle)
        self.ssl_context = self._build(*self._sources)

    def reload(self, cert_chain: PemSource | None = None, private_key: PemSource | None = None,
               trust_bundle: PemSource | None = None) -> None:
        """Rotation: a new ssl_context from the PEM given (or, for what is
        not given, the sources first given, files re-read). Built before it
        replaces the current one, so a bad PEM leaves the old in place."""
        old = self._sources
        sources = (cert_chain or old[0], private_key or old[1], trust_bundle or old[2])
        self.ssl_context = self._build(*sources)
        self._sources = sources

    def _build(self, cert_chain: PemSource | None, private_key: PemSource | None,
               trust_bundle: PemSource | None) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if self._server else ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.check_hostname = False  # the peer's SPIFFE ID is checked instead
        if cert_chain is not None:
            if private_key is None:
                raise ValueError("a certificate chain needs its private key")
            _load_chain(ctx, _read(cert_chain), _read(private_key))
        if trust_bundle is not None:
            ctx.load_verify_locations(cadata=_read(trust_bundle).decode())
            ctx.verify_mode = ssl.CERT_REQUIRED
        else:
            ctx.verify_mode = ssl.CERT_NONE
        if self._alpn:
            ctx.set_alpn_protocols(self._alpn)
        return ctx

    def check_peer(self, conn: ssl.SSLSocket | ssl.SSLObject) -> str:
        """The peer's SPIFFE ID by the proxy's rules, after a handshake;
        TLSPeerError when refused (the caller closes)."""
        if self.ssl_context.verify_mode == ssl.CERT_NONE:
            der = conn.getpeercert(binary_form=True)
            return self.policy.check(der) if der else ""
        return str(self.policy.check(conn.getpeercert(binary_form=True)))

    def check_transport(self, transport: asyncio.BaseTransport) -> str:
        """check_peer for an asyncio transport (call it in connection_made);
        closes the transport when the peer is refused."""
        obj = transport.get_extra_info("ssl_object")
        try:
            if obj is None:
                raise TLSPeerError("not a TLS transport")
            return self.check_peer(obj)
        except TLSPeerError:
            transport.close()
            raise


def _load_chain(ctx: ssl.SSLContext, chain: bytes, key: bytes) -> None:
    # The ssl module loads a certificate and key only from files: a private
    # directory (0700), removed as soon as OpenSSL has read them.
    with tempfile.TemporaryDirectory(prefix="meshcore-tls-") as d:
        cert_path, key_path = os.path.join(d, "chain.pem"), os.path.join(d, "key.pem")
        for path, data in ((cert_path, chain), (key_path, key)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        ctx.load_cert_chain(cert_path, key_path)


class ServerContext(_Context):
    """The server side: our certificate, the peers' trust bundle, and which
    client identities are accepted. require_client_certificate (default:
    yes, with a trust bundle) makes it mTLS."""

    _server = True

    def __init__(self, cert_chain: PemSource, private_key: PemSource, trust_bundle: PemSource | None = None, *,
                 spiffe_ids: Iterable[str] = (), trust_domain: str | None = None, alpn: Iterable[str] = (),
                 require_client_certificate: bool = True) -> None:
        self._require = require_client_certificate
        super().__init__(cert_chain, private_key, trust_bundle, spiffe_ids=spiffe_ids, trust_domain=trust_domain,
                         alpn=alpn)

    def _build(self, cert_chain: PemSource | None, private_key: PemSource | None,
               trust_bundle: PemSource | None) -> ssl.SSLContext:
        ctx = super()._build(cert_chain, private_key, trust_bundle)
        if trust_bundle is not None and not self._require:
            ctx.verify_mode = ssl.CERT_OPTIONAL
        return ctx

    def wrap_socket(self, sock: socket.socket) -> tuple[ssl.SSLSocket, str]:
        """Handshakes on an accepted socket: (TLS socket, client's SPIFFE ID).
        TLSPeerError (socket closed) when the client is refused; ssl.SSLError
        when the handshake itself fails."""
        tls = self.ssl_context.wrap_socket(sock, server_side=True)
        return tls, _checked(self, tls)

    async def start_server(self, client_connected: Callable[[asyncio.StreamReader, asyncio.StreamWriter, str],
                                                             Awaitable[None]],
                           host: str, port: int) -> asyncio.Server:
        """asyncio.start_server whose callback also gets the client's SPIFFE
        ID; refused clients are closed before the callback runs."""
        async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                peer = self.check_transport(writer.transport)
            except TLSPeerError:
                return
            await client_connected(reader, writer, peer)

        return await asyncio.start_server(on_client, host, port, ssl=self.ssl_context)


class ClientContext(_Context):
    """The client side: our certificate (for mTLS; optional), the trust
    bundle servers are verified with, and which server identities are
    accepted. server_name: SNI sent (none by default, as the proxy without
    an sni)."""

    _server = False

    def __init__(self, cert_chain: PemSource | None = None, private_key: PemSource | None = None,
                 trust_bundle: PemSource | None = None, *, spiffe_ids: Iterable[str] = (),
                 trust_domain: str | None = None, alpn: Iterable[str] = (), server_name: str | None = None) -> None:
        self.server_name = server_name
        super().__init__(cert_chain, private_key, trust_bundle, spiffe_ids=spiffe_ids, trust_domain=trust_domain,
                         alpn=alpn)

    def wrap_socket(self, sock: socket.socket) -> tuple[ssl.SSLSocket, str]:
        """Handshakes on a connected socket: (TLS socket, server's SPIFFE
        ID). TLSPeerError (socket closed) when the server is refused."""
        tls = self.ssl_context.wrap_socket(sock, server_side=False, server_hostname=self.server_name)
        return tls, _checked(self, tls)

    async def open_connection(self, host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, str]:
        """asyncio.open_connection over TLS: (reader, writer, server's SPIFFE ID)."""
        reader, writer = await asyncio.open_connection(host, port, ssl=self.ssl_context,
                                                       server_hostname=self.server_name or "")
        try:
            peer = self.check_transport(writer.transport)
        except TLSPeerError:
            writer.close()
            raise
        return reader, writer, peer


def _checked(ctx: _Context, tls: ssl.SSLSocket) -> str:
    try:
        return ctx.check_peer(tls)
    except TLSPeerError:
        tls.close()
        raise
