"""``binary-translation``: a VMware-style software VMM — the guest kernel runs translated.

The guest kernel (virtual CPL 0) is deprivileged to real ring 1 exactly as under ``trap-emulate``
``0/1/3`` (same shadow page tables, virtual devices, virtual interrupts: this class *is* that
strategy with another way of running ring 1), but its code is never executed directly.  The
binary translator (`toyvisor.vmm.bt`) translates it block by block into a translation cache, and
every sensitive or privileged instruction in it (``cli sti popf pushf in out mtcr mfcr lidt invlpg
iret hlt sidt smsw rdcs``) becomes a **callout**: a call into the VMM that emulates the
instruction against the vCPU with the ISA table's own handler (`toyvisor.vmm.emulate`, the one
trap-and-emulate uses after a #GP).  So the sensitive-unprivileged instructions that trap-emulate
cannot virtualize behave as on bare metal — ``popf`` changes the *virtual* IF, ``pushf`` pushes
it, ``rdcs`` reads the virtual CPL, ``sidt`` the guest's idtr, ``smsw`` the guest's cr0.  Guest
applications (virtual CPL 3, real ring 3) run directly on the real CPU, as in VMware.

What enters the VMM (``by_cause`` keys; ``vmm_entries`` counts them all):

| cause | how |
| --- | --- |
| ``callout:<mnemonic>`` | a sensitive or privileged instruction reached in translated code (no trap); a fault it raises (e.g. ``iret`` through an unmapped frame) is reflected into the guest; also ``callout:st`` (``stb``, ``xchg``, ``push``...) for a store *adapted* to a callout (below) |
| ``vmm:pgfault-hidden``, ``vmm:ptemod``, ``vmm:pgfault-guest`` | page faults, from translated or direct code, exactly as under trap-emulate (a translated store traps ``vmm:ptemod`` until it is adapted) |
| ``vmm:int``, ``vmm:exception``, ``vmm:timer`` | software interrupts, other exceptions, the real timer — as under trap-emulate |
| ``vmm:privileged``, ``vmm:io`` | only from code that runs directly (a guest application's privileged instruction, which the emulation turns into the guest's own #GP); never from the kernel |

Counting (docs/vmm-design.md): the translator's ``translation`` (instructions translated),
``translated_instruction`` (retired inside translated code), ``instruction`` (retired directly at
ring 3) and ``callout`` events; the framework's ``trap`` for the traps that still happen, and
``shadow_sync``, ``interrupt_injection``, ``tlb_flush``, ``device_access``... A callout covers its
emulation: it is not also an ``emulated_instruction`` (only a trapped ``ptemod`` store is).
``efficiency`` is (translated non-callout + direct instructions) / guest instructions.

**Adaptive translation** (VMware's, A&A §6.3).  A store of translated kernel code that traps as
``vmm:ptemod`` (a write into a write-protected guest page-table frame) is handled exactly as under
trap-emulate — the guest sees the same effect — and counted against the instruction's
host-physical address; after `ADAPT_THRESHOLD` such traps (1: VMware's policy) the VMM calls
`Translator.adapt`, which drops the blocks holding it, and the retranslation ends a block at the
store and makes it a callout.  From then on the store enters the VMM as ``callout:st`` (a
``callout`` event, no ``trap``, no ``emulated_instruction``): `emulate_store`, the same function
the ptemod trap uses, emulates it against the guest (guest translation, A/D bits) and keeps the
shadow coherent (``shadow_sync`` when it writes a traced page-table word).  An adapted store that
later writes an ordinary page just emulates the store.  Adaptations are counted per VM in
``vm.translation.adaptations`` (and in the translator's ``stats.adaptations``); they are not VMM
entries and not priced events, so `VMRunResult` does not carry them.  A VM's marks are dropped
with its translations (`VM.restore`, `Hypervisor.destroy_vm`).

**Timing.**  The translator enters a block only if all of it runs before the real timer fires,
and the hypervisor programs that timer for the VM's next virtual timer deadline, so virtual
interrupts arrive at the same guest instruction as natively.  A callout ends its block; after
it the hypervisor re-examines the VM's virtual interrupts (``sti``, ``popf``, ``iret`` may have
made one deliverable) and reloads the real ring for the new virtual CPL before the next
instruction.

**The translation cache** belongs to the hypervisor's one real CPU and is keyed by *host*
physical address: the slices of two VMs never overlap, so their translations cannot mix, and a
world switch needs no flush.  A write to translated code (the guest's own store, an emulated
one, or disk DMA) drops exactly the blocks it overlaps (``invalidations``); `VM.restore` and
`Hypervisor.destroy_vm` drop every translation of the VM's slice.
"""

from __future__ import annotations

import attrs

from toyvisor.cpu.bt.block import adaptable
from toyvisor.isa.faults import GuestFault

from ..bt import Translator
from ..emulate import emulate
from ..shadow import ShadowPager
from . import register, vm_result
from .trap_emulate import TrapEmulate, emulate_store

#: real rings whose code is translated: every ring a deprivileged guest kernel can run at
#: (virtual CPL 0 and 1 share real ring 1, virtual CPL 2 keeps ring 2); ring 3 runs directly
TRANSLATED_RINGS = frozenset({1, 2})

#: `Translator.counters` fields credited to the VM that was running when they changed
_STATS = Translator.COUNTERS[:5]
_DIRECT = Translator.COUNTERS.index("direct_instructions")


@attrs.define
class TranslationCounters:
    """One VM's share of the translator's work (cumulative over its life)."""

    blocks_translated: int = 0
    instructions_translated: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    invalidations: int = 0
    callouts: int = 0
    #: instructions adapted to callouts (`BinaryTranslation.ADAPT_THRESHOLD`)
    adaptations: int = 0


@register
class BinaryTranslation(TrapEmulate):
    """Binary translation of the guest kernel (see the module docstring); no variants."""

    name = "binary-translation"
    variants = ()
    #: real rings whose code runs translated (the rest runs directly)
    translated_rings = TRANSLATED_RINGS

    #: the block-length bound handed to the translator
    max_block = 64
    #: ``vmm:ptemod`` traps of one translated instruction after which it is adapted to a callout
    #: (VMware's adaptive policy retranslates after the first)
    ADAPT_THRESHOLD = 1

    @property
    def kernel_ring(self) -> int:
        return 1

    # -- the real machine -------------------------------------------------------------------------
    def make_engine(self, hypervisor) -> Translator:
        return Translator(hypervisor.cpu, hypervisor, max_block=self.max_block,
                          translate_cpls=self.translated_rings)

    def bind(self, hypervisor) -> None:
        super().bind(hypervisor)
        #: the translator of the physical CPU whose turn it is
        self.translator = self.engine
        #: the VM the translator's counters are currently attributed to
        self._owner = None
        self._marks = self._read_stats()
        self._direct_mark = self.translator.counters()[_DIRECT]
        #: the same, saved for every physical CPU while another has its turn (`switch_pcpu`)
        self._saved = [(t, None, t.counters()[:len(_STATS)], t.counters()[_DIRECT])
                       for t in self.engines]

        #: host-physical address of a translated store -> its ptemod traps so far (below the
        #: threshold)
        self._ptemod_traps: dict[int, int] = {}

    def switch_pcpu(self, old: int, new: int) -> None:
        self._saved[old] = (self.translator, self._owner, self._marks, self._direct_mark)
        self.translator, self._owner, self._marks, self._direct_mark = self._saved[new]

    # -- per VM -----------------------------------------------------------------------------------
    def attach(self, vm) -> None:
        vm.pager = ShadowPager(vm, self.hypervisor.frames, "0/1/3")
        vm.translation = TranslationCounters()

    def detach(self, vm) -> None:
        self._drop_translations(vm)
        if self._owner is vm:
            self._owner = None
        self._saved = [(t, None if owner is vm else owner, marks, direct)
                       for t, owner, marks, direct in self._saved]
        super().detach(vm)

    def reset(self, vm) -> None:
        super().reset(vm)
        self._drop_translations(vm)

    def _drop_translations(self, vm) -> None:
        """Forget every block translated from `vm`'s slice (VMM housekeeping: not counted as the
        VM's invalidations)."""
        self._attribute()
        for translator in self.engines:
            translator.unadapt(vm.base, vm.size)
            translator.invalidate(vm.base, vm.size)
        self._marks = self._read_stats()
        self._saved = [(t, owner, t.counters()[:len(_STATS)], direct)
                       for t, owner, _marks, direct in self._saved]
        end = vm.base + vm.size
        for pa in [pa for pa in self._ptemod_traps if vm.base <= pa < end]:
            del self._ptemod_traps[pa]

    def load(self, vm, cpu, switch: bool) -> None:
        if self._owner is not vm:
            self._attribute()
            self._owner = vm
        super().load(vm, cpu, switch)

    def unload(self, vm, cpu) -> None:
        self._attribute()
        super().unload(vm, cpu)

    # -- counting ---------------------------------------------------------------------------------
    def _read_stats(self) -> tuple[int, ...]:
        return self.translator.counters()[:len(_STATS)]

    def _attribute(self) -> None:
        """Credit the translator's work since the last call to the VM that was running."""
        now = self._read_stats()
        owner = self._owner
        if owner is not None and now != self._marks:
            counters = owner.translation
            for name, new, old in zip(_STATS, now, self._marks):
                setattr(counters, name, getattr(counters, name) + new - old)
            translated = now[1] - self._marks[1]
            if translated:
                owner.count_event("translation", translated)
        self._marks = now

    def retired(self, vm, n: int, software: bool = False) -> None:
        """Split the `n` instructions `vm` retired on the real CPU into direct (ring 3, the
        interpreter) and translated ones."""
        translator = self.translator
        now = translator.counters()[_DIRECT]
        direct = now - self._direct_mark
        self._direct_mark = now
        if software and self.hypervisor.cpu.cpl not in translator.translate_cpls:
            # an `int n` of directly executed code: the translator counts it as direct once the
            # interpreter's step returns, after this VMM entry
            direct += 1
            self._direct_mark += 1
        if direct:
            vm.count_event("instruction", direct)
        if n - direct:
            vm.count_event("translated_instruction", n - direct)
        self._attribute()

    # -- adaptation -------------------------------------------------------------------------------
    def _ptemod(self, vm, event):
        """A trapped store into a traced page-table frame: emulated as under trap-emulate; when it
        came from translated code, counted towards adapting it to a callout."""
        pa = self.translator.faulting_pa  # None unless the store ran translated
        decoded = super()._ptemod(vm, event)
        if pa is not None and adaptable(decoded):
            traps = self._ptemod_traps.get(pa, 0) + 1
            if traps < self.ADAPT_THRESHOLD:
                self._ptemod_traps[pa] = traps
            else:
                self._ptemod_traps.pop(pa, None)
                for translator in self.engines:  # every physical CPU's copy of the code
                    translator.adapt(pa)
                vm.translation.adaptations += 1
        return decoded

    # -- callouts ---------------------------------------------------------------------------------
    def handle_callout(self, vm, decoded) -> None:
        """Emulate a sensitive or privileged instruction of translated code against the vCPU,
        or a store adapted to a callout against the guest and the shadow (`emulate_store`); a
        fault either raises is reflected into the guest as that instruction's."""
        mnemonic = decoded.definition.mnemonic
        vm.count_entry(f"callout:{mnemonic}")
        vm.count_event("callout")
        vm.translation.callouts += 1
        if not decoded.definition.sensitive:
            emulate_store(vm, decoded, event=None)  # adapted (Translator.adapt)
            return
        try:
            emulate(vm, decoded, event=None)
        except GuestFault as fault:
            vm.deliver(fault.vector, fault.error, decoded.pc, "exception", fault.address)

    # -- results ----------------------------------------------------------------------------------
    def run(self, guest, *, placement: str = "system", max_steps: int | None = None,
            trace=None, pcpus: int | None = None):
        """Run `guest` alone in a fresh `Hypervisor`; the result has the translator's fields."""
        super().run(guest, placement=placement, max_steps=max_steps, trace=trace, pcpus=pcpus)
        return self.result(self.hypervisor, self.last_vm)

    def result(self, hypervisor, vm):
        """`vm`'s `VMRunResult`, with the translator's fields filled."""
        self._attribute()
        counters = vm.translation
        return attrs.evolve(
            vm_result(self, hypervisor, vm),
            emulated_instructions=vm.events.get("emulated_instruction", 0),
            callouts=counters.callouts,
            blocks_translated=counters.blocks_translated,
            cache_hits=counters.cache_hits,
            cache_misses=counters.cache_misses,
            invalidations=counters.invalidations)


@register
class FullBinaryTranslation(BinaryTranslation):
    """``binary-translation-all``: the guest's applications run translated too.

    VMware runs guest applications directly, so their sensitive-unprivileged instructions read
    real state: a ring-3 ``sidt`` sees the VMM's table, ``smsw`` the real cr0, ``pushf`` the real IF
    — the "red pill" (docs/virtualization.md).  Translating ring 3 as well turns those into
    callouts emulated against the vCPU, so every program behaves as on bare metal, at the price
    of translating (and calling out from) application code.  Not in the default comparison; name
    it with ``--vmm binary-translation-all``."""

    name = "binary-translation-all"
    in_default_comparison = False
    translated_rings = TRANSLATED_RINGS | {3}


__all__ = ["TRANSLATED_RINGS", "BinaryTranslation", "FullBinaryTranslation",
           "TranslationCounters"]
