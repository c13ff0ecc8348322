"""The immutable syntax tree of one source line.

Columns count characters from 1.  Expression nodes record their nesting `depth` so the parser can
reject absurdly deep expressions before any recursive walk could overflow the Python stack.
"""

from __future__ import annotations

from typing import Union

import attrs


@attrs.frozen
class Number:
    """An integer or character literal."""

    value: int
    column: int
    depth: int = attrs.field(default=1, eq=False, repr=False)
    size = 1  # a leaf


@attrs.frozen
class Symbol:
    """A name: a label, constant, register, control register or macro parameter."""

    name: str
    column: int
    depth: int = attrs.field(default=1, eq=False, repr=False)
    size = 1  # a leaf


@attrs.frozen
class Here:
    """``.``: the address of the current statement."""

    column: int
    depth: int = attrs.field(default=1, eq=False, repr=False)
    size = 1  # a leaf


@attrs.frozen
class Unary:
    op: str
    operand: "Expr"
    column: int
    depth: int = attrs.field(default=1, eq=False, repr=False)
    #: Nodes of the tree once macro arguments are substituted (see `Expanded`).
    size: int = attrs.field(default=1, eq=False, repr=False)


@attrs.frozen
class Binary:
    """``left op right``; `column` is the left operand's, `op_column` the operator's."""

    op: str
    left: "Expr"
    right: "Expr"
    column: int
    op_column: int
    depth: int = attrs.field(default=1, eq=False, repr=False)
    #: Nodes of the tree once macro arguments are substituted (see `Expanded`).
    size: int = attrs.field(default=1, eq=False, repr=False)


@attrs.frozen
class Memory:
    """``[expr]``: a memory operand; the expression is ``reg``, ``reg + disp`` or ``reg - disp``."""

    expr: "Expr"
    column: int
    depth: int = attrs.field(default=1, eq=False, repr=False)
    #: Nodes of the tree once macro arguments are substituted (see `Expanded`).
    size: int = attrs.field(default=1, eq=False, repr=False)


@attrs.frozen
class String:
    """A string literal, already decoded to bytes (UTF-8, with escapes applied)."""

    value: bytes
    column: int
    depth: int = attrs.field(default=1, eq=False, repr=False)
    size = 1  # a leaf


@attrs.frozen
class Expanded:
    """A macro argument substituted for a parameter; errors inside it point at the macro use.

    `where` is the assembler's location of the macro invocation line.
    """

    inner: "Argument"
    where: object = attrs.field(eq=False)

    @property
    def column(self) -> int:
        return self.inner.column

    @property
    def depth(self) -> int:
        return self.inner.depth

    @property
    def size(self) -> int:
        return self.inner.size


Expr = Union[Number, Symbol, Here, Unary, Binary, Expanded]
Argument = Union[Number, Symbol, Here, Unary, Binary, Memory, String, Expanded]


@attrs.frozen
class Label:
    """``name:`` at the start of a line (`name` as written, ``.x`` for a local label)."""

    name: str
    column: int


@attrs.frozen
class Operation:
    """A mnemonic, macro name or directive (``.word``) with its arguments."""

    name: str
    column: int
    arguments: tuple[Argument, ...] = ()


@attrs.frozen
class Assignment:
    """``NAME = expr`` (the same as ``.equ NAME, expr``)."""

    name: str
    column: int
    expr: Expr


Statement = Union[Operation, Assignment]


@attrs.frozen
class Line:
    """One parsed source line: its labels and at most one statement."""

    labels: tuple[Label, ...] = ()
    statement: Statement | None = None


EMPTY_LINE = Line()
