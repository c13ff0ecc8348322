"""The `toyvisor` command line: outputs, exit codes and user errors without tracebacks."""

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from toyvisor.isa import reference
from toyvisor.tools.cli import main

REPO = Path(__file__).resolve().parents[2]
MINIKERNEL = REPO / "guests" / "minikernel"
HELLO = REPO / "guests" / "examples" / "hello.s"


def invoke(*args, input=None):
    result = CliRunner().invoke(main, [str(a) for a in args], input=input)
    # A user error must never surface as a Python exception.
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return result


def test_isa_lists_every_instruction_with_its_class():
    result = invoke("isa")
    assert result.exit_code == 0
    assert "popf" in result.output and "sensitive-unprivileged" in result.output
    assert "privileged" in result.output


def test_isa_markdown_is_the_checked_in_reference():
    assert invoke("isa", "--markdown").output == reference.markdown()


def test_isa_symbols_and_json():
    assert "VEC_PF = 0xe" in invoke("isa", "--symbols").output
    table = json.loads(invoke("isa", "--json").output)
    assert {"mnemonic": "popf"}.items() <= next(t for t in table if t["mnemonic"] == "popf").items()


def test_asm_writes_an_image_and_listing(tmp_path):
    src = tmp_path / "prog.s"
    src.write_text("start: li r1, 42\n hlt\n")
    result = invoke("asm", src, "--listing")
    assert result.exit_code == 0
    assert (tmp_path / "prog.tvimg").exists()
    assert "li r1, 42" in result.output
    disasm = invoke("disasm", tmp_path / "prog.tvimg")
    assert disasm.exit_code == 0 and "hlt" in disasm.output


def test_broken_source_reports_every_error_located_and_exits_non_zero(tmp_path):
    src = tmp_path / "broken.s"
    src.write_text("start: li r1, 1\n  add r1, r2,\n  jmp nowhere\n  addi r1, r2, cr3\n")
    result = invoke("asm", src)
    assert result.exit_code != 0
    text = result.output
    assert f"{src}:2:" in text and "error:" in text
    assert f"{src}:3:" in text and "nowhere" in text
    assert f"{src}:4:" in text
    assert not (tmp_path / "broken.tvimg").exists()


@pytest.mark.parametrize(
    "content, message",
    [
        (b"not an image at all", "image"),
        (b"", "image"),
    ],
)
def test_bad_image_is_a_clear_error(tmp_path, content, message):
    path = tmp_path / "bad.tvimg"
    path.write_bytes(content)
    for command in ("run", "disasm"):
        result = invoke(command, path)
        assert result.exit_code == 1
        assert message in result.output.lower()
        assert len(result.output.strip().splitlines()) == 1


def test_missing_guest_is_a_one_line_error(tmp_path):
    result = invoke("run", tmp_path / "nope")
    assert result.exit_code != 0
    assert "no such file" in result.output


@pytest.mark.parametrize(
    "manifest, message",
    [
        ("name = [", "invalid TOML"),
        ("entry_source = 3", "must be a str"),
        ("entry_source = 'kernel.s'\nbogus = 1", "unknown key 'bogus'"),
        ("name = 'x'", "missing 'entry_source'"),
        ("entry_source = 'missing.s'", "not found"),
        ("entry_source = 'k.s'\nmemory = 0", "'memory'"),
    ],
)
def test_bad_guest_manifest_is_a_one_line_error(tmp_path, manifest, message):
    (tmp_path / "guest.toml").write_text(manifest)
    (tmp_path / "k.s").write_text("hlt\n")
    result = invoke("run", tmp_path)
    assert result.exit_code == 1
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_run_hello_prints_console_and_halts():
    result = invoke("run", HELLO)
    assert result.exit_code == 0
    assert "Hello" in result.output


def test_run_json_has_the_documented_fields():
    data = json.loads(invoke("run", HELLO, "--json").output)
    for key in ("halted", "guest_instructions", "vmm_entries", "by_cause", "console"):
        assert key in data
    assert data["halted"] is True and data["vmm_entries"] == 0


def test_budget_exhaustion_exits_non_zero_with_reason(tmp_path):
    src = tmp_path / "spin.s"
    src.write_text("start: jmp start\n")
    result = invoke("run", src, "--max-steps", "100", "--json")
    data = json.loads(result.output)
    assert result.exit_code == 2
    assert data["halted"] is False and data["stop_reason"] == "budget"
    assert data["guest_instructions"] == 100


def test_trace_shows_pc_disassembly_source_and_traps(tmp_path):
    src = tmp_path / "t.s"
    src.write_text("start: li r1, 1\n  brk\n")
    result = invoke("run", src, "--trace")
    assert "li r1, 0x1" in result.output
    assert f"{src.name}:1" in result.output
    assert "breakpoint" in result.output


def test_minikernel_boots_interleaves_tasks_and_counts_causes():
    data = json.loads(invoke("run", MINIKERNEL, "--json").output)
    assert data["halted"] is True
    causes = data["by_cause"]
    assert causes.get("timer", 0) > 0
    assert causes.get("int 0x80", 0) > 0
    assert causes.get("page-fault", 0) + causes.get("general-protection", 0) >= 1
    console = data["console"]
    # Preemption interleaves the two tasks: their outputs alternate more than once.
    marks = re.findall(r"\b([AB])\d+\b", console)
    switches = sum(1 for x, y in zip(marks, marks[1:]) if x != y)
    assert switches >= 3, console


def test_bundled_guests_run_by_name_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert "Hello, world!" in invoke("run", "examples/hello.s").output
    assert invoke("run", "minikernel", "--json").exit_code == 0


def test_isa_check_json_reports_the_base_isa_not_virtualizable():
    data = json.loads(invoke("isa", "--check", "--json").output)
    assert data["virtualizable"] is False and data["hybrid_virtualizable"] is False
    assert "popf" in data["sensitive_unprivileged"]
