"""The fast paths of exception delivery and `iret` compute exactly what the careful path does.

`CPU._enter` pushes a trap frame, and `CPU.iret` pops one, in one go when the five words lie in
one plain page (`CPU._frame_pa`); the gate is read the same way.  The reference here is the same
machine with that shortcut switched off (every word through `read_linear32`/`write_linear32`):
stacks and tables are put on page boundaries, read-only and unmapped pages, code pages, beyond
RAM and misaligned, so that deliveries fault (#PF, #GP, #AC → #DF → triple fault) and set D bits,
on both engines, natively and with the interrupt table at every place."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toyvisor.cpu import ENGINES, Machine
from toyvisor.isa.spec import PTE_P, PTE_PL_SHIFT, PTE_W

from cpu_asm import assemble, map_pages

MEMORY = 1 << 16
DIRECTORY = 0xA000
RW = PTE_P | PTE_W | (3 << PTE_PL_SHIFT)
RO = PTE_P | (3 << PTE_PL_SHIFT)

# Ring 0 sets up the table and ksp0, drops to ring 3, which traps in every way; the handlers
# skip the faulting one-word instruction and return.  #DF halts.
SOURCE = """
start:  li   sp, SP0
        li   r1, KSP
        mtcr ksp0, r1
        li   r1, IDT
        lidt r1
        li   r1, DIRECTORY
        mtcr cr3, r1
        li   r1, PG
        mtcr cr0, r1
        li   r1, USP
        push r1
        li   r1, 0x200
        push r1
        li   r1, 3
        push r1
        li   r1, user
        push r1
        li   r1, 0
        push r1
        iret
user:   li   r2, 0
        li   r5, 40
        li   r6, 0xB000
again:  int  0x80
        div  r3, r3, r2
        int  0x55
        ld   r4, [r6]
        cli
        addi r5, r5, -1
        cmpi r5, 0
        jnz  again
        int  0x81
skip:   ld   r13, [sp + 4]
        addi r13, r13, 4
        st   [sp + 4], r13
        iret
ret_:   iret
done:   hlt
double: hlt
"""

# Stacks: normal, straddling a page end, right at the end of RAM, below 20 (wraps), misaligned,
# on the read-only page, on the unmapped hole, on a code page.
STACKS = [0x8000, 0xD008, 0x10000, 0x10, 0x8002, 0x9010, 0xB010, 0x1800, 0x10010]
# Interrupt tables: normal, on the read-only page (readable), unmapped, misaligned, on a page end.
TABLES = [0x400, 0x9000 + 0x400, 0xB000 + 0x400, 0x402, 0xF800]


def make(sp0: int, ksp: int, usp: int, idt: int, paging: bool, careful: bool) -> Machine:
    consts = {"SP0": 0x8000 if sp0 is None else sp0, "KSP": ksp, "USP": usp, "IDT": idt,
              "DIRECTORY": DIRECTORY, "PG": int(paging)}
    image = assemble(SOURCE, consts)
    machine = Machine(memory_size=MEMORY)
    machine.load(image)
    memory = machine.memory
    # the table: written at its physical place (identity mapped but for the hole)
    table = idt & ~3
    if table < 0xB000 or table >= 0xC000:
        for vector in range(256):
            handler = {0: "skip", 14: "skip", 13: "skip", 17: "skip", 6: "skip", 8: "double",
                       0x80: "ret_", 0x55: "ret_", 0x81: "done"}.get(vector)
            if handler is not None and table + 8 * vector + 8 <= MEMORY:
                memory.write32(table + 8 * vector, image[handler])
                memory.write32(table + 8 * vector + 4, 1 | (3 << 1))  # present, DPL 3, ring 0
    # identity: RAM but the read-only page 0x9000, the page tables and the hole at 0xB000
    map_pages(memory, DIRECTORY, [(page, page, RO if page == 0x9000 else RW)
                                  for page in range(0, MEMORY, 0x1000)
                                  if page not in (0xA000, 0xB000)])
    if careful:
        machine.cpu._frame_pa = lambda *args, **kwargs: None
    return machine


def state(machine: Machine):
    cpu = machine.cpu
    return (machine.result(), bytes(machine.memory.data), cpu.cr2, tuple(cpu.ksp),
            tuple(cpu.regs), cpu.pc, cpu.cpl, cpu.flags, dict(cpu.by_cause))


@settings(max_examples=60, deadline=None)
@given(st.one_of(st.just(0x8000), st.sampled_from(STACKS)), st.sampled_from(STACKS),
       st.one_of(st.just(0x400), st.sampled_from(TABLES)),
       st.booleans(), st.sampled_from(ENGINES), st.integers(50, 700))
def test_fast_frames_and_gates_match_the_careful_path(ksp, usp, idt, paging, engine, budget):
    expected = make(None, ksp, usp, idt, paging, careful=True)
    expected.run(budget)
    machine = make(None, ksp, usp, idt, paging, careful=False)
    if engine == "fast":
        machine.engine("fast").hot_threshold = 1
    machine.run(budget, engine=engine)
    assert state(machine) == state(expected)


@pytest.mark.parametrize("engine", ENGINES)
def test_the_normal_case_takes_the_fast_path_and_traps_every_way(engine):
    machine = make(None, 0x8000, 0xE000, 0x400, True, careful=False)
    calls = []
    original = machine.cpu._frame_pa

    def spy(*args, **kwargs):
        found = original(*args, **kwargs)
        calls.append(found is not None)
        return found

    machine.cpu._frame_pa = spy
    result = machine.run(20_000, engine=engine)
    assert result.halted
    assert result.by_cause["int 0x80"] == 40 and result.by_cause["divide-error"] == 40
    assert result.by_cause["page-fault"] == result.by_cause["general-protection"] == 40
    assert sum(calls) > 0.9 * len(calls)  # the shortcut is taken, so the test above compares it
