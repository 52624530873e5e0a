"""Engine.apply_async / stop_async never block the event loop.

A ticker coroutine counts its turns while a 1,000-cluster, 1,000-route
config is applied: the loop must have turned during the apply (counted, not
timed: no threshold on how long anything takes), and the apply must have
happened. The same ticker around a plain apply() called on the loop counts
nothing, which shows the measure can fail.
"""
import asyncio

import pytest
from google.protobuf import json_format
from support import http as h

import meshcore
from meshcore.errors import ConfigError, EngineError

N = 1000


def big_config(backend_port: int, weight: int = 1):
    from envoy.config.bootstrap.v3 import bootstrap_pb2

    clusters = [h.http_cluster(f"c{i}", [backend_port]) for i in range(N)]
    routes = [h.route(f"/r{i}/", route={"weighted_clusters": {"clusters": [
        {"name": f"c{i}", "weight": weight}, {"name": f"c{(i + 1) % N}", "weight": 1}]}}, name=f"r{i}")
        for i in range(N)]
    doc = h.bootstrap([h.hcm_listener("http", routes=routes)], clusters)
    return json_format.ParseDict(doc, bootstrap_pb2.Bootstrap())


class Ticker:
    """Counts event-loop turns (a coroutine that sleeps 1 ms at a time)."""

    def __init__(self):
        self.ticks = 0
        self._task = None

    async def _run(self):
        while True:
            await asyncio.sleep(0.001)
            self.ticks += 1

    async def __aenter__(self):
        self._task = asyncio.get_running_loop().create_task(self._run())
        await asyncio.sleep(0)  # started
        return self

    async def __aexit__(self, *exc):
        self._task.cancel()


async def ticks_during(coro_or_call) -> int:
    async with Ticker() as t:
        before = t.ticks
        result = coro_or_call()
        if asyncio.iscoroutine(result):
            await result
        return t.ticks - before


def test_apply_async_lets_the_loop_run(backend_factory):
    backend = backend_factory("b")
    config = big_config(backend.port)

    async def main():
        engine = meshcore.Engine(concurrency=2).start()
        try:
            ticks = await ticks_during(lambda: engine.apply_async(config))
            assert ticks > 0, "the event loop did not turn while the config was applied"
            assert len(engine.bootstrap.static_resources.clusters) == N
            port = engine.listener_port("http")
            resp = await asyncio.get_running_loop().run_in_executor(None, h.request, port, "GET", "/r7/x")
            assert resp.status == 200 and resp.header("x-backend") == "b"
            # The measure can fail: a blocking apply on the loop lets nothing run.
            assert await ticks_during(lambda: engine.apply(big_config(backend.port, weight=2))) == 0
        finally:
            await engine.stop_async(drain_timeout=0.2)  # on a worker thread (its speed is not the point)
        with pytest.raises(EngineError, match="engine is stopped"):
            await engine.apply_async(config)

    asyncio.run(main())


def test_apply_async_refuses_a_bad_config_and_keeps_the_running_one(backend_factory):
    backend = backend_factory("b")

    async def main():
        engine = meshcore.Engine(concurrency=1).start()
        try:
            await engine.apply_async(h.simple([backend.port]))
            bad = h.simple([backend.port])
            bad["static_resources"]["clusters"][0]["connect_timeout"] = "-1s"
            with pytest.raises(ConfigError) as e:
                await engine.apply_async(bad)
            with pytest.raises(ConfigError) as sync:
                engine.apply(bad)
            assert str(e.value) == str(sync.value)
            assert 'cluster "backend"' in str(e.value) and "connect_timeout" in str(e.value)
            resp = await asyncio.get_running_loop().run_in_executor(
                None, h.request, engine.listener_port("http"), "GET", "/")
            assert resp.status == 200
        finally:
            await engine.stop_async()

    asyncio.run(main())


def test_concurrent_apply_async_calls_apply_in_turn(backend_factory):
    a, b = backend_factory("a"), backend_factory("b")

    async def main():
        engine = meshcore.Engine(concurrency=1).start()
        try:
            await asyncio.gather(*(engine.apply_async(h.simple([(a if i % 2 else b).port])) for i in range(6)))
            ports = {ep.endpoint.address.socket_address.port_value
                     for ep in engine.bootstrap.static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints}
            assert ports <= {a.port, b.port} and len(ports) == 1
            resp = await asyncio.get_running_loop().run_in_executor(
                None, h.request, engine.listener_port("http"), "GET", "/")
            assert resp.header("x-backend") == ("a" if ports == {a.port} else "b")
        finally:
            await engine.stop_async()

    asyncio.run(main())
