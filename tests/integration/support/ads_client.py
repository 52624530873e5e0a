"""A lightweight xDS client that behaves as a proxy does: one ADS stream (state
of the world or delta), the node in the first request, an ACK for every
response with its nonce (a NACK with error_detail when `nack(response)`
returns a message), and the resources it holds tracked per type."""
from __future__ import annotations

import queue
import threading
import time

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.protobuf import json_format

from meshcore.xds import resources as xr

LDS, RDS, CDS, EDS, SDS = xr.LDS, xr.RDS, xr.CDS, xr.EDS, xr.SDS


def sidecar_node(namespace: str, name: str, ip: str = "127.0.0.1", metadata: bool = True, **extra):
    node = base_pb2.Node(id=f"sidecar~{ip}~{name}.{namespace}~{namespace}.svc.cluster.local")
    meta = {"NAMESPACE": namespace, "WORKLOAD_NAME": name, **extra} if metadata else dict(extra)
    if meta:
        json_format.ParseDict(meta, node.metadata)
    return node


class AdsClient:
    def __init__(self, target: str, node, delta: bool = False, nack=None):
        self.delta, self.node, self.nack = delta, node, nack
        self.channel = grpc.insecure_channel(target)
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(self.channel)
        self._requests: queue.Queue = queue.Queue()
        self._sent_node = False
        self.lock = threading.Condition()
        self.responses: list = []  # every response, in order
        self.requests: list = []  # every request sent
        self.held: dict = {t: {} for t in xr.PUSH_ORDER}  # type -> name -> Any
        self.versions: dict = {t: {} for t in xr.PUSH_ORDER}  # delta: type -> name -> resource version
        self.names: dict = {}  # SotW: type -> the names it asks for
        self.acked: dict = {}  # type -> version_info last ACKed (SotW)
        self.error: grpc.RpcError | None = None
        self.done = False
        call = stub.DeltaAggregatedResources if delta else stub.StreamAggregatedResources
        self._call = call(self._iter())
        self._thread = threading.Thread(target=self._recv, name="test-ads-client", daemon=True)
        self._thread.start()

    def _iter(self):
        while True:
            r = self._requests.get()
            if r is None:
                return
            yield r

    def _send(self, req) -> None:
        if not self._sent_node:
            req.node.CopyFrom(self.node)
            self._sent_node = True
        self.requests.append(req)
        self._requests.put(req)

    # -- subscriptions

    def subscribe(self, type_url: str, names=(), initial: dict | None = None) -> None:
        if self.delta:
            self._send(discovery_pb2.DeltaDiscoveryRequest(type_url=type_url, resource_names_subscribe=list(names),
                                                           initial_resource_versions=initial or {}))
        else:
            self.names[type_url] = sorted(set(self.names.get(type_url, [])) | set(names))
            self._send(discovery_pb2.DiscoveryRequest(type_url=type_url, resource_names=self.names[type_url],
                                                      version_info=self.acked.get(type_url, "")))

    def unsubscribe(self, type_url: str, names) -> None:
        if self.delta:
            self._send(discovery_pb2.DeltaDiscoveryRequest(type_url=type_url, resource_names_unsubscribe=list(names)))
        else:
            self.names[type_url] = sorted(set(self.names.get(type_url, [])) - set(names))
            self._send(discovery_pb2.DiscoveryRequest(type_url=type_url, resource_names=self.names[type_url],
                                                      version_info=self.acked.get(type_url, "")))

    def send_raw(self, req) -> None:
        self._send(req)

    # -- responses

    def _recv(self) -> None:
        try:
            for resp in self._call:
                message = self.nack(resp) if self.nack else None
                with self.lock:
                    self.responses.append(resp)
                    if message is None:
                        self._hold(resp)
                    self.lock.notify_all()
                self._answer(resp, message)
        except grpc.RpcError as e:
            with self.lock:
                self.error = e
        finally:
            with self.lock:
                self.done = True
                self.lock.notify_all()

    def _hold(self, resp) -> None:
        held = self.held.setdefault(resp.type_url, {})
        if self.delta:
            versions = self.versions.setdefault(resp.type_url, {})
            for r in resp.resources:
                held[r.name], versions[r.name] = r.resource, r.version
            for name in resp.removed_resources:
                held.pop(name, None)
                versions.pop(name, None)
        else:
            if resp.type_url in (LDS, CDS):
                held.clear()  # state of the world: what is not named is gone
            for a in resp.resources:
                msg = xr.MESSAGE_CLASS[resp.type_url]()
                a.Unpack(msg)
                held[getattr(msg, "cluster_name", "") or msg.name] = a
            self.acked[resp.type_url] = resp.version_info

    def _answer(self, resp, message) -> None:
        if self.delta:
            req = discovery_pb2.DeltaDiscoveryRequest(type_url=resp.type_url, response_nonce=resp.nonce)
        else:
            req = discovery_pb2.DiscoveryRequest(type_url=resp.type_url, response_nonce=resp.nonce,
                                                 resource_names=self.names.get(resp.type_url, []),
                                                 version_info=self.acked.get(resp.type_url, ""))
        if message is not None:
            req.error_detail.code = 3
            req.error_detail.message = message
        self._send(req)

    def wait(self, predicate, timeout: float = 10.0, what: str = "condition"):
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                result = predicate(self)
                if result:
                    return result
                if self.done and not predicate(self):
                    raise AssertionError(f"stream ended waiting for {what}: {self.error}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {what}; responses: "
                                         f"{[(xr.SHORT_NAME.get(r.type_url), r.nonce) for r in self.responses]}")
                self.lock.wait(left)

    def of_type(self, type_url: str) -> list:
        return [r for r in self.responses if r.type_url == type_url]

    def wait_error(self, timeout: float = 10.0) -> grpc.RpcError:
        self.wait(lambda c: c.done, timeout, "the stream to end")
        return self.error

    def close(self) -> None:
        self._requests.put(None)
        self._call.cancel()
        self._thread.join(timeout=5)
        self.channel.close()
