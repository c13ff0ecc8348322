"""Property tests: ALU and compare semantics against an independent Python reference."""

from __future__ import annotations

from fractions import Fraction
from math import trunc

from cpu_asm import TrapRecorder, assemble
from hypothesis import given
from hypothesis import strategies as st

from toyvisor.cpu import Machine
from toyvisor.isa.spec import FLAG_CF, FLAG_IF, FLAG_OF, FLAG_SF, FLAG_ZF, VEC_DE

M = 0xFFFFFFFF
INT_MIN = 0x80000000
EDGES = [0, 1, 2, 31, 32, 33, M, M - 1, INT_MIN, INT_MIN + 1, 0x7FFFFFFF, 0xFFFF, 0x10000]
words = st.one_of(st.integers(0, M), st.sampled_from(EDGES))
imm16 = st.one_of(st.integers(-0x8000, 0x7FFF), st.sampled_from([0, -1, 1, -0x8000, 0x7FFF]))


def signed(v: int) -> int:
    return v - (1 << 32) if v & INT_MIN else v


def _de(x, y):
    return y == 0 or (x == -(1 << 31) and y == -1)


REFERENCE = {
    "add": lambda a, b: (a + b) % (1 << 32),
    "sub": lambda a, b: (a - b) % (1 << 32),
    "and": lambda a, b: a & b,
    "or": lambda a, b: a | b,
    "xor": lambda a, b: a ^ b,
    "shl": lambda a, b: (a * 2 ** (b % 32)) % (1 << 32),
    "shr": lambda a, b: a // 2 ** (b % 32),
    "sar": lambda a, b: (signed(a) // 2 ** (b % 32)) % (1 << 32),
    "mul": lambda a, b: (a * b) % (1 << 32),
    "div": lambda a, b: None if _de(signed(a), signed(b))
    else trunc(Fraction(signed(a), signed(b))) % (1 << 32),
    "rem": lambda a, b: None if _de(signed(a), signed(b))
    else (signed(a) - signed(b) * trunc(Fraction(signed(a), signed(b)))) % (1 << 32),
    "divu": lambda a, b: None if b == 0 else a // b,
    "remu": lambda a, b: None if b == 0 else a % b,
}

# One machine holds every instruction under test at its own address; each example sets the
# registers and executes exactly one instruction with `step`.
_LINES = [f"op_{m}: {m} r3, r1, r2\n brk" for m in REFERENCE]
_LINES += ["op_cmp: cmp r1, r2\n brk", "op_cmpi: cmpi r1, IMM\n brk", "op_tst: tst r1, r2\n brk"]
_SOURCE = "\n".join(_LINES)


class _Bench:
    def __init__(self):
        self.machine = Machine(memory_size=1 << 16)
        self.labels = assemble(_SOURCE, {"IMM": 0}).labels
        self.machine.load(assemble(_SOURCE, {"IMM": 0}))
        self.recorder = TrapRecorder()
        self.machine.cpu.monitor = self.recorder

    def execute(self, label: str, a: int, b: int = 0, flags: int = 0):
        cpu = self.machine.cpu
        cpu.regs[1], cpu.regs[2], cpu.regs[3] = a, b, 0xDEAD
        cpu.flags = flags
        cpu.pc = self.labels[label]
        cpu.stop_reason = None
        self.recorder.events.clear()
        cpu.step()
        return cpu, self.recorder.first


BENCH = _Bench()


@given(st.sampled_from(sorted(REFERENCE)), words, words)
def test_three_register_operations_match_the_reference(mnemonic, a, b):
    cpu, event = BENCH.execute(f"op_{mnemonic}", a, b, flags=FLAG_ZF)
    expected = REFERENCE[mnemonic](a, b)
    if expected is None:
        assert event is not None and (event.vector, event.pc) == (VEC_DE, cpu.pc)
        assert cpu.regs[3] == 0xDEAD
    else:
        assert event is None
        assert cpu.regs[3] == expected
        assert cpu.pc == BENCH.labels[f"op_{mnemonic}"] + 4
    assert cpu.flags == FLAG_ZF


def reference_flags(x: int, y: int) -> int:
    r = (x - y) % (1 << 32)
    flags = 0
    if r == 0:
        flags |= FLAG_ZF
    if r & INT_MIN:
        flags |= FLAG_SF
    if x < y:
        flags |= FLAG_CF
    if not -(1 << 31) <= signed(x) - signed(y) < (1 << 31):
        flags |= FLAG_OF
    return flags


@given(words, words, st.booleans())
def test_cmp_flags_match_the_reference(x, y, interrupts):
    keep = FLAG_IF if interrupts else 0
    cpu, _ = BENCH.execute("op_cmp", x, y, flags=keep | FLAG_CF | FLAG_OF | FLAG_ZF | FLAG_SF)
    assert cpu.flags == keep | reference_flags(x, y)


@given(words, imm16)
def test_cmpi_compares_with_the_sign_extended_immediate(x, imm):
    machine = Machine(memory_size=1 << 12)
    machine.load(assemble("cmpi r1, IMM\n hlt", {"IMM": imm}))
    machine.cpu.regs[1] = x
    machine.run(max_steps=5)
    assert machine.cpu.flags == reference_flags(x, imm % (1 << 32))


@given(words, words)
def test_tst_sets_zf_and_sf_from_the_and(x, y):
    cpu, _ = BENCH.execute("op_tst", x, y, flags=FLAG_CF | FLAG_OF)
    r = x & y
    assert cpu.flags == (FLAG_ZF if r == 0 else 0) | (FLAG_SF if r & INT_MIN else 0)


BRANCH_SOURCE = """
    cmp r1, r2
    {j} yes
    hlt
yes: li r3, 1
    hlt
"""
PREDICATES = {
    "jz": lambda x, y: x == y, "jnz": lambda x, y: x != y,
    "jl": lambda x, y: signed(x) < signed(y), "jge": lambda x, y: signed(x) >= signed(y),
    "jle": lambda x, y: signed(x) <= signed(y), "jg": lambda x, y: signed(x) > signed(y),
    "jb": lambda x, y: x < y, "jae": lambda x, y: x >= y,
    "jbe": lambda x, y: x <= y, "ja": lambda x, y: x > y,
}
_BRANCH_MACHINES = {}


@given(st.sampled_from(sorted(PREDICATES)), words, words)
def test_conditional_branches_follow_the_comparison(j, x, y):
    if j not in _BRANCH_MACHINES:
        _BRANCH_MACHINES[j] = assemble(BRANCH_SOURCE.format(j=j))
    machine = Machine(memory_size=1 << 12)
    machine.load(_BRANCH_MACHINES[j])
    machine.cpu.regs[1], machine.cpu.regs[2] = x, y
    result = machine.run(max_steps=10)
    assert result.registers[3] == (1 if PREDICATES[j](x, y) else 0)


def test_int_min_by_minus_one_is_a_divide_error():
    for mnemonic in ("div", "rem"):
        cpu, event = BENCH.execute(f"op_{mnemonic}", INT_MIN, M)
        assert event.vector == VEC_DE and event.kind == "fault"
    for mnemonic, expected in (("divu", 0), ("remu", INT_MIN)):
        cpu, event = BENCH.execute(f"op_{mnemonic}", INT_MIN, M)
        assert event is None and cpu.regs[3] == expected
