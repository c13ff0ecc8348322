"""The assembly listing: every statement with its address and the bytes it produced.

One line per statement::

    00000000  00f0f003 00900000  boot.s:3   start:  li sp, STACK_TOP
              ...                boot.s:4   .equ N, 4
    00000008  ffff1111           boot.s:5   loop:   addi r1, r1, -1

The columns are the address (blank for statements that occupy no memory and define no label), the
bytes in memory order (hex, grouped by four; longer data continues on following lines, up to
`MAX_LISTED_BYTES`), the file and line, and the source text.  Lines that come from a macro body
are marked with one ``>`` per level of expansion.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from .assembler import Assembly, ListingLine, guests_directory

__all__ = ["listing", "format_listing_lines"]

#: Bytes shown per listing line, and in total per statement.
BYTES_PER_LINE = 8
MAX_LISTED_BYTES = 32
_HEX_WIDTH = BYTES_PER_LINE * 2 + BYTES_PER_LINE // 4 - 1


def _hex(data: bytes) -> str:
    return " ".join(data[i:i + 4].hex() for i in range(0, len(data), 4))


def _shown(file: str) -> str:
    """A bundled library file as ``guests/lib/NAME``: the same text wherever toyvisor is installed
    (its absolute path would make listings differ from one checkout to the next)."""
    bundled = guests_directory().resolve()
    try:
        return str(Path("guests") / Path(file).resolve().relative_to(bundled))
    except ValueError:
        return file


def format_listing_lines(lines: tuple[ListingLine, ...] | list[ListingLine]) -> list[str]:
    """The listing's text lines (without newlines)."""
    lines = [attrs.evolve(line, file=_shown(line.file)) for line in lines]
    width = max((len(f"{line.file}:{line.line}") for line in lines), default=0)
    out = []
    for line in lines:
        address = "" if line.address is None else f"{line.address:08x}"
        shown = line.data[:MAX_LISTED_BYTES]
        marker = "> " * line.macro_depth
        out.append(f"{address:<8}  {_hex(shown[:BYTES_PER_LINE]):<{_HEX_WIDTH}}  "
                   f"{line.file + ':' + str(line.line):<{width}}  {marker}{line.text}".rstrip())
        for start in range(BYTES_PER_LINE, len(shown), BYTES_PER_LINE):
            more = _hex(shown[start:start + BYTES_PER_LINE])
            out.append(f"{line.address + start:08x}  {more}")
        if len(line.data) > MAX_LISTED_BYTES:
            out.append(f"{'':8}  ... ({len(line.data)} bytes in all)")
    return out


def listing(assembly: Assembly) -> str:
    """The listing of an assembled program, as text (ending with a newline if not empty)."""
    lines = format_listing_lines(assembly.lines)
    return "\n".join(lines) + "\n" if lines else ""
