"""The binary wheel: scripts/build_wheel.sh builds it and repairs it with
auditwheel to a manylinux tag, vendoring libssl, libcrypto and libpcre2-8;
installed in a fresh virtualenv, the extension loads those copies and the
embedding example runs."""
from __future__ import annotations

import re
import subprocess
import sys
import zipfile

import pytest
from install_helpers import ROOT, fresh_venv, run, run_embedding_example, site_packages

pytestmark = pytest.mark.slow  # ~1 min: one C build; runs in the default suite

BIN = f"{sys.prefix}/bin"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    run(["bash", str(ROOT / "scripts" / "build_wheel.sh"), str(out)], cwd=ROOT, env_python=sys.executable)
    (whl,) = out.glob("meshcore-*.whl")
    return whl


def test_wheel_is_manylinux_and_vendors_its_libraries(wheel):
    assert re.fullmatch(r"meshcore-0\.1\.0-cp3\d+-cp3\d+-manylinux_2_\d+_x86_64\.whl", wheel.name), wheel.name
    show = run([f"{BIN}/auditwheel", "show", str(wheel)], cwd=ROOT)
    assert re.search(r'consistent\s+with the following platform tag:\s+"manylinux_2_\d+_x86_64"', show), show
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
    libs = sorted(re.sub(r"-[0-9a-f]{8}", "", n.split("/")[1]).split(".so")[0]
                  for n in names if n.startswith("meshcore.libs/") and ".so" in n)
    assert libs == ["libcrypto", "libpcre2-8", "libssl"], names
    assert "meshcore/py.typed" in names and "meshcore/_core.pyi" in names


def test_wheel_installs_and_loads_its_own_openssl(wheel, tmp_path):
    python = fresh_venv(tmp_path / "venv", str(wheel))
    run_embedding_example(python, tmp_path)
    (ext,) = (site_packages(python) / "meshcore").glob("_core*.so")
    ldd = subprocess.run(["ldd", str(ext)], capture_output=True, text=True, check=True).stdout
    for lib in ("libssl", "libcrypto", "libpcre2-8"):
        (line,) = [x for x in ldd.splitlines() if x.strip().startswith(lib)]
        assert "/meshcore.libs/" in line, ldd
