"""Execution engines: `Machine.run(engine=...)` and ``toyvisor run --engine``.

Every engine must compute exactly what the reference interpreter computes; the random-program
differential tests live in tests/vmm/test_bt_differential.py (they drive the same translator).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from toyvisor.cpu import ENGINES, Machine, MachineError
from toyvisor.cpu.bt.codegen import FUSED_CONDITIONS
from toyvisor.isa.codegen import FACTORIES
from toyvisor.isa.spec import M32
from toyvisor.isa.table import BY_MNEMONIC
from toyvisor.tools.cli import main

from cpu_asm import assemble

REPO = Path(__file__).resolve().parents[2]

LOOP = """
start:  li   r1, 0
        li   r2, 0
        li   r3, 5000
loop:   addi r1, r1, 1
        addi r2, r2, 3
        cmp  r1, r3
        jnz  loop
        hlt
"""


def loop_machine() -> Machine:
    machine = Machine(memory_size=1 << 16)
    machine.load(assemble(LOOP))
    return machine


def test_engines_are_named_and_the_interpreter_comes_first():
    assert ENGINES[0] == "interpreter" and "fast" in ENGINES


@pytest.mark.parametrize("engine", ENGINES)
def test_every_engine_computes_the_interpreters_result(engine):
    expected = loop_machine().run(100_000)
    assert expected.halted
    assert loop_machine().run(100_000, engine=engine) == expected


def test_switching_engines_between_runs_continues_the_same_machine():
    expected = loop_machine().run(100_000)
    machine = loop_machine()
    for budget, engine in ((1001, "fast"), (999, "interpreter"), (7, "fast"), (100_000, "fast")):
        result = machine.run(budget, engine=engine)
    assert result == expected


def test_an_unknown_engine_is_a_machine_error_naming_the_known_ones():
    with pytest.raises(MachineError, match="unknown engine 'turbo'.*interpreter, fast"):
        loop_machine().run(10, engine="turbo")


def test_cli_run_engine_gives_the_same_json_as_the_interpreter():
    runner = CliRunner()
    outputs = [runner.invoke(main, ["run", "minikernel", "--json", *args])
               for args in ((), ("--engine", "fast"), ("--engine", "interpreter"))]
    assert all(o.exit_code == 0 for o in outputs), outputs[0].output
    first = json.loads(outputs[0].output)
    assert all(json.loads(o.output) == first for o in outputs[1:])


def test_cli_run_rejects_an_unknown_engine_and_engine_with_vmm():
    runner = CliRunner()
    bad = runner.invoke(main, ["run", "minikernel", "--engine", "turbo"])
    assert bad.exit_code == 1 and "'turbo' is not one of" in bad.output
    both = runner.invoke(main, ["run", "minikernel", "--engine", "fast", "--vmm", "trap-emulate"])
    assert both.exit_code == 1 and "--engine applies to bare-machine runs" in both.output


# -- the fast engine's own shortcuts, against the ISA table --------------------------------------

WORD = st.one_of(st.integers(0, M32), st.sampled_from([0, 1, 0x7FFFFFFF, 0x80000000, M32]))


class _Flags:
    def __init__(self, flags: int) -> None:
        self.flags = flags
        self.pc = 0


@settings(max_examples=60)
@given(WORD, WORD, st.sampled_from([0, 0x200]))
def test_fused_compare_and_branch_conditions_are_the_isa_semantics(x, y, other_flags):
    """Every condition the translator tests directly on a compare's operands is the condition
    the ISA's branch computes from the flags the ISA's cmp produces."""
    cmp = BY_MNEMONIC["cmp"]
    for mnemonic, condition in FUSED_CONDITIONS.items():
        cpu = _Flags(other_flags)
        R = [x, y] + [0] * 14
        FACTORIES[cmp.opcode](rs=0, rt=1, pc=0, npc=4)(cpu, R)
        FACTORIES[BY_MNEMONIC[mnemonic].opcode](target=0x100, pc=4, npc=8)(cpu, R)
        assert (cpu.pc == 0x100) == eval(condition, {"v_x": x, "v_y": y}), mnemonic


TIMED_LOOP = """
start:  li   sp, 0x8000
        li   r1, 0x400
        lidt r1
        li   r1, 37
        out  PORT_TIMER_PERIOD, r1
        li   r1, 0
        li   r2, 0
        li   r3, 9000
        sti
loop:   addi r1, r1, 1
        addi r2, r2, 3
        cmp  r1, r3
        jnz  loop
        cli
        hlt
tick:   push r5
        ld   r5, [sp + 8]       ; the interrupted pc
        st   [r6], r5           ; logged from 0x4000, 4 bytes per tick
        addi r6, r6, 4
        add  r7, r7, r1         ; and where the loop counter stood
        pop  r5
        iret
"""


def _timed_machine() -> Machine:
    machine = Machine(memory_size=1 << 16)
    image = assemble(TIMED_LOOP)
    machine.load(image)
    machine.memory.write32(0x400 + 8 * 32, image["tick"])  # the timer's vector (IRQ 0)
    machine.memory.write32(0x400 + 8 * 32 + 4, 1)
    machine.cpu.regs[6] = 0x4000
    return machine


def test_timer_interrupts_land_on_the_same_instruction_inside_compiled_loops():
    expected = _timed_machine().run(50_000)
    machine = _timed_machine()
    result = machine.run(50_000, engine="fast")
    assert result == expected and result.halted and result.by_cause["timer"] > 1000
    assert machine.memory.data == _rerun_memory()
    assert machine.engine("fast").stats.chained > 1000  # the loop ran compiled


def _rerun_memory() -> bytearray:
    machine = _timed_machine()
    machine.run(50_000)
    return machine.memory.data


PAGED_SUM = """
start:  li   sp, 0x8000
        li   r1, 0x400
        lidt r1
        li   r1, 0x4000
        mtcr cr3, r1
        li   r1, 1
        mtcr cr0, r1
        li   r5, 15
outer:  li   r2, 0x10000
        li   r4, 0
        li   r6, 0x13000         ; page 0x12000 is not mapped: #PF, the handler maps it
inner:  ld   r3, [r2]
        add  r4, r4, r3
        st   [r2 + 4], r4
        addi r2, r2, 8
        cmp  r2, r6
        jnz  inner
        addi r5, r5, -1
        cmpi r5, 0
        jg   outer
        hlt
pf:     push r1
        push r9
        mfcr r1, cr2
        shri r1, r1, 12
        shli r1, r1, 2
        li   r9, 0x5000          ; the page table (after the directory at 0x4000)
        add  r1, r1, r9
        li   r9, 0x40003         ; a fresh frame, present and writable
        st   [r1], r9
        pop  r9
        pop  r1
        iret
"""


def _paged_machine() -> Machine:
    from cpu_asm import map_pages

    from toyvisor.isa.spec import PTE_P, PTE_W
    machine = Machine(memory_size=1 << 20)
    image = assemble(PAGED_SUM)
    machine.load(image)
    memory = machine.memory
    memory.write32(0x400 + 8 * 14, image["pf"])
    memory.write32(0x400 + 8 * 14 + 4, 1)
    rw = PTE_P | PTE_W
    map_pages(memory, 0x4000, [(a, a, rw) for a in range(0, 0x9000, 0x1000)]
              + [(a, a + 0x20000, rw) for a in range(0x10000, 0x12000, 0x1000)])
    return machine


def test_paged_memory_loops_with_page_faults_match_the_interpreter():
    expected = _paged_machine().run(200_000)
    assert expected.halted and expected.by_cause.get("page-fault", 0) >= 1
    machine = _paged_machine()
    assert machine.run(200_000, engine="fast") == expected
    assert machine.memory.data == _run_memory(_paged_machine(), 200_000)


def _run_memory(machine: Machine, steps: int) -> bytearray:
    machine.run(steps)
    return machine.memory.data


def test_loads_of_compiled_blocks_reach_an_audit_hook_installed_mid_run():
    """Compiled blocks read RAM directly only while nothing is read-watched."""
    source = """
start:  li   r2, 0x6000
loop:   ld   r3, [r2]
        addi r1, r1, 1
        cmpi r1, 30000
        jnz  loop
        hlt
"""
    seen = {}
    for engine in ENGINES:
        machine = Machine(memory_size=1 << 16)
        machine.load(assemble(source))
        machine.run(5000, engine=engine)
        reads = []
        machine.memory.audit = lambda access, pa, size, value: reads.append((access, pa))
        machine.memory.watch(0x6000, read=True, write=False)
        result = machine.run(100_000, engine=engine)
        seen[engine] = (result, len(reads))
    assert seen["fast"] == seen["interpreter"]
    assert seen["fast"][1] > 20_000  # every load after the watch started


# The interpreter's runs pair straight-line instructions into one handler (a superinstruction)
# and skip most pc stores; a divide error in the middle of a run, leading or ending a pair, must
# still be delivered at the dividing instruction.  The handler logs the faulting pc and skips it.
DIVIDE_IN_RUNS = """
start:  li   sp, 0x8000
        li   r1, 0x400
        lidt r1
        li   r7, 0x6000          ; the log of faulting pcs
        li   r5, 40
loop:   addi r1, r1, 3
        div  r3, r1, r2          ; r2 = 0 every fourth pass: faults
        addi r4, r4, 1
        rem  r6, r4, r2
        xor  r8, r8, r4
        addi r2, r2, 1
        andi r2, r2, 3
        div  r9, r8, r2
        addi r5, r5, -1
        cmpi r5, 0
        jnz  loop
        hlt
de:     ld   r13, [sp + 4]       ; the faulting pc (above the error code)
        st   [r7], r13
        addi r7, r7, 4
        addi r13, r13, 4
        st   [sp + 4], r13
        iret
"""


def _divide_machine() -> Machine:
    machine = Machine(memory_size=1 << 16)
    image = assemble(DIVIDE_IN_RUNS)
    machine.load(image)
    machine.memory.write32(0x400, image["de"])  # vector 0: divide error
    machine.memory.write32(0x400 + 4, 1)
    return machine


@pytest.mark.parametrize("engine", ENGINES)
def test_divide_errors_inside_runs_are_delivered_at_the_dividing_instruction(engine):
    careful = _divide_machine()
    expected = careful.run(20_000, trace=lambda event: None)
    assert expected.halted and expected.by_cause["divide-error"] >= 20
    machine = _divide_machine()
    assert machine.run(20_000, engine=engine) == expected
    assert machine.memory.data == careful.memory.data


FUSED_LOOP = """
start:  li   r1, X
        li   r3, Y
        li   r4, 0
loop:   addi r1, r1, STEP
        addi r4, r4, 1
        cmpi r4, 50
        jz   out
        CMP
        JCC  loop
out:    hlt
"""


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(sorted(FUSED_CONDITIONS)), WORD, st.sampled_from([0, 1, 5, 0x7FFF]),
       st.sampled_from([1, -1, 3, -7]), st.booleans())
def test_compiled_fused_compares_with_constant_or_register_operands_match(mnemonic, x, y, step,
                                                                          registers):
    """A fused compare whose operands are a register and a constant (or two registers) is
    tested in place in compiled code; the flags appear at the block's exits."""
    compare = "cmp  r1, r3" if registers else f"cmpi r1, {y}"
    source = FUSED_LOOP.replace("CMP", compare).replace("JCC", mnemonic)
    consts = {"X": x, "Y": y, "STEP": step}
    reference = Machine(memory_size=1 << 16)
    reference.load(assemble(source, consts))
    reference.run(10_000)
    machine = Machine(memory_size=1 << 16)
    machine.load(assemble(source, consts))
    machine.engine("fast").hot_threshold = 1
    machine.run(10_000, engine="fast")
    assert machine.result() == reference.result()
    assert (machine.cpu.regs, machine.cpu.flags) == (reference.cpu.regs, reference.cpu.flags)
