"""`Program`: a generated guest program as an immutable value that prints as assembly source.

A program is a tuple of `Instr` (mnemonic, operand values, optional comment).  Branch operands
(``rel16``) hold the *index* of the target instruction in the program (``len(program)`` is the
end), so the same value renders at any origin and reads as labelled assembly::

    >>> from toyvisor.testing.program import Instr, Program
    >>> print(Program((Instr("li", (1, 5)), Instr("jz", (3,)), Instr("addi", (1, 1, 2)),
    ...                Instr("out", (0x10, 1)))))
            li r1, 0x5
            jz L3
            addi r1, r1, 2
    L3:     out 0x10, r1

`Program.assemble` runs that text through the real assembler; `Program.encode` is the same bytes
without it (the harness uses it to place a program in a kernel image).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import attrs

from toyvisor.isa.encoding import decode, encode, format_instruction
from toyvisor.isa.spec import SP, Privilege
from toyvisor.isa.table import BY_MNEMONIC, Instruction, Kind

END_LABEL = "end"
_TIMER = re.compile(r"^; timer interrupt every (\d+) instructions")


@attrs.frozen
class Instr:
    """One instruction of a `Program`; ``rel16`` operands are instruction indices."""

    mnemonic: str
    values: tuple = ()
    #: Printed after the instruction (``; kernel``): why a generator produced it.
    comment: str = ""

    @property
    def definition(self) -> Instruction:
        return BY_MNEMONIC[self.mnemonic]

    @property
    def targets(self) -> tuple[int, ...]:
        """Indices of the instructions this one branches to."""
        return tuple(v for op, v in zip(self.definition.operands, self.values)
                     if op.kind is Kind.REL16)


@attrs.frozen
class Program:
    """A guest program: instructions plus how interrupts arrive while it runs.

    `timer_period` is the period (in instructions) of the timer a bare-metal harness programs
    before jumping to the program (0: no timer interrupts).  On top of a kernel the kernel's own
    timer decides.
    """

    instructions: tuple[Instr, ...] = attrs.field(converter=tuple)
    timer_period: int = 0

    def __len__(self) -> int:
        return len(self.instructions)

    def __iter__(self) -> Iterator[Instr]:
        return iter(self.instructions)

    def __str__(self) -> str:
        return self.source()

    @property
    def size(self) -> int:
        """Bytes of machine code."""
        return sum(i.definition.length for i in self.instructions)

    @property
    def mnemonics(self) -> frozenset[str]:
        return frozenset(i.mnemonic for i in self.instructions)

    def has(self, privilege: Privilege) -> bool:
        """Whether some instruction is of `privilege` class (e.g. ``Privilege.SENSITIVE``)."""
        return any(i.definition.privilege is privilege for i in self.instructions)

    def inputs(self) -> tuple[int, ...]:
        """The registers the program reads before it has surely set them (a set after the first
        branch may be skipped), in order; sp too when an instruction uses the stack."""
        written: set[int] = set()
        found: list[int] = []
        branched = False
        for instr in self.instructions:
            semantics = instr.definition.semantics
            used, sets = [], []
            for op, value in zip(instr.definition.operands, instr.values):
                if op.kind is Kind.MEM:
                    used.append(value[0])
                elif op.kind is Kind.REG:
                    if re.search(rf"R\[{op.name}\](?!\s*=[^=])", semantics):
                        used.append(value)
                    if re.search(rf"R\[{op.name}\]\s*=[^=]", semantics):
                        sets.append(value)
            if "R[SP]" in semantics:
                used.append(SP)
            for register in used:
                if register not in written and register not in found:
                    found.append(register)
            if not branched:  # after a branch, a set may have been skipped
                written.update(sets)
            branched = branched or bool(instr.targets) or instr.definition.sets_pc
        return tuple(found)

    def standalone(self, registers) -> Program:
        """This program, preceded by an ``li`` of each of its `inputs` to its value in
        `registers` (the 16 registers as the program finds them): it reads the same and
        tells the whole story."""
        prefix = tuple(Instr("li", (r, registers[r] & 0xFFFFFFFF), "as the kernel leaves it")
                       for r in self.inputs())
        if not prefix:
            return self
        shift = len(prefix)
        moved = tuple(attrs.evolve(instr, values=tuple(
            v + shift if op.kind is Kind.REL16 else v
            for op, v in zip(instr.definition.operands, instr.values)))
            for instr in self.instructions)
        return Program(prefix + moved, self.timer_period)

    def addresses(self, origin: int = 0) -> list[int]:
        """The address of every instruction at `origin`, and of the end."""
        result = [origin]
        for instr in self.instructions:
            result.append(result[-1] + instr.definition.length)
        return result

    def _resolved(self, origin: int):
        addresses = self.addresses(origin)
        for index, instr in enumerate(self.instructions):
            values = tuple(addresses[v] if op.kind is Kind.REL16 else v
                           for op, v in zip(instr.definition.operands, instr.values))
            yield addresses[index], instr, values

    def encode(self, origin: int = 0) -> bytes:
        """The machine code, placed at `origin` (a multiple of 4)."""
        return b"".join(encode(instr.definition, values, pc)
                        for pc, instr, values in self._resolved(origin))

    def labels(self) -> dict[int, str]:
        """Instruction index → label, for every branch target."""
        targets = sorted({t for instr in self.instructions for t in instr.targets})
        return {t: END_LABEL if t == len(self.instructions) else f"L{t}" for t in targets}

    def source(self) -> str:
        """Assembly source (labels for branch targets; re-assembles to `encode`'s bytes)."""
        labels = self.labels()
        addresses = self.addresses(0)
        symbols = {addresses[i]: name for i, name in labels.items()}
        lines = []
        for index, (pc, instr, values) in enumerate(self._resolved(0)):
            text = format_instruction(decode(encode(instr.definition, values, pc), pc), symbols)
            label = f"{labels[index]}:" if index in labels else ""
            line = f"{label:<8}{text}"
            if instr.comment:
                line = f"{line:<40}; {instr.comment}"
            lines.append(line)
        if len(self.instructions) in labels:
            lines.append(f"{END_LABEL}:")
        if self.timer_period:
            lines.insert(0, f"; timer interrupt every {self.timer_period} instructions")
        return "\n".join(lines) + "\n"

    def assemble(self, origin: int = 0):
        """Assemble `source` at `origin` with the real assembler (an `toyvisor.asm.Assembly`)."""
        from toyvisor.asm import assemble_source

        return assemble_source(f".org {origin:#x}\n{self.source()}", "<program>")

    @classmethod
    def from_source(cls, source: str) -> Program:
        """The program `source` (as `source` prints it, or any straight assembly code whose
        branches land on its own instructions) assembles to; comments are kept.  Raises
        `toyvisor.asm.AssemblyError`, or `ValueError` for code that is not a program."""
        from toyvisor.asm import assemble_source

        image = assemble_source(source, "<program>").image
        code = b"".join(s.data for s in sorted(image.segments, key=lambda s: s.address)
                        if s.name == "text")
        decoded, pc = [], 0
        while pc < len(code):
            decoded.append(decode(code, pc, pc))
            pc += decoded[-1].length
        index = {d.pc: i for i, d in enumerate(decoded)}
        index[len(code)] = len(decoded)
        lines = source.splitlines()
        comments = {loc.address: lines[loc.line - 1].partition(";")[2].strip()
                    for loc in image.source_map if 0 < loc.line <= len(lines)}
        instructions = []
        for d in decoded:
            values = []
            for op, value in zip(d.definition.operands, d.values):
                if op.kind is Kind.REL16:
                    if value not in index:
                        raise ValueError(f"the branch at {d.pc:#x} does not land on an "
                                         "instruction of the program")
                    value = index[value]
                values.append(value)
            instructions.append(Instr(d.definition.mnemonic, tuple(values),
                                      comments.get(d.pc, "")))
        period = _TIMER.search(lines[0]) if lines else None
        return cls(tuple(instructions), int(period.group(1)) if period else 0)

    def _repr_pretty_(self, printer, cycle) -> None:
        """How hypothesis (and IPython) print a program: its assembly source, pasteable."""
        printer.text(f'Program.from_source("""\n{self.source()}""")')


__all__ = ["END_LABEL", "Instr", "Program"]
