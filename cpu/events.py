"""Trace events: what a trace callback receives while a machine runs with tracing on.

Events are frozen value objects, created only when a trace callback is installed (the untraced
interpreter loop never builds them).  Two runs of the same image with the same inputs produce
equal event sequences.
"""

from __future__ import annotations

import json

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


@attrs.frozen
class ConsoleEvent:
    """Bytes a console received since the previous event (`interleave_console` emits it before
    the event it precedes, so the output appears in the trace where it happened)."""

    data: bytes
    #: whose console, when a trace covers several (a VM's name); "" for the only one
    source: str = ""

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")

    def __str__(self) -> str:
        whose = f" of {self.source}" if self.source else ""
        return f"{'':8} <<< console{whose}: {json.dumps(self.text, ensure_ascii=False)}"


Event = InstructionEvent | TrapEvent | StopEvent | ConsoleEvent


def interleave_console(trace, consoles):
    """`trace` wrapped so that before each event it receives a `ConsoleEvent` for whatever each
    of `consoles` (``(source, console)`` pairs; a console has an ``output`` bytearray) received
    since the previous event; call the result's ``flush()`` after the run for the rest."""
    consoles = list(consoles)
    seen = [len(console.output) for _, console in consoles]

    def flush() -> None:
        for index, (source, console) in enumerate(consoles):
            output = console.output
            if len(output) > seen[index]:
                data = bytes(output[seen[index]:])
                seen[index] = len(output)
                trace(ConsoleEvent(data, source))

    def traced(event) -> None:
        flush()
        trace(event)

    traced.flush = flush
    return traced


__all__ = ["ConsoleEvent", "Event", "InstructionEvent", "StopEvent", "TrapEvent",
           "interleave_console"]
