"""The disassembler: assemble(disassemble(image)) reproduces the image's bytes and entry."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asm_helpers import insn
from toyvisor.asm import (Image, Segment, assemble_source, disassemble, disassemble_one,
                          disassemble_range, symbol_map)
from toyvisor.isa.encoding import encode
from toyvisor.isa.spec import CONTROL_REGISTERS, M32
from toyvisor.isa.table import INSTRUCTIONS, Instruction, Kind

_SIMPLE = {
    Kind.REG: st.integers(0, 15),
    Kind.CREG: st.sampled_from(sorted(CONTROL_REGISTERS.values())),
    Kind.SIMM16: st.integers(-0x8000, 0x7FFF),
    Kind.UIMM16: st.integers(0, 0xFFFF),
    Kind.SHAMT: st.integers(0, 31),
    Kind.IMM8: st.integers(0, 0xFF),
    Kind.PORT: st.integers(0, 0xFFFF),
    Kind.MEM: st.tuples(st.integers(0, 15), st.integers(-0x8000, 0x7FFF)),
    Kind.IMM32: st.integers(-(2**31), M32),
}


def test_every_operand_kind_has_a_strategy():
    kinds = {op.kind for d in INSTRUCTIONS for op in d.operands}
    assert kinds <= set(_SIMPLE) | {Kind.REL16}


def draw_values(data, definition: Instruction, pc: int) -> tuple:
    values = []
    for op in definition.operands:
        if op.kind is Kind.REL16:
            npc = pc + definition.length
            low = max(-0x8000, -(npc // 4))
            high = min(0x7FFF, (M32 - npc) // 4)
            values.append(npc + 4 * data.draw(st.integers(low, high)))
        else:
            values.append(data.draw(_SIMPLE[op.kind]))
    return tuple(values)


def normalized(image: Image) -> list[tuple[int, bytes]]:
    """The memory contents as merged (address, bytes) runs, whatever the segment boundaries."""
    runs: list[tuple[int, bytes]] = []
    for segment in sorted(image.segments, key=lambda s: s.address):
        if not segment.data:
            continue
        if runs and runs[-1][0] + len(runs[-1][1]) == segment.address:
            runs[-1] = (runs[-1][0], runs[-1][1] + segment.data)
        else:
            runs.append((segment.address, segment.data))
    return runs


def assert_round_trip(image: Image, labels: bool = True) -> Image:
    text = disassemble(image, labels=labels)
    again = assemble_source(text, "<disassembly>").image
    assert normalized(again) == normalized(image), text
    assert again.entry == image.entry
    return again


@given(st.data())
def test_round_trip_over_the_whole_table(data):
    base = data.draw(st.integers(0, (M32 - 128) // 4)) * 4
    definitions = data.draw(st.lists(st.sampled_from(INSTRUCTIONS), min_size=1, max_size=8))
    code, pc = b"", base
    for definition in definitions:
        code += encode(definition, draw_values(data, definition, pc), pc)
        pc += definition.length
    entry = data.draw(st.integers(0, M32))
    image = Image(entry, (Segment("text", base, code),))
    assert_round_trip(image, labels=False)


@pytest.mark.parametrize("definition", INSTRUCTIONS, ids=lambda d: d.mnemonic)
def test_each_instruction_at_its_extremes(definition):
    for pick in (min, max):
        pc = 0x10000
        values = []
        for op in definition.operands:
            if op.kind is Kind.REL16:
                values.append(pc + definition.length + 4 * pick(-0x8000, 0x7FFF))
            elif op.kind is Kind.MEM:
                values.append((pick(0, 15), pick(-0x8000, 0x7FFF)))
            elif op.kind is Kind.CREG:
                values.append(pick(CONTROL_REGISTERS.values()))
            else:
                values.append(_extreme(op.kind, pick))
        code = encode(definition, tuple(values), pc)
        assert_round_trip(Image(pc, (Segment("text", pc, code),)), labels=False)


def _extreme(kind: Kind, pick) -> int:
    ranges = {Kind.REG: (0, 15), Kind.SIMM16: (-0x8000, 0x7FFF), Kind.UIMM16: (0, 0xFFFF),
              Kind.SHAMT: (0, 31), Kind.IMM8: (0, 0xFF), Kind.PORT: (0, 0xFFFF),
              Kind.IMM32: (-(2**31), M32)}
    return pick(ranges[kind])


@given(st.lists(st.tuples(st.sampled_from(["text", "data", "other"]), st.integers(0, M32),
                          st.binary(min_size=1, max_size=48)), max_size=4),
       st.integers(0, M32))
def test_round_trip_of_random_bytes(blobs, entry):
    segments, end = [], 0
    for name, address, data in sorted(blobs, key=lambda b: b[1]):
        if address >= end and address + len(data) <= 2**32:
            segments.append(Segment(name, address, data))
            end = address + len(data)
    assert_round_trip(Image(entry, tuple(segments)))


@given(st.binary(min_size=4, max_size=64).map(lambda b: b[:len(b) // 4 * 4]))
def test_random_words_in_a_code_segment(code):
    assert_round_trip(Image(0, (Segment("text", 0x1000, code),)))


PROGRAM = """
        .entry main
main:   li   sp, 0x9000
        call func
        hlt
func:   addi r1, r1, 1
.loop:  cmpi r1, 10
        jnz  .loop
        ret
N = 5
        .data
msg:    .asciz "hi!"
        .align 4
table:  .word main, func, 0xdeadbeef
        .byte 1, 2, 3
"""


def test_round_trip_of_a_program_keeps_its_labels():
    image = assemble_source(PROGRAM).image
    text = disassemble(image)
    assert "func:" in text and "call func" in text and "jnz 0x" in text  # .loop is not plain
    assert ".data" in text and ".org    0x1000" in text
    again = assert_round_trip(image)
    for name in ("main", "func", "msg", "table"):
        assert again.symbols[name] == image.symbols[name]
    assert [s.name for s in again.segments] == ["text", "data"]


def test_disassembly_without_labels():
    text = disassemble(assemble_source(PROGRAM).image, labels=False)
    assert "func:" not in text and "call 0x" in text


def test_undecodable_words_and_unaligned_bytes():
    image = Image(0, (Segment("text", 0x101, b"\x01\x02\x03" + bytes(4) + insn("nop") + b"\x09"),))
    text = disassemble(image)
    assert ".byte   0x01, 0x02, 0x03" in text and ".word   0x00000000" in text
    assert "nop" in text and ".byte   0x09" in text
    assert_round_trip(image)


def test_wrapping_branch_is_kept_as_data():
    # jmp at 0 with offset -2 words: the target would be -4, which is not an address.
    word = (0x30 << 24) | 0xFFFE
    image = Image(0, (Segment("text", 0, word.to_bytes(4, "little")),))
    assert ".word   0x3000fffe" in disassemble(image)
    assert_round_trip(image)


def test_disassemble_one_and_range_for_tracers():
    image = assemble_source(PROGRAM).image
    symbols = symbol_map(image)
    assert symbols[image.symbols["func"]] == "func"
    text = image.segments[0].data
    lines = disassemble_range(text, 0, symbols)
    assert [l.text for l in lines[:3]] == ["li sp, 0x9000", "call func", "hlt"]
    assert lines[0].size == 8 and lines[0].is_instruction
    assert disassemble_range(text, 0, count=2)[1].text == "call 0x10"
    bad = disassemble_one(b"\0\0\0\0", 0)
    assert (bad.text, bad.is_instruction) == (".word 0x00000000", False)
    assert disassemble_one(b"\x05", 3).text == ".byte 0x05"
    with pytest.raises(ValueError):
        disassemble_one(b"", 0)
