"""``trap-emulate``: classic trap-and-emulate with ring deprivileging and shadow paging.

The guest kernel (virtual CPL 0) runs directly on the real CPU, deprivileged: at real ring 1 in
the ``0/1/3`` model, at real ring 3 in ``0/3/3`` (ring compression: kernel and applications share
ring 3, so each guest address space gets one shadow per virtual CPL and the VMM switches shadows
on every virtual ring change).  Guest applications (virtual CPL 3) run at real ring 3.  The real
IF is always 1 while a guest runs: the real timer belongs to the VMM.

VMM entries, by cause (``by_cause`` keys):

| cause | real event | what the VMM does |
| --- | --- | --- |
| ``vmm:privileged`` | #GP from a privileged instruction | decode it at the guest pc and emulate it against the vCPU with the table's own handler (`toyvisor.vmm.emulate`); at virtual CPL > 0 that handler raises the guest's own #GP, which is reflected |
| ``vmm:io`` | #GP from ``in``/``out`` | emulate against the VM's virtual devices |
| ``vmm:pgfault-hidden`` | #PF the guest would not see | fill the shadow entry from the guest's tables (or set D on the first write to a clean page) |
| ``vmm:ptemod`` | #PF: a write to a traced guest page-table frame | emulate the store, drop the shadow entries built from the words it changed (`emulate_store`) |
| ``vmm:pgfault-guest`` | #PF the guest's own tables (or RAM size) cause | reflect #PF with the guest's cr2 and error code (or #GP(0) beyond its RAM) |
| ``vmm:int`` | ``int n`` / ``brk`` | virtual delivery through the guest's table (DPL check against the virtual CPL) |
| ``vmm:exception`` | #DE, #UD, #AC in guest code | reflect into the guest's table |
| ``vmm:timer`` | the real timer | virtual time, virtual IRQ 0 at the exact guest instruction count, scheduling |

Sensitive-unprivileged instructions (``pushf``, ``popf``, ``sidt``, ``smsw``, ``rdcs``) do *not*
trap: they run on the real CPU against real state, so a guest that uses them in its kernel sees
the real IF, the VMM's interrupt table, the real cr0 and the real ring.  This strategy is expected
to diverge on such guests; `toyvisor.vmm.equivalence` finds and explains the divergence.
"""

from __future__ import annotations

from toyvisor.cpu.mmu import FETCH, READ, WRITE
from toyvisor.isa.faults import GuestFault
from toyvisor.isa.spec import CR0_PG, PF_FETCH, PF_WRITE, VEC_GP, VEC_PF

from ..emulate import emulate
from ..shadow import ShadowPager
from . import Strategy, register


def emulate_store(vm, decoded, *, event: str | None = "emulated_instruction") -> None:
    """Emulate the guest store `decoded` against `vm`: the one path of a *ptemod*, whether the
    store trapped on a write-protected guest page-table frame (``vmm:ptemod``) or reached the VMM
    as a callout of adaptive binary translation (``callout:st``), so both keep the shadow tables
    and the guest's tables exactly as the bare machine would:

    - the target is translated by the guest's own tables at the virtual CPL (`VM.translate`), A
      and D set in the guest's entries as the hardware would set them;
    - the value lands in guest-physical memory, whose write hook (`ShadowPager.guest_write`) drops
      every shadow entry built from the words written (one ``shadow_sync`` each) and unprotects
      the frames no entry depends on any more;
    - a store into a traced page-table frame counts at least one ``shadow_sync`` (the VMM's shadow
      update for the changed word, even when no entry depended on it: A&A's software-VMM
      ``ptemod`` = ``callout`` + ``shadow_update``); a store elsewhere counts none;
    - a fault (the guest's own #PF, #AC, #GP beyond its RAM) is reflected as the instruction's.

    `event` prices the emulation (None: the caller does, as a callout).
    """
    pager = vm.pager
    traced = pager.traced_writes
    synced = vm.events.get("shadow_sync", 0)
    try:
        emulate(vm, decoded, event=event)
    except GuestFault as fault:
        vm.deliver(fault.vector, fault.error, decoded.pc, "exception", fault.address)
        return
    if pager.traced_writes != traced and vm.events.get("shadow_sync", 0) == synced:
        vm.count_event("shadow_sync")


#: consecutive hidden faults at one pc that mean the VMM is not making progress (a VMM bug)
_MAX_HIDDEN_RETRIES = 8


class VMMBug(RuntimeError):
    """The VMM failed to make progress (a shadow fill that does not resolve its fault)."""


@register
class TrapEmulate(Strategy):
    """Trap-and-emulate (see the module docstring); variants: ring models ``0/1/3``, ``0/3/3``."""

    name = "trap-emulate"
    variants = ("0/1/3", "0/3/3")

    @property
    def kernel_ring(self) -> int:
        return 1 if self.variant == "0/1/3" else 3

    @property
    def short_traps(self) -> bool:
        """Whether `Hypervisor.trap_fields` may handle a software interrupt and a #GP inline:
        it does exactly what `handle` (with `Strategy.entry_event`, no steps at entry and the
        base interrupt check) does for them, so only while a subclass overrides none of those
        (`Hypervisor._enter` then skips `entry_steps` too)."""
        cls = type(self)
        return (cls.handle is TrapEmulate.handle and cls._emulate is TrapEmulate._emulate
                and cls.entry_event is Strategy.entry_event
                and cls.entry_steps is Strategy.entry_steps
                and cls.service_interrupts is Strategy.service_interrupts)

    @property
    def plain_retired(self) -> bool:
        """Whether retired instructions count as `Strategy.retired` counts them."""
        return type(self).retired is Strategy.retired

    def real_cpl(self, vcpl: int) -> int:
        return max(vcpl, self.kernel_ring)

    # -- per VM -----------------------------------------------------------------------------------
    def attach(self, vm) -> None:
        vm.pager = ShadowPager(vm, self.hypervisor.frames, self.variant)

    def detach(self, vm) -> None:
        vm.pager.unbind()
        vm.pager.reset()

    def reset(self, vm) -> None:
        vm.pager.reset()

    def bind(self, hypervisor) -> None:
        super().bind(hypervisor)
        #: `kernel_ring`, fixed with the variant (`load` reads it at every VMM entry)
        self._ring = self.kernel_ring

    def load(self, vm, cpu, switch: bool) -> None:
        vcpl, ring = vm.vcpu.cpl, self._ring  # `real_cpl`, inline: every VMM entry
        cpu.cpl = vcpl if vcpl > ring else ring
        root = vm.pager.load(cpu)  # `root` and `bind`
        if switch or cpu.mmu.cr3 != root:
            cpu.write_cr(3, root)  # a real cr3 load: the real TLB is flushed
            vm.count_event("tlb_flush")

    def unload(self, vm, cpu) -> None:
        vm.pager.unbind(cpu)

    # -- VMM entries ------------------------------------------------------------------------------
    def handle(self, vm, event) -> None:
        source = event.source
        vcpu = vm.vcpu
        streak, vcpu.hidden_streak = vcpu.hidden_streak, (None, 0)
        if source == "interrupt":
            vm.count_entry("vmm:timer")
            if self.hypervisor.placement == "hosted":
                vm.count_event("host_syscall")  # the host delivers its timer signal
            return
        if source == "software":
            vm.count_entry("vmm:int")
            vm.deliver(event.vector, 0, event.pc, "software")  # a refusal propagates
            return
        vector = event.vector
        if vector == VEC_GP:
            entry = self.hypervisor.cpu.fetch(event.pc)
            decoded = entry.decoded
            mnemonic = decoded.definition.mnemonic
            vm.count_entry("vmm:io" if mnemonic in ("in", "out") else "vmm:privileged")
            self._emulate(vm, decoded, event.pc, entry.handler)
        elif vector == VEC_PF:
            self._page_fault(vm, event, streak)
        else:
            vm.count_entry("vmm:exception")
            vm.deliver(vector, event.error, event.pc, "exception", event.address)

    def _emulate(self, vm, decoded, pc: int, handler=None) -> None:
        try:
            emulate(vm, decoded, handler=handler)
        except GuestFault as fault:
            vm.deliver(fault.vector, fault.error, pc, "exception", fault.address)

    def _page_fault(self, vm, event, previous: tuple) -> None:
        va, error = event.address, event.error
        access = WRITE if error & PF_WRITE else FETCH if error & PF_FETCH else READ
        if not vm.vcpu.cr0 & CR0_PG:
            if access == WRITE and vm.pager.log_physmap_write(va):  # migration's dirty log
                vm.count_entry("vmm:dirty-log")
                return
            # the physmap maps all of the guest's RAM: this is beyond it, #GP(0) natively
            vm.count_entry("vmm:pgfault-guest")
            vm.deliver(VEC_GP, 0, event.pc, "exception")
            return
        try:
            vm.translate(va, access, vm.vcpu.cpl)
        except GuestFault as fault:
            vm.count_entry("vmm:pgfault-guest")
            vm.deliver(fault.vector, fault.error, event.pc, "exception", fault.address)
            return
        entry = vm.mmu.tlb[va >> 12]
        pager = vm.pager
        if access == WRITE and pager.is_protected(entry[0] >> 12):
            vm.count_entry("vmm:ptemod")
            self._ptemod(vm, event)
            return
        logged = access == WRITE and pager.log_write(entry[0] >> 12)  # migration's dirty log
        vm.count_entry("vmm:dirty-log" if logged else "vmm:pgfault-hidden")
        last, streak = previous
        streak = streak + 1 if last == (event.pc, va) else 1
        if streak > _MAX_HIDDEN_RETRIES:
            raise VMMBug(f"{vm.name}: shadow fill for {va:#010x} at pc {event.pc:#010x} does "
                         "not resolve the fault")
        vm.vcpu.hidden_streak = ((event.pc, va), streak)
        pager.fill(va, entry)
        if vm.on_retry is not None and access != FETCH:
            vm.on_retry()  # the instruction was attempted (and traced) and will run again

    def _ptemod(self, vm, event):
        """A store into a traced guest page-table frame trapped: emulate it (`emulate_store`);
        returns the decoded store."""
        decoded = self.hypervisor.cpu.fetch(event.pc).decoded
        emulate_store(vm, decoded)
        return decoded


__all__ = ["TrapEmulate", "VMMBug", "emulate_store"]
