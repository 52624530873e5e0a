"""A scripted ADS server: real gRPC on a real socket, answering exactly what a
test sends, for testing the proxy's xDS client.

    ads = ScriptedAds()                     # 127.0.0.1, port chosen (or port=)
    s = ads.next_stream()                   # the next stream a client opened
    req = s.recv(type_url=CDS)              # the next request (of that type)
    s.send(s.delta({CDS: {...}}))           # a response (nonce made up)
    s.close()                               # ends the stream (status OK)
    ads.stop(); ads = ScriptedAds(port=p)   # a control-plane restart

Also: `workload_resources` splits an Envoy bootstrap dict into LDS/RDS/CDS/
EDS resources the way a control plane serves them (meshcore.xds.resources.split),
and `CertKeeper` is a certificate keeper built on the CA in a directory
(meshcore.certs.Provisioner), standing in for the certificate service.
"""
from __future__ import annotations

import itertools
import queue
import threading
from concurrent import futures

import grpc
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

from meshcore.xds import resources as xr

_nonces = itertools.count(1)


class Stream:
    def __init__(self, mode: str, metadata):
        self.mode = mode
        self.metadata = dict(metadata or ())
        self.requests: queue.Queue = queue.Queue()
        self.outbox: queue.Queue = queue.Queue()
        self.seen: list = []  # every request received, in order
        self.ended = threading.Event()
        self._held: list = []  # requests received but not yet taken by recv(type_url=...)

    # -- what the client sent ------------------------------------------------------------

    def recv(self, type_url: str | None = None, timeout: float = 10.0):
        """The next request (of type_url, if given; others are kept for later)."""
        for i, req in enumerate(self._held):
            if type_url is None or req.type_url == type_url:
                return self._held.pop(i)
        while True:
            req = self.requests.get(timeout=timeout)
            if req is None:
                raise EOFError("the client closed the stream")
            if type_url is None or req.type_url == type_url:
                return req
            self._held.append(req)

    def pending(self, timeout: float = 0.3) -> list:
        """Requests that arrive within timeout (the held ones first)."""
        out, self._held = list(self._held), []
        while True:
            try:
                req = self.requests.get(timeout=timeout)
            except queue.Empty:
                return out
            if req is None:
                return out
            out.append(req)

    # -- what the server sends -----------------------------------------------------------------

    def send(self, response) -> str:
        self.outbox.put(response)
        return response.nonce

    def close(self, code=None, details: str = "") -> None:
        """Ends the stream: OK, or with a gRPC status code."""
        self.outbox.put(("abort", code, details) if code else None)

    @staticmethod
    def delta(type_url: str, resources: dict, version: str = "v1", removed=(), nonce: str | None = None):
        """A DeltaDiscoveryResponse: resources {name: message or (message, version)}."""
        resp = discovery_pb2.DeltaDiscoveryResponse(type_url=type_url, system_version_info=version,
                                                    nonce=nonce or f"n{next(_nonces)}")
        for name, item in resources.items():
            msg, v = item if isinstance(item, tuple) else (item, version)
            r = resp.resources.add(name=name, version=v)
            if isinstance(msg, bytes):  # raw bytes: a resource this test wants to be undecodable
                r.resource.type_url = type_url
                r.resource.value = msg
            else:
                r.resource.Pack(msg)
        resp.removed_resources.extend(removed)
        return resp

    @staticmethod
    def sotw(type_url: str, resources: dict, version: str = "v1", nonce: str | None = None):
        resp = discovery_pb2.DiscoveryResponse(type_url=type_url, version_info=version,
                                               nonce=nonce or f"n{next(_nonces)}")
        for msg in resources.values():
            resp.resources.add().Pack(msg)
        return resp

    def response(self, type_url, resources, version="v1", **kw):
        """A response in this stream's mode."""
        if self.mode == "delta":
            return self.delta(type_url, resources, version, **kw)
        return self.sotw(type_url, resources, version, **kw)


class _Servicer(ads_pb2_grpc.AggregatedDiscoveryServiceServicer):
    def __init__(self, server):
        self.server = server

    def StreamAggregatedResources(self, request_iterator, context):
        yield from self._serve("sotw", request_iterator, context)

    def DeltaAggregatedResources(self, request_iterator, context):
        yield from self._serve("delta", request_iterator, context)

    def _serve(self, mode, request_iterator, context):
        stream = Stream(mode, context.invocation_metadata())
        context.add_callback(lambda: stream.outbox.put(None))
        self.server.all_streams.append(stream)

        def read():
            try:
                for req in request_iterator:
                    stream.seen.append(req)
                    stream.requests.put(req)
            except Exception:  # noqa: BLE001 - the RPC ended
                pass
            finally:
                stream.requests.put(None)

        reader = threading.Thread(target=read, name="ads-reader", daemon=True)
        reader.start()
        self.server.streams.put(stream)
        try:
            while True:
                item = stream.outbox.get()
                if item is None:
                    return
                if isinstance(item, tuple):
                    context.abort(item[1], item[2])
                yield item
        finally:
            stream.ended.set()


class ScriptedAds:
    def __init__(self, port: int = 0):
        self.streams: queue.Queue = queue.Queue()
        self.all_streams: list[Stream] = []
        self._pool = futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="ads")
        self.server = grpc.server(self._pool)
        ads_pb2_grpc.add_AggregatedDiscoveryServiceServicer_to_server(_Servicer(self), self.server)
        self.port = self.server.add_insecure_port(f"127.0.0.1:{port}")
        self.server.start()

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def next_stream(self, timeout: float = 15.0) -> Stream:
        return self.streams.get(timeout=timeout)

    def stop(self) -> None:
        for s in self.all_streams:
            s.outbox.put(None)
        self.server.stop(grace=None).wait(10)
        self._pool.shutdown(wait=True)


def workload_resources(doc: dict, root_bundle_pem: str | None = None) -> xr.Resources:
    """An Envoy bootstrap dict (the YAML shape) as a control plane's LDS/RDS/CDS/EDS."""
    import yaml

    from meshcore.config import parse_bootstrap

    return xr.split(parse_bootstrap(yaml.safe_dump(doc), "<test>"), root_bundle_pem)


class CertKeeper:
    """A keeper-like certificate source (`.current`, `.on_change`, `.start()`, `.stop()`,
    `.rotate()`) on a CA directory, standing in for meshcore.xds.ca_client."""

    def __init__(self, ca_dir, namespace: str = "default", service_account: str = "default", on_change=None):
        from meshcore.certs import Provisioner

        self._provisioner = Provisioner.from_dir(str(ca_dir), namespace, service_account)
        self.on_change = on_change
        self.current = None
        self.issued = 0

    def start(self, wait: float = 0.0):
        self.current = self._provisioner.issue()
        self.issued += 1
        return self

    def rotate(self):
        self.current = self._provisioner.issue()
        self.issued += 1
        if self.on_change is not None:
            self.on_change(self.current)
        return self.current

    def stop(self):
        pass
