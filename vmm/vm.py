"""`VM`: one virtual machine — a slice of host RAM, its vCPUs, virtual devices, a lifecycle.

A VM of V vCPUs (`Guest.cpus`) keeps what its vCPUs share — memory, the console and disk, the
strategy's shared state (``pager``: the shadow tables or the nested table), the counters — and
`vcpus`, each with its own registers, virtual privileged state, virtual TLB, local timer and
interrupt controller and emulation context (`toyvisor.vmm.vcpu`).  `vcpu` (with `mmu`,
`context` and ``devices.platform``) names the vCPU a VMM entry is for: the physical CPU that
takes the entry selects it (`select`) before anything runs, so strategy code written for one
vCPU handles each vCPU of an SMP VM (docs/vmm-design.md, "SMP VMs").

Lifecycle::

    created ──boot()──► runnable ◄──resume()── paused
                           │  └──pause()──────►┘
                           ├── (halts, triple-faults, or shutdown()) ──► stopped
                           └── (its step budget runs out: stop_reason "budget", still runnable)
    any ──destroy()──► destroyed   (the hypervisor frees the slice)

`snapshot()` returns an immutable `VMSnapshot` (vCPU, guest memory, devices, virtual TLB,
counters); `restore(snapshot)` makes a VM continue exactly as the snapshotted one would have.
Shadow page tables are not part of a snapshot: they are dropped and rebuilt lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from toyvisor.cpu.cpu import BUDGET, HALTED, TRIPLE_FAULT, cause_name
from toyvisor.isa.errors import ToyvisorError
from toyvisor.cpu.memory import PAGE_WATCH_READ
from toyvisor.cpu.mmu import MMU
from toyvisor.isa.faults import GuestFault
from toyvisor.isa.spec import (
    CR0,
    CR0_MASK,
    CR0_PG,
    CR2,
    CR3,
    FLAG_IF,
    KSP0,
    KSP2,
    M32,
    NUM_REGS,
    PAGE_SHIFT,
    SP,
    VEC_DF,
    VEC_GP,
    VEC_IRQ0,
    VEC_PF,
    VEC_UD,
)

from .emulate import GuestCPU
from .vcpu import HALTED as VCPU_HALTED
from .vcpu import IDLE, READY, VCPU, WAITING, VCPUState
from .vdevices import DeviceState, VirtualDevices

if TYPE_CHECKING:
    from toyvisor.tools.guest import Guest

# `Hypervisor` in annotations is toyvisor.vmm.hypervisor.Hypervisor, the VM's owner: not
# imported (not even for type checkers), so the hypervisor depends on its VMs, not the reverse.

CREATED, RUNNABLE, PAUSED, STOPPED, DESTROYED = (
    "created", "runnable", "paused", "stopped", "destroyed")


class VMError(ToyvisorError):
    """A lifecycle operation that is not allowed in the VM's current state."""


class GuestPhysicalMemory:
    """Guest-physical memory ``[0, size)`` = host ``[base, base+size)``, bounds-checked.

    An access beyond the guest's RAM raises #GP(0), exactly as beyond the end of a bare machine's
    RAM.  Writes are reported to `on_write` (shadow-table coherence) when it is set.
    """

    def __init__(self, host, base: int, size: int, on_write=None) -> None:
        self.host = host
        self.base = base
        self.size = size
        self.on_write = on_write

    def check(self, pa: int, size: int) -> None:
        if pa < 0 or pa + size > self.size:
            raise GuestFault(VEC_GP, 0)

    def read32(self, pa: int) -> int:
        self.check(pa, 4)
        return self.host.read32(self.base + pa)

    def read8(self, pa: int) -> int:
        self.check(pa, 1)
        return self.host.read8(self.base + pa)

    def read(self, pa: int, size: int) -> bytes:
        self.check(pa, size)
        return self.host.read(self.base + pa, size)

    def write32(self, pa: int, value: int) -> None:
        self.check(pa, 4)
        self.host.write32(self.base + pa, value)
        if self.on_write is not None:
            self.on_write(pa, 4)

    def write8(self, pa: int, value: int) -> None:
        self.check(pa, 1)
        self.host.write8(self.base + pa, value)
        if self.on_write is not None:
            self.on_write(pa, 1)

    def write(self, pa: int, data: bytes) -> None:
        if not data:
            return
        self.check(pa, len(data))
        self.host.write(self.base + pa, data)
        if self.on_write is not None:
            self.on_write(pa, len(data))

    def snapshot(self) -> bytes:
        return bytes(self.host.data[self.base:self.base + self.size])

    def restore(self, data: bytes) -> None:
        """Put back what `snapshot` returned."""
        self.host.write(self.base, data)


@attrs.frozen
class VMSnapshot:
    """The whole guest-visible state of a VM at an instruction boundary (immutable)."""

    guest: str
    memory_size: int
    vcpu: VCPUState
    devices: DeviceState
    memory: bytes = attrs.field(repr=False)
    #: the virtual TLB (part of the architectural state: stale entries stay until invalidated)
    tlb: tuple[tuple[int, tuple], ...] = attrs.field(repr=False)
    stop_reason: str | None
    fault_report: str | None
    counters: tuple[tuple[str, object], ...] = attrs.field(repr=False)


_COUNTERS = ("retired_direct", "emulated", "deliveries", "idle_ticks", "entries")


class VM:
    """A virtual machine hosted by a `Hypervisor` (create it with `Hypervisor.create_vm`)."""

    def __init__(self, hypervisor: Hypervisor, guest: Guest, name: str, base: int,
                 size: int) -> None:
        self.hypervisor = hypervisor
        self.guest = guest
        self.name = name
        self.base = base
        self.size = size
        self.state = CREATED
        self.stop_reason: str | None = None
        self.fault_report: str | None = None
        #: False for a VM whose memory is not one slice the hypervisor allocated (a paravirtual
        #: domain: its strategy owns and frees its machine frames)
        self.owns_slice = True
        #: a paravirtual domain blocked until an event (not runnable, yet not stopped)
        self.blocked = False
        host = hypervisor.machine.memory
        self.memory = self._guest_memory(host, base, size)
        #: priced events of this VM (docs/vmm-design.md)
        self.events: dict[str, int] = {}
        #: guest-visible causes (as on bare metal)
        self.guest_causes: dict[str, int] = {}
        #: VMM entries by cause (``vmm:*``)
        self.vmm_causes: dict[str, int] = {}
        self.devices = VirtualDevices(self.memory, guest.console_input, guest.disk,
                                      hosted=hypervisor.placement == "hosted",
                                      events=self.events)
        self.retired_direct = 0
        self.emulated = 0
        self.deliveries = 0
        self.idle_ticks = 0
        self.entries = 0
        self.step_limit = 0
        #: the vCPUs, by number; vCPU 0 boots, the others wait for a start IPI
        self.vcpus: list[VCPU] = []
        platform = self.devices.platform
        for index in range(getattr(guest, "cpus", 1)):
            vcpu = VCPU(index)
            vcpu.platform = platform if index == 0 else platform.add_cpu()
            #: its MMU and TLB (the walker's A/D writes are not guest stores: no tracing)
            vcpu.mmu = MMU(GuestPhysicalMemory(host, base, size))
            vcpu.context = GuestCPU(self, vcpu)
            self.vcpus.append(vcpu)
        if len(self.vcpus) > 1:
            shared = platform.shared
            shared.on_start = self._start_vcpu
            shared.peers_running = self._peers_running
        self.select(self.vcpus[0])
        #: strategy-private state (e.g. the shadow pager)
        self.pager = None
        #: set while tracing: called when the instruction just attempted will be retried
        self.on_retry = None
        hypervisor.strategy.attach(self)

    def _guest_memory(self, host, base: int, size: int):
        """The guest-physical memory object (a subclass may map it differently)."""
        #: the write hook of plain guest memory (`plain_frame`: another hook, e.g. a dirty log's,
        #: must see every write)
        self._write_hook = self._on_guest_write
        return GuestPhysicalMemory(host, base, size, self._write_hook)

    def plain_frame(self, gpa: int, size: int, write: bool) -> int | None:
        """The host-physical address of guest-physical ``[gpa, gpa+size)`` (within one page)
        when accessing it through `memory` would do nothing but move bytes: inside the guest's
        RAM, memory mapped as one slice with only the VM's own write hook, for a write a frame
        the pager does not trace (`ShadowPager.protected`), and a host page without watches
        (for a write: without code or audits either).  None otherwise: the caller goes through
        `memory`, which faults, hooks and audits."""
        memory = self.memory
        if gpa + size > self.size or type(memory) is not GuestPhysicalMemory:
            return None
        if write:
            if memory.on_write is not self._write_hook:
                return None
            pager = self.pager
            if pager is not None:
                protected = getattr(pager, "protected", None)
                if protected is None or gpa >> PAGE_SHIFT in protected:
                    return None
        pa = self.base + gpa
        flags = memory.host.page_flags[pa >> PAGE_SHIFT]
        if flags if write else flags & PAGE_WATCH_READ:
            return None
        return pa

    # -- vCPUs ------------------------------------------------------------------------------------

    def select(self, vcpu: VCPU) -> None:
        """Make `vcpu` the one VMM entries of this VM are for (its registers, TLB, devices)."""
        self.vcpu = vcpu
        #: the selected vCPU's MMU and TLB, and its emulation context
        self.mmu = vcpu.mmu
        self.context = vcpu.context
        self.devices.platform = vcpu.platform

    @property
    def hardware(self):
        """The selected vCPU's hardware-assisted context (its control structure)."""
        return self.vcpu.hardware

    @property
    def smp(self) -> bool:
        return len(self.vcpus) > 1

    def _start_vcpu(self, index: int, entry: int, clock: int) -> bool:
        """A virtual start IPI for vCPU `index` (`SharedDevices.on_start`): False if it runs."""
        vcpu = self.vcpus[index]
        if vcpu.run_state != WAITING:
            return False
        vcpu.reset(entry)
        vcpu.mmu.cr3 = 0
        vcpu.mmu.flush()
        vcpu.platform.clock = clock  # its clock starts in step with the vCPU that started it
        vcpu.run_state = READY
        return True

    def _peers_running(self, index: int) -> bool:
        """Whether a vCPU other than `index` could still run (and so send an IPI)."""
        return any(v.run_state in (READY, IDLE) for v in self.vcpus if v.index != index)

    def halt_vcpu(self, vcpu: VCPU) -> None:
        """``hlt`` on one vCPU of an SMP VM (docs/multiprocessor.md): it halts for good when
        nothing could wake it (the VM halts with its last vCPU), else it idles until an
        interrupt is deliverable (the hypervisor counts its idle time and wakes it)."""
        platform = vcpu.platform
        if not vcpu.flags & FLAG_IF or not platform.can_wake():
            vcpu.run_state = VCPU_HALTED
            if all(v.run_state in (VCPU_HALTED, WAITING) for v in self.vcpus):
                self.stop(HALTED)
        elif not platform.pic.deliverable():
            vcpu.run_state = IDLE

    # -- host memory (resource control) -----------------------------------------------------------

    def host_ranges(self) -> list[tuple[int, int]]:
        """``(start, size)`` ranges of host RAM this VM may touch while it runs."""
        return [(self.base, self.size)]

    def owns_host(self, pa: int, size: int) -> bool:
        """Whether the VM may access host ``[pa, pa+size)`` (the resource-control audit)."""
        return self.base <= pa and pa + size <= self.base + self.size

    def structural_violations(self) -> list[str]:
        """Static resource-control findings a subclass can add (a paravirtual domain checks that
        its page tables map only frames it owns or was granted)."""
        return []

    def describe_host_memory(self) -> str:
        return f"slice [{self.base:#x}, {self.base + self.size:#x})"

    # -- counters ---------------------------------------------------------------------------------

    @property
    def guest_instructions(self) -> int:
        return self.retired_direct + self.emulated

    @property
    def steps(self) -> int:
        """What the budget counts, as on the bare machine: instructions + delivered events."""
        return self.retired_direct + self.emulated + self.deliveries

    def count_event(self, name: str, n: int = 1) -> None:
        self.events[name] = self.events.get(name, 0) + n

    def count_entry(self, cause: str) -> None:
        self.vmm_causes[cause] = self.vmm_causes.get(cause, 0) + 1

    @property
    def by_cause(self) -> dict[str, int]:
        return dict(sorted({**self.guest_causes, **self.vmm_causes}.items()))

    @property
    def console(self) -> str:
        return self.devices.platform.console.text

    # -- lifecycle --------------------------------------------------------------------------------

    def boot(self) -> None:
        """Load the guest image into guest memory and reset the vCPU (docs/machine.md, Reset)."""
        if self.state != CREATED:
            raise VMError(f"{self.name}: cannot boot a VM that is {self.state}")
        image = self.guest.image
        for segment in image.segments:
            if segment.address < 0 or segment.address + len(segment.data) > self.size:
                raise VMError(f"{self.name}: image segment at {segment.address:#x} does not fit "
                              f"in the VM's {self.size} bytes")
            self.memory.write(segment.address, bytes(segment.data))
        self.vcpu.pc = image.entry
        self.state = RUNNABLE

    def pause(self) -> None:
        if self.state != RUNNABLE:
            raise VMError(f"{self.name}: cannot pause a VM that is {self.state}")
        self.state = PAUSED

    def resume(self) -> None:
        if self.state != PAUSED:
            raise VMError(f"{self.name}: cannot resume a VM that is {self.state}")
        self.state = RUNNABLE

    def shutdown(self) -> None:
        if self.state in (DESTROYED,):
            raise VMError(f"{self.name}: cannot shut down a VM that is {self.state}")
        self.state = STOPPED
        self.stop_reason = self.stop_reason if self.stop_reason not in (None, BUDGET) \
            else "shutdown"

    def destroy(self) -> None:
        self.hypervisor.destroy_vm(self)

    def stop(self, reason: str, report: str | None = None) -> None:
        """The guest stopped itself (``halted``, ``triple-fault``) or ran out of budget."""
        self.stop_reason = reason
        if report is not None:
            self.fault_report = report
        if reason != BUDGET:
            self.state = STOPPED

    @property
    def runnable(self) -> bool:
        return self.state == RUNNABLE and self.stop_reason in (None, BUDGET)

    # -- guest memory and control registers -------------------------------------------------------

    def translate(self, va: int, access: int, cpl: int) -> int:
        """Guest-physical address of linear `va`, exactly as the bare CPU would translate it."""
        va &= M32
        if self.vcpu.cr0 & CR0_PG:
            return self.mmu.translate(va, cpl, access)
        if va >= self.size:
            raise GuestFault(VEC_GP, 0)
        return va

    def _on_guest_write(self, gpa: int, size: int) -> None:
        if self.pager is not None:
            self.pager.guest_write(gpa, size)

    def read_cr(self, number: int) -> int:
        vcpu = self.vcpu
        if number == CR0:
            return vcpu.cr0
        if number == CR2:
            return vcpu.cr2
        if number == CR3:
            return vcpu.cr3
        if KSP0 <= number <= KSP2:
            return vcpu.ksp[number - KSP0]
        raise GuestFault(VEC_UD, 0)

    def write_cr(self, number: int, value: int) -> None:
        value &= M32
        vcpu = self.vcpu
        if number == CR0:
            old, vcpu.cr0 = vcpu.cr0, value & CR0_MASK
            if (old ^ vcpu.cr0) & CR0_PG:
                self.mmu.flush()
        elif number == CR2:
            vcpu.cr2 = value
        elif number == CR3:
            vcpu.cr3 = value
            self.mmu.cr3 = value
            self.mmu.flush()
        elif KSP0 <= number <= KSP2:
            vcpu.ksp[number - KSP0] = value
        else:
            raise GuestFault(VEC_UD, 0)

    def invlpg(self, va: int) -> None:
        self.mmu.invalidate(va)
        if self.pager is not None:
            self.pager.invlpg(va)

    # -- virtual interrupts and exceptions --------------------------------------------------------

    def deliver(self, vector: int, error: int, pc: int, source: str = "exception",
                address: int | None = None, _chain: list[str] | None = None) -> None:
        """Deliver an event through the guest's own interrupt table (the delivery algorithm of
        docs/machine.md, run by the CPU's own code against the vCPU): #DF on a fault while
        delivering, triple fault (the VM stops) on a fault while delivering #DF.  For a
        software interrupt a fault propagates as a fault of the ``int`` instruction."""
        chain = [] if _chain is None else _chain
        cause = cause_name(vector, source)
        self.guest_causes[cause] = self.guest_causes.get(cause, 0) + 1
        if vector == VEC_PF and address is not None and source == "exception":
            self.vcpu.cr2 = address
        if source != "software":
            self.deliveries += 1
        self.count_event("interrupt_injection")
        if source == "software":
            self.context.enter(vector, error, pc, True)
            return
        try:
            self.context.enter(vector, error, pc, False)
        except GuestFault as nested:
            if not chain:
                chain.append(_describe(vector, error, source, address))
            self.guest_causes[cause_name(nested.vector, "exception")] = \
                self.guest_causes.get(cause_name(nested.vector, "exception"), 0) + 1
            if nested.vector == VEC_PF and nested.address is not None:
                self.vcpu.cr2 = nested.address
            chain.append(
                f"  {_describe(nested.vector, nested.error, 'exception', nested.address)} while "
                f"delivering {cause_name(vector, source)}: "
                + ("triple fault" if vector == VEC_DF else "double fault"))
            if vector == VEC_DF:
                self._triple_fault(pc, chain)
            else:
                self.deliver(VEC_DF, 0, pc, "exception", None, chain)

    def service_interrupts(self) -> None:
        """At an instruction boundary: the virtual timer, then the lowest pending unmasked
        virtual IRQ if the virtual IF allows (as the CPU does before every instruction)."""
        platform = self.devices.platform
        platform.timer.update(platform.clock)
        if self.vcpu.flags & FLAG_IF:
            line = platform.pic.acknowledge()
            if line is not None:
                self.deliver(VEC_IRQ0 + line, 0, self.vcpu.pc, "interrupt")

    def _triple_fault(self, pc: int, chain: list[str]) -> None:
        v = self.vcpu
        lines = [
            f"triple fault at pc {pc:#010x}: {chain[0]}", *chain[1:],
            f"pc={v.pc:#010x} cpl={v.cpl} flags={v.flags:#06x} idtr={v.idtr:#010x} "
            f"cr0={v.cr0:#x} cr2={v.cr2:#010x} cr3={v.cr3:#010x} "
            + " ".join(f"ksp{i}={k:#010x}" for i, k in enumerate(v.ksp)),
        ]
        for row in range(0, NUM_REGS, 4):
            lines.append("  ".join(f"{'sp' if i == SP else f'r{i}':>3}={v.regs[i]:#010x}"
                                   for i in range(row, row + 4)))
        self.stop(TRIPLE_FAULT, "\n".join(lines))

    # -- snapshot / restore -----------------------------------------------------------------------

    def snapshot(self) -> VMSnapshot:
        """An immutable copy of the VM's state (take it while the hypervisor is not running)."""
        if self.state in (CREATED, DESTROYED):
            raise VMError(f"{self.name}: cannot snapshot a VM that is {self.state}")
        if self.smp:
            raise VMError(f"{self.name}: snapshots of a VM of {len(self.vcpus)} vCPUs are not "
                          "supported (one vCPU only)")
        counters = {name: getattr(self, name) for name in _COUNTERS}
        counters["events"] = tuple(sorted(self.events.items()))
        counters["guest_causes"] = tuple(sorted(self.guest_causes.items()))
        counters["vmm_causes"] = tuple(sorted(self.vmm_causes.items()))
        return VMSnapshot(
            guest=self.guest.name, memory_size=self.size, vcpu=self.vcpu.state(),
            devices=self.devices.state(), memory=self.memory.snapshot(),
            tlb=tuple(sorted(self.mmu.tlb.items())), stop_reason=self.stop_reason,
            fault_report=self.fault_report, counters=tuple(sorted(counters.items())))

    def restore(self, snapshot: VMSnapshot) -> None:
        """Make this VM continue exactly as the snapshotted one would have."""
        if snapshot.memory_size != self.size:
            raise VMError(f"{self.name}: snapshot of {snapshot.memory_size} bytes does not fit "
                          f"a VM of {self.size} bytes")
        if self.state == DESTROYED:
            raise VMError(f"{self.name}: the VM is destroyed")
        if self.smp:
            raise VMError(f"{self.name}: cannot restore a VM of {len(self.vcpus)} vCPUs")
        self.memory.restore(snapshot.memory)
        self.vcpu.load(snapshot.vcpu)
        self.devices.load(snapshot.devices)
        self.mmu.cr3 = self.vcpu.cr3
        self.mmu.tlb = dict(snapshot.tlb)
        self.stop_reason = snapshot.stop_reason
        self.fault_report = snapshot.fault_report
        counters = dict(snapshot.counters)
        for name in _COUNTERS:
            setattr(self, name, counters[name])
        self.events.clear()
        self.events.update(counters["events"])
        self.guest_causes = dict(counters["guest_causes"])
        self.vmm_causes = dict(counters["vmm_causes"])
        self.state = STOPPED if self.stop_reason not in (None, BUDGET) else RUNNABLE
        self.hypervisor.strategy.reset(self)


def _describe(vector: int, error: int, source: str, address: int | None) -> str:
    text = f"{cause_name(vector, source)} (vector {vector}, error {error:#x}"
    if address is not None:
        text += f", address {address:#010x}"
    return text + ")"


__all__ = ["CREATED", "DESTROYED", "GuestPhysicalMemory", "PAUSED", "RUNNABLE", "STOPPED", "VM",
           "VMError", "VMSnapshot"]

