"""The CPU: architectural state, the interpreter loop and exception/interrupt delivery.

The instruction semantics come from `toyvisor.isa.codegen`: decoding an instruction binds it to a
handler closure ``handler(cpu, R)``; this module provides what those closures call (the vocabulary
of `toyvisor.isa.table`) and runs them.
"""

from __future__ import annotations

from collections.abc import Callable

from toyvisor.isa.codegen import PAIR_INNER, PAIR_LAST, PAIR_STORES_PC
from toyvisor.isa.encoding import DecodeError
from toyvisor.isa.faults import GuestFault
from toyvisor.isa.spec import (
    CR0,
    CR0_MASK,
    CR0_PG,
    CR2,
    CR3,
    FLAG_IF,
    FLAGS_MASK,
    GATE_P,
    GATE_RING_SHIFT,
    GATE_SIZE,
    GATE_TRAP,
    GATE_DPL_SHIFT,
    KSP0,
    KSP2,
    M32,
    NUM_IPI_VECTORS,
    NUM_IRQS,
    NUM_REGS,
    PAGE_SHIFT,
    SP,
    VEC_AC,
    VEC_BP,
    VEC_DF,
    VEC_GP,
    VEC_IRQ0,
    VEC_PF,
    VEC_UD,
    VECTOR_NAMES,
    Privilege,
)

from .decode import DECODINGS, CodeEntry, DecodeCache
from .devices import Platform
from .events import InstructionEvent, StopEvent, TrapEvent
from .memory import PAGE_WATCH_READ, PhysicalMemory
from .mmu import FETCH, MMU, READ, WRITE
from .vt import VirtualizationUnit


Trace = Callable[[object], None]

#: The longest run of the interpreter's fast loop (`CPU.run_direct`).
_MAX_RUN = 32
#: access-path sets a CPU keeps (`CPU._select_access_paths`)
_MAX_ACCESS_PATHS = 8

#: Stop reasons.
HALTED = "halted"
BUDGET = "budget"
TRIPLE_FAULT = "triple-fault"
#: Not a run's stop reason: on a multiprocessor a CPU halted with IF = 1 gives its turn back to
#: the machine, which idles it slice by slice until an interrupt is deliverable.
IDLE = "idle"


def cause_name(vector: int, source: str) -> str:
    """The statistics name of an event: "page-fault", "timer", "irq 2", "int 0x80", ..."""
    if source == "interrupt":
        line = vector - VEC_IRQ0
        if NUM_IRQS <= line < NUM_IRQS + NUM_IPI_VECTORS:
            return f"ipi {vector:#x}"
        return "timer" if line == 0 else f"irq {line}"
    if source == "software":
        return "breakpoint" if vector == VEC_BP else f"int {vector:#x}"
    return VECTOR_NAMES.get(vector, f"vector {vector}")


#: `cause_name` of every vector, by source (built once: an event's bookkeeping is a lookup)
_CAUSE_NAMES = {source: tuple(cause_name(vector, source) for vector in range(256))
                for source in ("exception", "interrupt", "software")}
_SOFTWARE_CAUSES = _CAUSE_NAMES["software"]


def event_kind(vector: int, source: str) -> str:
    """The kind column of docs/machine.md: fault, trap, abort or interrupt."""
    if source == "interrupt":
        return "interrupt"
    if source == "software" or vector == VEC_BP:
        return "trap"
    return "abort" if vector == VEC_DF else "fault"


class CPU:
    """One toyvisor CPU.

    State: ``regs`` (the 16 registers, a plain list: the handlers' ``R``), ``pc``, ``flags``,
    ``cpl`` (the low bits of cs), ``idtr``, ``cr0``, ``cr2``, ``mmu.cr3`` and ``ksp`` (ksp0..2).
    Memory, devices and the decode cache are shared with the other CPUs of the machine and live on
    `Machine`; nothing is global, so several CPUs (and several machines) can coexist.

    The interpreter.  Instructions are decoded once into `CodeEntry` objects held by the shared
    `DecodeCache` (keyed by physical address and pc).  In front of it each CPU keeps a *fetch
    cache* per CPL: virtual pc → handler, valid for the current address space.  It holds only
    instructions that cannot change anything the interpreter checks between instructions, so the
    hot loop just calls handlers, a *run* of straight-line ones per lookup (`run_direct`), for as
    many instructions as can pass before the next timer deadline or the end of the budget.  Everything else runs on
    the careful path (`step`): a fetch-cache miss, every sensitive instruction (privileged or
    not, so they can be counted), anything that can change CPL, IF, translations, devices or the
    clock.  Interrupts are therefore checked exactly "before each instruction" while the hot loop
    tests nothing.  The fetch caches are cleared whenever the TLB drops a translation (cr3 write,
    cr0.PG change, invlpg), whenever decoded code is overwritten, and by `request_attention`.
    With a trace callback the CPU runs every instruction on the careful path instead; both loops
    give identical results.  The budget counts `steps`.

    The VMM seam.  Every exception, IRQ and software interrupt goes through `deliver`, and every
    port access through `port_in`/`port_out`.  If ``monitor`` is set (see
    `toyvisor.cpu.monitor`), those call it first and skip the architectural behaviour when it
    reports the event handled; each call counts in ``vmm_entries`` (0 on bare metal).  Physical
    memory has an audit hook (`PhysicalMemory.watch`) for write-protecting guest pages.  A hook
    that changes CPU state from inside an instruction calls `request_attention`; `stop` ends the
    run with any reason.

    Statistics: ``retired`` instructions, ``idle_ticks``, ``by_cause`` (events by cause name),
    ``privileged_executed`` / ``sensitive_executed`` (retired instructions of those classes).

    Hardware virtualization (the "vt" extension, `toyvisor.cpu.vt`).  ``nonroot`` is True while a
    guest runs in non-root mode; ``vmrun`` and `vm_enter` enter it, and a VM exit leaves it (it
    counts in ``vm_exits`` by reason and in ``vmm_entries``, and calls ``monitor.vm_exit`` when the
    monitor has one).  The mode is examined only where the CPU already leaves its fast path: the
    careful path of sensitive instructions (exits), `deliver` (exception-bitmap and nested-page
    exits) and the interrupt check between chunks (injection, interrupt exits).
    """

    def __init__(self, memory: PhysicalMemory, platform: Platform, code: DecodeCache,
                 index: int = 0) -> None:
        self.index = index
        #: what `rdpid` reads: the CPU's number at reset; ring-0 software (a VMM) may load it,
        #: as x86's IA32_TSC_AUX that RDPID returns (docs/vmm-design.md, "SMP VMs")
        self.pid = index
        self.memory = memory
        self.platform = platform
        self.code = code
        self.mmu = MMU(memory)
        self.regs: list[int] = [0] * NUM_REGS
        self.pc = 0
        self.flags = 0
        self.cpl = 0
        self.idtr = 0
        self.cr0 = 0
        self.cr2 = 0
        self.ksp = [0, 0, 0]
        #: The VMM hook; None on bare metal.
        self.monitor = None
        #: while `step` delivers the fault of an instruction it fetched: that instruction's
        #: `CodeEntry` (a monitor emulating it needs no second fetch); None otherwise
        self.faulting_entry = None
        #: Vectors whose *software* interrupts (``int n``) bypass the monitor and are delivered
        #: through the real interrupt table at ``idtr`` (a paravirtual VMM's fast system calls,
        #: `toyvisor.cpu.monitor`).  Empty on bare metal and under every other VMM.
        self.direct_vectors: frozenset[int] = frozenset()
        self.stop_reason: str | None = None
        self.fault_report: str | None = None
        # statistics
        self.retired = 0
        self.deliveries = 0
        self.idle_ticks = 0
        self.vmm_entries = 0
        self.privileged_executed = 0
        self.sensitive_executed = 0
        self.pauses = 0
        self.by_cause: dict[str, int] = {}
        #: True while a multiprocessor machine runs this CPU for one slice of its round-robin:
        #: the end of the slice is then no stop (no fetch-cache flush, no StopEvent)
        self.slicing = False
        #: Non-root mode of the "vt" extension, its state and the VM exits by reason.
        self.nonroot = False
        self.vt = VirtualizationUnit(self)
        self.vm_exits: dict[str, int] = {}
        self._trace: Trace | None = None
        self._fetch_caches: tuple[dict, dict, dict, dict] = ({}, {}, {}, {})
        #: per CPL: pc -> the fetch cache's `CodeEntry` there; pc -> run (see `run_direct`)
        self._fetch_entries: tuple[dict, dict, dict, dict] = ({}, {}, {}, {})
        self._runs: tuple[dict, dict, dict, dict] = ({}, {}, {}, {})
        #: the cache model (`toyvisor.cpu.cache.CoherentCaches`) counting this CPU's data
        #: accesses, or None (the default: no model)
        self.cache_model = None
        #: (MMU or None when flat, read-watched) -> (its TLB, the access paths) (see
        #: `_select_access_paths`)
        self._access_paths: dict[tuple, tuple] = {}
        code.listeners.append(self.flush_fetch)
        memory.add_listener(self._select_access_paths)
        self._select_access_paths()

    # ------------------------------------------------------------------------------------------
    # Memory access at the current CPL (the semantics' load32/load8/store32/store8)
    # ------------------------------------------------------------------------------------------

    @property
    def paging(self) -> bool:
        return bool(self.cr0 & CR0_PG)

    def _select_access_paths(self) -> None:
        """Install the load/store functions for the current mode (flat or paged, watched or not).

        They are closures stored on the instance, so the handlers' ``cpu.load32(va)`` costs one
        attribute lookup and one call, with RAM, the TLB and the page flags in closure cells.
        They depend only on the MMU (its TLB and walker; none when flat) and on whether some
        page is read-watched, so the few sets a CPU switches between (root and non-root mode
        at every VM entry and exit) are built once and reused (not with a cache model, which
        wraps them).
        """
        flat = not self.paging and not self.mmu.nested
        key = (None if flat else self.mmu, self.memory.read_watched)
        if self.cache_model is None:
            known = self._access_paths.get(key)
            if known is not None and (flat or known[0] is self.mmu.tlb):
                self.load32, self.load8, self.store32, self.store8 = known[1]
                return
        memory = self.memory
        ram = memory.data
        words = memory.words
        pflags = memory.page_flags
        last_word = memory.size - 4
        last_byte = memory.size - 1
        write32, write8 = memory.write32, memory.write8
        cpu = self

        if flat:
            def store32(va, v):
                if va & 3:
                    raise GuestFault(VEC_AC, 0)
                if va > last_word:
                    raise GuestFault(VEC_GP, 0)
                if pflags[va >> 12]:
                    write32(va, v)
                else:
                    words[va >> 2] = v

            def store8(va, v):
                if va > last_byte:
                    raise GuestFault(VEC_GP, 0)
                if pflags[va >> 12]:
                    write8(va, v)
                else:
                    ram[va] = v

            if memory.read_watched:
                read32, read8 = memory.read32, memory.read8

                def load32(va):
                    if va & 3:
                        raise GuestFault(VEC_AC, 0)
                    return read32(va)

                def load8(va):
                    return read8(va)
            else:
                def load32(va):
                    if va & 3:
                        raise GuestFault(VEC_AC, 0)
                    if va > last_word:
                        raise GuestFault(VEC_GP, 0)
                    return words[va >> 2]

                def load8(va):
                    if va > last_byte:
                        raise GuestFault(VEC_GP, 0)
                    return ram[va]
        else:
            tlb_get = self.mmu.tlb.get
            translate = self.mmu.translate

            def store32(va, v):
                if va & 3:
                    raise GuestFault(VEC_AC, 0)
                e = tlb_get(va >> 12)
                cpl = cpu.cpl
                if e is None or cpl > e[1] or not e[2]:
                    pa = translate(va, cpl, WRITE)
                else:
                    pa = e[0] | (va & 0xFFF)
                if pflags[pa >> 12]:
                    write32(pa, v)
                else:
                    words[pa >> 2] = v

            def store8(va, v):
                e = tlb_get(va >> 12)
                cpl = cpu.cpl
                if e is None or cpl > e[1] or not e[2]:
                    pa = translate(va, cpl, WRITE)
                else:
                    pa = e[0] | (va & 0xFFF)
                if pflags[pa >> 12]:
                    write8(pa, v)
                else:
                    ram[pa] = v

            if memory.read_watched:
                read32, read8 = memory.read32, memory.read8

                def load32(va):
                    if va & 3:
                        raise GuestFault(VEC_AC, 0)
                    return read32(translate(va, cpu.cpl, READ))

                def load8(va):
                    return read8(translate(va, cpu.cpl, READ))
            else:
                def load32(va):
                    if va & 3:
                        raise GuestFault(VEC_AC, 0)
                    e = tlb_get(va >> 12)
                    cpl = cpu.cpl
                    if e is None or cpl > e[1]:
                        pa = translate(va, cpl, READ)
                    else:
                        pa = e[0] | (va & 0xFFF)
                    return words[pa >> 2]

                def load8(va):
                    e = tlb_get(va >> 12)
                    cpl = cpu.cpl
                    if e is None or cpl > e[1]:
                        pa = translate(va, cpl, READ)
                    else:
                        pa = e[0] | (va & 0xFFF)
                    return ram[pa]

        if self.cache_model is not None:
            load32, load8, store32, store8 = self.cache_model.wrap(self, load32, load8, store32,
                                                                   store8)
        else:
            paths = self._access_paths
            if len(paths) >= _MAX_ACCESS_PATHS:
                paths.clear()  # generation 1 makes a new guest MMU at every entry
            paths[key] = (None if flat else self.mmu.tlb, (load32, load8, store32, store8))
        self.load32 = load32
        self.load8 = load8
        self.store32 = store32
        self.store8 = store8

    def translate(self, va: int, access: int = READ, cpl: int | None = None) -> int:
        """Physical address of linear `va` for an access (READ/WRITE/FETCH) at `cpl` (default:
        the current CPL), exactly as an instruction would see it (TLB, A/D bits, faults)."""
        va &= M32
        cpl = self.cpl if cpl is None else cpl
        if self.cr0 & CR0_PG or self.mmu.nested:
            return self.mmu.translate(va, cpl, access)
        if va >= self.memory.size:
            raise GuestFault(VEC_GP, 0)
        return va

    def read_linear32(self, va: int, cpl: int) -> int:
        """A word read at ring `cpl` (implicit accesses: gates, trap frames)."""
        if va & 3:
            raise GuestFault(VEC_AC, 0)
        return self.memory.read32(self.translate(va, READ, cpl))

    def write_linear32(self, va: int, value: int, cpl: int) -> None:
        """A word write at ring `cpl` (implicit accesses: trap frames)."""
        if va & 3:
            raise GuestFault(VEC_AC, 0)
        self.memory.write32(self.translate(va, WRITE, cpl), value)

    # ------------------------------------------------------------------------------------------
    # The rest of the semantics' vocabulary
    # ------------------------------------------------------------------------------------------

    def read_cr(self, number: int) -> int:
        if number == CR0:
            return self.vt.guest_cr0() if self.nonroot else self.cr0
        if number == CR2:
            return self.cr2
        if number == CR3:
            return self.mmu.cr3
        if KSP0 <= number <= KSP2:
            return self.ksp[number - KSP0]
        raise GuestFault(VEC_UD, 0)

    def write_cr(self, number: int, value: int) -> None:
        value &= M32
        if number == CR0:
            old, self.cr0 = self.cr0, value & CR0_MASK
            if (old ^ self.cr0) & CR0_PG:
                self.mmu.flush()
                self.flush_fetch()
                self._select_access_paths()
        elif number == CR2:
            self.cr2 = value
        elif number == CR3:
            self.mmu.cr3 = value
            self.mmu.flush()
            self.flush_fetch()
        elif KSP0 <= number <= KSP2:
            self.ksp[number - KSP0] = value
        else:
            raise GuestFault(VEC_UD, 0)

    def invlpg(self, va: int) -> None:
        self.mmu.invalidate(va)
        self.flush_fetch()

    def port_in(self, port: int) -> int:
        monitor = self.monitor
        if monitor is not None and not self.nonroot:
            self.vmm_entries += 1
            value = monitor.port_in(self, port)
            if value is not None:
                return value & M32
        return self.platform.port_in(port)

    def port_out(self, port: int, value: int) -> None:
        monitor = self.monitor
        if monitor is not None and not self.nonroot:
            self.vmm_entries += 1
            if monitor.port_out(self, port, value):
                return
        self.platform.port_out(port, value)

    def software_interrupt(self, vector: int, npc: int) -> None:
        """`int n` / `brk`: deliver `vector`, DPL-checked; a refusal faults the instruction."""
        if self.monitor is None and self._trace is None and not self.nonroot \
                and 0 <= vector < 256 and "deliver" not in self.__dict__:
            # What `deliver` does for a software interrupt nobody watches (no monitor, no
            # trace, no hook in place of `deliver`: it is the seam of every delivery): count
            # the cause, then enter (a system call's path; no event object, no fault chain).
            cause = _SOFTWARE_CAUSES[vector]
            self.by_cause[cause] = self.by_cause.get(cause, 0) + 1
            self._enter(vector, 0, npc, True)
            return
        monitor = self.monitor
        if monitor is not None and self._trace is None and not self.nonroot \
                and 0 <= vector < 256 and "deliver" not in self.__dict__ \
                and vector not in self.direct_vectors:
            # What `deliver` does for a software interrupt a monitor intercepts and no trace
            # sees: count the cause and the VMM entry, hand the monitor the fields (`_trap`).
            cause = _SOFTWARE_CAUSES[vector]
            self.by_cause[cause] = self.by_cause.get(cause, 0) + 1
            self.vmm_entries += 1
            if self._trap(monitor, vector, 0, npc, "software", None):
                return
            self._enter(vector, 0, npc, True)
            return
        self.deliver(vector, 0, npc, "software")

    def iret(self) -> None:
        """Pop error code, pc, cs, flags and sp (reads first: a fault leaves no trace)."""
        R = self.regs
        sp = R[SP]
        pa = self._frame_pa(sp, self.cpl, False)
        if pa is not None:  # the common case: five words in one plain page (same values)
            words = self.memory.words
            index = pa >> 2
            pc, cs, flags, old_sp = (words[index + 1], words[index + 2], words[index + 3],
                                     words[index + 4])
        else:
            load32 = self.load32
            _error, pc, cs, flags, old_sp = (load32((sp + 4 * i) & M32) for i in range(5))
        cpl = cs & 3
        if cpl < self.cpl:
            raise GuestFault(VEC_GP, 0)
        self.pc = pc
        self.cpl = cpl
        self.flags = flags & FLAGS_MASK
        R[SP] = old_sp

    def halt(self, npc: int) -> None:
        """`hlt` at CPL 0: idle to the next interrupt, or stop when nothing can wake the CPU."""
        self.pc = npc
        platform = self.platform
        # In non-root mode with external-interrupt exiting any interrupt ends the wait (an exit).
        wakes = self.flags & FLAG_IF or (self.nonroot and self.vt.external_exits())
        if not wakes or not platform.can_wake():
            self.stop(HALTED)
            return
        if not platform.pic.deliverable():
            if platform.smp:  # the machine idles this CPU in turn with the others
                self.stop(IDLE)
                return
            idle = platform.timer.deadline - platform.clock
            if idle > 0:
                platform.clock += idle
                self.idle_ticks += idle

    def cpu_number(self) -> int:
        """`rdpid`: the number of this CPU (0 for the boot CPU), or what a VMM loaded."""
        return self.pid

    def pause(self) -> None:
        """`pause`: a spin-wait hint; counted (a monitor's pause-loop detection reads it)."""
        self.pauses += 1

    def vmrun(self, address: int, npc: int) -> None:
        """`vmrun`: VM entry from the control structure at physical `address`; the host context
        resumes at `npc` after the exit."""
        self.vt.enter(address, npc, retiring=True)

    def vm_enter(self, address: int) -> None:
        """VM entry for a VMM written in Python: like `vmrun`, the host context (resuming at the
        current pc) is restored at the exit, after which ``monitor.vm_exit(cpu, exit)`` runs if
        the monitor has that method.  Raises `GuestFault` #GP(0) for an invalid structure."""
        self.vt.enter(address, self.pc)

    # ------------------------------------------------------------------------------------------
    # Control
    # ------------------------------------------------------------------------------------------

    def flush_fetch(self) -> None:
        """Forget every fetch-cache entry (the decode cache keeps its entries)."""
        # (called at every VM entry and exit, when the caches are mostly empty already)
        if not (any(self._fetch_caches) or any(self._fetch_entries) or any(self._runs)):
            return
        for cache in self._fetch_caches:
            cache.clear()
        for cache in self._fetch_entries:
            cache.clear()
        for cache in self._runs:
            cache.clear()

    def request_attention(self) -> None:
        """Make the interpreter re-examine the CPU state before the next instruction."""
        self.flush_fetch()

    def stop(self, reason: str, report: str | None = None) -> None:
        """Stop this CPU after the current instruction with `reason`."""
        self.stop_reason = reason
        if report is not None:
            self.fault_report = report
        self.request_attention()
        if self._trace is not None:
            self._trace(StopEvent(reason, self.pc, self.index))

    def out_of_budget(self) -> None:
        """The run's budget is spent: stop with "budget" (quietly at the end of a slice)."""
        if self.slicing:
            self.stop_reason = BUDGET
        else:
            self.stop(BUDGET)

    @property
    def stopped(self) -> bool:
        return self.stop_reason is not None

    # ------------------------------------------------------------------------------------------
    # Exceptions and interrupts
    # ------------------------------------------------------------------------------------------

    def deliver(self, vector: int, error: int, pc: int, source: str = "exception",
                address: int | None = None) -> None:
        """Deliver an event: the one path of every exception, IRQ and software interrupt.

        `pc` is the pc the frame saves; `source` is "exception", "interrupt" or "software".
        Counts the cause, emits a `TrapEvent`, lets the monitor intercept it, then performs the
        delivery algorithm of docs/machine.md.  A fault while delivering an exception or IRQ
        becomes #DF; a fault while delivering #DF stops the machine (triple fault).  For a
        software interrupt a fault propagates: it is a fault of the `int` instruction.
        """
        self._deliver(vector, error, pc, source, address, [])

    def _record(self, vector: int, error: int, pc: int, source: str,
                address: int | None) -> TrapEvent | None:
        names = _CAUSE_NAMES.get(source)
        cause = names[vector] if names is not None and 0 <= vector < 256 \
            else cause_name(vector, source)
        self.by_cause[cause] = self.by_cause.get(cause, 0) + 1
        if vector == VEC_PF and address is not None and source == "exception":
            self.cr2 = address
        if self._trace is None:
            return None  # a monitor gets the event's fields (`_trap`): nobody sees an object
        event = TrapEvent(event_kind(vector, source), vector, error, pc, cause, address, source,
                          self.cpl, self.index)
        self._trace(event)
        return event

    def _deliver(self, vector: int, error: int, pc: int, source: str, address: int | None,
                 chain: list[str]) -> None:
        nonroot = self.nonroot
        if nonroot and self.vt.intercept_event(vector, error, pc, source, address):
            return  # a VM exit
        event = self._record(vector, error, pc, source, address)
        if source != "software":
            self.deliveries += 1
        monitor = self.monitor
        if monitor is not None and not nonroot \
                and not (source == "software" and vector in self.direct_vectors):
            self.vmm_entries += 1
            if event is not None:
                if monitor.trap(self, event):
                    return
            elif self._trap(monitor, vector, error, pc, source, address):
                return
        if source == "software":
            self._enter(vector, error, pc, True)
            return
        try:
            self._enter(vector, error, pc, False)
        except GuestFault as nested:
            if nonroot and self.vt.delivery_fault(nested, vector, error, pc, source):
                return  # a nested page fault while delivering: a VM exit
            if not chain:
                chain.append(_describe(vector, error, source, address))
            self._record(nested.vector, nested.error, pc, "exception", nested.address)
            chain.append(
                f"  {_describe(nested.vector, nested.error, 'exception', nested.address)} while "
                f"delivering {cause_name(vector, source)}: "
                + ("triple fault" if vector == VEC_DF else "double fault")
            )
            if vector == VEC_DF:
                self._triple_fault(pc, chain)
            else:
                self._deliver(VEC_DF, 0, pc, "exception", None, chain)

    def _trap(self, monitor, vector: int, error: int, pc: int, source: str,
              address: int | None) -> bool:
        """``monitor.trap`` for an event no trace callback sees: a monitor with ``trap_fields``
        (the hypervisor) gets the event's fields, so no `TrapEvent` is built per VMM entry;
        any other gets the event it would have been traced as."""
        fields = getattr(monitor, "trap_fields", None)
        if fields is not None:
            return fields(self, vector, error, pc, source, address)
        return monitor.trap(self, TrapEvent(event_kind(vector, source), vector, error, pc,
                                            cause_name(vector, source), address, source,
                                            self.cpl, self.index))

    def _enter(self, vector: int, error: int, pc: int, software: bool) -> None:
        """Steps 1–6 of the delivery algorithm; raises GuestFault without changing any state."""
        bad_gate = vector * GATE_SIZE + 2
        if not self.idtr:
            # idtr = 0: no interrupt table has been loaded, so no gate is present.
            raise GuestFault(VEC_GP, bad_gate)
        gate = (self.idtr + GATE_SIZE * vector) & M32
        pa = self._frame_pa(gate, 0, False, 8) if not gate & 7 else None
        if pa is not None:
            words = self.memory.words
            handler, word1 = words[pa >> 2], words[(pa >> 2) + 1]
        else:
            handler = self.read_linear32(gate, 0)
            word1 = self.read_linear32((gate + 4) & M32, 0)
        if not word1 & GATE_P:
            raise GuestFault(VEC_GP, bad_gate)
        cpl = self.cpl
        if software and cpl > (word1 >> GATE_DPL_SHIFT) & 3:
            raise GuestFault(VEC_GP, bad_gate)
        ring = (word1 >> GATE_RING_SHIFT) & 3
        if ring > cpl:
            raise GuestFault(VEC_GP, bad_gate)
        R = self.regs
        old_sp = R[SP]
        sp = self.ksp[ring] if ring < cpl else old_sp
        base = (sp - 20) & M32
        pa = self._frame_pa(base, ring, True) if sp >= 20 else None
        if pa is not None:  # the common case: one plain page, so the same writes in one go
            words = self.memory.words
            index = pa >> 2
            words[index] = error
            words[index + 1] = pc
            words[index + 2] = cpl
            words[index + 3] = self.flags
            words[index + 4] = old_sp
            sp = base
        else:
            for value in (old_sp, self.flags, cpl, pc, error):
                sp = (sp - 4) & M32
                self.write_linear32(sp, value, ring)
        R[SP] = sp
        self.cpl = ring
        if not word1 & GATE_TRAP:
            self.flags &= ~FLAG_IF
        self.pc = handler

    def _frame_pa(self, va: int, ring: int, write: bool, size: int = 20) -> int | None:
        """Physical address of the `size` bytes at linear `va` (a trap frame, a gate) for an
        implicit access at `ring`, when the careful path (`read_linear32`/`write_linear32` word
        by word) would do nothing but translate them and move words: aligned, on one page,
        mapped by a TLB entry allowing the access (or inside RAM with paging off), on a page
        without code, watches or audits.  None otherwise (the caller takes the careful path)."""
        if va & 3 or (va & 0xFFF) > 0x1000 - size or self.mmu.nested:
            return None
        if self.cr0 & CR0_PG:
            e = self.mmu.tlb.get(va >> PAGE_SHIFT)
            if e is None or ring > e[1] or (write and not e[2]):
                return None
            pa = e[0] | (va & 0xFFF)
        else:
            if va + size > self.memory.size:
                return None
            pa = va
        flags = self.memory.page_flags[pa >> PAGE_SHIFT]
        if flags if write else flags & PAGE_WATCH_READ:
            return None
        return pa

    def _triple_fault(self, pc: int, chain: list[str]) -> None:
        if self.nonroot:
            self.vt.triple_fault(pc)  # a guest's triple fault is a VM exit
            return
        R = self.regs
        lines = [
            f"triple fault at pc {pc:#010x}: {chain[0]}",
            *chain[1:],
            f"pc={self.pc:#010x} cpl={self.cpl} flags={self.flags:#06x} idtr={self.idtr:#010x} "
            f"cr0={self.cr0:#x} cr2={self.cr2:#010x} cr3={self.mmu.cr3:#010x} "
            + " ".join(f"ksp{i}={v:#010x}" for i, v in enumerate(self.ksp)),
        ]
        for row in range(0, NUM_REGS, 4):
            lines.append("  ".join(
                f"{'sp' if i == SP else f'r{i}':>3}={R[i]:#010x}" for i in range(row, row + 4)
            ))
        self.stop(TRIPLE_FAULT, "\n".join(lines))

    def _service_interrupts(self) -> bool:
        """Before an instruction: timer deadlines, then the lowest pending unmasked IRQ if IF.

        In non-root mode the "vt" extension decides instead; True means it injected an event or
        made a VM exit, and the caller must re-examine the state (and the budget) first."""
        platform = self.platform
        platform.timer.update(platform.clock)
        if self.nonroot:
            return self.vt.service()
        if self.flags & FLAG_IF:
            line = platform.pic.acknowledge()
            if line is not None:
                self.deliver(VEC_IRQ0 + line, 0, self.pc, "interrupt")
        return False

    # ------------------------------------------------------------------------------------------
    # The interpreter
    # ------------------------------------------------------------------------------------------

    def fetch(self, pc: int) -> CodeEntry:
        """The decoded instruction at linear `pc` for the current CPL (raises #AC/#PF/#GP/#UD)."""
        if pc & 3:
            raise GuestFault(VEC_AC, 0)
        pa = self.translate(pc, FETCH)
        code = self.code
        entry = code.get(pa, pc)
        if entry is not None and (entry.pa2 is None
                                  or self.translate((pc + 4) & M32, FETCH) == entry.pa2):
            return entry
        pa2 = None

        def next_word() -> int:
            nonlocal pa2
            second = self.translate((pc + 4) & M32, FETCH)
            if second >> PAGE_SHIFT != pa >> PAGE_SHIFT:
                pa2 = second
            return self.memory.read32(second)

        try:
            decoded, handler = DECODINGS.decode(self.memory.read32(pa), pc, next_word)
        except DecodeError:
            raise GuestFault(VEC_UD, 0) from None
        return code.insert(decoded, pa, pa2, handler)

    def step(self) -> None:
        """Service interrupts, then execute one instruction the careful way."""
        if self.stop_reason is None and self._service_interrupts():
            return
        if self.stop_reason is None:
            self._step()

    def _step(self) -> None:
        pc = self.pc
        platform = self.platform
        entry = None  # (a fault of the fetch itself has no instruction)
        try:
            entry = self.fetch(pc)
            if self.nonroot and entry.attention and self.vt.instruction_exit(entry, pc):
                return  # a VM exit before the instruction
            if self._trace is not None:
                self._trace(InstructionEvent(pc, self.cpl, entry.decoded, self.index))
            cpl = self.cpl
            if cpl and entry.privilege is Privilege.PRIVILEGED:
                # What the handler's first statement (`PRIVILEGE_CHECK`) does outside ring 0,
                # without raising it: #GP(0), no tick (a deprivileged kernel's every `iret`).
                vector, error, address = VEC_GP, 0, None
            else:
                platform.clock += 1  # the instruction takes effect as it retires
                try:
                    entry.handler(self, self.regs)
                except GuestFault:
                    platform.clock -= 1
                    raise
                vector = None
        except GuestFault as fault:
            vector, error, address = fault.vector, fault.error, fault.address
        if vector is not None:
            # the instruction that faulted, for a monitor that emulates it (no second fetch)
            self.faulting_entry = entry
            try:
                self.deliver(vector, error, pc, "exception", address)
            finally:
                self.faulting_entry = None
            return
        self.retired += 1
        privilege = entry.privilege
        if privilege is not Privilege.INNOCUOUS:
            if privilege is Privilege.PRIVILEGED:
                self.privileged_executed += 1
            else:
                self.sensitive_executed += 1
        elif not entry.attention and entry.valid:
            self._fetch_caches[cpl][pc] = entry.handler
            self._fetch_entries[cpl][pc] = entry

    @property
    def steps(self) -> int:
        """What the budget counts: retired instructions plus delivered exceptions and IRQs (so a
        guest stuck in a loop of faults that retire nothing still runs out of budget)."""
        return self.retired + self.deliveries

    def run(self, max_steps: int, trace: Trace | None = None) -> str:
        """Run until the CPU stops or `max_steps` more steps (see `steps`) have passed.

        Returns the stop reason.  A CPU stopped by "budget" can be run again; "halted" and
        "triple-fault" are final.
        """
        if self.stop_reason == BUDGET:
            self.stop_reason = None
        if self.stop_reason is not None:
            return self.stop_reason
        end = self.steps + max_steps
        self._trace = trace
        try:
            if trace is None:
                self._run_fast(end)
            else:
                self._run_traced(end)
        finally:
            self._trace = None
        return self.stop_reason

    def _run_traced(self, end: int) -> None:
        while self.stop_reason is None:
            if self.steps >= end:
                self.out_of_budget()
                break
            if not self._service_interrupts() and self.stop_reason is None:
                self._step()

    def run_direct(self, room: int) -> tuple[int, bool]:
        """The interpreter's fast loop: up to `room` fetch-cache hits, no interrupt checks.

        Returns ``(retired, missed)``: `missed` is True when it stopped at a fetch-cache miss
        (the caller then takes one careful step).  A fault is delivered here and ends the loop.
        Callers bound `room` by the next timer deadline and the budget, which keeps interrupt
        timing exact; a binary translator uses it for the rings it does not translate.

        The loop dispatches *runs*: the handlers of consecutive fetch-cache hits starting at a
        pc, up to and including the first control transfer or memory access (after which a hook
        may have flushed the fetch cache), on one page.  A run is called handler after handler
        with one lookup; when it does not fit in what is left of `room`, its first instruction
        runs alone.  Handlers in a run are *superinstructions* where they can be
        (`CodeEntry.pair_handler`: two instructions per call) and store ``cpu.pc`` only where it
        is observed: after the run, and before its last instruction (a memory access's hooks and
        faults see it).  A fault inside a run is located by the handler that raised it (only the
        last instruction of a pair can raise).
        """
        R = self.regs
        platform = self.platform
        runs = self._runs[self.cpl]
        get_run = runs.get
        done = 0
        run = None
        handlers = handler = None
        try:
            while done < room:
                run = get_run(self.pc)
                if run is None:
                    run = self._make_run(self.pc)
                    if run is None:
                        break
                n = run[3]
                if n > room - done:
                    handlers = run[2]
                    n = 1
                else:
                    handlers = run[0]
                for handler in handlers:
                    handler(self, R)
                done += n
            else:
                run = ()
        except GuestFault as fault:
            index = run[4][handlers.index(handler)] if handlers is run[0] else 0
            done += index
            self.retired += done
            platform.clock += done
            pc = self.pc = run[1][index]
            self.deliver(fault.vector, fault.error, pc, "exception", fault.address)
            return done, False
        self.retired += done
        platform.clock += done
        return done, run is None

    def _make_run(self, pc: int) -> tuple | None:
        """The run starting at `pc` (see `run_direct`), from the fetch cache; None on a miss:
        ``(handlers, the instructions' pcs, (the first instruction's handler,), instruction
        count, index of the instruction that can raise in each handler)``."""
        entries = self._fetch_entries[self.cpl]
        entry = entries.get(pc)
        if entry is None:
            return None
        chain, pcs = [], []
        page = pc >> PAGE_SHIFT
        while entry is not None and len(chain) < _MAX_RUN:
            chain.append(entry)
            pcs.append(pc)
            if entry.sets_pc or entry.memory:
                break
            pc = (pc + entry.length) & M32
            if pc >> PAGE_SHIFT != page:
                break
            entry = entries.get(pc)
        # Units of one or two instructions, from the end: the last unit runs the last
        # instruction with the full semantics (pc stores included); when it is alone, the unit
        # before it stores the pc (so the last instruction runs at its own pc).
        last = len(chain) - 1
        units: list[tuple[int, object]] = []
        if last >= 1 and chain[last - 1].pairs_first:
            units.append((last, chain[last - 1].pair_handler(chain[last], PAIR_LAST)))
            end = last - 2
            stores_pc = False
        else:
            units.append((last, chain[last].handler))
            end = last - 1
            stores_pc = True
        while end >= 0:
            if end >= 1 and chain[end - 1].pairs_first:
                first = chain[end - 1]
                units.append((end, first.pair_handler(
                    chain[end], PAIR_STORES_PC if stores_pc else PAIR_INNER)))
                end -= 2
            else:
                units.append((end, chain[end].handler if stores_pc
                              else chain[end].inner_handler()))
                end -= 1
            stores_pc = False
        units.reverse()
        run = (tuple(handler for _, handler in units), tuple(pcs), (chain[0].handler,),
               len(chain), tuple(index for index, _ in units))
        self._runs[self.cpl][pcs[0]] = run
        return run

    def _run_fast(self, end: int) -> None:
        platform = self.platform
        timer = platform.timer
        while self.stop_reason is None:
            if self.retired + self.deliveries >= end:
                self.out_of_budget()
                break
            if self._service_interrupts():
                continue  # non-root mode: an injection or a VM exit happened
            if self.stop_reason is not None:
                break
            # As many fetch-cache hits as can run before the budget ends or the timer fires.
            n = end - self.retired - self.deliveries
            deadline = timer.deadline
            if deadline is not None and deadline - platform.clock < n:
                n = deadline - platform.clock
            if self.run_direct(n)[1] and self.stop_reason is None:
                # A miss: decode, or an instruction that must run on the careful path.
                self._step()


def _describe(vector: int, error: int, source: str, address: int | None) -> str:
    text = f"{cause_name(vector, source)} (vector {vector}, error {error:#x}"
    if address is not None:
        text += f", address {address:#010x}"
    return text + ")"


__all__ = ["BUDGET", "CPU", "HALTED", "IDLE", "TRIPLE_FAULT", "cause_name", "event_kind"]
