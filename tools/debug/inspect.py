"""Reading a stopped world without disturbing it: memory, page walks, gates, TLBs, source lines.

Every read here goes straight to RAM's bytes: no audit hook fires, no accessed or dirty bit is
set, no TLB entry is filled, so looking at a guest never changes what it does next.
"""

from __future__ import annotations

import bisect
import struct
from pathlib import Path

import attrs

from toyvisor.asm.disasm import disassemble_one, symbol_map
from toyvisor.isa.spec import (
    CR0_PG,
    FLAG_CF,
    FLAG_IF,
    FLAG_OF,
    FLAG_SF,
    FLAG_ZF,
    GATE_DPL_SHIFT,
    GATE_P,
    GATE_RING_SHIFT,
    GATE_SIZE,
    GATE_TRAP,
    M32,
    NUM_VECTORS,
    PAGE_SHIFT,
    PTE_A,
    PTE_D,
    PTE_FRAME,
    PTE_P,
    PTE_PL_SHIFT,
    PTE_W,
    VECTOR_NAMES,
)

from .world import DebugError, View, World

_WORD = struct.Struct("<I")
FLAG_NAMES = ((FLAG_CF, "CF"), (FLAG_ZF, "ZF"), (FLAG_SF, "SF"), (FLAG_OF, "OF"), (FLAG_IF, "IF"))


def flag_text(flags: int) -> str:
    return " ".join(name for bit, name in FLAG_NAMES if flags & bit) or "-"


class PhysicalView:
    """Bytes of one physical address space: host RAM, or a VM's guest-physical memory."""

    def __init__(self, data, base: int, size: int, name: str) -> None:
        self.data, self.base, self.size, self.name = data, base, size, name

    def word(self, pa: int) -> int:
        if pa < 0 or pa + 4 > self.size:
            raise DebugError(f"{self.name} address {pa:#010x} is outside its "
                             f"{self.size:#x} bytes")
        return _WORD.unpack_from(self.data, self.base + pa)[0]

    def read(self, pa: int, size: int) -> bytes:
        if pa < 0 or pa + size > self.size:
            raise DebugError(f"{self.name} range {pa:#010x}+{size:#x} is outside its "
                             f"{self.size:#x} bytes")
        return bytes(self.data[self.base + pa:self.base + pa + size])


@attrs.frozen
class Level:
    """One entry read by a page walk."""

    name: str  # "PDE" or "PTE"
    address: int
    value: int

    @property
    def present(self) -> bool:
        return bool(self.value & PTE_P)

    def describe(self) -> str:
        v = self.value
        if not v & PTE_P:
            return f"{self.name} at {self.address:#010x} = {v:#010x}  not present"
        bits = [f"ring {(v >> PTE_PL_SHIFT) & 3}", "rw" if v & PTE_W else "ro"]
        bits += [name for bit, name in ((PTE_A, "A"), (PTE_D, "D")) if v & bit]
        return (f"{self.name} at {self.address:#010x} = {v:#010x}  frame "
                f"{v & PTE_FRAME:#010x}  {' '.join(bits)}")


@attrs.frozen
class Walk:
    levels: tuple[Level, ...]
    #: the physical address, or None when the walk stops at a non-present entry
    pa: int | None
    ring: int | None = None
    writable: bool | None = None


def walk(memory: PhysicalView, cr3: int, va: int) -> Walk:
    """The two-level walk of docs/machine.md for `va` under the directory at `cr3` (read-only)."""
    pde_address = (cr3 & PTE_FRAME) | ((va >> 22) << 2)
    pde = Level("PDE", pde_address, memory.word(pde_address))
    if not pde.present:
        return Walk((pde,), None)
    pte_address = (pde.value & PTE_FRAME) | (((va >> PAGE_SHIFT) & 0x3FF) << 2)
    pte = Level("PTE", pte_address, memory.word(pte_address))
    if not pte.present:
        return Walk((pde, pte), None)
    ring = min((pde.value >> PTE_PL_SHIFT) & 3, (pte.value >> PTE_PL_SHIFT) & 3)
    return Walk((pde, pte), (pte.value & PTE_FRAME) | (va & 0xFFF), ring,
                bool(pde.value & pte.value & PTE_W))


class Inspector:
    """What the monitor reads from a world: guest memory by virtual address, gates, walks."""

    def __init__(self, world: World) -> None:
        self.world = world
        image = world.guest.image
        self.symbols = symbol_map(image)
        self._names = dict(image.symbols)
        # Labels for <name+offset>: ALL-CAPS names are the guests' constants (offsets, sizes),
        # which would otherwise name small addresses.
        best: dict[int, str] = {}
        for name, value in image.symbols.items():
            if "~" in name or name.isupper() or image.segment_at(value) is None:
                continue
            key = ("." in name, len(name), name)
            if value not in best or key < ("." in best[value], len(best[value]), best[value]):
                best[value] = name
        self._labels = sorted(best.items())
        self._label_addresses = [address for address, _ in self._labels]
        locations = sorted(image.source_map, key=lambda loc: loc.address)
        self._source = {loc.address: loc for loc in locations}
        self._files: dict[str, list[str] | None] = {}

    # -- address spaces ---------------------------------------------------------------------------

    def guest_physical(self) -> PhysicalView:
        world = self.world
        memory = world.memory
        if world.virtual:
            vm = world.vm
            return PhysicalView(memory.data, vm.base, vm.size, "guest-physical")
        return PhysicalView(memory.data, 0, memory.size, "physical")

    def host_physical(self) -> PhysicalView:
        memory = self.world.memory
        return PhysicalView(memory.data, 0, memory.size, "host-physical")

    def translate(self, view: View, va: int) -> int:
        """Guest-physical address of guest-virtual `va` in `view`'s address space."""
        va &= M32
        if not view.cr0 & CR0_PG:
            return va
        result = walk(self.guest_physical(), view.cr3, va)
        if result.pa is None:
            raise DebugError(f"{va:#010x} is not mapped in the guest's address space "
                             f"(cr3 {view.cr3:#010x})")
        return result.pa

    def read_virtual(self, view: View, va: int, size: int) -> bytes:
        out = bytearray()
        memory = self.guest_physical()
        while size > 0:
            chunk = min(size, 0x1000 - (va & 0xFFF))
            out += memory.read(self.translate(view, va), chunk)
            va, size = (va + chunk) & M32, size - chunk
        return bytes(out)

    def word(self, view: View, va: int) -> int:
        return _WORD.unpack(self.read_virtual(view, va, 4))[0]

    # -- names and source -------------------------------------------------------------------------

    def symbol(self, name: str) -> int | None:
        return self._names.get(name)

    def symbol_names(self) -> list[str]:
        return sorted(n for n in self._names if "~" not in n)

    def describe(self, address: int) -> str:
        """``<label+off>`` for an address inside the image's labels, or ''."""
        index = bisect.bisect_right(self._label_addresses, address) - 1
        if index < 0:
            return ""
        base, name = self._labels[index]
        if self.world.guest.image.segment_at(address) is None:
            return ""
        return f"<{name}>" if base == address else f"<{name}+{address - base:#x}>"

    def location(self, address: int):
        return self._source.get(address)

    def line_key(self, address: int) -> tuple[str, int] | None:
        loc = self._source.get(address)
        return (loc.file, loc.line) if loc is not None else None

    def where(self, address: int) -> str:
        loc = self._source.get(address)
        return f"{Path(loc.file).name}:{loc.line}" if loc is not None else ""

    def source_line(self, address: int) -> str:
        loc = self._source.get(address)
        if loc is None:
            return ""
        lines = self._files.get(loc.file, ...)
        if lines is ...:
            try:
                lines = Path(loc.file).read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError:
                lines = None
            self._files[loc.file] = lines
        if lines is None or not 0 < loc.line <= len(lines):
            return ""
        return lines[loc.line - 1].strip()

    def address_of_line(self, spec: str) -> int:
        """The first instruction address of ``file:line`` (the file named as in the source map,
        by its name or any path suffix)."""
        name, _, number = spec.rpartition(":")
        try:
            line = int(number)
        except ValueError:
            raise DebugError(f"'{spec}': expected file:line") from None
        found = sorted(loc.address for loc in self._source.values()
                       if loc.line == line and (loc.file == name or loc.file.endswith("/" + name)))
        if not found:
            raise DebugError(f"no instruction at {spec}")
        return found[0]

    # -- instructions -----------------------------------------------------------------------------

    def instruction(self, view: View, address: int):
        """The `DisassembledLine` at guest-virtual `address`."""
        try:
            data = self.read_virtual(view, address, 8)
        except DebugError:
            data = self.read_virtual(view, address, 4)
        return disassemble_one(data, address, 0, self.symbols)

    def mnemonic(self, view: View, address: int) -> str:
        try:
            return self.instruction(view, address).text.split()[0]
        except DebugError:
            return ""

    # -- tables -----------------------------------------------------------------------------------

    def gates(self, view: View, real: bool = False) -> list[str]:
        """The present gates of the interrupt table the view's idtr (or the real idtr) names."""
        lines = []
        if real:
            idtr = view.real["idtr"]
            memory = self.host_physical()
            read = memory.word
        else:
            idtr = view.idtr
            def read(va):  # noqa: E306 - the guest's table is read at guest-virtual addresses
                return self.word(view, va)
        if not idtr and not real:
            return ["idtr is 0: no interrupt table loaded (every delivery faults)"]
        for vector in range(NUM_VECTORS):
            gate = (idtr + vector * GATE_SIZE) & M32
            try:
                handler, word1 = read(gate), read(gate + 4)
            except DebugError as exc:
                lines.append(f"{vector:3}: unreadable ({exc})")
                break
            if not word1 & GATE_P:
                continue
            name = VECTOR_NAMES.get(vector, "")
            kind = "trap" if word1 & GATE_TRAP else "interrupt"
            target = f"{handler:#010x} {self.describe(handler)}".rstrip() if not real \
                else f"{handler:#010x} (the VMM)"
            lines.append(f"{vector:3} {name:<18} {kind:<9} dpl {(word1 >> GATE_DPL_SHIFT) & 3}  "
                         f"ring {(word1 >> GATE_RING_SHIFT) & 3}  -> {target}")
        return lines or ["no gate is present"]


def tlb_lines(tlb: dict) -> list[str]:
    """A TLB's entries: page → frame, ring, write permission (an MMU's ``tlb`` dict)."""
    if not tlb:
        return ["(empty)"]
    out = []
    for vpn, entry in sorted(tlb.items()):
        frame, ring, write_ok, writable = entry[0], entry[1], entry[2], entry[3]
        access = "rw" if writable else "ro"
        dirty = " D" if write_ok else ""
        out.append(f"{vpn << PAGE_SHIFT:#010x} -> {frame:#010x}  ring {ring}  {access}{dirty}")
    return out


__all__ = ["Inspector", "Level", "PhysicalView", "Walk", "flag_text", "tlb_lines", "walk"]
