"""Paging, the TLB, alignment and physical bounds (docs/machine.md, "Paging")."""

from __future__ import annotations

import pytest
from cpu_asm import TrapRecorder, assemble, boot, map_pages

from toyvisor.isa.spec import (
    CR0_PG,
    PF_FETCH,
    PF_PROT,
    PF_USER,
    PF_WRITE,
    PTE_A,
    PTE_D,
    PTE_P,
    PTE_W,
    VEC_AC,
    VEC_GP,
    VEC_PF,
)

PD = 0x80000
PL3 = 3 << 2
PL1 = 1 << 2
LOW = 0x10000  # the identity-mapped low region: code, data, stacks
DATA = 0x40000  # a linear page the tests map in various ways
FRAME_A = 0x50000
FRAME_B = 0x51000


def paged(source, mappings=(), cpl=0, regs=None, low_flags=PTE_P | PTE_W | PL3,
          pde_flags=None, monitor=True, **machine_args):
    """Boot `source` with paging on: [0, LOW) identity-mapped with `low_flags`, plus
    `mappings` (linear, physical, flags), plus the page tables themselves (identity, ring 0);
    returns (machine, recorder)."""
    machine = boot(source, **{"memory_size": 1 << 20, **machine_args})
    low = [(a, a, low_flags) for a in range(0, LOW, 0x1000)]
    tables = [(a, a, PTE_P | PTE_W) for a in range(PD, PD + 0x4000, 0x1000)]  # ring 0 only
    map_pages(machine.memory, PD, [*low, *mappings, *tables], pde_flags=pde_flags)
    cpu = machine.cpu
    cpu.write_cr(3, PD)
    cpu.write_cr(0, CR0_PG)
    cpu.cpl = cpl
    cpu.regs[15] = LOW
    for number, value in (regs or {}).items():
        cpu.regs[number] = value
    recorder = TrapRecorder()
    if monitor:
        cpu.monitor = recorder
    return machine, recorder


def go(source, mappings=(), cpl=0, regs=None, **kw):
    machine, recorder = paged(source, mappings, cpl, regs, **kw)
    machine.run(max_steps=10_000)
    return machine, recorder.first


def user_bits(cpl):
    return (PF_USER if cpl else 0) | (cpl << 5)


@pytest.mark.parametrize("cpl", [0, 1, 2, 3])
@pytest.mark.parametrize(("instruction", "write"), [("ld r2, [r1 + 8]", False),
                                                    ("st [r1 + 8], r2", True),
                                                    ("ldb r2, [r1 + 9]", False),
                                                    ("stb [r1 + 9], r2", True)])
def test_not_present_page(cpl, instruction, write):
    machine, event = go(f"nop\n{instruction}\nbrk", regs={1: DATA}, cpl=cpl)
    offset = 9 if "b " in instruction else 8
    assert (event.vector, event.pc) == (VEC_PF, 4)
    assert event.error == (PF_WRITE if write else 0) | user_bits(cpl)
    assert event.address == DATA + offset and machine.cpu.cr2 == DATA + offset
    assert machine.cpu.regs[2] == 0 and machine.cpu.pc == 4


def test_not_present_directory_entry():
    machine, event = go("ld r2, [r1]\nbrk", regs={1: 0x40000000})
    assert (event.vector, event.error, event.address) == (VEC_PF, 0, 0x40000000)


@pytest.mark.parametrize("cpl", [1, 2, 3])
def test_outer_ring_access_to_a_ring0_page_is_a_protection_fault(cpl):
    mappings = [(DATA, FRAME_A, PTE_P | PTE_W)]  # PL 0
    machine, event = go("ld r2, [r1]\nbrk", mappings, cpl=cpl, regs={1: DATA})
    assert event.error == PF_PROT | user_bits(cpl)
    machine, event = go("st [r1], r2\nbrk", mappings, cpl=cpl, regs={1: DATA})
    assert event.error == PF_PROT | PF_WRITE | user_bits(cpl)


def test_pl_is_the_highest_ring_allowed():
    mappings = [(DATA, FRAME_A, PTE_P | PL1)]
    machine, event = go("ld r2, [r1]\nbrk", mappings, cpl=1, regs={1: DATA})
    assert event.cause == "breakpoint"
    machine, event = go("ld r2, [r1]\nbrk", mappings, cpl=2, regs={1: DATA})
    assert event.error == PF_PROT | PF_USER | (2 << 5)


@pytest.mark.parametrize("cpl", [0, 1, 3])
def test_writes_are_checked_in_every_ring(cpl):
    mappings = [(DATA, FRAME_A, PTE_P | PL3)]  # read-only
    machine, event = go("ld r3, [r1]\nst [r1], r2\nbrk", mappings, cpl=cpl, regs={1: DATA})
    assert (event.pc, event.error) == (4, PF_PROT | PF_WRITE | user_bits(cpl))


def test_effective_permissions_combine_both_levels():
    # The directory entry is read-only and ring 0; the table entry allows everything.
    machine, recorder = paged("st [r1], r2\nbrk", [(0x400000, FRAME_A, PTE_P | PTE_W | PL3)],
                              regs={1: 0x400000})
    directory_entry = PD + 4 * 1
    memory = machine.memory
    memory.write32(directory_entry, memory.read32(directory_entry) & ~(PTE_W | PL3))
    machine.run(max_steps=10)
    assert recorder.first.error == PF_PROT | PF_WRITE
    machine, recorder = paged("ld r2, [r1]\nbrk", [(0x400000, FRAME_A, PTE_P | PTE_W | PL3)],
                              regs={1: 0x400000}, cpl=3)
    memory = machine.memory
    memory.write32(directory_entry, memory.read32(directory_entry) & ~PL3)
    machine.run(max_steps=10)
    assert recorder.first.error == PF_PROT | PF_USER | (3 << 5)


def test_instruction_fetch_faults_carry_the_fetch_bit():
    machine, event = go("jmpr r1", regs={1: DATA}, cpl=3)
    assert (event.vector, event.pc, event.address) == (VEC_PF, DATA, DATA)
    assert event.error == PF_FETCH | user_bits(3)
    machine, event = go("jmpr r1", [(DATA, FRAME_A, PTE_P)], regs={1: DATA}, cpl=3)
    assert event.error == PF_PROT | PF_FETCH | user_bits(3)


def test_two_word_instruction_straddling_into_an_unmapped_page():
    source = f"""
        jmpr r1
        .org {LOW - 4}
    edge:
        li r2, 0x12345678
    """
    machine, event = go(source, regs={1: LOW - 4})
    assert (event.vector, event.pc, event.address) == (VEC_PF, LOW - 4, LOW)
    assert event.error == PF_FETCH


def test_accessed_and_dirty_bits():
    mappings = [(DATA, FRAME_A, PTE_P | PTE_W | PL3), (DATA + 0x1000, FRAME_B, PTE_P | PTE_W)]
    machine, recorder = paged("ld r2, [r1]\nbrk\nst [r1], r2\nbrk", mappings, regs={1: DATA})
    memory = machine.memory
    table = memory.read32(PD) & ~0xFFF
    pte = table + 4 * (DATA >> 12)
    untouched = table + 4 * ((DATA >> 12) + 1)
    assert memory.read32(pte) & (PTE_A | PTE_D) == 0
    machine.run(max_steps=10)
    assert memory.read32(PD) & PTE_A
    assert memory.read32(pte) & (PTE_A | PTE_D) == PTE_A
    machine.cpu.pc = 8
    recorder.events.clear()
    machine.cpu.stop_reason = None
    machine.run(max_steps=10)
    assert memory.read32(pte) & (PTE_A | PTE_D) == PTE_A | PTE_D
    assert memory.read32(untouched) & (PTE_A | PTE_D) == 0
    assert memory.read32(FRAME_A) == 0


def test_dirty_bit_is_set_on_the_first_write_through_a_cached_entry():
    mappings = [(DATA, FRAME_A, PTE_P | PTE_W | PL3)]
    machine, _ = go("ld r2, [r1]\nst [r1], r1\nbrk", mappings, regs={1: DATA})
    table = machine.memory.read32(PD) & ~0xFFF
    assert machine.memory.read32(table + 4 * (DATA >> 12)) & PTE_D
    assert machine.memory.read32(FRAME_A) == DATA


def test_a_faulting_walk_sets_no_accessed_bit():
    mappings = [(DATA, FRAME_A, PTE_P | PTE_W)]
    machine, event = go("ld r2, [r1]\nbrk", mappings, cpl=3, regs={1: DATA})
    table = machine.memory.read32(PD) & ~0xFFF
    assert event.vector == VEC_PF
    assert not machine.memory.read32(table + 4 * (DATA >> 12)) & PTE_A


TLB_SOURCE = """
    ld   r2, [r1]          ; fill the TLB: FRAME_A
    st   [r3], r4          ; rewrite the PTE to point at FRAME_B (no invalidation)
    ld   r5, [r1]          ; stale: still FRAME_A
    invlpg r1
    ld   r6, [r1]          ; now FRAME_B
    st   [r3], r7          ; make the page not present...
    ld   r8, [r1]          ; ...still cached
    mtcr cr3, r9           ; a cr3 write flushes everything
    ld   r10, [r1]         ; #PF
    brk
"""


def test_the_tlb_is_stale_until_invlpg_or_a_cr3_write():
    machine, recorder = paged(TLB_SOURCE, [(DATA, FRAME_A, PTE_P | PTE_W | PL3)])
    memory = machine.memory
    memory.write32(FRAME_A, 0xAAAA)
    memory.write32(FRAME_B, 0xBBBB)
    table = memory.read32(PD) & ~0xFFF
    pte = table + 4 * (DATA >> 12)
    regs = machine.cpu.regs
    regs[1], regs[3], regs[4], regs[7], regs[9] = DATA, pte, FRAME_B | PTE_P | PTE_W, 0, PD
    machine.run(max_steps=100)
    event = recorder.first
    assert regs[2] == 0xAAAA and regs[5] == 0xAAAA and regs[6] == 0xBBBB and regs[8] == 0xBBBB
    assert (event.vector, event.address, event.error) == (VEC_PF, DATA, 0)
    assert event.pc == assemble(TLB_SOURCE).entry + 4 * 8 + 0


def test_stale_code_translation_until_invlpg():
    # Code at linear DATA runs from FRAME_A; remapping DATA to FRAME_B without invlpg keeps
    # running the old code; after invlpg the new code runs.
    routine_a = assemble("li r2, 0xA\nret").segments[0].data
    routine_b = assemble("li r2, 0xB\nret").segments[0].data
    source = """
        callr r1           ; A
        mov  r5, r2
        st   [r3], r4      ; remap to FRAME_B, no invalidation
        callr r1           ; still A
        mov  r6, r2
        invlpg r1
        callr r1           ; B
        brk
    """
    machine, recorder = paged(source, [(DATA, FRAME_A, PTE_P | PTE_W | PL3)])
    memory = machine.memory
    memory.write(FRAME_A, routine_a)
    memory.write(FRAME_B, routine_b)
    table = memory.read32(PD) & ~0xFFF
    regs = machine.cpu.regs
    regs[1], regs[3], regs[4] = DATA, table + 4 * (DATA >> 12), FRAME_B | PTE_P | PL3
    machine.run(max_steps=100)
    assert recorder.first.cause == "breakpoint"
    assert (regs[5], regs[6], regs[2]) == (0xA, 0xA, 0xB)


def test_a_frame_beyond_ram_is_a_gp():
    mappings = [(DATA, 0x7FFFF000, PTE_P | PTE_W | PL3)]
    machine, event = go("ld r2, [r1]\nbrk", mappings, regs={1: DATA})
    assert (event.vector, event.error, event.pc) == (VEC_GP, 0, 0)


@pytest.mark.parametrize("instruction", ["ld r2, [r1]", "st [r1], r2", "ldb r2, [r1 + 3]",
                                         "stb [r1 + 3], r2"])
def test_a_physical_address_beyond_ram_is_a_gp(instruction):
    from cpu_asm import execute

    machine, event = execute(f"{instruction}\nbrk", regs={1: 1 << 16})
    assert (event.vector, event.error, event.pc) == (VEC_GP, 0, 0)
    machine, event = execute(f"{instruction}\nbrk", regs={1: (1 << 16) - 4})
    assert event.cause == "breakpoint"


def test_fetch_beyond_ram_is_a_gp():
    from cpu_asm import execute

    machine, event = execute("jmpr r1", regs={1: 1 << 16})
    assert (event.vector, event.pc) == (VEC_GP, 1 << 16)


@pytest.mark.parametrize("instruction", ["ld r2, [r1 + 1]", "st [r1 + 2], r2",
                                         "xchg r2, [r1 + 3]", "push r2", "jmpr r3"])
def test_word_accesses_must_be_aligned(instruction):
    from cpu_asm import execute

    machine, event = execute(f"nop\n{instruction}\nbrk", regs={1: 0x1000, 3: 0x1002, 15: 0x801})
    assert (event.vector, event.error, event.cause) == (VEC_AC, 0, "alignment-check")
    assert event.pc == (0x1002 if "jmpr" in instruction else 4)


def test_byte_accesses_may_be_unaligned():
    from cpu_asm import execute

    machine, event = execute("stb [r1 + 1], r2\nldb r3, [r1 + 1]\nbrk", regs={1: 0x1000, 2: 0x1FF})
    assert event.cause == "breakpoint" and machine.cpu.regs[3] == 0xFF


def test_delivery_reads_gates_and_pushes_frames_through_paging():
    """Ring 3 code calls a ring-0 gate; the table and kernel stack sit on ring-0 pages."""
    source = """
    start:
        int  0x80
        brk
    syscall:
        mov  r10, sp
        hlt
    """
    idt_page, stack_page = 0x20000, 0x21000
    mappings = [(idt_page, idt_page, PTE_P), (stack_page, stack_page, PTE_P | PTE_W)]
    machine, _ = paged(source, mappings, cpl=3, monitor=False)
    labels = assemble(source).labels
    memory = machine.memory
    memory.write32(idt_page + 8 * 0x80, labels["syscall"])
    memory.write32(idt_page + 8 * 0x80 + 4, 1 | (3 << 1))  # P, DPL 3, ring 0
    cpu = machine.cpu
    cpu.idtr = idt_page
    cpu.ksp[0] = stack_page + 0x1000
    result = machine.run(max_steps=100)
    assert result.stop_reason == "halted"
    assert result.registers[10] == stack_page + 0x1000 - 20
    assert memory.read32(stack_page + 0x1000 - 16) == 4  # saved pc
    # A read-only kernel stack: the frame push faults → #DF → (no gate) triple fault.
    machine, _ = paged(source, [(idt_page, idt_page, PTE_P), (stack_page, stack_page, PTE_P)],
                       cpl=3, monitor=False)
    machine.memory.write32(idt_page + 8 * 0x80, labels["syscall"])
    machine.memory.write32(idt_page + 8 * 0x80 + 4, 1 | (3 << 1))
    machine.cpu.idtr = idt_page
    machine.cpu.ksp[0] = stack_page + 0x1000
    result = machine.run(max_steps=100)
    assert result.stop_reason == "triple-fault"
    # The push faults the `int` itself (#PF, cr2 = the push address); #PF has no gate → #DF,
    # which has none either.
    assert result.by_cause == {"int 0x80": 1, "page-fault": 1, "general-protection": 2,
                               "double-fault": 1}
    assert machine.cpu.cr2 == stack_page + 0x1000 - 4


def test_paging_can_be_turned_on_by_the_guest():
    source = f"""
        li   r1, {PD}
        mtcr cr3, r1
        li   r1, CR0_PG
        mtcr cr0, r1
        smsw r2
        li   r3, {DATA}
        ld   r4, [r3]
        hlt
    """
    machine = boot(source, memory_size=1 << 20)
    map_pages(machine.memory, PD, [*((a, a, PTE_P | PTE_W) for a in range(0, LOW, 0x1000)),
                                   (DATA, FRAME_A, PTE_P)])
    machine.memory.write32(FRAME_A, 0xFEED)
    result = machine.run(max_steps=100)
    assert result.stop_reason == "halted"
    assert result.registers[2] == CR0_PG and result.registers[4] == 0xFEED
