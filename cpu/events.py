"""Trace events: what a trace callback receives while a machine runs with tracing on.

Events are frozen value objects, created only when a trace callback is installed (the untraced
interpreter loop never builds them).  Two runs of the same image with the same inputs produce
equal event sequences.
"""

from __future__ import annotations

import attrs

from toyvisor.isa.encoding import Decoded, format_instruction


@attrs.frozen
class InstructionEvent:
    """An instruction about to execute: its linear address, the CPL and the decoded form."""

    pc: int
    cpl: int
    decoded: Decoded = attrs.field(eq=False, repr=False)
    cpu: int = 0

    @property
    def text(self) -> str:
        """Assembly text of the instruction (``addi r1, r1, -1``)."""
        return format_instruction(self.decoded)

    @property
    def raw(self) -> bytes:
        return self.decoded.raw

    def __str__(self) -> str:
        return f"{self.pc:08x} [{self.cpl}] {self.text}"


@attrs.frozen
class TrapEvent:
    """An exception, interrupt or software interrupt being delivered (before the gate is read).

    `kind` is the table kind of docs/machine.md: "fault", "trap", "abort" or "interrupt";
    `pc` is the pc the frame will save (the faulting instruction for a fault, the next one for a
    trap or interrupt); `cause` is the statistics name ("page-fault", "int 0x80", "timer", ...);
    `address` is the faulting linear address of a page fault (it goes to cr2).
    """

    kind: str
    vector: int
    error: int
    pc: int
    cause: str
    address: int | None = None
    #: "exception" (raised by an instruction or its fetch), "interrupt" (an IRQ) or "software"
    #: (`int n` / `brk`: the DPL check applies)
    source: str = "exception"
    #: the CPL when the event happened
    cpl: int = 0
    cpu: int = 0

    def __str__(self) -> str:
        text = f"{self.pc:08x} [{self.cpl}] >>> {self.cause} ({self.kind}, vector {self.vector}"
        text += f", error {self.error:#x}"
        if self.address is not None:
            text += f", address {self.address:#010x}"
        return text + ")"


@attrs.frozen
class StopEvent:
    """The CPU stopped: `reason` is the run's stop reason ("halted", "triple-fault", ...)."""

    reason: str
    pc: int
    cpu: int = 0

    def __str__(self) -> str:
        return f"{self.pc:08x} stop: {self.reason}"


Event = InstructionEvent | TrapEvent | StopEvent

__all__ = ["Event", "InstructionEvent", "StopEvent", "TrapEvent"]
