"""The source distribution is complete and installs: build it from the tree,
install it into a fresh virtualenv (pip builds the C core and the extension
from it, as a user's pip would), import meshcore and run the embedding
example through a real Engine. The core install has none of the optional
extras, and what needs one says which."""
from __future__ import annotations

import subprocess
import sys
import tarfile

import pytest
from install_helpers import ROOT, fresh_venv, run, run_embedding_example, site_packages

pytestmark = pytest.mark.slow  # ~1 min: one C build; runs in the default suite


def _tree_state() -> set[str]:
    """Untracked and ignored paths of the tree (what a build could leave)."""
    out = subprocess.run(["git", "status", "--porcelain", "--ignored", "--untracked-files=all"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    return {line[3:] for line in out.splitlines() if line.startswith(("??", "!!"))}


@pytest.fixture(scope="module")
def sdist(tmp_path_factory):
    out = tmp_path_factory.mktemp("sdist")
    before = _tree_state()
    run([sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", str(out), str(ROOT)], cwd=ROOT)
    left = {p for p in _tree_state() - before if not p.startswith("python/meshcore.egg-info/")}
    assert not left, f"building the sdist left files in the tree: {sorted(left)}"
    (archive,) = out.glob("meshcore-*.tar.gz")
    return archive


@pytest.fixture(scope="module")
def core_venv(sdist, tmp_path_factory):
    return fresh_venv(tmp_path_factory.mktemp("venv") / "core", str(sdist))


def test_sdist_has_every_source_the_build_needs(sdist):
    with tarfile.open(sdist) as t:
        names = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
    tracked = subprocess.run(["git", "ls-files", "src", "ext", "python/meshcore"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.split()
    needed = [p for p in tracked if p.endswith((".c", ".h", ".pyx", ".pxi", ".pxd", ".py", ".pyi", "py.typed"))]
    missing = sorted(set(needed) - names)
    assert not missing, missing
    assert len([n for n in names if n.endswith(".h")]) == len([p for p in tracked if p.endswith(".h")])
    built = sorted(n for n in names if n.endswith((".so", ".o", ".a")) or n == "ext/_core.c")
    assert not built, built
    assert not any(n.startswith("tests/") for n in names)


def test_sdist_installs_and_embeds(core_venv, tmp_path):
    run_embedding_example(core_venv, tmp_path)
    typed = site_packages(core_venv) / "meshcore"
    assert (typed / "py.typed").exists() and (typed / "_core.pyi").exists()


def test_core_install_is_only_the_core(core_venv, tmp_path):
    """No extra by default; the CLI names the extra a command needs."""
    pkgs = run([str(core_venv), "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check"],
               cwd=tmp_path).lower()
    for extra_pkg in ("cryptography", "prometheus-client", "opentelemetry-proto"):
        assert f"\n{extra_pkg}==" not in f"\n{pkgs}", pkgs
    meshcore_cli = core_venv.parent / "meshcore"
    out = subprocess.run([str(meshcore_cli), "ca", "init", "--trust-domain", "example.org", "--dir",
                          str(tmp_path / "ca")], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1, out
    assert out.stderr == ("meshcore: error: meshcore's certificate authority needs the cryptography package, "
                          "which is not installed: pip install 'meshcore[control-plane]'\n")
    probe = ("import meshcore\n"
             "try:\n"
             "    import meshcore.telemetry.prometheus\n"
             "except meshcore.MissingExtraError as e:\n"
             "    assert isinstance(e, ImportError)\n"
             "    print(e)\n")
    assert run([str(core_venv), "-c", probe], cwd=tmp_path) == (
        "the Prometheus exposition (/stats/prometheus) needs the prometheus-client package, which is not "
        "installed: pip install 'meshcore[telemetry]'\n")
