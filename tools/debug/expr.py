"""Monitor expressions: addresses (``0x1000``, ``sp+8``, ``bench_popf``) and conditions
(``r1 == 3 && mem[sp] != 0``), evaluated safely over the stopped guest's registers and memory.

Python's own parser reads them (after ``&&``/``||``/``!`` become ``and``/``or``/``not``); only
integer arithmetic, comparisons, boolean operators, names and ``mem[ADDRESS]`` (the word at a
guest-virtual address) are allowed, so an expression can never run code or change the guest.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable, Mapping

from toyvisor.isa.spec import M32

from .world import DebugError

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.FloorDiv: operator.floordiv, ast.Div: operator.floordiv, ast.Mod: operator.mod,
           ast.BitAnd: operator.and_, ast.BitOr: operator.or_, ast.BitXor: operator.xor,
           ast.LShift: operator.lshift, ast.RShift: operator.rshift}
_UNARY = {ast.USub: operator.neg, ast.Invert: operator.invert, ast.Not: operator.not_,
          ast.UAdd: operator.pos}
_COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt,
            ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge}


class Expression:
    """A parsed expression; `evaluate(names, memory)` gives its integer value."""

    def __init__(self, text: str) -> None:
        self.text = text.strip()
        if not self.text:
            raise DebugError("empty expression")
        source = re.sub(r"&&", " and ", self.text)
        source = re.sub(r"\|\|", " or ", source)
        source = re.sub(r"!(?!=)", " not ", source)
        try:
            self.tree = ast.parse(source, mode="eval").body
        except SyntaxError:
            raise DebugError(f"cannot parse expression '{self.text}'") from None
        self._check(self.tree)

    def _check(self, node) -> None:
        allowed = (ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.Constant, ast.Name,
                   ast.Subscript, ast.operator, ast.unaryop, ast.boolop, ast.cmpop, ast.Load)
        for child in ast.walk(node):
            if not isinstance(child, allowed):
                raise DebugError(f"'{self.text}': only integers, registers, symbols, "
                                 f"arithmetic, comparisons and mem[ADDRESS] are allowed")
            if isinstance(child, (ast.operator, ast.unaryop, ast.cmpop)) and \
                    type(child) not in {**_BINARY, **_UNARY, **_COMPARE}:
                raise DebugError(f"'{self.text}': operator {type(child).__name__} is not "
                                 f"allowed")
            if isinstance(child, ast.Constant) and not isinstance(child.value, int):
                raise DebugError(f"'{self.text}': {child.value!r} is not an integer")
            if isinstance(child, ast.Subscript) and not (
                    isinstance(child.value, ast.Name) and child.value.id == "mem"):
                raise DebugError(f"'{self.text}': only mem[ADDRESS] can be indexed")

    def evaluate(self, names: Mapping[str, int], memory: Callable[[int], int]) -> int:
        return self._eval(self.tree, names, memory)

    def _eval(self, node, names, memory) -> int:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            if node.id not in names:
                raise DebugError(f"unknown name '{node.id}' in '{self.text}'")
            return names[node.id]
        if isinstance(node, ast.Subscript):
            return memory(self._eval(node.slice, names, memory) & M32)
        if isinstance(node, ast.UnaryOp):
            return int(_UNARY[type(node.op)](self._eval(node.operand, names, memory)))
        if isinstance(node, ast.BinOp):
            left = self._eval(node.left, names, memory)
            right = self._eval(node.right, names, memory)
            if isinstance(node.op, (ast.FloorDiv, ast.Div, ast.Mod)) and right == 0:
                raise DebugError(f"division by zero in '{self.text}'")
            if isinstance(node.op, (ast.LShift, ast.RShift)) and not 0 <= right < 64:
                raise DebugError(f"shift by {right} in '{self.text}'")
            return _BINARY[type(node.op)](left, right)
        if isinstance(node, ast.BoolOp):
            values = (self._eval(v, names, memory) for v in node.values)
            return int(all(values) if isinstance(node.op, ast.And) else any(values))
        if isinstance(node, ast.Compare):
            left = self._eval(node.left, names, memory)
            for op, right_node in zip(node.ops, node.comparators):
                right = self._eval(right_node, names, memory)
                if not _COMPARE[type(op)](left, right):
                    return 0
                left = right
            return 1
        raise DebugError(f"'{self.text}': unsupported expression")  # pragma: no cover


__all__ = ["Expression"]
