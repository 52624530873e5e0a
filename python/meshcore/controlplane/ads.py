"""The Aggregated Discovery Service: xDS v3 over one gRPC stream per proxy,
state of the world (StreamAggregatedResources) and incremental
(DeltaAggregatedResources), for LDS, RDS, CDS, EDS and SDS.

Runs on the control plane's asyncio loop (grpc.aio): every stream's state is
touched only there, so nothing here takes a lock. A stream's first request
names its node (nodes.py): refused nodes get a gRPC status whose message
names the problem. After that, each stream serves the view of its workload
from the current Snapshot; `publish` (called on the loop) queues a push to
every stream whose view changed, and the stream's subscriptions
(subscriptions.py) decide which types and resources go out.

SDS serves the trust bundle (`ROOTCA`) only: a workload's certificate and
key (`default`) never come from here; the proxy (or its agent) makes its key
and has its certificate signed over the certificate service.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import time

import grpc
from envoy.service.discovery.v3 import ads_pb2_grpc

from . import nodes
from .subscriptions import DeltaStream, SotwStream, built

log = logging.getLogger("meshcore.controlplane.ads")

_REQUEST, _PUSH, _END = "request", "push", "end"


class Connection:
    """One proxy's stream."""

    def __init__(self, cid: int, stream, peer: str):
        self.id, self.stream, self.peer = cid, stream, peer
        self.queue: asyncio.Queue = asyncio.Queue()
        self.identity: nodes.NodeIdentity | None = None
        self.view = None  # the WorkloadView last served
        self.config_version: str | None = None  # the Snapshot it came from
        self.connected_at = time.time()
        self.pushes = 0

    @property
    def ref(self) -> str | None:
        return self.identity.ref if self.identity else None

    def describe(self) -> dict:
        ident = self.identity
        return {"id": self.id, "node_id": ident.node_id if ident else None, "workload": self.ref,
                "namespace": ident.namespace if ident else None, "name": ident.name if ident else None,
                "ip": ident.ip if ident else None, "mode": self.stream.mode, "peer": self.peer,
                "connected_at": self.connected_at, "config_version": self.config_version,
                "pushes": self.pushes, "stale_nonces": self.stream.stale,
                "types": {st.short: st.describe() for st in self.stream.types.values()}}


class AdsServicer(ads_pb2_grpc.AggregatedDiscoveryServiceServicer):
    """snapshot(): the current good Snapshot; stats: a pusher.PushStats."""

    def __init__(self, snapshot, stats):
        self._snapshot = snapshot
        self.stats = stats
        self.connections: dict[int, Connection] = {}
        self._ids = itertools.count(1)

    # -- the two RPCs

    async def StreamAggregatedResources(self, request_iterator, context):
        async for response in self._serve(SotwStream(), request_iterator, context):
            yield response

    async def DeltaAggregatedResources(self, request_iterator, context):
        async for response in self._serve(DeltaStream(), request_iterator, context):
            yield response

    # -- pushes (on the loop)

    def publish(self, snapshot, detected: float | None) -> None:
        """A new good Snapshot: queue a push to the streams whose view changed."""
        for conn in list(self.connections.values()):
            if conn.identity is None:
                continue
            view = snapshot.views.get(conn.ref)
            if view is not None:
                view = view.for_node(conn.identity.ip, conn.identity.flavor)
            if view is not None and view is conn.view:
                conn.config_version = snapshot.version  # same resources: nothing to send
                continue
            conn.queue.put_nowait((_PUSH, detected, None))

    def describe(self) -> list:
        return [c.describe() for c in sorted(self.connections.values(), key=lambda c: c.id)]

    # -- one stream

    async def _read(self, request_iterator, queue: asyncio.Queue) -> None:
        try:
            async for request in request_iterator:
                queue.put_nowait((_REQUEST, request, None))
        except asyncio.CancelledError:
            raise
        except Exception as e:  # the client went away mid-message
            log.debug("stream read ended: %s", e)
        queue.put_nowait((_END, None, None))

    async def _refuse(self, context, code, message: str):
        self.stats.count("nodes_refused")
        log.warning("refused: %s", message)
        await context.abort(code, message)

    def _admit(self, conn: Connection, request) -> None:
        """The first request: who the proxy is (NodeRefused if no one we serve)."""
        identity = nodes.identify(request.node if request.HasField("node") else None)
        snapshot = self._snapshot()
        nodes.resolve(identity, snapshot.registry)
        conn.identity = identity
        view = snapshot.views.get(identity.ref)
        conn.view = view.for_node(identity.ip, identity.flavor) if view is not None else None
        conn.config_version = snapshot.version
        log.info("connected: %s (%s, %s) from %s", identity.ref, identity.node_id, conn.stream.mode, conn.peer)

    async def _serve(self, stream, request_iterator, context):
        conn = Connection(next(self._ids), stream, context.peer())
        self.connections[conn.id] = conn
        self.stats.count("connections_total")
        reader = asyncio.ensure_future(self._read(request_iterator, conn.queue))
        try:
            while True:
                kind, item, _ = await conn.queue.get()
                if kind == _END:
                    return
                detected, push = None, kind == _PUSH
                if kind == _REQUEST:
                    if conn.identity is None:
                        try:
                            self._admit(conn, item)
                        except nodes.NodeRefused as e:
                            await self._refuse(context, e.code, e.message)
                    responses = stream.on_request(item, conn.view)
                    for short, message in stream.nack_events:
                        self.stats.count("nacks")
                        log.warning("NACK from %s (%s) for %s: %s", conn.ref, conn.identity.node_id, short, message)
                    stream.nack_events.clear()
                else:
                    detected = item
                    while not conn.queue.empty() and conn.queue._queue[0][0] == _PUSH:  # noqa: SLF001
                        conn.queue.get_nowait()  # an older push is covered by this one
                    snapshot = self._snapshot()
                    view = snapshot.views.get(conn.ref)
                    if view is None:
                        await self._refuse(context, grpc.StatusCode.NOT_FOUND,
                                           f"node {conn.identity.node_id!r}: WorkloadEntry {conn.ref} was removed "
                                           f"from the mesh config (version {snapshot.version})")
                    conn.config_version = snapshot.version
                    view = view.for_node(conn.identity.ip, conn.identity.flavor)
                    if view is conn.view:
                        continue
                    conn.view = view
                    responses = stream.on_view(view)
                    conn.pushes += bool(responses)
                for response in responses:
                    response = built(response)
                    yield response
                    self.stats.sent(_short(response.type_url), push, detected)
        finally:
            reader.cancel()
            self.connections.pop(conn.id, None)
            if conn.identity is not None:
                log.info("disconnected: %s (%s)", conn.ref, conn.identity.node_id)


def _short(type_url: str) -> str:
    from meshcore.xds.resources import SHORT_NAME

    return SHORT_NAME.get(type_url, type_url)
