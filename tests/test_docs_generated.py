"""The pictures and debugger transcripts in docs/ are what the code makes now (tools/docgen.py)."""

import re
from pathlib import Path

from toyvisor.tools import docgen
from toyvisor.tools.debug.monitor import COMMANDS

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"


def test_generated_docs_are_up_to_date():
    stale = [path.relative_to(REPO) for path, data in docgen.generate(DOCS).items()
             if not path.exists() or path.read_bytes() != data]
    assert not stale, f"regenerate with `python -m toyvisor.tools.docgen`: {stale}"


def test_every_picture_is_shown_in_a_doc_and_small():
    texts = "".join(p.read_text(encoding="utf-8") for p in DOCS.glob("*.md"))
    for name in docgen.PICTURES:
        assert f"]({name})" in texts, f"no doc shows {name}"
        assert (DOCS / name).stat().st_size < 40_000


def test_the_debugger_doc_runs_every_command():
    text = (DOCS / "debugger.md").read_text(encoding="utf-8")
    typed = {line.split()[1].split("/")[0] for line in text.splitlines()
             if line.startswith("(toyvisor) ")}
    for command in COMMANDS:
        assert command.name in typed or set(command.aliases) & typed, command.name
    for topic in ("breakpoints", "tlb", "pt", "idt", "checkpoints"):
        assert re.search(rf"^\(toyvisor\) info {topic}", text, re.M), topic
