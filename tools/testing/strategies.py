"""Hypothesis strategies for guest programs, hypercall sequences and assembly text.

Everything is derived from the instruction table (`toyvisor.isa.table`): operand kinds give the
operand values, privilege classes the mixes.  The main entry point is `programs`::

    from hypothesis import given
    from toyvisor.testing import strategies as tst

    @given(tst.programs(privileged=True, targets=tst.DEFAULT_TARGETS))
    def test_my_kernel(program):
        print(program)            # readable assembly, also for shrunk counterexamples

A program is a list of *snippets*, so shrinking deletes whole snippets and stays valid:

- one instruction of the chosen classes (`pools`: innocuous arithmetic, memory, traps, and on
  request privileged, sensitive-unprivileged and wild control transfers);
- a forward branch (``jz``, ``jmp``, ``call`` …) over the next few snippets: programs without
  `loop` always terminate;
- with `targets`: ``li r13, <address>`` and a load, store or exchange there (kernel memory, page
  tables, the VMM region, other VMs' memory), or ``in``/``out`` on a device port;
- with `self_modifying`: ``call``/``pop`` to find its own address, then a store of an encoded
  instruction over a later instruction of the program.

Registers: generated instructions write r0–r11 (override with `registers`); r12 counts the
optional loop, r13 and r14 are the snippets' scratch registers and sp (r15) is left alone unless
you pass registers that include it.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
from hypothesis import strategies as st

from toyvisor.isa.encoding import decode, encode, format_instruction
from toyvisor.isa.spec import CONTROL_REGISTERS, PLATFORM_SYMBOLS, Privilege
from toyvisor.isa.table import BY_MNEMONIC, Instruction, Kind, instruction_set

from .program import Instr, Program

#: Registers generated instructions write by default (r12–r15 are reserved, see above).
GENERAL_REGISTERS = tuple(range(12))
LOOP_REGISTER, ADDRESS_REGISTER, SCRATCH_REGISTER = 12, 13, 14
CONDITIONAL_BRANCHES = ("jz", "jnz", "jl", "jge", "jle", "jg", "jb", "jae", "jbe", "ja")
FORWARD_BRANCHES = (*CONDITIONAL_BRANCHES, "jmp", "call")
MEMORY = ("ld", "ldb", "st", "stb", "xchg", "push", "pop")
TRAPS = ("int", "brk", "div", "divu", "rem", "remu")
WILD_CONTROL = ("ret", "jmpr", "callr")
_U32 = st.integers(0, 0xFFFFFFFF)


# -- operands ------------------------------------------------------------------------------------

def operand_values(definition: Instruction, pc: int = 0, *, registers=None, bases=None,
                   displacements=None, vectors=None, ports=None, control_registers=None,
                   immediates=None) -> st.SearchStrategy[tuple]:
    """Valid operand values of `definition` at address `pc`, as `encode` takes them.

    Each keyword narrows one operand kind (a strategy); the default is the kind's full range:
    `registers` (``reg``), `bases` and `displacements` (``mem``), `vectors` (``imm8``), `ports`,
    `control_registers` (``creg``) and `immediates` (``imm32``).  Branch targets (``rel16``) are
    any word-aligned address in reach of `pc`.
    """
    def given_or(strategy, default):
        return default if strategy is None else strategy

    full = {
        Kind.REG: given_or(registers, st.integers(0, 15)),
        Kind.CREG: given_or(control_registers,
                            st.sampled_from(sorted(CONTROL_REGISTERS.values()))),
        Kind.SIMM16: st.integers(-0x8000, 0x7FFF),
        Kind.UIMM16: st.integers(0, 0xFFFF),
        Kind.SHAMT: st.integers(0, 31),
        Kind.IMM8: given_or(vectors, st.integers(0, 255)),
        Kind.PORT: given_or(ports, st.integers(0, 0xFFFF)),
        Kind.IMM32: given_or(immediates, _U32),
    }
    parts = []
    for op in definition.operands:
        if op.kind is Kind.MEM:
            parts.append(st.tuples(given_or(bases, st.integers(0, 15)),
                                   given_or(displacements, st.integers(-0x8000, 0x7FFF))))
        elif op.kind is Kind.REL16:
            npc = pc + definition.length
            parts.append(st.integers(-0x8000, 0x7FFF).map(lambda w, n=npc: n + 4 * w))
        else:
            parts.append(full[op.kind])
    return st.tuples(*parts)


def instructions(extension: str | None = None,
                 classes: Sequence[Privilege] = tuple(Privilege)) -> st.SearchStrategy:
    """``(definition, pc, values)`` over the whole ISA (with `extension`, e.g. ``"vt"``): any
    instruction of the privilege `classes`, at any word-aligned pc, with any valid operands."""
    chosen = [d for d in instruction_set(extension) if d.privilege in classes]

    @st.composite
    def one(draw):
        definition = draw(st.sampled_from(chosen))
        pc = draw(st.integers(0x20000, 0x7FFFF000 // 4)) * 4
        return definition, pc, draw(operand_values(definition, pc))

    return one()


# -- what programs are made of -------------------------------------------------------------------

def pools(*, privileged: bool = False, sensitive: bool = False, wild: bool = False,
          extension: str | None = None) -> dict[str, tuple[Instruction, ...]]:
    """The instruction pools a program draws single instructions from, by name.

    ``alu`` (innocuous, not memory, not control), ``memory``, ``traps`` (software interrupts and
    dividing instructions), and on request ``privileged``, ``sensitive`` (sensitive but
    unprivileged: Robin & Irvine's instructions), ``wild`` (``ret``/``jmpr``/``callr`` to
    whatever a register holds).  Branches and ``li`` come from the snippets around them; the
    union with `FORWARD_BRANCHES` and ``li`` is the whole instruction set.
    """
    isa = instruction_set(extension)
    special = {*MEMORY, *TRAPS, *WILD_CONTROL, *FORWARD_BRANCHES}
    result = {
        "alu": tuple(d for d in isa if d.privilege is Privilege.INNOCUOUS
                     and d.mnemonic not in special and not d.sets_pc),
        "memory": tuple(BY_MNEMONIC[m] for m in MEMORY),
        "traps": tuple(BY_MNEMONIC[m] for m in TRAPS),
    }
    if privileged:
        result["privileged"] = tuple(d for d in isa if d.privilege is Privilege.PRIVILEGED)
    if sensitive:
        result["sensitive"] = tuple(d for d in isa if d.privilege is Privilege.SENSITIVE)
    if wild:
        result["wild"] = tuple(BY_MNEMONIC[m] for m in WILD_CONTROL)
    return result


@attrs.frozen
class Targets:
    """Where adversarial memory and port accesses aim: physical or linear addresses, by what
    they are to the system under test (the harness fills them from the guest and the VMM)."""

    kernel: tuple[int, ...] = (0x0, 0x1000)
    page_tables: tuple[int, ...] = ()
    vmm: tuple[int, ...] = ()
    other_vms: tuple[int, ...] = ()
    user: tuple[int, ...] = ()
    ports: tuple[int, ...] = tuple(sorted(v for k, v in PLATFORM_SYMBOLS.items()
                                          if k.startswith("PORT_")))

    def addresses(self) -> list[tuple[str, int]]:
        """``(what, address)`` for every memory target, in a stable order."""
        return [(what, address) for what in ("kernel", "page_tables", "vmm", "other_vms", "user")
                for address in getattr(self, what)]


#: Targets that make sense for most kernels: page 0 and 1 (kernel code), the first MiB, the
#: VMM's region as toyvisor lays it out, and every platform port.
DEFAULT_TARGETS = Targets(kernel=(0x0, 0x1000, 0x100000), vmm=(0x0,),
                          other_vms=(0x500000,))


@attrs.frozen
class _Forward:
    """A branch placeholder: skip the next `count` snippets (resolved when the program is)."""

    mnemonic: str
    count: int


@attrs.frozen
class _Patch:
    """Self-modifying placeholder: overwrite the first instruction `count` snippets ahead."""

    word: int
    text: str
    count: int


def _registers(registers):
    return st.sampled_from(tuple(registers))


def _single(pool_names, chosen, registers, vectors=None):
    regs = _registers(registers)
    # the kernel's own vectors half the time, any vector otherwise
    vector_values = (None if not vectors else
                     st.one_of(st.sampled_from(tuple(sorted(vectors))), st.integers(0, 255)))

    @st.composite
    def one(draw):
        pool = draw(st.sampled_from(pool_names))
        definition = draw(st.sampled_from(chosen[pool]))
        values = draw(operand_values(definition, registers=regs, vectors=vector_values))
        return (Instr(definition.mnemonic, values),)

    return one()


def _branch(count_limit):
    return st.builds(_Forward, st.sampled_from(FORWARD_BRANCHES), st.integers(0, count_limit))


def _access(targets: Targets, registers):
    """``li r13, address`` and one memory operation on it (or a port access)."""
    addresses = targets.addresses()
    regs = _registers(registers)
    choices = []
    if addresses:
        choices.append(st.builds(
            lambda where, op, disp, reg: (
                Instr("li", (ADDRESS_REGISTER, where[1]), where[0].replace("_", " ")),
                Instr(op, ((ADDRESS_REGISTER, disp), reg) if op in ("st", "stb")
                      else (reg, (ADDRESS_REGISTER, disp)))),
            st.sampled_from(addresses), st.sampled_from(["ld", "ldb", "st", "stb", "xchg"]),
            st.integers(-4, 4).map(lambda d: 4 * d), regs))
    if targets.ports:
        choices.append(st.builds(
            lambda port, out, reg: (Instr("out", (port, reg), "device port") if out
                                    else Instr("in", (reg, port), "device port"),),
            st.sampled_from(targets.ports), st.booleans(), regs))
    return st.one_of(choices)


def _syscall(vectors, registers):
    """``int n`` on one of the kernel's own vectors, after setting r1 (the usual call number
    register) to a small number."""
    regs = _registers(registers)
    return st.builds(lambda vector, number, reg: (Instr("li", (reg, number)),
                                                   Instr("int", (vector,), "system call")),
                     st.sampled_from(tuple(sorted(vectors))), st.integers(0, 8), regs)


def _patch(count_limit):
    """An encoded one-word innocuous instruction to write over a later one."""
    alu = tuple(d for d in pools()["alu"] if d.length == 4)

    @st.composite
    def one(draw):
        definition = draw(st.sampled_from(alu))
        values = draw(operand_values(definition, registers=st.integers(0, 11)))
        data = encode(definition, values)
        word = int.from_bytes(data[:4], "little")
        return _Patch(word, format_instruction(decode(data)), draw(st.integers(1, count_limit)))

    return one()


def _resolve(snippets, *, loop: int, timer_period: int) -> Program:
    """Turn snippets with placeholders into a `Program` with concrete indices."""
    # instruction index of each snippet's first instruction (placeholders have known sizes)
    sizes = [1 if isinstance(s, _Forward) else 4 if isinstance(s, _Patch) else len(s)
             for s in snippets]
    first = [0]
    for size in sizes:
        first.append(first[-1] + size)
    base = 1 if loop else 0  # the loop counter's `li` comes first
    out: list[Instr] = [Instr("li", (LOOP_REGISTER, loop), "loop counter")] if loop else []
    for index, snippet in enumerate(snippets):
        # a branch skips `count` snippets; a patch aims at the snippet `count` ahead
        ahead = min(index + 1 + snippet.count if isinstance(snippet, _Forward)
                    else index + snippet.count if isinstance(snippet, _Patch) else index + 1,
                    len(snippets))
        if isinstance(snippet, _Forward):
            out.append(Instr(snippet.mnemonic, (base + first[ahead],)))
        elif isinstance(snippet, _Patch):
            here = len(out)
            if ahead < len(snippets):  # from the popped address (the `pop`) to the target
                disp = 16 + sum(i.definition.length for s in snippets[index + 1:ahead]
                                for i in _flat_sizes(s))
            else:  # nothing after us: re-patch our own `call` (matters inside a loop)
                disp = -4
            out += [Instr("call", (here + 1,), "self-modifying: find my address"),
                    Instr("pop", (SCRATCH_REGISTER,)),
                    Instr("li", (ADDRESS_REGISTER, snippet.word), snippet.text),
                    Instr("st", ((SCRATCH_REGISTER, disp), ADDRESS_REGISTER),
                          "patch a later instruction" if disp > 0 else "patch my own call")]
        else:
            out += snippet
    if loop:
        body = 1
        out += [Instr("addi", (LOOP_REGISTER, LOOP_REGISTER, -1)),
                Instr("cmpi", (LOOP_REGISTER, 0)), Instr("jnz", (body,))]
    return Program(tuple(out), timer_period)


def _flat_sizes(snippet) -> tuple[Instr, ...]:
    """Stand-in instructions with the sizes a snippet will have once resolved."""
    if isinstance(snippet, _Forward):
        return (Instr("jmp", (0,)),)
    if isinstance(snippet, _Patch):
        return (Instr("call", (0,)), Instr("pop", (0,)), Instr("li", (0, 0)),
                Instr("st", ((0, 0), 0)))
    return tuple(snippet)


def programs(*, privileged: bool = False, sensitive: bool = False, wild: bool = False,
             targets: Targets | None = None, self_modifying: bool = False,
             interrupts: bool = False, loop: bool = False, branches: bool = True,
             extension: str | None = None, registers: Sequence[int] = GENERAL_REGISTERS,
             min_size: int = 1, max_size: int = 16, access_weight: int = 1,
             vectors: Sequence[int] = ()) -> st.SearchStrategy[Program]:
    """Guest programs (`Program` values) of `min_size`..`max_size` snippets.

    The default mix is innocuous only (arithmetic, memory through random registers, software
    interrupts, dividing by zero, forward branches).  `privileged`, `sensitive` (sensitive but
    unprivileged) and `wild` (register-indirect control transfers) add those classes; `targets`
    adds accesses aimed at the given addresses and ports; `self_modifying` adds stores over the
    program's own later instructions; `interrupts` draws a timer period of 4–64 instructions (for
    bare-metal runs; 0 otherwise); `loop` runs the body 1–4 times (counted in r12); `extension`
    (``"vt"``) includes that ISA extension's instructions in the privileged/sensitive pools;
    `access_weight` makes targeted accesses that many times as likely as other snippets;
    `vectors` (e.g. a kernel's system-call vectors) are what ``int n`` raises half the time, and
    adds system-call snippets (``li`` of a small number into a register, ``int n``).
    """
    chosen = pools(privileged=privileged, sensitive=sensitive, wild=wild, extension=extension)
    names = list(chosen)
    # weight the innocuous arithmetic so programs compute something between the risky parts
    weighted = ["alu", "alu", *names]
    kinds = [_single(weighted, chosen, registers, vectors)]
    if branches:
        kinds.append(_branch(3))
    if targets is not None:
        kinds += [_access(targets, registers)] * access_weight
    if self_modifying:
        kinds.append(_patch(3))
    if vectors:
        kinds.append(_syscall(vectors, registers))
    snippets = st.lists(st.one_of(kinds), min_size=min_size, max_size=max_size)
    periods = st.integers(4, 64) if interrupts else st.just(0)
    loops = st.integers(1, 4) if loop else st.just(0)

    @st.composite
    def program(draw):  # composite, so failures print the program (its `_repr_pretty_`)
        return _resolve(draw(snippets), loop=draw(loops), timer_period=draw(periods))

    return program()


# -- hypercalls ----------------------------------------------------------------------------------

@attrs.frozen
class HypercallCall:
    """One hypercall: its number and raw register arguments r2–r6 (paravirtual ABI)."""

    number: int
    args: tuple[int, ...]

    @property
    def name(self) -> str:
        from toyvisor.vmm.paravirt.hypercalls import HYPERCALLS

        return next((h.name for h in HYPERCALLS if h.number == self.number), "unknown")

    def __str__(self) -> str:
        from toyvisor.vmm.paravirt.abi import HYPERCALL_VECTOR

        regs = [f"        li r1, {self.number}{'':<10}; {self.name}"]
        regs += [f"        li r{i}, {value:#x}" for i, value in enumerate(self.args, 2)]
        return "\n".join([*regs, f"        int {HYPERCALL_VECTOR:#x}"])


def hypercall_numbers() -> st.SearchStrategy[int]:
    """Every hypercall of the table (vmm/paravirt/hypercalls), and numbers beyond it."""
    from toyvisor.vmm.paravirt.hypercalls import HYPERCALLS

    return st.one_of(st.sampled_from([h.number for h in HYPERCALLS]), st.integers(0, 40))


def hypercall_arguments(frames: Sequence[int] = (), pages: int = 16) -> st.SearchStrategy[int]:
    """Raw argument words that hit the interesting cases: small numbers (commands, domain ids,
    ports, grant references), any word, ``DOMID_SELF`` and the VMM hole, the virtual addresses of
    the first `pages` pages, and machine frame numbers and page-table entry addresses of
    `frames` (host addresses of frames, whoever owns them)."""
    from toyvisor.vmm.paravirt.abi import DOMID_SELF, PV_VMM_START

    choices = [st.integers(0, 8), _U32, st.integers(1, 63),
               st.sampled_from([DOMID_SELF, PV_VMM_START]),
               st.integers(0, pages - 1).map(lambda pfn: pfn * 4096)]
    if frames:
        ordered = sorted(frames)
        choices.append(st.sampled_from(ordered).map(lambda f: f >> 12))
        choices.append(st.sampled_from(ordered).flatmap(
            lambda f: st.integers(0, 1023).map(lambda i: f + 4 * i)))
    return st.one_of(choices)


def hypercalls(frames: Sequence[int] = (), pages: int = 16, *,
               extra_args=None) -> st.SearchStrategy[HypercallCall]:
    """One hypercall with arbitrary arguments (`extra_args`: another strategy mixed into them)."""
    arg = hypercall_arguments(frames, pages)
    if extra_args is not None:
        arg = st.one_of(arg, extra_args)
    return st.builds(HypercallCall, hypercall_numbers(), st.tuples(*[arg] * 5))


def hypercall_sequences(frames: Sequence[int] = (), pages: int = 16, *,
                        max_size: int = 25) -> st.SearchStrategy[list[HypercallCall]]:
    """Lists of `hypercalls`."""
    return st.lists(hypercalls(frames, pages), min_size=1, max_size=max_size)


# -- assembly text -------------------------------------------------------------------------------

#: Tokens of the assembly language and near misses, for source-level fuzzing.
SOURCE_FRAGMENTS = (
    *BY_MNEMONIC, ".org", ".text", ".data", ".word", ".byte", ".ascii", ".asciz", ".space",
    ".align", ".equ", ".entry", ".include", ".macro", ".endm", ".bogus", "r1", "r15", "sp", "cr3",
    "ksp0", "x", "y", ".l", "f.l", "start", "m", "0", "1", "-1", "4", "0x7fff", "0xFFFFFFFF",
    "0x100000000", "'a'", "'\\n'", "'", '"s"', '"\\q"', '"', "[", "]", "(", ")", "+", "-", "*", "/",
    "%", "<<", ">>", "&", "|", "^", "~", ",", ":", "=", ".", ";", " ", " ", "\t", "\n", "\n", "\0",
    "é", "\x7f", "\\",
)


def token_soup(max_size: int = 60) -> st.SearchStrategy[str]:
    """Source text made of assembler tokens in random order (mostly invalid programs)."""
    return st.lists(st.sampled_from(SOURCE_FRAGMENTS), max_size=max_size).map(" ".join)


__all__ = [
    "ADDRESS_REGISTER", "CONDITIONAL_BRANCHES", "DEFAULT_TARGETS", "FORWARD_BRANCHES",
    "GENERAL_REGISTERS", "HypercallCall", "LOOP_REGISTER", "SCRATCH_REGISTER", "SOURCE_FRAGMENTS",
    "Targets", "hypercall_arguments", "hypercall_numbers", "hypercall_sequences", "hypercalls",
    "instructions", "operand_values", "pools", "programs", "token_soup",
]
