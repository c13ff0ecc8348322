"""A domain's log-dirty mode: the hypervisor records every pseudo-physical page the domain's
memory changes in, for dom0's migration daemon (Xen's ``XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY``).

Xen runs a paravirtual domain in log-dirty mode on shadow page tables whose entries are all
read-only: the guest's first write to a frame in a round faults into the hypervisor, which marks
the frame's pfn in a bitmap (the m2p gives the pfn) and lets the write through until the next
``CLEAN`` re-protects everything.  Writes the hypervisor makes itself for the domain — above all
the page-table entries the guest validates through ``mmu_update`` and ``update_va_mapping``, but
also console input and shared_info — are marked by the hypercall paths (Xen's
``paging_mark_dirty``).

toyvisor does the same at the machine level: every frame of the domain is write-watched
(`toyvisor.cpu.memory.PhysicalMemory.watch`), so a store by the vCPU, the page walker (A/D
bits), or the VMM on the domain's behalf calls this mode's hook.  A store by the guest is a
write fault — priced as a ``trap`` plus a ``shadow_sync`` (the shadow entry made writable), and
counted as the VMM entry ``vmm:log-dirty`` — the first time per page per round; a VMM store only
marks the bitmap.  ``clean`` re-protects every frame (one ``shadow_sync`` each) and flushes the
TLB.  The resource audit unwatches the running domain's frames when it loads it; the mode
re-protects its clean frames after every load (it wraps the strategy's ``load`` hook).

The ``shadow_op`` rows of the hypercall table (dom0 only) drive it; `LogDirty` is also the API
the daemon's Python side reads through them.
"""

from __future__ import annotations

from toyvisor.isa.spec import M32, PAGE_SHIFT, PAGE_SIZE

from .abi import EBUSY, EINVAL, HypercallError


class LogDirty:
    """The log-dirty mode of one domain (see the module docstring)."""

    def __init__(self, domain) -> None:  # a `toyvisor.vmm.paravirt.domain.Domain`
        self.domain = domain
        hypervisor = domain.system.hypervisor
        self.hypervisor = hypervisor
        self.memory = hypervisor.machine.memory
        #: machine address → pfn: the m2p of this domain when the mode was enabled (the daemon
        #: checks at the suspend that the p2m has not changed meanwhile)
        self.m2p = {m: pfn for pfn, m in enumerate(domain.p2m) if m is not None}
        self.dirty: set[int] = set()
        #: write faults the mode caused (guest stores to a protected frame)
        self.faults = 0
        self._previous = self.memory.audit
        self.memory.audit = self._hook
        strategy = domain.system
        self._load = strategy.load

        def load(vm, cpu, switch, _load=self._load):
            _load(vm, cpu, switch)
            if switch and vm is domain.vm:  # the audit has just unwatched its frames
                self._protect(count=False)

        strategy.load = load  # this strategy instance only (as `setup.measure` wraps `handle`)
        self._protect(count=True)

    @property
    def active(self) -> bool:
        return self.memory.audit == self._hook

    def _protect(self, *, count: bool) -> None:
        """Write-protect every frame not dirty in this round."""
        memory = self.memory
        protected = 0
        for frame, pfn in self.m2p.items():
            if pfn not in self.dirty:
                memory.watch(frame, PAGE_SIZE, write=True)
                protected += 1
        if count:
            vm = self.domain.vm
            vm.count_event("shadow_sync", protected)
            vm.count_event("tlb_flush")
            cpu = self.hypervisor.cpu
            if self.hypervisor.current is vm:
                cpu.mmu.flush()

    def _hook(self, access: str, pa: int, size: int, value) -> None:
        if access == "write":
            for frame in range(pa & ~(PAGE_SIZE - 1), pa + size, PAGE_SIZE):
                pfn = self.m2p.get(frame)
                if pfn is not None and pfn not in self.dirty:
                    self._mark(frame, pfn)
        if self._previous is not None:
            self._previous(access, pa, size, value)

    def _mark(self, frame: int, pfn: int) -> None:
        self.dirty.add(pfn)
        hypervisor = self.hypervisor
        vm = self.domain.vm
        if not hypervisor.in_vmm and hypervisor.current is vm:
            # the guest's own store hit a read-only shadow entry: a write fault
            self.faults += 1
            vm.count_entry("vmm:log-dirty")
            vm.count_event("trap")
            vm.count_event("shadow_sync")
        if hypervisor.current is vm:  # writable again until the next clean (the audit does not
            self.memory.unwatch(frame, PAGE_SIZE)  # watch the running domain's own frames)

    def clean(self) -> set[int]:
        """The pfns dirtied since the mode was enabled or last cleaned; every frame is
        write-protected again (``XEN_DOMCTL_SHADOW_OP_CLEAN``)."""
        pages, self.dirty = self.dirty, set()
        self._protect(count=True)
        return pages

    def disable(self) -> None:
        """Leave log-dirty mode (the frames stay watched only where the audit wants them)."""
        if not self.active:
            return
        self.memory.audit = self._previous
        self.domain.system.load = self._load
        hypervisor = self.hypervisor
        for frame in self.m2p:
            self.memory.unwatch(frame, PAGE_SIZE)
        if hypervisor.audit and hypervisor.current is not self.domain.vm:
            for start, size in self.domain.vm.host_ranges():
                self.memory.watch(start, size, read=True, write=True)


# -- the shadow_op hypercall handlers (dom0 only: the row's `who` is checked by dispatch) ------------
def _modes(d) -> dict[int, LogDirty]:
    system = d.system
    if not hasattr(system, "log_dirty"):
        system.log_dirty = {}
    return system.log_dirty


def _target(d, target) -> None:
    if target is d:
        raise HypercallError(EINVAL, "dom0 cannot log its own writes")


def shadow_enable_logdirty(d, target) -> int:
    _target(d, target)
    modes = _modes(d)
    if target.domid in modes:
        raise HypercallError(EBUSY, f"domain {target.domid} is already in log-dirty mode")
    if target.state == "shutdown":
        raise HypercallError(EINVAL, f"domain {target.domid} is shut down")
    modes[target.domid] = LogDirty(target)
    return 0


def _mode(d, target) -> LogDirty:
    _target(d, target)
    mode = _modes(d).get(target.domid)
    if mode is None:
        raise HypercallError(EINVAL, f"domain {target.domid} is not in log-dirty mode")
    return mode


def shadow_clean(d, target, buf: int, words: int) -> int:
    mode = _mode(d, target)
    need = -(-len(target.p2m) // 32)
    if words < need:
        raise HypercallError(EINVAL, f"the bitmap needs {need} words for "
                                     f"{len(target.p2m)} pages (got {words})")
    for i in range(need):  # the whole bitmap must be writable before the log is reset
        d.translate((buf + 4 * i) & M32, True)
    pages = mode.clean()
    bitmap = [0] * need
    for pfn in pages:
        bitmap[pfn >> 5] |= 1 << (pfn & 31)
    for i, word in enumerate(bitmap):
        d.write_word((buf + 4 * i) & M32, word)
    return len(pages)


def shadow_off(d, target) -> int:
    mode = _mode(d, target)
    mode.disable()
    del _modes(d)[target.domid]
    return 0


def in_log_dirty(domain) -> bool:
    """Whether `domain` is in log-dirty mode."""
    return domain.domid in getattr(domain.system, "log_dirty", {})


def read_bitmap(words: list[int], nr_pages: int) -> set[int]:
    """The pfns set in a ``clean`` bitmap."""
    return {pfn for pfn in range(nr_pages) if words[pfn >> 5] >> (pfn & 31) & 1}


__all__ = ["LogDirty", "in_log_dirty", "read_bitmap", "shadow_clean", "shadow_enable_logdirty",
           "shadow_off"]
