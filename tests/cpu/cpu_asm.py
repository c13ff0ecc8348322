"""A tiny test-only assembler over `toyvisor.isa.encoding.encode`, so the CPU tests do not depend
on the real assembler.

    image = assemble('''
        start:  li   r1, 5
        loop:   addi r1, r1, -1
                cmpi r1, 0
                jnz  loop
                hlt
    ''')

One statement per line; ``label:`` prefixes; ``;`` comments; operands are registers
(``r0``..``r15``, ``sp``), control registers (``cr0``, ``ksp0``...), memory ``[rX]`` / ``[rX + expr]`` /
``[rX - expr]`` and Python expressions over the labels, the ``consts`` passed in and the platform
symbols (``PORT_CONSOLE_DATA``...).  Directives: ``.org expr``, ``.word e, ...``,
``.space n``, ``.align n``, ``.asciz "text"``.  The entry is the label ``start`` if defined, else
the first address.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import attrs

from toyvisor.cpu import Machine
from toyvisor.isa.encoding import encode
from toyvisor.isa.spec import CONTROL_REGISTERS, PLATFORM_SYMBOLS
from toyvisor.isa.table import BY_MNEMONIC, Kind

#: Multiprocessor programs start with this: CPU 0 starts every other CPU at the label `work`
#: (which the program defines) and falls into it; r8 = the number of CPUs.
START_ALL = """
start:  in   r8, PORT_CPU_COUNT
        li   r1, 1
boot:   cmp  r1, r8
        jge  work
        out  PORT_IPI_DEST, r1
        li   r2, work
        out  PORT_CPU_START, r2
        addi r1, r1, 1
        jmp  boot
"""

_REG = re.compile(r"^(?:r(\d+)|sp)$", re.I)
_MEM = re.compile(r"^\[\s*(\w+)\s*(?:([+-])\s*(.+))?\]$")


@attrs.frozen
class Segment:
    address: int
    data: bytes


@attrs.frozen
class ImageStub:
    entry: int
    segments: tuple[Segment, ...]
    labels: Mapping[str, int]

    def __getitem__(self, label: str) -> int:
        return self.labels[label]


def _split_operands(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch == "," and depth == 0:
            parts.append(current.strip())
            current = ""
            continue
        depth += ch in "[("
        depth -= ch in "])"
        current += ch
    if current.strip():
        parts.append(current.strip())
    return parts


def _reg(text: str) -> int:
    m = _REG.match(text.strip())
    if not m:
        raise ValueError(f"not a register: {text!r}")
    return 15 if m.group(1) is None else int(m.group(1))


def assemble(source: str, consts: Mapping[str, int] | None = None, origin: int = 0) -> ImageStub:
    statements = []  # (address, kind, payload)
    labels: dict[str, int] = {}
    address = origin
    for raw in source.splitlines():
        line = raw.split(";", 1)[0].strip()
        while (m := re.match(r"^([A-Za-z_.][\w.]*):\s*", line)):
            labels[m.group(1)] = address
            line = line[m.end():]
        if not line:
            continue
        head, _, rest = line.partition(" ")
        head = head.lower()
        if head == ".org":
            statements.append((None, "org", rest))
            address = _eval(rest, labels, consts)
            continue
        if head == ".align":
            n = _eval(rest, labels, consts)
            pad = -address % n
            statements.append((address, "bytes", bytes(pad)))
            address += pad
            continue
        if head == ".space":
            n = _eval(rest, labels, consts)
            statements.append((address, "bytes", bytes(n)))
            address += n
            continue
        if head == ".asciz":
            data = rest.strip()[1:-1].encode().decode("unicode_escape").encode("latin-1") + b"\0"
            statements.append((address, "bytes", data))
            address += len(data)
            continue
        if head == ".word":
            items = _split_operands(rest)
            statements.append((address, "words", items))
            address += 4 * len(items)
            continue
        definition = BY_MNEMONIC[head]
        statements.append((address, "insn", (definition, _split_operands(rest))))
        address += definition.length
    chunks: dict[int, bytearray] = {}
    current_start = None
    for addr, kind, payload in statements:
        if kind == "org":
            current_start = None
            continue
        if current_start is None:
            current_start = addr
            chunks[addr] = bytearray()
        chunk = chunks[current_start]
        if kind == "bytes":
            chunk += payload
        elif kind == "words":
            for item in payload:
                chunk += (_eval(item, labels, consts) & 0xFFFFFFFF).to_bytes(4, "little")
        else:
            definition, operands = payload
            values = []
            for op, text in zip(definition.operands, operands):
                if op.kind is Kind.REG:
                    values.append(_reg(text))
                elif op.kind is Kind.CREG:
                    values.append(CONTROL_REGISTERS[text.lower()])
                elif op.kind is Kind.MEM:
                    m = _MEM.match(text)
                    if not m:
                        raise ValueError(f"bad memory operand {text!r}")
                    disp = _eval(m.group(3), labels, consts) if m.group(3) else 0
                    values.append((_reg(m.group(1)), -disp if m.group(2) == "-" else disp))
                else:
                    values.append(_eval(text, labels, consts))
            if len(operands) != len(definition.operands):
                raise ValueError(f"{definition.mnemonic}: wrong operand count in {operands}")
            chunk += encode(definition, tuple(values), addr)
    segments = tuple(Segment(a, bytes(d)) for a, d in chunks.items() if d)
    entry = labels.get("start", segments[0].address if segments else origin)
    return ImageStub(entry, segments, dict(labels))


def _eval(text: str, labels: Mapping[str, int], consts: Mapping[str, int] | None) -> int:
    scope = {**PLATFORM_SYMBOLS, **(consts or {}), **labels}
    value = eval(text, {"__builtins__": {}}, scope)  # noqa: S307 - test helper
    return ord(value) if isinstance(value, str) else int(value)


def boot(source: str, consts: Mapping[str, int] | None = None, **machine_args) -> Machine:
    """A machine with `source` loaded and, for the tests' convenience, sp at the top of RAM
    (at reset it is 0)."""
    machine = Machine(**machine_args)
    machine.load(assemble(source, consts))
    machine.cpu.regs[15] = machine.memory.size
    return machine


def run(source: str, consts: Mapping[str, int] | None = None, max_steps: int = 100_000,
        trace=None, **machine_args):
    """Boot `source` and run it; returns (machine, result)."""
    machine = boot(source, consts, **machine_args)
    return machine, machine.run(max_steps=max_steps, trace=trace)


class TrapRecorder:
    """A monitor that records the first event and stops the CPU there, leaving the state exactly
    as the event found it (an instruction test's view of a trap)."""

    def __init__(self) -> None:
        self.events = []

    def trap(self, cpu, event) -> bool:
        self.events.append(event)
        cpu.stop("trapped")
        return True

    def port_in(self, cpu, port):
        return None

    def port_out(self, cpu, port, value):
        return False

    @property
    def first(self):
        return self.events[0] if self.events else None


def execute(source: str, cpl: int = 0, regs: Mapping[int, int] | None = None, flags: int = 0,
            consts: Mapping[str, int] | None = None, max_steps: int = 10_000, **machine_args):
    """Run `source` at `cpl` until its first trap/exception/interrupt (end programs with `brk`).

    Returns (machine, first event or None).
    """
    machine = boot(source, consts, **{"memory_size": 1 << 16, **machine_args})
    cpu = machine.cpu
    cpu.cpl = cpl
    cpu.flags = flags
    for number, value in (regs or {}).items():
        cpu.regs[number] = value
    recorder = TrapRecorder()
    cpu.monitor = recorder
    machine.run(max_steps=max_steps)
    return machine, recorder.first


def map_pages(memory, directory: int, mappings, pde_flags: int | None = None) -> None:
    """Write a two-level page table at physical `directory` (page tables follow it page by page).

    `mappings` is an iterable of (linear page address, physical page address, pte flags).  Page
    directory entries get `pde_flags` (default P | W | PL3) unless a table already exists.
    """
    from toyvisor.isa.spec import PTE_P, PTE_PL_SHIFT, PTE_W

    if pde_flags is None:
        pde_flags = PTE_P | PTE_W | (3 << PTE_PL_SHIFT)
    tables: dict[int, int] = {}
    next_table = directory + 0x1000
    for va, pa, flags in mappings:
        index = va >> 22
        if index not in tables:
            tables[index] = next_table
            memory.write(next_table, bytes(4096))
            memory.write32(directory + 4 * index, next_table | pde_flags)
            next_table += 0x1000
        memory.write32(tables[index] + 4 * ((va >> 12) & 0x3FF), (pa & ~0xFFF) | flags)


def identity_map(memory, directory: int, size: int, flags: int | None = None) -> None:
    """Map [0, size) to itself with `flags` (default P | W | PL3)."""
    from toyvisor.isa.spec import PTE_P, PTE_PL_SHIFT, PTE_W

    if flags is None:
        flags = PTE_P | PTE_W | (3 << PTE_PL_SHIFT)
    map_pages(memory, directory, ((a, a, flags) for a in range(0, size, 4096)))
