"""What a user program can reach: the kernel frames its live page tables map at ring 3.

The search of `toyvisor.testing.check` finds an escape only when a generated program happens to
touch it.  A mapping does not need to be found by chance: when the kernel enters ring 3 (`iret`
to CPL 3, the only way there), the machine's own state says which frames the kernel uses and
which of them ring 3 can touch.  At every ring-3 entry whose state is new, `Survey` collects

- the kernel's frames (`kernel_frames`): the pages of its image segments outside the declared
  ``user_memory_*`` ranges, the frames of the interrupt table (from ``idtr``), the page
  directory (``cr3``) and every page table it points at, the ring stacks (``ksp0``..``ksp2``) and
  the disk's DMA buffer (outside the user ranges);
- every user-accessible mapping of the address space at ``cr3`` (`user_mappings`: present at
  both levels with privilege limit 3, writable when both levels are);

and each mapping of a kernel frame is an `Exposure`: linear address, frame, what the frame holds,
read or write.  Nothing here depends on the kernel's symbol names; they only label the frames.
The walk reads RAM directly, so it neither sets accessed bits nor trips an audit hook.
"""

from __future__ import annotations

import struct

import attrs

from toyvisor.isa.spec import (
    CR0_PG,
    GATE_DPL_SHIFT,
    GATE_P,
    GATE_SIZE,
    NUM_VECTORS,
    PAGE_MASK,
    PAGE_SHIFT,
    PAGE_SIZE,
    PTE_FRAME,
    PTE_P,
    PTE_PL_SHIFT,
    PTE_W,
    SECTOR_SIZE,
)
from toyvisor.tools.guest import Guest

_U32 = struct.Struct("<I")
_ENTRIES = PAGE_SIZE // 4


@attrs.frozen
class Exposure:
    """A kernel frame that ring 3 can reach: where (linear), which frame, what it holds, how."""

    va: int
    frame: int
    holds: str
    access: str  # "read" or "write"
    cr3: int

    def __str__(self) -> str:
        return (f"{self.access:<5} linear {self.va:#010x} -> frame {self.frame:#010x}: "
                f"{self.holds}")

    def to_dict(self) -> dict:
        return attrs.asdict(self)


def _read32(memory, pa: int) -> int:
    return _U32.unpack_from(memory.data, pa)[0]


def supervisor_translate(memory, cr3: int, paging: bool, va: int) -> int | None:
    """The physical address of `va` for the kernel (ring 0), or None when it is not mapped;
    no side effects (no A/D bits, no audit)."""
    if not paging:
        return va if 0 <= va < memory.size else None
    pde_address = (cr3 & PTE_FRAME) | ((va >> 22) << 2)
    if pde_address + 4 > memory.size:
        return None
    pde = _read32(memory, pde_address)
    if not pde & PTE_P:
        return None
    pte_address = (pde & PTE_FRAME) | (((va >> PAGE_SHIFT) & 0x3FF) << 2)
    if pte_address + 4 > memory.size:
        return None
    pte = _read32(memory, pte_address)
    if not pte & PTE_P or (pte & PTE_FRAME) >= memory.size:
        return None
    return (pte & PTE_FRAME) | (va & PAGE_MASK)


def page_tables(memory, cr3: int) -> dict[int, str]:
    """Frame → description for the page directory at `cr3` and every page table it points at."""
    directory = cr3 & PTE_FRAME
    if directory + PAGE_SIZE > memory.size:
        return {}
    found = {directory: "the page directory (cr3)"}
    for index in range(_ENTRIES):
        pde = _read32(memory, directory + 4 * index)
        table = pde & PTE_FRAME
        if pde & PTE_P and table + PAGE_SIZE <= memory.size and table not in found:
            found[table] = (f"the page table of linear {index << 22:#010x}-"
                            f"{((index + 1) << 22) - 1:#010x}")
    return found


def user_mappings(memory, cr3: int):
    """``(va, frame, writable)`` for every page ring 3 may touch in the address space at `cr3`."""
    directory = cr3 & PTE_FRAME
    if directory + PAGE_SIZE > memory.size:
        return
    data = memory.data
    for index in range(_ENTRIES):
        pde = _U32.unpack_from(data, directory + 4 * index)[0]
        if not pde & PTE_P or (pde >> PTE_PL_SHIFT) & 3 != 3:
            continue
        table = pde & PTE_FRAME
        if table + PAGE_SIZE > memory.size:
            continue
        for slot, pte in enumerate(struct.unpack_from(f"<{_ENTRIES}I", data, table)):
            if pte & PTE_P and (pte >> PTE_PL_SHIFT) & 3 == 3 \
                    and (pte & PTE_FRAME) < memory.size:
                yield ((index << 22) | (slot << PAGE_SHIFT), pte & PTE_FRAME,
                       bool(pde & pte & PTE_W))


def _inside(ranges, start: int, end: int) -> bool:
    """Whether every byte of ``[start, end)`` lies in one of the ``(name, start, end)`` ranges."""
    position = start
    for _, low, high in sorted(ranges, key=lambda r: r[1]):
        if low <= position < high:
            position = high
        if position >= end:
            return True
    return position >= end


def _frames_of(translate, start: int, size: int):
    """The frames a linear range ``[start, start+size)`` lives in (unmapped pages left out)."""
    page = start & ~PAGE_MASK
    while page < start + size:
        pa = translate(max(page, start))
        if pa is not None:
            yield pa & ~PAGE_MASK
        page += PAGE_SIZE


def user_memory(guest: Guest) -> list[tuple[str, int, int]]:
    """The ``(name, start, end)`` physical ranges the kernel lets ring 3 touch
    (``user_memory_<name>`` / ``user_memory_<name>_end`` symbols)."""
    symbols = guest.image.symbols
    found = []
    for name, start in sorted(symbols.items()):
        if name.startswith("user_memory_") and not name.endswith("_end") \
                and f"{name}_end" in symbols:
            found.append((name[len("user_memory_"):], start, symbols[f"{name}_end"]))
    return found


def kernel_frames(guest: Guest, machine) -> dict[int, str]:
    """Frame → what it holds, for every frame the kernel uses in `machine`'s current state."""
    cpu, memory = machine.cpu, machine.memory
    ranges = user_memory(guest)
    paging = bool(cpu.cr0 & CR0_PG)
    cr3 = cpu.mmu.cr3

    def translate(va):
        return supervisor_translate(memory, cr3, paging, va)

    frames: dict[int, str] = {}

    def add(frame: int, what: str) -> None:
        if 0 <= frame < memory.size and frame not in frames:
            frames[frame] = what

    if paging:
        for frame, what in page_tables(memory, cr3).items():
            add(frame, what)
    if cpu.idtr:
        for frame in _frames_of(translate, cpu.idtr, NUM_VECTORS * GATE_SIZE):
            add(frame, f"the interrupt table (idtr {cpu.idtr:#010x})")
    for ring, top in enumerate(cpu.ksp):
        if top:
            for frame in _frames_of(translate, (top - 5 * 4) & 0xFFFFFFFF, 5 * 4):
                add(frame, f"the ring-{ring} stack (ksp{ring} {top:#010x})")
    for segment in guest.image.segments:
        page = segment.address & ~PAGE_MASK
        while page < segment.end:
            low, high = max(page, segment.address), min(page + PAGE_SIZE, segment.end)
            if not _inside(ranges, low, high):
                add(page, f"kernel {segment.name} (image segment '{segment.name}' at "
                          f"{segment.address:#x})")
            page += PAGE_SIZE
    disk = machine.disk
    if disk.reads or disk.writes or disk.address:
        start = disk.address
        if start + SECTOR_SIZE <= memory.size and not _inside(ranges, start,
                                                                start + SECTOR_SIZE):
            for page in range(start & ~PAGE_MASK, start + SECTOR_SIZE, PAGE_SIZE):
                add(page, f"the disk's DMA buffer ({start:#010x})")
    symbols = _page_symbols(guest)
    return {frame: what + (f"; {symbols[frame]}" if frame in symbols else "")
            for frame, what in frames.items()}


def _page_symbols(guest: Guest) -> dict[int, str]:
    """Page → the kernel's symbols for it (labels only: nothing is decided by names)."""
    found: dict[int, list[str]] = {}
    for name, value in guest.image.symbols.items():
        if isinstance(value, int) and value and value % PAGE_SIZE == 0 \
                and not name.startswith((".", "user_")):
            found.setdefault(value, []).append(name)
    return {page: ", ".join(sorted(names)[:3]) for page, names in found.items()}


def exposures(guest: Guest, machine) -> list[Exposure]:
    """Every user-accessible mapping of a kernel frame in `machine`'s current address space."""
    cpu, memory = machine.cpu, machine.memory
    frames = kernel_frames(guest, machine)
    if not cpu.cr0 & CR0_PG:  # no paging: ring 3 reaches every frame at its own address
        return [Exposure(frame, frame, what + " (paging is off)", "write", 0)
                for frame, what in sorted(frames.items())]
    cr3 = cpu.mmu.cr3
    return [Exposure(va, frame, frames[frame], "write" if writable else "read", cr3)
            for va, frame, writable in user_mappings(memory, cr3) if frame in frames]


def user_vectors(machine) -> set[int]:
    """The vectors ring 3 may raise with ``int n`` (present gates of DPL 3 in the interrupt
    table at ``idtr``): the kernel's system calls."""
    cpu, memory = machine.cpu, machine.memory
    if not cpu.idtr:
        return set()
    paging, cr3 = bool(cpu.cr0 & CR0_PG), cpu.mmu.cr3
    found = set()
    for vector in range(NUM_VECTORS):
        pa = supervisor_translate(memory, cr3, paging, cpu.idtr + vector * GATE_SIZE + 4)
        if pa is not None and pa + 4 <= memory.size:
            word = _read32(memory, pa)
            if word & GATE_P and (word >> GATE_DPL_SHIFT) & 3 == 3:
                found.add(vector)
    return found


class Survey:
    """Watches a native machine's ring-3 entries and collects every `Exposure` (deduplicated by
    linear address, frame and access) and the registers at the first entry.

    ``Survey(guest, machine)`` hooks ``machine.cpu.iret``; run the machine afterwards.
    """

    def __init__(self, guest: Guest, machine) -> None:
        self.guest = guest
        self.machine = machine
        self.exposures: list[Exposure] = []
        self.page_table_frames: set[int] = set()
        self.frames: dict[int, str] = {}
        self.entry_registers: tuple[int, ...] | None = None
        #: vectors ring 3 may raise with ``int n`` at some entry (`user_vectors`)
        self.vectors: set[int] = set()
        self.entries = 0
        self._seen: set = set()
        self._states: set = set()
        cpu = machine.cpu
        iret = cpu.iret

        def surveying_iret():
            iret()
            if cpu.cpl == 3:
                self._entered()

        cpu.iret = surveying_iret

    def _state(self):
        """What the walk depends on: registers naming kernel frames and the tables' bytes."""
        cpu, memory = self.machine.cpu, self.machine.memory
        paging = bool(cpu.cr0 & CR0_PG)
        tables = b""
        if paging:
            tables = b"".join(bytes(memory.data[f:f + PAGE_SIZE])
                              for f in sorted(page_tables(memory, cpu.mmu.cr3)))
        disk = self.machine.disk
        return (paging, cpu.mmu.cr3, cpu.idtr, tuple(cpu.ksp), disk.address,
                bool(disk.reads or disk.writes), hash(tables))

    def _entered(self) -> None:
        cpu = self.machine.cpu
        self.entries += 1
        if self.entry_registers is None:
            self.entry_registers = tuple(cpu.regs)
        state = self._state()
        if state in self._states:
            return
        self._states.add(state)
        if cpu.cr0 & CR0_PG:
            self.page_table_frames |= set(page_tables(self.machine.memory, cpu.mmu.cr3))
        self.vectors |= user_vectors(self.machine)
        for frame, what in kernel_frames(self.guest, self.machine).items():
            self.frames.setdefault(frame, what)
        for exposure in exposures(self.guest, self.machine):
            key = (exposure.va, exposure.frame, exposure.access)
            if key not in self._seen:
                self._seen.add(key)
                self.exposures.append(exposure)


def survey(guest: Guest, *, max_steps: int | None = None) -> Survey:
    """Run `guest` natively and `Survey` every ring-3 entry."""
    from toyvisor.vmm.strategies.native import boot_native

    machine = boot_native(guest)
    found = Survey(guest, machine)
    machine.run(max_steps=guest.max_steps if max_steps is None else max_steps)
    return found


__all__ = ["Exposure", "Survey", "exposures", "kernel_frames", "page_tables",
           "supervisor_translate", "survey", "user_mappings", "user_memory", "user_vectors"]
