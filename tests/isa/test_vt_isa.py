"""The "vt" extension in the instruction table: its entries, encodings, the reference, and the
Popek–Goldberg analysis of non-root mode derived from the table's declarations."""

from __future__ import annotations

import json

import attrs
import pytest
from click.testing import CliRunner
from toyvisor.asm import assemble_source, disassemble
from toyvisor.isa import popek_goldberg, reference
from toyvisor.isa.encoding import decode, encode
from toyvisor.isa.spec import Privilege
from toyvisor.isa.table import (
    ALL_INSTRUCTIONS,
    BY_MNEMONIC,
    EXTENSIONS,
    INSTRUCTIONS,
    instruction_set,
)
from toyvisor.tools.cli import main


def test_the_vt_extension_instructions():
    vt = {d.mnemonic: d for d in EXTENSIONS["vt"]}
    assert set(vt) == {"vmrun", "vmcall"}
    assert vt["vmrun"].privilege is Privilege.PRIVILEGED and vt["vmrun"].nonroot == "exit"
    assert vt["vmcall"].nonroot == "exit" and vt["vmcall"].exit_control is None
    assert not any(d.extension for d in INSTRUCTIONS)
    assert set(ALL_INSTRUCTIONS) == set(INSTRUCTIONS) | set(EXTENSIONS["vt"])
    assert instruction_set("vt") == ALL_INSTRUCTIONS and instruction_set() == INSTRUCTIONS
    with pytest.raises(ValueError, match="no ISA extension"):
        instruction_set("svm")


def test_every_sensitive_instruction_declares_its_non_root_behaviour():
    for d in ALL_INSTRUCTIONS:
        assert (d.nonroot is not None) == d.sensitive, d.mnemonic
    assert {d.mnemonic for d in ALL_INSTRUCTIONS if d.nonroot == "guest-state"} == {
        "iret", "cli", "sti", "pushf", "popf", "sidt", "smsw", "rdcs"}


@pytest.mark.parametrize("definition", EXTENSIONS["vt"], ids=lambda d: d.mnemonic)
def test_vt_instructions_encode_decode_assemble_and_disassemble(definition):
    values = (3,) if definition.operands else ()
    data = encode(definition, values, 0x40)
    assert decode(data, 0x40).definition is definition
    text = f"{definition.mnemonic} r3" if values else definition.mnemonic
    image = assemble_source(text + "\n").image
    assert image.segments[0].data == data
    assert text in disassemble(image)


def test_reference_marks_extension_instructions():
    text = reference.markdown()
    assert "| `0x60` | `vmrun rs` | privileged | vt |" in text
    assert "- Extension: `vt`" in text
    assert "- Non-root mode: VM exit (when exit control `hlt` selects it)" in text
    assert "[vt]" in reference.text_table()


def test_base_analysis_ignores_extension_instructions():
    verdict = popek_goldberg.analyze(ALL_INSTRUCTIONS)
    assert verdict == popek_goldberg.analyze() and not verdict.virtualizable
    assert "vmcall" not in verdict.sensitive


def test_with_the_vt_extension_both_theorems_hold_in_non_root_mode():
    verdict = popek_goldberg.analyze(extension="vt")
    assert verdict.virtualizable and verdict.hybrid_virtualizable
    assert verdict.sensitive_unprivileged == ()
    assert set(verdict.exiting) == {"hlt", "lidt", "mtcr", "mfcr", "invlpg", "in", "out",
                                    "vmrun", "vmcall", "rdpid"}
    assert "popf" in verdict.guest_state and "vmcall" in verdict.sensitive
    assert "holds — virtualizable" in verdict.report()


def test_the_extension_verdict_is_derived_from_the_declarations():
    table = tuple(attrs.evolve(d, nonroot=None) if d.mnemonic == "popf" else d
                  for d in instruction_set("vt"))
    verdict = popek_goldberg.analyze(table, extension="vt")
    assert not verdict.virtualizable
    assert [o.mnemonic for o in verdict.sensitive_unprivileged] == ["popf"]
    assert "neither exit nor act on guest state" in verdict.report()


def test_cli_isa_check_extension_vt_json():
    result = CliRunner().invoke(main, ["isa", "--check", "--extension", "vt", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["extension"] == "vt"
    assert data["virtualizable"] is True and data["hybrid_virtualizable"] is True
    assert data["sensitive_unprivileged"] == []
    base = json.loads(CliRunner().invoke(main, ["isa", "--check", "--json"]).output)
    assert base["virtualizable"] is False and "vmrun" not in base["privileged"]


def test_cli_extension_needs_check_and_a_known_name():
    assert CliRunner().invoke(main, ["isa", "--extension", "vt"]).exit_code == 1
    assert CliRunner().invoke(main, ["isa", "--check", "--extension", "nope"]).exit_code == 1
    rows = json.loads(CliRunner().invoke(main, ["isa", "--json"]).output)
    assert {r["mnemonic"]: r["extension"] for r in rows}["vmcall"] == "vt"
    assert BY_MNEMONIC["vmcall"].opcode == 0x61
