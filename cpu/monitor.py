"""The monitor seam: how a VMM takes control of a CPU.

A CPU whose `monitor` attribute is None (bare metal) consults nobody.  A VMM installs an object
with the three methods below; the CPU calls them *before* the architectural behaviour, and counts
every call in `CPU.vmm_entries`:

- ``trap(cpu, event)`` for every exception, IRQ and software interrupt, before the guest's
  interrupt table is read.  Return True when the monitor handled it (emulated an instruction,
  reflected the event into the guest by hand, ...): the CPU then does nothing more.  Return False
  to let normal delivery proceed.  For an exception ``event.pc`` is the faulting instruction and
  the CPU state is exactly as before it (faults are restartable); for a trap or IRQ it is the
  next instruction and ``cpu.pc`` already holds it for IRQs.  A monitor that emulates an
  instruction sets ``cpu.pc`` itself.
  A monitor may also have ``trap_fields(cpu, vector, error, pc, source, address)``: when no
  trace callback is attached the CPU calls it instead, with the event's fields and no
  `TrapEvent` built (the hypervisor's short paths); it must answer as ``trap`` would.  While
  `CPU.step` delivers the fault of an instruction it fetched, ``cpu.faulting_entry`` holds that
  instruction's `CodeEntry` (None otherwise), so a monitor emulating it need not fetch it again.
- ``port_in(cpu, port)``: return the value to read, or None to let the platform answer.
- ``port_out(cpu, port, value)``: return True when handled, False to let the platform see it.

Direct vectors (fast system calls).  ``cpu.direct_vectors`` is a set of vectors for which a
*software* interrupt (``int n``; never an exception or IRQ with the same number) does not call
``trap``: the CPU delivers it architecturally through the real interrupt table at ``cpu.idtr``
(the delivery algorithm of docs/machine.md, DPL check included), with no VMM entry.  It is empty
unless a monitor sets it; the paravirtual VMM (`toyvisor.vmm.paravirt`) sets it, while a domain
runs, to the vectors of that domain's *fast* trap-table entries, and points ``idtr`` at a real
table in the VMM hole whose gate for each such vector is present, DPL 3, ring 1, a trap gate (the
real IF stays 1: the real timer still preempts the guest) and targets the guest kernel's handler.
Every other gate of that table is absent, so nothing else can reach the guest through it, and
every other event still calls ``trap`` first.  The test costs one set lookup per delivery and
nothing on the interpreter's fast path, so bare-metal speed is unchanged.

A monitor may change any CPU state (registers via ``cpu.regs``, ``pc``, ``flags``, ``cpl``,
control registers via `CPU.write_cr`), deliver an event to the guest with `CPU.deliver`, or stop
the machine with `CPU.stop`.  A hook that runs *inside* an instruction (port I/O, or a memory
audit hook) and changes privilege or interrupt state should call `CPU.request_attention` so the
interpreter re-examines the state before the next instruction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .cpu import CPU
    from .events import TrapEvent


class MonitorProtocol(Protocol):
    def trap(self, cpu: CPU, event: TrapEvent) -> bool: ...

    def port_in(self, cpu: CPU, port: int) -> int | None: ...

    def port_out(self, cpu: CPU, port: int, value: int) -> bool: ...


class Monitor:
    """A monitor that handles nothing; subclass it and override what the VMM intercepts."""

    def trap(self, cpu: CPU, event: TrapEvent) -> bool:
        return False

    def port_in(self, cpu: CPU, port: int) -> int | None:
        return None

    def port_out(self, cpu: CPU, port: int, value: int) -> bool:
        return False


__all__ = ["Monitor", "MonitorProtocol"]
