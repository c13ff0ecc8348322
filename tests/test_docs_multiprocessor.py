"""docs/multiprocessor.md quotes command outputs: each block between
``<!-- generated: toyvisor ARGS -->`` and ``<!-- end -->`` must be what the command prints now."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from toyvisor.tools.cli import main

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "multiprocessor.md"
_BLOCK = re.compile(r"<!-- generated: toyvisor (.+?) -->\n(.*?)<!-- end -->\n", re.S)


def _blocks(path: Path) -> list[tuple[str, str]]:
    return _BLOCK.findall(path.read_text(encoding="utf-8"))


def test_the_doc_has_its_generated_blocks():
    commands = [command for command, _ in _blocks(DOC)]
    assert commands == ["isa --check", "run guests/smpkernel --cpus 4", "smp --markdown",
                        "smp --cache on --markdown"]


@pytest.mark.parametrize("command, quoted", _blocks(DOC), ids=lambda v: v[:40])
def test_every_quoted_output_is_what_the_command_prints(monkeypatch, command, quoted):
    monkeypatch.chdir(REPO)
    result = CliRunner().invoke(main, shlex.split(command))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    if quoted.startswith("```"):
        quoted = quoted.split("\n", 1)[1].rsplit("```\n", 1)[0]
    assert quoted.rstrip("\n") == result.output.rstrip("\n"), \
        f"docs/multiprocessor.md is stale: regenerate the output of `toyvisor {command}`"
