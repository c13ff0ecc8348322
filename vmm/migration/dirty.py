"""Dirty logging: which guest pages were written since the log was last collected.

Each strategy logs through its own memory virtualization:

- **shadow page tables** (trap-emulate, binary translation, hardware-assisted generation 1):
  every shadow mapping is made read-only (`ShadowPager.write_protect_all`); the first write to a
  page in a round is a write fault the guest's own tables allow, which the VMM logs
  (`ShadowPager.log_write`) and resolves by mapping the page writable again
  (``vmm:dirty-log`` entries under trap-emulate and binary translation; ``exit:exception`` page-
  fault exits in generation 1).  Price: a trap or VM exit and a ``shadow_sync`` per page per
  round, plus one ``shadow_sync`` per mapping write-protected and a ``tlb_flush`` per round.
- **nested dirty bits** (hardware-assisted generation 2): the VMM turns on the nested table's
  D bits (``NESTED_DIRTY``, EPT's A/D flags); the hardware sets D in the nested entry of every
  page the guest writes (its page-table pages too, for the A/D bits its walk writes), with no
  exit at all.  At each collection the VMM scans and clears them (a ``shadow_sync`` per entry
  cleared) and flushes (``tlb_flush``, INVEPT).
- **log-dirty mode** (paravirtual): dom0's migration daemon turns it on with the ``shadow_op``
  hypercall and collects a bitmap with ``shadow_op clean`` (`toyvisor.vmm.paravirt.logdirty`):
  every frame of the domain is write-protected, the guest's first store to one in a round is a
  write fault (``vmm:log-dirty``: a ``trap`` and a ``shadow_sync``), and the hypervisor's own
  stores for the domain — page-table entries validated by ``mmu_update``, console input — mark
  the page without a fault.  Each clean re-protects every frame (a ``shadow_sync`` each) and
  flushes the TLB.
- Writes the VMM makes on the guest's behalf — emulated stores, DMA of the virtual disk,
  A/D bits its software walker sets in the guest's tables — go through the VM's guest-physical
  memory object and are logged there, as KVM's ``mark_page_dirty`` does.
"""

from __future__ import annotations

from toyvisor.isa import vt as V
from toyvisor.isa.spec import PAGE_SHIFT, PTE_D, PTE_P

from ..shadow import ShadowPager
from .link import MigrationError


class DirtyLog:
    """The base: the VMM-side writes (emulation, DMA, the software walker)."""

    mechanism = ""

    def __init__(self, vm) -> None:
        self.vm = vm
        self.vmm_pages: set[int] = set()
        self._memory_hook = vm.memory.on_write
        self._walker_memory = getattr(vm.mmu, "memory", None)
        self.active = False

    def start(self) -> None:
        """Start logging (every page counts as clean from now on)."""
        vm = self.vm
        hook = self._memory_hook

        def on_write(gpa: int, size: int) -> None:
            self._vmm_write(gpa, size)
            if hook is not None:
                hook(gpa, size)

        self.active = True
        vm.memory.on_write = on_write
        if self._walker_memory is not None and hasattr(self._walker_memory, "on_write"):
            self._walker_memory.on_write = self._vmm_write
        self._arm()

    def _vmm_write(self, gpa: int, size: int) -> None:
        for page in range(gpa >> PAGE_SHIFT, ((gpa + size - 1) >> PAGE_SHIFT) + 1):
            self.vmm_pages.add(page)

    def collect(self) -> set[int]:
        """The pages written since `start` or the last `collect`; logging goes on."""
        pages = self._harvest() | self.vmm_pages
        self.vmm_pages = set()
        return {p for p in pages if p < self.vm.size >> PAGE_SHIFT}

    def stop(self) -> None:
        """Stop logging (the VM's mappings become writable again lazily)."""
        if not self.active:
            return
        self.active = False
        self.vm.memory.on_write = self._memory_hook
        if self._walker_memory is not None and hasattr(self._walker_memory, "on_write"):
            self._walker_memory.on_write = None
        self._disarm()

    @property
    def faults(self) -> int:
        """VMM entries the log caused (0 for a mechanism without any)."""
        return 0

    # -- per mechanism ------------------------------------------------------------------------
    def _arm(self) -> None:
        raise NotImplementedError

    def _harvest(self) -> set[int]:
        raise NotImplementedError

    def _disarm(self) -> None:
        raise NotImplementedError


class ShadowDirtyLog(DirtyLog):
    """Write-protection in the shadow page tables."""

    mechanism = "shadow write-protection"

    def __init__(self, vm) -> None:
        super().__init__(vm)
        self._faults_at_start = vm.pager.log_faults

    def _arm(self) -> None:
        pager = self.vm.pager
        pager.dirty_log = set()
        self._faults_at_start = pager.log_faults
        pager.write_protect_all()

    def _harvest(self) -> set[int]:
        pager = self.vm.pager
        pages, pager.dirty_log = pager.dirty_log, set()
        pager.write_protect_all()
        return pages

    def _disarm(self) -> None:
        self.vm.pager.dirty_log = None

    @property
    def faults(self) -> int:
        return self.vm.pager.log_faults - self._faults_at_start


class NestedDirtyLog(DirtyLog):
    """The nested table's dirty bits (hardware-assisted generation 2)."""

    mechanism = "nested-table dirty bits"

    def _arm(self) -> None:
        vmcs = self.vm.hardware.vmcs
        vmcs[V.NESTED_CONTROL] = vmcs[V.NESTED_CONTROL] | V.NESTED_DIRTY
        self._harvest()

    def _harvest(self) -> set[int]:
        vm = self.vm
        table = vm.pager
        memory = table.frames.memory
        data = memory.words
        pages: set[int] = set()
        cleared = 0
        for index, frame in table.tables.items():
            base = frame >> 2
            for i in range(1024):
                entry = data[base + i]
                if entry & PTE_D and entry & PTE_P:
                    data[base + i] = entry & ~PTE_D
                    pages.add((index << 10) | i)
                    cleared += 1
        vm.count_event("shadow_sync", cleared)
        vm.count_event("tlb_flush")  # INVEPT: no stale writable translation survives
        return pages

    def _disarm(self) -> None:
        vmcs = self.vm.hardware.vmcs
        vmcs[V.NESTED_CONTROL] = vmcs[V.NESTED_CONTROL] & ~V.NESTED_DIRTY


class LogDirtyMode:
    """The paravirtual domain's log-dirty mode, driven by dom0's daemon (same interface as
    `DirtyLog`: start, collect, stop, faults, mechanism)."""

    mechanism = "log-dirty mode (dom0's shadow_op)"

    def __init__(self, daemon, domain) -> None:
        self.daemon = daemon
        self.domain = domain
        self.active = False
        self._mode = None

    def start(self) -> None:
        self.daemon.enable_logdirty(self.domain.domid)
        self._mode = self.domain.system.log_dirty[self.domain.domid]
        self.active = True

    def collect(self) -> set[int]:
        return self.daemon.clean(self.domain.domid, len(self.domain.p2m))

    def stop(self) -> None:
        if self.active:
            self.active = False
            self.daemon.logdirty_off(self.domain.domid)

    @property
    def faults(self) -> int:
        return self._mode.faults if self._mode is not None else 0


def dirty_log_for(vm) -> DirtyLog:
    """The dirty log of `vm`'s strategy (a `MigrationError` for one that virtualizes no memory)."""
    pager = vm.pager
    if isinstance(pager, ShadowPager):
        return ShadowDirtyLog(vm)
    if pager is not None and hasattr(pager, "tables") and hasattr(vm, "hardware"):
        return NestedDirtyLog(vm)
    raise MigrationError(f"{vm.hypervisor.strategy.spec} keeps no dirty log of guest memory "
                         "(migration needs a strategy that virtualizes memory)")


__all__ = ["DirtyLog", "LogDirtyMode", "NestedDirtyLog", "ShadowDirtyLog", "dirty_log_for"]
