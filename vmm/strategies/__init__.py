"""VMM strategies: how a VM's vCPU executes on the real CPU, and which events the VMM handles.

A strategy is a class registered in `STRATEGIES` under its name (``native``, ``trap-emulate``,
later ``binary-translation``, ``hardware-assisted``, ``paravirtual``).  Variants are spelled
``name:variant`` (``trap-emulate:0/3/3``, ``hardware-assisted:2``); `make_strategy` parses that.

What a strategy implements (all hooks have do-nothing defaults except `handle`):

| hook | called | job |
| --- | --- | --- |
| ``bind(hypervisor)`` | once, when the hypervisor is built | set up the real machine for this strategy |
| ``attach(vm)`` / ``detach(vm)`` | VM created / destroyed | per-VM state (e.g. ``vm.pager``, the shadow tables) |
| ``reset(vm)`` | after `VM.restore` | drop derived state (shadow tables) so it is rebuilt |
| ``load(vm, cpu, switch)`` | before every resume of `vm` | put the vCPU's *privileged* state on the real CPU: real CPL for the virtual CPL, real cr3 for the current guest address space (the hypervisor already copied registers, pc and flags with real IF = 1) |
| ``unload(vm, cpu)`` | `vm` leaves the real CPU | forget real-CPU bindings |
| ``handle(vm, event)`` | every VMM entry by a trap (`toyvisor.cpu.events.TrapEvent`) | emulate / fill / reflect; the vCPU holds the guest state; raise `GuestFault` only to turn a refused ``int n`` into a fault of that instruction |
| ``handle_callout(vm, decoded)`` | every VMM entry by a callout from translated code (`Hypervisor.callout`) | emulate the instruction against the vCPU (a fault is the strategy's to reflect); only strategies that translate guest code |
| ``execute(cpu, max_steps, trace)`` | by `Hypervisor.run`, to run the guests on the real CPU | the default runs the CPU through the strategy's `engine` |
| ``make_engine(hypervisor)`` | once, in ``bind`` | the `toyvisor.cpu.bt.Translator` that runs guest code: by default one that translates no ring, so guest code runs by *direct execution* in compiled blocks (it needs no VMM; what does — a trap, a sensitive instruction on the careful path, a VM exit — enters it exactly as on the interpreter); a binary translator translates the rings its guest kernel runs at |
| ``switch_pcpu(old, new)`` | on a host of several physical CPUs, when another CPU's turn starts | swap per-physical-CPU state (the translator and its counting marks) |
| ``retired(vm, n, software=False)`` | at every VMM entry: `n` guest instructions of `vm` retired on the real CPU since it was entered (``software``: the ``int n`` the VMM just delivered, which the CPU retires when the VMM returns) | price them: ``instruction`` by default; a translator splits them into ``instruction`` and ``translated_instruction`` |
| ``handle_exit(vm, exit)`` | every VMM entry by a hardware VM exit (`Hypervisor.vm_exit`, a `toyvisor.cpu.vt.VMExit`) | read the guest state from the VM's control structure into the vCPU, then emulate / fill / inject; only strategies built on the "vt" extension |
| ``service_interrupts(vm)`` | at the instruction boundary after every VMM entry | the VM's virtual interrupts: by default `VM.service_interrupts` (virtual timer, then deliver the lowest pending IRQ if the virtual IF allows); a hardware-assisted VMM only updates the timer and injects at VM entry |
| ``entry_event(vm, event)`` | every VMM entry by a trap, before ``handle`` | the priced event of this entry: ``trap`` by default; ``paravirtual`` answers ``hypercall`` for its hypercall vector |
| ``run(guest, ...)`` | `toyvisor.vmm.run_guest` | the default runs the guest alone in a `Hypervisor`; ``native`` runs it on the bare machine |

Counting: handlers call ``vm.count_entry("vmm:<cause>")`` once per entry and
``vm.count_event(<event>)`` for the priced events of docs/vmm-design.md.
"""

from __future__ import annotations

import importlib
import importlib.util
import time
from typing import TYPE_CHECKING, ClassVar

from toyvisor.cpu.bt import Translator
from toyvisor.cpu.cpu import HALTED
from toyvisor.isa.errors import ToyvisorError

from ..result import VMRunResult, cost_cycles

if TYPE_CHECKING:
    from toyvisor.cpu.cpu import CPU
    from toyvisor.tools.guest import Guest

    from ..hypervisor import Hypervisor
    from ..vm import VM


class StrategyError(ToyvisorError):
    """An unknown strategy name or variant."""


class Strategy:
    """Base class of the VMM strategies (see the module docstring for the protocol)."""

    #: registry name
    name: ClassVar[str] = ""
    #: allowed variants (first = default); empty = no variants
    variants: ClassVar[tuple[str, ...]] = ()
    #: whether ``toyvisor compare`` runs it by default (False for a strategy that needs a guest
    #: written for it, such as ``paravirtual``)
    in_default_comparison: ClassVar[bool] = True
    #: True when the strategy runs a *port* of the guest's kernel (paravirtualization): its
    #: equivalence with the native run is judged on the guest-visible outcome, not the state
    runs_port: ClassVar[bool] = False
    #: the VMM entry its own scheduling timer makes (``by_cause`` key) and the priced event
    #: each one is (a hosted VMM's also costs a ``host_syscall``): a per-time cost, not a
    #: per-instruction one, which `toyvisor.vmm.nanobench` takes out of per-iteration figures
    timer_entry: ClassVar[tuple[str, str] | None] = ("vmm:timer", "trap")
    #: None when the strategy hosts VMs of several vCPUs (on several physical CPUs); else why not
    #: (``toyvisor compare`` shows it as not applicable to an SMP guest, ``run`` refuses)
    smp_unsupported: ClassVar[str | None] = None

    def __init__(self, variant: str | None = None) -> None:
        if self.variants:
            variant = variant or self.variants[0]
            if variant not in self.variants:
                raise StrategyError(
                    f"{self.name}: unknown variant '{variant}' (known: {', '.join(self.variants)})")
        elif variant:
            raise StrategyError(f"{self.name} has no variants (got '{variant}')")
        self.variant = variant
        self.hypervisor: Hypervisor | None = None

    @property
    def spec(self) -> str:
        """The CLI/JSON spelling: ``trap-emulate:0/3/3`` (default variants are still spelled)."""
        return f"{self.name}:{self.variant}" if self.variant else self.name

    # -- hooks ------------------------------------------------------------------------------------
    def bind(self, hypervisor: Hypervisor) -> None:
        self.hypervisor = hypervisor
        #: what runs guest code on each physical CPU (`execute`), by CPU number
        self.engines = []
        boot = hypervisor.cpu
        for pcpu in getattr(hypervisor, "pcpus", ())[1:]:
            hypervisor.cpu = pcpu.cpu  # `make_engine` builds for the hypervisor's `cpu`
            self.engines.append(self.make_engine(hypervisor))
        hypervisor.cpu = boot
        self.engines.insert(0, self.make_engine(hypervisor))
        #: the boot CPU's engine
        self.engine = self.engines[0]

    def make_engine(self, hypervisor: Hypervisor) -> Translator:
        return Translator(hypervisor.cpu, hypervisor, translate_cpls=())

    def switch_pcpu(self, old: int, new: int) -> None:
        """The physical CPU whose turn it is changes from `old` to `new` (an SMP host): swap in
        per-CPU state kept in plain attributes (a translator's counting marks)."""

    def attach(self, vm: VM) -> None:
        pass

    def detach(self, vm: VM) -> None:
        pass

    def reset(self, vm: VM) -> None:
        pass

    def load(self, vm: VM, cpu: CPU, switch: bool) -> None:
        pass

    def unload(self, vm: VM, cpu: CPU) -> None:
        pass

    def handle(self, vm: VM, event) -> None:
        raise NotImplementedError

    def handle_callout(self, vm: VM, decoded) -> None:
        raise NotImplementedError(f"{self.name} does not translate guest code")

    def handle_exit(self, vm: VM, exit) -> None:
        raise NotImplementedError(f"{self.name} does not run guests in non-root mode")

    def service_interrupts(self, vm: VM) -> None:
        vm.service_interrupts()

    def entry_event(self, vm: VM, event) -> str:
        return "trap"

    def entry_steps(self, vm: VM) -> int:
        """Budget steps the VM entry `load` just prepared will take before the guest's first
        instruction (an event the hardware delivers on entry); the hypervisor arms the real
        timer for the budget less these."""
        return 0

    def execute(self, cpu: CPU, max_steps: int, trace=None) -> str:
        return self.engines[cpu.index].run(max_steps, trace)

    def retired(self, vm: VM, n: int, software: bool = False) -> None:
        vm.count_event("instruction", n)

    # -- running ----------------------------------------------------------------------------------
    def run(self, guest: Guest, *, placement: str = "system",
            max_steps: int | None = None, trace=None, pcpus: int | None = None) -> VMRunResult:
        """Run `guest` alone in a fresh `Hypervisor` with this strategy (`trace`: a callback for
        the real CPU's trace events and the hypervisor's `VMMEntryEvent`s), its ``cpus`` vCPUs
        on `pcpus` physical CPUs (default: as many as vCPUs)."""
        from ..hypervisor import Hypervisor

        hypervisor = Hypervisor(self, memory_size=(1 << 20) + _round_up(guest.memory_size),
                                placement=placement, pcpus=pcpus or guest.cpus,
                                interleave=guest.interleave)
        vm = hypervisor.create_vm(guest)
        vm.boot()
        started = time.perf_counter()
        hypervisor.run(max_steps=max_steps, trace=trace)
        self.wall_time = time.perf_counter() - started
        self.last_vm = vm
        return vm_result(self, hypervisor, vm)


def _round_up(size: int) -> int:
    return -(-size // 4096) * 4096


def vm_result(strategy: Strategy, hypervisor: Hypervisor, vm: VM) -> VMRunResult:
    """The `VMRunResult` of `vm` (equivalence fields are filled by `run_guest`)."""
    events = dict(vm.events)
    instructions = vm.guest_instructions
    reason = vm.stop_reason or "budget"
    return VMRunResult(
        strategy=strategy.spec,
        placement=hypervisor.placement,
        guest=vm.guest.name,
        halted=reason == HALTED,
        stop_reason=reason,
        guest_instructions=instructions,
        vmm_entries=vm.entries,
        by_cause=vm.by_cause,
        events=events,
        emulated_instructions=vm.emulated,
        console=vm.console,
        resource_violations=tuple(hypervisor.resource_violations(vm)),
        efficiency=(vm.retired_direct / instructions) if instructions else 1.0,
        cycles=cost_cycles(events),
        fault_report=vm.fault_report,
        vcpus=len(vm.vcpus),
        pcpus=len(hypervisor.pcpus),
    )


#: name → strategy class; other modules add theirs with `register`.
STRATEGIES: dict[str, type[Strategy]] = {}


def register(cls: type[Strategy]) -> type[Strategy]:
    """Class decorator: make a strategy available by its `name`."""
    STRATEGIES[cls.name] = cls
    return cls


def make_strategy(spec: str, variant: str | None = None) -> Strategy:
    """``"trap-emulate:0/3/3"`` (or name + `variant`) → a strategy instance; a spec that names
    a variant and a different `variant` contradict each other (a `StrategyError`)."""
    name, _, spelled = spec.partition(":")
    if spelled and variant is not None and spelled != variant:
        raise StrategyError(f"'{spec}' names the variant {spelled} and the option asks for "
                            f"{variant}: choose one")
    load_builtin()
    cls = STRATEGIES.get(name)
    if cls is None:
        raise StrategyError(
            f"unknown strategy '{name}' (known: {', '.join(sorted(STRATEGIES))})")
    return cls(spelled or variant or None)


def load_builtin() -> None:
    """Import the bundled strategy modules so they register themselves.  They are found by name,
    as plugins: each builds on this package (`Strategy`, `register`), and the package needs none
    of them to be defined."""
    for module in ("toyvisor.vmm.strategies.native", "toyvisor.vmm.strategies.trap_emulate",
                   "toyvisor.vmm.strategies.binary_translation",
                   "toyvisor.vmm.strategies.hardware_assisted",
                   "toyvisor.vmm.strategies.paravirtual"):
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module)


__all__ = ["STRATEGIES", "Strategy", "StrategyError", "load_builtin", "make_strategy", "register",
           "vm_result"]
