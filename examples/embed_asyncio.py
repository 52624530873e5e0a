"""An asyncio program that embeds meshcore: two versions of an HTTP service,
an Engine routing 90/10 between them, switched to 50/50 at runtime.

    python examples/embed_asyncio.py

Needs only the core install (`pip install meshcore`). The Engine's workers are
C threads that never take the GIL; the loop stays free while they proxy.
apply() runs in a thread (asyncio.to_thread) so compiling a config does not
block the loop either. Type-checked with mypy --strict (tests/python/test_typing.py).
"""
from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import meshcore

HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"


async def serve_version(name: str, connections: set[asyncio.Task[Any]]) -> asyncio.Server:
    """An HTTP/1.1 keep-alive service that answers every request with its name;
    its connections' tasks go into connections."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        connections.add(task)
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                body = name.encode()
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


def config(ports: dict[str, int], weights: dict[str, int]) -> dict[str, Any]:
    """Envoy's bootstrap shape: one HTTP listener splitting "/" by weight."""
    clusters = [{"name": n, "connect_timeout": "1s", "load_assignment": {"cluster_name": n, "endpoints": [
        {"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": p}}}}]}
    ]}} for n, p in ports.items()]
    route = {"match": {"prefix": "/"}, "route": {"weighted_clusters": {
        "clusters": [{"name": n, "weight": w} for n, w in weights.items()]}}}
    hcm = {"@type": HCM, "stat_prefix": "app", "route_config": {"virtual_hosts": [
        {"name": "app", "domains": ["*"], "routes": [route]}]},
        "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER}}]}
    listener = {"name": "app", "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                                "typed_config": hcm}]}]}
    return {"static_resources": {"listeners": [listener], "clusters": clusters}}


async def sample(port: int, n: int) -> Counter[str]:
    """n requests on one keep-alive connection through the proxy; which version answered each."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    seen: Counter[str] = Counter()
    try:
        for _ in range(n):
            writer.write(b"GET / HTTP/1.1\r\nhost: app\r\n\r\n")
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            seen[(await reader.readexactly(length)).decode()] += 1
    finally:
        writer.close()
        await writer.wait_closed()
    return seen


async def main() -> None:
    connections: set[asyncio.Task[Any]] = set()
    servers = {name: await serve_version(name, connections) for name in ("v1", "v2")}
    ports = {name: s.sockets[0].getsockname()[1] for name, s in servers.items()}
    engine = meshcore.Engine(concurrency=2).start()
    try:
        await asyncio.to_thread(engine.apply, config(ports, {"v1": 90, "v2": 10}))
        port = engine.listener_port("app")
        print("90/10:", dict(sorted((await sample(port, 200)).items())))
        await asyncio.to_thread(engine.apply, config(ports, {"v1": 50, "v2": 50}))
        after = await sample(port, 200)  # a new connection: the new config
        print("50/50:", dict(sorted(after.items())))
        assert after["v1"] > 0 and after["v2"] > 0, after
        print("requests:", engine.stats()["http.app.downstream_rq_total"])
    finally:
        engine.stop(drain_timeout=1)  # closes its pooled upstream connections too
        for s in servers.values():
            s.close()
        await asyncio.wait_for(asyncio.gather(*connections), timeout=10)


if __name__ == "__main__":
    asyncio.run(main())
