"""The ```python blocks of docs/embedding.md, each a complete program."""
from __future__ import annotations

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
EMBEDDING = ROOT / "docs" / "embedding.md"


def python_blocks(doc: pathlib.Path = EMBEDDING) -> list[tuple[int, str]]:
    """[(line number of the fence, code)] of every ```python block."""
    text = doc.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start()) + 1, m.group(1))
            for m in re.finditer(r"^```python[ \t]*\n(.*?)^```[ \t]*$", text, re.S | re.M)]
