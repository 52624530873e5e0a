"""A mesh fed by `meshcore control-plane`, under load: real sidecar processes
(`meshcore proxy --xds --token`), real applications, mTLS between the
sidecars, a client sending requests all along. What must not cost a single
failed request: the control plane killed and restarted, a bad edit of the
mesh directory (rejected, the running config kept), certificates rotated
every few seconds. (The canary shift 90/10 -> 50/50 -> 0/100 under load is
the demo's step 6: tests/integration/test_demo.py.)"""
from __future__ import annotations

import os
import signal
import time

import pytest
from support.net import wait_until

from meshcore import ca
from meshcore.demo import _Load
from meshcore.demo_mesh import App, ControlPlane, Sidecar, Workload, free_port, write_mesh_dir


class Mesh:
    def __init__(self, workdir, cert_ttl=None):
        self.workdir = str(workdir)
        self.ca_dir = os.path.join(self.workdir, "ca")
        self.mesh_dir = os.path.join(self.workdir, "mesh")
        ca.CertificateAuthority.init(self.ca_dir, "cluster.local")
        self.apps = [App("v1"), App("v2")]
        self.port = free_port()
        self.frontend = Workload("frontend", "frontend", {"app": "frontend"}, "127.0.0.1")
        self.checkout = [Workload(f"checkout-{a.version}", "checkout", {"app": "checkout", "version": a.version},
                                  f"127.0.0.{i + 2}", a) for i, a in enumerate(self.apps)]
        write_mesh_dir(self.mesh_dir, self.port, [*self.checkout, self.frontend])
        self.cp = ControlPlane(self.mesh_dir, self.ca_dir, self.workdir).start(time.monotonic() + 60)
        tokens = {sa: self.cp.token(sa, os.path.join(self.workdir, f"{sa}.token")) for sa in ("frontend", "checkout")}
        self.sidecars = [Sidecar(w, self.cp.xds, tokens[w.service_account], self.workdir, cert_ttl)
                         for w in [*self.checkout, self.frontend]]
        for s in self.sidecars:
            s.wait_ready(time.monotonic() + 60)

    def synced(self):
        z = self.cp.syncz()
        version = z["config"]["version"]
        return (len(z["proxies"]) == len(self.sidecars)
                and all(p["config_version"] == version for p in z["proxies"])
                and all(t.get("acked") == t.get("sent") for p in z["proxies"] for t in p["types"].values()))

    def close(self):
        for s in reversed(self.sidecars):
            s.stop()
        self.cp.stop()
        for a in self.apps:
            a.stop()


@pytest.fixture
def mesh(tmp_path):
    m = Mesh(tmp_path)
    try:
        yield m
    finally:
        m.close()


def test_control_plane_killed_and_restarted_under_load(mesh):
    load = _Load(mesh.port).start()
    try:
        load.wait_sent(50)
        mesh.cp.proc.send_signal(signal.SIGKILL)
        mesh.cp.proc.wait(timeout=10)
        load.wait_sent(200)  # static stability: the sidecars keep what they have
        mesh.cp.start(time.monotonic() + 60)  # the same ports
        wait_until(mesh.synced, timeout=60, what="every sidecar reconnected and ACKed")
        load.wait_sent(100)
    finally:
        load.stop()
    assert load.sent >= 350
    assert not load.failures, dict(load.failures)
    assert all(a.received for a in mesh.apps)


def test_bad_edit_is_rejected_and_traffic_is_untouched(mesh):
    version = mesh.cp.syncz()["config"]["version"]
    load = _Load(mesh.port).start()
    try:
        load.wait_sent(50)
        with open(os.path.join(mesh.mesh_dir, "broken.yaml"), "w") as f:
            f.write("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: broken, "
                    "namespace: default}\nspec:\n  hosts: [checkout]\n  http:\n  - route:\n"
                    "    - destination: {host: checkout, subset: nosuch}\n")
        wait_until(lambda: mesh.cp.syncz()["config"]["rejected"], timeout=30, what="the edit rejected")
        load.wait_sent(200)
    finally:
        load.stop()
    z = mesh.cp.syncz()
    assert z["config"]["version"] == version
    assert any("nosuch" in str(r) for r in z["config"]["rejected"]), z["config"]["rejected"]
    assert not load.failures, dict(load.failures)


def test_certificates_rotate_under_load(tmp_path):
    m = Mesh(tmp_path, cert_ttl="4s")
    try:
        load = _Load(m.port).start()
        try:
            def rotations():
                return min(s.stats().get("server.certificate_rotations", 0) for s in m.sidecars)

            wait_until(lambda: rotations() >= 2, timeout=60, what="two certificate rotations in every sidecar")
            load.wait_sent(100)
        finally:
            load.stop()
        assert load.sent >= 100
        assert not load.failures, dict(load.failures)
        counters = m.cp.syncz()["certificates"]["counters"]
        assert counters.get("issued.renewal", 0) >= 2 * len(m.sidecars), counters
    finally:
        m.close()


def test_proxy_config_shows_an_xds_sidecars_certificate(mesh):
    from support.proxy import run_cli

    frontend = mesh.sidecars[-1]
    r = run_cli(["proxy-config", "secrets", f"{frontend.admin[0]}:{frontend.admin[1]}"])
    assert r.returncode == 0, r.stderr
    assert "spiffe://cluster.local/ns/default/sa/frontend" in r.stdout, r.stdout
    assert "ROOTCA" in r.stdout, r.stdout
