"""The disassembler: images back to assembly source, and one-instruction text for tracers.

`disassemble(image)` produces source that re-assembles to exactly the same segments and entry
point: instructions are written with `toyvisor.isa.encoding.format_instruction` (and kept only if
they encode back to the same bytes), everything else as ``.word``/``.byte`` data.

`disassemble_one` / `disassemble_range` decode raw bytes at an address, naming branch targets
with a symbol map (see `symbol_map`); a tracer uses them to show what the machine executes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import attrs

from toyvisor.isa.encoding import DecodeError, OperandError, decode, encode, format_instruction
from toyvisor.isa.spec import CONTROL_REGISTERS, PLATFORM_SYMBOLS

from .assembler import REGISTERS
from .image import Image

__all__ = ["DisassembledLine", "disassemble", "disassemble_one", "disassemble_range",
           "symbol_map"]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_WORDS_PER_LINE = 4
_BYTES_PER_LINE = 8


@attrs.frozen
class DisassembledLine:
    """One statement: its address, the bytes it covers, and its assembly text."""

    address: int
    data: bytes
    text: str
    is_instruction: bool

    @property
    def size(self) -> int:
        return len(self.data)


def symbol_map(image: Image) -> dict[int, str]:
    """address -> one name for it, for labelling branch targets (global names preferred)."""
    best: dict[int, str] = {}
    for name, value in image.symbols.items():
        if "~" in name or image.segment_at(value) is None:
            continue
        current = best.get(value)
        key = ("." in name, len(name), name)
        if current is None or key < ("." in current, len(current), current):
            best[value] = name
    return best


def disassemble_one(data: bytes, address: int, offset: int = 0,
                    symbols: Mapping[int, str] | None = None) -> DisassembledLine:
    """The statement at `data[offset:]`, located at `address`.

    A valid instruction gives its text; otherwise one ``.word`` (at an aligned address with four
    bytes left) or one ``.byte``.  Never raises for any input.
    """
    remaining = len(data) - offset
    if remaining <= 0:
        raise ValueError("no bytes to disassemble")
    if address % 4 == 0 and remaining >= 4:
        try:
            decoded = decode(data, address, offset)
        except DecodeError:
            decoded = None
        if decoded is not None:
            return DisassembledLine(address, decoded.raw, format_instruction(decoded, symbols),
                                    True)
        word = int.from_bytes(data[offset:offset + 4], "little")
        return DisassembledLine(address, data[offset:offset + 4], f".word {word:#010x}", False)
    return DisassembledLine(address, data[offset:offset + 1], f".byte {data[offset]:#04x}",
                            False)


def disassemble_range(data: bytes, address: int, symbols: Mapping[int, str] | None = None,
                      count: int | None = None) -> list[DisassembledLine]:
    """Disassemble `data` (located at `address`) statement by statement (at most `count`)."""
    out: list[DisassembledLine] = []
    offset = 0
    while offset < len(data) and (count is None or len(out) < count):
        line = disassemble_one(data, address + offset, offset, symbols)
        out.append(line)
        offset += line.size
    return out


def _instruction(data: bytes, address: int, offset: int):
    """The decoded instruction at `offset` if it re-encodes to the same bytes, else None."""
    if address % 4 or len(data) - offset < 4:
        return None
    try:
        decoded = decode(data, address, offset)
        if encode(decoded.definition, decoded.values, address) != decoded.raw:
            return None
    except (DecodeError, OperandError):
        return None
    return decoded


def _statements(name: str, address: int, data: bytes, breaks: set[int]):
    """Split a segment into (address, size, decoded-or-None) statements; data runs stop at
    `breaks` (addresses that should get a label)."""
    code = name != "data"
    out = []
    offset = 0
    while offset < len(data):
        here = address + offset
        decoded = _instruction(data, here, offset) if code else None
        if decoded is not None:
            out.append((here, decoded.length, decoded))
            offset += decoded.length
            continue
        if here % 4 == 0 and len(data) - offset >= 4:
            size, limit = 4, 4 * _WORDS_PER_LINE
            while (size < limit and len(data) - offset - size >= 4 and here + size not in breaks
                   and not (code and _instruction(data, here + size, offset + size))):
                size += 4
        else:
            size = 1
            while (size < _BYTES_PER_LINE and offset + size < len(data)
                   and (here + size) % 4 and here + size not in breaks):
                size += 1
        out.append((here, size, None))
        offset += size
    return out


def _label_candidates(image: Image) -> dict[int, list[str]]:
    """Symbols that can be written back as labels (plain identifiers that mean nothing else)."""
    candidates: dict[int, list[str]] = {}
    for name, value in image.symbols.items():
        if (_IDENTIFIER.fullmatch(name) and name.lower() not in REGISTERS
                and name.lower() not in CONTROL_REGISTERS and name not in PLATFORM_SYMBOLS
                and image.segment_at(value) is not None):
            candidates.setdefault(value, []).append(name)
    return candidates


def disassemble(image: Image, *, labels: bool = True) -> str:
    """Assembly source for `image` that re-assembles to the same segments and entry point.

    With `labels`, the image's symbols that fall on statement boundaries are written as labels
    and used to name branch targets.
    """
    candidates = _label_candidates(image) if labels else {}
    breaks = set(candidates)
    segments = [(s, _statements(s.name, s.address, s.data, breaks)) for s in image.segments
                if s.size]
    boundaries = {address for _, statements in segments for address, _, _ in statements}
    emitted = {address: sorted(names) for address, names in candidates.items()
               if address in boundaries}
    targets = {address: names[0] for address, names in emitted.items()}
    out = [f"; disassembly of a toyvisor image ({len(segments)} segment"
           f"{'s' if len(segments) != 1 else ''}, {image.size} bytes)",
           f"        .entry  {image.entry:#x}"]
    for segment, statements in segments:
        out.append("")
        out.append(f"        {'.data' if segment.name == 'data' else '.text'}")
        out.append(f"        .org    {segment.address:#x}")
        for address, size, decoded in statements:
            for name in emitted.get(address, ()):
                out.append(f"{name}:")
            if decoded is not None:
                text = format_instruction(decoded, targets)
            else:
                offset = address - segment.address
                chunk = segment.data[offset:offset + size]
                if size >= 4 and address % 4 == 0:
                    words = [int.from_bytes(chunk[i:i + 4], "little") for i in range(0, size, 4)]
                    text = ".word   " + ", ".join(f"{w:#010x}" for w in words)
                else:
                    text = ".byte   " + ", ".join(f"{b:#04x}" for b in chunk)
            out.append(f"        {text:<39} ; {address:08x}")
    return "\n".join(out) + "\n"
