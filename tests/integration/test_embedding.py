"""docs/embedding.md's example runs as written."""
import pathlib
import re
import subprocess
import sys

import pytest

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "embedding.md"


def test_embedding_example_runs(tmp_path):
    if not DOC.exists():
        pytest.skip("docs/embedding.md does not exist yet")
    m = re.search(r"^```python[ \t]*\n(.*?)^```", DOC.read_text(encoding="utf-8"), re.S | re.M)
    assert m, "docs/embedding.md has no ```python block"
    script = tmp_path / "embedding_example.py"
    script.write_text(m.group(1), encoding="utf-8")
    out = subprocess.run([sys.executable, str(script)], cwd=DOC.parents[1], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, f"stdout:\n{out.stdout}\nstderr:\n{out.stderr}"
