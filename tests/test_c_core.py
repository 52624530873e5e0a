"""The C core's own unit tests, built and run by the Makefile: once with
-O2 and once under AddressSanitizer + UndefinedBehaviorSanitizer (leak
checking on). Any sanitizer report fails the run."""
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("target", ["test", "test-asan"])
def test_c_core(target):
    if shutil.which("make") is None or shutil.which("gcc") is None:
        pytest.skip("make/gcc not installed (scripts/setup.sh installs them)")
    r = subprocess.run(["make", "-s", "-C", ROOT, "-j2", target], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, f"make {target} failed:\n{r.stdout[-4000:]}\n{r.stderr[-8000:]}"
