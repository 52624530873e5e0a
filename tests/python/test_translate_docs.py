"""docs/istio.md embeds the per-field support tables generated from the
validation schemas: the page and the code say the same."""
import pathlib

import pytest

from meshcore.translate.docs import markdown_tables

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "istio.md"


@pytest.mark.parametrize("kind, table", sorted(markdown_tables().items()))
def test_the_page_has_the_current_table(kind, table):
    text = DOC.read_text()
    assert f"### {kind}\n\n{table}\n" in text, \
        f"docs/istio.md is out of date for {kind}: regenerate with python -m meshcore.translate.docs"


def test_the_page_names_every_finding_code():
    from meshcore.translate import findings

    text = DOC.read_text()
    codes = [v for k, v in vars(findings).items() if k.isupper() and k not in ("ERROR", "WARNING")]
    assert [c for c in codes if f"`{c}`" not in text] == []
