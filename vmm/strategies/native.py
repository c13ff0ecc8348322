"""``native``: the guest on the bare machine, reported with the same `VMRunResult` shape.

No VMM: ``vmm_entries`` is 0, ``events`` counts ``instruction`` (retired instructions) and
``guest_trap`` (every exception, IRQ and software interrupt the hardware delivered through the
guest's own table; ``guest_trap:pgfault`` for the page faults among them, which the
cost profiles price apart) and ``port_io`` (port accesses that reached the real devices), efficiency is 1.
"""

from __future__ import annotations

import time

from toyvisor.cpu.cpu import HALTED, cause_name
from toyvisor.cpu.machine import DEFAULT_INTERLEAVE, Machine
from toyvisor.isa.spec import VEC_PF

from ..result import VMRunResult, cost_cycles
from . import Strategy, register

#: the by_cause name of a page fault (#PF)
PAGE_FAULT = cause_name(VEC_PF, "exception")


def boot_native(guest) -> Machine:
    machine = Machine(memory_size=guest.memory_size, console_input=guest.console_input,
                      disk=guest.disk, cpus=getattr(guest, "cpus", 1),
                      interleave=getattr(guest, "interleave", DEFAULT_INTERLEAVE))
    machine.load(guest.image)
    return machine


@register
class Native(Strategy):
    """Bare metal: the reference every other strategy is compared with."""

    name = "native"
    timer_entry = None  # no VMM, no VMM timer

    def handle(self, vm, event) -> None:  # pragma: no cover - never hosted
        raise NotImplementedError("the native strategy does not run under a hypervisor")

    def run(self, guest, *, placement: str = "system", max_steps: int | None = None,
            trace=None, pcpus: int | None = None) -> VMRunResult:
        machine = boot_native(guest)
        started = time.perf_counter()
        result = machine.run(max_steps=guest.max_steps if max_steps is None else max_steps,
                             trace=trace)
        self.wall_time = time.perf_counter() - started
        self.machine = machine
        events = {"instruction": result.guest_instructions,
                  "guest_trap": sum(result.by_cause.values()),
                  "guest_trap:pgfault": result.by_cause.get(PAGE_FAULT, 0),
                  "port_io": machine.platform.port_accesses}
        return VMRunResult(
            strategy=self.spec, placement=placement, guest=guest.name,
            halted=result.stop_reason == HALTED, stop_reason=result.stop_reason,
            guest_instructions=result.guest_instructions, vmm_entries=0,
            by_cause=result.by_cause, events=events, console=result.console,
            efficiency=1.0, cycles=cost_cycles(events), slowdown=1.0,
            fault_report=result.fault_report, vcpus=len(machine.cpus), pcpus=len(machine.cpus))


__all__ = ["Native", "boot_native"]
