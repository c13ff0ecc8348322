"""Macros and .include."""

from __future__ import annotations

import pytest

from asm_helpers import code, errors, image, insn, one_error
from toyvisor.asm import assembler
from toyvisor.asm import AssemblyError, assemble_file, assemble_source, default_include_paths
from toyvisor.isa.spec import SP

# --- macros -------------------------------------------------------------------------------------


def test_macro_parameters_are_substituted():
    data = code("""
    .macro  addk dst, src, k
            addi dst, src, k * 2
    .endm
            addk r1, r2, 3
            addk sp, sp, -4
    """)
    assert data == insn("addi", 1, 2, 6) + insn("addi", SP, SP, -8)


def test_macro_argument_keeps_precedence_of_its_node():
    # The argument is a node, not text: "k * 2" with k = "1 + 1" is (1 + 1) * 2.
    assert code(".macro m k\n .word k * 2\n.endm\n m 1 + 1") == (4).to_bytes(4, "little")


def test_macro_arguments_can_be_memory_operands_and_strings():
    data = code("""
    .macro load dst, where
            ld dst, where
    .endm
    .macro text s
            .asciz s
    .endm
            load r1, [sp + 4]
            text "hi"
    """)
    assert data == insn("ld", 1, (SP, 4)) + b"hi\0"


def test_macro_local_labels_are_unique_per_expansion():
    img = image("""
    .macro spin
    .wait:  jmp .wait
    .endm
    f:      spin
            spin
    .wait:  nop
    """)
    data = img.segments[0].data
    assert data == insn("jmp", 0, pc=0) + insn("jmp", 4, pc=4) + insn("nop")
    assert img.symbols["f.wait"] == 8


def test_macro_can_use_outer_local_labels_and_constants():
    data = code("""
    .macro again
            jmp .top
    .endm
    f:
    .top:   nop
            again
    """)
    assert data == insn("nop") + insn("jmp", 0, pc=4)


def test_nested_macro_use():
    data = code("""
    .macro inc r
            addi r, r, 1
    .endm
    .macro inc2 r
            inc r
            inc r
    .endm
            inc2 r3
    """)
    assert data == insn("addi", 3, 3, 1) * 2


def test_macro_may_define_labels_and_constants_from_arguments():
    img = image("""
    .macro const name, value
            .equ name, value
    .endm
            const SIZE, 16
    """)
    assert img.symbols["SIZE"] == 16


def test_macro_parameters_can_name_labels_and_assignments():
    img = image("""
    .macro entry name, value
    name:   .word value
            name_size = 4
    .endm
            entry first, 1
    """)
    assert img.symbols["first"] == 0 and img.symbols["name_size"] == 4
    img = image(".macro set n, v\n n = v\n.endm\n set A, 5\n set B, A + 1")
    assert (img.symbols["A"], img.symbols["B"]) == (5, 6)


def test_macro_names_are_case_insensitive_like_mnemonics():
    assert code(".macro Twice\n nop\n nop\n.endm\n TWICE") == insn("nop") * 2


def test_recursive_macro_is_an_error():
    found = errors(".macro a\n b\n.endm\n.macro b\n a\n.endm\n a")
    assert len(found) == 1
    line, column, message = found[0]
    assert (line, column) == (5, 2)  # "a" in the body of b
    assert "macro 'a' is used recursively (a -> b -> a)" in message
    assert "in macro 'b' used at t.s:2" in message and "in macro 'a' used at t.s:7" in message


def test_exponential_macro_expansion_is_stopped(monkeypatch):
    monkeypatch.setattr(assembler, "MAX_STATEMENTS", 5000)
    source = ".macro m0\n nop\n.endm\n" + "".join(
        f".macro m{i}\n m{i - 1}\n m{i - 1}\n.endm\n" for i in range(1, 40)) + " m39\n"
    with pytest.raises(AssemblyError) as info:
        assemble_source(source)
    assert "more than 5000 statements after macro expansion" in str(info.value)


def test_macro_errors():
    assert one_error(".macro m a\n.endm\n m")[2] == "macro 'm' takes 1 argument(s) (a), got 0"
    assert one_error(".macro m\n nop")[2].startswith("missing .endm")
    assert one_error(".endm")[2] == ".endm without .macro"
    assert one_error(".macro m\n.macro n\n.endm")[2].startswith("a macro cannot be defined inside")
    assert one_error(".macro add\n.endm")[2].startswith("a macro cannot be named 'add'")
    assert one_error(".macro m r1\n.endm")[2].startswith("'r1' is a register name")
    assert one_error(".macro m a, a\n.endm")[2] == "duplicate macro parameter 'a'"
    line, _, message = one_error(".macro m\n.endm\n.macro m\n.endm")
    assert line == 3 and "already defined (first definition at t.s:1)" in message


def test_error_in_a_macro_argument_points_at_the_use():
    source = ".macro m x\n  addi r1, r1, x\n.endm\n  m undefined_thing"
    line, column, message = one_error(source)
    assert (line, column) == (4, 5) and message.startswith("undefined symbol 'undefined_thing'")


def test_error_in_a_macro_body_names_the_use():
    line, column, message = one_error(".macro m\n  addi r1, r1, 99999\n.endm\n  m")
    assert (line, column) == (2, 16)
    assert "in macro 'm' used at t.s:4" in message


# --- include ------------------------------------------------------------------------------------


def test_include_relative_to_the_including_file(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "defs.s").write_text('N = 7\n.include "more.s"\n')
    (tmp_path / "lib" / "more.s").write_text("M = 8\n")
    (tmp_path / "main.s").write_text('.include "lib/defs.s"\n li r1, N + M\n')
    assembly = assemble_file(tmp_path / "main.s")
    assert assembly.image.segments[0].data == insn("li", 1, 15)
    assert len(assembly.files) == 3


def test_include_path(tmp_path):
    (tmp_path / "inc").mkdir()
    (tmp_path / "inc" / "defs.s").write_text("N = 7\n")
    source = '.include "defs.s"\n .word N'
    with pytest.raises(AssemblyError):
        assemble_source(source, str(tmp_path / "main.s"))
    img = assemble_source(source, str(tmp_path / "main.s"), include_paths=[tmp_path / "inc"])
    assert img.image.segments[0].data == (7).to_bytes(4, "little")


def test_guests_lib_is_always_on_the_include_path():
    paths = default_include_paths()
    assert all(p.name == "lib" and p.parent.name == "guests" for p in paths)


def test_include_not_found(tmp_path):
    line, column, message = one_error('  .include "nope.s"', filename=str(tmp_path / "m.s"))
    assert (line, column) == (1, 12)
    assert message.startswith("cannot find include file 'nope.s' (searched: ")
    assert str(tmp_path) in message


def test_include_recursion(tmp_path):
    (tmp_path / "a.s").write_text('.include "b.s"\n')
    (tmp_path / "b.s").write_text('nop\n.include "a.s"\n')
    with pytest.raises(AssemblyError) as info:
        assemble_file(tmp_path / "a.s")
    (diagnostic,) = info.value.diagnostics
    assert (diagnostic.line, diagnostic.column) == (2, 10)
    assert diagnostic.file.endswith("b.s")
    assert "'a.s' is included recursively (a.s -> b.s -> a.s)" in diagnostic.message


def test_self_include(tmp_path):
    (tmp_path / "a.s").write_text('.include "a.s"\n')
    with pytest.raises(AssemblyError, match="included recursively"):
        assemble_file(tmp_path / "a.s")


MACROS = ".macro two\n push r1\n push r2\n.endm\n"


def test_a_file_that_says_once_is_included_once(tmp_path):
    """A kernel and a library it includes may both include a file of macros."""
    (tmp_path / "regs.s").write_text("  .once\n" + MACROS)
    (tmp_path / "lib.s").write_text('.include "regs.s"\nlib: two\n')
    (tmp_path / "main.s").write_text('.include "regs.s"\n two\n.include "lib.s"\n'
                                     '.include "regs.s"\n')
    assembly = assemble_file(tmp_path / "main.s")
    twice = insn("push", 1) + insn("push", 2)
    assert assembly.image.segments[0].data == twice + twice
    assert assembly.image.symbols["lib"] == len(twice)


def test_without_once_a_second_include_defines_its_macros_again(tmp_path):
    (tmp_path / "regs.s").write_text(MACROS)
    found = errors('.include "regs.s"\n.include "regs.s"\n', filename=str(tmp_path / "m.s"))
    assert [message for _, _, message in found] == [
        f"macro 'two' is already defined (first definition at {tmp_path / 'regs.s'}:1)"]


def test_once_in_the_main_file_is_allowed_and_makes_a_self_include_empty(tmp_path):
    (tmp_path / "a.s").write_text('.once\n nop\n.include "a.s"\n')
    assert assemble_file(tmp_path / "a.s").image.segments[0].data == insn("nop")
    assert code(".once\n nop") == insn("nop")  # a text with no file: nothing to remember


@pytest.mark.parametrize("source, message", [
    ("here: .once", "a label cannot be put on a .once line"),
    (".once 1", ".once takes no arguments"),
    (".macro m\n .once\n.endm\n m", ".once belongs in a file, not in a macro"),
])
def test_once_errors(source, message):
    assert message in one_error(source)[2]


def test_include_errors_are_reported_in_the_included_file(tmp_path):
    (tmp_path / "inc.s").write_text("nop\n bogus\n")
    with pytest.raises(AssemblyError) as info:
        assemble_source('.include "inc.s"\n also_bogus', str(tmp_path / "m.s"))
    found = [(d.file.rsplit("/", 1)[-1], d.line) for d in info.value.diagnostics]
    assert found == [("m.s", 2), ("inc.s", 2)]


def test_include_needs_a_string():
    assert one_error(".include foo")[2].startswith(".include takes one string")


def test_include_of_a_directory_or_binary(tmp_path):
    (tmp_path / "dir.s").mkdir()
    (tmp_path / "bin.s").write_bytes(b"nop\n\xff\xfe\n")
    found = errors('.include "bin.s"', filename=str(tmp_path / "m.s"))
    assert found == [(2, 1, "invalid UTF-8 byte 0xff")]
    found = errors('.include "dir.s"', filename=str(tmp_path / "m.s"))
    assert "cannot find include file" in found[0][2]


def test_missing_main_file(tmp_path):
    with pytest.raises(AssemblyError) as info:
        assemble_file(tmp_path / "missing.s")
    assert "cannot read file" in str(info.value)
