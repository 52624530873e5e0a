"""meshcore.Engine's lifecycle and arguments: every misuse is a meshcore
error that says what happened, never a silent success or a Cython exception
(docs/embedding.md, "Lifecycle"). Real engines, real sockets."""
from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
import weakref

import pytest
from support import config as cfg
from support.net import connect, echo_exchange, is_refused

import meshcore
from meshcore import EngineStateError, InvalidArgumentError, UnknownListenerError


@pytest.mark.parametrize("kwargs, named", [
    ({"concurrency": -1}, "concurrency=-1"),
    ({"concurrency": 100_000}, "concurrency=100000"),
    ({"concurrency": "2"}, "concurrency='2'"),
    ({"concurrency": True}, "concurrency=True"),
    ({"splice": "fast"}, "splice='fast'"),
    ({"max_connections_per_worker": -5}, "max_connections_per_worker=-5"),
    ({"max_connections_per_worker": 2**32}, "max_connections_per_worker=4294967296"),
])
def test_bad_engine_arguments_are_meshcore_value_errors(kwargs, named):
    with pytest.raises(InvalidArgumentError, match=f"Engine\\({named}\\)") as e:
        meshcore.Engine(**kwargs)
    assert isinstance(e.value, ValueError) and isinstance(e.value, meshcore.MeshcoreError)


def test_bad_drain_timeout_is_refused_and_the_engine_keeps_running(engine_factory, echo):
    engine = engine_factory(config=cfg.simple([echo.port]))
    with pytest.raises(InvalidArgumentError, match=r"stop\(drain_timeout=-1\)"):
        engine.stop(drain_timeout=-1)
    with connect(engine.listener_port("ingress")) as s:
        assert echo_exchange(s, b"still running") == b"still running"


def test_unknown_listener_names_it_and_the_known_ones(engine_factory, echo):
    engine = meshcore.Engine(concurrency=1)
    with pytest.raises(UnknownListenerError, match=r"no listener 'zzz'.*nothing applied yet"):
        engine.listener_port("zzz")
    engine = engine_factory(config=cfg.bootstrap(
        [cfg.tcp_proxy_listener("ingress", "backend"), cfg.tcp_proxy_listener("admin-side", "backend")],
        [cfg.static_cluster("backend", [echo.port])]))
    with pytest.raises(UnknownListenerError) as e:
        engine.listener_port("zzz")
    assert str(e.value) == "no listener 'zzz' in the running config; its listeners: 'ingress', 'admin-side'"
    assert isinstance(e.value, meshcore.EngineError)


def test_start_and_apply_after_stop_are_refused(echo):
    engine = meshcore.Engine(concurrency=1).start()
    engine.apply(cfg.simple([echo.port]))
    port = engine.listener_port("ingress")
    engine.stop()
    engine.stop()  # again: nothing
    assert engine.state == "stopped"
    with pytest.raises(EngineStateError, match=r"start\(\): the engine is stopped; an Engine runs once"):
        engine.start()
    with pytest.raises(EngineStateError, match=r"apply\(\): the engine is stopped"):
        engine.apply(cfg.simple([echo.port]))
    assert is_refused(port)


def test_stop_before_start_ends_the_engine_too():
    engine = meshcore.Engine(concurrency=1)
    assert engine.state == "created"
    engine.stop()
    with pytest.raises(EngineStateError):
        engine.start()


def test_start_twice_is_one_start(engine_factory, echo):
    engine = engine_factory(config=cfg.simple([echo.port]))
    assert engine.start() is engine
    assert engine.state == "running"
    with connect(engine.listener_port("ingress")) as s:
        assert echo_exchange(s, b"x") == b"x"


def test_apply_after_drain_is_refused_unless_drained_ok(engine_factory, echo_factory):
    first, second = echo_factory("first"), echo_factory("second")
    engine = engine_factory(config=cfg.simple([first.port]))
    port = engine.listener_port("ingress")
    held = connect(port)
    with held:
        assert echo_exchange(held, b"before") == b"before"
        engine.drain_listeners()
        assert engine.state == "drained"
        with pytest.raises(EngineStateError, match="listeners are drained.*nothing would listen.*drained_ok=True"):
            engine.apply(cfg.simple([second.port]))
        assert engine.bootstrap is not None and engine.source == "<dict>"
        # Asked for: the config is updated for what is open, and nothing listens.
        engine.apply(cfg.simple([second.port]), "second.yaml", drained_ok=True)
        assert engine.source == "second.yaml"
        assert is_refused(port)
        assert echo_exchange(held, b"after") == b"after"
    assert first.accepted == 1 and second.accepted == 0


def test_a_started_engine_is_not_garbage_collected_before_stop(echo):
    engine = meshcore.Engine(concurrency=1).start()
    engine.apply(cfg.simple([echo.port]))
    port = engine.listener_port("ingress")
    ref = weakref.ref(engine)
    del engine
    gc.collect()
    assert ref() is not None
    with connect(port) as s:
        assert echo_exchange(s, b"alive") == b"alive"
    ref().stop()
    gc.collect()
    assert ref() is None  # stopped: an ordinary object again
    assert is_refused(port)


def test_an_unstarted_engine_is_collected():
    ref = weakref.ref(meshcore.Engine(concurrency=1))
    gc.collect()
    assert ref() is None


def test_engines_running_at_exit_are_stopped_and_write_their_access_logs(tmp_path, echo):
    """No stop() in the program: the atexit hook stops the engine, whose
    log writer then writes the connection's record."""
    log = tmp_path / "access.log"
    doc = cfg.simple([echo.port])
    tp = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][-1]["typed_config"]
    tp["access_log"] = [{"name": "envoy.access_loggers.file", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog", "path": str(log)}}]
    program = textwrap.dedent(f"""
        import socket, meshcore
        engine = meshcore.Engine(concurrency=1).start()
        engine.apply({doc!r})
        with socket.create_connection(("127.0.0.1", engine.listener_port("ingress"))) as s:
            s.sendall(b"ping")
            assert s.recv(4) == b"ping"
        print("exiting", flush=True)
    """)
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "exiting" in out.stdout
    lines = log.read_text().splitlines()
    assert len(lines) == 1 and "backend" in lines[0], lines
