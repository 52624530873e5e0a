"""Lint as part of the suite (STYLE.md): ruff on the Python, Cython with
warnings as errors on the binding. The C core's -Wall -Wextra -Werror is
enforced by every build (setup.py, Makefile)."""
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)


def _tool(name):
    path = os.path.join(BIN, name)
    return path if os.path.exists(path) else shutil.which(name)


def test_ruff():
    ruff = _tool("ruff")
    if ruff is None:
        pytest.skip("ruff not installed (pip install -e .[test])")
    r = subprocess.run([ruff, "check", "python", "tests", "benchmarks"], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_cython_warnings_are_errors(tmp_path):
    cython = _tool("cython")
    if cython is None:
        pytest.skip("cython not installed")
    r = subprocess.run([cython, "-3", "-Werror", "-I", "ext", "ext/_core.pyx",
                        "-o", str(tmp_path / "_core.c")], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
