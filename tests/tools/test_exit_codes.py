"""The exit-code convention (docs/exit-codes.md): 0 held, 1 bad input, 2 a property failed, and
``--no-fail`` for the report without the status — on every command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from toyvisor.tools.cli import main

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "exit-codes.md"
#: a kernel that reads its CPL: ring deprivileging (trap-emulate 0/1/3) shows it ring 1
LEAKY = "start:  rdcs    r1\n        cli\n        hlt\n"


def documented() -> dict[str, tuple[str, str]]:
    text = DOC.read_text(encoding="utf-8")
    table = text[text.index("<!-- exit-codes"):text.index("<!-- end -->")]
    return {m[1]: (m[2], m[3]) for m in re.finditer(r"^\| `([a-z-]+)` \| (.*?) \| (.*?) \|$",
                                                    table, re.M)}


def test_every_command_is_in_the_exit_code_table():
    assert set(documented()) == set(main.commands)


@pytest.mark.parametrize("name", sorted(main.commands))
def test_the_table_says_which_commands_take_no_fail(name):
    command = main.commands[name]
    options = {o for p in getattr(command, "params", ()) for o in getattr(p, "opts", ())}
    assert (documented()[name][1] == "yes") == ("--no-fail" in options)


@pytest.fixture
def leaky(tmp_path):
    path = tmp_path / "leaky.s"
    path.write_text(LEAKY)
    return str(path)


def invoke(*args):
    return CliRunner().invoke(main, list(args))


def test_run_under_a_vmm_exits_2_when_not_equivalent(leaky):
    result = invoke("run", leaky, "--vmm", "trap-emulate")
    assert "equivalent to the bare machine: NO" in result.output
    assert result.exit_code == 2
    result = invoke("run", leaky, "--vmm", "trap-emulate", "--no-fail")
    assert result.exit_code == 0 and "equivalent to the bare machine: NO" in result.output
    assert invoke("run", leaky, "--vmm", "binary-translation").exit_code == 0


def test_compare_exits_2_when_a_run_is_not_equivalent(leaky):
    for extra in ((), ("--json",), ("--markdown",)):
        result = invoke("compare", leaky, "--vmm", "trap-emulate", *extra)
        assert result.exit_code == 2, result.output
    result = invoke("compare", leaky, "--vmm", "trap-emulate", "--no-fail")
    assert result.exit_code == 0 and "NO [1]" in result.output
    assert invoke("compare", leaky, "--vmm", "binary-translation").exit_code == 0


def test_bad_input_exits_1_even_with_no_fail(tmp_path):
    result = invoke("compare", str(tmp_path / "missing.s"), "--no-fail")
    assert result.exit_code == 1 and result.output.startswith("error: ")


def test_a_native_run_that_does_not_halt_exits_2(tmp_path):
    path = tmp_path / "spin.s"
    path.write_text("start:  jmp     start\n")
    assert invoke("run", str(path), "--max-steps", "100").exit_code == 2
    assert invoke("run", str(path), "--max-steps", "100", "--no-fail").exit_code == 0


@pytest.mark.parametrize("args", [["run", "--bogus"], ["nope"], ["isa", "--extension", "vt"],
                                  ["compare", "minikernel", "--json", "--markdown"]])
def test_a_misused_command_line_is_bad_input_not_a_failed_property(args):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert "Error: " in result.output or "error: " in result.output
