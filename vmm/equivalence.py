"""The three VMM properties (Popek & Goldberg): equivalence, resource control, efficiency.

*Equivalence*: a VM run is equivalent to the native run of the same guest with the same inputs and
budget when the guest-visible final state is equal: the 16 registers, pc, the guest-visible flags
(with the virtual IF), the guest's CPL, all of guest-physical memory, the console output, the disk
contents and the stop reason.  On a difference both runs are replayed with a per-instruction trace
(the state before every guest instruction: pc, CPL, registers, flags) to find the first guest
instruction after which the states differ, and the report explains it from the instruction table
(privilege class, Robin & Irvine group) and what the strategy did with it.

*Resource control* is audited by the hypervisor (`Hypervisor.resource_violations`); *efficiency*
is the share of guest instructions executed directly (`VMRunResult.efficiency`).
"""

from __future__ import annotations

import attrs

from toyvisor.isa.spec import COND_MASK, FLAG_IF, Privilege

from .result import VMRunResult


@attrs.frozen
class GuestState:
    """The guest-visible final state compared for equivalence."""

    registers: tuple[int, ...]
    pc: int
    flags: int
    cpl: int
    memory: bytes = attrs.field(repr=False)
    console: str
    disk: bytes = attrs.field(repr=False)
    stop_reason: str


#: `VMRunResult.equivalence_basis` of an instruction-for-instruction check
STATE_BASIS = "state: registers, pc, flags, CPL, memory, console, disk, how the run ended"


def native_state(machine) -> GuestState:
    cpu = machine.cpu
    return GuestState(tuple(cpu.regs), cpu.pc, cpu.flags, cpu.cpl, bytes(machine.memory.data),
                      machine.platform.console.text, bytes(machine.platform.disk.data),
                      cpu.stop_reason or "budget")


def vm_state(vm) -> GuestState:
    v = vm.vcpu
    return GuestState(tuple(v.regs), v.pc, v.flags, v.cpl, vm.memory.snapshot(), vm.console,
                      bytes(vm.devices.platform.disk.data), vm.stop_reason or "budget")


def differences(native: GuestState, virtual: GuestState) -> list[str]:
    """Human-readable differences (empty when equivalent)."""
    found = []
    for name in ("stop_reason", "pc", "flags", "cpl"):
        a, b = getattr(native, name), getattr(virtual, name)
        if a != b:
            found.append(f"{name}: native {a!r}, VM {b!r}" if isinstance(a, str)
                         else f"{name}: native {a:#x}, VM {b:#x}")
    for i, (a, b) in enumerate(zip(native.registers, virtual.registers)):
        if a != b:
            found.append(f"r{i}: native {a:#010x}, VM {b:#010x}")
    if native.memory != virtual.memory:
        first = next(i for i, (a, b) in enumerate(zip(native.memory, virtual.memory)) if a != b) \
            if len(native.memory) == len(virtual.memory) else 0
        found.append(f"guest memory differs (first at guest-physical {first:#010x})")
    if native.console != virtual.console:
        found.append("console output differs")
    if native.disk != virtual.disk:
        found.append("disk contents differ")
    return found


# -- the per-instruction replay ------------------------------------------------------------------

_WHY = {
    "popf": "it does not trap outside ring 0, so the change of IF was silently ignored "
            "(virtual IF {vif} after it, {nif} on bare metal)",
    "pushf": "it does not trap, so it pushed the real flags (the real IF is always 1 under the "
             "VMM) instead of the virtual IF",
    "rdcs": "it does not trap, so it returned the real CPL {rcpl} instead of the virtual CPL "
            "{vcpl} (ring aliasing)",
    "sidt": "it does not trap, so it returned the VMM's interrupt-table base instead of the "
            "guest's idtr",
    "smsw": "it does not trap, so it returned the real cr0 (real paging is always on under the "
            "VMM) instead of the guest's cr0",
}


def _trace_native(guest, max_steps):
    from .strategies.native import boot_native

    machine = boot_native(guest)
    cpu = machine.cpu
    records = []
    retired: list[int] = []

    def trace(event):
        _note_retired(records, retired, cpu.flags)
        if type(event).__name__ == "InstructionEvent":
            records.append((event.pc, event.cpl, tuple(cpu.regs), cpu.flags, event.decoded,
                            event.cpl))

    machine.run(max_steps=guest.max_steps if max_steps is None else max_steps, trace=trace)
    _note_retired(records, retired, cpu.flags)
    return records, retired


def _note_retired(records: list, retired: list[int], flags: int) -> None:
    """The flags as the previous instruction left them: the first event after it (the next
    instruction, or a trap or interrupt about to be delivered, before delivery clears IF)."""
    if len(retired) < len(records):
        retired.append(flags)


def _trace_vm(guest, spec, placement, max_steps):
    from .hypervisor import Hypervisor
    from .strategies import make_strategy

    strategy = make_strategy(spec)
    hypervisor = Hypervisor(strategy, memory_size=(1 << 20) + -(-guest.memory_size // 4096) * 4096,
                            placement=placement, audit=False)
    vm = hypervisor.create_vm(guest)
    vm.boot()
    cpu = hypervisor.cpu
    records = []
    retired: list[int] = []

    def guest_flags() -> int:
        if cpu.nonroot:  # hardware-assisted: the real CPU holds the guest's own state
            return cpu.flags
        return (cpu.flags & COND_MASK) | (vm.vcpu.flags & FLAG_IF)

    def trace(event):
        # a VMMEntryEvent is traced after the VMM handled the entry: the flags then are not
        # the ones the guest's instruction left
        if hypervisor.current is not vm or type(event).__name__ == "VMMEntryEvent":
            return
        # a real trap or exit reaches the VMM before it injects anything into the guest
        _note_retired(records, retired, guest_flags())
        if type(event).__name__ == "InstructionEvent":
            vcpl = cpu.cpl if cpu.nonroot else vm.vcpu.cpl
            records.append((event.pc, vcpl, tuple(cpu.regs), guest_flags(), event.decoded,
                            cpu.cpl))

    def retry():
        records.pop()
        del retired[len(records):]

    vm.on_retry = retry
    hypervisor.run(max_steps=max_steps, trace=trace)
    _note_retired(records, retired, guest_flags())
    return records, retired


def _source_of(guest, pc: int) -> str:
    location = guest.image.location_of(pc)
    return f", {location.where}" if location is not None and location.address == pc else ""


def find_divergence(guest, spec: str, *, placement: str = "system",
                    max_steps: int | None = None) -> str:
    """Replay the guest natively and under `spec` with per-instruction traces; describe the first
    guest instruction after which their states differ."""
    native, native_retired = _trace_native(guest, max_steps)
    virtual, virtual_retired = _trace_vm(guest, spec, placement, max_steps)
    fields = ("pc", "CPL", "registers", "flags")
    for i, (n, v) in enumerate(zip(native, virtual)):
        if n[:4] == v[:4]:
            continue
        if i == 0:
            return "the states differ before the first guest instruction"
        prev = virtual[i - 1]
        pc, vcpl, decoded, rcpl = prev[0], prev[1], prev[4], prev[5]
        definition = decoded.definition
        what = [f for f, a, b in zip(fields, n[:4], v[:4]) if a != b]
        detail = []
        if n[3] != v[3]:
            detail.append(f"flags native {n[3]:#06x}, {spec} {v[3]:#06x}")
        for r, (a, b) in enumerate(zip(n[2], v[2])):
            if a != b:
                detail.append(f"r{r} native {a:#x}, {spec} {b:#x}")
        if n[0] != v[0]:
            detail.append(f"next pc native {n[0]:#010x}, {spec} {v[0]:#010x}")
        text = (f"{decoded.definition.mnemonic} at {pc:#010x} (instruction {i} of the guest"
                f"{_source_of(guest, pc)}; vCPL {vcpl}, real CPL {rcpl}) `{_format(decoded)}`: ")
        if definition.privilege is Privilege.SENSITIVE:
            # IF where the instruction retired, not at the next instruction: an interrupt
            # taken right after it would show the handler's IF instead
            why = _WHY.get(definition.mnemonic, "it does not trap and reads real state").format(
                vif=virtual_retired[i - 1] >> 9 & 1, nif=native_retired[i - 1] >> 9 & 1,
                rcpl=rcpl, vcpl=vcpl)
            text += (f"sensitive-unprivileged (Robin & Irvine: {definition.group}) — {why}")
        else:
            earlier = next((r for r in reversed(virtual[:i - 1])
                            if r[4].definition.privilege is Privilege.SENSITIVE), None)
            text += f"{definition.privilege.value}; the state after it differs"
            if earlier is not None:
                d = earlier[4].definition
                text += (f" — most likely an effect of the earlier sensitive-unprivileged "
                         f"{d.mnemonic} at {earlier[0]:#010x} (Robin & Irvine: {d.group}), which "
                         f"ran on the real CPU against real state")
        return text + f". Differs: {', '.join(what)} ({'; '.join(detail[:4])})"
    if len(native) != len(virtual):
        shorter = "VM" if len(virtual) < len(native) else "native"
        return (f"the {shorter} run stops after {min(len(native), len(virtual))} instructions; "
                f"the other goes on")
    return "every instruction saw the same registers; the final memory, console or disk differ"


def _format(decoded) -> str:
    from toyvisor.isa.encoding import format_instruction

    return format_instruction(decoded)


def check(guest, strategy, result: VMRunResult, *, placement: str = "system",
          max_steps: int | None = None) -> VMRunResult:
    """Fill ``equivalent``, ``divergence`` and ``slowdown`` of `result` (a run of `guest` under
    `strategy`, whose last VM is still available) by comparing with a native run."""
    from .strategies.native import Native

    native = Native()
    native_result = native.run(guest, placement=placement, max_steps=max_steps)
    diffs = differences(native_state(native.machine), vm_state(strategy.last_vm))
    divergence = None
    if diffs:
        divergence = find_divergence(guest, strategy.spec, placement=placement,
                                     max_steps=max_steps)
        divergence += " [final state: " + "; ".join(diffs[:6]) + "]"
    slowdown = result.cycles / native_result.cycles if native_result.cycles else 0.0
    return attrs.evolve(result, equivalent=not diffs, divergence=divergence, slowdown=slowdown,
                        equivalence_basis=STATE_BASIS)


def check_outcome(guest, result: VMRunResult, *, strategy=None, placement: str = "system",
                  max_steps: int | None = None) -> VMRunResult:
    """Equivalence of a *ported* kernel (paravirtualization): the port runs different
    instructions on its own schedule, so its state cannot match the native kernel's; the
    guest-visible outcome must (`toyvisor.vmm.outcome`: the console by the guest's
    ``port_outcome`` rules, the disk contents, how the run ended).  `strategy` (the one that
    produced `result`) supplies the final disk through ``disk_contents()``; without it the disk
    is taken as unchanged.  Fills ``equivalent``, ``divergence`` and ``slowdown``."""
    disk = strategy.disk_contents if strategy is not None else None
    return _judge_outcome(guest, result, getattr(guest, "port_outcome", None), disk, "outcome: ",
                          placement, max_steps)


def check_smp_outcome(guest, strategy, result: VMRunResult, *, placement: str = "system",
                      max_steps: int | None = None) -> VMRunResult:
    """Equivalence of an SMP VM (docs/vmm-design.md, "SMP VMs"): its vCPUs race, and their
    interleaving under a VMM (other physical CPUs, quanta, VMM entries) is not the bare
    multiprocessor's, so memory and registers differ wherever the guest races; what must match
    is the guest-visible outcome — the console less the output the guest's manifest declares
    racy (``smp_outcome``), the disk contents, how the run ended.  Fills ``equivalent``,
    ``divergence`` and ``slowdown``."""
    vm = strategy.last_vm
    return _judge_outcome(guest, result, getattr(guest, "smp_outcome", None),
                          lambda: bytes(vm.devices.platform.disk.data),
                          f"SMP outcome ({guest.cpus} vCPUs): ", placement, max_steps)


def _judge_outcome(guest, result: VMRunResult, rules, disk, basis: str, placement: str,
                   max_steps: int | None) -> VMRunResult:
    """`result` judged on its outcome against a native run of `guest` (`disk()`: the run's
    final disk, None: unchanged), by `rules` (None: the console line by line)."""
    from .outcome import Outcome, OutcomeRules, compare
    from .strategies.native import Native

    native = Native()
    native_result = native.run(guest, placement=placement, max_steps=max_steps)
    native_disk = bytes(native.machine.platform.disk.data)
    rules = rules or OutcomeRules()
    divergence = compare(Outcome(native_result.console, native_disk, native_result.stop_reason),
                         Outcome(result.console, disk() if disk is not None else native_disk,
                                 result.stop_reason),
                         rules, result.strategy)
    slowdown = result.cycles / native_result.cycles if native_result.cycles else 0.0
    return attrs.evolve(result, equivalent=divergence is None, divergence=divergence,
                        slowdown=slowdown, equivalence_basis=basis + rules.describe())


__all__ = ["STATE_BASIS", "GuestState", "check", "check_outcome", "check_smp_outcome",
           "differences", "find_divergence", "native_state", "vm_state"]
