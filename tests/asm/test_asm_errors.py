"""Diagnostics: every error located exactly, all of them reported, rendered like a compiler's."""

from __future__ import annotations

import pytest

from asm_helpers import errors, one_error
from toyvisor.asm import AssemblyError, Diagnostic, assemble_source
from toyvisor.asm import assembler as assembler_module
from toyvisor.isa.errors import ToyvisorError


def test_broken_file_reports_all_three_errors():
    source = (
        "start:  li r1, (2 +\n"      # syntax error
        "        jmp nowhere\n"      # undefined label
        "        addi r1, r2, r3\n"  # bad operand kind
    )
    with pytest.raises(AssemblyError) as info:
        assemble_source(source, "broken.s")
    error = info.value
    assert isinstance(error, ToyvisorError)
    assert [(d.file, d.line, d.column) for d in error.diagnostics] == [
        ("broken.s", 1, 20), ("broken.s", 2, 13), ("broken.s", 3, 22)]
    text = str(error)
    assert "broken.s:1:20: error: unexpected end of line, expected an expression" in text
    assert "broken.s:2:13: error: undefined symbol 'nowhere'" in text
    assert "broken.s:3:22: error: expected an immediate (-32768..32767), found register 'r3'" \
        in text
    assert text.endswith("3 errors generated.")


def test_report_shows_the_line_and_a_caret():
    with pytest.raises(AssemblyError) as info:
        assemble_source("\tnop\n\tmvo r1, r2\n", "x.s")
    assert str(info.value) == (
        "x.s:2:2: error: unknown instruction 'mvo' (did you mean 'mov'?)\n"
        " 2 | \tmvo r1, r2\n"
        "   | \t^\n"
        "1 error generated.")


def test_diagnostic_fields_and_rendering():
    d = Diagnostic("f.s", 3, 5, "boom", "error", "abcdefg")
    assert d.headline() == "f.s:3:5: error: boom"
    assert d.render().splitlines()[1:] == [" 3 | abcdefg", "   |     ^"]
    assert Diagnostic("f.s", 0, 0, "unreadable").render() == "f.s: error: unreadable"


def test_long_lines_are_cut_around_the_caret():
    line = "nop " + "x" * 500 + " $"
    with pytest.raises(AssemblyError) as info:
        assemble_source(line)
    shown = str(info.value).splitlines()
    assert len(shown[1]) < 140 and shown[2].index("^") == shown[1].index("$")


def test_control_characters_are_shown_safely():
    with pytest.raises(AssemblyError) as info:
        assemble_source("nop\x00\x1b[31m")
    text = str(info.value)
    assert "unexpected character U+0000" in text and "\x1b" not in text and "\x00" not in text


@pytest.mark.parametrize("source, expected", [
    ("li r1, 1 +", (1, 11, "unexpected end of line, expected an expression")),
    ("add r1 r2, r3", (1, 8, "unexpected name 'r2', expected an operator, ',' or end of line")),
    ("add r1,, r2", (1, 8, "unexpected ',', expected an operand")),
    ("li r1, $5", (1, 8, "unexpected character '$'")),
    ("li r1, (1", (1, 10, "unexpected end of line, expected ')'")),
    ("li r1, 1)", (1, 9, "unexpected ')', expected ',' or end of line")),
    ('.ascii "abc', (1, 8, "unterminated string")),
    ("li r1, 'ab'", (1, 8, "character literal must contain exactly one character")),
    ("li r1, ''", (1, 8, "empty character literal")),
    ("li r1, 0x", (1, 8, "invalid hexadecimal number '0x'")),
    ("li r1, 0b102", (1, 8, "invalid binary number '0b102'")),
    ("li r1, 12ab", (1, 8, "invalid decimal number '12ab'")),
    ("li r1, 1" + "0" * 400, (1, 8, "number too large (values are limited to 1024 bits)")),
    (".ascii \"a\\qb\"", (1, 10, "bad escape '\\q' in string (use \\n \\t \\r \\0 \\\\ \\' \\\" or "
                                 "\\xHH)")),
    (".ascii \"\\x4\"", (1, 9, "bad escape: \\x needs two hexadecimal digits")),
])
def test_syntax_errors(source, expected):
    assert one_error(source) == expected


def test_unknown_mnemonic_and_directive_suggest_close_matches():
    assert one_error("  pussh r1") == (1, 3, "unknown instruction 'pussh' (did you mean 'push' "
                                             "or 'pushf' or 'pause'?)")
    assert one_error("  .wrod 1") == (1, 3, "unknown directive '.wrod' (did you mean '.word'?)")
    assert one_error("  frobnicate") == (1, 3, "unknown instruction 'frobnicate'")


def test_wrong_operand_count_and_kind():
    assert one_error("add r1, r2") == (1, 1, "'add' takes 3 operands, got 2 (usage: add rd, rs, "
                                             "rt)")
    assert one_error("nop r1") == (1, 5, "'nop' takes 0 operands, got 1 (usage: nop)")
    assert one_error("push r1, r2") == (1, 10, "'push' takes 1 operand, got 2 (usage: push rs)")
    assert one_error("add r1, r2, 3")[:2] == (1, 13)
    assert one_error("ld r1, r2")[2] == ("expected a memory operand like [r1 + 8], found "
                                         "register 'r2'")
    assert one_error("li r1, [r2]")[2] == "expected an immediate, found a memory operand"
    assert one_error('li r1, "s"')[2] == "expected an immediate, found a string"
    assert one_error("mtcr r1, r1")[2].startswith("expected a control register (cr0, cr2, cr3, "
                                                  "ksp0, ksp1, ksp2)")
    assert one_error("jmp r1")[2] == "expected a branch target, found register 'r1'"


@pytest.mark.parametrize("source, column, message", [
    ("addi r1, r1, 40000", 14, "signed 16-bit immediate 40000 (0x9c40) out of range [-32768, 32767]"),
    ("andi r1, r1, -1", 14, "unsigned 16-bit immediate -1 out of range [0, 65535]"),
    ("shli r1, r1, 32", 14, "shift amount 32 (0x20) out of range [0, 31]"),
    ("int 256", 5, "interrupt vector 256 (0x100) out of range [0, 255]"),
    ("out 0x10000, r1", 5, "port number 65536 (0x10000) out of range [0, 65535]"),
    ("li r1, 0x100000000", 8, "32-bit immediate 4294967296 (0x100000000) out of range [-2147483648, "
                              "4294967295]"),
    ("ld r1, [r2 + 0x8000]", 8, "displacement 32768 (0x8000) out of range [-32768, 32767]"),
    ("jmp 2", 5, "branch target 0x2 is not 4-byte aligned"),
    (".org 0x100000\nx: jmp 0", 8, "branch offset (words) -262145 (-0x40001) out of range [-32768, 32767] "
                                   "(target 0x0 is too far from 0x100000; use jmpr/callr)"),
])
def test_values_out_of_range(source, column, message):
    line = source.count("\n") + 1
    assert one_error(source) == (line, column, message)


def test_data_out_of_range():
    assert one_error(".byte 1, 256") == (1, 10, "value 0x100 does not fit in a byte "
                                                "(range -128..0xff)")
    assert one_error(".word 1 << 32")[2].startswith("value 0x100000000 does not fit in a 32-bit")
    assert one_error(".space 2, 300")[2] == ".space fill 0x12c does not fit in a byte"


def test_undefined_symbol_suggests_close_names():
    assert one_error("counter: nop\n jmp countr") == (
        2, 6, "undefined symbol 'countr' (did you mean 'counter'?)")


def test_duplicate_label_names_the_first_definition():
    assert one_error("a: nop\n\n  a: nop") == (
        3, 3, "'a' is already defined (first definition at t.s:1:1)")
    assert one_error("X = 1\nX: nop")[2] == "'X' is already defined (first definition at t.s:1:1)"
    assert one_error("f:\n.l: nop\n.l: nop")[:2] == (3, 1)


def test_names_that_cannot_be_defined():
    assert one_error("r1: nop")[2] == "'r1' is a register name and cannot be a label"
    assert one_error("SP = 3")[2] == "'SP' is a register name and cannot be a constant"
    assert one_error("cr3: nop")[2] == "'cr3' is a register name and cannot be a label"
    assert one_error("PAGE_SIZE = 3")[2].startswith("'PAGE_SIZE' is a predefined platform "
                                                    "constant")
    assert one_error("a.b: nop")[2].startswith("a label name cannot contain '.'")


def test_register_in_an_expression():
    assert one_error("li r1, r2 + 1") == (1, 8, "register 'r2' cannot be used in an expression")


def test_division_by_zero_points_at_the_operator():
    assert one_error("li r1, 4 / (2 - 2)") == (1, 10, "division by zero")
    assert one_error("X = 5 % 0") == (1, 7, "division by zero")


def test_expression_errors():
    assert one_error("X = 1 << -1") == (1, 7, "negative shift count -1")
    assert one_error("X = 1 << 5000")[2].startswith("value too large")
    assert one_error("X = 1 << 1000 << 1000")[2].startswith("value too large")
    assert one_error('X = "s" + 1')[:2] == (1, 5)


def test_circular_constants():
    assert one_error("A = B\nB = C\nC = A + 1")[2] == "circular definition: A -> B -> C -> A"
    assert one_error("A = A")[2] == "circular definition: A -> A"


def test_error_in_a_constant_is_reported_once():
    found = errors("A = 1 / 0\n li r1, A\n li r2, A + 1")
    assert found == [(1, 7, "division by zero")]


def test_layout_directives_need_known_values():
    assert one_error(".space N\nN = 4") == (
        1, 8, "the .space size must be known when it is reached: 'N' is not defined before "
              "this point")
    assert one_error(".org later\nlater: nop")[2].startswith("the .org address must be known")
    assert one_error(".data\n.org .")[2].endswith("the current address is not known yet in the "
                                                  ".data section")


def test_directive_argument_errors():
    assert one_error(".org")[2] == "wrong number of arguments: .org ADDRESS"
    assert one_error(".org 1, 2") == (1, 9, "wrong number of arguments: .org ADDRESS")
    assert one_error(".org -1")[2] == ".org address -0x1 is outside the 32-bit address space"
    assert one_error(".word")[2] == ".word needs at least one value"
    assert one_error('.word "x"')[2] == ".word takes expressions, not a string (use .ascii for " \
                                        "strings)"
    assert one_error(".ascii 5")[2] == ".ascii takes strings"
    assert one_error(".space -4")[2] == ".space size -4 is negative"
    assert one_error(".align 6")[2] == ".align needs a power of two between 1 and 2^31, not 6"
    assert one_error(".equ 5, 5")[2] == ".equ needs a name first: .equ NAME, VALUE"
    assert one_error(".text 5")[2] == ".text takes no arguments"
    assert one_error(".entry 1\n.entry 2")[2] == "the entry point is already set (at t.s:1)"
    assert one_error(".entry -4")[2] == "entry point -4 is outside the 32-bit address space"


def test_overlapping_segments_name_both_locations():
    found = errors(".org 0x100\n .word 1, 2\n\n.org 0x104\n .word 3")
    assert found == [(4, 1, "text 0x00000104-0x00000107 overlaps text 0x00000100-0x00000107 "
                            "(placed at t.s:1)")]
    found = errors(".org 0x1000\n nop\n.data\n.org 0x1000\n .word 1")
    assert found[0][2].startswith("data 0x00001000-0x00001003 overlaps text")


def test_huge_space_is_refused():
    assert one_error(".space 0x10000000")[2].startswith(".space size 0x10000000 is larger than")
    found = errors(".space 0x3000000\n.space 0x3000000\n.space 0x3000000")
    assert found == [(2, 1, "the program is too large (more than 64 MiB)")]


def test_end_of_address_space():
    assert one_error(".org 0xFFFFFFFC\n nop\n nop")[:2] == (3, 2)
    assert one_error(".org 0xFFFFFFFC\n li r1, 1")[2].startswith("this statement goes beyond")


def test_unaligned_instruction():
    assert one_error(".byte 1\n nop") == (2, 2, "instruction at unaligned address 0x1 "
                                                "(instructions must be 4-byte aligned; use "
                                                ".align 4)")


def test_all_errors_are_reported_including_pass_two():
    source = "\n".join(["  bogus1", "  jmp nowhere", "  li r1, 1/0", "x: nop", "x: nop",
                        "  .byte 999", "  addi r1, r1, 99999", "  ???"])
    found = errors(source)
    assert [line for line, _, _ in found] == [1, 2, 3, 5, 6, 7, 8]


def test_invalid_utf8_is_located_and_the_rest_still_checked():
    found = errors(b"nop\n  \xc3\x28 nop\n bogus\n")
    assert found == [(2, 3, "invalid UTF-8 byte 0xc3"), (3, 2, "unknown instruction 'bogus'")]


def test_error_limit(monkeypatch):
    monkeypatch.setattr(assembler_module, "MAX_ERRORS", 10)
    with pytest.raises(AssemblyError) as info:
        assemble_source("\n".join(["bogus"] * 50))
    assert len(info.value.errors) == 10
    assert info.value.diagnostics[-1].message == "too many errors (10), stopping"
