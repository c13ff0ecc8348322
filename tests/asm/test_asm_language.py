"""The assembly language: statements, operands, expressions, labels and directives."""

from __future__ import annotations

import pytest

from asm_helpers import code, image, insn, one_error, words
from toyvisor.asm import assemble_source
from toyvisor.isa.spec import CONTROL_REGISTERS, PLATFORM_SYMBOLS, SP


# --- statements and operands ------------------------------------------------------------------


def test_every_operand_kind():
    data = code("""
        add   r1, r2, r3
        addi  r1, sp, -5
        andi  r1, r1, 0xFFFF
        shli  r1, r1, 31
        int   255
        in    r4, PORT_CONSOLE_DATA
        ld    r1, [sp + 8]
        st    [r2 - 4], r3
        ldb   r5, [r6]
        li    r7, 0xDEADBEEF
        mtcr  cr3, r1
        mfcr  r2, ksp0
    l:  jmp   l
    """)
    expected = b"".join([
        insn("add", 1, 2, 3),
        insn("addi", 1, SP, -5),
        insn("andi", 1, 1, 0xFFFF),
        insn("shli", 1, 1, 31),
        insn("int", 255),
        insn("in", 4, PLATFORM_SYMBOLS["PORT_CONSOLE_DATA"]),
        insn("ld", 1, (SP, 8)),
        insn("st", (2, -4), 3),
        insn("ldb", 5, (6, 0)),
        insn("li", 7, 0xDEADBEEF),
        insn("mtcr", CONTROL_REGISTERS["cr3"], 1),
        insn("mfcr", 2, CONTROL_REGISTERS["ksp0"]),
        insn("jmp", 52, pc=52),
    ])
    assert data == expected


def test_case_insensitive_mnemonics_registers_directives_but_not_symbols():
    assert code("ADD R1, Sp, r2\n.WORD 1") == insn("add", 1, SP, 2) + b"\1\0\0\0"
    assert one_error("Foo: nop\n jmp foo")[2].startswith("undefined symbol 'foo'")


def test_aliases_come_from_the_table():
    assert code("la r1, 5") == code("li r1, 5")
    assert code("l: je l") == code("l: jz l")


def test_memory_operand_forms():
    assert code("ld r1, [r2 + 4 - 2]") == insn("ld", 1, (2, 2))
    assert code("ld r1, [4 + r2]") == insn("ld", 1, (2, 4))
    assert code("ld r1, [r2 - -3]") == insn("ld", 1, (2, 3))
    assert code("N = 8\n ld r1, [sp + N*2]") == insn("ld", 1, (SP, 16))
    assert one_error("ld r1, [r2 + r3]")[2].startswith("a memory operand needs one base")
    assert one_error("ld r1, [4]")[2].startswith("a memory operand needs one base")
    assert one_error("ld r1, [-r2]")[2] == "the base register cannot be subtracted"


def test_comments_blank_lines_crlf_and_bom():
    assert code("\ufeff; comment\r\n\r\n  nop ; trailing\r\n\t\tnop\n") == insn("nop") * 2


def test_several_labels_on_one_line():
    img = image("a: b: nop")
    assert img.symbols["a"] == img.symbols["b"] == 0


# --- expressions ------------------------------------------------------------------------------


@pytest.mark.parametrize("expression, value", [
    ("1 + 2 * 3", 7),
    ("(1 + 2) * 3", 9),
    ("1 | 2 ^ 3 & 4", 1 | (2 ^ (3 & 4))),
    ("1 << 2 + 1", 8),
    ("2 + 3 << 1", 10),
    ("0xF0 >> 4 & 3", 3),
    ("6 & 3 | 8", 10),
    ("10 - 4 - 3", 3),
    ("64 / 4 / 2", 8),
    ("-7 / 2", -3),
    ("7 / -2", -3),
    ("-7 % 3", -1),
    ("7 % -3", 1),
    ("~0 & 0xFF", 255),
    ("-(-3)", 3),
    ("+5", 5),
    ("- - 5", 5),
    ("0b1010 + 0o17 + 0X10", 10 + 15 + 16),
    ("'a'", 97),
    ("'\\n' + '\\0' + '\\\\' + '\\'' + '\\x41'", 10 + 0 + 92 + 39 + 0x41),
    ("'\\t' + '\\r' + '\\\"'", 9 + 13 + 34),
    ("0xFFFFFFFF + 1 - 1", 0xFFFFFFFF),
    ("1 << 40 >> 40", 1),
    ("PAGE_SIZE * 2", 8192),
    ("((((((((1))))))))", 1),
])
def test_expression_values(expression, value):
    img = image(f"X = {expression}")
    assert img.symbols["X"] == value


def test_here_is_the_address_of_the_current_statement():
    assert words(code(".org 0x100\n .word ., ., .\n .word .")) == [0x100] * 3 + [0x10C]


def test_label_arithmetic_and_forward_references():
    data = code("""
    start:  li   r1, end - start
            li   r2, table + 4 * 2
            jmp  end
    table:  .word end, table, 0
    end:
    """)
    assert words(data)[1] == 32 and words(data)[3] == 20 + 8
    assert words(data)[5:8] == [32, 20, 0]


def test_constants_may_refer_forward_and_to_each_other():
    img = image("A = B * 2\nB = C + 1\nC = end\n nop\nend:\n .equ D, A - 1")
    assert dict(img.symbols) == {"A": 10, "B": 5, "C": 4, "end": 4, "D": 9}


def test_long_chain_of_constants_does_not_recurse():
    chain = "\n".join(f"C{i} = C{i + 1} + 1" for i in range(3000)) + "\nC3000 = 0"
    assert image(chain).symbols["C0"] == 3000


def test_platform_symbols_are_predefined():
    img = image("li r1, FLAG_IF | PTE_P | PTE_W | PTE_PL3 | GATE_P | CR0_PG | VEC_PF")
    value = (PLATFORM_SYMBOLS["FLAG_IF"] | PLATFORM_SYMBOLS["PTE_P"] | PLATFORM_SYMBOLS["PTE_W"]
             | PLATFORM_SYMBOLS["PTE_PL3"] | PLATFORM_SYMBOLS["GATE_P"]
             | PLATFORM_SYMBOLS["CR0_PG"] | PLATFORM_SYMBOLS["VEC_PF"])
    assert img.segments[0].data == insn("li", 1, value)


# --- labels -------------------------------------------------------------------------------------


def test_local_labels_are_scoped_to_the_previous_global_label():
    img = image("""
    f:  nop
    .loop: jmp .loop
    g:  nop
    .loop: jmp .loop
        jmp f.loop
    """)
    assert img.symbols["f.loop"] == 4 and img.symbols["g.loop"] == 12
    assert img.segments[0].data[4:] == (insn("jmp", 4, pc=4) + insn("nop")
                                        + insn("jmp", 12, pc=12) + insn("jmp", 4, pc=16))


def test_local_label_before_any_global_label():
    assert image(".top: jmp .top").symbols[".top"] == 0


def test_symbols_hold_labels_and_constants():
    img = image("N = 3\nstart: nop\n.x: nop\n .data\nbuf: .space 4")
    assert dict(img.symbols) == {"N": 3, "start": 0, "start.x": 4, "buf": 0x1000}


# --- directives ---------------------------------------------------------------------------------


def test_org_sets_the_location_counter():
    img = image(".org 0x2000\nstart: nop\n.org 0x3000\n nop")
    assert [(s.address, s.data) for s in img.segments] == [(0x2000, insn("nop")),
                                                           (0x3000, insn("nop"))]
    assert img.entry == 0x2000


def test_adjacent_pieces_merge_into_one_segment():
    img = image(".org 0x10\n .word 1\n.org 0x14\n .word 2")
    assert [(s.address, len(s.data)) for s in img.segments] == [(0x10, 8)]


def test_text_and_data_sections():
    img = image("""
        .data
    msg: .asciz "hi"
        .text
    start: li r1, msg
        .data
    more: .byte 7
        .text
        hlt
    """)
    text, data = img.segments
    assert (text.name, text.address) == ("text", 0)
    assert (data.name, data.address) == ("data", 0x1000)
    assert data.data == b"hi\0\x07"
    assert text.data == insn("li", 1, 0x1000) + insn("hlt")
    assert img.symbols["more"] == 0x1003


def test_data_follows_text_aligned_to_4k():
    img = image(".org 0x1ff8\n .word 1, 2, 3\n .data\nd: .word 4")
    assert img.symbols["d"] == 0x3000


def test_data_with_org():
    img = image(".data\n.org 0x8000\nd: .word 4\n.text\n nop")
    assert img.symbols["d"] == 0x8000 and len(img.segments) == 2


def test_word_and_byte():
    assert code(".word 1, -1, 0xFFFFFFFF, -0x80000000") == bytes.fromhex(
        "01000000 ffffffff ffffffff 00000080")
    assert code(".byte 1, -1, 255, -128, 'A'") == bytes([1, 255, 255, 128, 65])


def test_ascii_and_asciz():
    assert code('.ascii "ab\\n\\x00\\"", "c"') == b'ab\n\0"c'
    assert code('.asciz "ab", "c"') == b"ab\0c\0"
    assert code('.ascii "é"') == "é".encode()
    assert code('.ascii ""\n.byte 1') == b"\1"


def test_space_and_fill():
    assert code(".space 3\n.space 2, 0xAA\n.space 0\n.space 1, -1") == b"\0\0\0\xaa\xaa\xff"


def test_align():
    assert code(".byte 1\n.align 4\n.byte 2\n.align 8\n.align 1") == b"\1\0\0\0\2\0\0\0"
    assert image(".align 16").segments == ()  # nothing to pad at address 0


def test_align_in_default_data_section_uses_the_final_address():
    img = image("nop\n.data\n.byte 1\n.align 8192\nx: .byte 2")
    assert img.symbols["x"] % 8192 == 0
    assert img.segments[1].address % 8192 == 0


def test_equ_and_assignment():
    assert dict(image(".equ A, 5\nB = A * 2").symbols) == {"A": 5, "B": 10}


def test_entry():
    assert image("nop\nmain: nop\n.entry main").entry == 4
    assert image(".org 0x40\n nop\nstart: nop").entry == 0x44
    assert image(".org 0x40\n nop").entry == 0x40
    assert image("").entry == 0 and image("").segments == ()


def test_layout_directives_accept_earlier_constants():
    assert code("N = 3\n.space N * 2") == bytes(6)
    assert image("BASE = 0x100\n.org BASE + 4\nx: nop").symbols["x"] == 0x104


def test_instruction_sizes_come_from_the_table():
    img = image("a: li r1, 1\nb: nop\nc:")
    assert (img.symbols["b"], img.symbols["c"]) == (8, 12)


def test_source_map():
    img = image("nop\n  li r1, 2\n.word 5\n.align 16\n.asciz \"x\"", filename="m.s")
    assert [(l.address, l.file, l.line, l.column) for l in img.source_map] == [
        (0, "m.s", 1, 1), (4, "m.s", 2, 3), (12, "m.s", 3, 1), (16, "m.s", 5, 1)]
    assert img.location_of(6).line == 2


def test_assembly_records_the_files_read():
    assert assemble_source("nop", "x.s").files == ("x.s",)
