"""Small helpers shared by the assembler tests."""

from __future__ import annotations

import struct

import pytest

from toyvisor.asm import AssemblyError, assemble_source
from toyvisor.isa.table import BY_MNEMONIC
from toyvisor.isa.encoding import encode


def image(source: str, **kw):
    return assemble_source(source, **kw).image


def code(source: str, **kw) -> bytes:
    """The bytes of the single segment the source produces."""
    segments = image(source, **kw).segments
    assert len(segments) == 1, segments
    return segments[0].data


def words(data: bytes) -> list[int]:
    return list(struct.unpack(f"<{len(data) // 4}I", data))


def insn(mnemonic: str, *values, pc: int = 0) -> bytes:
    """Encode one instruction directly with the ISA encoder: ``insn("add", 1, 2, 3)``."""
    return encode(BY_MNEMONIC[mnemonic], tuple(values), pc)


def errors(source: str, filename: str = "t.s", **kw) -> list[tuple[int, int, str]]:
    """(line, column, message) of every error the source produces."""
    with pytest.raises(AssemblyError) as info:
        assemble_source(source, filename, **kw)
    return [(d.line, d.column, d.message) for d in info.value.diagnostics
            if d.severity == "error"]


def one_error(source: str, **kw) -> tuple[int, int, str]:
    found = errors(source, **kw)
    assert len(found) == 1, found
    return found[0]
