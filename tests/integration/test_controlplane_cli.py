"""`meshcore control-plane` as a process: ports 0 and --address-file, real
xDS clients subscribing, a config edit pushed, a NACK and what `meshcore
proxy-status` prints of it, a bad edit rejected, SIGTERM."""
from __future__ import annotations

import pathlib
import shutil
import signal
import time

import pytest
from support.ads_client import CDS, EDS, LDS, RDS, SDS, AdsClient, sidecar_node
from support.net import wait_until
from support.proxy import run_cli

from meshcore import ca
from meshcore.demo_mesh import ControlPlane

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "mesh-mtls"


@pytest.fixture
def control_plane_process(tmp_path):
    mesh = tmp_path / "mesh"
    shutil.copytree(EXAMPLE, mesh)
    ca.CertificateAuthority.init(str(tmp_path / "ca"), "cluster.local")
    cp = ControlPlane(str(mesh), str(tmp_path / "ca"), str(tmp_path)).start(time.monotonic() + 30)
    try:
        yield cp.proc, mesh, cp.xds, cp.status, pathlib.Path(cp.log_path)
    finally:
        if cp.proc.poll() is None:
            cp.proc.kill()
            cp.proc.wait(timeout=10)


def test_control_plane_process_serves_pushes_and_reports(control_plane_process):
    proc, mesh, xds, status, log = control_plane_process
    nack = {"on": False}
    clients = [AdsClient(xds, sidecar_node("default", "frontend"), delta=True),
               AdsClient(xds, sidecar_node("default", "checkout"),
                         nack=lambda r: "test: EDS refused" if nack["on"] and r.type_url == EDS else None)]
    try:
        for c in clients:
            for t in (CDS, LDS):
                c.subscribe(t)
            for t in (EDS, RDS, SDS):
                c.subscribe(t, ["*"])
            c.wait(lambda c: all(c.of_type(t) for t in (CDS, EDS, LDS, RDS, SDS)), what="every type")

        def table():
            r = run_cli(["proxy-status", status])
            assert r.returncode == 0, r.stderr
            return r.stdout

        out = wait_until(lambda: (t := table()).count("SYNCED") == 10 and t, what="all SYNCED")
        lines = out.splitlines()
        assert lines[0].split() == ["NAME", "CDS", "LDS", "EDS", "RDS", "SDS", "VERSION", "XDS"]
        rows = {line.split()[0]: line.split() for line in lines[1:]}
        assert set(rows) == {"frontend.default", "checkout.default"}
        assert rows["frontend.default"][-1] == "delta" and rows["checkout.default"][-1] == "sotw"

        nack["on"] = True
        n = len(clients[0].responses)
        text = (mesh / "registry.yaml").read_text()
        (mesh / "registry.yaml").write_text(text.replace("http=28081", "http=28091"))
        clients[0].wait(lambda c: len(c.responses) > n, what="the push")
        assert [r.type_url for r in clients[0].responses[n:]] == [EDS]
        out = wait_until(lambda: "NACK" in (t := table()) and t, what="the NACK")
        row = next(line.split() for line in out.splitlines() if line.startswith("checkout.default"))
        assert row[1:6] == ["SYNCED", "SYNCED", "NACK", "SYNCED", "SYNCED"]
        r = run_cli(["proxy-status", status, "-o", "json"])
        assert "test: EDS refused" in r.stdout

        (mesh / "bad.yaml").write_text("apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
                                       "metadata: {name: bad}\nspec: {hosts: [checkout], http: [{route: "
                                       "[{destination: {host: checkout}, weight: lots}]}]}\n")
        wait_until(lambda: "rejected" in table(), what="the rejection")
    finally:
        for c in clients:
            c.close()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    text = log.read_text()
    assert "rejected" in text and "NACK" in text


def test_control_plane_refuses_a_bad_directory_and_status_of_nothing(tmp_path):
    ca.CertificateAuthority.init(str(tmp_path / "ca"), "cluster.local")
    mesh = tmp_path / "mesh"
    shutil.copytree(EXAMPLE, mesh)
    (mesh / "bad.yaml").write_text("apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
                                   "metadata: {name: bad}\nspec: {hosts: [checkout], http: [{route: "
                                   "[{destination: {host: checkout}, weight: lots}]}]}\n")
    r = run_cli(["control-plane", "--mesh-dir", str(mesh), "--ca-dir", str(tmp_path / "ca"),
                 "--listen", "127.0.0.1:0", "--status", ""], timeout=60)
    assert r.returncode == 1 and 'weight: expected an integer, got "lots"' in r.stderr
    r = run_cli(["control-plane", "--mesh-dir", str(mesh)])
    assert r.returncode == 2 and "--ca-dir" in r.stderr
    r = run_cli(["proxy-status", "127.0.0.1:1"])
    assert r.returncode == 1 and "127.0.0.1:1/debug/syncz" in r.stderr
