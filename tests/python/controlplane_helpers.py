"""A control plane in the test's process on real sockets (ports 0), fed by a
copy of examples/mesh-mtls, and what the tests ask of it."""
from __future__ import annotations

import json
import pathlib
import shutil
import urllib.request

import pytest
from support.net import wait_until

from meshcore import ca
from meshcore.controlplane.server import ControlPlane

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"
_CA_CACHE: dict = {}


def ca_dir(tmp_path_factory) -> str:
    """One CA for the whole session (key generation is the slow part)."""
    if "dir" not in _CA_CACHE:
        d = tmp_path_factory.mktemp("cp-ca") / "ca"
        ca.CertificateAuthority.init(str(d), "cluster.local")
        _CA_CACHE["dir"] = str(d)
    return _CA_CACHE["dir"]


class Mesh:
    """A mesh directory the test edits."""

    def __init__(self, root: pathlib.Path, example: str = "mesh-mtls"):
        self.root = root
        shutil.copytree(EXAMPLES / example, root)

    def path(self, name: str) -> pathlib.Path:
        return self.root / name

    def edit(self, name: str, old: str, new: str) -> None:
        p = self.path(name)
        text = p.read_text()
        assert old in text, (name, old)
        self.write(name, text.replace(old, new, 1))

    def write(self, name: str, text: str) -> None:
        p = self.path(name)
        tmp = p.with_name("." + p.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(p)  # a rename: the watcher sees a new inode


def status(cp) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{cp.status_port}/debug/syncz", timeout=5) as r:
        return json.loads(r.read())


def proxy_status(cp, workload: str) -> dict:
    for p in status(cp)["proxies"]:
        if p["workload"] == workload:
            return p
    raise AssertionError(f"{workload} not connected: {status(cp)['proxies']}")


def wait_for(predicate, timeout: float = 10.0, what: str = "condition"):
    return wait_until(predicate, timeout=timeout, interval=0.01, what=what)


@pytest.fixture
def mesh(tmp_path):
    return Mesh(tmp_path / "mesh")


@pytest.fixture
def control_plane(mesh, tmp_path_factory):
    """start(**kw) -> a started ControlPlane on ports 0; stopped at the end."""
    started = []

    def start(**kw):
        kw.setdefault("poll_interval", 0.01)
        cp = ControlPlane(str(mesh.root), ca_dir(tmp_path_factory), listen="127.0.0.1:0", status="127.0.0.1:0", **kw)
        cp.start()
        started.append(cp)
        return cp

    yield start
    for cp in started:
        cp.stop()
