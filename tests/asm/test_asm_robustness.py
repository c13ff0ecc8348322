"""No input, however malformed, makes the assembler fail with anything but AssemblyError."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toyvisor.asm import AssemblyError, assemble_source, listing
from toyvisor.asm import assembler as assembler_module
from toyvisor.testing import strategies


def check(source) -> None:
    """Assemble; success is fine, AssemblyError is fine (and must render), nothing else is."""
    try:
        assembly = assemble_source(source, "fuzz.s")
    except AssemblyError as error:
        assert error.diagnostics
        text = str(error)
        assert "fuzz.s" in text
        for diagnostic in error.diagnostics:
            assert diagnostic.line >= 0 and diagnostic.column >= 0
    else:
        listing(assembly)
        assembly.image.to_bytes()


token_soup = strategies.token_soup()


@given(st.text(max_size=300))
def test_random_text(source):
    check(source)


@given(st.binary(max_size=300))
def test_random_bytes(source):
    check(source)


@given(token_soup)
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_token_soup(source):
    check(source)


@given(st.lists(token_soup, min_size=1, max_size=8))
def test_token_soup_with_macros(bodies):
    source = "".join(f".macro m{i} a, b\n{body}\n.endm\n" for i, body in enumerate(bodies))
    source += "\n".join(f"m{i} r1, [sp+4]\nm{i} 1, \"s\"" for i in range(len(bodies)))
    check(source)


@pytest.mark.parametrize("source", [
    "li r1, " + "(" * 20_000 + "1" + ")" * 20_000,
    "li r1, " + "(" * 20_000,
    "li r1, " + "-" * 20_000 + "1",
    "li r1, " + "~-" * 10_000 + "1",
    "li r1, " + "+".join(["1"] * 20_000),
    "li r1, [" * 10_000,
    "x" * 1_000_000,
    "nop ; " + "x" * 1_000_000,
    ".word " + ",".join(["1"] * 20_000),
    "li r1, 9" * 5000,
    "li r1, " + "9" * 100_000,
    "li r1, 0x" + "f" * 100_000,
    "\0" * 10_000,
    "\n" * 100_000,
    "'" * 10_000,
    '"' + "\\" * 10_001,
    ".macro m\n" * 1000,
    ".endm\n" * 1000,
    "\n".join(f"C{i} = C{i + 1} * 2" for i in range(5000)),
    "\n".join(f"C{i} = C{(i + 1) % 5000}" for i in range(5000)),
], ids=lambda source: f"{source[:12]!r}...{len(source)}")
def test_pathological_inputs(source):
    check(source)


def test_invalid_utf8_and_surrogates():
    check(b"\xff\xfe\xfd\n\x80nop\n")
    check("nop \udc80\n")
    check(b"\xef\xbb\xbf" + b"nop")


def test_deep_expression_through_nested_macros():
    source = ".macro m0 x\n .word x\n.endm\n" + "".join(
        f".macro m{i} x\n m{i - 1} ((((x + 1) * 2) - 1) | 0)\n.endm\n" for i in range(1, 60))
    check(source + "m59 1\n")


def test_huge_space_count_does_not_allocate():
    check(".space 1 << 1000")
    check(".space 0xFFFFFFFF\n.space 0xFFFFFFFF")
    check(".org 0xFFFFFFF0\n.space 64")
    check(".data\n.space 0x3FFFFFF\n.text\n.org 0xFFFFF000\n.space 0xFFF")


def test_two_thousand_lines_assemble_with_every_label_resolved():
    # how fast is measured by `toyvisor bench`, never asserted here
    rng = random.Random(7)
    lines = ["start:"]
    for i in range(2000):
        choice = rng.randrange(6)
        lines.append([
            f"f{i}:  addi r{i % 16}, r{(i + 1) % 16}, {i % 300} ; comment {i}",
            f".l{i}: ld r1, [sp + {i % 64 * 4}]",
            f"      li r2, start + {i} * 4",
            "      jnz start",
            f"      .word {i}, {i * 3}, start",
            f"      add r{i % 16}, r{i * 7 % 16}, r{i * 3 % 16}",
        ][choice])
    source = "\n".join(lines)
    assembler_module._cached_parse.cache_clear()
    assembly = assemble_source(source)
    defined = {f"f{i}" for i, line in enumerate(lines[1:]) if line.startswith(f"f{i}:")}
    assert defined and defined <= set(assembly.image.symbols)
    assert len([line for line in assembly.lines if line.address is not None]) >= 2000
