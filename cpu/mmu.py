"""Paging: the two-level walk, protection checks, A/D bits, page-fault error codes and the TLB.

One `MMU` per CPU.  The TLB is a dict from virtual page number to an entry tuple::

    (frame, pl, write_ok, writable, pte_address)

`frame` is the physical page base, `pl` the effective privilege limit (an access at CPL c is
allowed iff c <= pl), `writable` whether both levels allow writes, `write_ok` whether a write may
go straight through (writable *and* the dirty bit already set), and `pte_address` the physical
address of the page-table entry (where D is set on the first write).

The TLB is honest: entries stay until `flush` (a cr3 write, a cr0.PG change) or `invalidate`
(invlpg) drops them, so a guest that edits a page table without invalidating keeps seeing the old
mapping and the old permissions.  Only successful translations are cached; a walk that faults
sets no A bit.  A frame beyond the end of RAM raises #GP(0) at the walk and is never cached, so
a cached frame always lies inside RAM.
"""

from __future__ import annotations

from toyvisor.isa.faults import GuestFault
from toyvisor.isa.spec import (
    M32,
    PAGE_MASK,
    PAGE_SHIFT,
    PF_CPL_SHIFT,
    PF_FETCH,
    PF_PROT,
    PF_USER,
    PF_WRITE,
    PTE_A,
    PTE_D,
    PTE_FRAME,
    PTE_P,
    PTE_PL_SHIFT,
    PTE_W,
    VEC_GP,
    VEC_PF,
)

from .memory import PhysicalMemory

READ, WRITE, FETCH = 0, 1, 2


def page_fault_error(protection: bool, access: int, cpl: int) -> int:
    """The #PF error code of docs/machine.md."""
    error = PF_PROT if protection else 0
    if access == WRITE:
        error |= PF_WRITE
    elif access == FETCH:
        error |= PF_FETCH
    if cpl:
        error |= PF_USER
    return error | (cpl << PF_CPL_SHIFT)


class MMU:
    """Address translation for one CPU: `cr3` is the page-directory base, `tlb` the cache."""

    #: Whether addresses are translated with cr0.PG = 0 too (`toyvisor.cpu.vt.NestedMMU`).
    nested = False

    def __init__(self, memory: PhysicalMemory) -> None:
        self.memory = memory
        self.cr3 = 0
        self.tlb: dict[int, tuple[int, int, bool, bool, int]] = {}
        self.walks = 0

    def flush(self) -> None:
        self.tlb.clear()

    def invalidate(self, va: int) -> None:
        self.tlb.pop((va & M32) >> PAGE_SHIFT, None)

    def translate(self, va: int, cpl: int, access: int) -> int:
        """Physical address of `va` for an access of kind READ/WRITE/FETCH at `cpl`.

        Raises #PF (with cr2's value in `GuestFault.address`) or #GP(0) for a frame beyond RAM.
        """
        vpn = va >> PAGE_SHIFT
        entry = self.tlb.get(vpn)
        if entry is None:
            entry = self._walk(va, cpl, access)
        frame, pl, write_ok, writable, pte_address = entry
        if cpl > pl or (access == WRITE and not writable):
            raise GuestFault(VEC_PF, page_fault_error(True, access, cpl), va)
        if access == WRITE and not write_ok:
            memory = self.memory
            memory.write32(pte_address, memory.read32(pte_address) | PTE_D)
            self.tlb[vpn] = (frame, pl, True, True, pte_address)
        return frame | (va & PAGE_MASK)

    def _walk(self, va: int, cpl: int, access: int) -> tuple[int, int, bool, bool, int]:
        memory = self.memory
        self.walks += 1
        pde_address = (self.cr3 & PTE_FRAME) | ((va >> 22) << 2)
        pde = memory.read32(pde_address)
        if not pde & PTE_P:
            raise GuestFault(VEC_PF, page_fault_error(False, access, cpl), va)
        pte_address = (pde & PTE_FRAME) | (((va >> PAGE_SHIFT) & 0x3FF) << 2)
        pte = memory.read32(pte_address)
        if not pte & PTE_P:
            raise GuestFault(VEC_PF, page_fault_error(False, access, cpl), va)
        pl = min((pde >> PTE_PL_SHIFT) & 3, (pte >> PTE_PL_SHIFT) & 3)
        writable = bool(pde & pte & PTE_W)
        if cpl > pl or (access == WRITE and not writable):
            raise GuestFault(VEC_PF, page_fault_error(True, access, cpl), va)
        frame = pte & PTE_FRAME
        if frame >= memory.size:
            raise GuestFault(VEC_GP, 0)
        if not pde & PTE_A:
            memory.write32(pde_address, pde | PTE_A)
        dirty = access == WRITE
        new_pte = pte | PTE_A | (PTE_D if dirty else 0)
        if new_pte != pte:
            memory.write32(pte_address, new_pte)
        dirty = dirty or bool(pte & PTE_D)
        entry = (frame, pl, writable and dirty, writable, pte_address)
        self.tlb[va >> PAGE_SHIFT] = entry
        return entry


__all__ = ["FETCH", "MMU", "READ", "WRITE", "page_fault_error"]
