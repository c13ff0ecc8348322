"""What the debugger runs: a guest on the bare machine or in a VM, with checkpoints.

A `World` is one running system — a bare `Machine`, or a `Hypervisor` hosting the guest's VM —
that the debugger advances in *chunks* of budget steps (``run``).  Between chunks the system is at
rest (the VMM not running, every VM's state in its vCPU), which is where a `Checkpoint` can be
taken and where a fresh world can be rebuilt from one (`World.restore`).  Runs are
deterministic, so a world rebuilt from a checkpoint goes through the same guest instructions as
the original did from that point on: that is what reverse execution replays.

Views.  `views()` lists what the monitor can show per CPU: on the bare machine each CPU's own
state; under a VMM the guest's view (its vCPU: virtual CPL, virtual IF, its idtr and cr3) next
to the real machine's (the real CPU: real CPL and IF, the VMM's interrupt table, the shadow or
nested page table).  While the guest runs, its general registers, pc and condition flags live in
the real CPU (direct execution); at rest they are in the vCPU.  Nothing here changes the state
it shows: page walks read memory without hooks or A/D updates.
"""

from __future__ import annotations

import zlib
from types import SimpleNamespace

import attrs

from toyvisor.cpu import Machine
from toyvisor.cpu.cpu import BUDGET, CPU
from toyvisor.isa.errors import ToyvisorError
from toyvisor.isa.spec import COND_MASK, FLAG_IF
from toyvisor.vmm.equivalence import GuestState, native_state, vm_state
from toyvisor.vmm.hypervisor import Hypervisor
from toyvisor.vmm.strategies import Strategy, make_strategy
from toyvisor.vmm.vdevices import DeviceState, VirtualDevices

from ..guest import Guest


class DebugError(ToyvisorError):
    """A monitor command or debug session that cannot do what was asked."""


@attrs.frozen
class CPUState:
    """A bare CPU's architectural state and counters (part of a bare-machine checkpoint)."""

    regs: tuple[int, ...]
    pc: int
    flags: int
    cpl: int
    idtr: int
    cr0: int
    cr2: int
    cr3: int
    ksp: tuple[int, int, int]
    tlb: tuple[tuple[int, tuple], ...]
    counters: tuple[tuple[str, object], ...]
    stop_reason: str | None
    fault_report: str | None


_CPU_COUNTERS = ("retired", "deliveries", "idle_ticks", "vmm_entries", "privileged_executed",
                 "sensitive_executed")


@attrs.frozen
class Checkpoint:
    """A world at rest: the machine or VM state (memory compressed), and the budget used."""

    steps: int
    cpus: tuple[CPUState, ...] = ()
    devices: DeviceState | None = None
    port_accesses: int = 0
    vm: object = None  # a VMSnapshot with its memory compressed
    memory: bytes = attrs.field(default=b"", repr=False)


def _platform_state(platform) -> DeviceState:
    # The VMM's device snapshot works on any Platform: reuse it for the bare machine's.
    return VirtualDevices.state(SimpleNamespace(platform=platform))


def _load_platform(platform, state: DeviceState) -> None:
    VirtualDevices.load(SimpleNamespace(platform=platform), state)


@attrs.frozen
class View:
    """One CPU as the monitor shows it: the guest's view and, under a VMM, the real one."""

    label: str
    pc: int
    regs: tuple[int, ...]
    flags: int
    cpl: int
    idtr: int
    cr0: int
    cr2: int
    cr3: int
    ksp: tuple[int, int, int]
    #: under a VMM: the real CPU's CPL, flags, idtr and cr3 and what the real page table is
    real: dict | None = None


class World:
    """The system under the debugger; build it with `World.boot`."""

    def __init__(self, guest: Guest, vmm: str | None, cpus: int) -> None:
        self.guest = guest
        self.vmm = vmm
        self.cpu_count = cpus
        self.machine: Machine | None = None
        self.hypervisor: Hypervisor | None = None
        self.vm = None
        self.strategy: Strategy | None = None
        #: called when a traced instruction will be retried (a hidden page fault under a VMM)
        self.on_retry = None
        #: called after the hypervisor loads a VM on the real CPU (debug watches are re-applied)
        self.on_load = None

    # -- building -------------------------------------------------------------------------------

    @classmethod
    def boot(cls, guest: Guest, vmm: str | None = None, cpus: int = 1) -> World:
        """A world at reset: the guest loaded on the bare machine, or booted in a VM."""
        world = cls(guest, vmm, cpus)
        if vmm in (None, "native"):
            world.machine = _bare_machine(guest, cpus)
            world.machine.load(guest.image)
        else:
            if cpus != 1:
                raise DebugError("--cpus: a VM has one vCPU here (SMP guests come with the "
                                 "multiprocessor machine)")
            world._host(make_strategy(vmm))
            world.vm.boot()
        return world

    def _host(self, strategy: Strategy) -> None:
        if strategy.runs_port:
            # a paravirtual VMM builds its domains from machine frames, not one VM slice
            raise DebugError(f"debug: {strategy.spec} runs a port of the guest in domains of its "
                             f"own; the debugger runs native, trap-emulate, binary-translation "
                             f"and hardware-assisted")
        self.strategy = strategy
        world = self

        class DebugHypervisor(Hypervisor):
            # Loading a VM unwatches its slice (for speed); the debugger's watches come back.
            def _load(self, vm) -> None:
                super()._load(vm)
                if world.on_load is not None:
                    world.on_load()

        size = -(-self.guest.memory_size // 4096) * 4096
        self.hypervisor = DebugHypervisor(strategy, memory_size=(1 << 20) + size)
        self.vm = self.hypervisor.create_vm(self.guest)
        self.vm.on_retry = self._retry

    def _retry(self) -> None:
        if self.on_retry is not None:
            self.on_retry()

    # -- running --------------------------------------------------------------------------------

    @property
    def virtual(self) -> bool:
        return self.hypervisor is not None

    @property
    def steps(self) -> int:
        """Budget steps used (retired instructions plus delivered events), as `run` counts."""
        return self.vm.steps if self.virtual else self.machine.cpu.steps

    @property
    def stop_reason(self) -> str | None:
        """"halted", "triple-fault", "budget" (the guest's whole budget is used) or None."""
        if self.virtual:
            reason = self.vm.stop_reason
        else:
            reason = self.machine.cpu.stop_reason
        if reason in (None, BUDGET):
            return BUDGET if self.steps >= self.guest.max_steps else None
        return reason

    @property
    def fault_report(self) -> str | None:
        return self.vm.fault_report if self.virtual else self.machine.cpu.fault_report

    def run(self, steps: int, trace) -> None:
        """Run at most `steps` more budget steps (never past the guest's budget) with `trace`."""
        steps = min(steps, self.guest.max_steps - self.steps)
        if steps <= 0:
            return
        if self.virtual:
            self.hypervisor.run(max_steps=steps, trace=trace)
        else:
            self.machine.run(max_steps=steps, trace=trace)

    @property
    def memory(self):
        """Host (real) physical memory."""
        return (self.hypervisor.machine if self.virtual else self.machine).memory

    @property
    def real_cpus(self) -> list[CPU]:
        return (self.hypervisor.machine if self.virtual else self.machine).cpus

    def guest_state(self) -> GuestState:
        """The guest-visible state compared for equivalence (`toyvisor.vmm.equivalence`)."""
        return vm_state(self.vm) if self.virtual else native_state(self.machine)

    def console(self) -> str:
        return self.vm.console if self.virtual else self.machine.console.text

    def guest_causes(self) -> dict[str, int]:
        """Exceptions and interrupts the guest received, by cause."""
        if self.virtual:
            return self.vm.guest_causes
        causes: dict[str, int] = {}
        for cpu in self.machine.cpus:
            for name, count in cpu.by_cause.items():
                causes[name] = causes.get(name, 0) + count
        return causes

    def vmm_causes(self) -> dict[str, int]:
        """VMM entries by cause and the VMM's priced events (empty on the bare machine)."""
        if not self.virtual:
            return {}
        return {**self.vm.events, **self.vm.vmm_causes}

    # -- what the monitor shows -----------------------------------------------------------------

    def views(self) -> list[View]:
        """One view per (v)CPU, in index order."""
        if not self.virtual:
            return [_bare_view(cpu) for cpu in self.machine.cpus]
        vm, hv = self.vm, self.hypervisor
        cpu = hv.cpu
        vcpu = vm.vcpu
        running = not hv.in_vmm and hv.current is vm
        if running and cpu.nonroot:
            # hardware-assisted: in non-root mode the real CPU holds the guest's own state
            # (with nested paging the real MMU walks the guest's own cr3; with shadow paging
            # the real cr3 is the shadow and the guest's is the vCPU's)
            guest = View("vcpu0", cpu.pc, tuple(cpu.regs), cpu.flags, cpu.cpl, cpu.idtr,
                         cpu.read_cr(0), cpu.cr2,
                         cpu.mmu.cr3 if cpu.mmu.nested else vcpu.cr3, tuple(cpu.ksp))
        elif running:
            guest = View("vcpu0", cpu.pc, tuple(cpu.regs),
                         (cpu.flags & COND_MASK) | (vcpu.flags & FLAG_IF), vcpu.cpl, vcpu.idtr,
                         vcpu.cr0, vcpu.cr2, vcpu.cr3, tuple(vcpu.ksp))
        else:
            guest = View("vcpu0", vcpu.pc, tuple(vcpu.regs), vcpu.flags, vcpu.cpl, vcpu.idtr,
                         vcpu.cr0, vcpu.cr2, vcpu.cr3, tuple(vcpu.ksp))
        if running:
            real = {"cpl": cpu.cpl, "flags": cpu.flags, "idtr": cpu.idtr, "cr3": cpu.mmu.cr3,
                    "nonroot": cpu.nonroot, "nested": cpu.mmu.nested, "loaded": True,
                    "root": getattr(cpu.mmu, "root", None)}
        else:
            real = {"loaded": False}
        return [attrs.evolve(guest, real=real)]

    # -- checkpoints ----------------------------------------------------------------------------

    def checkpoint(self) -> Checkpoint:
        """The world at rest (call between `run` chunks)."""
        if self.virtual:
            snap = self.vm.snapshot()
            snap = attrs.evolve(snap, memory=zlib.compress(snap.memory, 1))
            return Checkpoint(steps=self.steps, vm=snap)
        machine = self.machine
        states = []
        for cpu in machine.cpus:
            counters = {name: getattr(cpu, name) for name in _CPU_COUNTERS}
            counters["by_cause"] = tuple(sorted(cpu.by_cause.items()))
            states.append(CPUState(
                tuple(cpu.regs), cpu.pc, cpu.flags, cpu.cpl, cpu.idtr, cpu.cr0, cpu.cr2,
                cpu.mmu.cr3, tuple(cpu.ksp), tuple(sorted(cpu.mmu.tlb.items())),
                tuple(sorted(counters.items())), cpu.stop_reason, cpu.fault_report))
        return Checkpoint(steps=self.steps, cpus=tuple(states),
                          devices=_platform_state(machine.platform),
                          port_accesses=machine.platform.port_accesses,
                          memory=zlib.compress(bytes(machine.memory.data), 1))

    @classmethod
    def restore(cls, guest: Guest, vmm: str | None, cpus: int, checkpoint: Checkpoint) -> World:
        """A fresh world in the state `checkpoint` recorded."""
        world = cls(guest, vmm, cpus)
        if checkpoint.vm is not None:
            world._host(make_strategy(vmm))
            snap = checkpoint.vm
            world.vm.restore(attrs.evolve(snap, memory=zlib.decompress(snap.memory)))
            return world
        machine = world.machine = _bare_machine(guest, cpus)
        machine.memory.write(0, zlib.decompress(checkpoint.memory))
        _load_platform(machine.platform, checkpoint.devices)
        machine.platform.port_accesses = checkpoint.port_accesses
        for cpu, state in zip(machine.cpus, checkpoint.cpus):
            cpu.regs[:] = state.regs
            cpu.pc, cpu.flags, cpu.cpl, cpu.idtr = state.pc, state.flags, state.cpl, state.idtr
            cpu.write_cr(0, state.cr0)
            cpu.cr2 = state.cr2
            cpu.write_cr(3, state.cr3)  # flushes the TLB; the stale entries come back next
            cpu.mmu.tlb.update(dict(state.tlb))
            cpu.ksp[:] = state.ksp
            counters = dict(state.counters)
            for name in _CPU_COUNTERS:
                setattr(cpu, name, counters[name])
            cpu.by_cause = dict(counters["by_cause"])
            cpu.stop_reason, cpu.fault_report = state.stop_reason, state.fault_report
        return world


def _bare_machine(guest: Guest, cpus: int) -> Machine:
    if cpus != 1:
        # Machine(cpus=N) exists, but a checkpoint holds CPU 0's devices only and not the
        # round-robin's position, so reverse execution could not replay a multiprocessor.
        raise DebugError(f"--cpus {cpus}: the debugger runs one-CPU machines (its checkpoints "
                         "do not hold a multiprocessor's per-CPU devices and turn yet)")
    return Machine(memory_size=guest.memory_size, console_input=guest.console_input,
                   disk=guest.disk)


def _bare_view(cpu: CPU) -> View:
    return View(f"cpu{cpu.index}", cpu.pc, tuple(cpu.regs), cpu.flags, cpu.cpl, cpu.idtr,
                cpu.cr0, cpu.cr2, cpu.mmu.cr3, tuple(cpu.ksp))


__all__ = ["Checkpoint", "DebugError", "View", "World"]
