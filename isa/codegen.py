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


def body_source(definition: Instruction, *, check_privilege: bool = True) -> str:
    """The statements that execute `definition`, ending with the pc update."""
    parts = []
    if check_privilege and definition.privileged:
        parts.append(PRIVILEGE_CHECK)
    parts.append(definition.semantics)
    if not definition.sets_pc:
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
        if isinstance(node.func, ast.Name) and node.func.id == "s32" and len(node.args) == 1:
            return ast.copy_location(ast.BinOp(
                ast.BinOp(self.visit(node.args[0]), ast.BitXor(), ast.Constant(0x80000000)),
                ast.Sub(), ast.Constant(0x80000000)), node)
        return self.generic_visit(node)


def _with_literals(source: str) -> str:
    return ast.unparse(_Literals().visit(ast.parse(source)))


def handler_source(definition: Instruction) -> str:
    """Source of ``make_<mnemonic>(fields..., pc, npc)`` returning ``handler(cpu, R)``."""
    params = ", ".join((*field_names(definition), "pc", "npc"))
    body = textwrap.indent(_with_literals(body_source(definition)), " " * 8)
    return (
        f"def make_{definition.mnemonic}({params}):\n"
        f"    def op_{definition.mnemonic}(cpu, R):\n"
        f"{body}\n"
        f"    return op_{definition.mnemonic}\n"
    )


def _compile_factory(definition: Instruction) -> Callable:
    namespace = dict(SEMANTICS_GLOBALS)
    code = compile(handler_source(definition), f"<isa:{definition.mnemonic}>", "exec")
    exec(code, namespace)  # noqa: S102 - the source is generated from our own table
    return namespace[f"make_{definition.mnemonic}"]


#: opcode → handler factory (base ISA and extensions), compiled once per process.
FACTORIES = MappingProxyType({d.opcode: _compile_factory(d) for d in ALL_INSTRUCTIONS})
