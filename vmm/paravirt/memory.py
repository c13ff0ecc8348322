"""The paravirtual memory model: machine frames, their owners, types and references.

Guest page tables are *real* page tables in machine frames (direct paging, as Xen): the real CPU
walks them.  Safety therefore rests on validating every entry before it is written, with
per-frame bookkeeping (`FrameTable`, one per hypervisor):

- **owner**: the domain a frame belongs to, or None (the VMM's free pool);
- **type** and **type count**: ``page-directory`` (held by pins and by being some domain's base
  pointer), ``page-table`` (held by pins, by every page-directory entry that references it, and by
  every grant mapping inside it), or untyped = ``writable``;
- **mappings**: every validated page-table entry that maps the frame, as ``(table frame, index)
  → writable`` (a reverse map; its size is the frame's reference count).

Invariants kept by every operation (and checked by `FrameTable.check`):

1. a typed frame has no writable mapping anywhere (page tables are read-only to the guest);
2. a present entry of a typed table maps a frame owned by the table's owner, or a frame the
   table's owner holds through a grant mapping;
3. no guest entry has PL 0 (guest kernel pages cannot become ring-0 pages) and no guest request
   writes the directory entries of the VMM hole (`HOLE_PDE`…1023), which the VMM sets itself in
   every page directory: PL 0, read-only, mapping only the VMM's own frames;
4. every machine frame is in exactly one place: a domain's p2m or the free pool (conservation).

A rejected request raises `HypercallError` and changes nothing.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from toyvisor.isa.faults import GuestFault
from toyvisor.isa.spec import (
    PAGE_SHIFT,
    PAGE_SIZE,
    PTE_A,
    PTE_D,
    PTE_FRAME,
    PTE_P,
    PTE_PL_MASK,
    PTE_PL_SHIFT,
    PTE_W,
    VEC_GP,
)

from .abi import (
    EBUSY,
    EFAULT,
    EINVAL,
    ENOMEM,
    EPERM,
    HOLE_PDE,
    PV_VMM_START,
    HypercallError,
)

if TYPE_CHECKING:
    from .domain import Domain

PT, PD = "page-table", "page-directory"
WRITABLE = "writable"
_ENTRY_BITS = PTE_FRAME | PTE_P | PTE_W | PTE_PL_MASK | PTE_A | PTE_D
_u32 = struct.Struct("<I")


def sanitize(value: int) -> int:
    """A guest-supplied entry as the VMM writes it: unknown bits cleared, PL 0 raised to 1."""
    value &= _ENTRY_BITS
    if value & PTE_P and not value & PTE_PL_MASK:
        value |= 1 << PTE_PL_SHIFT
    return value


class FrameTable:
    """Owner, type, type count, pins and mappings of every machine frame (see module doc)."""

    def __init__(self, memory, frames: list[int]) -> None:
        self.memory = memory
        #: frame address → domid; a frame absent here and present in `pool` is free
        self.owner: dict[int, int] = {}
        self.pool: list[int] = sorted(frames)
        self.all_frames = frozenset(frames)
        self.ftype: dict[int, str] = {}
        self.tcount: dict[int, int] = {}
        self.pins: dict[int, int] = {}
        self.maps: dict[int, dict[tuple[int, int], bool]] = {}
        #: (table frame, index) → (mapper domid, handle) of grant mappings
        self.grant_slots: dict[tuple[int, int], tuple[int, int]] = {}

    # -- raw entries -------------------------------------------------------------------------------
    def read(self, table: int, index: int) -> int:
        return _u32.unpack_from(self.memory.data, table + 4 * index)[0]

    def write(self, table: int, index: int, value: int) -> None:
        self.memory.write32(table + 4 * index, value)

    # -- the pool -----------------------------------------------------------------------------------
    def take(self, domid: int, n: int) -> list[int]:
        """`n` frames from the pool (lowest first), zeroed, now owned by `domid`."""
        if n > len(self.pool):
            raise HypercallError(ENOMEM, f"{n} frames wanted, {len(self.pool)} free")
        taken, self.pool = self.pool[:n], self.pool[n:]
        for frame in taken:
            self.owner[frame] = domid
        return taken

    def give_back(self, frame: int) -> None:
        """An owned, untyped, unmapped frame returns (zeroed) to the pool."""
        assert not self.maps.get(frame) and frame not in self.ftype, hex(frame)
        del self.owner[frame]
        self.memory.write(frame, bytes(PAGE_SIZE))
        self.maps.pop(frame, None)
        self.pins.pop(frame, None)
        self.pool.append(frame)
        self.pool.sort()

    def writable_refs(self, frame: int) -> int:
        return sum(self.maps.get(frame, {}).values())

    # -- references --------------------------------------------------------------------------------
    def _add_map(self, dom: Domain, target: int, loc: tuple[int, int], writable: bool) -> None:
        if self.owner.get(target) != dom.domid:
            raise HypercallError(EPERM, f"frame {target:#x} is not the domain's")
        if writable and target in self.ftype:
            raise HypercallError(EPERM, f"writable mapping of {self.ftype[target]} {target:#x}")
        self.maps.setdefault(target, {})[loc] = writable

    def _drop_map(self, target: int, loc: tuple[int, int]) -> None:
        refs = self.maps.get(target)
        if refs is not None:
            refs.pop(loc, None)
            if not refs:
                del self.maps[target]

    def get_type(self, dom: Domain, frame: int, kind: str) -> None:
        """Take a type reference: validate the frame as `kind` the first time."""
        if self.owner.get(frame) != dom.domid:
            raise HypercallError(EPERM, f"frame {frame:#x} is not the domain's")
        current = self.ftype.get(frame)
        if current == kind:
            self.tcount[frame] += 1
            return
        if current is not None:
            raise HypercallError(EBUSY, f"frame {frame:#x} is a {current}")
        if self.writable_refs(frame):
            raise HypercallError(EBUSY, f"frame {frame:#x} is mapped writable")
        if frame in dom.special_frames():
            raise HypercallError(EPERM, f"frame {frame:#x} is start_info/shared_info")
        taken: list[tuple[int, int, int]] = []  # (index, target, kind) to undo on failure
        # typed while being validated, so an entry naming the frame itself is checked against it
        self.ftype[frame] = kind
        self.tcount[frame] = 1
        try:
            if kind == PD:
                for i in range(HOLE_PDE):
                    entry = self.read(frame, i)
                    if entry & PTE_P:
                        if entry != sanitize(entry):
                            raise HypercallError(EINVAL, f"bad directory entry {i}")
                        self.get_type(dom, entry & PTE_FRAME, PT)
                        taken.append((i, entry & PTE_FRAME, 0))
            else:
                for i in range(1024):
                    entry = self.read(frame, i)
                    if entry & PTE_P:
                        if entry != sanitize(entry):
                            raise HypercallError(EINVAL, f"bad table entry {i}")
                        self._add_map(dom, entry & PTE_FRAME, (frame, i), bool(entry & PTE_W))
                        taken.append((i, entry & PTE_FRAME, 1))
        except HypercallError:
            for i, target, is_map in reversed(taken):
                if is_map:
                    self._drop_map(target, (frame, i))
                else:
                    self.put_type(target)
            del self.ftype[frame], self.tcount[frame]
            raise
        if kind == PD:
            dom.install_hole(frame)

    def put_type(self, frame: int) -> None:
        """Drop a type reference; the last one untypes the frame and releases its entries."""
        self.tcount[frame] -= 1
        if self.tcount[frame]:
            return
        kind = self.ftype.pop(frame)
        del self.tcount[frame]
        if kind == PD:
            for i in range(HOLE_PDE):
                entry = self.read(frame, i)
                if entry & PTE_P:
                    self.put_type(entry & PTE_FRAME)
            for i in range(HOLE_PDE, 1024):  # the hole is not the guest's to see as data
                self.write(frame, i, 0)
        else:
            for i in range(1024):
                entry = self.read(frame, i)
                if entry & PTE_P:
                    self._drop_map(entry & PTE_FRAME, (frame, i))

    # -- validated updates -------------------------------------------------------------------------
    def update_entry(self, dom: Domain, ptr: int, value: int) -> None:
        """One ``mmu_update`` request: the entry at machine address `ptr` becomes `value`."""
        if ptr & 3:
            raise HypercallError(EINVAL, "unaligned entry address")
        table, index = ptr & PTE_FRAME, (ptr & 0xFFF) >> 2
        if self.owner.get(table) != dom.domid:
            raise HypercallError(EPERM, f"table {table:#x} is not the domain's")
        kind = self.ftype.get(table)
        if kind is None:
            raise HypercallError(EINVAL, f"frame {table:#x} is not a page table or directory")
        if kind == PD and index >= HOLE_PDE:
            raise HypercallError(EPERM, "the VMM hole")
        if (table, index) in self.grant_slots:
            raise HypercallError(EBUSY, "a grant mapping (unmap it with grant_table_op)")
        new = sanitize(value) if value & PTE_P else 0
        old = self.read(table, index)
        if kind == PD:
            if new & PTE_P:
                self.get_type(dom, new & PTE_FRAME, PT)
            self.write(table, index, new)
            if old & PTE_P:
                self.put_type(old & PTE_FRAME)
        else:
            if new & PTE_P:
                self._add_map(dom, new & PTE_FRAME, (table, index), bool(new & PTE_W))
            if old & PTE_P:
                if not (new & PTE_P and (old & PTE_FRAME) == (new & PTE_FRAME)):
                    self._drop_map(old & PTE_FRAME, (table, index))
            self.write(table, index, new)

    def pte_slot(self, dom: Domain, va: int) -> tuple[int, int]:
        """``(table frame, index)`` of the page-table entry for `va` in the current directory."""
        if va >= PV_VMM_START:
            raise HypercallError(EPERM, "the VMM hole")
        pde = self.read(dom.cr3, va >> 22)
        if not pde & PTE_P:
            raise HypercallError(EFAULT, f"no page table for {va:#010x}")
        return pde & PTE_FRAME, (va >> PAGE_SHIFT) & 0x3FF

    def unmap_all(self, frame: int) -> None:
        """Remove every (own, validated) mapping of `frame`, as the balloon does."""
        for table, index in list(self.maps.get(frame, {})):
            self.write(table, index, 0)
        self.maps.pop(frame, None)

    # -- audit ---------------------------------------------------------------------------------------
    def check(self, domains) -> list[str]:
        """Structural findings (empty when every invariant of the module docstring holds)."""
        found = []
        owned = [f for d in domains for f in d.frames()]
        if len(owned) != len(set(owned)):
            found.append("a machine frame belongs to two pseudo-physical pages")
        if sorted(owned + self.pool) != sorted(self.all_frames):
            found.append(f"frames not conserved: {len(owned)} owned + {len(self.pool)} free "
                         f"!= {len(self.all_frames)}")
        for frame in self.ftype:
            if self.writable_refs(frame):
                found.append(f"typed frame {frame:#x} is mapped writable")
        by_id = {d.domid: d for d in domains}
        for frame, kind in self.ftype.items():
            dom = by_id.get(self.owner.get(frame))
            if dom is None:
                found.append(f"typed frame {frame:#x} has no live owner")
                continue
            found += dom.check_table(frame, kind)
        return found


class P2MMemory:
    """A domain's pseudo-physical memory, ``[0, nr_pages × 4096)``, through its p2m.

    The same interface as `toyvisor.vmm.vm.GuestPhysicalMemory`: an access to a page with no
    machine frame behind it (or beyond the domain's pages) raises #GP(0)."""

    def __init__(self, host, domain: Domain) -> None:
        self.host = host
        self.domain = domain
        self.on_write = None

    @property
    def size(self) -> int:
        return len(self.domain.p2m) * PAGE_SIZE

    def machine(self, pa: int) -> int:
        p2m = self.domain.p2m
        pfn = pa >> PAGE_SHIFT
        if pa < 0 or pfn >= len(p2m) or p2m[pfn] is None:
            raise GuestFault(VEC_GP, 0)
        return p2m[pfn] | (pa & (PAGE_SIZE - 1))

    def check(self, pa: int, size: int) -> None:
        for page in range(pa >> PAGE_SHIFT, ((pa + max(size, 1) - 1) >> PAGE_SHIFT) + 1):
            self.machine(page << PAGE_SHIFT)

    def read32(self, pa: int) -> int:
        self.check(pa, 4)
        return self.host.read32(self.machine(pa))

    def read8(self, pa: int) -> int:
        return self.host.read8(self.machine(pa))

    def write32(self, pa: int, value: int) -> None:
        self.check(pa, 4)
        self.host.write32(self.machine(pa), value)

    def write8(self, pa: int, value: int) -> None:
        self.host.write8(self.machine(pa), value)

    def _chunks(self, pa: int, size: int):
        end = pa + size
        while pa < end:
            n = min(end, (pa | (PAGE_SIZE - 1)) + 1) - pa
            yield pa, n
            pa += n

    def read(self, pa: int, size: int) -> bytes:
        self.check(pa, size)
        return b"".join(self.host.read(self.machine(a), n) for a, n in self._chunks(pa, size))

    def write(self, pa: int, data: bytes) -> None:
        if not data:
            return
        self.check(pa, len(data))
        offset = 0
        for a, n in self._chunks(pa, len(data)):
            self.host.write(self.machine(a), bytes(data[offset:offset + n]))
            offset += n

    def snapshot(self) -> bytes:
        """Every pseudo-physical page (a page with no frame reads as zeros)."""
        data = self.host.data
        return b"".join(bytes(data[m:m + PAGE_SIZE]) if m is not None else bytes(PAGE_SIZE)
                        for m in self.domain.p2m)

    def restore(self, data: bytes) -> None:
        for pfn, m in enumerate(self.domain.p2m):
            if m is not None:
                self.host.write(m, data[pfn * PAGE_SIZE:(pfn + 1) * PAGE_SIZE])


__all__ = ["PD", "PT", "WRITABLE", "FrameTable", "P2MMemory", "sanitize"]
