"""Shared fixtures: engines, real upstream servers, `meshcore proxy` processes.

Everything a fixture starts it also stops, and the integration tests are
checked for leftovers: after each test no thread, engine worker or child
process it started may still be alive (see `_no_leftovers`).
"""
from __future__ import annotations

import pathlib
import sys
import threading
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "integration"))

from support import config as cfg  # noqa: E402
from support.load import EchoLoad  # noqa: E402
from support.proxy import ProxyProcess, child_pids, native_thread_names  # noqa: E402
from support.servers import EchoServer, HttpUpstream, ScriptedServer  # noqa: E402

import meshcore  # noqa: E402

INTEGRATION = pathlib.Path(__file__).resolve().parent / "integration"


@pytest.fixture(autouse=True)
def _no_leftovers(request):
    """Fails an integration test that leaves a thread, worker or process behind."""
    if INTEGRATION not in pathlib.Path(str(request.node.path)).resolve().parents:
        yield
        return
    threads_before = set(threading.enumerate())
    workers_before = sum(n.startswith("mc-worker") for n in native_thread_names())
    children_before = child_pids()
    yield

    def leftovers():
        threads = [t.name for t in threading.enumerate() if t not in threads_before and t.is_alive()]
        workers = sum(n.startswith("mc-worker") for n in native_thread_names()) - workers_before
        children = child_pids() - children_before
        return threads, workers, children

    deadline = time.monotonic() + 10
    while True:
        threads, workers, children = leftovers()
        if not threads and workers <= 0 and not children:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"test left behind threads={threads} engine workers={workers} "
                        f"child processes={sorted(children)}")
        time.sleep(0.05)


# ---- in-process engine -------------------------------------------------------------


@pytest.fixture
def engine_factory():
    """make(concurrency=2, splice="auto", config=None) -> a started meshcore.Engine."""
    engines = []

    def make(concurrency: int = 2, splice: str = "auto", config=None, **kw):
        e = meshcore.Engine(concurrency=concurrency, splice=splice, **kw)
        engines.append(e)
        e.start()
        if config is not None:
            e.apply(config)
        return e

    yield make
    for e in engines:
        e.stop()


@pytest.fixture
def engine(engine_factory):
    return engine_factory()


# ---- upstream servers -------------------------------------------------------------------


@pytest.fixture
def echo_factory():
    """make(name="echo") -> a running EchoServer; all stopped at teardown."""
    servers = []

    def make(name: str = "echo") -> EchoServer:
        s = EchoServer(name)
        servers.append(s)
        return s

    yield make
    errors = []
    for s in servers:
        try:
            s.stop()
        except BaseException as e:  # noqa: BLE001
            errors.append(e)
    if errors:
        raise errors[0]


@pytest.fixture
def echo(echo_factory) -> EchoServer:
    return echo_factory()


@pytest.fixture
def scripted_factory():
    """make(handler, name=...) -> a running ScriptedServer; stopped (and its
    handler errors re-raised) at teardown."""
    servers = []

    def make(handler, name: str = "scripted", **kw) -> ScriptedServer:
        s = ScriptedServer(handler, name, **kw)
        servers.append(s)
        return s

    yield make
    errors = []
    for s in servers:
        try:
            s.stop()
        except BaseException as e:  # noqa: BLE001
            errors.append(e)
    if errors:
        raise errors[0]


@pytest.fixture
def http_upstream_factory():
    servers = []

    def make(body: bytes) -> HttpUpstream:
        s = HttpUpstream(body)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.stop()


# ---- `meshcore proxy` subprocess -------------------------------------------------------------


@pytest.fixture
def proxy_factory(tmp_path):
    """make(doc, name="proxy", **ProxyProcess kw) -> a started `meshcore proxy`.

    Writes doc to tmp_path/<name>.yaml, starts the process with the admin
    API on port 0 and waits for /ready. Every process is terminated at
    teardown (SIGTERM, then SIGKILL)."""
    procs = []

    def make(doc, name: str = "proxy", start: bool = True, **kw) -> ProxyProcess:
        path = cfg.write_config(tmp_path / f"{name}.yaml", doc)
        p = ProxyProcess(path, tmp_path / f"{name}.log", **kw)
        procs.append(p)
        return p.start() if start else p

    yield make
    for p in procs:
        p.close()


@pytest.fixture
def load_factory():
    """make(port, **EchoLoad kw) -> running EchoLoad; every one stopped at teardown."""
    loads = []

    def make(port: int, **kw) -> EchoLoad:
        load = EchoLoad(port, **kw)
        loads.append(load)
        return load.start()

    yield make
    for load in loads:
        load.stop()


# ---- HTTP upstreams (support/http.py) ---------------------------------------------------------


@pytest.fixture
def backend_factory():
    """make(name="backend", handler=None, **Backend kw) -> a running HTTP/1.1
    Backend; every one stopped (and its protocol errors re-raised) at teardown."""
    from support.http import Backend

    backends = []

    def make(name: str = "backend", handler=None, **kw) -> Backend:
        b = Backend(name, handler, **kw)
        backends.append(b)
        return b

    yield make
    errors = []
    for b in backends:
        try:
            b.stop()
        except BaseException as e:  # noqa: BLE001
            errors.append(e)
    if errors:
        raise errors[0]
