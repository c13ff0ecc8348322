"""`Hypervisor`: owns the real machine, hosts VMs, schedules them, is the CPU's monitor.

Host RAM = the **VMM region** ``[0, vmm_region)`` (the real interrupt table and the frames of
every shadow page table: never mapped into any guest) followed by one **slice** per VM.

The real CPU only ever runs guest code; the VMM "runs" in Python inside the monitor seam
(`toyvisor.cpu.monitor`): every exception, software interrupt and IRQ on the real CPU is a
guest→VMM transfer (``trap``).  One VMM entry:

1. *exit*: copy the real registers, pc and condition flags into the current VM's vCPU and
   advance the VM's virtual time by the instructions the real CPU retired for it;
2. let the strategy handle the event (emulate, fill a shadow entry, reflect into the guest ...);
3. at the instruction boundary: the VM's step budget, then its virtual interrupts (inject when the
   virtual IF allows), as the bare CPU does before every instruction;
4. schedule: round-robin on the real timer, a quantum of `quantum` real ticks per VM; a switch
   saves one VM's state and loads the next (``world_switch`` + ``tlb_flush``);
5. *entry*: load the vCPU into the real CPU at the strategy's real ring, with the real IF = 1,
   real paging on through the strategy's table, and the real timer programmed for the earliest
   of the VM's next virtual timer deadline, the end of its quantum and the end of its budget.

A strategy that translates guest code (``binary-translation``) runs the real CPU through its
translator (`Strategy.execute`) and makes the hypervisor its callouts object: a translated
sensitive or privileged instruction enters the VMM through `callout` instead of a trap, and the
same steps 1–5 follow (step 2 is `Strategy.handle_callout`).

A strategy built on the CPU's "vt" extension (``hardware-assisted``) runs each guest in non-root
mode from a control structure: the hypervisor is the CPU's monitor for VM exits too (`vm_exit`),
and the same steps 1–5 follow (step 1 also reads the guest state from the structure: the
strategy's `Strategy.handle_exit`; step 5 is a VM entry, made by the strategy's ``load``).

Placement ``system`` (type 1) and ``hosted`` (type 2) behave identically; a hosted VMM counts
``host_syscall`` events for virtual-device accesses and timer programming (the host OS does it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from toyvisor.cpu.cpu import _SOFTWARE_CAUSES, BUDGET, CPU, cause_name, event_kind
from toyvisor.cpu.events import TrapEvent, interleave_console
from toyvisor.cpu.machine import DEFAULT_INTERLEAVE, Machine
from toyvisor.isa.spec import MAX_CPUS
from toyvisor.cpu.monitor import Monitor
from toyvisor.isa.faults import GuestFault
from toyvisor.isa.spec import (
    COND_MASK,
    CR0,
    CR0_PG,
    FLAG_IF,
    GATE_P,
    GATE_SIZE,
    IRQ_TIMER,
    NUM_VECTORS,
    PAGE_SIZE,
    VEC_GP,
)

from .pcpu import PhysicalCPU, place
from .shadow import FrameAllocator
from .vcpu import HALTED as VCPU_HALTED
from .vcpu import IDLE, READY
from .vm import DESTROYED, RUNNABLE, VM, VMError

if TYPE_CHECKING:
    from toyvisor.tools.guest import Guest

# `Strategy` in annotations is toyvisor.vmm.strategies.Strategy: not imported (not even for type
# checkers); the strategies build and drive a hypervisor, so they depend on it, not the reverse.

DEFAULT_VMM_REGION = 1 << 20
DEFAULT_QUANTUM = 2_000
PLACEMENTS = ("system", "hosted")
_FOREVER = 1 << 62
#: a vCPU's shadow-fill progress after any other VMM entry (`TrapEmulate.handle`)
_NO_STREAK = (None, 0)
MAX_VIOLATIONS = 20


@attrs.frozen
class VMMEntryEvent:
    """A trace event: the VMM was entered for `vm` at guest pc `pc` — by a ``trap`` (an
    exception, software interrupt or IRQ on the real CPU), a ``callout`` (translated code) or a
    hardware VM ``exit`` — and counted `causes` (``vmm:privileged``, a reflected ``page-fault``
    …) while it handled the entry."""

    pc: int
    vm: str
    how: str
    causes: tuple[str, ...]

    def __str__(self) -> str:
        return (f"{self.pc:08x} [vmm] === {self.vm}: VMM entry by {self.how}: "
                f"{', '.join(self.causes) or 'no cause counted'}")


class Hypervisor(Monitor):
    """A VMM hosting several VMs on one real `Machine` with one `Strategy`."""

    def __init__(self, strategy: Strategy, *, memory_size: int = 32 << 20,
                 placement: str = "system", quantum: int = DEFAULT_QUANTUM,
                 vmm_region: int = DEFAULT_VMM_REGION, audit: bool = True, pcpus: int = 1,
                 interleave: int = DEFAULT_INTERLEAVE) -> None:
        if placement not in PLACEMENTS:
            raise VMError(f"unknown placement '{placement}' (known: {', '.join(PLACEMENTS)})")
        check_pcpus(pcpus)
        self.strategy = strategy
        self.placement = placement
        self.quantum = quantum
        #: steps each physical CPU runs per turn of the host's round-robin (several CPUs)
        self.interleave = interleave
        self.machine = Machine(memory_size=memory_size, cpus=pcpus)
        #: the host's physical CPUs; `pcpu` and `cpu` are the one whose turn it is (the one that
        #: takes a VMM entry), and `current` the VM loaded on it
        self.pcpus = [PhysicalCPU(cpu, i) for i, cpu in enumerate(self.machine.cpus)]
        self.pcpu = self.pcpus[0]
        self.cpu: CPU = self.machine.cpu
        self.vmm_region = vmm_region
        self.vms: list[VM] = []
        self.free: list[tuple[int, int]] = [(vmm_region, memory_size)]
        self.current: VM | None = None
        self.violations: list[str] = []
        self.in_vmm = True
        #: the trace callback of the current `run` (None: not tracing)
        self.trace = None
        #: whether the current run hosts SMP (several physical CPUs or vCPUs): `_run_smp`
        self._smp = False
        #: the physical CPU whose turn comes first in the next `run`
        self._first_turn = 0
        self._slice_end = 0
        self._last_retired = 0
        self._last_clock = 0
        #: 1 while an `int n` the monitor reflected is still to be counted as retired by the CPU
        self._retiring = 0
        #: the VM whose `int n` its own table just refused: the #GP the real CPU raises for it
        #: next is that refusal, to be reflected as such (`_reflect_refusal`)
        self._refused: VM | None = None
        # The real interrupt table is the VMM's: every gate present, so any delivery the monitor
        # did not intercept would enter the VMM, never a guest.
        memory = self.machine.memory
        for vector in range(NUM_VECTORS):
            memory.write32(vector * GATE_SIZE + 4, GATE_P)
        idt_end = -(-NUM_VECTORS * GATE_SIZE // PAGE_SIZE) * PAGE_SIZE
        self.frames = FrameAllocator(memory, idt_end, vmm_region)
        for cpu in self.machine.cpus:
            cpu.idtr = 0  # the table is at host physical 0 (sidt shows it)
            cpu.write_cr(CR0, CR0_PG)
            cpu.monitor = self
            # only the real timer reaches the VMM
            cpu.platform.pic.mask = 0xFFFF & ~(1 << IRQ_TIMER)
        self.audit = audit
        if audit:
            memory.audit = self._audit
        strategy.bind(self)
        #: whether `trap_fields` may take the short paths (the strategy says its handling of a
        #: software interrupt and of a #GP is exactly what they do: trap-and-emulate's)
        self._short_traps = bool(getattr(strategy, "short_traps", False))
        #: whether the strategy counts retired instructions as `Strategy.retired` does
        self._plain_retired = getattr(strategy, "plain_retired", False)

    # -- VMs --------------------------------------------------------------------------------------

    def create_vm(self, guest: Guest, name: str | None = None) -> VM:
        """Create (not yet boot) a VM for `guest`, in a slice of `guest.memory_size` bytes."""
        size = -(-guest.memory_size // PAGE_SIZE) * PAGE_SIZE
        for i, (start, end) in enumerate(self.free):
            if end - start >= size:
                self.free[i] = (start + size, end)
                if start + size == end:
                    del self.free[i]
                break
        else:
            raise VMError(f"not enough host memory for a VM of {size} bytes")
        vm = VM(self, guest, name or f"{guest.name}#{len(self.vms)}", start, size)
        self.vms.append(vm)
        if self.audit:
            self.machine.memory.watch(start, size, read=True, write=True)
        return vm

    def add_vm(self, vm: VM) -> VM:
        """Host a VM whose memory the strategy allocated itself (``vm.owns_slice`` False: a
        paravirtual domain built from machine frames).  Its host ranges start watched."""
        self.vms.append(vm)
        if self.audit:
            for start, size in vm.host_ranges():
                self.machine.memory.watch(start, size, read=True, write=True)
        return vm

    def destroy_vm(self, vm: VM) -> None:
        """Stop `vm` for good and give its slice back (zeroed) to the host."""
        if vm.state == DESTROYED:
            return
        self.strategy.detach(vm)
        if self.current is vm:
            self.current = None
        for pcpu in self.pcpus:
            if pcpu.loaded is not None and pcpu.loaded[0] is vm:
                pcpu.loaded = None
        if not vm.owns_slice:  # the strategy gave its memory back in `detach`
            self.vms.remove(vm)
            vm.state = DESTROYED
            return
        memory = self.machine.memory
        memory.data[vm.base:vm.base + vm.size] = bytes(vm.size)
        self.machine.code.invalidate(vm.base, vm.size)
        self.vms.remove(vm)
        self.free.append((vm.base, vm.base + vm.size))
        self.free.sort()
        merged: list[tuple[int, int]] = []
        for start, end in self.free:
            if merged and merged[-1][1] == start:
                merged[-1] = (merged[-1][0], end)
            else:
                merged.append((start, end))
        self.free = merged
        vm.state = DESTROYED

    # -- running ----------------------------------------------------------------------------------

    def run(self, max_steps: int | None = None, trace=None) -> None:
        """Run every runnable VM, time-sliced, until each has stopped or used `max_steps` more
        steps (default: its guest's budget).  `trace` receives the real CPU's trace events."""
        queue = [vm for vm in self.vms if vm.runnable]
        resumed = [vm for vm in queue if vm.stop_reason == BUDGET]
        for vm in queue:
            vm.step_limit = vm.steps + (vm.guest.max_steps if max_steps is None else max_steps)
            vm.stop_reason = None
        # A VM whose budget ran out at a VMM entry stopped before that entry's interrupt check:
        # it resumes at that instruction boundary, so its virtual interrupts come first (as the
        # bare CPU checks them before every instruction) — a run split in pieces is the same run.
        for vm in resumed:
            for vcpu in vm.vcpus if vm.smp else (vm.vcpu,):
                if vcpu.run_state == READY:
                    vm.select(vcpu)
                    self._boundary(vm)
        queue = [vm for vm in queue if vm.runnable and vm.stop_reason is None
                 and vm.steps < vm.step_limit and not vm.blocked]
        for vm in self.vms:
            if vm.runnable and vm.steps >= vm.step_limit:
                vm.stop(BUDGET)
        if not queue:
            return
        self._retiring = 0  # anything the CPU still had to count happened before it returned
        self._smp = len(self.pcpus) > 1 or any(vm.smp for vm in self.vms)
        if self._smp:
            self._run_smp(trace)
            return
        self._load(queue[0])
        self.in_vmm = False
        if trace is not None:  # console output appears in the trace where it happened
            many = len(self.vms) > 1
            trace = interleave_console(trace, [
                *((vm.name if many else "", vm.devices.platform.console) for vm in self.vms),
                ("the real machine", self.machine.platform.console)])
        self.trace = trace
        try:
            self.strategy.execute(self.cpu, _FOREVER, trace)
        finally:
            self.trace = None
            if trace is not None:
                trace.flush()
        self.in_vmm = True

    # -- SMP: several physical CPUs, VMs of several vCPUs ----------------------------------------

    def _run_smp(self, trace) -> None:
        """The host's round-robin (docs/vmm-design.md, "SMP VMs"): physical CPU after physical
        CPU, `interleave` steps each, every CPU running the vCPU loaded on it (or loading the
        next of its queue); a turn ends with no VMM entry, the vCPU stays in the real CPU.  An
        idle physical CPU idles its turn; when every one idles, the clocks jump to the first
        virtual timer deadline of an idle vCPU (or those vCPUs halt, as on the bare machine)."""
        place(self.vms, len(self.pcpus))
        if trace is not None:
            many = len(self.vms) > 1
            trace = interleave_console(trace, [
                *((vm.name if many else "", vm.devices.platform.console) for vm in self.vms),
                ("the real machine", self.machine.platform.console)])
        self.trace = trace
        for pcpu in self.pcpus:
            pcpu.cpu.slicing = True
        count = len(self.pcpus)
        index = self._first_turn
        try:
            while True:
                ran = False
                for _ in range(count):
                    # done when no vCPU can run or wake, and every vCPU left its real CPU
                    # through the VMM (kicked, if its VM stopped meanwhile): the VMs' state and
                    # counts are whole
                    if not any(self._may_run_vm(vm) or self._idle_vcpus(vm) for vm in self.vms) \
                            and all(p.loaded is None for p in self.pcpus):
                        return
                    if self._turn(self.pcpus[index], trace):
                        ran = True
                        # a run split by budgets goes on with the next CPU's turn, as the bare
                        # machine's round-robin does
                        self._first_turn = (index + 1) % count
                    index = (index + 1) % count
                if not ran and not self._skip_idle():
                    return
        finally:
            for pcpu in self.pcpus:
                pcpu.cpu.slicing = False
            self._switch_pcpu(self.pcpus[0])
            self.trace = None
            if trace is not None:
                trace.flush()
            self.in_vmm = True

    def _turn(self, pcpu: PhysicalCPU, trace) -> bool:
        """One physical CPU's turn; whether a guest ran on it."""
        self._switch_pcpu(pcpu)
        cpu = pcpu.cpu
        self._wake_idle(pcpu)
        loaded = pcpu.loaded
        if loaded is not None:
            vm, vcpu = loaded
            pending = vcpu.platform.pic.pending
            if not self._may_run(vm, vcpu) or (
                    pending != pcpu.kicked and vcpu.platform.pic.deliverable()):
                # A kick (KVM's kick_vcpu: an IPI to the physical CPU): its VM stopped while the
                # vCPU was in the real CPU, or a virtual interrupt (another vCPU's IPI) arrived
                # for it: the real timer fires at once, so the vCPU enters the VMM at its next
                # instruction boundary, which takes it off or delivers the interrupt.
                pcpu.kicked = pending
                timer = cpu.platform.timer
                timer.deadline = cpu.platform.clock
        if loaded is None:
            nxt = self._next_on(pcpu, None)
            if nxt is None:
                cpu.platform.clock += self.interleave  # an idle turn: time passes
                cpu.idle_ticks += self.interleave
                return False
            self._load_vcpu(*nxt)
            self.in_vmm = False
        if cpu.stop_reason == BUDGET:
            cpu.stop_reason = None
        self.strategy.execute(cpu, self.interleave, trace)
        if cpu.stop_reason == BUDGET:
            cpu.stop_reason = None
        return True

    def _may_run(self, vm: VM, vcpu) -> bool:
        return vcpu.run_state == READY and self._may_run_vm(vm)

    @staticmethod
    def _may_run_vm(vm: VM) -> bool:
        return vm.runnable and vm.stop_reason is None and not vm.blocked \
            and vm.steps < vm.step_limit

    def _idle_vcpus(self, vm: VM) -> list:
        if not (vm.runnable and vm.stop_reason is None and vm.steps < vm.step_limit):
            return []
        return [v for v in vm.vcpus if v.run_state == IDLE]

    def _next_on(self, pcpu: PhysicalCPU, after) -> tuple | None:
        """The next (VM, vCPU) placed on `pcpu` after `after` that may run (round-robin)."""
        placed = [(vm, v) for vm in self.vms for v in vm.vcpus if v.pcpu == pcpu.index]
        if after in placed:
            start = placed.index(after) + 1
        else:  # the CPU was idle or its run ended: it resumes with the vCPU it last ran
            start = placed.index(pcpu.last) if pcpu.last in placed else 0
        for i in range(len(placed)):
            vm, vcpu = placed[(start + i) % len(placed)]
            if self._may_run(vm, vcpu):
                return vm, vcpu
        return None

    def _wake_idle(self, pcpu: PhysicalCPU) -> None:
        """The idle vCPUs placed on `pcpu` idle as long as it ran (their virtual clocks follow
        its clock up to their next timer deadline); one with a deliverable interrupt is ready."""
        now = pcpu.cpu.platform.clock
        for vm in self.vms:
            for vcpu in self._idle_vcpus(vm):
                if vcpu.pcpu == pcpu.index:
                    self._idle_for(vm, vcpu, now - vcpu.idle_mark)
                    vcpu.idle_mark = now

    @staticmethod
    def _idle_for(vm: VM, vcpu, ticks: int) -> None:
        platform = vcpu.platform
        timer, pic = platform.timer, platform.pic
        timer.update(platform.clock)
        if not pic.deliverable() and ticks > 0:
            wait = ticks if timer.deadline is None else min(ticks, timer.deadline - platform.clock)
            wait = max(wait, 0)
            platform.clock += wait
            vm.idle_ticks += wait
            timer.update(platform.clock)
        if pic.deliverable():
            vcpu.run_state = READY

    def _skip_idle(self) -> bool:
        """No physical CPU ran a guest in a whole round: every vCPU left is idle.  Jump to the
        first timer deadline among them (every physical CPU idles as long); with none, they
        can never wake: they halt.  Whether the round-robin goes on."""
        idle = [(vm, v) for vm in self.vms for v in self._idle_vcpus(vm)]
        waits = []
        for _vm, vcpu in idle:
            platform = vcpu.platform
            platform.timer.update(platform.clock)
            if platform.pic.deliverable():
                return True
            deadline = platform.timer.deadline
            if deadline is not None and not platform.pic.mask & (1 << IRQ_TIMER):
                waits.append(deadline - platform.clock)
        if not waits:
            for vm, vcpu in idle:
                vcpu.run_state = VCPU_HALTED
                if all(v.run_state != READY and v.run_state != IDLE for v in vm.vcpus):
                    vm.stop("halted")
            return False
        wait = max(0, min(waits))
        for pcpu in self.pcpus:
            pcpu.cpu.platform.clock += wait
            pcpu.cpu.idle_ticks += wait
        for vm, vcpu in idle:
            self._idle_for(vm, vcpu, wait)
            vcpu.idle_mark = self.pcpus[vcpu.pcpu].cpu.platform.clock
        return True

    def _switch_pcpu(self, pcpu: PhysicalCPU) -> None:
        """Make `pcpu` the physical CPU whose turn it is: the hypervisor's per-CPU marks, the VM
        the audit lets it touch, the vCPU its VMM entries are for."""
        old = self.pcpu
        if pcpu is old:
            return
        old.slice_end, old.last_retired, old.last_clock = (self._slice_end, self._last_retired,
                                                           self._last_clock)
        old.retiring, old.in_vmm = self._retiring, self.in_vmm
        self.pcpu, self.cpu = pcpu, pcpu.cpu
        self.strategy.switch_pcpu(old.index, pcpu.index)
        self._slice_end, self._last_retired, self._last_clock = (pcpu.slice_end,
                                                                 pcpu.last_retired,
                                                                 pcpu.last_clock)
        self._retiring, self.in_vmm = pcpu.retiring, pcpu.in_vmm
        loaded = pcpu.loaded
        self._run_vm(None if loaded is None else loaded[0])
        if loaded is not None:
            loaded[0].select(loaded[1])

    def _run_vm(self, vm: VM | None) -> None:
        """`vm` becomes the VM the real CPU runs (the audit watches every other VM's memory)."""
        current = self.current
        if current is vm:
            return
        memory = self.machine.memory
        if self.audit and current is not None:
            for start, size in current.host_ranges():
                memory.watch(start, size, read=True, write=True)
        self.current = vm
        if self.audit and vm is not None:
            for start, size in vm.host_ranges():
                memory.unwatch(start, size)

    def _load_vcpu(self, vm: VM, vcpu) -> None:
        """Load `vcpu` of `vm` on the physical CPU whose turn it is."""
        cpu = self.cpu
        self._run_vm(vm)
        pcpu = self.pcpu
        resumed = pcpu.last == (vm, vcpu) and pcpu.slice_left
        pcpu.loaded = pcpu.last = (vm, vcpu)
        vm.select(vcpu)
        cpu.pid = vcpu.index  # what rdpid reads (x86: IA32_TSC_AUX, loaded at vcpu_load)
        # a vCPU whose run ended with its VM's budget gets the rest of its quantum back
        self._slice_end = cpu.platform.clock + (pcpu.slice_left if resumed else self.quantum)
        pcpu.slice_left = 0
        self._enter(vm, switch=True)

    def _unload(self) -> None:
        self.pcpu.loaded = None
        self._run_vm(None)

    def _runnable_after(self, vm: VM | None) -> VM | None:
        """The next VM in round-robin order after `vm` that may run (None if none)."""
        vms = self.vms
        start = vms.index(vm) + 1 if vm in vms else 0
        for i in range(len(vms)):
            candidate = vms[(start + i) % len(vms)]
            if candidate.runnable and candidate.stop_reason is None and not candidate.blocked \
                    and candidate.steps < candidate.step_limit:
                return candidate
        return None

    # -- the monitor seam -------------------------------------------------------------------------

    def trap(self, cpu: CPU, event) -> bool:
        vm = self.current
        self.in_vmm = True
        self._exit(vm)
        vm.entries += 1
        vm.count_event(self.strategy.entry_event(vm, event))
        before = vm.by_cause if self.trace is not None else None
        refused, self._refused = self._refused, None
        if refused is vm and event.vector == VEC_GP and event.source == "exception":
            self._reflect_refusal(vm, event.error, event.pc)
            self._traced_entry(vm, event.pc, "trap", before)
            return self._resume(vm, cpu)
        try:
            self.strategy.handle(vm, event)
        except GuestFault:
            # a software interrupt the guest's table refuses: a fault of the `int` instruction,
            # which the real CPU now raises (and hands back to us as an exception)
            self._traced_entry(vm, event.pc, "trap", before)
            self._enter(vm, switch=False)
            if event.source == "software":
                self._refused = vm
            raise
        self._traced_entry(vm, event.pc, "trap", before)
        if event.source == "software":
            # the `int n` retires on the real CPU when we return; count it for the VM now
            vm.retired_direct += 1
            self.strategy.retired(vm, 1, software=True)
            self._retiring = 1
        return self._resume(vm, cpu)

    def trap_fields(self, cpu: CPU, vector: int, error: int, pc: int, source: str,
                    address: int | None) -> bool:
        """`trap` for an event no trace callback sees (`CPU._trap`), from its fields: the two
        VMM entries of a guest's system call take a short path (as a real VMM's trap bounce),
        a software interrupt reflected into the guest (`_reflect_int`) and a #GP of a
        deprivileged instruction (`iret`, `in`/`out`, ...) emulated (`_emulate_gp`); every
        other event is handed to `trap` as the `TrapEvent` a tracer would have seen.  The short
        paths count, deliver and resume exactly as `trap` does."""
        if self._short_traps and self.trace is None and not self._smp \
                and self._refused is None:
            if source == "software":
                return self._reflect_int(cpu, vector, pc)
            if vector == VEC_GP and source == "exception":
                return self._emulate_gp(cpu, pc)
        return self.trap(cpu, TrapEvent(event_kind(vector, source), vector, error, pc,
                                        cause_name(vector, source), address, source, cpu.cpl,
                                        cpu.index))

    def _short_entry(self, vm: VM) -> dict[str, int]:
        """What `trap` does on a VMM entry before the strategy sees it, for the short paths:
        leave the VM, count the entry as a ``trap`` (`Strategy.entry_event`); the VM's events."""
        self.in_vmm = True
        self._exit(vm)
        vm.entries += 1
        events = vm.events
        events["trap"] = events.get("trap", 0) + 1
        vm.vcpu.hidden_streak = _NO_STREAK
        return events

    def _reflect_int(self, cpu: CPU, vector: int, pc: int) -> bool:
        """`trap` + `TrapEmulate.handle` for ``int n``: the virtual delivery through the guest's
        table (`VM.deliver`'s counts, then `GuestCPU.enter`), a refusal raised as the fault
        of the ``int`` after the VM is entered again, as `trap` does."""
        vm = self.current
        events = self._short_entry(vm)
        causes = vm.vmm_causes
        causes["vmm:int"] = causes.get("vmm:int", 0) + 1
        cause = _SOFTWARE_CAUSES[vector]
        causes = vm.guest_causes
        causes[cause] = causes.get(cause, 0) + 1
        events["interrupt_injection"] = events.get("interrupt_injection", 0) + 1
        try:
            vm.context.enter(vector, 0, pc, True)
        except GuestFault:
            self._enter(vm, switch=False)
            self._refused = vm
            raise
        vm.retired_direct += 1
        if self._plain_retired:
            events["instruction"] = events.get("instruction", 0) + 1
        else:
            self.strategy.retired(vm, 1, software=True)
        self._retiring = 1
        return self._return(vm, cpu)

    def _reflect_refusal(self, vm: VM, error: int, pc: int) -> None:
        """The #GP of an `int n` the guest's own table refused, which the real CPU raised when
        the VMM handed the refusal back: the `int` and its cause were counted when it was
        reflected, so the fault is reflected as it is (natively: one `int`, one #GP), not
        handled as a privileged instruction to emulate (which would run the `int` again)."""
        vm.count_entry("vmm:exception")
        vm.deliver(VEC_GP, error, pc, "exception")

    def _emulate_gp(self, cpu: CPU, pc: int) -> bool:
        """`trap` + `TrapEmulate.handle` for a #GP: the instruction at `pc` decoded by the real
        CPU's fetch and emulated against the vCPU with the table's handler (`emulate`), a
        fault of it reflected into the guest."""
        vm = self.current
        vcpu = vm.vcpu
        events = self._short_entry(vm)
        entry = cpu.faulting_entry  # the instruction `CPU.step` just fetched, when it was
        if entry is None or entry.decoded.pc != pc:
            entry = cpu.fetch(pc)  # (`TrapEmulate.handle` fetches it; the same entry)
        cause = "vmm:io" if entry.decoded.definition.mnemonic in ("in", "out") \
            else "vmm:privileged"
        causes = vm.vmm_causes
        causes[cause] = causes.get(cause, 0) + 1
        devices = vm.devices.platform
        devices.clock += 1  # `emulate`: the instruction counts while it takes effect
        try:
            entry.handler(vm.context, vcpu.regs)
        except GuestFault as fault:
            devices.clock -= 1
            vm.deliver(fault.vector, fault.error, pc, "exception", fault.address)
        else:
            vm.emulated += 1
            events["emulated_instruction"] = events.get("emulated_instruction", 0) + 1
        return self._return(vm, cpu)

    def _return(self, vm: VM, cpu: CPU) -> bool:
        """`_resume` when the VM simply goes on: within its budget and its quantum, no virtual
        interrupt to deliver (the virtual timer brought up to date, as `_boundary` does first),
        the same vCPU; anything else is `_resume`'s (after this, which changed nothing it
        would not do itself)."""
        vcpu = vm.vcpu
        if vm.state == RUNNABLE and vm.stop_reason is None and not vm.blocked \
                and vcpu.run_state == READY \
                and vm.retired_direct + vm.emulated + vm.deliveries < vm.step_limit:
            platform = vm.devices.platform
            platform.timer.update(platform.clock)
            pic = platform.pic
            if not (vcpu.flags & FLAG_IF and pic.pending & ~pic.mask) \
                    and cpu.platform.clock < self._slice_end:
                self._enter(vm, switch=False)
                self.in_vmm = False
                return True
        return self._resume(vm, cpu)

    def callout(self, cpu: CPU, decoded) -> None:
        """The `toyvisor.vmm.bt.Callouts` protocol: translated guest code hands the VMM a sensitive
        or privileged instruction (a VMM entry without a trap).  ``cpu.pc`` is at the instruction
        and the real clock already counts it; the strategy emulates it against the vCPU (which
        counts it on the virtual clock) and the VM resumes wherever the vCPU now is, possibly at
        another real ring, after its virtual interrupts were re-examined — or another VM runs."""
        vm = self.current
        self.in_vmm = True
        platform = cpu.platform
        platform.clock -= 1  # the emulation counts the instruction on the VM's virtual clock
        self._exit(vm)
        platform.clock += 1
        vm.entries += 1
        before = vm.by_cause if self.trace is not None else None
        self.strategy.handle_callout(vm, decoded)
        self._traced_entry(vm, decoded.pc, f"callout ({decoded.definition.mnemonic})", before)
        self._retiring = 1  # the translator retires the instruction on the real CPU when we return
        self._resume(vm, cpu)

    def vm_exit(self, cpu: CPU, exit) -> None:
        """The "vt" extension's exit hook (`toyvisor.cpu.vt`): a VMM entry by a hardware VM exit.
        The CPU is back in root mode and the guest state is in the VM's control structure; the
        strategy reads it into the vCPU and handles the exit (`Strategy.handle_exit`), then the
        VM resumes by a VM entry (the strategy's ``load``) — or another VM runs."""
        vm = self.current
        self.in_vmm = True
        self._exit(vm)  # virtual time and retired instructions; the registers are the strategy's
        vm.entries += 1
        before = vm.by_cause if self.trace is not None else None
        self.strategy.handle_exit(vm, exit)
        self._traced_entry(vm, exit.pc, "exit", before)
        self._resume(vm, cpu)

    def _traced_entry(self, vm: VM, pc: int, how: str, before: dict | None) -> None:
        """Trace one VMM entry with the causes its handling counted (`before`: the VM's counts
        when it began; None when not tracing)."""
        if before is None or self.trace is None:
            return
        after = vm.by_cause
        causes = tuple(f"{cause}" if after[cause] - before.get(cause, 0) == 1
                       else f"{cause} x{after[cause] - before.get(cause, 0)}"
                       for cause in after if after[cause] != before.get(cause, 0))
        self.trace(VMMEntryEvent(pc, vm.name, how, causes))

    def _resume(self, vm: VM, cpu: CPU) -> bool:
        """The end of a VMM entry: the instruction boundary, scheduling, then back to a guest.
        The next guest comes from the round-robin of VMs (one physical CPU, one-vCPU VMs) or of
        this physical CPU's vCPUs (`_run_smp`); with none, the real CPU stops: `run` returns,
        or this physical CPU's turn ends idle."""
        self._boundary(vm)  # the budget: a VM that used it up has its stop reason now
        vcpu = vm.vcpu
        # (`runnable` and no stop reason: the state is RUNNABLE and no stop reason)
        if vcpu.run_state != READY or vm.state != RUNNABLE or vm.stop_reason is not None \
                or vm.blocked or cpu.platform.clock >= self._slice_end:
            if vcpu.run_state == IDLE:
                vcpu.idle_mark = cpu.platform.clock
            if self._smp:
                nxt = self._next_on(self.pcpu, (vm, vcpu))
            else:
                after = self._runnable_after(vm)
                nxt = None if after is None else (after, after.vcpu)
            if nxt is None:
                if vm.stop_reason is None and vm.runnable and not vm.blocked \
                        and vm.steps >= vm.step_limit:
                    vm.stop(BUDGET)
                self.strategy.unload(vm, cpu)
                if self._smp:
                    if vm.stop_reason == BUDGET:
                        self.pcpu.slice_left = max(self._slice_end - cpu.platform.clock, 0)
                    self._unload()
                else:
                    self.current = None
                cpu.stop(BUDGET)  # back to Hypervisor.run, or the end of this CPU's turn
                return True
            if nxt != (vm, vcpu):
                vm.count_event("world_switch")
                self.strategy.unload(vm, cpu)
                if self._smp:
                    self._load_vcpu(*nxt)
                else:
                    self._load(nxt[0])
                self.in_vmm = False
                return True
            self._slice_end = cpu.platform.clock + self.quantum
        self._enter(vm, switch=False)
        self.in_vmm = False
        return True

    def end_slice(self) -> None:
        """End the current VM's quantum at this VMM entry (a guest's ``yield``)."""
        self._slice_end = self.cpu.platform.clock

    def port_in(self, cpu: CPU, port: int) -> int | None:
        return None  # guests never run at real ring 0: their I/O traps as #GP

    def port_out(self, cpu: CPU, port: int, value: int) -> bool:
        return False

    def _boundary(self, vm: VM) -> None:
        """The instruction boundary after a VMM entry: budget first, then virtual interrupts."""
        # `not vm.runnable or vm.stop_reason is not None`, with the property spelled out: this
        # runs at every VMM entry
        if vm.state != RUNNABLE or vm.stop_reason is not None:
            return
        if vm.steps >= vm.step_limit:
            vm.stop(BUDGET)
            return
        self.strategy.service_interrupts(vm)
        if vm.state == RUNNABLE and vm.stop_reason is None and vm.steps >= vm.step_limit:
            vm.stop(BUDGET)

    def _exit(self, vm: VM) -> None:
        """Guest → VMM: the real registers into the vCPU, real progress into virtual time."""
        cpu = self.cpu
        vcpu = vm.vcpu
        vcpu.regs[:] = cpu.regs
        vcpu.pc = cpu.pc
        vcpu.flags = (cpu.flags & COND_MASK) | (vcpu.flags & FLAG_IF)
        retired, clock = cpu.retired, cpu.platform.clock
        vm.retired_direct += retired - self._last_retired
        vm.devices.platform.clock += clock - self._last_clock  # (the virtual clock)
        if self._plain_retired:  # `Strategy.retired`, without the calls
            events = vm.events
            events["instruction"] = events.get("instruction", 0) + retired - self._last_retired
        else:
            self.strategy.retired(vm, retired - self._last_retired)
        self._last_retired, self._last_clock = retired, clock
        self._retiring = 0

    def _load(self, vm: VM) -> None:
        """Switch the real CPU to `vm` (a world switch when another VM was loaded)."""
        cpu = self.cpu
        memory = self.machine.memory
        if self.audit and self.current is not None and self.current is not vm:
            for start, size in self.current.host_ranges():
                memory.watch(start, size, read=True, write=True)
        self.current = vm
        if self.audit:
            for start, size in vm.host_ranges():
                memory.unwatch(start, size)
        self._slice_end = cpu.platform.clock + self.quantum
        self._enter(vm, switch=True)

    def _enter(self, vm: VM, switch: bool) -> None:
        """VMM → guest: the vCPU into the real CPU, the real timer for the next VMM event."""
        cpu = self.cpu
        vcpu = vm.vcpu
        cpu.regs[:] = vcpu.regs
        cpu.pc = vcpu.pc
        cpu.flags = (vcpu.flags & COND_MASK) | FLAG_IF
        strategy = self.strategy
        strategy.load(vm, cpu, switch)
        # the real timer: next virtual deadline, end of quantum, end of budget
        platform = cpu.platform
        clock = platform.clock
        # an event the entry itself delivers (hardware event injection) is a step of the budget
        # that no tick shows: with the budget used up by it, the timer fires before the guest's
        # first instruction, where bare metal stops too
        pending = 0 if self._short_traps else strategy.entry_steps(vm)
        room = vm.step_limit - (vm.retired_direct + vm.emulated + vm.deliveries) - pending
        n = self._slice_end - clock
        if n < 1:
            n = 1
        floor = 0 if pending else 1
        if room < floor:
            room = floor
        if room < n:
            n = room
        virtual = vm.devices.platform
        deadline = virtual.timer.deadline
        if deadline is not None:
            left = deadline - virtual.clock
            if left < 1:
                left = 1
            if left < n:
                n = left
        timer = platform.timer
        timer.period = n if n > 1 else 1
        timer.deadline = clock + n
        platform.pic.lower_irq(IRQ_TIMER)
        self._last_retired, self._last_clock = cpu.retired + self._retiring, clock

    # -- resource control -------------------------------------------------------------------------

    def _audit(self, access: str, pa: int, size: int, value) -> None:
        if self.in_vmm:
            return
        vm = self.current
        if vm is not None and vm.owns_host(pa, size):
            return
        if (pa & ~(PAGE_SIZE - 1)) in self.frames.in_use:
            return  # the real page walker reading/updating the VMM's shadow tables
        if len(self.violations) < MAX_VIOLATIONS:
            who = vm.name if vm is not None else "?"
            self.violations.append(
                f"{who}: {access} of {size} byte(s) at host {pa:#010x} outside its "
                f"{vm.describe_host_memory()} (guest pc {self.cpu.pc:#010x})"
                if vm is not None else f"{access} at host {pa:#010x} with no VM loaded")

    def resource_violations(self, vm: VM) -> list[str]:
        """Dynamic audit findings for `vm`, plus a structural check of its shadow tables: every
        host frame they map lies inside the VM's slice."""
        found = [v for v in self.violations if v.startswith(f"{vm.name}:")]
        found += vm.structural_violations()
        pager = vm.pager
        if pager is not None and hasattr(pager, "mapped_host_frames"):
            for key, vpn, frame in pager.mapped_host_frames():
                if not vm.base <= frame < vm.base + vm.size:
                    found.append(f"{vm.name}: shadow {key} maps page {vpn << 12:#010x} to host "
                                 f"frame {frame:#010x} outside its slice")
        return found


def check_pcpus(pcpus: object) -> int:
    """`pcpus` if it is a valid number of physical CPUs (1..MAX_CPUS); `VMError` otherwise."""
    if not isinstance(pcpus, int) or isinstance(pcpus, bool) or not 1 <= pcpus <= MAX_CPUS:
        raise VMError(f"the number of physical CPUs must be an integer from 1 to {MAX_CPUS}, "
                      f"not {pcpus!r}")
    return pcpus


__all__ = ["DEFAULT_QUANTUM", "check_pcpus", "DEFAULT_VMM_REGION", "Hypervisor", "PLACEMENTS", "VMMEntryEvent"]
