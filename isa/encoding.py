"""Encoder, decoder and disassembly text, all derived from the instruction table."""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping

import attrs

from .spec import CONTROL_REGISTER_NAMES, M32, SP
from .table import BY_OPCODE, Instruction, Kind

_U32 = struct.Struct("<I")

_FIELD_SHIFT = {"a": 20, "b": 16}

#: Operand kinds whose value lives in field c, with their (min, max) range.
_IMM_RANGE = {
    Kind.SIMM16: (-0x8000, 0x7FFF),
    Kind.UIMM16: (0, 0xFFFF),
    Kind.SHAMT: (0, 31),
    Kind.IMM8: (0, 0xFF),
    Kind.PORT: (0, 0xFFFF),
}


_IMM_NAME = {
    Kind.SIMM16: "signed 16-bit immediate",
    Kind.UIMM16: "unsigned 16-bit immediate",
    Kind.SHAMT: "shift amount",
    Kind.IMM8: "interrupt vector",
    Kind.PORT: "port number",
}


class OperandError(ValueError):
    """An operand value cannot be encoded; `index` is the operand's position."""

    def __init__(self, index: int, message: str):
        super().__init__(message)
        self.index = index
        self.message = message


class DecodeError(ValueError):
    """The words at an address are not a valid instruction (the CPU raises #UD)."""


@attrs.frozen
class Decoded:
    """One decoded instruction.

    `fields` maps each semantic name (operand names, with ``base``/``disp`` for a memory operand
    and ``target`` as an absolute address) to its value; `values` are the operands in assembly
    order, as `encode` takes them.
    """

    definition: Instruction
    pc: int
    fields: Mapping[str, int]
    values: tuple
    raw: bytes

    @property
    def length(self) -> int:
        return self.definition.length

    @property
    def npc(self) -> int:
        return (self.pc + self.definition.length) & M32


def encode(definition: Instruction, values: tuple, pc: int = 0) -> bytes:
    """Encode an instruction at address `pc`.

    `values` holds one entry per operand: an int for registers, control registers, immediates,
    ports and (absolute) branch targets; a ``(base, disp)`` pair for a memory operand.
    Raises `OperandError` naming the offending operand.
    """
    ops = definition.operands
    if len(values) != len(ops):
        raise OperandError(
            min(len(values), len(ops)),
            f"'{definition.mnemonic}' takes {len(ops)} operand(s), got {len(values)}",
        )
    word = definition.opcode << 24
    ext = None
    for index, (op, value) in enumerate(zip(ops, values)):
        kind = op.kind
        if kind is Kind.REG:
            _check(index, value, 0, 15, "register")
            word |= value << _FIELD_SHIFT.get(op.field, 0)
        elif kind is Kind.CREG:
            if value not in CONTROL_REGISTER_NAMES:
                raise OperandError(index, f"no control register number {value}")
            word |= value << _FIELD_SHIFT[op.field]
        elif kind is Kind.MEM:
            base, disp = value
            _check(index, base, 0, 15, "base register")
            _check(index, disp, -0x8000, 0x7FFF, "displacement")
            word |= (base << 16) | (disp & 0xFFFF)
        elif kind is Kind.REL16:
            offset = value - (pc + definition.length)
            if offset % 4:
                raise OperandError(index, f"branch target {value:#x} is not 4-byte aligned")
            _check(index, offset // 4, -0x8000, 0x7FFF, "branch offset (words)",
                   hint=f"target {value:#x} is too far from {pc:#x}; use jmpr/callr")
            word |= (offset // 4) & 0xFFFF
        elif kind is Kind.IMM32:
            _check(index, value, -0x80000000, M32, "32-bit immediate")
            ext = value & M32
        else:
            low, high = _IMM_RANGE[kind]
            _check(index, value, low, high, _IMM_NAME[kind])
            word |= value & 0xFFFF
    data = _U32.pack(word)
    return data if ext is None else data + _U32.pack(ext)


def _check(index: int, value, low: int, high: int, what: str, hint: str = "") -> None:
    if not isinstance(value, int) or not low <= value <= high:
        shown = f"{value} ({value:#x})" if isinstance(value, int) and abs(value) > 9 else str(value)
        message = f"{what} {shown} out of range [{low}, {high}]"
        raise OperandError(index, message + (f" ({hint})" if hint else ""))


def decode_word(word: int, pc: int, next_word: Callable[[], int] | None = None) -> Decoded:
    """Decode the instruction whose first word is `word`, at address `pc`.

    `next_word` is called only for two-word instructions. Raises `DecodeError` for an unknown
    opcode, non-zero unused fields or an undefined control register.
    """
    definition = BY_OPCODE.get(word >> 24)
    if definition is None:
        raise DecodeError(f"unknown opcode {word >> 24:#04x} at {pc:#010x}")
    a = (word >> 20) & 0xF
    b = (word >> 16) & 0xF
    c = word & 0xFFFF
    used = set()
    fields: dict[str, int] = {}
    values: list = []
    raw = _U32.pack(word)
    for op in definition.operands:
        kind = op.kind
        if kind is Kind.MEM:
            used.update("bc")
            disp = c - 0x10000 if c & 0x8000 else c
            fields["base"], fields["disp"] = b, disp
            values.append((b, disp))
            continue
        if kind is Kind.IMM32:
            if next_word is None:
                raise DecodeError(f"truncated two-word instruction at {pc:#010x}")
            ext = next_word()
            raw += _U32.pack(ext)
            fields[op.name] = ext
            values.append(ext)
            continue
        used.add(op.field)
        value = {"a": a, "b": b, "c": c}[op.field]
        if kind is Kind.REG and value > 15:  # a register in field c leaves 12 bits unused
            raise DecodeError(f"non-zero unused bits in '{definition.mnemonic}' at {pc:#010x}")
        if kind is Kind.CREG and value not in CONTROL_REGISTER_NAMES:
            raise DecodeError(f"undefined control register {value} at {pc:#010x}")
        if kind is Kind.SIMM16:
            value = value - 0x10000 if value & 0x8000 else value
        elif kind is Kind.SHAMT and value > 31 or kind is Kind.IMM8 and value > 0xFF:
            raise DecodeError(f"{kind.value} {value} out of range at {pc:#010x}")
        elif kind is Kind.REL16:
            offset = value - 0x10000 if value & 0x8000 else value
            value = (pc + definition.length + 4 * offset) & M32
        fields[op.name] = value
        values.append(value)
    unused = (a if "a" not in used else 0) | (b if "b" not in used else 0)
    unused |= c if "c" not in used else 0
    if unused:
        raise DecodeError(f"non-zero unused field in '{definition.mnemonic}' at {pc:#010x}")
    return Decoded(definition, pc, fields, tuple(values), raw)


def decode(data: bytes, pc: int = 0, offset: int = 0) -> Decoded:
    """Decode the instruction at `data[offset:]`, located at address `pc`."""
    if len(data) < offset + 4:
        raise DecodeError(f"truncated instruction at {pc:#010x}")
    word = _U32.unpack_from(data, offset)[0]

    def next_word() -> int:
        if len(data) < offset + 8:
            raise DecodeError(f"truncated two-word instruction at {pc:#010x}")
        return _U32.unpack_from(data, offset + 4)[0]

    return decode_word(word, pc, next_word)


def register_name(number: int) -> str:
    return "sp" if number == SP else f"r{number}"


def format_instruction(decoded: Decoded, symbols: Mapping[int, str] | None = None) -> str:
    """Assembly text for a decoded instruction; it re-assembles to the same bytes.

    `symbols` (address → name) names branch targets when given.
    """
    parts = []
    for op, value in zip(decoded.definition.operands, decoded.values):
        kind = op.kind
        if kind is Kind.REG:
            parts.append(register_name(value))
        elif kind is Kind.CREG:
            parts.append(CONTROL_REGISTER_NAMES[value])
        elif kind is Kind.MEM:
            base, disp = value
            sign = "+" if disp >= 0 else "-"
            parts.append(f"[{register_name(base)}{f' {sign} {abs(disp)}' if disp else ''}]")
        elif kind is Kind.REL16:
            parts.append(symbols[value] if symbols and value in symbols else f"{value:#x}")
        elif kind in (Kind.IMM32, Kind.UIMM16, Kind.PORT):
            parts.append(f"{value:#x}")
        else:
            parts.append(str(value))
    text = decoded.definition.mnemonic
    return f"{text} {', '.join(parts)}" if parts else text
