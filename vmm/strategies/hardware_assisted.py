"""``hardware-assisted``: a VMM on the CPU's "vt" extension (Intel VT-x / AMD SVM, 2005).

The guest kernel runs *unmodified at its own ring 0* in non-root mode; what the real CPU holds
while a guest runs — registers, pc, flags with its own IF, CPL, idtr, cr0, cr2, cr3, ksp — is the
guest's, so ``popf``, ``pushf``, ``rdcs``, ``sidt`` and ``smsw`` behave as on bare metal and
``guests/nanobench`` is equivalent (unlike under trap-emulate).  Each VM has one control
structure (VMCS/VMCB) in the VMM's region of host RAM, never mapped into any guest; the
`Hypervisor` is the CPU's monitor and hands every VM exit to `HardwareAssisted.handle_exit`.

Variants (generations, ``hardware-assisted:2`` is the default):

| | ``1`` (first-generation VT-x, 2005) | ``2`` (nested paging: EPT/NPT, 2008) |
| --- | --- | --- |
| guest address space | shadow page tables (`toyvisor.vmm.shadow`, as trap-emulate): ``GUEST_CR3`` = the shadow root | the guest's own cr3 and tables, through a nested table guest-physical ``0..size`` → the VM's slice |
| exits on paging | ``mtcr``/``mfcr cr3``, ``mtcr cr0`` (cr0.PG owned by the VMM: mask + read shadow), ``invlpg``, every #PF (exception bitmap bit 14) | none (``nested-page-fault`` only for an access beyond the guest's RAM: #GP(0) as natively) |

Both: exits on ``hlt`` and port I/O (emulated against the VM's virtual devices with the ISA table's
own handlers, `toyvisor.vmm.emulate`), external-interrupt exiting with acknowledge (the real timer
is the VMM's: scheduling quantum and virtual timer deadlines, exactly as under trap-emulate),
virtual interrupts by **event injection** when the guest's IF = 1, else **interrupt-window
exiting**.  Guest exceptions and ``int n`` are delivered by the hardware through the guest's own
table *without* an exit, so system calls and ``div`` by zero cost no VMM entry.

VMM entries (``by_cause`` keys; ``vmm_entries`` = the number of exits):

| cause | what the VMM does |
| --- | --- |
| ``exit:hlt``, ``exit:io``, ``exit:cr-access``, ``exit:invlpg`` | decode the instruction at the guest pc (an I/O exit of generation 2: from its qualification, no fetch), emulate it against the vCPU (the virtual clock counts it; the pc advances by its length) |
| ``exit:exception`` (generation 1, #PF) | a *hidden* fault: fill the shadow entry; a *ptemod*: a write to a guest page-table frame, write-protected in the shadows: emulate the store; a *guest* fault: inject #PF with the guest's cr2 (#GP(0) beyond its RAM) |
| ``exit:nested-page-fault`` (generation 2) | an access beyond the guest's RAM: inject #GP(0) |
| ``exit:external-interrupt`` | the real timer: virtual time, virtual IRQ 0, scheduling |
| ``exit:interrupt-window`` | the guest set IF: inject the pending virtual IRQ |
| ``exit:triple-fault`` | the VM stops (``triple-fault``) |
| ``exit:vmcall``, ``exit:vmrun`` | no hypercalls, no nested virtualization: #UD, as ``vmcall`` natively |

A fault that hits the delivery of an event (the exit's vectoring information) is resolved and the
event re-injected; when it is the guest's own fault (its stack unmapped in its tables ...) the VMM
delivers the event itself (`VM.deliver`) so that the #DF / triple fault is exactly native.

Counting: ``vm_exit`` per exit (``vm_exit:pgfault`` for #PF and nested-page-fault exits, part of
the plain count), ``instruction`` for instructions retired in non-root mode, ``guest_trap`` for the
events the hardware delivered through the guest's table on its own (``cpu.vt.guest_traps``
minus the VMM's injections; ``guest_trap:pgfault`` for the page faults among them), ``interrupt_injection`` for every event the VMM injects or
delivers, ``emulated_instruction``, ``shadow_sync`` (generation 1), ``device_access``,
``host_syscall`` (hosted), ``world_switch`` and ``tlb_flush``.  The guest-visible causes and
delivery steps the hardware counts on the real CPU are credited to the VM that was running.
Efficiency = instructions retired in non-root mode / guest instructions.

Invariant: while a VM is not in non-root mode its vCPU is authoritative (every exit reads the
guest-state area into it; every entry writes it back), so snapshots, equivalence and world
switches use the framework unchanged.  An event the VMM decided to inject is never left pending
when the VM leaves the real CPU: `unload` delivers it in software.
"""

from __future__ import annotations

import struct

import attrs

from toyvisor.cpu.cpu import cause_name
from toyvisor.cpu.decode import DECODINGS
from toyvisor.cpu.events import InstructionEvent
from toyvisor.cpu.mmu import FETCH, READ, WRITE
from toyvisor.cpu.vt import ControlStructure, io_instruction
from toyvisor.isa import vt as V
from toyvisor.isa.encoding import DecodeError
from toyvisor.isa.codegen import FACTORIES
from toyvisor.isa.faults import GuestFault
from toyvisor.isa.table import BY_MNEMONIC
from toyvisor.isa.spec import (
    CR0,
    CR0_PG,
    CR3,
    FLAG_IF,
    M32,
    PAGE_SIZE,
    PF_CPL_SHIFT,
    PF_FETCH,
    PF_WRITE,
    PTE_FRAME,
    PTE_P,
    PTE_W,
    VEC_BP,
    VEC_GP,
    VEC_IRQ0,
    VEC_PF,
    VEC_UD,
)

from ..emulate import emulate
from ..shadow import ShadowPager
from . import Strategy, register
from .trap_emulate import VMMBug

#: I/O handlers a strategy keeps bound (`HardwareAssisted._io_handler`)
_MAX_IO_HANDLERS = 4096
#: consecutive hidden faults at one (pc, address) that mean the VMM makes no progress
_MAX_HIDDEN_RETRIES = 8
#: exit controls of both generations
#: the exception bitmap of the last quantum before a budget's end: every vector that counts as
#: a budget step when delivered — all but #BP, which only `brk` raises: a software interrupt,
#: counted as the instruction that retires, as natively
_ALL_EXCEPTIONS = ((1 << 32) - 1) & ~(1 << VEC_BP)
_CONTROLS = V.EXIT_HLT | V.EXIT_IO | V.EXIT_EXTERNAL_INTERRUPT | V.EXIT_ACK_INTERRUPT
#: generation 1: mtcr cr0, mtcr cr3, mfcr cr3 exit (cr0.PG is owned through the mask)
_CR_EXITS_GEN1 = (1 << CR0) | (1 << CR3) | (1 << (V.CR_READ_SHIFT + CR3))
_SOFTWARE_INTERRUPTS = frozenset({"int", "brk"})
#: the guest-state area is 26 contiguous words (r0..r15, pc, flags, cpl, idtr, cr0, cr2, cr3,
#: ksp0..2): the VMM moves it as one block at every exit and entry
_GUEST_STATE = struct.Struct(f"<{len(V.GUEST_STATE_FIELDS)}I")
assert [offset for _name, offset in V.GUEST_STATE_FIELDS] == \
    list(range(V.GUEST_REGS, V.GUEST_REGS + _GUEST_STATE.size, 4))


class HardwareShadowPager(ShadowPager):
    """Shadow page tables for a guest kernel at its own ring 0: every entry keeps the guest's
    privilege level (no ring deprivileging, so no ring aliasing in the shadows either)."""

    def __init__(self, vm, frames) -> None:
        super().__init__(vm, frames, "0/1/3")

    def real_pl(self, pl: int) -> int:
        return pl


_TABLE_SPAN = 1 << 22  # the guest-physical bytes one nested page table maps


class NestedTable:
    """Generation 2: one VM's nested page table, guest-physical ``[0, size)`` → its slice,
    writable, built once in the VMM region.  Stands in the VM's ``pager`` slot: guest writes
    and ``invlpg`` need no VMM work, and the resource audit reads `mapped_host_frames`."""

    KEY = ("nested",)
    #: the guest frames whose writes the VMM must see (`VM.plain_frame`): none
    protected = frozenset()

    def __init__(self, vm, frames) -> None:
        self.frames = frames
        memory = frames.memory
        self.root = frames.alloc()
        self.tables: dict[int, int] = {}
        for first in range(0, vm.size, _TABLE_SPAN):
            table = self.tables[first >> 22] = frames.alloc()
            memory.write32(self.root + 4 * (first >> 22), table | PTE_P | PTE_W)
            # One block write per table, not one per page: start-up must not grow with the
            # guest's RAM (docs/performance.md, Scaling).
            end = vm.base + min(vm.size, first + _TABLE_SPAN)
            entries = range((vm.base + first) | PTE_P | PTE_W, end, PAGE_SIZE)
            memory.write(table, struct.pack(f"<{len(entries)}I", *entries))

    def guest_write(self, gpa: int, size: int) -> int:
        return 0

    def invlpg(self, va: int) -> None:
        pass

    def release(self) -> None:
        for table in self.tables.values():
            self.frames.release(table)
        self.frames.release(self.root)
        self.tables.clear()

    def mapped_host_frames(self) -> list[tuple[tuple, int, int]]:
        """Every (table, guest page, host frame) the nested table maps (resource audit)."""
        memory = self.frames.memory
        found = []
        for index, table in self.tables.items():
            for i in range(1024):
                entry = memory.read32(table + 4 * i)
                if entry & PTE_P:
                    found.append((self.KEY, (index << 10) | i, entry & PTE_FRAME))
        return found


@attrs.define
class HardwareContext:
    """The per-VM state of the hardware-assisted VMM (``vm.vcpu.hardware``)."""

    vmcs: ControlStructure
    #: an exception (vector, error, source) to inject at the next VM entry
    pending: tuple[int, int, str] | None = None
    #: the event injected at the last VM entry (it is delivered before any guest instruction)
    injected: tuple[int, int, str] | None = None
    #: real-CPU counters at the last VM entry: (deliveries, guest traps, by_cause, retired)
    marks: tuple = ()
    #: generation 1: the shadow root of the last entry
    root: int | None = None
    #: (pc, address) of the last hidden fault and how many times in a row it happened
    streak: tuple = (None, 0)


@register
class HardwareAssisted(Strategy):
    """Hardware-assisted virtualization (see the module docstring); variants: generations."""

    name = "hardware-assisted"
    variants = ("2", "1")
    timer_entry = ("exit:external-interrupt", "vm_exit")

    @property
    def nested(self) -> bool:
        return self.variant == "2"

    #: emulate an I/O exit from its qualification (False: decode it at the guest pc, as every
    #: other instruction exit; the reference the differential tests compare with)
    io_from_qualification = True

    def bind(self, hypervisor) -> None:
        super().bind(hypervisor)
        self._trace = None
        #: (qualification << 32 | pc) -> the bound handler of that I/O instruction
        self._io_handlers: dict[int, object] = {}

    def execute(self, cpu, max_steps: int, trace=None) -> str:
        self._trace = trace  # exiting instructions never reach the CPU's trace: we report them
        try:
            return super().execute(cpu, max_steps, trace)
        finally:
            self._trace = None

    def handle(self, vm, event) -> None:
        raise VMMBug(f"{vm.name}: a trap from a VM that runs in non-root mode ({event})")

    # -- per VM -----------------------------------------------------------------------------------
    #: exits whose handling changes nothing a guest translation depends on: the guest's TLB,
    #: kept by the CPU (`VirtualizationUnit.keep_tlb`), survives them; any other exit, and any
    #: change of a VM's tables or state from outside (attach, detach, reset), invalidates it
    _KEEPS_TLB = frozenset(("io", "external-interrupt", "interrupt-window", "hlt", "rdpid",
                            "exception"))

    #: let the CPU keep the guest's TLB across exits (generation 2; False: an empty TLB at
    #: every entry, the reference the differential tests compare with)
    tagged_tlb = True

    def _invalidate_tlbs(self) -> None:
        for cpu in self.hypervisor.machine.cpus:
            # shadow tables (generation 1) change at exits: never kept
            cpu.vt.keep_tlb = self.nested and self.tagged_tlb
            cpu.vt.invalidate()
            cpu.vt.invalidate()

    def attach(self, vm) -> None:
        self._invalidate_tlbs()
        frames = self.hypervisor.frames
        # one control structure per vCPU (a VMCS is a CPU's state); one nested table or one set
        # of shadow tables per VM, shared by its vCPUs
        for vcpu in vm.vcpus:
            vcpu.hardware = HardwareContext(ControlStructure(frames.memory,
                                                             frames.alloc()).initialize())
        vm.pager = NestedTable(vm, frames) if self.nested else HardwareShadowPager(vm, frames)
        for vcpu in vm.vcpus:
            vmcs = vcpu.hardware.vmcs
            if self.nested:
                vmcs[V.NESTED_CONTROL] = V.NESTED_ENABLE
                vmcs[V.NESTED_ROOT] = vm.pager.root
            else:
                vmcs[V.CR_EXITS] = _CR_EXITS_GEN1
                vmcs[V.CR0_GUEST_HOST_MASK] = CR0_PG

    def detach(self, vm) -> None:
        self._invalidate_tlbs()
        frames = self.hypervisor.frames
        if self.nested:
            vm.pager.release()
        else:
            vm.pager.unbind()
            vm.pager.reset()
        for vcpu in vm.vcpus:
            frames.release(vcpu.hardware.vmcs.address)

    def reset(self, vm) -> None:
        self._invalidate_tlbs()
        if not self.nested:
            vm.pager.reset()
        for vcpu in vm.vcpus:
            hw = vcpu.hardware
            hw.pending = hw.injected = hw.root = None
            hw.streak = (None, 0)

    # -- VM entry ---------------------------------------------------------------------------------
    def load(self, vm, cpu, switch: bool) -> None:
        """VM entry: the vCPU into the guest-state area, the events, the controls; `vm_enter`."""
        hw = vm.vcpu.hardware
        vmcs = hw.vmcs
        vcpu = vm.vcpu
        controls = _CONTROLS
        if self.nested:
            cr0, cr3 = vcpu.cr0, vcpu.cr3
            if switch:
                vm.count_event("tlb_flush")
        else:
            controls |= V.EXIT_INVLPG
            root = vm.pager.root()
            vm.pager.bind(cpu)  # a shadow entry that changes is invalidated on this CPU too
            if switch or root != hw.root:
                vm.count_event("tlb_flush")  # another address space's shadow
            hw.root = root
            cr0, cr3 = vcpu.cr0 | CR0_PG, root
            vmcs[V.CR0_READ_SHADOW] = vcpu.cr0
        vmcs.write(V.GUEST_REGS, _GUEST_STATE.pack(
            *vcpu.regs, vcpu.pc & M32, vcpu.flags, vcpu.cpl, vcpu.idtr & M32, cr0, vcpu.cr2 & M32,
            cr3 & M32, *vcpu.ksp))
        # events: a pending exception first, else the lowest virtual IRQ if the guest's IF allows
        event, hw.pending = hw.pending, None
        pic = vm.devices.platform.pic
        if event is None and vcpu.flags & FLAG_IF:
            line = pic.acknowledge()
            if line is not None:
                event = (VEC_IRQ0 + line, 0, "interrupt")
        if event is not None:
            vmcs.inject(event[0], event[2], event[1])
            vm.count_event("interrupt_injection")
        hw.injected = event
        if pic.deliverable():
            controls |= V.EXIT_INTERRUPT_WINDOW  # inject as soon as the guest sets IF
        vmcs[V.EXIT_CONTROLS] = controls
        # The budget counts delivered exceptions, which the hardware delivers in the guest with
        # no tick and no exit; within a quantum of the budget's end the VMM intercepts them all,
        # so that the run stops at exactly the step where bare metal stops.
        bitmap = 1 << VEC_PF if not self.nested else 0
        if vm.step_limit - vm.steps <= self.hypervisor.quantum:
            bitmap = _ALL_EXCEPTIONS
        vmcs[V.EXCEPTION_BITMAP] = bitmap
        hw.marks = (cpu.deliveries, cpu.vt.guest_traps, dict(cpu.by_cause), cpu.retired,
                    cpu.vt.guest_page_faults)
        cpu.vm_enter(vmcs.address)

    def entry_steps(self, vm) -> int:
        injected = vm.vcpu.hardware.injected
        return 1 if injected is not None and injected[2] != "software" else 0

    def unload(self, vm, cpu) -> None:
        """The VM leaves the real CPU: an exception still to inject is delivered now, by the VMM,
        so that the vCPU and guest memory hold the whole state (snapshots, other VMs)."""
        if not self.nested:
            vm.pager.unbind(cpu)
        hw = vm.vcpu.hardware
        if hw.pending is not None and vm.runnable:
            vector, error, source = hw.pending
            hw.pending = None
            vm.deliver(vector, error, vm.vcpu.pc, source)

    def service_interrupts(self, vm) -> None:
        platform = vm.devices.platform
        platform.timer.update(platform.clock)  # the IRQ is injected at the next VM entry

    # -- VM exit ----------------------------------------------------------------------------------
    def handle_exit(self, vm, exit) -> None:
        cpu = self.hypervisor.cpu
        self._read_guest_state(vm, cpu)
        self._credit_hardware(vm, cpu)
        reason = exit.reason
        if reason not in self._KEEPS_TLB:
            cpu.vt.invalidate()
        vm.count_entry(f"exit:{reason}")
        vm.count_event("vm_exit")
        if reason in ("hlt", "io", "cr-access", "invlpg", "rdpid"):
            self._emulate(vm, exit)
        elif reason == "exception":
            vector, error, _source = exit.interruption
            if vector == VEC_PF and not self.nested:
                vm.count_event("vm_exit:pgfault")
                self._page_fault(vm, exit, error)
            else:  # not selected by our bitmap: give it back to the guest
                self._guest_fault(vm, exit, GuestFault(vector, error, exit.guest_linear))
        elif reason == "nested-page-fault":
            vm.count_event("vm_exit:pgfault")
            if exit.guest_physical < vm.size:
                raise VMMBug(f"{vm.name}: nested page fault inside the guest's RAM at "
                             f"{exit.guest_physical:#010x}")
            self._guest_fault(vm, exit, GuestFault(VEC_GP, 0))  # beyond its RAM, as natively
        elif reason == "external-interrupt":
            if self.hypervisor.placement == "hosted":
                vm.count_event("host_syscall")  # the host delivers its timer signal
        elif reason == "interrupt-window":
            pass  # the entry injects the pending virtual IRQ
        elif reason == "triple-fault":
            vm._triple_fault(exit.pc, ["a fault while delivering a double fault (VM exit "
                                       "triple-fault)"])
        elif reason in ("vmcall", "vmrun"):
            self._guest_fault(vm, exit, GuestFault(VEC_UD, 0))
        else:
            raise VMMBug(f"{vm.name}: unexpected VM exit '{reason}' at {exit.pc:#010x}")

    def _read_guest_state(self, vm, cpu) -> None:
        """vCPU ← the guest-state area (and the root registers mirror it, for traces)."""
        words = vm.vcpu.hardware.vmcs.read(_GUEST_STATE, V.GUEST_REGS)
        vcpu = vm.vcpu
        regs = vcpu.regs
        regs[:] = words[:16]
        vcpu.pc, vcpu.flags, vcpu.cpl, vcpu.idtr, cr0, vcpu.cr2, cr3 = words[16:23]
        vcpu.ksp[:] = words[23:26]
        if self.nested:
            # the guest changes cr0 and cr3 in hardware; the VMM's walker follows afresh
            vcpu.cr0, vcpu.cr3 = cr0, cr3
            vm.mmu.cr3 = vcpu.cr3
            vm.mmu.flush()
        cpu.regs[:] = regs
        cpu.pc, cpu.flags = vcpu.pc, vcpu.flags

    def _credit_hardware(self, vm, cpu) -> None:
        """What the real CPU counted for the guest since the entry: delivery steps (the exit
        itself is one step, not the guest's), its own traps, the guest-visible causes."""
        hw = vm.vcpu.hardware
        deliveries, traps, causes, _retired, page_faults = hw.marks
        vm.deliveries += cpu.deliveries - deliveries - 1
        own = cpu.vt.guest_traps - traps - (1 if hw.injected is not None else 0)
        if own:
            vm.count_event("guest_trap", own)
        injected_pf = hw.injected is not None and hw.injected[0] == VEC_PF
        own_page_faults = cpu.vt.guest_page_faults - page_faults - injected_pf
        if own_page_faults:
            vm.count_event("guest_trap:pgfault", own_page_faults)
        if cpu.by_cause == causes:
            return  # (most exits: nothing delivered since the entry)
        guest_causes = vm.guest_causes
        for cause, count in cpu.by_cause.items():
            delta = count - causes.get(cause, 0)
            if delta:
                guest_causes[cause] = guest_causes.get(cause, 0) + delta

    def _uncount(self, vm, event: tuple[int, int, str], hardware_trap: bool) -> None:
        """Take back the counts of an aborted delivery that will happen again (re-injected,
        re-executed or delivered by the VMM): natively it happens once."""
        vector, _error, source = event
        cause = cause_name(vector, source)
        remaining = vm.guest_causes.get(cause, 0) - 1
        if remaining > 0:
            vm.guest_causes[cause] = remaining
        else:
            vm.guest_causes.pop(cause, None)
        if source != "software":
            vm.deliveries -= 1
        if hardware_trap:
            vm.count_event("guest_trap", -1)
            if vector == VEC_PF:
                vm.count_event("guest_trap:pgfault", -1)

    def _vectoring_was_injected(self, vm, exit) -> bool:
        hw = vm.vcpu.hardware
        return hw.injected == exit.vectoring and \
            self.hypervisor.cpu.retired == hw.marks[3]

    # -- emulation --------------------------------------------------------------------------------
    def _decode(self, vm, pc: int):
        """The guest instruction at linear `pc`, read through the guest's own translation."""
        return self._decode_bound(vm, pc)[0]

    def _decode_bound(self, vm, pc: int):
        """(`_decode`, the table's handler bound to it): from the process's decodings
        (`toyvisor.cpu.decode.DECODINGS`, pure in the words and pc), so an exit at an
        instruction met before neither decodes nor binds it again."""
        cpl = vm.vcpu.cpl

        def next_word() -> int:
            return vm.memory.read32(vm.translate((pc + 4) & M32, FETCH, cpl))

        try:
            return DECODINGS.decode(vm.memory.read32(vm.translate(pc, FETCH, cpl)), pc,
                                    next_word)
        except DecodeError as error:
            raise VMMBug(f"{vm.name}: cannot decode the exiting instruction: {error}") from None

    def _emulate(self, vm, exit) -> None:
        """An instruction exit: emulate it against the vCPU (pc += its length, clock + 1).

        An I/O exit of generation 2 needs no fetch: its qualification names the instruction
        (`io_instruction`), whose handler is bound once per (qualification, pc).  Generation 1
        decodes through the guest's translation, whose virtual TLB (kept across exits there)
        then holds the code page as the CPU's own does natively; so does a traced run (the
        trace shows the decoded instruction)."""
        if exit.reason == "io" and self._trace is None and self.io_from_qualification \
                and self.nested:
            key = (exit.qualification << 32) | exit.pc
            handler = self._io_handlers.get(key)
            if handler is None:
                handler = self._io_handler(exit.qualification, exit.pc)
            self._emulate_decoded(vm, None, exit, handler)
            return
        decoded, handler = self._decode_bound(vm, exit.pc)
        if self._trace is not None:
            self._trace(InstructionEvent(exit.pc, vm.vcpu.cpl, decoded,
                                         self.hypervisor.cpu.index))
        self._emulate_decoded(vm, decoded, exit, handler)

    def _io_handler(self, qualification: int, pc: int):
        """The table's handler of the `in`/`out` at `pc` that `qualification` describes."""
        mnemonic, fields = io_instruction(qualification)
        definition = BY_MNEMONIC[mnemonic]
        handler = FACTORIES[definition.opcode](**fields, pc=pc,
                                               npc=(pc + definition.length) & M32)
        handlers = self._io_handlers
        if len(handlers) >= _MAX_IO_HANDLERS:
            handlers.clear()
        handlers[(qualification << 32) | pc] = handler
        return handler

    def _emulate_decoded(self, vm, decoded, exit, handler=None) -> None:
        try:
            emulate(vm, decoded, handler=handler)
        except GuestFault as fault:
            self._inject(vm, fault)

    def _inject(self, vm, fault: GuestFault) -> None:
        """Reflect a fault of the instruction at the guest pc by injection at the next entry."""
        if fault.vector == VEC_PF and fault.address is not None:
            vm.vcpu.cr2 = fault.address & M32
        vm.vcpu.hardware.pending = (fault.vector, fault.error, "exception")

    def _guest_fault(self, vm, exit, fault: GuestFault) -> None:
        """A fault the guest sees: of the instruction (inject it), or of an event's delivery
        (the VMM delivers the event itself: the fault, #DF or triple fault come out as natively)."""
        if exit.vectoring is None:
            self._inject(vm, fault)
            return
        vector, error, source = exit.vectoring
        self._uncount(vm, exit.vectoring, not self._vectoring_was_injected(vm, exit))
        vm.deliver(vector, error, exit.pc, source)

    def _retry(self, vm, exit) -> None:
        """The faulting access will simply happen again: an interrupted event is re-injected,
        an ``int n`` whose delivery faulted runs again (each counted once, as natively)."""
        if exit.vectoring is not None:
            self._uncount(vm, exit.vectoring, not self._vectoring_was_injected(vm, exit))
            vm.vcpu.hardware.pending = exit.vectoring
            return
        decoded = self._decode(vm, exit.pc)
        if decoded.definition.mnemonic in _SOFTWARE_INTERRUPTS:
            self._uncount(vm, (decoded.fields.get("vector", 3), 0, "software"), True)

    def _page_fault(self, vm, exit, error: int) -> None:
        """Generation 1: a #PF exit is a hidden fault, a ptemod or the guest's own fault."""
        va = exit.guest_linear & M32
        access = WRITE if error & PF_WRITE else FETCH if error & PF_FETCH else READ
        cpl = (error >> PF_CPL_SHIFT) & 3  # the ring of the access (delivery accesses: theirs)
        hw = vm.vcpu.hardware
        streak, hw.streak = hw.streak, (None, 0)
        if not vm.vcpu.cr0 & CR0_PG:
            if access == WRITE and vm.pager.log_physmap_write(va):  # migration's dirty log
                self._retry(vm, exit)
                return
            # the physmap maps all of the guest's RAM: this is beyond it, #GP(0) natively
            self._guest_fault(vm, exit, GuestFault(VEC_GP, 0))
            return
        try:
            vm.translate(va, access, cpl)
        except GuestFault as fault:
            self._guest_fault(vm, exit, fault)
            return
        entry = vm.mmu.tlb[va >> 12]
        pager = vm.pager
        ptemod = access == WRITE and pager.is_protected(entry[0] >> 12)
        if access == WRITE and not ptemod:
            pager.log_write(entry[0] >> 12)  # migration's dirty log
        if exit.vectoring is not None:
            if ptemod:  # the event's frame lands on a guest page table: deliver it ourselves
                self._guest_fault(vm, exit, GuestFault(VEC_PF, error, va))
                return
            pager.fill(va, entry)
            self._uncount(vm, exit.vectoring, not self._vectoring_was_injected(vm, exit))
            hw.pending = exit.vectoring  # re-inject the interrupted event
            return
        decoded = self._decode(vm, exit.pc) if access != FETCH else None
        if decoded is not None and decoded.definition.mnemonic in _SOFTWARE_INTERRUPTS:
            # the `int n` whose delivery faulted runs again (or is emulated): counted once
            self._uncount(vm, (decoded.fields.get("vector", 3), 0, "software"), True)
        if ptemod:
            self._emulate_decoded(vm, decoded, exit)
            return
        last, count = streak
        count = count + 1 if last == (exit.pc, va) else 1
        if count > _MAX_HIDDEN_RETRIES:
            raise VMMBug(f"{vm.name}: shadow fill for {va:#010x} at pc {exit.pc:#010x} does "
                         "not resolve the fault")
        hw.streak = ((exit.pc, va), count)
        pager.fill(va, entry)
        if vm.on_retry is not None and access != FETCH:
            vm.on_retry()  # the instruction was attempted (and traced) and will run again


__all__ = ["HardwareAssisted", "HardwareContext", "HardwareShadowPager", "NestedTable"]
