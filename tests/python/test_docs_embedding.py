"""Every ```python block of docs/embedding.md runs as written: each in its
own interpreter, from the repository root, with a timeout. Blocks that need
an upstream start one themselves."""
from __future__ import annotations

import subprocess
import sys

import pytest
from docs_snippets import ROOT, python_blocks

BLOCKS = python_blocks()


def test_the_page_has_its_examples():
    assert len(BLOCKS) >= 5, [line for line, _ in BLOCKS]


@pytest.mark.parametrize("line, code", BLOCKS, ids=[f"line{line}" for line, _ in BLOCKS])
def test_snippet_runs(tmp_path, line, code):
    script = tmp_path / f"embedding_md_line{line}.py"
    script.write_text(code, encoding="utf-8")
    out = subprocess.run([sys.executable, "-X", "dev", str(script)], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, f"docs/embedding.md line {line}:\nstdout:\n{out.stdout}\nstderr:\n{out.stderr}"
    assert "Traceback" not in out.stderr, out.stderr
    assert "ResourceWarning" not in out.stderr, out.stderr
