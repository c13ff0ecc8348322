"""Every instruction of the table: its semantics, at CPL 0 and at CPL 3.

Each test registers the mnemonics it covers with `@semantic`; `test_every_instruction_is_tested`
fails when the table gains an instruction without a test here.  Programs end with `brk`: the
`TrapRecorder` monitor stops the CPU at the first event, so the state is exactly what the
instructions before it left.
"""

from __future__ import annotations

import pytest
from cpu_asm import assemble, execute, identity_map

from toyvisor.isa.spec import (
    CR0_PG,
    FLAG_CF,
    FLAG_IF,
    FLAG_OF,
    FLAG_SF,
    FLAG_ZF,
    FLAGS_MASK,
    VEC_BP,
    VEC_GP,
)
from toyvisor.isa.table import INSTRUCTIONS, Kind

COVERED: set[str] = set()
CPLS = pytest.mark.parametrize("cpl", [0, 3])


def semantic(*mnemonics):
    """Mark a test as covering the semantics of `mnemonics` (at CPL 0 and CPL 3)."""

    def mark(fn):
        COVERED.update(mnemonics)
        return fn

    return mark


def ended_at_brk(event, machine) -> None:
    assert event is not None, f"no trap; stopped by {machine.cpu.stop_reason}"
    assert (event.vector, event.source) == (VEC_BP, "software"), event


def test_every_instruction_is_tested():
    missing = sorted(d.mnemonic for d in INSTRUCTIONS if d.mnemonic not in COVERED)
    assert not missing, f"instructions without a semantic test: {missing}"


# -- data movement and arithmetic ----------------------------------------------------------------

M = 0xFFFFFFFF

RRR_CASES = [
    ("add", 0xFFFFFFFF, 2, 1),
    ("add", 5, 7, 12),
    ("sub", 1, 2, 0xFFFFFFFF),
    ("and", 0xF0F0, 0xFF00, 0xF000),
    ("or", 0xF0F0, 0x0F00, 0xFFF0),
    ("xor", 0xFF00FF00, 0xFFFF0000, 0x00FFFF00),
    ("shl", 1, 31, 0x80000000),
    ("shl", 3, 33, 6),  # shift count mod 32
    ("shr", 0x80000000, 31, 1),
    ("shr", 0x80000000, 32, 0x80000000),
    ("sar", 0x80000000, 31, 0xFFFFFFFF),
    ("sar", 0x40000000, 30, 1),
    ("mul", 0x10000, 0x10000, 0),
    ("mul", 0xFFFFFFFF, 3, 0xFFFFFFFD),
    ("div", (-7) & M, 2, (-3) & M),
    ("div", 7, (-2) & M, (-3) & M),
    ("divu", (-7) & M, 2, 0x7FFFFFFC),
    ("rem", (-7) & M, 2, (-1) & M),
    ("rem", 7, (-2) & M, 1),
    ("remu", 7, 4, 3),
]
COVERED.update(m for m, *_ in RRR_CASES)


@CPLS
@pytest.mark.parametrize(("mnemonic", "a", "b", "expected"), RRR_CASES)
def test_three_register_operations(cpl, mnemonic, a, b, expected):
    flags = FLAG_CF | FLAG_ZF
    machine, event = execute(f"{mnemonic} r3, r1, r2\nbrk", cpl, {1: a, 2: b}, flags=flags)
    ended_at_brk(event, machine)
    cpu = machine.cpu
    assert cpu.regs[3] == expected
    assert cpu.regs[1:3] == [a, b]
    assert cpu.flags == flags  # arithmetic never writes the condition flags
    assert event.pc == 8


@CPLS
@pytest.mark.parametrize("mnemonic", ["div", "divu", "rem", "remu"])
def test_divide_by_zero_is_a_restartable_fault(cpl, mnemonic):
    machine, event = execute(f"nop\n{mnemonic} r3, r1, r2\nbrk", cpl, {1: 5, 2: 0, 3: 77})
    assert (event.cause, event.kind, event.pc, event.error) == ("divide-error", "fault", 4, 0)
    assert machine.cpu.regs[3] == 77 and machine.cpu.pc == 4


@CPLS
@pytest.mark.parametrize("mnemonic", ["div", "rem"])
def test_int_min_divided_by_minus_one_is_a_divide_error(cpl, mnemonic):
    machine, event = execute(f"{mnemonic} r3, r1, r2\nbrk", cpl, {1: 0x80000000, 2: M})
    assert event.cause == "divide-error"


IMMEDIATE_CASES = [
    ("addi", 10, -11, M),
    ("addi", M, 1, 0),
    ("andi", 0xFFFFFFFF, 0x8001, 0x8001),  # zero-extended
    ("ori", 0x10000, 0xFFFF, 0x1FFFF),
    ("xori", 0xFFFFFFFF, 0xFFFF, 0xFFFF0000),
    ("shli", 0x12345678, 4, 0x23456780),
    ("shri", 0x80000000, 4, 0x08000000),
    ("sari", 0x80000000, 4, 0xF8000000),
]
COVERED.update(m for m, *_ in IMMEDIATE_CASES)


@CPLS
@pytest.mark.parametrize(("mnemonic", "a", "imm", "expected"), IMMEDIATE_CASES)
def test_immediate_operations(cpl, mnemonic, a, imm, expected):
    machine, event = execute(f"{mnemonic} r2, r1, {imm}\nbrk", cpl, {1: a})
    ended_at_brk(event, machine)
    assert machine.cpu.regs[2] == expected


@semantic("nop", "mov", "li", "not", "neg")
@CPLS
def test_moves_and_unary(cpl):
    source = """
        nop
        mov  r2, r1
        li   r3, 0xDEADBEEF
        li   r4, -1
        not  r5, r1
        neg  r6, r1
        neg  r7, r0
        brk
    """
    machine, event = execute(source, cpl, {1: 5})
    ended_at_brk(event, machine)
    regs = machine.cpu.regs
    assert regs[2:8] == [5, 0xDEADBEEF, M, M ^ 5, (-5) & M, 0]
    assert event.pc == 5 * 4 + 2 * 8 + 4  # the saved pc follows brk; li is 8 bytes


# -- compare and branches ------------------------------------------------------------------------

@semantic("cmp", "cmpi", "tst")
@CPLS
def test_compare_sets_only_condition_flags(cpl):
    machine, event = execute("cmp r1, r2\nbrk", cpl, {1: 1, 2: 2}, flags=FLAG_IF)
    assert machine.cpu.flags == FLAG_IF | FLAG_CF | FLAG_SF
    machine, _ = execute("cmp r1, r2\nbrk", cpl, {1: 0x80000000, 2: 1})
    assert machine.cpu.flags == FLAG_OF
    machine, _ = execute("cmpi r1, -1\nbrk", cpl, {1: M}, flags=FLAG_CF | FLAG_SF | FLAG_OF)
    assert machine.cpu.flags == FLAG_ZF
    machine, _ = execute("tst r1, r2\nbrk", cpl, {1: 0x80000001, 2: 0x80000000},
                         flags=FLAG_CF | FLAG_OF | FLAG_ZF)
    assert machine.cpu.flags == FLAG_SF
    machine, _ = execute("tst r1, r2\nbrk", cpl, {1: 1, 2: 2})
    assert machine.cpu.flags == FLAG_ZF


BRANCHES = {
    # mnemonic: predicate over (signed x, signed y, unsigned x, unsigned y) after cmp x, y
    "jz": lambda sx, sy, ux, uy: ux == uy,
    "jnz": lambda sx, sy, ux, uy: ux != uy,
    "jl": lambda sx, sy, ux, uy: sx < sy,
    "jge": lambda sx, sy, ux, uy: sx >= sy,
    "jle": lambda sx, sy, ux, uy: sx <= sy,
    "jg": lambda sx, sy, ux, uy: sx > sy,
    "jb": lambda sx, sy, ux, uy: ux < uy,
    "jae": lambda sx, sy, ux, uy: ux >= uy,
    "jbe": lambda sx, sy, ux, uy: ux <= uy,
    "ja": lambda sx, sy, ux, uy: ux > uy,
}
COVERED.update(BRANCHES)
PAIRS = [(1, 2), (2, 1), (5, 5), (M, 1), (1, M), (0x80000000, 0x7FFFFFFF)]


def _signed(v):
    return v - (1 << 32) if v & 0x80000000 else v


@CPLS
@pytest.mark.parametrize("mnemonic", sorted(BRANCHES))
@pytest.mark.parametrize(("x", "y"), PAIRS)
def test_conditional_branches(cpl, mnemonic, x, y):
    source = f"""
        cmp  r1, r2
        {mnemonic} taken
        li   r3, 1
        brk
    taken:
        li   r3, 2
        brk
    """
    machine, event = execute(source, cpl, {1: x, 2: y})
    ended_at_brk(event, machine)
    expected = BRANCHES[mnemonic](_signed(x), _signed(y), x, y)
    assert machine.cpu.regs[3] == (2 if expected else 1)


@semantic("jmp", "call", "ret", "jmpr", "callr")
@CPLS
def test_jumps_and_calls(cpl):
    source = """
    start:
        jmp  over
        li   r9, 99
    over:
        call function
        li   r5, target
        callr r5
        li   r6, end
        jmpr r6
        li   r9, 98
    end:
        brk
    function:
        li   r1, 11
        ret
    target:
        li   r2, 22
        mov  r3, sp
        ld   r4, [sp]
        ret
    """
    machine, event = execute(source, cpl)
    ended_at_brk(event, machine)
    regs = machine.cpu.regs
    assert regs[1] == 11 and regs[2] == 22 and regs[9] == 0
    assert regs[3] == 0x10000 - 4
    labels = assemble(source).labels
    assert regs[4] == labels["over"] + 4 + 8 + 4  # callr's return address: after the callr
    assert regs[15] == 0x10000


# -- memory --------------------------------------------------------------------------------------

@semantic("ld", "ldb", "st", "stb", "xchg", "push", "pop")
@CPLS
def test_memory_instructions(cpl):
    source = """
        li   r1, data
        ld   r2, [r1]
        ldb  r3, [r1 + 3]
        st   [r1 + 8], r2
        stb  [r1 - 1], r3
        li   r4, 0x55
        xchg r4, [r1 + 4]
        push r2
        pop  r5
        push r3
        brk
        .align 16
        .word 0
    data:
        .word 0x81828384, 0x11223344, 0
    """
    machine, event = execute(source, cpl)
    ended_at_brk(event, machine)
    cpu, memory = machine.cpu, machine.memory
    data = assemble(source)["data"]
    regs = cpu.regs
    assert regs[2] == 0x81828384 and regs[3] == 0x81 and regs[4] == 0x11223344
    assert regs[5] == 0x81828384
    assert memory.read32(data + 8) == 0x81828384
    assert memory.read8(data - 1) == 0x81
    assert memory.read32(data + 4) == 0x55
    assert regs[15] == 0x10000 - 4 and memory.read32(0x10000 - 4) == 0x81


@semantic("xadd", "cas", "pause")
@CPLS
def test_atomic_read_modify_write(cpl):
    source = """
        li   r1, data
        li   r2, 5
        xadd r2, [r1]           ; fetch-and-add: r2 = old 40, word = 45
        li   r3, 45
        li   r4, 99
        cas  r3, r4, r1         ; 45 == 45: swap in 99; r3 = old 45
        li   r5, 7
        li   r6, 1
        cas  r5, r6, r1         ; 99 != 7: no swap; r5 = old 99
        li   r7, 0xFFFFFFFF
        xadd r7, [r1 + 4]       ; wraps: 0 + -1
        pause
        pause
        brk
        .align 16
    data:
        .word 40, 0
    """
    machine, event = execute(source, cpl)
    ended_at_brk(event, machine)
    regs, memory = machine.cpu.regs, machine.memory
    data = assemble(source)["data"]
    assert regs[2] == 40 and regs[3] == 45 and regs[5] == 99
    assert memory.read32(data) == 99 and memory.read32(data + 4) == 0xFFFFFFFF and regs[7] == 0
    assert machine.cpu.pauses == 2


def test_a_faulting_cas_or_xadd_leaves_no_trace():
    machine, event = execute("li r1, 2\nli r2, 3\nli r3, 4\ncas r2, r3, r1\nbrk", 0)
    assert event.cause == "alignment-check" and machine.cpu.regs[2] == 3
    machine, event = execute("li r1, 0x7FFFFFF0\nli r2, 3\nxadd r2, [r1]\nbrk", 0)
    assert event.cause == "general-protection" and machine.cpu.regs[2] == 3


# -- interrupts ----------------------------------------------------------------------------------

@semantic("int", "brk")
@CPLS
def test_software_interrupts_reach_delivery(cpl):
    machine, event = execute("nop\nint 0x80\nbrk", cpl)
    assert (event.vector, event.cause, event.kind, event.source) == (0x80, "int 0x80", "trap",
                                                                      "software")
    assert event.pc == 8 and event.cpl == cpl  # the saved pc is the next instruction
    machine, event = execute("brk", cpl)
    assert (event.vector, event.cause, event.pc) == (VEC_BP, "breakpoint", 4)


# -- privileged: #GP(0) at CPL 3, semantics at CPL 0 ---------------------------------------------

def _sample_operands(definition):
    values = []
    for op in definition.operands:
        values.append({
            Kind.REG: "r1", Kind.CREG: "ksp0", Kind.PORT: "0x10", Kind.IMM8: "0x80",
        }[op.kind])
    return ", ".join(values)


@pytest.mark.parametrize("definition", [d for d in INSTRUCTIONS if d.privileged],
                         ids=lambda d: d.mnemonic)
def test_privileged_instruction_at_cpl3_raises_gp_and_changes_nothing(definition):
    source = f"nop\n{definition.mnemonic} {_sample_operands(definition)}\nbrk"
    regs = {1: 0x1234, 15: 0x8000}
    machine, event = execute(source, 3, regs, flags=FLAG_IF | FLAG_ZF)
    assert (event.vector, event.error, event.pc, event.kind) == (VEC_GP, 0, 4, "fault")
    cpu = machine.cpu
    assert cpu.pc == 4 and cpu.cpl == 3 and cpu.flags == FLAG_IF | FLAG_ZF
    assert cpu.regs == [0, 0x1234] + [0] * 13 + [0x8000]
    assert (cpu.idtr, cpu.cr0, cpu.ksp, machine.console.output) == (0, 0, [0, 0, 0], b"")
    assert cpu.stop_reason == "trapped" and cpu.privileged_executed == 0


@semantic("cli", "sti")
def test_cli_sti_at_cpl0():
    machine, event = execute("sti\nmov r1, r1\ncli\nbrk", 0, flags=FLAG_ZF)
    ended_at_brk(event, machine)
    assert machine.cpu.flags == FLAG_ZF
    machine, event = execute("sti\nbrk", 0)
    assert machine.cpu.flags == FLAG_IF
    assert machine.cpu.privileged_executed == 1


@semantic("lidt", "sidt")
@CPLS
def test_lidt_and_sidt(cpl):
    machine, event = execute("lidt r1\nsidt r2\nbrk", 0, {1: 0x4000})
    assert machine.cpu.idtr == 0x4000 and machine.cpu.regs[2] == 0x4000
    # sidt is sensitive but unprivileged: at any CPL it reveals the real table base.
    machine = execute_with_idtr(cpl, 0x3000)
    assert machine.cpu.regs[2] == 0x3000
    assert machine.cpu.sensitive_executed == 1


def execute_with_idtr(cpl, idtr):
    from cpu_asm import boot

    machine = boot("sidt r2\nbrk", memory_size=1 << 16)
    cpu = machine.cpu
    cpu.idtr, cpu.cpl = idtr, cpl
    from cpu_asm import TrapRecorder

    cpu.monitor = TrapRecorder()
    machine.run(max_steps=10)
    return machine


@semantic("mtcr", "mfcr")
def test_control_registers_at_cpl0():
    source = """
        mtcr ksp0, r1
        mtcr ksp1, r2
        mtcr ksp2, r3
        mtcr cr2, r4
        mfcr r5, ksp0
        mfcr r6, ksp1
        mfcr r7, ksp2
        mfcr r8, cr2
        mfcr r9, cr0
        mfcr r10, cr3
        brk
    """
    machine, event = execute(source, 0, {1: 0x100, 2: 0x200, 3: 0x300, 4: 0x444})
    ended_at_brk(event, machine)
    assert machine.cpu.regs[5:11] == [0x100, 0x200, 0x300, 0x444, 0, 0]
    assert machine.cpu.ksp == [0x100, 0x200, 0x300]


@semantic("invlpg")
def test_invlpg_at_cpl0_without_paging_is_harmless():
    machine, event = execute("invlpg r1\nli r2, 1\nbrk", 0, {1: 0x1234})
    ended_at_brk(event, machine)
    assert machine.cpu.regs[2] == 1


@semantic("in", "out")
def test_port_io_at_cpl0():
    source = """
        in   r1, PORT_CONSOLE_STATUS
        in   r2, PORT_CONSOLE_DATA
        out  PORT_CONSOLE_DATA, r2
        in   r3, PORT_CONSOLE_DATA
        in   r4, PORT_CONSOLE_STATUS
        in   r5, 0x999
        out  0x999, r5
        brk
    """
    machine, event = execute(source, 0, console_input=b"x")
    ended_at_brk(event, machine)
    assert machine.cpu.regs[1:6] == [1, ord("x"), M, 0, M]
    assert machine.console.output == b"x"


@semantic("iret")
def test_iret_pops_the_frame_and_may_return_to_ring_3():
    source = """
        li   r1, 0x1111       ; old sp
        push r1
        li   r1, FLAG_IF | FLAG_ZF | 0x10000   ; bits outside FLAGS_MASK are dropped
        push r1
        li   r1, 3            ; cs
        push r1
        li   r1, user         ; pc
        push r1
        li   r1, 0xEE         ; error code (discarded)
        push r1
        iret
    user:
        rdcs r2
        brk
    """
    machine, event = execute(source, 0)
    ended_at_brk(event, machine)
    cpu = machine.cpu
    assert cpu.cpl == 3 and cpu.regs[2] == 3 and event.cpl == 3
    assert cpu.flags == FLAG_IF | FLAG_ZF
    assert cpu.regs[15] == 0x1111


@semantic("hlt")
def test_hlt_at_cpl0_with_interrupts_off_stops_the_machine():
    from cpu_asm import run

    machine, result = run("li r1, 7\nhlt\nli r1, 8", memory_size=1 << 16)
    assert result.halted and result.stop_reason == "halted"
    assert result.registers[1] == 7 and result.pc == 12
    assert result.guest_instructions == 2 and result.privileged_instructions == 1


# -- sensitive but unprivileged ------------------------------------------------------------------

@semantic("pushf")
@CPLS
def test_pushf_reveals_the_real_if(cpl):
    machine, event = execute("pushf\npop r1\nbrk", cpl, flags=FLAG_IF | FLAG_CF)
    ended_at_brk(event, machine)
    assert machine.cpu.regs[1] == FLAG_IF | FLAG_CF


@semantic("popf")
@CPLS
@pytest.mark.parametrize("initial_if", [0, FLAG_IF])
def test_popf_changes_if_only_in_ring_0(cpl, initial_if):
    wanted = (FLAG_IF ^ initial_if) | FLAG_SF | FLAG_OF | 0xFFFF0000
    machine, event = execute("push r1\npopf\nbrk", cpl, {1: wanted}, flags=initial_if)
    ended_at_brk(event, machine)
    flags = machine.cpu.flags
    assert flags & (FLAG_SF | FLAG_OF) == FLAG_SF | FLAG_OF
    assert flags & ~FLAGS_MASK == 0
    if cpl == 0:
        assert flags & FLAG_IF == wanted & FLAG_IF
    else:
        assert flags & FLAG_IF == initial_if  # silently ignored: no trap
    assert machine.cpu.sensitive_executed == 2 - 1  # popf (push is innocuous)


@semantic("smsw")
@CPLS
def test_smsw_reveals_cr0(cpl):
    machine, event = execute("smsw r1\nbrk", cpl)
    assert machine.cpu.regs[1] == 0
    from cpu_asm import TrapRecorder, boot

    machine = boot("smsw r1\nbrk", memory_size=1 << 16)
    identity_map(machine.memory, 0x8000, 1 << 16)
    cpu = machine.cpu
    cpu.write_cr(3, 0x8000)
    cpu.write_cr(0, CR0_PG)
    cpu.cpl = cpl
    cpu.monitor = TrapRecorder()
    machine.run(max_steps=10)
    assert cpu.regs[1] == CR0_PG


@semantic("rdpid")
@CPLS
def test_rdpid_reads_the_cpu_number_in_every_ring(cpl):
    machine, event = execute("li r1, 9\nrdpid r1\nbrk", cpl)
    ended_at_brk(event, machine)
    assert machine.cpu.regs[1] == 0 and machine.cpu.sensitive_executed == 1


@semantic("rdcs")
@pytest.mark.parametrize("cpl", [0, 1, 2, 3])
def test_rdcs_reveals_the_cpl(cpl):
    machine, event = execute("rdcs r1\nbrk", cpl)
    assert machine.cpu.regs[1] == cpl
