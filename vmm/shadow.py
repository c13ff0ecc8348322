"""Shadow page tables: guest VA → host PA, built by the VMM from the guest's own tables.

While a guest runs, real paging is always on with a table the VMM built in its own region of host
RAM (never mapped into any guest):

- **physmap** (guest paging off): guest-physical ``0 .. size`` → the VM's slice, writable, PL 3,
  built eagerly; anything beyond the guest's RAM is not present, so the VMM sees a real page
  fault where the bare machine raises #GP(0), and reflects the #GP.
- **shadow spaces** (guest paging on): one per guest address space (guest cr3) — and, in the
  ``0/3/3`` ring-compression model, one per *virtual* CPL, because kernel and applications share
  real ring 3 and only the kernel's shadow may map the kernel's pages.  They start empty and are
  filled lazily on real page faults (*hidden* faults): the VMM translates the address through the
  guest's tables with the guest's virtual TLB (`toyvisor.cpu.mmu.MMU` over guest-physical memory,
  so A/D bits and faults are exactly the hardware's) and installs the composed entry.

Entry rules.  Host frame = slice base + guest frame.  Real PL: in ``0/1/3`` guest PL 0–2 → real
PL max(pl, 1), PL 3 → 3 (so guest-kernel pages are unreachable from real ring 3); in ``0/3/3``
everything is PL 3 and the per-CPL space decides what is mapped.  Writable only if the guest's
entry is writable *and already dirty* (a clean page maps read-only, and the first write is a
hidden fault that sets D in the guest's entry, as the hardware would) *and* the guest frame is not
a traced page-table frame.

Coherence (write tracing).  Every guest PDE/PTE word an entry was built from is recorded; the
frames holding such words are *protected*: mapped read-only in every shadow, so a guest store to
them faults (``ptemod``).  The VMM emulates the store and drops exactly the shadow entries built
from the words it changed.  Spaces therefore stay valid across guest cr3 switches (a shadow
cache).  A frame is unprotected again when no shadow entry depends on it any more.  When the VMM's
page-table frames run out, every shadow space is dropped and rebuilt lazily.
"""

from __future__ import annotations

import struct

from toyvisor.isa.spec import PAGE_SHIFT, PAGE_SIZE, PTE_FRAME, PTE_P, PTE_PL_SHIFT, PTE_W

# `VM` in annotations is toyvisor.vmm.vm.VM, this module's user: not imported (not even for
# type checkers), so the VM depends on its pager and not the other way round.

_pack = struct.Struct("<I").pack_into
PHYSMAP = ("physmap",)


class OutOfFrames(Exception):
    """The VMM region has no free page-table frame left."""


class FrameAllocator:
    """Page-sized frames of the VMM region, handed out zeroed."""

    def __init__(self, memory, start: int, end: int) -> None:
        self.memory = memory
        self.free = list(range(end - PAGE_SIZE, start - 1, -PAGE_SIZE))
        #: every frame currently used as a page directory or table (the real walker reads them)
        self.in_use: set[int] = set()

    def alloc(self) -> int:
        if not self.free:
            raise OutOfFrames()
        frame = self.free.pop()
        self.memory.data[frame:frame + PAGE_SIZE] = bytes(PAGE_SIZE)
        self.in_use.add(frame)
        return frame

    def release(self, frame: int) -> None:
        self.in_use.discard(frame)
        self.free.append(frame)


class Space:
    """One shadow address space: a page directory and its tables in the VMM region."""

    def __init__(self, key: tuple, root: int) -> None:
        self.key = key
        self.root = root
        self.tables: dict[int, int] = {}
        #: vpn → (guest frame number, writable, dependency words)
        self.entries: dict[int, tuple[int, bool, tuple[int, ...]]] = {}


class ShadowPager:
    """The shadow page tables of one VM (see the module docstring)."""

    def __init__(self, vm: VM, frames: FrameAllocator, ring_model: str) -> None:
        self.vm = vm
        self.frames = frames
        self.memory = frames.memory
        self.compressed = ring_model == "0/3/3"
        self.spaces: dict[tuple, Space] = {}
        self.deps: dict[int, set[tuple[tuple, int]]] = {}
        self.protected: dict[int, int] = {}
        self.rmap: dict[int, set[tuple[tuple, int]]] = {}
        #: physical CPU number -> [real CPU, shadow key] for every real CPU a vCPU of this VM is
        #: loaded on (`bind`): a shadow entry that changes is invalidated in each of their TLBs
        #: that may hold it — on an SMP VM, the VMM's own TLB shootdown
        self.loaded: dict[int, list] = {}
        #: guest writes that touched a traced (protected) page-table frame (cumulative)
        self.traced_writes = 0
        self.current: tuple | None = None
        #: migration's dirty log (`toyvisor.vmm.migration.dirty`): None, or the guest frames
        #: written since it was last re-armed; while it is set, a frame not in it is mapped
        #: read-only, so that its first write faults into the VMM (`log_write`)
        self.dirty_log: set[int] | None = None
        #: write faults taken only because of the dirty log (cumulative)
        self.log_faults = 0

    # -- which space ------------------------------------------------------------------------------

    def key(self) -> tuple:
        vcpu = self.vm.vcpu
        if not vcpu.cr0 & 1:
            return PHYSMAP
        return (vcpu.cr3 & PTE_FRAME, vcpu.cpl if self.compressed else 0)

    def root(self) -> int:
        """Host physical address of the shadow page directory for the vCPU's current state."""
        vcpu = self.vm.vcpu  # `key`, inline: every VMM entry asks
        key = PHYSMAP if not vcpu.cr0 & 1 else (vcpu.cr3 & PTE_FRAME,
                                                vcpu.cpl if self.compressed else 0)
        space = self.spaces.get(key)
        if space is None:
            space = self._create(key)
        self.current = key
        return space.root

    def load(self, cpu) -> int:
        """`root`, then `bind` to `cpu` (a VMM entry's one call): the root."""
        root = self.root()
        entry = self.loaded.get(cpu.index)
        if entry is None:
            self.loaded[cpu.index] = [cpu, self.current]
        else:
            entry[1] = self.current
        return root

    def bind(self, cpu) -> None:
        """A vCPU of this VM is loaded on real CPU `cpu` with the shadow `root` just returned."""
        entry = self.loaded.get(cpu.index)
        if entry is None:
            self.loaded[cpu.index] = [cpu, self.current]
        else:
            entry[1] = self.current

    def unbind(self, cpu=None) -> None:
        """The vCPU on `cpu` (None: every one) left its real CPU."""
        if cpu is None:
            self.loaded.clear()
        else:
            self.loaded.pop(cpu.index, None)

    def _create(self, key: tuple) -> Space:
        try:
            space = Space(key, self.frames.alloc())
            self.spaces[key] = space
            if key == PHYSMAP:
                self._build_physmap(space)
        except OutOfFrames:
            self.reset()
            space = Space(key, self.frames.alloc())
            self.spaces[key] = space
            if key == PHYSMAP:
                self._build_physmap(space)
        return space

    def _build_physmap(self, space: Space) -> None:
        base, size = self.vm.base, self.vm.size
        data = self.memory.data
        log = self.dirty_log
        for gpa in range(0, size, PAGE_SIZE):
            table = self._table(space, gpa >> 22)
            w = PTE_W if log is None or gpa >> PAGE_SHIFT in log else 0
            _pack(data, table + ((gpa >> PAGE_SHIFT) & 0x3FF) * 4,
                  (base + gpa) | PTE_P | w | (3 << PTE_PL_SHIFT))

    def _table(self, space: Space, pdi: int) -> int:
        table = space.tables.get(pdi)
        if table is None:
            table = self.frames.alloc()
            space.tables[pdi] = table
            _pack(self.memory.data, space.root + pdi * 4,
                  table | PTE_P | PTE_W | (3 << PTE_PL_SHIFT))
        return table

    # -- filling ----------------------------------------------------------------------------------

    def real_pl(self, pl: int) -> int:
        return 3 if self.compressed else max(pl, 1)

    def is_protected(self, gfn: int) -> bool:
        return gfn in self.protected

    def fill(self, va: int, tlb_entry: tuple) -> None:
        """Install the shadow entry for `va` from the guest's translation `tlb_entry`
        (``(frame, pl, write_ok, writable, pte_address)``, the MMU's TLB format)."""
        key = self.key()
        space = self.spaces.get(key)
        if space is None:
            space = self._create(key)
        vpn = va >> PAGE_SHIFT
        try:
            self._table(space, vpn >> 10)
        except OutOfFrames:
            self.reset()
            space = self._create(key)
            self._table(space, vpn >> 10)
        if vpn in space.entries:
            self._drop(space, vpn, invalidate=False)
        frame, pl, write_ok, _writable, pte_address = tlb_entry
        pde_address = (key[0] & PTE_FRAME) | ((va >> 22) << 2)
        words = (pde_address, pte_address)
        for word in words:
            users = self.deps.get(word)
            if users is None:
                users = self.deps[word] = set()
                self._protect(word >> PAGE_SHIFT)
            users.add((key, vpn))
        gfn = frame >> PAGE_SHIFT
        log = self.dirty_log
        writable = write_ok and gfn not in self.protected and (log is None or gfn in log)
        space.entries[vpn] = (gfn, writable, words)
        self.rmap.setdefault(gfn, set()).add((key, vpn))
        self._write_pte(space, vpn, (self.vm.base + frame) | PTE_P | (PTE_W if writable else 0)
                        | (self.real_pl(pl) << PTE_PL_SHIFT))
        self.vm.count_event("shadow_sync")

    def _write_pte(self, space: Space, vpn: int, value: int) -> None:
        table = space.tables[vpn >> 10]
        _pack(self.memory.data, table + (vpn & 0x3FF) * 4, value)
        for cpu, key in self.loaded.values():
            if key == space.key:
                cpu.mmu.invalidate(vpn << PAGE_SHIFT)
                if not value & PTE_P:
                    cpu.flush_fetch()

    def _protect(self, gfn: int) -> None:
        count = self.protected.get(gfn, 0)
        self.protected[gfn] = count + 1
        if count:
            return
        for key, vpn in self.rmap.get(gfn, ()):  # make existing mappings read-only
            space = self.spaces[key]
            g, writable, words = space.entries[vpn]
            if writable:
                space.entries[vpn] = (g, False, words)
                table = space.tables[vpn >> 10]
                offset = table + (vpn & 0x3FF) * 4
                old = struct.unpack_from("<I", self.memory.data, offset)[0]
                self._write_pte(space, vpn, old & ~PTE_W)

    def _unprotect(self, gfn: int) -> None:
        count = self.protected[gfn] - 1
        if count:
            self.protected[gfn] = count
        else:
            del self.protected[gfn]  # read-only mappings upgrade lazily on the next write

    # -- coherence --------------------------------------------------------------------------------

    def _drop(self, space: Space, vpn: int, invalidate: bool = True) -> None:
        gfn, _writable, words = space.entries.pop(vpn)
        users = self.rmap.get(gfn)
        if users is not None:
            users.discard((space.key, vpn))
            if not users:
                del self.rmap[gfn]
        for word in words:
            users = self.deps.get(word)
            if users is not None:
                users.discard((space.key, vpn))
                if not users:
                    del self.deps[word]
                    self._unprotect(word >> PAGE_SHIFT)
        if invalidate:
            self._write_pte(space, vpn, 0)

    def guest_write(self, gpa: int, size: int) -> int:
        """The guest (or its DMA) wrote guest-physical ``[gpa, gpa+size)``: drop the shadow
        entries built from the words it overlaps.  Returns how many were dropped."""
        if (gpa >> PAGE_SHIFT) not in self.protected and \
                ((gpa + size - 1) >> PAGE_SHIFT) not in self.protected:
            return 0
        self.traced_writes += 1
        dropped = 0
        for word in range(gpa & ~3, gpa + size, 4):
            users = self.deps.get(word)
            if users:
                for key, vpn in list(users):
                    self._drop(self.spaces[key], vpn)
                    dropped += 1
        if dropped:
            self.vm.count_event("shadow_sync", dropped)
        return dropped

    # -- migration's dirty log (hooks for `toyvisor.vmm.migration.dirty`) -------------------------

    def log_write(self, gfn: int) -> bool:
        """A write fault on guest frame `gfn` that the guest's own tables allow: enter it in the
        dirty log.  True when the log's write-protection caused the fault (the next `fill` maps
        the frame writable again)."""
        log = self.dirty_log
        if log is None or gfn in log:
            return False
        log.add(gfn)
        self.log_faults += 1
        return True

    def log_physmap_write(self, gpa: int) -> bool:
        """A write fault in the physmap (guest paging off) at guest-physical `gpa`: True when
        the dirty log caused it; the page is logged and mapped writable again."""
        space = self.spaces.get(PHYSMAP)
        if space is None or not 0 <= gpa < self.vm.size or not self.log_write(gpa >> PAGE_SHIFT):
            return False
        offset = space.tables[gpa >> 22] + ((gpa >> PAGE_SHIFT) & 0x3FF) * 4
        _pack(self.memory.data, offset, (self.vm.base + (gpa & PTE_FRAME)) | PTE_P | PTE_W
              | (3 << PTE_PL_SHIFT))
        for cpu, key in self.loaded.values():
            if key == PHYSMAP:
                cpu.mmu.invalidate(gpa)
        self.vm.count_event("shadow_sync")
        return True

    def write_protect_all(self) -> int:
        """Map every guest frame read-only in every shadow (the dirty log is re-armed);
        returns the number of entries changed, each a ``shadow_sync``."""
        data = self.memory.data
        changed = 0
        for key, space in self.spaces.items():
            if key == PHYSMAP:
                for pdi, table in space.tables.items():
                    for offset in range(table, table + PAGE_SIZE, 4):
                        old = struct.unpack_from("<I", data, offset)[0]
                        if old & PTE_W:
                            _pack(data, offset, old & ~PTE_W)
                            changed += 1
                continue
            for vpn, (gfn, writable, words) in space.entries.items():
                if writable:
                    space.entries[vpn] = (gfn, False, words)
                    offset = space.tables[vpn >> 10] + (vpn & 0x3FF) * 4
                    _pack(data, offset, struct.unpack_from("<I", data, offset)[0] & ~PTE_W)
                    changed += 1
        for cpu, _key in self.loaded.values():
            cpu.mmu.flush()
        self.vm.count_event("shadow_sync", changed)
        self.vm.count_event("tlb_flush")
        return changed

    def invlpg(self, va: int) -> None:
        """The guest invalidated `va`: drop its entries in the current address space's shadows."""
        vpn = (va & 0xFFFFFFFF) >> PAGE_SHIFT
        cr3 = self.vm.vcpu.cr3 & PTE_FRAME
        for key, space in list(self.spaces.items()):
            if key != PHYSMAP and key[0] == cr3 and vpn in space.entries:
                self._drop(space, vpn)

    def reset(self) -> None:
        """Drop every shadow space (out of frames, snapshot restore, destroy)."""
        for space in self.spaces.values():
            for table in space.tables.values():
                self.frames.release(table)
            self.frames.release(space.root)
        self.spaces.clear()
        self.deps.clear()
        self.protected.clear()
        self.rmap.clear()
        self.current = None
        for cpu, _key in self.loaded.values():
            cpu.mmu.flush()
            cpu.flush_fetch()
            cpu.mmu.cr3 = 0xFFFFFFFF  # force the next resume to reload cr3
        self.vm.count_event("tlb_flush")

    def mapped_host_frames(self) -> list[tuple[tuple, int, int]]:
        """Every (space, vpn, host frame) the shadows map (for the resource audit)."""
        data = self.memory.data
        result = []
        for space in self.spaces.values():
            for pdi, table in space.tables.items():
                for i in range(1024):
                    pte = struct.unpack_from("<I", data, table + 4 * i)[0]
                    if pte & PTE_P:
                        result.append((space.key, (pdi << 10) | i, pte & PTE_FRAME))
        return result


__all__ = ["FrameAllocator", "OutOfFrames", "PHYSMAP", "ShadowPager", "Space"]
