"""Grant tables: a domain lets another map one of its pages (docs/paravirtual-abi.md).

``grant_access(dom, pfn, readonly)`` creates a reference (1–63) in the *granter's* table naming
one of its backed pages and the one domain allowed to use it.  ``map(dom, gref, va)`` installs, in
the *mapper's* current address space, a PL 1 entry for the granted frame at page-aligned `va`
(whose page table must exist and whose entry must be empty); it returns a handle.  While mapped,
the grant counts a reference: ``end_access`` is refused with EBUSY, the granted pfn cannot be
ballooned out, and (for a writable grant) the frame cannot become a page table; the mapper's page
table holds an extra type reference and its entry cannot be changed by ``mmu_update``.
``unmap(handle)`` removes the entry and flushes that page from the TLB.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from toyvisor.isa.spec import PAGE_SIZE, PTE_P, PTE_PL_SHIFT, PTE_W

from .abi import (
    EACCES,
    EBUSY,
    EINVAL,
    ENOENT,
    ENOSPC,
    GUEST_KERNEL_RING,
    NR_GRANTS,
    HypercallError,
)

if TYPE_CHECKING:
    from .domain import Domain


class GrantTable:
    """The grants a domain gave (`entries`) and the grant mappings it holds (`handles`)."""

    def __init__(self, domain: Domain) -> None:
        self.domain = domain
        #: gref → [grantee domid, pfn, readonly, map count]
        self.entries: dict[int, list] = {}
        #: handle → (granter domid, gref, frame, table frame, index)
        self.handles: dict[int, tuple[int, int, int, int, int]] = {}

    def state(self) -> tuple:
        return (tuple(sorted((k, tuple(v)) for k, v in self.entries.items())),
                tuple(sorted(self.handles.items())))

    def mapped_frames(self) -> set[int]:
        return {h[2] for h in self.handles.values()}

    def granted_pfns(self) -> set[int]:
        return {e[1] for e in self.entries.values()}

    # -- the granter's side ----------------------------------------------------------------------------
    def grant_access(self, grantee: Domain, pfn: int, readonly: int) -> int:
        domain = self.domain
        if domain.p2m[pfn] is None:
            raise HypercallError(EINVAL, f"pfn {pfn} has no frame")
        if domain.p2m[pfn] in domain.special_frames():
            raise HypercallError(EACCES, "start_info and shared_info cannot be granted")
        for gref in range(1, NR_GRANTS):
            if gref not in self.entries:
                self.entries[gref] = [grantee.domid, pfn, bool(readonly), 0]
                return gref
        raise HypercallError(ENOSPC, "grant table full")

    def end_access(self, gref: int) -> int:
        entry = self.entries.get(gref)
        if entry is None:
            raise HypercallError(ENOENT, f"no grant {gref}")
        if entry[3]:
            raise HypercallError(EBUSY, f"grant {gref} is mapped {entry[3]} time(s)")
        del self.entries[gref]
        return 0

    # -- the mapper's side -------------------------------------------------------------------------------
    def map(self, granter: Domain, gref: int, va: int) -> int:
        mapper = self.domain
        entry = granter.grants.entries.get(gref)
        if entry is None:
            raise HypercallError(ENOENT, f"domain {granter.domid} has no grant {gref}")
        grantee, pfn, readonly, _ = entry
        if grantee != mapper.domid:
            raise HypercallError(EACCES, f"grant {gref} is not for domain {mapper.domid}")
        if va % PAGE_SIZE:
            raise HypercallError(EINVAL, "va must be page-aligned")
        table = mapper.system.frames
        slot_table, index = table.pte_slot(mapper, va)
        if table.read(slot_table, index) & PTE_P:
            raise HypercallError(EBUSY, f"{va:#010x} is already mapped")
        frame = granter.p2m[pfn]
        if not readonly and frame in table.ftype:
            raise HypercallError(EBUSY, f"granted frame is a {table.ftype[frame]}")
        handle = next(h for h in range(len(self.handles) + 1) if h not in self.handles)
        table.tcount[slot_table] += 1  # the table cannot be released while it holds the grant
        table.maps.setdefault(frame, {})[(slot_table, index)] = not readonly
        table.grant_slots[(slot_table, index)] = (mapper.domid, handle)
        table.write(slot_table, index, frame | PTE_P | (0 if readonly else PTE_W)
                    | GUEST_KERNEL_RING << PTE_PL_SHIFT)
        self.handles[handle] = (granter.domid, gref, frame, slot_table, index)
        entry[3] += 1
        mapper.system.invlpg(mapper, va)
        return handle

    def unmap(self, handle: int) -> int:
        if handle not in self.handles:
            raise HypercallError(EINVAL, f"no grant handle {handle}")
        granter_id, gref, frame, slot_table, index = self.handles.pop(handle)
        mapper = self.domain
        table = mapper.system.frames
        table.write(slot_table, index, 0)
        del table.grant_slots[(slot_table, index)]
        table._drop_map(frame, (slot_table, index))
        table.put_type(slot_table)
        granter = mapper.system.domains.get(granter_id)
        if granter is not None and gref in granter.grants.entries:
            granter.grants.entries[gref][3] -= 1
        mapper.system.flush_tlb(mapper)
        return 0

    def unmap_all(self) -> None:
        for handle in sorted(self.handles):
            self.unmap(handle)

    def mapped_by_others(self) -> bool:
        return any(entry[3] for entry in self.entries.values())


__all__ = ["GrantTable"]
