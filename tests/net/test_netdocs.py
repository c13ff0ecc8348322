"""docs/multicomputer.md shows what the code prints now."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from toyvisor.tools import netdocs

DOC = Path(__file__).resolve().parents[2] / "docs" / "multicomputer.md"


def _quoted() -> dict[str, str]:
    text = DOC.read_text(encoding="utf-8")
    return dict(re.findall(r"<!-- multicomputer:(\S+) -->\n(.*?)\n<!-- end -->", text, re.S))


@pytest.mark.parametrize("name", list(netdocs.SECTIONS))
def test_docs_table_is_what_the_code_prints(name):
    quoted = _quoted()
    assert name in quoted, f"docs/multicomputer.md lacks the {name} table"
    assert quoted[name] == netdocs.SECTIONS[name](), (
        f"docs/multicomputer.md's {name} table is stale: regenerate with "
        "`python -m toyvisor.tools.netdocs`"
    )


def test_the_load_picture_is_what_the_code_draws():
    from toyvisor.tools import plot

    assert netdocs.LOAD_PICTURE.read_text(encoding="utf-8") == plot.svg(netdocs.load_picture()), (
        "docs/pictures/multicomputer-load.svg is stale: regenerate with `python -m toyvisor.tools.netdocs`"
    )
