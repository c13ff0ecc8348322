"""The listing: address, bytes and source of every statement."""

from __future__ import annotations

from toyvisor.asm import assemble_source, listing
from toyvisor.asm.listing import format_listing_lines

SOURCE = """\
N = 2
start:  li   r1, N
.macro twice
        nop
        nop
.endm
        twice
        .data
msg:    .ascii "0123456789abcdefghijklmnopqrstuvwxyz"
"""


def test_listing_lines():
    text = listing(assemble_source(SOURCE, "p.s"))
    assert text.splitlines() == [
        "                             p.s:1  N = 2",
        "00000000  00001003 02000000  p.s:2  start:  li   r1, N",
        "                             p.s:7  twice",
        "00000008  00000001           p.s:4  > nop",
        "0000000c  00000001           p.s:5  > nop",
        "                             p.s:8  .data",
        "00001000  30313233 34353637  p.s:9  msg:    .ascii \"0123456789abcdefghijklmnopqrstuvwxyz\"",
        "00001008  38396162 63646566",
        "00001010  6768696a 6b6c6d6e",
        "00001018  6f707172 73747576",
        "          ... (36 bytes in all)",
    ]


def test_listing_records():
    assembly = assemble_source(SOURCE, "p.s")
    line = assembly.lines[1]
    assert (line.address, line.file, line.line, line.text) == (0, "p.s", 2, "start:  li   r1, N")
    assert line.data == assembly.image.segments[0].data[:8]
    assert assembly.lines[3].macro_depth == 1


def test_empty_listing():
    assert listing(assemble_source("")) == ""
    assert format_listing_lines([]) == []
