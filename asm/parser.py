"""Parse one source line into `nodes`, turning every lark error into a located `SyntaxProblem`.

The grammar lives in ``grammar.lark`` (package data).  The LALR parser runs the `_Build`
transformer inline, on every reduction, so no intermediate parse tree is built and nothing here
recurses: a line with ten thousand nested parentheses cannot overflow the Python stack (it is
rejected by the depth limit instead).
"""

from __future__ import annotations

import functools
from importlib import resources

import lark
from lark import Lark, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from . import nodes

#: Expressions nested deeper than this are rejected (it keeps every recursive walk shallow).
MAX_DEPTH = 200
#: Integer values are limited to this many bits (arithmetic is otherwise unbounded).
MAX_BITS = 1024


class SyntaxProblem(Exception):
    """A problem found while parsing a line, at `column` (1-based)."""

    def __init__(self, message: str, column: int):
        super().__init__(message)
        self.message = message
        self.column = column


_ESCAPES = {"n": 10, "t": 9, "r": 13, "0": 0, "\\": 92, "'": 39, '"': 34}
_HEX = frozenset("0123456789abcdefABCDEF")


def _unescape(token: lark.Token, quote: str, what: str) -> list[int | str]:
    """Decode a quoted literal into a list of items: ``str`` characters and ``int`` byte values."""
    text = str(token)
    items: list[int | str] = []
    i, n = 1, len(text)
    while i < n:
        ch = text[i]
        if ch == quote:
            if i != n - 1:  # cannot happen with the grammar's patterns, but be safe
                raise SyntaxProblem(f"unexpected {quote} in {what}", token.column + i)
            return items
        if ch != "\\":
            items.append(ch)
            i += 1
            continue
        if i + 1 >= n:
            break
        esc = text[i + 1]
        if esc == "x":
            digits = text[i + 2 : i + 4]
            if len(digits) != 2 or not set(digits) <= _HEX:
                raise SyntaxProblem(
                    "bad escape: \\x needs two hexadecimal digits", token.column + i
                )
            items.append(int(digits, 16))
            i += 4
        elif esc in _ESCAPES:
            items.append(_ESCAPES[esc])
            i += 2
        else:
            shown = esc if esc.isprintable() else f"U+{ord(esc):04X}"
            raise SyntaxProblem(
                f"bad escape '\\{shown}' in {what} (use \\n \\t \\r \\0 \\\\ \\' \\\" or \\xHH)",
                token.column + i,
            )
    raise SyntaxProblem(f"unterminated {what}", token.column)


#: Binary operators and their binding strength (higher binds tighter).
_PRECEDENCE = {"|": 1, "^": 2, "&": 3, "<<": 4, ">>": 4, "+": 5, "-": 5, "*": 6, "/": 6, "%": 6}


def _depth(*children) -> int:
    depth = 1 + max(child.depth for child in children)
    if depth > MAX_DEPTH:
        raise SyntaxProblem(f"expression nested too deeply (more than {MAX_DEPTH} levels)",
                            children[0].column)
    return depth


def parse_number(text: str, column: int) -> int:
    """The value of a NUMBER token: decimal, ``0x`` hex, ``0b`` binary or ``0o`` octal."""
    prefix = text[:2].lower()
    base, digits, name = {"0x": (16, text[2:], "hexadecimal"), "0b": (2, text[2:], "binary"),
                          "0o": (8, text[2:], "octal")}.get(prefix, (10, text, "decimal"))
    if len(digits) > MAX_BITS // 3 + 2:
        raise SyntaxProblem(f"number too large (values are limited to {MAX_BITS} bits)", column)
    if not digits or "_" in digits:
        raise SyntaxProblem(f"invalid {name} number '{text}'", column)
    try:
        value = int(digits, base)
    except ValueError:
        raise SyntaxProblem(f"invalid {name} number '{text}'", column) from None
    if value.bit_length() > MAX_BITS:
        raise SyntaxProblem(f"number too large (values are limited to {MAX_BITS} bits)", column)
    return value


class _Build(Transformer):
    """Build `nodes` from the parser's reductions (run inline by the LALR parser)."""

    # --- expressions ---
    def number(self, children):
        (token,) = children
        return nodes.Number(parse_number(str(token), token.column), token.column)

    def char(self, children):
        (token,) = children
        items = _unescape(token, "'", "character literal")
        if len(items) != 1:
            raise SyntaxProblem(
                "empty character literal" if not items
                else "character literal must contain exactly one character", token.column)
        (item,) = items
        return nodes.Number(item if isinstance(item, int) else ord(item), token.column)

    def symbol(self, children):
        (token,) = children
        return nodes.Symbol(str(token), token.column)

    def here(self, children):
        (token,) = children
        return nodes.Here(token.column)

    def paren(self, children):
        lpar, inner, _ = children
        # Start the node at "(" so a caret under the operand points at its first character.
        if isinstance(inner, nodes.Binary):
            return nodes.Binary(inner.op, inner.left, inner.right, lpar.column, inner.op_column,
                                inner.depth)
        if isinstance(inner, nodes.Unary):
            return nodes.Unary(inner.op, inner.operand, lpar.column, inner.depth)
        return inner

    def unary(self, children):
        *ops, node = children
        for op in reversed(ops):
            node = nodes.Unary(str(op), node, op.column, _depth(node))
        return node

    def expr(self, children):
        """Apply operator precedence to ``operand (op operand)*`` (shunting-yard, no recursion)."""
        if len(children) == 1:
            return children[0]
        operands = [children[0]]
        operators: list[lark.Token] = []

        def reduce() -> None:
            op = operators.pop()
            right = operands.pop()
            left = operands.pop()
            operands.append(nodes.Binary(str(op), left, right, left.column, op.column,
                                         _depth(left, right)))

        for index in range(1, len(children), 2):
            op = children[index]
            precedence = _PRECEDENCE[op]
            while operators and _PRECEDENCE[operators[-1]] >= precedence:  # left-associative
                reduce()
            operators.append(op)
            operands.append(children[index + 1])
        while operators:
            reduce()
        return operands[0]

    # --- arguments ---
    def memory(self, children):
        lsqb, expr, _ = children
        return nodes.Memory(expr, lsqb.column, _depth(expr))

    def string(self, children):
        (token,) = children
        items = _unescape(token, '"', "string")
        out = bytearray()
        for item in items:
            if isinstance(item, int):
                out.append(item)
            else:
                try:
                    out += item.encode("utf-8")
                except UnicodeEncodeError:
                    raise SyntaxProblem("string contains an invalid character",
                                        token.column) from None
        return nodes.String(bytes(out), token.column)

    def arguments(self, children):
        return tuple(child for child in children
                     if not (isinstance(child, lark.Token) and child.type == "COMMA"))

    # --- statements ---
    def label(self, children):
        name, _ = children
        return nodes.Label(str(name), name.column)

    def operation(self, children):
        name, arguments = children
        return nodes.Operation(str(name), name.column, arguments or ())

    def macro(self, children):
        keyword, *names = (child for child in children
                           if child is not None and child.type != "COMMA")
        return nodes.Operation(str(keyword), keyword.column,
                               tuple(nodes.Symbol(str(name), name.column) for name in names))

    def assignment(self, children):
        name, _, expr = children
        return nodes.Assignment(str(name), name.column, expr)

    def start(self, children):
        if children and not isinstance(children[-1], nodes.Label):
            return nodes.Line(tuple(children[:-1]), children[-1])
        return nodes.Line(tuple(children), None)


@functools.cache
def _parser() -> Lark:
    grammar = resources.files(__package__).joinpath("grammar.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", lexer="contextual", transformer=_Build(),
                maybe_placeholders=True)


#: How terminals are named in "expected ..." messages; groups collapse into one phrase.
_EXPR_START = frozenset({"NUMBER", "CHAR", "NAME", "LOCAL", "DOT", "LPAR", "MINUS", "PLUS",
                         "TILDE"})
_OPERATORS = frozenset({"PIPE", "CARET", "AMP", "SHL", "SHR", "PLUS", "MINUS", "STAR", "SLASH",
                        "PERCENT"})
_NAMES = {"MACRO": "'.macro'", "NAME": "a name", "LOCAL": "a local name", "NUMBER": "a number",
          "CHAR": "a character literal", "STRING": "a string", "$END": "end of line"}


def _describe_expected(expected: set[str]) -> str:
    expected = set(expected)
    phrases = []
    if _EXPR_START <= expected:
        expected -= _EXPR_START
        phrases.append("an operand" if {"LSQB", "STRING"} <= expected else "an expression")
        expected -= {"LSQB", "STRING"} if phrases[-1] == "an operand" else set()
    if {"NAME", "LOCAL", "MACRO"} <= expected:
        expected -= {"NAME", "LOCAL", "MACRO"}
        phrases.append("a statement")
    if len(expected & _OPERATORS) >= 5:
        expected -= _OPERATORS
        phrases.append("an operator")
    terminals = {t.name: t for t in _parser().terminals}
    for name in sorted(expected, key=lambda n: (n == "$END", n)):
        if name in _NAMES:
            phrases.append(_NAMES[name])
        elif name in terminals and isinstance(terminals[name].pattern, lark.lexer.PatternStr):
            phrases.append(f"'{terminals[name].pattern.value}'")
        else:
            phrases.append(name.lower())
    if not phrases:
        return ""
    if len(phrases) == 1:
        return phrases[0]
    return ", ".join(phrases[:-1]) + " or " + phrases[-1]


def _describe_token(token: lark.Token) -> str:
    text = str(token)
    if len(text) > 40:
        text = text[:37] + "..."
    kind = {"NAME": "name ", "LOCAL": "name ", "NUMBER": "number ", "STRING": "string ",
            "CHAR": "character literal "}.get(token.type, "")
    return f"{kind}'{text}'"


def parse_line(text: str) -> nodes.Line:
    """Parse one line (without its newline).  Raises `SyntaxProblem`."""
    try:
        return _parser().parse(text)
    except SyntaxProblem:
        raise
    except UnexpectedCharacters as error:
        column = error.column if isinstance(error.column, int) and error.column > 0 else 1
        ch = text[column - 1] if column - 1 < len(text) else ""
        shown = f"'{ch}'" if ch.isprintable() and ch else f"U+{ord(ch):04X}" if ch else "input"
        if ch in "'\"":
            raise SyntaxProblem("unterminated " + ("string" if ch == '"' else "character literal"),
                                column) from None
        raise SyntaxProblem(f"unexpected character {shown}", column) from None
    except UnexpectedToken as error:
        token = error.token
        expected = _describe_expected(getattr(error, "accepts", None) or error.expected)
        suffix = f", expected {expected}" if expected else ""
        if token.type == "$END":
            column = getattr(token, "end_column", None) or len(text.rstrip()) + 1
            raise SyntaxProblem(f"unexpected end of line{suffix}", column) from None
        raise SyntaxProblem(f"unexpected {_describe_token(token)}{suffix}",
                            token.column or 1) from None
    except UnexpectedInput as error:  # any other lark complaint
        raise SyntaxProblem("syntax error", getattr(error, "column", 1) or 1) from None
