"""`meshcore proxy` refuses bad configs at start: exit status 1 and one line
naming the file, the resource and the field. Also bind failures (listener
or admin address in use), from the CLI and from Engine.apply."""
import pathlib
import socket

import pytest
import yaml
from support import config as cfg
from support.net import short_echo
from support.proxy import run_cli

import meshcore

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "l4.yaml"


def example():
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["admin"]["address"]["socket_address"]["port_value"] = 0
    doc["static_resources"]["listeners"][0]["address"]["socket_address"]["port_value"] = 0
    return doc


def with_redis_filter(doc):
    doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0] = {
        "name": "envoy.filters.network.redis_proxy",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProxy",
                         "stat_prefix": "redis"}}


def with_unknown_cluster(doc):
    doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][1]["typed_config"]["cluster"] = "backedn"


def with_maglev(doc):
    doc["static_resources"]["clusters"][0]["lb_policy"] = "MAGLEV"


def with_typo(doc):
    doc["static_resources"]["clusters"][0]["conect_timeout"] = "1s"


def with_bad_duration(doc):
    doc["static_resources"]["clusters"][0]["connect_timeout"] = "soon"


BAD = [
    (with_redis_filter,
     'l4.yaml: listener "ingress": filter_chains[0].filters[0]: unsupported filter envoy.filters.network.redis_proxy'),
    (with_unknown_cluster,
     'l4.yaml: listener "ingress": filter_chains[0].filters[1].typed_config.cluster: '
     'unknown cluster "backedn" (did you mean "backend"?)'),
    (with_maglev,
     'l4.yaml: cluster "backend": lb_policy: unsupported value MAGLEV '
     '(supported: ROUND_ROBIN, LEAST_REQUEST, RANDOM, RING_HASH)'),
    (with_typo, 'l4.yaml: cluster "backend": unknown field "conect_timeout" (did you mean "connect_timeout"?)'),
    (with_bad_duration, 'l4.yaml: cluster "backend": connect_timeout: expected a duration'),
]


@pytest.mark.parametrize("change, message", BAD, ids=[c.__name__ for c, _ in BAD])
def test_bad_config_exits_1_naming_file_resource_field(tmp_path, change, message):
    doc = example()
    change(doc)
    path = cfg.write_config(tmp_path / "l4.yaml", doc)
    out = run_cli(["proxy", "-c", str(path), "--admin-address", "127.0.0.1:0"])
    assert out.returncode == 1, out.stderr
    assert f"meshcore: error: {message}" in out.stderr
    assert "Traceback" not in out.stderr


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("static_resources:\n  listeners:\n    - name: [unclosed\n")
    out = run_cli(["proxy", "-c", str(path), "--admin-address", "127.0.0.1:0"])
    assert out.returncode == 1
    assert "meshcore: error: broken.yaml: line " in out.stderr
    assert "Traceback" not in out.stderr


def test_missing_file(tmp_path):
    out = run_cli(["proxy", "-c", str(tmp_path / "nope.yaml"), "--admin-address", "127.0.0.1:0"])
    assert out.returncode == 1
    assert f"meshcore: error: {tmp_path / 'nope.yaml'}: cannot read: No such file or directory" in out.stderr


@pytest.fixture
def taken_port():
    """A port held by a plain listening socket (no SO_REUSEPORT: nobody can share it)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    yield s.getsockname()[1]
    s.close()


def test_listener_address_in_use_exits_1(tmp_path, echo, taken_port):
    doc = cfg.simple([echo.port], port=taken_port)
    path = cfg.write_config(tmp_path / "mesh.yaml", doc)
    out = run_cli(["proxy", "-c", str(path), "--admin-address", "127.0.0.1:0"])
    assert out.returncode == 1
    # (At start the file is named by its full path, on reload by its basename.)
    assert out.stderr.startswith("meshcore: error: ")
    assert (f'mesh.yaml: listener "ingress": cannot listen on 127.0.0.1:{taken_port}: '
            "Address already in use") in out.stderr


def test_admin_address_in_use_exits_1(tmp_path, echo, taken_port):
    path = cfg.write_config(tmp_path / "mesh.yaml", cfg.simple([echo.port]))
    out = run_cli(["proxy", "-c", str(path), "--admin-address", f"127.0.0.1:{taken_port}"])
    assert out.returncode == 1
    assert (f"meshcore: error: admin API: cannot listen on 127.0.0.1:{taken_port}: "
            "Address already in use") in out.stderr


def test_engine_apply_address_in_use_keeps_the_running_config(engine, echo, taken_port):
    engine.apply(cfg.simple([echo.port]))
    port = engine.listener_port("ingress")
    bad = cfg.bootstrap([cfg.tcp_proxy_listener("ingress", "backend"),
                         cfg.tcp_proxy_listener("second", "backend", port=taken_port)],
                        [cfg.static_cluster("backend", [echo.port])])
    with pytest.raises(meshcore.EngineError, match=f'listener "second": cannot listen on 127.0.0.1:{taken_port}'):
        engine.apply(bad)
    assert [name for name, _, _ in engine.listeners()] == ["ingress"]
    assert engine.listener_port("ingress") == port
    assert short_echo(port, b"still serving") == b"still serving"
