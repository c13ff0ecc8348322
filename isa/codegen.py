"""Generate executable Python from the instruction table's semantics.

`handler_source` turns one instruction's semantics into the source of a *handler factory*: a
function that takes the decoded fields and returns a closure ``handler(cpu, R)`` which executes
the instruction.  The interpreter binds each decoded instruction to such a closure once (closure
threading), and a binary translator can splice the same semantics, with the fields as constants,
into larger generated functions.
"""

from __future__ import annotations

import ast
import textwrap
from collections.abc import Callable
from functools import cache
from types import MappingProxyType

from . import spec
from .faults import GuestFault
from .table import ALL_INSTRUCTIONS, Instruction, Kind

#: Names the semantics may use besides the operands, ``pc``, ``npc``, ``R`` and ``cpu``.
SEMANTICS_GLOBALS = MappingProxyType(
    {
        **{name: getattr(spec, name) for name in dir(spec) if name.isupper()},
        "GuestFault": GuestFault,
        "s32": spec.s32,
    }
)

PRIVILEGE_CHECK = "if cpu.cpl:\n    raise GuestFault(VEC_GP, 0)"


def field_names(definition: Instruction) -> tuple[str, ...]:
    """The names a handler factory takes, in order (memory operands give ``base``, ``disp``)."""
    names = []
    for op in definition.operands:
        names.extend(("base", "disp") if op.kind is Kind.MEM else (op.name,))
    return tuple(names)


def body_source(definition: Instruction, *, check_privilege: bool = True,
                set_pc: bool = True) -> str:
    """The statements that execute `definition`, ending with the pc update (left out with
    ``set_pc=False`` for an instruction that does not transfer control)."""
    parts = []
    if check_privilege and definition.privileged:
        parts.append(PRIVILEGE_CHECK)
    parts.append(definition.semantics)
    if not definition.sets_pc and set_pc:
        parts.append("cpu.pc = npc")
    return "\n".join(parts)


class _Literals(ast.NodeTransformer):
    """Constants of `toyvisor.isa.spec` become literals (CPython then folds ``imm & M32`` and
    friends) and ``s32(v)`` becomes ``(v ^ 0x80000000) - 0x80000000``: the handlers run on the
    interpreter's hot path, where each global lookup and call costs."""

    def visit_Name(self, node: ast.Name) -> ast.AST:
        value = SEMANTICS_GLOBALS.get(node.id)
        if isinstance(node.ctx, ast.Load) and type(value) is int:
            return ast.copy_location(ast.Constant(value), node)
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        return inline_s32(self, node)


def inline_s32(visitor: ast.NodeTransformer, node: ast.Call) -> ast.AST:
    """For an AST transformer's ``visit_Call``: ``s32(v)`` becomes ``(v ^ 0x80000000) -
    0x80000000`` (v evaluated once, no call on the hot path); any other call is visited as usual."""
    if isinstance(node.func, ast.Name) and node.func.id == "s32" and len(node.args) == 1:
        return ast.copy_location(ast.BinOp(
            ast.BinOp(visitor.visit(node.args[0]), ast.BitXor(), ast.Constant(0x80000000)),
            ast.Sub(), ast.Constant(0x80000000)), node)
    return visitor.generic_visit(node)


def _with_literals(source: str) -> str:
    return ast.unparse(_Literals().visit(ast.parse(source)))


def handler_source(definition: Instruction, *, set_pc: bool = True) -> str:
    """Source of ``make_<mnemonic>(fields..., pc, npc)`` returning ``handler(cpu, R)``; with
    ``set_pc=False`` the handler leaves ``cpu.pc`` alone (see `INNER_FACTORIES`)."""
    params = ", ".join((*field_names(definition), "pc", "npc"))
    body = textwrap.indent(_with_literals(body_source(definition, set_pc=set_pc)), " " * 8)
    return (
        f"def make_{definition.mnemonic}({params}):\n"
        f"    def op_{definition.mnemonic}(cpu, R):\n"
        f"{body}\n"
        f"    return op_{definition.mnemonic}\n"
    )


def _compile_factory(definition: Instruction, set_pc: bool = True) -> Callable:
    namespace = dict(SEMANTICS_GLOBALS)
    code = compile(handler_source(definition, set_pc=set_pc), f"<isa:{definition.mnemonic}>",
                   "exec")
    exec(code, namespace)  # noqa: S102 - the source is generated from our own table
    return namespace[f"make_{definition.mnemonic}"]


#: opcode → handler factory (base ISA and extensions), compiled once per process.
FACTORIES = MappingProxyType({d.opcode: _compile_factory(d) for d in ALL_INSTRUCTIONS})

#: opcode → factory of a handler that does not store ``cpu.pc``, for the instructions that do
#: not transfer control: the interpreter calls these inside a run of straight-line handlers,
#: where only the pc after the run (and the pc of a faulting instruction, which the run knows)
#: is ever observed.
INNER_FACTORIES = MappingProxyType({d.opcode: _compile_factory(d, set_pc=False)
                                    for d in ALL_INSTRUCTIONS if not d.sets_pc})


class _Prefix(ast.NodeTransformer):
    """Rename the given names (an instruction's fields, ``pc``, ``npc``) with a prefix."""

    def __init__(self, names: set[str], prefix: str):
        self.names = names
        self.prefix = prefix

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id in self.names:
            return ast.copy_location(ast.Name(self.prefix + node.id, node.ctx), node)
        return node


@cache
def _renamed(definition: Instruction, prefix: str, set_pc: bool) -> tuple[str, tuple[str, ...]]:
    """`definition`'s handler body with its fields, ``pc`` and ``npc`` prefixed; the names."""
    names = [*field_names(definition), "pc", "npc"]
    tree = _Prefix(set(names), prefix).visit(
        ast.parse(_with_literals(body_source(definition, set_pc=set_pc))))
    return ast.unparse(tree), tuple(prefix + name for name in names)


_BY_OPCODE = {d.opcode: d for d in ALL_INSTRUCTIONS}

#: Variants of `pair_factory`: where the pair stores ``cpu.pc``.
PAIR_INNER, PAIR_STORES_PC, PAIR_LAST = "inner", "stores-pc", "last"


@cache
def pair_factory(first_opcode: int, second_opcode: int, variant: str) -> Callable:
    """A *superinstruction*: the factory ``make(a_<fields>, a_pc, a_npc, b_<fields>, b_pc,
    b_npc)`` of one handler executing `first` then `second`.  `first` must neither transfer
    control, access memory nor raise (so a fault of the pair is always `second`'s).  `variant`
    `PAIR_INNER` stores no pc (`second` must not transfer control), `PAIR_STORES_PC` stores the
    pc after `second`, `PAIR_LAST` is `second`'s full semantics with, for a memory access,
    ``cpu.pc`` set to `second`'s pc first (hooks and faults see it).  Cached by opcodes."""
    first, second = _BY_OPCODE[first_opcode], _BY_OPCODE[second_opcode]
    a, a_names = _renamed(first, "a_", False)
    b, b_names = _renamed(second, "b_", variant != PAIR_INNER)
    if variant == PAIR_LAST and ("cpu.load" in second.semantics or "cpu.store" in second.semantics):
        b = "cpu.pc = b_pc\n" + b
    name = f"op_{first.mnemonic}_{second.mnemonic}"
    source = (f"def make({', '.join(a_names + b_names)}):\n"
              f"    def {name}(cpu, R):\n"
              f"{textwrap.indent(a + chr(10) + b, ' ' * 8)}\n"
              f"    return {name}\n")
    namespace = dict(SEMANTICS_GLOBALS)
    exec(compile(source, f"<isa:{first.mnemonic}+{second.mnemonic}>", "exec"), namespace)  # noqa: S102
    return namespace["make"]
