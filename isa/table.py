"""The instruction table: the one definition of every toyvisor instruction.

Each `Instruction` carries its mnemonic, opcode, operands (with the encoding field each occupies),
privilege class and semantics.  The assembler, disassembler, decoder, interpreter, translator,
reference docs and the Popek–Goldberg check are all derived from `INSTRUCTIONS`: adding an
instruction means adding one `_def(...)` call below.

Encoding.  Every instruction is one 32-bit little-endian word, optionally followed by a second word
holding a 32-bit immediate::

    31      24 23  20 19  16 15                0
    [ opcode ][  a   ][  b   ][        c        ]

Fields an instruction does not use must be zero (anything else decodes as #UD), so every
instruction has exactly one encoding.

Semantics.  Each instruction's semantics is a short Python statement block over this vocabulary:
``R`` (the 16 registers), ``cpu`` (the executing CPU: ``load32/load8/store32/store8``,
``port_in/port_out``, ``read_cr/write_cr``, ``invlpg``, ``software_interrupt``, ``iret``, ``halt``,
the attributes ``flags``, ``cpl``, ``idtr``), the operand names, ``pc`` and ``npc`` (this and the
next instruction's address), ``GuestFault``, ``s32`` and the constants of `toyvisor.isa.spec`.  A block
must do every access that can fault before it changes any register, so a faulting instruction
leaves no trace (faults are restartable).  Unless the instruction `sets_pc`, the generated handler
then moves ``cpu.pc`` to ``npc``; a privileged instruction's handler first raises #GP at CPL > 0.

Extensions.  An instruction with ``extension="vt"`` belongs to the hardware-virtualization
extension (docs/hardware-virtualization.md).  `INSTRUCTIONS` is the base ISA (what the seeds'
Popek–Goldberg analysis is about), `EXTENSIONS` maps each extension to its instructions and
`ALL_INSTRUCTIONS` is everything the machine decodes (`BY_OPCODE` and `BY_MNEMONIC` cover it).
Every sensitive instruction also declares how it behaves in the extension's non-root mode
(``nonroot``: "exit" or "guest-state", and for a configurable exit the deciding ``exit_control``);
the extended Popek–Goldberg analysis is derived from those declarations.
"""

from __future__ import annotations

import enum
import textwrap
from types import MappingProxyType

import attrs

from .spec import Privilege


class Kind(enum.Enum):
    """Operand kinds: what the assembler accepts and how the value is encoded."""

    REG = "reg"  # a general register, 4 bits
    CREG = "creg"  # a control register number, 4 bits (only the defined ones)
    SIMM16 = "simm16"  # signed 16-bit immediate in field c
    UIMM16 = "uimm16"  # unsigned 16-bit immediate in field c
    SHAMT = "shamt"  # shift amount 0..31 in field c
    IMM8 = "imm8"  # 0..255 in field c (interrupt vector)
    PORT = "port"  # I/O port 0..65535 in field c
    MEM = "mem"  # [base + disp]: base register in field b, signed 16-bit disp in field c
    REL16 = "rel16"  # branch target: signed word offset from npc in field c
    IMM32 = "imm32"  # 32-bit immediate in the extension word


@attrs.frozen
class Operand:
    """One operand of an instruction: its semantic name, kind and encoding field."""

    name: str
    kind: Kind
    field: str  # "a", "b", "c", "bc" (memory) or "ext"


@attrs.frozen
class Instruction:
    """The single definition of one instruction."""

    mnemonic: str
    opcode: int
    operands: tuple[Operand, ...]
    privilege: Privilege
    semantics: str
    summary: str
    aliases: tuple[str, ...] = ()
    sets_pc: bool = False
    #: Robin & Irvine's group for sensitive instructions ("sensitive-register", "protection-system").
    group: str | None = None
    #: Condition flags the instruction writes (for the docs and translators).
    writes_flags: bool = False
    #: The ISA extension the instruction belongs to ("vt"), or None for the base ISA.
    extension: str | None = None
    #: How a sensitive instruction behaves in the non-root mode of the "vt" extension
    #: (docs/hardware-virtualization.md): "exit" (a VM exit, when `exit_control` selects it or
    #: always when that is None) or "guest-state" (it acts, in hardware, on the guest's own copy of
    #: the state).  None for innocuous instructions.
    nonroot: str | None = None
    #: The control that decides whether the instruction exits in non-root mode: "hlt", "io",
    #: "invlpg", "lidt" (bits of the exit-controls word), "cr-read"/"cr-write" (the per-register
    #: control-register exit bitmap); None for an unconditional exit.
    exit_control: str | None = None

    @property
    def length(self) -> int:
        """Size in bytes: 4, or 8 with a 32-bit immediate word."""
        return 8 if any(op.kind is Kind.IMM32 for op in self.operands) else 4

    @property
    def syntax(self) -> str:
        return " ".join([self.mnemonic, ", ".join(_operand_syntax(op) for op in self.operands)]).strip()

    @property
    def sensitive(self) -> bool:
        """Popek–Goldberg: control- or behaviour-sensitive (reads or writes privileged state)."""
        return self.privilege is not Privilege.INNOCUOUS

    @property
    def privileged(self) -> bool:
        """Traps when executed outside ring 0."""
        return self.privilege is Privilege.PRIVILEGED


def _operand_syntax(op: Operand) -> str:
    return {
        Kind.REG: op.name,
        Kind.CREG: "creg",
        Kind.SIMM16: "imm16",
        Kind.UIMM16: "uimm16",
        Kind.SHAMT: "shamt",
        Kind.IMM8: "imm8",
        Kind.PORT: "port",
        Kind.MEM: "[base+disp]",
        Kind.REL16: "target",
        Kind.IMM32: "imm32",
    }[op.kind]


_KIND_FIELD = {
    "reg": Kind.REG,
    "creg": Kind.CREG,
    "simm16": Kind.SIMM16,
    "uimm16": Kind.UIMM16,
    "shamt": Kind.SHAMT,
    "imm8": Kind.IMM8,
    "port": Kind.PORT,
    "mem": Kind.MEM,
    "rel16": Kind.REL16,
    "imm32": Kind.IMM32,
}


def _operands(spec: str) -> tuple[Operand, ...]:
    """Parse "rd:reg@a, rs:reg@b" into operands (mem operands use fields b and c)."""
    result = []
    for item in filter(None, (s.strip() for s in spec.split(","))):
        name, rest = item.split(":")
        kind_name, field = rest.split("@")
        result.append(Operand(name, _KIND_FIELD[kind_name], field))
    return tuple(result)


_TABLE: list[Instruction] = []

I, P, S = Privilege.INNOCUOUS, Privilege.PRIVILEGED, Privilege.SENSITIVE
#: Values of `Instruction.nonroot`.
EXIT, GUEST_STATE = "exit", "guest-state"


def _def(mnemonic, opcode, operands, privilege, semantics, summary, **kw) -> None:
    _TABLE.append(
        Instruction(
            mnemonic=mnemonic,
            opcode=opcode,
            operands=_operands(operands),
            privilege=privilege,
            semantics=textwrap.dedent(semantics).strip(),
            summary=summary,
            **kw,
        )
    )


RRR = "rd:reg@a, rs:reg@b, rt:reg@c"
RRI = "rd:reg@a, rs:reg@b, imm:simm16@c"
RRU = "rd:reg@a, rs:reg@b, imm:uimm16@c"
RRS = "rd:reg@a, rs:reg@b, imm:shamt@c"

# --- data movement and arithmetic (innocuous) ---------------------------------------------------
_def("nop", 0x01, "", I, "pass", "Do nothing.")
_def("mov", 0x02, "rd:reg@a, rs:reg@b", I, "R[rd] = R[rs]", "Copy a register.")
_def("li", 0x03, "rd:reg@a, imm:imm32@ext", I, "R[rd] = imm", "Load a 32-bit immediate.",
     aliases=("la",))
_def("add", 0x04, RRR, I, "R[rd] = (R[rs] + R[rt]) & M32", "Add.")
_def("sub", 0x05, RRR, I, "R[rd] = (R[rs] - R[rt]) & M32", "Subtract.")
_def("and", 0x06, RRR, I, "R[rd] = R[rs] & R[rt]", "Bitwise and.")
_def("or", 0x07, RRR, I, "R[rd] = R[rs] | R[rt]", "Bitwise or.")
_def("xor", 0x08, RRR, I, "R[rd] = R[rs] ^ R[rt]", "Bitwise exclusive or.")
_def("shl", 0x09, RRR, I, "R[rd] = (R[rs] << (R[rt] & 31)) & M32", "Shift left by rt mod 32.")
_def("shr", 0x0A, RRR, I, "R[rd] = R[rs] >> (R[rt] & 31)", "Logical shift right by rt mod 32.")
_def("sar", 0x0B, RRR, I, "R[rd] = (s32(R[rs]) >> (R[rt] & 31)) & M32",
     "Arithmetic shift right by rt mod 32.")
_def("mul", 0x0C, RRR, I, "R[rd] = (R[rs] * R[rt]) & M32", "Multiply (low 32 bits).")
_def("div", 0x0D, RRR, I, """
    x = s32(R[rs]); y = s32(R[rt])
    if y == 0 or (x == -0x80000000 and y == -1):
        raise GuestFault(VEC_DE)
    q = abs(x) // abs(y)
    R[rd] = (-q if (x < 0) != (y < 0) else q) & M32
    """, "Signed divide, quotient truncated toward zero; #DE on zero or overflow.")
_def("divu", 0x0E, RRR, I, """
    y = R[rt]
    if y == 0:
        raise GuestFault(VEC_DE)
    R[rd] = R[rs] // y
    """, "Unsigned divide; #DE on zero.")
_def("rem", 0x0F, RRR, I, """
    x = s32(R[rs]); y = s32(R[rt])
    if y == 0 or (x == -0x80000000 and y == -1):
        raise GuestFault(VEC_DE)
    r = abs(x) % abs(y)
    R[rd] = (-r if x < 0 else r) & M32
    """, "Signed remainder (sign of the dividend); #DE on zero or overflow.")
_def("remu", 0x10, RRR, I, """
    y = R[rt]
    if y == 0:
        raise GuestFault(VEC_DE)
    R[rd] = R[rs] % y
    """, "Unsigned remainder; #DE on zero.")
_def("addi", 0x11, RRI, I, "R[rd] = (R[rs] + imm) & M32", "Add a signed 16-bit immediate.")
_def("andi", 0x12, RRU, I, "R[rd] = R[rs] & imm", "And with a zero-extended 16-bit immediate.")
_def("ori", 0x13, RRU, I, "R[rd] = R[rs] | imm", "Or with a zero-extended 16-bit immediate.")
_def("xori", 0x14, RRU, I, "R[rd] = R[rs] ^ imm", "Exclusive-or with a zero-extended immediate.")
_def("shli", 0x15, RRS, I, "R[rd] = (R[rs] << imm) & M32", "Shift left by a constant.")
_def("shri", 0x16, RRS, I, "R[rd] = R[rs] >> imm", "Logical shift right by a constant.")
_def("sari", 0x17, RRS, I, "R[rd] = (s32(R[rs]) >> imm) & M32",
     "Arithmetic shift right by a constant.")
_def("not", 0x18, "rd:reg@a, rs:reg@b", I, "R[rd] = R[rs] ^ M32", "Bitwise complement.")
_def("neg", 0x19, "rd:reg@a, rs:reg@b", I, "R[rd] = -R[rs] & M32", "Two's-complement negate.")

# --- compare: the only instructions that write condition flags ----------------------------------
_CMP = """
x = R[rs]; r = (x - {y}) & M32
cpu.flags = ((cpu.flags & ~COND_MASK) | (FLAG_ZF if r == 0 else 0) | ((r >> 31) << 7)
             | (FLAG_CF if x < {y} else 0) | ((((x ^ {y}) & (x ^ r)) >> 31) << 11))
"""
_def("cmp", 0x1A, "rs:reg@a, rt:reg@b", I, "y = R[rt]\n" + _CMP.format(y="y"),
     "Compare: set flags from rs - rt.", writes_flags=True)
_def("cmpi", 0x1B, "rs:reg@a, imm:simm16@c", I, "y = imm & M32\n" + _CMP.format(y="y"),
     "Compare with a sign-extended immediate.", writes_flags=True)
_def("tst", 0x1C, "rs:reg@a, rt:reg@b", I, """
    r = R[rs] & R[rt]
    cpu.flags = (cpu.flags & ~COND_MASK) | (FLAG_ZF if r == 0 else 0) | ((r >> 31) << 7)
    """, "Set ZF and SF from rs & rt; clear CF and OF.", writes_flags=True)

# --- memory -------------------------------------------------------------------------------------
MEM_RD = "rd:reg@a, m:mem@bc"
_def("ld", 0x20, MEM_RD, I, "R[rd] = cpu.load32((R[base] + disp) & M32)", "Load a word.")
_def("ldb", 0x21, MEM_RD, I, "R[rd] = cpu.load8((R[base] + disp) & M32)",
     "Load a byte, zero-extended.")
_def("st", 0x22, "m:mem@bc, rt:reg@a", I, "cpu.store32((R[base] + disp) & M32, R[rt])",
     "Store a word.")
_def("stb", 0x23, "m:mem@bc, rt:reg@a", I, "cpu.store8((R[base] + disp) & M32, R[rt] & 0xFF)",
     "Store the low byte.")
_def("xchg", 0x24, MEM_RD, I, """
    ea = (R[base] + disp) & M32
    v = cpu.load32(ea)
    cpu.store32(ea, R[rd])
    R[rd] = v
    """, "Atomically exchange a register with a word in memory (for spin locks).")
_def("push", 0x25, "rs:reg@a", I, """
    v = R[rs]; sp = (R[SP] - 4) & M32
    cpu.store32(sp, v)
    R[SP] = sp
    """, "Push a register.")
_def("pop", 0x26, "rd:reg@a", I, """
    v = cpu.load32(R[SP])
    R[SP] = (R[SP] + 4) & M32
    R[rd] = v
    """, "Pop into a register.")

# --- the multiprocessor: atomic read-modify-write and the spin-wait hint ------------------------
# Every instruction is atomic on the toyvisor multiprocessor (the CPUs interleave whole
# instructions, docs/machine.md "Multiprocessor"); these are the ones locks are built from.
_def("xadd", 0x27, MEM_RD, I, """
    ea = (R[base] + disp) & M32
    v = cpu.load32(ea)
    cpu.store32(ea, (v + R[rd]) & M32)
    R[rd] = v
    """, "Atomically add a register to a word in memory; the register receives the old word "
    "(fetch-and-add: ticket locks, lock-free counters).")
_def("cas", 0x28, RRR, I, """
    ea = R[rt]
    v = cpu.load32(ea)
    if v == R[rd]:
        cpu.store32(ea, R[rs])
    R[rd] = v
    """, "Compare-and-swap: if the word at address rt equals rd, store rs there; rd receives the "
    "old word either way (it equals the expected value iff the swap happened).")
_def("pause", 0x29, "", I, "cpu.pause()",
     "Spin-wait hint: does nothing but is counted per CPU (spin loops call it each iteration).")

# --- control transfer ---------------------------------------------------------------------------
T = "target:rel16@c"
_def("jmp", 0x30, T, I, "cpu.pc = target", "Jump.", sets_pc=True)
_CONDITIONS = [
    ("jz", 0x31, "cpu.flags & FLAG_ZF", "zero / equal", ("je",)),
    ("jnz", 0x32, "not cpu.flags & FLAG_ZF", "not zero / not equal", ("jne",)),
    ("jl", 0x33, "((cpu.flags >> 7) ^ (cpu.flags >> 11)) & 1", "signed less", ()),
    ("jge", 0x34, "not ((cpu.flags >> 7) ^ (cpu.flags >> 11)) & 1", "signed greater or equal", ()),
    ("jle", 0x35, "(cpu.flags & FLAG_ZF) or ((cpu.flags >> 7) ^ (cpu.flags >> 11)) & 1",
     "signed less or equal", ()),
    ("jg", 0x36, "not ((cpu.flags & FLAG_ZF) or ((cpu.flags >> 7) ^ (cpu.flags >> 11)) & 1)",
     "signed greater", ()),
    ("jb", 0x37, "cpu.flags & FLAG_CF", "unsigned below", ()),
    ("jae", 0x38, "not cpu.flags & FLAG_CF", "unsigned above or equal", ()),
    ("jbe", 0x39, "cpu.flags & (FLAG_CF | FLAG_ZF)", "unsigned below or equal", ()),
    ("ja", 0x3A, "not cpu.flags & (FLAG_CF | FLAG_ZF)", "unsigned above", ()),
]
for _m, _op, _cond, _text, _aliases in _CONDITIONS:
    _def(_m, _op, T, I, f"cpu.pc = target if {_cond} else npc", f"Jump if {_text}.",
         sets_pc=True, aliases=_aliases)
_def("call", 0x3B, T, I, """
    sp = (R[SP] - 4) & M32
    cpu.store32(sp, npc)
    R[SP] = sp
    cpu.pc = target
    """, "Push the return address and jump.", sets_pc=True)
_def("ret", 0x3C, "", I, """
    v = cpu.load32(R[SP])
    R[SP] = (R[SP] + 4) & M32
    cpu.pc = v
    """, "Pop the return address and jump to it.", sets_pc=True)
_def("jmpr", 0x3D, "rs:reg@a", I, "cpu.pc = R[rs]", "Jump to the address in a register.",
     sets_pc=True)
_def("callr", 0x3E, "rs:reg@a", I, """
    dest = R[rs]; sp = (R[SP] - 4) & M32
    cpu.store32(sp, npc)
    R[SP] = sp
    cpu.pc = dest
    """, "Call the address in a register.", sets_pc=True)

# --- interrupts ---------------------------------------------------------------------------------
_def("int", 0x40, "vector:imm8@c", I, "cpu.software_interrupt(vector, npc)",
     "Software interrupt through gate `vector` (allowed if CPL <= the gate's DPL).", sets_pc=True)
_def("brk", 0x41, "", I, "cpu.software_interrupt(VEC_BP, npc)",
     "Breakpoint: software interrupt 3.", sets_pc=True)

# --- privileged: #GP(0) at CPL > 0 --------------------------------------------------------------
_def("iret", 0x42, "", P, "cpu.iret()",
     "Return from a trap: pop error code, pc, cs, flags and sp.", sets_pc=True,
     nonroot=GUEST_STATE)
_def("hlt", 0x43, "", P, "cpu.halt(npc)",
     "Wait for an interrupt (IF = 1) or stop the machine (IF = 0).", sets_pc=True,
     nonroot=EXIT, exit_control="hlt")
_def("cli", 0x44, "", P, "cpu.flags &= ~FLAG_IF", "Disable interrupts.", nonroot=GUEST_STATE)
_def("sti", 0x45, "", P, "cpu.flags |= FLAG_IF", "Enable interrupts.", nonroot=GUEST_STATE)
_def("lidt", 0x46, "rs:reg@a", P, "cpu.idtr = R[rs]", "Load the interrupt-table base.",
     nonroot=EXIT, exit_control="lidt")
_def("mtcr", 0x47, "creg:creg@a, rs:reg@b", P, "cpu.write_cr(creg, R[rs])",
     "Write a control register.", nonroot=EXIT, exit_control="cr-write")
_def("mfcr", 0x48, "rd:reg@a, creg:creg@b", P, "R[rd] = cpu.read_cr(creg)",
     "Read a control register.", nonroot=EXIT, exit_control="cr-read")
_def("invlpg", 0x49, "rs:reg@a", P, "cpu.invlpg(R[rs])",
     "Drop the TLB entry of the page holding the address in rs.", nonroot=EXIT,
     exit_control="invlpg")
_def("in", 0x4A, "rd:reg@a, port:port@c", P, "R[rd] = cpu.port_in(port)", "Read an I/O port.",
     nonroot=EXIT, exit_control="io")
_def("out", 0x4B, "port:port@c, rs:reg@a", P, "cpu.port_out(port, R[rs])",
     "Write an I/O port.", nonroot=EXIT, exit_control="io")

# --- sensitive but unprivileged: they never trap (Robin & Irvine) --------------------------------
_def("pushf", 0x50, "", S, """
    sp = (R[SP] - 4) & M32
    cpu.store32(sp, cpu.flags)
    R[SP] = sp
    """, "Push flags, including the real IF.", group="sensitive-register", nonroot=GUEST_STATE)
_def("popf", 0x51, "", S, """
    v = cpu.load32(R[SP])
    R[SP] = (R[SP] + 4) & M32
    if cpu.cpl == 0:
        cpu.flags = v & FLAGS_MASK
    else:
        cpu.flags = (v & FLAGS_MASK & ~FLAG_IF) | (cpu.flags & FLAG_IF)
    """, "Pop flags; outside ring 0 a change to IF is silently ignored (the 386 behaviour).",
     group="sensitive-register", nonroot=GUEST_STATE)
_def("sidt", 0x52, "rd:reg@a", S, "R[rd] = cpu.idtr",
     "Read the interrupt-table base.", group="sensitive-register", nonroot=GUEST_STATE)
_def("smsw", 0x53, "rd:reg@a", S, "R[rd] = cpu.read_cr(CR0) & 0xFFFF",
     "Read the low 16 bits of cr0 (the machine status word).", group="sensitive-register",
     nonroot=GUEST_STATE)
_def("rdcs", 0x54, "rd:reg@a", S, "R[rd] = cpu.cpl",
     "Read cs, whose low two bits are the current privilege level.", group="protection-system",
     nonroot=GUEST_STATE)

_def("rdpid", 0x55, "rd:reg@a", S, "R[rd] = cpu.cpu_number()",
     "Read the number of the CPU executing it (0 = the boot CPU; under a VMM it must be the "
     "virtual CPU's).", group="sensitive-register", nonroot=EXIT)

# --- the "vt" extension: hardware-assisted virtualization (docs/hardware-virtualization.md) -----
# In non-root mode both exit before executing (the `nonroot` column); what is below is their
# root-mode semantics.
_def("vmrun", 0x60, "rs:reg@a", P, "cpu.vmrun(R[rs], npc)",
     "Enter non-root mode: save the host state, run the guest described by the control structure "
     "at physical address rs until a VM exit, then continue after vmrun.",
     sets_pc=True, extension="vt", nonroot=EXIT)
_def("vmcall", 0x61, "", S, "raise GuestFault(VEC_UD, 0)",
     "Hypercall: in non-root mode an unconditional VM exit (reason vmcall); #UD in root mode.",
     extension="vt", nonroot=EXIT)

del _m, _op, _cond, _text, _aliases

#: The base instruction set (what Popek & Goldberg's analysis of the seeds is about), in opcode
#: order.
INSTRUCTIONS: tuple[Instruction, ...] = tuple(
    sorted((d for d in _TABLE if d.extension is None), key=lambda d: d.opcode)
)
#: The instructions of each ISA extension ("vt"), in opcode order.
EXTENSIONS = MappingProxyType({
    name: tuple(sorted((d for d in _TABLE if d.extension == name), key=lambda d: d.opcode))
    for name in sorted({d.extension for d in _TABLE if d.extension is not None})
})
#: Every instruction the machine decodes: the base set and every extension, in opcode order.
ALL_INSTRUCTIONS: tuple[Instruction, ...] = tuple(sorted(_TABLE, key=lambda d: d.opcode))
BY_OPCODE = MappingProxyType({d.opcode: d for d in ALL_INSTRUCTIONS})
#: Mnemonics and aliases (lower case) → definition.
BY_MNEMONIC = MappingProxyType(
    {name: d for d in ALL_INSTRUCTIONS for name in (d.mnemonic, *d.aliases)}
)


def instruction_set(extension: str | None = None) -> tuple[Instruction, ...]:
    """The base instructions, plus those of `extension` ("vt") when given, in opcode order."""
    if extension is None:
        return INSTRUCTIONS
    if extension not in EXTENSIONS:
        raise ValueError(f"no ISA extension {extension!r} (known: {', '.join(EXTENSIONS)})")
    return tuple(sorted((*INSTRUCTIONS, *EXTENSIONS[extension]), key=lambda d: d.opcode))


def _check_table() -> None:
    """Catch table mistakes at import time, where they are cheapest to find."""
    if len(BY_OPCODE) != len(ALL_INSTRUCTIONS) or not all(
            0 < d.opcode < 256 for d in ALL_INSTRUCTIONS):
        raise AssertionError("opcodes must be unique and in 1..255")
    if len(BY_MNEMONIC) != sum(1 + len(d.aliases) for d in ALL_INSTRUCTIONS):
        raise AssertionError("mnemonics and aliases must be unique")
    for d in ALL_INSTRUCTIONS:
        fields = [f for op in d.operands for f in (("b", "c") if op.field == "bc" else (op.field,))]
        if len(fields) != len(set(fields)):
            raise AssertionError(f"{d.mnemonic}: two operands share a field")
        compile(d.semantics, d.mnemonic, "exec")
        if d.sensitive != (d.nonroot is not None) or d.nonroot not in (None, EXIT, GUEST_STATE):
            raise AssertionError(f"{d.mnemonic}: sensitive instructions (only) declare `nonroot`")
        if d.exit_control is not None and d.nonroot != EXIT:
            raise AssertionError(f"{d.mnemonic}: an exit control needs nonroot={EXIT!r}")


_check_table()
