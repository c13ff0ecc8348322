"""The instruction table and everything derived from it directly (encoding, decoding, docs)."""

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from toyvisor.isa import codegen, reference
from toyvisor.isa.encoding import (
    DecodeError,
    OperandError,
    decode,
    decode_word,
    encode,
    format_instruction,
)
from toyvisor.isa.spec import PLATFORM_SYMBOLS, Privilege
from toyvisor.isa.table import BY_MNEMONIC, BY_OPCODE, INSTRUCTIONS
from toyvisor.testing import strategies

REPO = Path(__file__).resolve().parents[2]


def test_table_has_the_issue_s_required_instruction_families():
    for mnemonic in ["add", "ld", "st", "jmp", "call", "ret", "push", "pop", "xchg", "cmp",
                     "hlt", "cli", "sti", "lidt", "mtcr", "mfcr", "invlpg", "in", "out", "iret",
                     "int", "brk", "pushf", "popf", "sidt", "smsw", "rdcs"]:
        assert mnemonic in BY_MNEMONIC


def test_privilege_classes_match_the_seeds():
    privileged = {d.mnemonic for d in INSTRUCTIONS if d.privilege is Privilege.PRIVILEGED}
    sensitive = {d.mnemonic for d in INSTRUCTIONS if d.privilege is Privilege.SENSITIVE}
    assert privileged == {"iret", "hlt", "cli", "sti", "lidt", "mtcr", "mfcr", "invlpg", "in",
                          "out"}
    # rdpid, the multiprocessor's CPU identity, joins the seeds' five: under a VMM it must show
    # the virtual CPU, yet it does not trap
    assert sensitive == {"pushf", "popf", "sidt", "smsw", "rdcs", "rdpid"}
    assert all(BY_MNEMONIC[m].group for m in sensitive)


def test_opcode_zero_is_invalid_so_zeroed_memory_faults():
    assert 0 not in BY_OPCODE
    with pytest.raises(DecodeError):
        decode(bytes(4))


@given(strategies.instructions())
def test_encode_decode_round_trip(case):
    definition, pc, values = case
    data = encode(definition, values, pc)
    assert len(data) == definition.length
    decoded = decode(data, pc)
    assert decoded.definition is definition
    assert decoded.values == values
    assert decoded.raw == data
    assert encode(definition, decoded.values, pc) == data


@given(st.integers(0, 0xFFFFFFFF), st.integers(0, 0xFFFFFFFF))
def test_every_word_decodes_or_is_rejected_and_decoding_is_canonical(word, ext):
    try:
        decoded = decode_word(word, 0x1000, lambda: ext)
    except DecodeError:
        return
    # Exactly one encoding per instruction: re-encoding reproduces the word.
    assert encode(decoded.definition, decoded.values, 0x1000) == decoded.raw


def test_non_zero_unused_field_is_invalid():
    word = int.from_bytes(encode(BY_MNEMONIC["nop"], ()), "little") | 1
    with pytest.raises(DecodeError, match="unused"):
        decode_word(word, 0)


def test_undefined_control_register_is_invalid():
    word = (BY_MNEMONIC["mtcr"].opcode << 24) | (5 << 20)
    with pytest.raises(DecodeError, match="control register"):
        decode_word(word, 0)


@pytest.mark.parametrize(
    "mnemonic, values, message",
    [
        ("addi", (1, 2, 0x8000), "out of range"),
        ("shli", (1, 2, 32), "out of range"),
        ("int", (256,), "out of range"),
        ("add", (1, 2), "takes 3 operand"),
        ("mov", (16, 1), "register"),
        ("jmp", (0x1002,), "aligned"),
        ("jmp", (0x100000,), "too far"),
        ("mtcr", (1, 2), "control register"),
    ],
)
def test_encode_rejects_bad_operands(mnemonic, values, message):
    with pytest.raises(OperandError, match=message):
        encode(BY_MNEMONIC[mnemonic], values, 0)


def test_format_instruction_uses_symbols_for_targets():
    data = encode(BY_MNEMONIC["call"], (0x40,), 0x10)
    assert format_instruction(decode(data, 0x10), {0x40: "puts"}) == "call puts"
    assert format_instruction(decode(data, 0x10)) == "call 0x40"


def test_every_instruction_has_a_compiled_handler_factory():
    for d in INSTRUCTIONS:
        factory = codegen.FACTORIES[d.opcode]
        assert factory.__code__.co_varnames[: len(codegen.field_names(d)) + 2] == (
            *codegen.field_names(d), "pc", "npc")


def test_privileged_handlers_check_cpl_first():
    for d in INSTRUCTIONS:
        body = codegen.body_source(d)
        assert body.startswith(codegen.PRIVILEGE_CHECK) == d.privileged


def test_platform_symbols_are_integers_with_documented_names():
    assert PLATFORM_SYMBOLS["VEC_PF"] == 14
    assert PLATFORM_SYMBOLS["PTE_PL3"] == 12
    assert PLATFORM_SYMBOLS["GATE_DPL3"] == 6
    assert all(isinstance(v, int) for v in PLATFORM_SYMBOLS.values())


def test_checked_in_isa_reference_is_up_to_date():
    checked_in = (REPO / "docs" / "isa-reference.md").read_text(encoding="utf-8")
    assert checked_in == reference.markdown(), (
        "docs/isa-reference.md is stale: regenerate with `toyvisor isa --markdown > "
        "docs/isa-reference.md`"
    )


def test_popek_goldberg_base_isa_is_not_virtualizable_and_names_the_offenders():
    from toyvisor.isa import popek_goldberg

    verdict = popek_goldberg.analyze()
    assert not verdict.virtualizable and not verdict.hybrid_virtualizable
    names = [o.mnemonic for o in verdict.sensitive_unprivileged]
    assert names == ["pushf", "popf", "sidt", "smsw", "rdcs", "rdpid"]
    assert set(verdict.privileged) <= set(verdict.sensitive)
    assert "popf" in verdict.report() and "sensitive-register" in verdict.report()


def test_popek_goldberg_holds_for_a_table_without_sensitive_unprivileged_instructions():
    from toyvisor.isa import popek_goldberg

    trapping_only = tuple(d for d in INSTRUCTIONS if d.privilege is not Privilege.SENSITIVE)
    verdict = popek_goldberg.analyze(trapping_only)
    assert verdict.virtualizable and verdict.hybrid_virtualizable
