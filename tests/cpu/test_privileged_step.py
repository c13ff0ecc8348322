"""`CPU.step` refuses a privileged instruction outside ring 0 without running its handler
(`CPU._step`: #GP(0), no tick, the instruction handed to the monitor as `faulting_entry`):
exactly what the handler's first statement (`PRIVILEGE_CHECK`) does.  The reference is the
handler itself, run on the same machine at the same instruction, and the fast engine, whose
blocks run the handler."""

from __future__ import annotations

import pytest
from cpu_asm import TrapRecorder, boot

from toyvisor.isa.faults import GuestFault
from toyvisor.isa.spec import FLAG_IF, FLAG_ZF, VEC_GP
from toyvisor.isa.table import INSTRUCTIONS, Kind

PRIVILEGED = [d for d in INSTRUCTIONS if d.privileged]


def _operands(definition) -> str:
    return ", ".join({Kind.REG: "r1", Kind.CREG: "ksp0", Kind.PORT: "0x10",
                      Kind.IMM8: "0x80"}[op.kind] for op in definition.operands)


def _machine(definition, cpl: int):
    machine = boot(f"nop\n{definition.mnemonic} {_operands(definition)}\nbrk",
                   memory_size=1 << 16)
    cpu = machine.cpu
    cpu.cpl, cpu.flags = cpl, FLAG_IF | FLAG_ZF
    cpu.regs[1] = 0x1234
    return machine


def _state(machine):
    cpu = machine.cpu
    return (tuple(cpu.regs), cpu.pc, cpu.cpl, cpu.flags, cpu.idtr, cpu.cr0, tuple(cpu.ksp),
            cpu.platform.clock, cpu.retired, cpu.privileged_executed, bytes(machine.memory.data),
            bytes(machine.console.output))


@pytest.mark.parametrize("definition", PRIVILEGED, ids=lambda d: d.mnemonic)
@pytest.mark.parametrize("cpl", [1, 2, 3])
def test_step_refuses_as_the_handler_does(definition, cpl):
    # the handler, at the instruction: #GP(0) and nothing changed
    reference = _machine(definition, cpl)
    cpu = reference.cpu
    cpu.pc = 4
    entry = cpu.fetch(4)
    before = _state(reference)
    with pytest.raises(GuestFault) as raised:
        entry.handler(cpu, cpu.regs)
    assert _state(reference) == before
    # the step, through a monitor that sees the fault and the faulting instruction
    seen = []

    class Recorder(TrapRecorder):
        def trap(self, cpu, event):
            seen.append(cpu.faulting_entry)
            return super().trap(cpu, event)

    machine = _machine(definition, cpl)
    machine.cpu.monitor = recorder = Recorder()
    machine.run(max_steps=10, engine="interpreter")
    event = recorder.first
    fault = raised.value
    assert (event.vector, event.error, event.address, event.pc) == \
        (fault.vector, fault.error, fault.address, 4) == (VEC_GP, 0, None, 4)
    assert seen[0].decoded == entry.decoded and machine.cpu.faulting_entry is None
    # the fast engine (its blocks run the handler) ends in the same state
    fast = _machine(definition, cpl)
    fast.cpu.monitor = TrapRecorder()
    fast.run(max_steps=10, engine="fast")
    assert _state(fast) == _state(machine)
    assert dict(fast.cpu.by_cause) == dict(machine.cpu.by_cause)
