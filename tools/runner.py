"""Run a loaded guest on the bare machine and present the result (text, JSON, trace)."""

from __future__ import annotations

import bisect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from toyvisor.asm import Image
from toyvisor.cpu import InstructionEvent, Machine, RunResult, TrapEvent
from toyvisor.cpu.cache import CacheGeometry
from toyvisor.cpu.events import interleave_console
from toyvisor.cpu.machine import check_cpus, check_interleave

from .guest import Guest, read_disk


def with_overrides(guest: Guest, *, max_steps: int | None = None, console_input: str | None = None,
                   disk: Path | None = None, memory: int | None = None, cpus: int | None = None,
                   interleave: int | None = None) -> Guest:
    """The guest with command-line settings replacing its manifest's."""
    changes: dict[str, Any] = {}
    if cpus is not None:
        changes["cpus"] = check_cpus(cpus)
    if interleave is not None:
        changes["interleave"] = check_interleave(interleave)
    if max_steps is not None:
        changes["max_steps"] = max_steps
    if console_input is not None:
        # surrogateescape: bytes of the command line that are not UTF-8 reach the guest as given
        changes["console_input"] = console_input.encode("utf-8", "surrogateescape")
    if disk is not None:
        changes["disk"] = read_disk(disk)
    if memory is not None:
        changes["memory_size"] = memory
    return attrs.evolve(guest, **changes)


def boot(guest: Guest, cache: CacheGeometry | None = None) -> Machine:
    """A machine with the guest's RAM, disk, console input, CPUs and interleave (and the cache
    model of `cache`, if given), its image loaded at reset."""
    machine = Machine(memory_size=guest.memory_size, console_input=guest.console_input,
                      disk=guest.disk, cpus=guest.cpus, interleave=guest.interleave, cache=cache)
    machine.load(guest.image)
    return machine


def run(guest: Guest, trace: Callable | None = None, max_steps: int | None = None,
        engine: str = "interpreter", cache: CacheGeometry | None = None) -> RunResult:
    """Boot `guest` on the bare machine and run it with `engine` (one of
    `toyvisor.cpu.ENGINES`) until it stops or its budget runs out.  With `trace`, the console
    output reaches it too, as `ConsoleEvent`s where it happened."""
    machine = boot(guest, cache)
    if trace is None:
        return machine.run(max_steps=max_steps or guest.max_steps, engine=engine)
    traced = interleave_console(trace, [("", machine.console)])
    try:
        return machine.run(max_steps=max_steps or guest.max_steps, trace=traced, engine=engine)
    finally:
        traced.flush()


def result_json(guest: Guest, result: RunResult) -> dict[str, Any]:
    """The `run --json` object: the run result plus the guest's name and the strategy."""
    return {"guest": guest.name, "strategy": "native", **result.to_dict()}


def result_text(guest: Guest, result: RunResult) -> str:
    """Human-readable output: the console, then what the machine counted."""
    lines = [result.console if result.console.endswith("\n") or not result.console
             else result.console + "\n"]
    lines.append(f"--- {guest.name}: {result.stop_reason} after "
                 f"{result.guest_instructions:,} instructions ({result.ticks:,} ticks, "
                 f"{result.idle_ticks:,} idle)\n")
    if len(result.per_cpu) > 1:
        for each in result.per_cpu:
            cache = (f", cache {each.cache_hits:,} hits / {each.cache_misses:,} misses"
                     if each.cache_hits or each.cache_misses else "")
            lines.append(f"--- cpu {each.cpu}: {each.state}, {each.guest_instructions:,} "
                         f"instructions, {each.idle_ticks:,} idle ticks, IPIs "
                         f"{each.ipis_sent:,} sent / {each.ipis_received:,} received{cache}\n")
    if result.by_cause:
        causes = ", ".join(f"{cause} {count:,}" for cause, count in result.by_cause.items())
        lines.append(f"--- traps and interrupts: {causes}\n")
    if result.fault_report:
        lines.append(result.fault_report.rstrip("\n") + "\n")
    return "".join(lines)


def run_vmm(guest: Guest, strategy: str, *, ring_model: str | None = None,
            placement: str = "system", trace: Callable | None = None,
            pcpus: int | None = None):
    """Run `guest` under a VMM strategy, compared with the bare machine (`toyvisor.vmm`);
    `trace` sees the VM's run: guest instructions, traps, VMM entries, console output.  A guest
    of several CPUs runs as a VM of as many vCPUs on `pcpus` physical CPUs (default: as many)."""
    from toyvisor.vmm import run_guest

    return run_guest(guest, strategy, ring_model=ring_model, placement=placement, trace=trace,
                     pcpus=pcpus)


def vmm_tracer(guest: Guest, strategy: str, echo: Callable[[str], None], *,
               ring_model: str | None = None) -> Tracer:
    """A `Tracer` for `guest` under `strategy`: source lines from the image the VM runs (the
    paravirtual port's for a strategy that runs it)."""
    from toyvisor.vmm.strategies import make_strategy

    runs_port = make_strategy(strategy, ring_model).runs_port
    image = guest.pv_image if runs_port and guest.pv_image is not None else guest.image
    return Tracer(image, echo, cpus=guest.cpus)  # an SMP VM's lines name the physical CPU


def vmm_result_text(result) -> str:
    """Human-readable output of a VMM run: the console, then the VMM's numbers."""
    lines = [result.console if result.console.endswith("\n") or not result.console
             else result.console + "\n"]
    smp = (f", {result.vcpus} vCPU{'s' * (result.vcpus != 1)} on {result.pcpus} physical CPUs"
           if result.vcpus > 1 or result.pcpus > 1 else "")
    lines.append(f"--- {result.guest} under {result.strategy} ({result.placement}{smp}): "
                 f"{result.stop_reason} after {result.guest_instructions:,} instructions, "
                 f"{result.vmm_entries:,} VMM entries, efficiency {result.efficiency:.3f}, "
                 f"{result.cycles:,} cycles (slowdown {result.slowdown:.1f}x)\n")
    if result.by_cause:
        causes = ", ".join(f"{cause} {count:,}" for cause, count in result.by_cause.items())
        lines.append(f"--- causes: {causes}\n")
    lines.append(f"--- equivalent to the bare machine: {'yes' if result.equivalent else 'NO'}\n")
    if result.divergence:
        lines.append(f"--- divergence: {result.divergence}\n")
    for violation in result.resource_violations:
        lines.append(f"--- resource violation: {violation}\n")
    if result.refusals:
        lines.append(f"--- hypervisor log: {len(result.refusals):,} refused hypercalls "
                     "(as xl dmesg shows them)\n")
        lines.extend(refusal.line() + "\n" for refusal in result.refusals)
    if result.fault_report:
        lines.append(result.fault_report.rstrip("\n") + "\n")
    return "".join(lines)


class Tracer:
    """A trace callback that prints each instruction with its source line, each trap, each VMM
    entry with its cause and the console output where it happened; on a multiprocessor every
    line of a CPU starts with its number (``cpu1 ...``)."""

    def __init__(self, image: Image, echo: Callable[[str], None], *, cpus: int = 1):
        self._echo = echo
        self._cpus = cpus
        locations = sorted(image.source_map, key=lambda loc: loc.address)
        self._addresses = [loc.address for loc in locations]
        self._locations = locations

    def source_of(self, address: int) -> str:
        """``file:line`` of the statement that produced `address`, or '' if unknown."""
        index = bisect.bisect_right(self._addresses, address) - 1
        if index < 0 or self._locations[index].address != address:
            return ""
        return self._locations[index].where

    def __call__(self, event) -> None:
        cpu = getattr(event, "cpu", None)  # console output belongs to no CPU
        prefix = f"cpu{cpu} " if self._cpus > 1 and cpu is not None else ""
        if isinstance(event, InstructionEvent):
            source = self.source_of(event.pc)
            self._echo(f"{prefix}{event}{'  ; ' + source if source else ''}")
        else:
            self._echo(f"{prefix}{event}")
