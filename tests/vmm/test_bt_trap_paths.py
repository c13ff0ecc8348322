"""The fast engine's trap paths compute exactly what the interpreter does: software interrupts
and `iret` run at block ends inside the dispatcher (`Translator._chain_tail`), timer interrupts
arriving at every instruction boundary of such a loop, refused gates, trap and interrupt gates,
budgets ending anywhere."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cpu"))

from cpu_asm import assemble  # noqa: E402

from toyvisor.cpu import Machine  # noqa: E402
from toyvisor.vmm.bt import DirectCallouts, Translator  # noqa: E402

IDT = 0x400
SOURCE = """
start:  li   sp, 0x8000
        li   r1, 0x8000
        mtcr ksp0, r1
        li   r1, IDT
        lidt r1
        li   r1, PERIOD
        out  PORT_TIMER_PERIOD, r1
        li   r1, 0x7000
        push r1
        li   r1, FLAGS
        push r1
        li   r1, 3
        push r1
        li   r1, user
        push r1
        li   r1, 0
        push r1
        iret
user:   li   r5, CALLS
loop:   addi r2, r2, 1
        int  0x80
        add  r3, r3, r1
        brk
        int  0x55
        addi r5, r5, -1
        cmpi r5, 0
        jnz  loop
        int  0x81
sys:    addi r1, r1, 3
        iret
bp:     addi r4, r4, 1
        iret
tick:   addi r6, r6, 1
        iret
gp:     ld   r13, [sp + 4]
        addi r13, r13, 4
        st   [sp + 4], r13
        addi r7, r7, 1
        iret
done:   cli
        hlt
"""


def make(period: int, flags: int, calls: int = 30) -> Machine:
    image = assemble(SOURCE, {"IDT": IDT, "PERIOD": period, "FLAGS": flags, "CALLS": calls})
    machine = Machine(memory_size=1 << 16)
    machine.load(image)
    memory = machine.memory
    gates = {0x80: ("sys", 3, 0), 3: ("bp", 3, 1), 32: ("tick", 0, 0), 13: ("gp", 0, 0),
             0x81: ("done", 3, 0), 0x55: ("sys", 0, 0)}  # 0x55: DPL 0, refused from ring 3
    for vector, (label, dpl, trap) in gates.items():
        memory.write32(IDT + 8 * vector, image[label])
        memory.write32(IDT + 8 * vector + 4, 1 | (dpl << 1) | (trap << 5))
    return machine


def state(machine: Machine):
    cpu = machine.cpu
    return (machine.result(), bytes(machine.memory.data), tuple(cpu.regs), cpu.pc, cpu.cpl,
            cpu.flags, dict(cpu.by_cause), cpu.platform.clock, cpu.platform.timer.deadline)


def run_pair(period: int, flags: int, budget: int, hot: int, chunks: int = 1):
    reference = make(period, flags)
    reference.run(budget)
    machine = make(period, flags)
    translator = Translator(machine.cpu, DirectCallouts(), hot_threshold=hot)
    for i in range(chunks):
        translator.run(budget // chunks + (budget % chunks if i == chunks - 1 else 0))
    assert state(machine) == state(reference)
    return machine, translator


@pytest.mark.parametrize("hot", [1, 3, 10**6])
def test_the_loop_chains_across_int_and_iret_and_gives_the_interpreters_result(hot):
    machine, translator = run_pair(0, 0, 100_000, hot)
    assert machine.result().halted
    assert machine.cpu.by_cause["general-protection"] == 30  # the refused gate
    # every int 0x80, brk and their irets went on to the next block inside the dispatcher
    assert translator.stats.tails_chained >= 4 * 30


@pytest.mark.parametrize("period", range(1, 25))
def test_timer_interrupts_at_every_instruction_boundary_of_the_loop(period):
    """With IF on in ring 3 the timer lands on every instruction of the int/iret loop (periods
    1..24 cover every offset of its 22-step iteration), inside handlers too."""
    machine, translator = run_pair(period, 0x200, 100_000, 1)
    assert machine.cpu.by_cause.get("timer", 0) > 0


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 40), st.sampled_from([0, 0x200]), st.integers(1, 1200),
       st.sampled_from([1, 2, 10**6]), st.integers(1, 5))
def test_budgets_ending_anywhere_in_trap_loops(period, flags, budget, hot, chunks):
    run_pair(period, flags, budget, hot, chunks)
