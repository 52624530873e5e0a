"""Fresh virtualenvs for the install tests: nothing from the development
.venv, only what pip installs into them (from PyPI or the machine's index)."""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import sysconfig

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "embed_asyncio.py"


def _base_python() -> str:
    """The interpreter .venv was made from (a venv made from a venv nests)."""
    base = pathlib.Path(sysconfig.get_config_var("BINDIR") or sys.base_prefix + "/bin")
    return str(base / f"python{sys.version_info.major}.{sys.version_info.minor}")


def run(cmd: list[str], cwd: pathlib.Path | str, timeout: float = 240, env_python: str | None = None) -> str:
    """cmd's stdout; fails the test with its output if it fails. env_python:
    what scripts that take $PYTHON should use."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    if env_python:
        env["PYTHON"] = env_python
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert out.returncode == 0, f"{cmd}:\nstdout:\n{out.stdout[-4000:]}\nstderr:\n{out.stderr[-4000:]}"
    return out.stdout


def fresh_venv(path: pathlib.Path, *install: str) -> pathlib.Path:
    """A new virtualenv at path with `pip install *install`; its python."""
    run([_base_python(), "-m", "venv", str(path)], cwd=path.parent)
    python = path / "bin" / "python"
    run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *install], cwd=path.parent)
    return python


def site_packages(python: pathlib.Path) -> pathlib.Path:
    return pathlib.Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                            cwd=python.parent).strip())


def run_embedding_example(python: pathlib.Path, cwd: pathlib.Path) -> str:
    """examples/embed_asyncio.py (an asyncio program proxying real HTTP
    requests through an Engine) with the installed meshcore, from a directory
    outside the source tree."""
    where = run([str(python), "-c", "import meshcore; print(meshcore.__file__)"], cwd=cwd).strip()
    assert where.startswith(str(site_packages(python))), where  # the installed copy, not the tree's
    out = run([str(python), str(EXAMPLE)], cwd=cwd, timeout=120)
    assert "50/50:" in out and "requests: 400" in out, out
    return out
