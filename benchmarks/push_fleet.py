"""A fleet of lightweight xDS clients for bench_push.py: many delta ADS streams
in one asyncio process, each behaving as a proxy does (its node in the first
request, CDS and LDS wildcard, RDS and EDS for what they name, an ACK with
the nonce for every response), recording when each RouteConfiguration
version arrived.

Run as a child process so its CPU is not the control plane's:

    python benchmarks/push_fleet.py TARGET N WORKLOADS OUT.json READY_FILE

It connects N streams (stream i is workload i % WORKLOADS), touches
READY_FILE once every stream holds a complete config, then on SIGTERM writes
OUT.json: per stream, [route version, arrival time (time.time())] pairs.
"""
from __future__ import annotations

import asyncio
import json
import signal
import sys
import time

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.protobuf import json_format

from meshcore import xds_types
from meshcore.xds import resources as xr


def node(i: int, workloads: int):
    name = f"w{i % workloads}"
    n = base_pb2.Node(id=f"sidecar~127.0.0.1~{name}-{i}.bench~bench.svc.cluster.local",
                      user_agent_name="meshcore-bench")
    json_format.ParseDict({"NAMESPACE": "bench", "WORKLOAD_NAME": name}, n.metadata)
    return n


class Stream:
    def __init__(self, i: int, workloads: int):
        self.i, self.node = i, node(i, workloads)
        self.routes: list[tuple[str, float]] = []  # (route version, arrival)
        self.have: set[str] = set()  # types received
        self.queue: asyncio.Queue = asyncio.Queue()
        self.rds: set[str] = set()
        self.eds: set[str] = set()

    def request(self, type_url: str, subscribe=(), nonce: str = "", first=False):
        r = discovery_pb2.DeltaDiscoveryRequest(type_url=type_url, resource_names_subscribe=list(subscribe),
                                                response_nonce=nonce)
        if first:
            r.node.CopyFrom(self.node)
        self.queue.put_nowait(r)

    async def requests(self):
        while True:
            r = await self.queue.get()
            if r is None:
                return
            yield r

    def on_response(self, resp) -> None:
        now = time.time()
        t = resp.type_url
        self.have.add(t)
        if t == xr.LDS:
            for res in resp.resources:
                lst = xr.MESSAGE_CLASS[xr.LDS]()
                res.resource.Unpack(lst)
                for chain in lst.filter_chains:
                    hcm = xds_types.http_connection_manager(chain)
                    if hcm is not None and hcm.HasField("rds") and hcm.rds.route_config_name not in self.rds:
                        self.rds.add(hcm.rds.route_config_name)
                        self.request(xr.RDS, [hcm.rds.route_config_name])
        elif t == xr.CDS:
            new = {r.name for r in resp.resources} - self.eds
            if new:
                self.eds |= new
                self.request(xr.EDS, sorted(new))
        elif t == xr.RDS:
            for res in resp.resources:
                self.routes.append((res.version, now))
        self.request(t, nonce=resp.nonce)  # the ACK

    @property
    def complete(self) -> bool:
        return {xr.CDS, xr.LDS, xr.RDS, xr.EDS} <= self.have


async def run(target: str, n: int, workloads: int, out: str, ready_file: str) -> None:
    channels = [grpc.aio.insecure_channel(target) for _ in range(max(1, n // 100))]
    streams = [Stream(i, workloads) for i in range(n)]
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)

    async def one(s: Stream):
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channels[s.i % len(channels)])
        s.request(xr.CDS, first=True)
        s.request(xr.LDS)
        call = stub.DeltaAggregatedResources(s.requests())
        try:
            async for resp in call:
                s.on_response(resp)
        except grpc.aio.AioRpcError as e:
            if not stop.is_set():
                print(f"stream {s.i}: {e.code().name}: {e.details()}", file=sys.stderr)

    tasks = [asyncio.ensure_future(one(s)) for s in streams]
    while not all(s.complete for s in streams):
        if stop.is_set():
            break
        await asyncio.sleep(0.05)
    with open(ready_file, "w") as f:
        f.write("ready\n")
    await stop.wait()
    with open(out, "w") as f:
        json.dump([s.routes for s in streams], f)
    for s in streams:
        s.queue.put_nowait(None)
    for t in tasks:
        t.cancel()
    for c in channels:
        await c.close()


if __name__ == "__main__":
    target, n, workloads, out, ready = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
    asyncio.run(run(target, n, workloads, out, ready))
