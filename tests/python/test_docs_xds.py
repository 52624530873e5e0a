"""docs/xds.md shows the supported subset as the validator has it: the
fenced table is meshcore.config.SUPPORTED verbatim (regenerate it from there)."""
import pathlib

from meshcore.config import SUPPORTED

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "xds.md"


def test_the_page_has_the_current_table():
    text = DOC.read_text()
    table = text.split("## Supported fields", 1)[1].split("```\n", 1)[1].rsplit("\n```", 1)[0]
    assert table == SUPPORTED.rstrip("\n"), "docs/xds.md is stale: paste meshcore.config.SUPPORTED into it"
