"""The binary translator on bare metal (DirectCallouts) computes exactly what the interpreter does:
random programs, faults inside blocks, timer interrupts, paging, self-modifying code, guests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cpu"))

from cpu_asm import assemble, identity_map  # noqa: E402

from toyvisor.cpu import Machine  # noqa: E402
from toyvisor.isa.encoding import encode  # noqa: E402
from toyvisor.isa.spec import M32, Privilege  # noqa: E402
from toyvisor.isa.table import INSTRUCTIONS  # noqa: E402
from toyvisor.testing.strategies import operand_values  # noqa: E402
from toyvisor.vmm.bt import DirectCallouts, Translator  # noqa: E402

MEMORY = 1 << 16
CODE = 0x1000  # the random program
DATA = 0x8000  # what memory operands mostly point at
STACK = 0xE000
IDT = 0x400
PAGE_DIRECTORY = 0xA000

# The kernel around a random program: an interrupt table whose fault handlers skip the faulting
# (one-word) instruction, trap/IRQ handlers that just return, and #DF that stops.
PRELUDE = """
start:  li   sp, STACK
        li   r1, IDT
        lidt r1
        li   r1, PERIOD
        out  PORT_TIMER_PERIOD, r1
        li   r1, FLAGS
        push r1
        popf
        li   r1, CR3
        mtcr cr3, r1
        li   r1, PG
        mtcr cr0, r1
        li   r0, R0
        li   r1, R1
        li   r2, R2
        li   r3, R3
        li   r4, R4
        li   r5, R5
        li   r6, R6
        li   r7, R7
        jmp  program
skip:   pop  r14
        ld   r13, [sp]
        addi r13, r13, 4
        st   [sp], r13
        iret
ret_:   pop  r14
        iret
double: hlt
"""

FAULT_VECTORS = (0, 6, 13, 14, 17)
TRAP_VECTORS = (3, 32, 0x80)


def build(program: list[bytes], *, regs, period: int, flags: int, paging: bool,
          code_pages_readonly: bool = False) -> Machine:
    consts = {"STACK": STACK, "IDT": IDT, "PERIOD": period, "FLAGS": flags,
              "CR3": PAGE_DIRECTORY, "PG": int(paging)}
    consts.update({f"R{i}": v for i, v in enumerate(regs)})
    source = PRELUDE + f".org {CODE}\nprogram: nop\n"
    image = assemble(source, consts)
    machine = Machine(memory_size=MEMORY)
    machine.load(image)
    memory = machine.memory
    for vector in range(256):
        handler = (image["skip"] if vector in FAULT_VECTORS else image["ret_"]
                   if vector in TRAP_VECTORS else image["double"] if vector == 8 else None)
        if handler is not None:
            memory.write32(IDT + 8 * vector, handler)
            memory.write32(IDT + 8 * vector + 4, 1 | (3 << 1))  # present, DPL 3, ring 0
    code = b"".join(program)
    memory.write(CODE + 4, code)
    memory.write(CODE + 4 + len(code), encode(BY["hlt"], ()))
    if paging:
        from toyvisor.isa.spec import PTE_P, PTE_PL_SHIFT, PTE_W
        rw = PTE_P | PTE_W | (3 << PTE_PL_SHIFT)
        identity_map(memory, PAGE_DIRECTORY, 0xA000, rw)
        from cpu_asm import map_pages
        # a read-only page, an unmapped hole, and a page aliasing the data page
        map_pages(memory, PAGE_DIRECTORY, [(0x9000, 0x9000, PTE_P | (3 << PTE_PL_SHIFT)),
                                           (0xC000, DATA, rw), (0xD000, 0xD000, rw),
                                           (0xE000 - 0x1000, 0xD000, rw)])
        if code_pages_readonly:
            map_pages(memory, PAGE_DIRECTORY, [(CODE, CODE, PTE_P | (3 << PTE_PL_SHIFT))])
    return machine


BY = {d.mnemonic: d for d in INSTRUCTIONS}
INNOCUOUS = [d for d in INSTRUCTIONS
             if d.privilege is Privilege.INNOCUOUS and not d.sets_pc and d.length == 4]
SENSITIVE = [BY[m] for m in ("pushf", "popf", "sidt", "smsw", "rdcs", "cli", "sti", "mfcr",
                             "in")]
REG = st.integers(0, 11)  # r12 counts loops, r13/r14 belong to handlers, sp stays sane


def operands(definition, pc):
    return operand_values(
        definition, pc, registers=REG, bases=st.sampled_from([0, 1, 2, 3, 15]),
        displacements=st.one_of(st.integers(-16, 16).map(lambda d: 4 * d),
                                st.integers(-0x8000, 0x7FFF)),
        vectors=st.sampled_from([0x80, 3, 0x55]), ports=st.sampled_from([0x21, 0x31, 0x11]),
        control_registers=st.sampled_from([0, 2, 3, 8]))


@st.composite
def instruction(draw, pc):
    pool = draw(st.sampled_from(["alu", "alu", "alu", "mem", "sens", "trap"]))
    if pool == "mem":
        definition = BY[draw(st.sampled_from(["ld", "ldb", "st", "stb", "xchg", "push", "pop"]))]
    elif pool == "sens":
        definition = draw(st.sampled_from(SENSITIVE))
    elif pool == "trap":
        definition = BY[draw(st.sampled_from(["int", "brk", "div", "rem", "divu"]))]
    else:
        definition = draw(st.sampled_from(INNOCUOUS))
    return definition, draw(operands(definition, pc))


@st.composite
def programs(draw):
    """A loop (counted in r12) over random instructions with forward branches inside."""
    count = draw(st.integers(1, 40))
    iterations = draw(st.integers(1, 6))
    start = CODE + 4
    body_start = start + 8  # after "li r12, iterations"
    items = []
    for _ in range(count):
        items.append(("insn", draw(instruction(0))) if draw(st.integers(0, 9)) else ("branch",))
    # Lay out: li r12; body...; addi r12,-1; cmpi r12,0; jnz body_start
    words: list[bytes] = [encode(BY["li"], (12, iterations), start)]
    pc = body_start
    slots = []
    for item in items:
        slots.append(pc)
        pc += 4
    end_of_body = pc
    for index, item in enumerate(items):
        here = slots[index]
        if item[0] == "insn":
            definition, values = item[1]
            words.append(encode(definition, values, here))
        else:
            mnemonic = draw(st.sampled_from(["jz", "jnz", "jl", "jge", "jb", "ja", "jmp"]))
            target = draw(st.sampled_from(slots[index + 1:] + [end_of_body]))
            words.append(encode(BY[mnemonic], (target,), here))
    words.append(encode(BY["addi"], (12, 12, -1), end_of_body))
    words.append(encode(BY["cmpi"], (12, 0), end_of_body + 4))
    words.append(encode(BY["jnz"], (body_start,), end_of_body + 8))
    return words


def registers():
    word = st.one_of(st.integers(0, M32), st.sampled_from([0, 1, M32, 0x80000000]))
    address = st.sampled_from([DATA, DATA + 0x40, DATA + 2, CODE + 8, 0x9000, 0xB000, 0xC000])
    return st.tuples(address, address, address, address, word, word, word, word)


def state(machine: Machine):
    cpu = machine.cpu
    return (machine.result(), bytes(machine.memory.data), cpu.cr2, cpu.idtr, cpu.mmu.cr3,
            tuple(cpu.ksp), cpu.cr0)


def run_both(make, budget: int, *, chunks: int = 1, max_block: int = 64, trace=False,
             hot_threshold: int = 1, translate_cpls=(0, 1, 2, 3)):
    reference = make()
    reference.run(budget)
    machine = make()
    translator = Translator(machine.cpu, DirectCallouts(), max_block=max_block,
                            hot_threshold=hot_threshold, translate_cpls=translate_cpls)
    events = [] if trace else None
    for i in range(chunks):
        translator.run(budget // chunks + (budget % chunks if i == chunks - 1 else 0),
                       trace=events.append if trace else None)
    assert state(machine) == state(reference)
    return machine, translator


# Blocks run cold (handler closures) until `hot_threshold` entries, compiled after: 1 compiles
# at once, 3 switches in the middle of loops, 10**6 never compiles.
HOT = st.sampled_from([1, 1, 3, 10**6])


@given(programs(), registers(), st.sampled_from([0, 0, 7, 13, 50]),
       st.sampled_from([0, 0x200, 0x2C1]), st.booleans(), HOT)
def test_random_programs_match_the_interpreter(program, regs, period, flags, paging, hot):
    def make():
        return build(program, regs=regs, period=period, flags=flags, paging=paging)

    run_both(make, 3000, hot_threshold=hot)


@given(programs(), registers(), st.sampled_from([0, 7, 13]), st.booleans(), HOT)
def test_untranslated_rings_run_directly_with_the_interpreters_result(program, regs, period,
                                                                      paging, hot):
    """Rings outside `translate_cpls` run their blocks as direct execution (a VMM's guest
    applications): sensitive instructions and `int` on the interpreter's careful path."""
    def make():
        return build(program, regs=regs, period=period, flags=0x200, paging=paging)

    _, translator = run_both(make, 3000, hot_threshold=hot, translate_cpls=())
    stats = translator.stats
    assert stats.translated_instructions == stats.callouts == stats.blocks_translated == 0


@given(programs(), registers(), st.sampled_from([3, 11]), st.integers(1, 4),
       st.sampled_from([1, 3, 64]), HOT)
def test_split_budgets_small_blocks_and_timer(program, regs, period, chunks, max_block, hot):
    def make():
        return build(program, regs=regs, period=period, flags=0x200, paging=False)

    run_both(make, 1500, chunks=chunks, max_block=max_block, hot_threshold=hot)


@given(programs(), registers(), st.booleans())
def test_traced_runs_report_the_interpreters_events(program, regs, paging):
    def make():
        return build(program, regs=regs, period=9, flags=0x200, paging=paging)

    reference = make()
    expected = []
    reference.run(600, trace=expected.append)
    machine = make()
    seen = []
    Translator(machine.cpu).run(600, trace=seen.append)
    assert state(machine) == state(reference)
    assert seen == expected


# -- self-modifying code ---------------------------------------------------------------------------

SMC_LOOP = """
start:  li   sp, 0x8000
        li   r1, 0
        li   r2, 10
        la   r5, loop
        la   r6, new
        ld   r6, [r6]
loop:   addi r1, r1, 1          ; becomes "addi r1, r1, 100" after 5 iterations
        addi r3, r3, 1
        cmpi r3, 5
        jnz  skip
        st   [r5], r6           ; patch an instruction of this loop, already executed
skip:   addi r2, r2, -1
        cmpi r2, 0
        jnz  loop
        hlt
new:    addi r1, r1, 100
"""


@pytest.mark.parametrize("hot", [1, 3, 10**6])
def test_patching_an_executed_loop_takes_effect_on_the_next_iteration(hot):
    def make():
        machine = Machine(memory_size=1 << 16)
        machine.load(assemble(SMC_LOOP))
        return machine

    machine, translator = run_both(make, 10_000, hot_threshold=hot)
    assert machine.cpu.regs[1] == 5 + 5 * 100
    assert translator.stats.invalidations >= 1


SELF_PATCH = """
start:  li   r1, 0
        li   r4, 3
        la   r5, target
        la   r6, new
        ld   r6, [r6]
again:  st   [r5], r6           ; patches the very next instruction of this block
target: addi r1, r1, 1          ; -> addi r1, r1, 50 (the store must be seen at once)
        addi r1, r1, 1000
        la   r6, old
        ld   r6, [r6]
        addi r4, r4, -1
        cmpi r4, 0
        jnz  again
        hlt
new:    addi r1, r1, 50
old:    addi r1, r1, 1
"""


@pytest.mark.parametrize("hot", [1, 2, 10**6])
def test_a_store_into_the_running_block_is_seen_by_the_next_instruction(hot):
    def make():
        machine = Machine(memory_size=1 << 16)
        machine.load(assemble(SELF_PATCH))
        return machine

    machine, translator = run_both(make, 10_000, hot_threshold=hot)
    # First pass executes the patched "+50"; later passes restore "+1" before... each pass
    # stores the value loaded last time: +50, then +1, then +1.
    assert machine.result().halted
    assert translator.stats.early_exits >= 1


@given(st.lists(st.tuples(st.integers(0, 15), st.integers(0, 0xFFFF)), min_size=1, max_size=8),
       st.integers(0, 5), st.booleans(), HOT)
def test_random_stores_into_code_match_the_interpreter(patches, offset, paging, hot):
    """Stores of arbitrary words into the program itself (decodable or not)."""
    program = []
    for reg, value in patches:
        program.append(encode(BY["ori"], (1, reg, value)))
        program.append(encode(BY["st"], ((2, 4 * offset), 1)))
        program.append(encode(BY["addi"], (3, 3, 1)))

    def make():
        return build(program, regs=(0, 0, CODE + 8, 0, 0x22220000, 0, 0, 0), period=0,
                     flags=0, paging=paging)

    run_both(make, 2000, hot_threshold=hot)


# -- remapping code ------------------------------------------------------------------------------

REMAP = """
start:  li   sp, 0x8000
        li   r9, 0
        li   r1, 0x4000         ; directory A maps 0x10000 -> 0x2000
        mtcr cr3, r1
        li   r1, 1
        mtcr cr0, r1
        call 0x10000
        li   r1, 0x6000         ; directory B maps 0x10000 -> 0x3000
        mtcr cr3, r1
        call 0x10000
        li   r1, 0x4000
        mtcr cr3, r1
        call 0x10000
        hlt
.org 0x2000
        addi r9, r9, 1
        ret
.org 0x3000
        addi r9, r9, 100
        ret
"""


def test_a_cr3_write_never_runs_the_old_mappings_translation():
    from cpu_asm import map_pages

    from toyvisor.isa.spec import PTE_P, PTE_PL_SHIFT, PTE_W
    rw = PTE_P | PTE_W | (3 << PTE_PL_SHIFT)

    def make():
        machine = Machine(memory_size=1 << 16)
        machine.load(assemble(REMAP))
        for directory, frame in ((0x4000, 0x2000), (0x6000, 0x3000)):
            map_pages(machine.memory, directory,
                      [*((a, a, rw) for a in range(0, 0x4000, 0x1000)), (0x10000, frame, rw),
                       (0x7000, 0x7000, rw)])
        return machine

    machine, _ = run_both(make, 1000)
    assert machine.cpu.regs[9] == 102


# -- the bundled guests --------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["minikernel", "nanobench"])
@pytest.mark.parametrize("cpls", [(0, 1, 2, 3), (0,)])
def test_bundled_guests_give_the_interpreters_result(name, cpls):
    from toyvisor.tools.guest import load_guest
    from toyvisor.tools.runner import boot

    guest = load_guest(name)
    reference = boot(guest)
    expected = reference.run(guest.max_steps)
    machine = boot(guest)
    translator = Translator(machine.cpu, translate_cpls=cpls)
    translator.run(guest.max_steps)
    assert machine.result() == expected
    assert machine.memory.data == reference.memory.data
    stats = translator.stats
    assert stats.translated_instructions + stats.direct_instructions + stats.callouts \
        >= expected.guest_instructions
    if cpls == (0,):
        assert stats.direct_instructions > 0


@given(programs(), registers(), st.sampled_from([0, 7, 13]), st.booleans())
def test_the_interpreters_run_loop_matches_its_careful_path(program, regs, period, paging):
    """The interpreter's fast loop (runs of cached handlers) against its careful path, which a
    trace forces for every instruction: the reference semantics."""
    def make():
        return build(program, regs=regs, period=period, flags=0x200, paging=paging)

    careful = make()
    careful.run(3000, trace=lambda event: None)
    fast = make()
    fast.run(3000)
    assert state(fast) == state(careful)


# -- translations cached by a compiled block --------------------------------------------------

# A compiled loop caches its last page translation (`toyvisor.cpu.bt.codegen`, **Memory**).  The
# loop walks two data pages (first writes set D through the slow path, byte loads share the
# cache); between passes the kernel swaps the pages' frames in the page table and makes that
# visible by invlpg of one page only, by a cr3 write, or not at all (the TLB keeps the old,
# the compiled loop must too).
CACHED = """
start:  li   sp, 0x8000
        li   r1, 0x4000
        mtcr cr3, r1
        li   r1, 1
        mtcr cr0, r1
        li   r8, 4
round:  li   r1, 0x10000
        li   r2, 0x12000
inner:  ld   r3, [r1]
        add  r9, r9, r3
        st   [r1], r9
        ldb  r4, [r1 + 1]
        add  r9, r9, r4
        addi r1, r1, 0x100
        cmp  r1, r2
        jb   inner
        li   r5, 0x5040
        ld   r6, [r5]
        ld   r7, [r5 + 4]
        st   [r5], r7
        st   [r5 + 4], r6
        cmpi r8, 4
        jnz  not4
        li   r6, 0x10000
        invlpg r6
not4:   cmpi r8, 3
        jnz  not3
        li   r6, 0x4000
        mtcr cr3, r6
not3:   addi r8, r8, -1
        cmpi r8, 0
        jnz  round
        hlt
"""


@pytest.mark.parametrize("hot", [1, 3])
def test_a_compiled_loop_sees_invlpg_and_cr3_writes_between_its_runs(hot):
    from cpu_asm import map_pages

    from toyvisor.isa.spec import PTE_P, PTE_PL_SHIFT, PTE_W
    rw = PTE_P | PTE_W | (3 << PTE_PL_SHIFT)

    def make():
        machine = Machine(memory_size=1 << 16)
        machine.load(assemble(CACHED))
        map_pages(machine.memory, 0x4000,
                  [*((a, a, rw) for a in range(0, 0x8000, 0x1000)),
                   (0x10000, 0x2000, rw), (0x11000, 0x3000, rw)])
        for page in (0x2000, 0x3000):
            machine.memory.write(page, bytes(range(256)) * 16)
        return machine

    machine, translator = run_both(make, 5000, hot_threshold=hot)
    assert machine.cpu.stop_reason == "halted"
    assert translator.stats.blocks_translated
