"""docs/migration.md quotes what `toyvisor migrate` prints, and its round plot is what --plot
draws: regenerate them with ``python tests/migration/test_migration_docs.py``."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

from click.testing import CliRunner

from toyvisor.tools.cli import main
from toyvisor.vmm.migration.methods.post_copy import PREPAGE
from toyvisor.vmm.migration.session import STATE_BYTES
from toyvisor.vmm.migration.stop_rules import QemuRule, XenRule
from toyvisor.vmm.migration.throttle import AutoConverge

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "migration.md"
PLOT = REPO / "docs" / "migration-rounds.svg"
BLOCK = re.compile(r"(<!-- toyvisor migrate (.*?) -->\n)(.*?)(<!-- end -->)", re.S)
PLOT_ARGS = ["guests/migration/dirty", "--input", "256 400 2000", "--method", "pre-copy",
             "--method", "pre-copy:qemu", "--method", "stop-and-copy", "--method", "post-copy"]


def printed(args: str) -> str:
    result = CliRunner().invoke(main, ["migrate", *shlex.split(args), "--markdown"])
    assert result.exit_code == 0, result.output
    return result.output


def regenerate(text: str) -> str:
    return BLOCK.sub(lambda m: m.group(1) + printed(m.group(2)) + m.group(4), text)


def plot_svg(path: Path) -> None:
    result = CliRunner().invoke(main, ["migrate", *PLOT_ARGS, "--plot", str(path)])
    assert result.exit_code == 0, result.output


def test_migration_doc_tables_are_what_migrate_prints(monkeypatch):
    monkeypatch.chdir(REPO)
    text = DOC.read_text(encoding="utf-8")
    assert len(BLOCK.findall(text)) >= 4
    assert regenerate(text) == text, "docs/migration.md is stale: run this file to regenerate"


def test_migration_round_plot_is_what_migrate_draws(monkeypatch, tmp_path):
    monkeypatch.chdir(REPO)
    plot_svg(tmp_path / "rounds.svg")
    assert (tmp_path / "rounds.svg").read_text() == PLOT.read_text(), \
        "docs/migration-rounds.svg is stale: run this file to regenerate"


def test_the_constants_the_document_quotes_are_the_codes():
    text = DOC.read_text(encoding="utf-8")
    assert f"registers ({STATE_BYTES} bytes)" in text
    assert f"brings the next {PREPAGE} pages" in text
    xen = XenRule()
    assert (f"{xen.max_rounds} rounds are done, or fewer than {xen.min_dirty} pages were dirtied "
            f"in the round, or more than {xen.max_factor}× the VM's memory") in text
    assert f"a cap of {QemuRule().max_rounds} rounds" in text
    ac = AutoConverge()
    assert (f"exceed {ac.trigger:.0%} of those sent for the second time, the vCPU loses "
            f"{ac.initial:.0%} of its time, then {ac.increment:.0%} more each time, at most "
            f"{ac.maximum:.0%}").replace("%", " %") in text


if __name__ == "__main__":  # regenerate the document's tables and its plot
    import os

    os.chdir(REPO)
    DOC.write_text(regenerate(DOC.read_text(encoding="utf-8")), encoding="utf-8")
    plot_svg(PLOT)
    sys.exit(0)
