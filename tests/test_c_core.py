"""The C core's own unit tests, built and run by the Makefile: once with
-O2 and once under AddressSanitizer + UndefinedBehaviorSanitizer (leak
checking on). Any sanitizer report fails the run."""
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
C_TESTS = os.path.join(ROOT, "tests", "c")
SUPPORT = "support"  # scaffolding shared by the tests (fake upstream, sockets), not a layer


def test_c_tests_mirror_src():
    """tests/c/<dir>/test_*.c tests src/meshcore/<dir>/ (the Makefile runs
    tests/c/*/test_*.c only); tests/c/support/ holds helpers, never tests."""
    for d in sorted(os.listdir(C_TESTS)):
        path = os.path.join(C_TESTS, d)
        if d == SUPPORT:
            tests = [f for f in os.listdir(path) if f.startswith("test_")]
            assert not tests, f"tests/c/{SUPPORT}/ is not a layer's tests, these would run: {tests}"
        elif os.path.isdir(path):
            assert os.path.isdir(os.path.join(ROOT, "src", "meshcore", d)), f"tests/c/{d}/ has no src/meshcore/{d}/"
        else:
            assert not d.startswith("test_"), f"tests/c/{d} would not run: move it to tests/c/<dir>/"


@pytest.mark.parametrize("target", ["test", "test-asan"])
def test_c_core(target):
    if shutil.which("make") is None or shutil.which("gcc") is None:
        pytest.skip("make/gcc not installed (scripts/setup.sh installs them)")
    r = subprocess.run(["make", "-s", "-C", ROOT, "-j2", target], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, f"make {target} failed:\n{r.stdout[-4000:]}\n{r.stderr[-8000:]}"
