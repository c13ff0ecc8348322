"""Generate one Python function per translation block from the instruction table's semantics.

Each instruction's semantics (`toyvisor.isa.table`) is parsed once and *specialised* for the
decoded instance: operand fields, ``pc``, ``npc`` and the constants of `toyvisor.isa.spec` become
literals (so CPython folds ``imm & M32`` and friends at compile time), ``s32(v)`` is inlined as
``(v ^ 0x80000000) - 0x80000000``, the semantics' temporaries are renamed ``v_<name>`` so they
cannot collide with the block's own names, and the condition flags live in a local ``F`` once an
instruction of the block has written them (every write still stores ``cpu.flags``, so the state is
exact at any fault).  The statements of the block's instructions are concatenated into::

    def tb_<pc>(cpu, R):
        <instruction 0>
        <instruction 1>
        ...
        cpu.pc = <where control goes>
        return <the chained successor block, or None>

What the generated code does *not* do, and who does it instead:

- ``cpu.pc`` is not moved after each instruction.  It is stored before every instruction that
  touches memory (so the MMU, audit hooks and monitors see the pc of the accessing instruction)
  and at the end of the block.  When an instruction raises `GuestFault`, the dispatcher finds the
  faulting instruction from the traceback's line number in the block function (`Block.lines`),
  sets ``cpu.pc`` to it and counts only the instructions before it as retired: faults are precise
  at no cost on the fault-free path.
- The clock and ``cpu.retired`` are advanced by the dispatcher, per block.
- After every memory access the block tests ``_sig.exit``: the engine sets it when a write hit
  translated code (self-modifying code) or something asked the CPU for attention.  The block then
  leaves right after the accessing instruction (raising `EarlyExit` with the number of retired
  instructions, or returning None if it was the block's last instruction), so the next
  instruction is fetched afresh: exactly the interpreter's behaviour.
- A block ending in a control transfer with constant destinations returns, for each destination,
  the successor block stored in a closure cell (``_l0``, ``_l1``): the engine fills the cell when
  it first looks the successor up (*chaining*) and empties it when the successor is invalidated.
"""

from __future__ import annotations

import ast
import builtins
import re
from collections.abc import Sequence
from functools import cache

from toyvisor.isa import spec
from toyvisor.isa.codegen import SEMANTICS_GLOBALS, field_names
from toyvisor.isa.encoding import Decoded
from toyvisor.isa.faults import GuestFault
from toyvisor.isa.table import Instruction

#: Constants of the architecture, substituted as literals.
_CONSTANTS = {name: getattr(spec, name) for name in dir(spec)
              if name.isupper() and isinstance(getattr(spec, name), int)}
#: Names that stay names in generated code.
_KEEP = {"R", "cpu", "GuestFault", "abs", "F"} | set(dir(builtins))

INDENT = "    "


class EarlyExit(Exception):
    """Raised by a block that stops after `retired` of its instructions (see module docstring)."""

    def __init__(self, retired: int):
        super().__init__(retired)
        self.retired = retired


class Signal:
    """The flag blocks test after memory accesses; one per translator."""

    __slots__ = ("exit",)

    def __init__(self) -> None:
        self.exit = False


def accesses_memory(definition: Instruction) -> bool:
    """Whether the instruction's semantics load or store (explicit memory operands, stack)."""
    text = definition.semantics
    return "cpu.load" in text or "cpu.store" in text


def _is_cpu_attr(node: ast.AST, attr: str) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == attr
            and isinstance(node.value, ast.Name) and node.value.id == "cpu")


class _Specialise(ast.NodeTransformer):
    """Rewrite one instruction's semantics into a template: fields, ``pc`` and ``npc`` become
    placeholders ``__name__``, the spec's constants literals, temporaries ``v_<name>``."""

    def __init__(self, fields: tuple[str, ...], flags_known: bool):
        self.fields = set(fields) | {"pc", "npc"}
        self.flags_known = flags_known

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id in self.fields:
            return ast.copy_location(ast.Name(f"__{node.id}__", node.ctx), node)
        if isinstance(node.ctx, ast.Load) and node.id in _CONSTANTS:
            return ast.copy_location(ast.Constant(_CONSTANTS[node.id]), node)
        if node.id in _KEEP:
            return node
        return ast.copy_location(ast.Name(f"v_{node.id}", node.ctx), node)

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        if self.flags_known and isinstance(node.ctx, ast.Load) and _is_cpu_attr(node, "flags"):
            return ast.copy_location(ast.Name("F", ast.Load()), node)
        return self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> ast.AST:
        if isinstance(node.func, ast.Name) and node.func.id == "s32" and len(node.args) == 1:
            # s32(v) for a 32-bit pattern v, evaluating v once.
            return ast.copy_location(ast.BinOp(
                ast.BinOp(self.visit(node.args[0]), ast.BitXor(), ast.Constant(0x80000000)),
                ast.Sub(), ast.Constant(0x80000000)), node)
        return self.generic_visit(node)

    def visit_Assign(self, node: ast.Assign) -> ast.AST | list[ast.AST]:
        if len(node.targets) == 1 and _is_cpu_attr(node.targets[0], "flags"):
            value = self.visit(node.value)
            self.flags_known = True
            return [
                ast.copy_location(ast.Assign([ast.Name("F", ast.Store())], value), node),
                ast.copy_location(ast.Assign(
                    [ast.Attribute(ast.Name("cpu", ast.Load()), "flags", ast.Store())],
                    ast.Name("F", ast.Load())), node),
            ]
        return self.generic_visit(node)


class Template:
    """One instruction's generated code with ``__field__`` placeholders.

    `lines` are the statements (for a control transfer: all but the final ``cpu.pc = ...``);
    `final` describes that assignment: ``("if", test, taken, fallthrough)`` for a conditional
    branch, ``("const", destination)`` for a fixed destination, ``("dynamic", statement)`` for
    a computed one (destinations are placeholders or text), None when the instruction does not
    set the pc.  `flags_known` tells whether ``F`` holds the flags afterwards.
    """

    def __init__(self, lines, final, flags_known):
        self.lines = lines
        self.final = final
        self.flags_known = flags_known


def _placeholder(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name) and node.id.startswith("__") and node.id.endswith("__"):
        return node.id
    return None


@cache
def template(definition: Instruction, flags_known: bool) -> Template:
    """The code template of `definition` (cached: built once per instruction and flag state)."""
    tree = ast.parse(definition.semantics)
    transformer = _Specialise(field_names(definition), flags_known)
    body: list[ast.stmt] = []
    for statement in tree.body:
        result = transformer.visit(statement)
        body.extend(result if isinstance(result, list) else [result])
    final = None
    if definition.sets_pc:
        last = body.pop()
        if not (isinstance(last, ast.Assign) and _is_cpu_attr(last.targets[0], "pc")):
            raise ValueError(f"{definition.mnemonic}: semantics must end by setting cpu.pc")
        value = last.value
        if (isinstance(value, ast.IfExp) and _placeholder(value.body)
                and _placeholder(value.orelse)):
            final = ("if", ast.unparse(value.test), value.body.id, value.orelse.id)
        elif _placeholder(value):
            final = ("const", value.id)
        else:
            final = ("dynamic", ast.unparse(last))
    module = ast.fix_missing_locations(ast.Module(body=body, type_ignores=[]))
    lines = tuple(ast.unparse(module).splitlines()) if body else ()
    return Template(lines, final, transformer.flags_known)


_PLACEHOLDER = re.compile(r"__(\w+?)__")


def _fill(text: str, values: dict[str, int]) -> str:
    def value(match: re.Match) -> str:
        number = values[match.group(1)]
        return f"({number})" if number < 0 else str(number)
    return _PLACEHOLDER.sub(value, text)


def _values(decoded: Decoded) -> dict[str, int]:
    return {**decoded.fields, "pc": decoded.pc, "npc": decoded.npc}


class BlockSource:
    """The generated source of a block and what the engine needs to run and link it."""

    def __init__(self, text: str, name: str, lines: list[int], exits: dict[int, str]):
        self.text = text
        self.name = name
        #: first source line of each instruction (1-based, in the function's code object)
        self.lines = lines
        #: constant destination pc -> closure cell name holding the chained successor
        self.exits = exits


def block_source(body: Sequence[Decoded], *, tail: Decoded | None, end_pc: int) -> BlockSource:
    """Generate the factory source for a block.

    `body` are the instructions executed by the generated code; the last may transfer control.
    `tail` is the instruction the engine runs after the body (a callout or a software
    interrupt), or None.  `end_pc` is where control goes after the body when its last instruction
    does not set the pc (the tail's pc, or the next instruction when the block was cut short).
    """
    name = f"tb_{body[0].pc:08x}" if body else f"tb_{end_pc:08x}"
    out: list[str] = []
    starts: list[int] = []
    exits: dict[int, str] = {}
    flags_known = False
    header = 2  # "def make_...():" and "def tb_...():" come first
    i2, i3 = INDENT * 2, INDENT * 3

    def cell(pc: int) -> str:
        if pc not in exits:
            exits[pc] = f"_l{len(exits)}"
        return exits[pc]

    count = len(body)
    total = count + (tail is not None)
    for index, decoded in enumerate(body):
        definition = decoded.definition
        starts.append(header + len(out) + 1)
        code = template(definition, flags_known)
        flags_known = code.flags_known
        values = _values(decoded)
        memory = accesses_memory(definition)
        if memory:
            out.append(f"{i2}cpu.pc = {decoded.pc:#x}")
        out.extend(i2 + _fill(line, values) for line in code.lines)
        final = code.final
        if final is not None:
            if index != count - 1:
                raise ValueError("a control transfer must end the block")
            if final[0] == "if":
                taken, fall = values[final[2][2:-2]], values[final[3][2:-2]]
                out.append(f"{i2}if {_fill(final[1], values)}:")
                out.append(f"{i3}cpu.pc = {taken:#x}")
                out.append(f"{i3}return {cell(taken)}")
                out.append(f"{i2}cpu.pc = {fall:#x}")
                out.append(f"{i2}return {cell(fall)}")
            elif final[0] == "const":
                destination = values[final[1][2:-2]]
                out.append(f"{i2}cpu.pc = {destination:#x}")
                if memory:
                    out.append(f"{i2}if _sig.exit:")
                    out.append(f"{i3}return None")
                out.append(f"{i2}return {cell(destination)}")
            else:
                out.append(i2 + _fill(final[1], values))
                out.append(f"{i2}return None")
            break
        if memory and index + 1 < total:
            # Leave right after this instruction if a write hit translated code or the CPU
            # was asked for attention (the next instruction must be fetched afresh).
            out.append(f"{i2}if _sig.exit:")
            out.append(f"{i3}cpu.pc = {decoded.npc:#x}")
            out.append(f"{i3}raise EarlyExit({index + 1})")
    else:
        out.append(f"{i2}cpu.pc = {end_pc:#x}")
        if tail is None:
            if body and accesses_memory(body[-1].definition):
                out.append(f"{i2}if _sig.exit:")
                out.append(f"{i3}return None")
            out.append(f"{i2}return {cell(end_pc)}")
        else:
            out.append(f"{i2}return None")
    params = ", ".join(["_sig", *exits.values()])
    text = (f"def make_{name}({params}):\n"
            f"{INDENT}def {name}(cpu, R):\n"
            + "\n".join(out) + "\n"
            f"{INDENT}return {name}\n")
    return BlockSource(text, name, starts, exits)


#: The globals of every generated block function.
BLOCK_GLOBALS = {**SEMANTICS_GLOBALS, "GuestFault": GuestFault, "EarlyExit": EarlyExit}


def compile_block(source: BlockSource, signal: Signal, filename: str):
    """Compile `source`; returns (function, {cell name: cell object})."""
    namespace = dict(BLOCK_GLOBALS)
    exec(compile(source.text, filename, "exec"), namespace)  # noqa: S102 - generated from the table
    factory = namespace[f"make_{source.name}"]
    function = factory(signal, *([None] * len(source.exits)))
    freevars = function.__code__.co_freevars
    cells = {name: function.__closure__[freevars.index(name)]
             for name in source.exits.values() if name in freevars}
    return function, cells


__all__ = ["BLOCK_GLOBALS", "BlockSource", "EarlyExit", "Signal", "Template", "accesses_memory",
           "block_source", "compile_block", "template"]
