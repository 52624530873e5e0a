"""A local SDS server: a workload's certificate and trust bundle, served to
Envoy over a Unix socket, as istio-agent serves them (the `sds-grpc` cluster
of meshcore.xds.resources points there).

Two secrets, Istio's names: `default` (tls_certificate: the chain and the
private key) and `ROOTCA` (validation_context: the trusted roots). Every
certificate the keeper hands over (`update`) is a new version, pushed at once
to every stream that subscribed to it. Envoy swaps the TLS context for new
handshakes; established connections go on with theirs.

The SecretDiscoveryService's three methods:

- `StreamSecrets`, state of the world: each request names the secrets it
  wants (none: both); a response carries every one of them known, with the
  version; an ACK (the last nonce, our version) gets nothing back, a NACK
  (error_detail) is logged and counted and the version is not resent until
  a new one exists; a request carrying a stale nonce is ignored.
- `DeltaSecrets`, incremental: subscribe/unsubscribe by name,
  `initial_resource_versions` on reconnect (a secret already at our version
  is not resent).
- `FetchSecrets`, one request, one answer.
"""
from __future__ import annotations

import collections
import itertools
import logging
import os
import queue
import threading
import uuid

import grpc
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from envoy.service.discovery.v3 import discovery_pb2
from envoy.service.secret.v3 import sds_pb2_grpc
from google.protobuf import json_format

from meshcore.identity import CERT_SECRET, ROOT_SECRET
from meshcore.xds.resources import SDS

log = logging.getLogger("meshcore.xds.sds")

_CHANGED = object()  # a stream's queue: a new version exists
_END = object()  # a stream's queue: the client went away or the server stops


class SecretServer(sds_pb2_grpc.SecretDiscoveryServiceServicer):
    """Serves the current certificate (a meshcore.certs.Certificate) as `default` and `ROOTCA`."""

    def __init__(self):
        self._lock = threading.Lock()
        self._secrets: dict[str, secret_pb2.Secret] = {}
        self.version = ""
        self._versions = itertools.count(1)
        self._streams: set[queue.Queue] = set()
        self.counters: dict[str, int] = collections.Counter()
        self.last_nack: str | None = None
        self._server: grpc.Server | None = None
        self._executor = None
        self.socket_path: str | None = None

    # -- the certificate --

    def update(self, certificate) -> None:
        """A new certificate: a new version of both secrets, pushed to every stream."""
        secrets = {}
        for d in certificate.secrets():
            secrets[d["name"]] = json_format.ParseDict(d, secret_pb2.Secret())
        with self._lock:
            self._secrets = secrets
            self.version = f"{next(self._versions)}-{certificate.serial:x}"[:48]
            streams = list(self._streams)
        for q in streams:
            q.put(_CHANGED)

    def _snapshot(self):
        with self._lock:
            return self.version, dict(self._secrets)

    # -- serving --

    def start(self, socket_path: str, max_streams: int = 16) -> None:
        """Listens on the Unix socket `socket_path` (replacing a stale one), mode 0600."""
        from concurrent import futures

        if os.path.exists(socket_path):
            os.unlink(socket_path)
        # Each stream holds a thread for its life: size the pool for them.
        self._executor = futures.ThreadPoolExecutor(max_workers=max_streams, thread_name_prefix="sds")
        self._server = grpc.server(self._executor, maximum_concurrent_rpcs=max_streams)
        sds_pb2_grpc.add_SecretDiscoveryServiceServicer_to_server(self, self._server)
        old = os.umask(0o177)
        try:
            self._server.add_insecure_port(f"unix:{socket_path}")
            self._server.start()
        finally:
            os.umask(old)
        self.socket_path = socket_path
        log.info("SDS on unix:%s (secrets %s, %s)", socket_path, CERT_SECRET, ROOT_SECRET)

    def stop(self, grace: float = 1.0) -> None:
        with self._lock:
            streams = list(self._streams)
        for q in streams:
            q.put(_END)
        if self._server is not None:
            self._server.stop(grace).wait()
            self._server = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        if self.socket_path and os.path.exists(self.socket_path):
            os.unlink(self.socket_path)

    def _open(self, request_iterator, context) -> queue.Queue:
        """A queue fed by the client's requests (a reader thread) and by new versions."""
        q: queue.Queue = queue.Queue()

        def read():
            try:
                for req in request_iterator:
                    q.put(req)
            except Exception:  # noqa: BLE001 - the stream ended: cancelled, reset, server stopping
                pass
            q.put(_END)

        with self._lock:
            self._streams.add(q)
        context.add_callback(lambda: q.put(_END))
        threading.Thread(target=read, name="sds-reader", daemon=True).start()
        self.counters["streams"] += 1
        return q

    def _close(self, q) -> None:
        with self._lock:
            self._streams.discard(q)

    def _nack(self, node, detail) -> None:
        self.counters["nacks"] += 1
        self.last_nack = detail.message
        log.warning("SDS NACK from %s: %s", node.id or "(no node id)", detail.message)

    # -- state of the world --

    def StreamSecrets(self, request_iterator, context):  # noqa: N802 - the gRPC method's name
        q = self._open(request_iterator, context)
        names: set[str] | None = None  # None: not subscribed yet; empty: every secret
        sent_version, nonce, node = None, None, None
        try:
            while True:
                item = q.get()
                if item is _END:
                    return
                if item is not _CHANGED:
                    req = item
                    if req.HasField("node"):
                        node = req.node
                    if req.response_nonce and req.response_nonce != nonce:
                        continue  # stale: an answer to a response the client has since been sent
                    if req.HasField("error_detail"):
                        self._nack(node or req.node, req.error_detail)
                    elif req.response_nonce:
                        self.counters["acks"] += 1
                    wanted = set(req.resource_names)
                    if names is not None and wanted == names and (req.HasField("error_detail")
                                                                  or req.version_info == sent_version):
                        continue  # an ACK or a NACK of what we sent: nothing new to say
                    names = wanted
                if names is None:
                    continue
                version, secrets = self._snapshot()
                if item is _CHANGED and version == sent_version:
                    continue
                if not version:
                    continue  # no certificate yet
                nonce = uuid.uuid4().hex
                chosen = [s for n, s in sorted(secrets.items()) if not names or n in names]
                resp = discovery_pb2.DiscoveryResponse(version_info=version, type_url=SDS, nonce=nonce)
                for s in chosen:
                    resp.resources.add().Pack(s)
                sent_version = version
                self.counters["pushes"] += 1
                yield resp
        finally:
            self._close(q)

    # -- incremental --

    def DeltaSecrets(self, request_iterator, context):  # noqa: N802
        q = self._open(request_iterator, context)
        subscribed: set[str] = set()
        wildcard = None  # decided by the first request: no names means every secret
        known: dict[str, str] = {}  # name -> version the client has
        node = None
        try:
            while True:
                item = q.get()
                if item is _END:
                    return
                if item is not _CHANGED:
                    req = item
                    if req.HasField("node"):
                        node = req.node
                    if req.HasField("error_detail"):
                        self._nack(node or req.node, req.error_detail)
                        continue
                    if req.response_nonce:
                        self.counters["acks"] += 1
                    if wildcard is None:
                        wildcard = not req.resource_names_subscribe
                        known.update(req.initial_resource_versions)
                    subscribed |= set(req.resource_names_subscribe) - {"*"}
                    subscribed -= set(req.resource_names_unsubscribe)
                    for name in req.resource_names_unsubscribe:
                        known.pop(name, None)
                if wildcard is None:
                    continue
                version, secrets = self._snapshot()
                resp = discovery_pb2.DeltaDiscoveryResponse(system_version_info=version, type_url=SDS)
                for name, s in sorted(secrets.items()):
                    if (wildcard or name in subscribed) and known.get(name) != version:
                        r = resp.resources.add(name=name, version=version)
                        r.resource.Pack(s)
                        known[name] = version
                if not resp.resources:
                    continue
                resp.nonce = uuid.uuid4().hex
                self.counters["pushes"] += 1
                yield resp
        finally:
            self._close(q)

    def FetchSecrets(self, request, context):  # noqa: N802
        version, secrets = self._snapshot()
        names = set(request.resource_names)
        resp = discovery_pb2.DiscoveryResponse(version_info=version, type_url=SDS, nonce=uuid.uuid4().hex)
        for n, s in sorted(secrets.items()):
            if not names or n in names:
                resp.resources.add().Pack(s)
        return resp
