"""Callouts: how translated code hands a sensitive or privileged instruction to its user.

Translated code never executes a sensitive or privileged instruction itself (nor an innocuous
store the translator was told to `adapt`: it is a callout too).  The instruction ends
its block and the engine calls ``callouts.callout(cpu, decoded)`` with ``cpu.pc`` at the
instruction and the clock already counting it (as the interpreter does while an instruction
executes, so ``in CLOCK`` reads the same value).  The callee must leave the CPU as the instruction
would: advance ``cpu.pc`` (to ``decoded.npc``, or wherever a control transfer goes), change the
registers, flags, CPL...  To make the instruction *fault* instead, raise `GuestFault` without
changing anything: the engine then delivers it as an exception of that instruction (through
`CPU.deliver`, hence through the CPU's monitor when there is one).  A callout that returns has
retired the instruction.

`DirectCallouts` executes the instruction with the ISA table's own handler on the real CPU — for
running translated code on bare metal, where it must compute exactly what the interpreter does
(privileged instructions still raise #GP at CPL > 0, popf still ignores IF outside ring 0).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from toyvisor.isa.codegen import FACTORIES
from toyvisor.isa.encoding import Decoded
from toyvisor.isa.spec import Privilege

if TYPE_CHECKING:
    from toyvisor.cpu import CPU


class Callouts(Protocol):
    """What the binary translator calls for every sensitive or privileged instruction."""

    def callout(self, cpu: CPU, decoded: Decoded) -> None: ...


def bind(decoded: Decoded):
    """The interpreter's handler ``handler(cpu, R)`` for `decoded` (privilege check included)."""
    definition = decoded.definition
    return FACTORIES[definition.opcode](**decoded.fields, pc=decoded.pc, npc=decoded.npc)


class DirectCallouts:
    """Run each callout natively, exactly as the interpreter would (and count it as it does in
    ``privileged_executed`` / ``sensitive_executed``)."""

    def __init__(self) -> None:
        self._handlers: dict[tuple[int, bytes], object] = {}

    def callout(self, cpu: CPU, decoded: Decoded) -> None:
        key = (decoded.pc, decoded.raw)
        handler = self._handlers.get(key)
        if handler is None:
            handler = self._handlers[key] = bind(decoded)
        handler(cpu, cpu.regs)
        privilege = decoded.definition.privilege
        if privilege is Privilege.PRIVILEGED:
            cpu.privileged_executed += 1
        elif decoded.definition.sensitive:
            cpu.sensitive_executed += 1
        # else: an innocuous store adapted to a callout (`Translator.adapt`)


__all__ = ["Callouts", "DirectCallouts", "bind"]
