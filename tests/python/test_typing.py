"""meshcore is typed for its users: `mypy --strict` passes on an embedder
(examples/embed_asyncio.py, every example of docs/embedding.md) and on the
typed public modules, and it catches a misuse of the API (so the types are
really seen, not Any)."""
from __future__ import annotations

import subprocess
import sys

import pytest
from docs_snippets import ROOT, python_blocks

pytest.importorskip("mypy", reason="mypy comes with the test extra")

PUBLIC = ["python/meshcore/__init__.py", "python/meshcore/engine.py", "python/meshcore/errors.py",
          "python/meshcore/extras.py", "python/meshcore/admin/__init__.py", "python/meshcore/_core.pyi"]


def mypy(tmp_path, *paths: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-error-summary",
                           "--cache-dir", str(tmp_path / ".mypy_cache"), *paths],
                          cwd=ROOT, capture_output=True, text=True, timeout=280)


def test_the_package_says_it_is_typed():
    assert (ROOT / "python" / "meshcore" / "py.typed").exists()
    assert (ROOT / "python" / "meshcore" / "_core.pyi").exists()


def test_embedders_pass_mypy_strict(tmp_path):
    paths = [str(ROOT / "examples" / "embed_asyncio.py")]
    for line, code in python_blocks():
        snippet = tmp_path / f"embedding_md_line{line}.py"
        snippet.write_text(code, encoding="utf-8")
        paths.append(str(snippet))
    out = mypy(tmp_path, *paths)
    assert out.returncode == 0, out.stdout + out.stderr


def test_public_modules_pass_mypy_strict(tmp_path):
    out = mypy(tmp_path, *PUBLIC)
    assert out.returncode == 0, out.stdout + out.stderr


def test_mypy_catches_a_misuse(tmp_path):
    bad = tmp_path / "misuse.py"
    bad.write_text("import meshcore\n"
                   "engine = meshcore.Engine(splice='fast')\n"
                   "port: str = engine.listener_port('ingress')\n"
                   "engine.stop(drain_timeout='5s')\n", encoding="utf-8")
    out = mypy(tmp_path, str(bad))
    assert out.returncode == 1
    errors = [line for line in out.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 3, out.stdout
    assert 'Argument "splice" to "Engine" has incompatible type' in errors[0]
    assert 'Incompatible types in assignment (expression has type "int", variable has type "str")' in errors[1]
    assert 'Argument "drain_timeout" to "stop" of "Engine" has incompatible type "str"' in errors[2]
