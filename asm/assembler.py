"""The two-pass assembler.

An `Assembler` object holds all the state of one assembly (nothing lives in module globals):

* **Reading.**  Each file is decoded and parsed line by line (`parser.parse_line`), so a syntax
  error on one line does not stop the others from being checked.  ``.include`` splices in another
  file and a macro use splices in the macro's body, with its parameters substituted at the node
  level; the result is one stream of statements.
* **Pass 1 (layout)** walks that stream: it defines labels, records ``.equ`` constants, and gives
  every instruction and data statement its place.  Instruction sizes come from the instruction
  table (`Instruction.length`), so no operand needs to be evaluated here; only ``.org``,
  ``.space`` and ``.align`` arguments must be known when they are reached.  The ``.data``
  section, unless placed by ``.org``, starts after the text section (aligned to 4 KiB), so its
  labels get their address at the end of pass 1.
* **Pass 2 (encoding)** evaluates every operand with all symbols known and encodes it with
  `toyvisor.isa.encoding.encode`.

Every problem becomes a `Diagnostic` and assembly continues, so one run reports all the errors of
a program; if there are any, `Assembler.assemble` raises a single `AssemblyError` at the end.
"""

from __future__ import annotations

import importlib.util

import difflib
import functools
import os
import re
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path

import attrs

from toyvisor.isa.encoding import OperandError, encode
from toyvisor.isa.files import read_bounded
from toyvisor.isa.spec import CONTROL_REGISTERS, M32, NUM_REGS, PLATFORM_SYMBOLS, SP
from toyvisor.isa.table import BY_MNEMONIC, Instruction, Kind

from . import nodes
from .errors import AssemblyError, Diagnostic
from .image import ADDRESS_SPACE, Image, Segment, SourceLocation
from .parser import MAX_BITS, MAX_DEPTH, SyntaxProblem, parse_line

# --- limits: no input, however large or malicious, may exhaust memory, time or the stack ----------
#: The total size of all segments.
MAX_IMAGE_SIZE = 64 * 1024 * 1024
#: The size of one source file.
MAX_SOURCE_SIZE = 16 * 1024 * 1024
MAX_INCLUDE_DEPTH = 32
MAX_MACRO_DEPTH = 64
#: Statements after include and macro expansion (catches exponential macro expansion).
MAX_STATEMENTS = 250_000
#: Assembly stops after this many errors.
MAX_ERRORS = 100
#: Nesting of an expression after macro arguments are substituted into it.
MAX_EXPANDED_DEPTH = 3 * MAX_DEPTH
#: Nodes of an expression after macro arguments are substituted into it: a macro that uses its
#: parameter twice doubles the expression per level, so a short chain of them would otherwise
#: build (and evaluate) millions of nodes.
MAX_EXPANDED_SIZE = 20_000
#: The alignment of the default ``.data`` section.
DATA_ALIGNMENT = 4096

REGISTERS = {**{f"r{i}": i for i in range(NUM_REGS)}, "sp": SP}
_RESERVED = frozenset(REGISTERS) | frozenset(CONTROL_REGISTERS)
_WORD = struct.Struct("<I")
#: Marks a macro-local label made unique per expansion (".loop" -> ".loop~3").
_UNIQUE = "~"
_UNIQUE_SUFFIX = re.compile(r"~\d+")
DIRECTIVES = (".org", ".text", ".data", ".word", ".byte", ".ascii", ".asciz", ".space",
              ".align", ".equ", ".entry", ".include", ".macro", ".endm")


def default_include_paths() -> tuple[Path, ...]:
    """Directories always searched by ``.include``: the installed guest library, if present."""
    library = guests_directory() / "lib"
    return (library,) if library.is_dir() else ()


def guests_directory() -> Path:
    """Where the bundled guests live: the repository's ``guests/``, installed as toyvisor.guests."""
    spec = importlib.util.find_spec("toyvisor.guests")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(__file__).resolve().parents[1] / "guests"


# ----------------------------------------------------------------------------------------------
# Sources and locations
# ----------------------------------------------------------------------------------------------


@attrs.frozen(eq=False)
class Source:
    """A source file: its display name, its lines (for messages) and where it lives."""

    name: str
    lines: tuple[str, ...]
    directory: Path | None
    #: Lines that could not be decoded (reported already; assembled as empty lines).
    bad_lines: frozenset[int] = frozenset()


@attrs.frozen(eq=False)
class MacroUse:
    name: str
    where: "Where"


@attrs.frozen(eq=False)
class Where:
    """A line of a source file, and the macro use that produced it (if it is a macro's body)."""

    source: Source
    line: int
    macro: MacroUse | None = None

    @property
    def text(self) -> str:
        return self.source.lines[self.line - 1]

    def describe(self) -> str:
        return f"{self.source.name}:{self.line}"


@attrs.frozen
class ListingLine:
    """One statement as the listing shows it.

    `address` is ``None`` for statements without a location (constants, directives).
    `macro_depth` is how deep in macro expansions the line is (0 for a line of a file).
    """

    address: int | None
    data: bytes
    file: str
    line: int
    text: str
    macro_depth: int = 0


@attrs.frozen
class Assembly:
    """The result of a successful assembly."""

    image: Image
    #: Every statement in assembly order, for `toyvisor.asm.listing`.
    lines: tuple[ListingLine, ...]
    #: The display names of every file read, the main file first.
    files: tuple[str, ...]


# ----------------------------------------------------------------------------------------------
# Internal state objects
# ----------------------------------------------------------------------------------------------


class _Chunk:
    """A contiguous run of one section, starting at `base` (``None``: the default data base, known
    at the end of pass 1)."""

    __slots__ = ("section", "base", "size", "where", "column", "max_align", "data", "reported")

    def __init__(self, section: str, base: int | None, where: Where | None, column: int = 1):
        self.section = section
        self.base = base
        self.size = 0
        self.where = where
        self.column = column
        self.max_align = 1
        self.data = bytearray()
        self.reported = False


_UNRESOLVED, _VISITING, _RESOLVED, _FAILED = range(4)


class _Symbol:
    """A label (`chunk` + `offset`) or a constant (`expr`, evaluated once, lazily)."""

    __slots__ = ("name", "is_label", "where", "column", "chunk", "offset", "expr", "scope", "state",
                 "value")

    def __init__(self, name, is_label, where, column, chunk, offset, expr=None, scope=""):
        self.name = name
        self.is_label = is_label
        self.where = where
        self.column = column
        self.chunk = chunk
        self.offset = offset
        self.expr = expr
        self.scope = scope
        self.state = _UNRESOLVED
        self.value = None


class _Item:
    """A statement that occupies bytes, placed by pass 1 and encoded by pass 2."""

    __slots__ = ("kind", "where", "op", "chunk", "offset", "size", "scope", "definition", "data")

    def __init__(self, kind, where, op, chunk, offset, size, scope, definition=None, data=b""):
        self.kind = kind
        self.where = where
        self.op = op
        self.chunk = chunk
        self.offset = offset
        self.size = size
        self.scope = scope
        self.definition = definition
        self.data = data

    @property
    def address(self) -> int:
        return self.chunk.base + self.offset


@attrs.frozen(eq=False)
class _Macro:
    name: str
    params: tuple[str, ...]
    body: tuple[tuple[int, nodes.Line], ...]
    source: Source
    where: Where
    locals: frozenset[str]


class _Unknown(Exception):
    """Pass 1: the expression uses something whose value is not known yet."""

    def __init__(self, name: str):
        self.name = name


class _Failed(Exception):
    """The expression uses a constant whose definition has an error (reported there)."""


class _NeedConstant(Exception):
    """The expression uses a constant not evaluated yet (the caller evaluates it, then retries)."""

    def __init__(self, symbol: _Symbol):
        self.symbol = symbol


class _ExprError(Exception):
    def __init__(self, message: str, column: int, where: Where | None = None):
        self.message = message
        self.column = column
        self.where = where


class _Stop(Exception):
    """Stop assembling (too many errors, or a runaway expansion); `note` says why, if needed."""

    def __init__(self, note: str | None = None):
        self.note = note


def _is_file(path: Path) -> bool:
    """Whether an include candidate is there and not a directory (a FIFO or device counts, so
    the reader refuses it by name instead of the search reporting it missing)."""
    try:
        return path.exists() and not path.is_dir()
    except (OSError, ValueError):  # e.g. a name too long for the file system
        return False


def _display(name: str) -> str:
    """A symbol name as the user wrote it (without the macro-expansion suffix)."""
    return _UNIQUE_SUFFIX.sub("", name)


def _unwrap(node, where: Where) -> tuple[object, Where]:
    """See through macro-argument wrappers: the node itself and the line it was written on."""
    while isinstance(node, nodes.Expanded):
        where = node.where
        node = node.inner
    return node, where


def _suggest(name: str, candidates) -> str:
    matches = difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.6)
    if not matches:
        return ""
    return " (did you mean " + " or ".join(f"'{m}'" for m in matches) + "?)"


@functools.lru_cache(maxsize=8192)
def _cached_parse(text: str) -> nodes.Line:
    return parse_line(text)


def _parse(text: str) -> nodes.Line:
    # Parsed lines are immutable, so identical lines ("ret", "push r1") are parsed once.
    if len(text) > 200:
        return parse_line(text)
    return _cached_parse(text)


# ----------------------------------------------------------------------------------------------
# The assembler
# ----------------------------------------------------------------------------------------------


class Assembler:
    """Assembles one program; create a new one per program."""

    def __init__(self, include_paths: Sequence[str | os.PathLike] = ()):
        self.include_paths = tuple(Path(p) for p in include_paths) + default_include_paths()
        self.diagnostics: list[Diagnostic] = []
        self.symbols: dict[str, _Symbol] = {}
        self.macros: dict[str, _Macro] = {}
        self.items: list[_Item] = []
        self.chunks: list[_Chunk] = []
        self.listing: list[tuple[Where, _Chunk, int, int, bool]] = []
        self.files: list[str] = []
        self.scope = ""
        self.entry: tuple[Where, nodes.Operation, str, _Chunk, int] | None = None
        self.total_size = 0
        self.statements = 0
        self.expansions = 0
        self._include_stack: list[Path] = []
        #: Files that said `.once`: a later `.include` of one of them includes nothing.
        self._once: set[Path] = set()
        self._macro_stack: list[str] = []
        self._size_reported = False
        self._sections: dict[str, _Chunk] = {}
        self._data_chunk: _Chunk | None = None
        self.section = ".text"
        self._used = False

    # ------------------------------------------------------------------------------------------
    # Entry points
    # ------------------------------------------------------------------------------------------

    def assemble(self, text: str | bytes, filename: str = "<string>") -> Assembly:
        """Assemble the program `text` (named `filename` in messages); raises `AssemblyError`."""
        if self._used:
            raise RuntimeError("an Assembler assembles one program; create a new one")
        self._used = True
        if not (filename.startswith("<") and filename.endswith(">")):
            path = Path(filename)
            directory = path.parent
            try:
                self._include_stack.append(path.resolve())
            except (OSError, RuntimeError, ValueError):
                pass
        else:
            directory = Path.cwd()
        try:
            source = self._decode(filename, text, directory)
            self._start_sections()
            for where, line in self._file_statements(source):
                self._pass1(where, line)
            self._finish_layout()
            self._evaluate_constants()
            self._pass2()
            entry = self._entry_point()
        except _Stop as stop:
            diagnostics = self._sorted_diagnostics()
            if stop.note:
                diagnostics.append(Diagnostic(filename, 0, 0, stop.note, "note"))
            raise AssemblyError(diagnostics) from None
        if self.diagnostics:
            raise AssemblyError(self._sorted_diagnostics())
        return self._result(entry)

    def assemble_file(self, path: str | os.PathLike) -> Assembly:
        """Assemble the file at `path`; raises `AssemblyError` (also if it cannot be read)."""
        name = os.fspath(path)
        try:
            data = self._read(Path(path))
        except OSError as error:
            raise AssemblyError([Diagnostic(
                name, 0, 0, f"cannot read file: {error.strerror or error}")]) from None
        except ValueError as error:
            raise AssemblyError([Diagnostic(name, 0, 0, str(error))]) from None
        return self.assemble(data, name)

    # ------------------------------------------------------------------------------------------
    # Diagnostics
    # ------------------------------------------------------------------------------------------

    def _error(self, where: Where, column: int, message: str) -> None:
        use = where.macro
        notes = []
        while use is not None:
            notes.append(f"in macro '{use.name}' used at {use.where.describe()}")
            use = use.where.macro
        if notes:
            message += " (" + ", ".join(notes) + ")"
        self.diagnostics.append(Diagnostic(where.source.name, where.line, max(column, 1), message,
                                           "error", where.text))
        if len(self.diagnostics) >= MAX_ERRORS:
            raise _Stop(f"too many errors ({MAX_ERRORS}), stopping")

    def _error_at(self, where: Where, node, message: str) -> None:
        """Report at `node`, which may be a macro argument written on another line."""
        node, where = _unwrap(node, where)
        self._error(where, node.column, message)

    def _sorted_diagnostics(self) -> list[Diagnostic]:
        order = {name: index for index, name in enumerate(self.files)}
        return sorted(self.diagnostics,
                      key=lambda d: (order.get(d.file, len(order)), d.line, d.column))

    # ------------------------------------------------------------------------------------------
    # Reading files
    # ------------------------------------------------------------------------------------------

    @staticmethod
    def _read(path: Path) -> bytes:
        return read_bounded(path, MAX_SOURCE_SIZE)

    def _decode(self, name: str, text: str | bytes, directory: Path | None) -> Source:
        """Split a file into lines; lines that are not valid UTF-8 are reported and left empty."""
        self.files.append(name)
        bad: dict[int, tuple[int, str]] = {}
        if isinstance(text, (bytes, bytearray, memoryview)):
            raw = bytes(text)
            if len(raw) > MAX_SOURCE_SIZE:
                raw = raw[:MAX_SOURCE_SIZE]
                bad[raw.count(b"\n") + 1] = (1, f"file too large (more than {MAX_SOURCE_SIZE} "
                                                "bytes); the rest is ignored")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                lines = []
                for number, chunk in enumerate(raw.split(b"\n"), 1):
                    try:
                        lines.append(chunk.decode("utf-8"))
                    except UnicodeDecodeError as error:
                        shown = chunk.decode("utf-8", errors="replace")
                        column = len(chunk[:error.start].decode("utf-8", errors="replace")) + 1
                        bad.setdefault(number, (column, f"invalid UTF-8 byte "
                                                        f"{chunk[error.start]:#04x}"))
                        lines.append(shown)
                text = "\n".join(lines)
        if text.startswith("\ufeff"):
            text = text[1:]
        lines = tuple(line[:-1] if line.endswith("\r") else line for line in text.split("\n"))
        source = Source(name, lines, directory, frozenset(bad))
        for number, (column, message) in sorted(bad.items()):
            self._error(Where(source, min(number, len(lines))), column, message)
        return source

    def _file_statements(self, source: Source) -> Iterator[tuple[Where, nodes.Line]]:
        """The statements of a file, with includes and macros expanded; collects macro bodies."""
        definition: list | None = None  # [name, params, where, body] of an open .macro
        for number, text in enumerate(source.lines, 1):
            stripped = text.lstrip()
            if not stripped or stripped[0] == ";" or number in source.bad_lines:
                continue
            where = Where(source, number)
            try:
                line = _parse(text)
            except SyntaxProblem as problem:
                self._error(where, problem.column, problem.message)
                if definition is not None and re.match(r"\s*\.endm\b", text, re.IGNORECASE):
                    definition = None  # do not swallow the rest of the file
                continue
            statement = line.statement
            name = statement.name.lower() if isinstance(statement, nodes.Operation) else None
            if definition is not None:
                if name == ".endm":
                    self._check_bare(where, line, statement)
                    self._define_macro(*definition)
                    definition = None
                elif name == ".macro":
                    self._error(where, statement.column, "a macro cannot be defined inside a "
                                                         "macro (missing .endm?)")
                else:
                    definition[3].append((number, line))
                continue
            if name == ".macro":
                for label in line.labels:
                    self._error(where, label.column, "a label cannot be put on a .macro line")
                definition = [statement, self._macro_params(where, statement), where, []]
                continue
            if name == ".endm":
                self._error(where, statement.column, ".endm without .macro")
                continue
            yield from self._expand(where, line)
        if definition is not None:
            where, statement = definition[2], definition[0]
            self._error(where, statement.column, "missing .endm: the macro runs to the end of "
                                                 "the file")

    def _check_bare(self, where: Where, line: nodes.Line, statement: nodes.Operation) -> None:
        for label in line.labels:
            self._error(where, label.column, f"a label cannot be put on a {statement.name} line")
        if statement.arguments:
            self._error_at(where, statement.arguments[0],
                           f"{statement.name.lower()} takes no arguments")

    def _expand(self, where: Where, line: nodes.Line) -> Iterator[tuple[Where, nodes.Line]]:
        """Yield a statement, or the statements of the file it includes or the macro it uses."""
        self.statements += 1
        if self.statements > MAX_STATEMENTS:
            self._error(where, 1, f"more than {MAX_STATEMENTS} statements after macro expansion")
            raise _Stop
        statement = line.statement
        if isinstance(statement, nodes.Operation):
            name = statement.name.lower()
            macro = self.macros.get(name)
            if name == ".once":
                yield from self._once_directive(where, line, statement)
                return
            if name == ".include" or macro is not None:
                yield where, nodes.Line(line.labels, None)  # its labels, and a listing line
                if macro is not None:
                    yield from self._expand_macro(where, statement, macro)
                else:
                    yield from self._include(where, statement)
                return
        yield where, line

    # --- .include ---

    def _include(self, where: Where, op: nodes.Operation) -> Iterator[tuple[Where, nodes.Line]]:
        arguments = op.arguments
        string, string_where = _unwrap(arguments[0], where) if len(arguments) == 1 else (None,
                                                                                         where)
        if not isinstance(string, nodes.String):
            self._error(where, op.column, '.include takes one string: .include "file.s"')
            return
        try:
            name = string.value.decode("utf-8")
        except UnicodeDecodeError:
            self._error(string_where, string.column, "the file name is not valid UTF-8")
            return
        if not name or "\0" in name:
            self._error(string_where, string.column, "invalid file name")
            return
        candidates = self._include_candidates(where, name)
        found = next((c for c in candidates if _is_file(c)), None)
        if found is None:
            searched = ", ".join(dict.fromkeys(str(c.parent) for c in candidates)) or "nowhere"
            self._error(string_where, string.column,
                        f"cannot find include file '{name}' (searched: {searched})")
            return
        try:
            resolved = found.resolve()
        except (OSError, RuntimeError) as error:
            self._error(string_where, string.column, f"cannot include '{name}': {error}")
            return
        if resolved in self._once:
            return
        if resolved in self._include_stack:
            chain = [p.name for p in self._include_stack[self._include_stack.index(resolved):]]
            self._error(string_where, string.column,
                        f"'{name}' is included recursively ({' -> '.join(chain + [found.name])})")
            return
        if len(self._include_stack) >= MAX_INCLUDE_DEPTH:
            self._error(string_where, string.column,
                        f"includes nested too deeply (more than {MAX_INCLUDE_DEPTH})")
            return
        display = os.path.normpath(found)
        try:
            data = self._read(found)
        except OSError as error:
            self._error(string_where, string.column,
                        f"cannot read include file '{display}': {error.strerror or error}")
            return
        except ValueError as error:
            self._error(string_where, string.column, f"cannot include '{display}': {error}")
            return
        source = self._decode(display, data, found.parent)
        self._include_stack.append(resolved)
        try:
            yield from self._file_statements(source)
        finally:
            self._include_stack.pop()

    def _once_directive(self, where: Where, line: nodes.Line,
                        op: nodes.Operation) -> Iterator[tuple[Where, nodes.Line]]:
        # Like C's `#pragma once`: a file of macros that two others include (a kernel and a
        # library it includes) would otherwise define every macro twice.
        self._check_bare(where, line, op)
        if where.macro is not None:
            self._error(where, op.column, ".once belongs in a file, not in a macro")
        elif self._include_stack:
            self._once.add(self._include_stack[-1])
        yield where, nodes.Line((), None)

    def _include_candidates(self, where: Where, name: str) -> list[Path]:
        path = Path(name)
        if path.is_absolute():
            return [path]
        directories = []
        if where.source.directory is not None:
            directories.append(where.source.directory)
        directories.extend(self.include_paths)
        return [directory / path for directory in directories]

    # --- macros ---

    def _macro_params(self, where: Where, op: nodes.Operation) -> tuple[str, ...] | None:
        """Check a .macro line; returns the parameter names (None if the line is unusable)."""
        if not op.arguments:
            self._error(where, op.column, ".macro needs a name: .macro NAME param, ...")
            return None
        params = []
        for index, argument in enumerate(op.arguments):
            node, _ = _unwrap(argument, where)
            if not isinstance(node, nodes.Symbol) or "." in node.name:
                what = "macro name" if index == 0 else "macro parameter"
                self._error_at(where, argument, f"expected a {what} (an identifier)")
                return None
            name = node.name
            if index == 0:
                if name.lower() in BY_MNEMONIC:
                    self._error_at(where, argument, f"a macro cannot be named '{name}': that is an "
                                                    "instruction")
                    return None
                params.append(name.lower())
                continue
            if name.lower() in _RESERVED:
                self._error_at(where, argument, f"'{name}' is a register name and cannot be a "
                                                "macro parameter")
                return None
            if name in params[1:]:
                self._error_at(where, argument, f"duplicate macro parameter '{name}'")
                return None
            params.append(name)
        return tuple(params)

    def _define_macro(self, op: nodes.Operation, params, where: Where, body) -> None:
        if params is None:
            return
        name, *parameters = params
        previous = self.macros.get(name)
        if previous is not None:
            self._error(where, op.arguments[0].column,
                        f"macro '{name}' is already defined (first definition at "
                        f"{previous.where.describe()})")
            return
        local_labels = frozenset(label.name for _, line in body for label in line.labels
                                 if label.name.startswith("."))
        self.macros[name] = _Macro(name, tuple(parameters), tuple(body), where.source, where,
                                   local_labels)

    def _expand_macro(self, where: Where, op: nodes.Operation,
                      macro: _Macro) -> Iterator[tuple[Where, nodes.Line]]:
        if macro.name in self._macro_stack:
            chain = " -> ".join(self._macro_stack[self._macro_stack.index(macro.name):]
                                + [macro.name])
            self._error(where, op.column, f"macro '{macro.name}' is used recursively ({chain})")
            return
        if len(self._macro_stack) >= MAX_MACRO_DEPTH:
            self._error(where, op.column,
                        f"macros nested too deeply (more than {MAX_MACRO_DEPTH})")
            return
        if len(op.arguments) != len(macro.params):
            expected = ", ".join(macro.params) or "no arguments"
            self._error(where, op.column,
                        f"macro '{macro.name}' takes {len(macro.params)} argument(s) "
                        f"({expected}), got {len(op.arguments)}")
            return
        self.expansions += 1
        substitution = _Substitution(
            {param: nodes.Expanded(argument, where)
             for param, argument in zip(macro.params, op.arguments)},
            {name: f"{name}{_UNIQUE}{self.expansions}" for name in macro.locals},
        )
        use = MacroUse(macro.name, where)
        self._macro_stack.append(macro.name)
        try:
            for number, line in macro.body:
                body_where = Where(macro.source, number, use)
                try:
                    expanded = substitution.line(line)
                except _ExprError as error:
                    self._error(body_where, error.column, error.message)
                    continue
                yield from self._expand(body_where, expanded)
        finally:
            self._macro_stack.pop()

    # ------------------------------------------------------------------------------------------
    # Pass 1: layout
    # ------------------------------------------------------------------------------------------

    def _start_sections(self) -> None:
        text = _Chunk(".text", 0, None)
        self._data_chunk = _Chunk(".data", None, None)
        self.chunks = [text, self._data_chunk]
        self._sections = {".text": text, ".data": self._data_chunk}

    @property
    def _chunk(self) -> _Chunk:
        return self._sections[self.section]

    def _here(self) -> int | None:
        chunk = self._chunk
        return None if chunk.base is None else chunk.base + chunk.size

    def _pass1(self, where: Where, line: nodes.Line) -> None:
        for label in line.labels:
            self._define_label(where, label)
        statement = line.statement
        chunk, offset = self._chunk, self._chunk.size
        if isinstance(statement, nodes.Assignment):
            self._define_constant(where, statement.name, statement.column, statement.expr)
        elif isinstance(statement, nodes.Operation):
            name = statement.name.lower()
            if name.startswith("."):
                handler = _DIRECTIVE_HANDLERS.get(name)
                if handler is None:
                    self._error(where, statement.column, f"unknown directive '{statement.name}'"
                                + _suggest(name, DIRECTIVES))
                else:
                    handler(self, where, statement)
            else:
                definition = BY_MNEMONIC.get(name)
                if definition is None:
                    self._error(where, statement.column, f"unknown instruction '{statement.name}'"
                                + _suggest(name, [*BY_MNEMONIC, *self.macros]))
                else:
                    self._place(where, "instruction", statement, definition.length,
                                definition=definition)
        if self._chunk is not chunk:  # .org / .text / .data: list the line at its new place
            chunk, offset = self._chunk, self._chunk.size
        size = chunk.size - offset
        self.listing.append((where, chunk, offset, size,
                             bool(line.labels) or size > 0))

    # --- symbols ---

    def _check_name(self, where: Where, name: str, column: int, what: str) -> str | None:
        """The full name of a symbol being defined (local names get their scope), or None."""
        if "." in name[1:]:
            self._error(where, column, f"a {what} name cannot contain '.' (only a local name "
                                       "starts with one)")
            return None
        if name.lower() in _RESERVED:
            self._error(where, column, f"'{name}' is a register name and cannot be a {what}")
            return None
        if name in PLATFORM_SYMBOLS:
            self._error(where, column, f"'{name}' is a predefined platform constant "
                                       f"(= {PLATFORM_SYMBOLS[name]:#x}) and cannot be redefined")
            return None
        full = self.scope + name if name.startswith(".") else name
        previous = self.symbols.get(full)
        if previous is not None:
            self._error(where, column, f"'{_display(name)}' is already defined (first definition "
                                       f"at {previous.where.describe()}:{previous.column})")
            return None
        return full

    def _define_label(self, where: Where, label: nodes.Label) -> None:
        full = self._check_name(where, label.name, label.column, "label")
        if not label.name.startswith("."):
            self.scope = label.name  # even if it is a duplicate: keep local labels sensible
        if full is not None:
            chunk = self._chunk
            self.symbols[full] = _Symbol(full, True, where, label.column, chunk, chunk.size)

    def _define_constant(self, where: Where, name: str, column: int, expr) -> None:
        full = self._check_name(where, name, column, "constant")
        if full is not None:
            chunk = self._chunk
            self.symbols[full] = _Symbol(full, False, where, column, chunk, chunk.size, expr,
                                         self.scope)

    # --- placing bytes ---

    def _place(self, where: Where, kind: str, op: nodes.Operation, size: int, **extra) -> None:
        chunk = self._chunk
        if self.total_size + size > MAX_IMAGE_SIZE:
            if not self._size_reported:
                self._size_reported = True
                self._error(where, op.column, f"the program is too large (more than "
                                              f"{MAX_IMAGE_SIZE // (1024 * 1024)} MiB)")
            return
        if chunk.base is not None and chunk.base + chunk.size + size > ADDRESS_SPACE:
            if not chunk.reported:
                chunk.reported = True
                self._error(where, op.column, "this statement goes beyond the end of the 32-bit "
                                              "address space")
            return
        if chunk.where is None:
            chunk.where, chunk.column = where, op.column
        self.items.append(_Item(kind, where, op, chunk, chunk.size, size, self.scope, **extra))
        chunk.size += size
        self.total_size += size

    def _layout_value(self, where: Where, node, what: str) -> int | None:
        """Evaluate an argument that decides the layout: it must be known now."""
        try:
            return self._evaluate(node, self.scope, self._here(), final=False)
        except _Unknown as unknown:
            if unknown.name == ".":
                reason = "the current address is not known yet in the .data section"
            else:
                reason = f"'{_display(unknown.name)}' is not defined before this point"
            self._error_at(where, node, f"{what} must be known when it is reached: {reason}")
        except _ExprError as error:
            self._error(error.where or where, error.column, error.message)
        except _Failed:
            pass
        return None

    def _expect_args(self, where: Where, op: nodes.Operation, low: int, high: int,
                     usage: str) -> bool:
        count = len(op.arguments)
        if low <= count <= high:
            return True
        node = op.arguments[high] if count > high else op
        self._error_at(where, node, f"wrong number of arguments: {usage}")
        return False

    # --- directives ---

    def _dir_org(self, where: Where, op: nodes.Operation) -> None:
        if not self._expect_args(where, op, 1, 1, ".org ADDRESS"):
            return
        value = self._layout_value(where, op.arguments[0], "the .org address")
        if value is None:
            return
        if not 0 <= value <= M32:
            self._error_at(where, op.arguments[0],
                           f".org address {value:#x} is outside the 32-bit address space")
            return
        chunk = _Chunk(self.section, value, where, op.column)
        self.chunks.append(chunk)
        self._sections[self.section] = chunk

    def _dir_section(self, where: Where, op: nodes.Operation) -> None:
        if op.arguments:
            self._error_at(where, op.arguments[0], f"{op.name.lower()} takes no arguments")
        self.section = op.name.lower()

    def _dir_data(self, where: Where, op: nodes.Operation, width: int) -> None:
        if not op.arguments:
            self._error(where, op.column, f"{op.name.lower()} needs at least one value")
            return
        for argument in op.arguments:
            node, _ = _unwrap(argument, where)
            if isinstance(node, (nodes.String, nodes.Memory)):
                what = "a string" if isinstance(node, nodes.String) else "a memory operand"
                hint = " (use .ascii for strings)" if isinstance(node, nodes.String) else ""
                self._error_at(where, argument, f"{op.name.lower()} takes expressions, not "
                                                f"{what}{hint}")
        self._place(where, "word" if width == 4 else "byte", op, width * len(op.arguments))

    def _dir_ascii(self, where: Where, op: nodes.Operation) -> None:
        terminate = op.name.lower() == ".asciz"
        if not op.arguments:
            self._error(where, op.column, f'{op.name.lower()} needs a string: .ascii "text"')
            return
        data = bytearray()
        for argument in op.arguments:
            node, _ = _unwrap(argument, where)
            if not isinstance(node, nodes.String):
                self._error_at(where, argument, f"{op.name.lower()} takes strings")
                continue
            data += node.value + (b"\0" if terminate else b"")
        self._place(where, "bytes", op, len(data), data=bytes(data))

    def _dir_space(self, where: Where, op: nodes.Operation) -> None:
        if not self._expect_args(where, op, 1, 2, ".space COUNT [, FILL]"):
            return
        count = self._layout_value(where, op.arguments[0], "the .space size")
        if count is None:
            return
        if count < 0:
            self._error_at(where, op.arguments[0], f".space size {count} is negative")
            return
        if count > MAX_IMAGE_SIZE:
            self._error_at(where, op.arguments[0], f".space size {count:#x} is larger than the "
                                                   f"largest image ({MAX_IMAGE_SIZE:#x} bytes)")
            return
        self._place(where, "space", op, count)

    def _dir_align(self, where: Where, op: nodes.Operation) -> None:
        if not self._expect_args(where, op, 1, 1, ".align N (a power of two)"):
            return
        alignment = self._layout_value(where, op.arguments[0], "the .align boundary")
        if alignment is None:
            return
        if alignment <= 0 or alignment & (alignment - 1) or alignment > 1 << 31:
            self._error_at(where, op.arguments[0],
                           f".align needs a power of two between 1 and 2^31, not {alignment}")
            return
        chunk = self._chunk
        position = chunk.size if chunk.base is None else chunk.base + chunk.size
        chunk.max_align = max(chunk.max_align, alignment)
        padding = -position % alignment
        if padding:
            self._place(where, "space", op, padding)

    def _dir_equ(self, where: Where, op: nodes.Operation) -> None:
        if not self._expect_args(where, op, 2, 2, ".equ NAME, VALUE"):
            return
        node, name_where = _unwrap(op.arguments[0], where)
        if not isinstance(node, nodes.Symbol):
            self._error_at(where, op.arguments[0], ".equ needs a name first: .equ NAME, VALUE")
            return
        self._define_constant(name_where, node.name, node.column, op.arguments[1])

    def _dir_entry(self, where: Where, op: nodes.Operation) -> None:
        if not self._expect_args(where, op, 1, 1, ".entry ADDRESS"):
            return
        if self.entry is not None:
            self._error(where, op.column, f"the entry point is already set (at "
                                          f"{self.entry[0].describe()})")
            return
        self.entry = (where, op, self.scope, self._chunk, self._chunk.size)

    def _dir_misplaced(self, where: Where, op: nodes.Operation) -> None:
        # .include/.macro/.endm are handled while reading; reaching here means a macro body
        # produced one in a form the reader did not expand (e.g. after a substitution error).
        self._error(where, op.column, f"{op.name.lower()} cannot be used here")

    # ------------------------------------------------------------------------------------------
    # End of pass 1: place the default data section and check for overlaps
    # ------------------------------------------------------------------------------------------

    def _finish_layout(self) -> None:
        text_end = max((c.base + c.size for c in self.chunks
                        if c.section == ".text" and c.size and c.base is not None), default=0)
        data = self._data_chunk
        alignment = max(DATA_ALIGNMENT, data.max_align)
        data.base = -text_end % alignment + text_end
        if data.base + data.size > ADDRESS_SPACE:
            self._error(data.where, data.column, "the .data section goes beyond the end of the "
                                                 "32-bit address space")
            data.size = 0
            self.items = [item for item in self.items if item.chunk is not data]
        furthest = None  # the chunk reaching furthest so far, in address order
        for chunk in sorted((c for c in self.chunks if c.size), key=lambda c: c.base):
            if furthest is not None and furthest.base + furthest.size > chunk.base:
                self._error(chunk.where, chunk.column, (
                    f"{_span(chunk)} overlaps {_span(furthest)} (placed at "
                    f"{furthest.where.describe()})"))
            if furthest is None or chunk.base + chunk.size > furthest.base + furthest.size:
                furthest = chunk
        for chunk in self.chunks:
            chunk.data = bytearray(chunk.size)

    # ------------------------------------------------------------------------------------------
    # Expressions
    # ------------------------------------------------------------------------------------------

    def _evaluate(self, node, scope: str, here: int | None, final: bool) -> int:
        """Evaluate an expression; constants it uses are evaluated first, without recursion."""
        while True:
            try:
                return self._eval(node, scope, here, final)
            except _NeedConstant as need:
                self._resolve(need.symbol, final)

    def _resolve(self, target: _Symbol, final: bool) -> None:
        """Evaluate the constant `target` and, first, the constants it depends on (a DFS with an
        explicit stack: a chain of ten thousand constants cannot overflow the Python stack).

        In pass 1 (`final` false) only successes are recorded; anything else is raised to the
        caller, and the constant is evaluated again (and its errors reported) after pass 1.
        """
        stack = [target]
        target.state = _VISITING
        while stack:
            symbol = stack[-1]
            try:
                value = self._eval(symbol.expr, symbol.scope, self._address_of(symbol), final)
            except _NeedConstant as need:
                dependency = need.symbol
                if dependency.state != _VISITING:
                    dependency.state = _VISITING
                    stack.append(dependency)
                    continue
                cycle = stack[stack.index(dependency):]
                if not final:
                    self._abandon(stack)
                    raise _Failed from None
                names = " -> ".join(_display(s.name) for s in cycle + [dependency])
                self._error(dependency.where, dependency.column,
                            f"circular definition: {names}")
                for member in cycle:
                    member.state = _FAILED
                del stack[len(stack) - len(cycle):]
                continue
            except _ExprError as error:
                if not final:
                    self._abandon(stack)
                    raise _Failed from None
                self._error(error.where or symbol.where, error.column, error.message)
                symbol.state = _FAILED
                stack.pop()
                continue
            except (_Failed, _Unknown):
                if not final:
                    self._abandon(stack)
                    raise
                symbol.state = _FAILED
                stack.pop()
                continue
            symbol.value = value
            symbol.state = _RESOLVED
            stack.pop()

    @staticmethod
    def _abandon(stack: list[_Symbol]) -> None:
        for symbol in stack:
            if symbol.state == _VISITING:
                symbol.state = _UNRESOLVED

    @staticmethod
    def _address_of(symbol: _Symbol) -> int | None:
        base = symbol.chunk.base
        return None if base is None else base + symbol.offset

    def _eval(self, node, scope: str, here: int | None, final: bool) -> int:
        kind = type(node)
        if kind is nodes.Number:
            return node.value
        if kind is nodes.Symbol:
            return self._symbol_value(node, scope, final)
        if kind is nodes.Binary:
            left = self._eval(node.left, scope, here, final)
            right = self._eval(node.right, scope, here, final)
            return _binary(node, left, right)
        if kind is nodes.Unary:
            value = self._eval(node.operand, scope, here, final)
            return -value if node.op == "-" else ~value if node.op == "~" else value
        if kind is nodes.Here:
            if here is None:
                raise _Unknown(".")
            return here
        if kind is nodes.Expanded:
            try:
                return self._eval(node.inner, scope, here, final)
            except _ExprError as error:
                if error.where is None:
                    error.where = node.where
                raise
        if kind is nodes.Memory:
            raise _ExprError("a memory operand cannot be used here", node.column)
        if kind is nodes.String:
            raise _ExprError("a string cannot be used here", node.column)
        raise AssertionError(f"unknown node {node!r}")

    def _symbol_value(self, node: nodes.Symbol, scope: str, final: bool) -> int:
        name = node.name
        full = scope + name if name[0] == "." else name
        symbol = self.symbols.get(full)
        if symbol is None:
            value = PLATFORM_SYMBOLS.get(name)
            if value is not None:
                return value
            if name.lower() in _RESERVED:
                raise _ExprError(f"register '{name}' cannot be used in an expression",
                                 node.column)
            if not final:
                raise _Unknown(name)
            raise _ExprError(f"undefined symbol '{_display(name)}'" + self._suggest_symbol(full),
                             node.column)
        if symbol.is_label:
            base = symbol.chunk.base
            if base is None:
                raise _Unknown(name)
            return base + symbol.offset
        if symbol.state == _RESOLVED:
            return symbol.value
        if symbol.state == _FAILED:
            raise _Failed
        raise _NeedConstant(symbol)

    def _suggest_symbol(self, name: str) -> str:
        candidates = [n for n in self.symbols if _UNIQUE not in n]
        if len(candidates) > 5000:
            return ""
        return _suggest(name, candidates)

    def _evaluate_constants(self) -> None:
        for symbol in list(self.symbols.values()):
            if not symbol.is_label and symbol.state == _UNRESOLVED:
                self._resolve(symbol, final=True)

    def _value(self, item_where: Where, node, scope: str, here: int) -> int | None:
        """Evaluate an operand in pass 2; report errors and return None on failure."""
        try:
            return self._evaluate(node, scope, here, final=True)
        except _ExprError as error:
            self._error(error.where or item_where, error.column, error.message)
        except (_Failed, _Unknown):
            pass
        return None

    # ------------------------------------------------------------------------------------------
    # Pass 2: encoding
    # ------------------------------------------------------------------------------------------

    def _pass2(self) -> None:
        for item in self.items:
            kind = item.kind
            if kind == "instruction":
                self._encode_instruction(item)
            elif kind == "word" or kind == "byte":
                self._encode_data(item)
            elif kind == "bytes":
                item.chunk.data[item.offset:item.offset + item.size] = item.data
            elif kind == "space":
                self._encode_space(item)

    def _encode_instruction(self, item: _Item) -> None:
        definition: Instruction = item.definition
        op, where, address = item.op, item.where, item.address
        arguments, operands = op.arguments, definition.operands
        if address % 4:
            self._error(where, op.column, f"instruction at unaligned address {address:#x} "
                                          "(instructions must be 4-byte aligned; use .align 4)")
            return
        if len(arguments) != len(operands):
            node = arguments[len(operands)] if len(arguments) > len(operands) else op
            self._error_at(where, node, f"'{op.name.lower()}' takes {len(operands)} operand"
                                        f"{'s' if len(operands) != 1 else ''}, got "
                                        f"{len(arguments)} (usage: {definition.syntax})")
            return
        values = []
        for argument, operand in zip(arguments, operands):
            value = _OPERAND_READERS[operand.kind](self, item, argument, operand.kind)
            if value is None:
                return
            values.append(value)
        try:
            data = encode(definition, tuple(values), address)
        except OperandError as error:
            node = arguments[error.index] if error.index < len(arguments) else op
            self._error_at(where, node, error.message)
            return
        item.chunk.data[item.offset:item.offset + len(data)] = data

    def _read_register(self, item: _Item, argument, kind: Kind) -> int | None:
        node, where = _unwrap(argument, item.where)
        if isinstance(node, nodes.Symbol) and node.name.lower() in REGISTERS:
            return REGISTERS[node.name.lower()]
        self._error(where, node.column, f"expected a register (r0-r15 or sp), found "
                                        f"{_describe(node)}")
        return None

    def _read_control_register(self, item: _Item, argument, kind: Kind) -> int | None:
        node, where = _unwrap(argument, item.where)
        if isinstance(node, nodes.Symbol) and node.name.lower() in CONTROL_REGISTERS:
            return CONTROL_REGISTERS[node.name.lower()]
        names = ", ".join(CONTROL_REGISTERS)
        self._error(where, node.column, f"expected a control register ({names}), found "
                                        f"{_describe(node)}")
        return None

    def _read_memory(self, item: _Item, argument, kind: Kind) -> tuple[int, int] | None:
        node, where = _unwrap(argument, item.where)
        if not isinstance(node, nodes.Memory):
            self._error(where, node.column, f"expected a memory operand like [r1 + 8], found "
                                            f"{_describe(node)}")
            return None
        terms = _additive_terms(node.expr, where)
        bases = [(sign, term, term_where) for sign, term, term_where in terms
                 if isinstance(term, nodes.Symbol) and term.name.lower() in REGISTERS]
        if len(bases) != 1 or bases[0][0] < 0:
            message = ("a memory operand needs one base register: [reg], [reg + disp] or "
                       "[reg - disp]")
            if len(bases) == 1:
                message = "the base register cannot be subtracted"
            self._error(where, node.column, message)
            return None
        _, register, _ = bases[0]
        displacement = 0
        for sign, term, term_where in terms:
            if term is register:
                continue
            value = self._value(term_where, term, item.scope, item.address)
            if value is None:
                return None
            displacement += sign * value
        return REGISTERS[register.name.lower()], displacement

    def _read_value(self, item: _Item, argument, kind: Kind) -> int | None:
        node, where = _unwrap(argument, item.where)
        if isinstance(node, (nodes.Memory, nodes.String)) or (
                isinstance(node, nodes.Symbol) and node.name.lower() in _RESERVED):
            self._error(where, node.column, f"expected {_KIND_NAMES[kind]}, found "
                                            f"{_describe(node)}")
            return None
        return self._value(item.where, argument, item.scope, item.address)

    def _encode_data(self, item: _Item) -> None:
        width = 4 if item.kind == "word" else 1
        low, high = (-(1 << 31), M32) if width == 4 else (-128, 255)
        out = bytearray()
        for argument in item.op.arguments:
            node, _ = _unwrap(argument, item.where)
            value = None
            if not isinstance(node, (nodes.String, nodes.Memory)):  # those are reported in pass 1
                value = self._value(item.where, argument, item.scope, item.address)
            if value is not None and not low <= value <= high:
                self._error_at(item.where, argument,
                               f"value {_hex(value)} does not fit in a "
                               f"{'32-bit word' if width == 4 else 'byte'} "
                               f"(range {low}..{high:#x})")
                value = None
            if value is None:
                out += bytes(width)
            elif width == 4:
                out += _WORD.pack(value & M32)
            else:
                out.append(value & 0xFF)
        item.chunk.data[item.offset:item.offset + item.size] = out

    def _encode_space(self, item: _Item) -> None:
        arguments = item.op.arguments
        fill = 0
        if item.op.name.lower() == ".space" and len(arguments) == 2:
            value = self._value(item.where, arguments[1], item.scope, item.address)
            if value is not None and not -128 <= value <= 255:
                self._error_at(item.where, arguments[1],
                               f".space fill {_hex(value)} does not fit in a byte")
            elif value is not None:
                fill = value & 0xFF
        if fill:
            item.chunk.data[item.offset:item.offset + item.size] = bytes([fill]) * item.size

    def _entry_point(self) -> int:
        if self.entry is not None:
            where, op, scope, chunk, offset = self.entry
            value = self._value(where, op.arguments[0], scope, chunk.base + offset)
            if value is not None and not 0 <= value <= M32:
                self._error_at(where, op.arguments[0],
                               f"entry point {_hex(value)} is outside the 32-bit address space")
                return 0
            return value or 0
        start = self.symbols.get("start")
        if start is not None:
            try:
                value = self._evaluate(nodes.Symbol("start", 1), "", None, final=True)
            except (_ExprError, _Failed, _Unknown):
                value = None
            if value is not None and 0 <= value <= M32:
                return value
        return min((c.base for c in self.chunks if c.size), default=0)

    # ------------------------------------------------------------------------------------------
    # The result
    # ------------------------------------------------------------------------------------------

    def _result(self, entry: int) -> Assembly:
        used = sorted((c for c in self.chunks if c.size), key=lambda c: c.base)
        segments: list[Segment] = []
        for chunk in used:
            name = chunk.section[1:]
            if segments and segments[-1].end == chunk.base and segments[-1].name == name:
                last = segments.pop()
                segments.append(Segment(name, last.address, last.data + bytes(chunk.data)))
            else:
                segments.append(Segment(name, chunk.base, bytes(chunk.data)))
        symbols = {}
        for name, symbol in self.symbols.items():
            if symbol.is_label:
                symbols[name] = symbol.chunk.base + symbol.offset
            elif symbol.state == _RESOLVED:
                symbols[name] = symbol.value
        source_map = sorted(
            (SourceLocation(item.address, item.where.source.name, item.where.line,
                            item.op.column)
             for item in self.items if item.size and item.op.name.lower() != ".align"),
            key=lambda location: location.address)
        image = Image(entry=entry, segments=tuple(segments), symbols=symbols,
                      source_map=tuple(source_map))
        lines = []
        for where, chunk, offset, size, show_address in self.listing:
            depth, use = 0, where.macro
            while use is not None:
                depth, use = depth + 1, use.where.macro
            lines.append(ListingLine(
                chunk.base + offset if show_address else None,
                bytes(chunk.data[offset:offset + size]), where.source.name, where.line,
                where.text.strip(), depth))
        return Assembly(image=image, lines=tuple(lines), files=tuple(self.files))


# ----------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------

_KIND_NAMES = {
    Kind.SIMM16: "an immediate (-32768..32767)",
    Kind.UIMM16: "an immediate (0..65535)",
    Kind.SHAMT: "a shift amount (0..31)",
    Kind.IMM8: "an immediate (0..255)",
    Kind.PORT: "a port number (0..65535)",
    Kind.REL16: "a branch target",
    Kind.IMM32: "an immediate",
}

_OPERAND_READERS = {
    Kind.REG: Assembler._read_register,
    Kind.CREG: Assembler._read_control_register,
    Kind.MEM: Assembler._read_memory,
    **{kind: Assembler._read_value for kind in _KIND_NAMES},
}

_DIRECTIVE_HANDLERS = {
    ".org": Assembler._dir_org,
    ".text": Assembler._dir_section,
    ".data": Assembler._dir_section,
    ".word": lambda self, where, op: self._dir_data(where, op, 4),
    ".byte": lambda self, where, op: self._dir_data(where, op, 1),
    ".ascii": Assembler._dir_ascii,
    ".asciz": Assembler._dir_ascii,
    ".space": Assembler._dir_space,
    ".align": Assembler._dir_align,
    ".equ": Assembler._dir_equ,
    ".entry": Assembler._dir_entry,
    ".include": Assembler._dir_misplaced,
    ".macro": Assembler._dir_misplaced,
    ".endm": Assembler._dir_misplaced,
}
assert set(_DIRECTIVE_HANDLERS) == set(DIRECTIVES)


def _span(chunk: _Chunk) -> str:
    return (f"{chunk.section[1:]} {chunk.base:#010x}-{chunk.base + chunk.size - 1:#010x}")


def _hex(value: int) -> str:
    return f"{value:#x}" if abs(value) > 9 else str(value)


def _describe(node) -> str:
    if isinstance(node, nodes.Symbol):
        lower = node.name.lower()
        if lower in REGISTERS:
            return f"register '{node.name}'"
        if lower in CONTROL_REGISTERS:
            return f"control register '{node.name}'"
        return f"'{_display(node.name)}'"
    if isinstance(node, nodes.Memory):
        return "a memory operand"
    if isinstance(node, nodes.String):
        return "a string"
    if isinstance(node, nodes.Number):
        return f"the number {_hex(node.value)}"
    return "an expression"


def _binary(node: nodes.Binary, left: int, right: int) -> int:
    op = node.op
    if op == "+":
        result = left + right
    elif op == "-":
        result = left - right
    elif op == "*":
        result = left * right
    elif op == "/" or op == "%":
        if right == 0:
            raise _ExprError("division by zero", node.op_column)
        quotient = abs(left) // abs(right)
        if (left < 0) != (right < 0):
            quotient = -quotient
        result = quotient if op == "/" else left - right * quotient
    elif op == "&":
        result = left & right
    elif op == "|":
        result = left | right
    elif op == "^":
        result = left ^ right
    elif op == "<<" or op == ">>":
        if right < 0:
            raise _ExprError(f"negative shift count {right}", node.op_column)
        if op == ">>":
            result = left >> min(right, MAX_BITS + 1)
        elif right > MAX_BITS:
            raise _ExprError(f"value too large (values are limited to {MAX_BITS} bits)",
                             node.op_column)
        else:
            result = left << right
    else:  # pragma: no cover - the grammar has no other operator
        raise AssertionError(op)
    if result.bit_length() > MAX_BITS:
        raise _ExprError(f"value too large (values are limited to {MAX_BITS} bits)",
                         node.op_column)
    return result


def _additive_terms(expr, where: Where) -> list[tuple[int, object, Where]]:
    """Flatten ``a + b - c`` into signed terms (seeing through macro arguments), iteratively."""
    terms = []
    pending = [(1, expr, where)]
    while pending:
        sign, node, node_where = pending.pop()
        node, node_where = _unwrap(node, node_where)
        if isinstance(node, nodes.Binary) and node.op in "+-":
            pending.append((sign if node.op == "+" else -sign, node.right, node_where))
            pending.append((sign, node.left, node_where))
        elif isinstance(node, nodes.Unary) and node.op in "+-":
            pending.append((sign if node.op == "+" else -sign, node.operand, node_where))
        else:
            terms.append((sign, node, node_where))
    return terms


class _Substitution:
    """Rewrites a macro body line: parameters become the use's arguments (as `Expanded` nodes
    that remember where they were written) and the body's local labels get a unique suffix."""

    def __init__(self, arguments: dict, renames: dict[str, str]):
        self.arguments = arguments
        self.renames = renames

    def line(self, line: nodes.Line) -> nodes.Line:
        labels = tuple(nodes.Label(self.name(label.name), label.column) for label in line.labels)
        statement = line.statement
        if isinstance(statement, nodes.Operation):
            statement = nodes.Operation(statement.name, statement.column,
                                        tuple(self.node(a) for a in statement.arguments))
        elif isinstance(statement, nodes.Assignment):
            statement = nodes.Assignment(self.name(statement.name), statement.column,
                                         self.node(statement.expr))
        return nodes.Line(labels, statement)

    def name(self, name: str) -> str:
        """A defined name: a parameter bound to a name stands for that name."""
        argument = self.arguments.get(name)
        if argument is not None:
            inner, _ = _unwrap(argument, None)
            if isinstance(inner, nodes.Symbol):
                return inner.name
        return self.renames.get(name, name)

    def node(self, node):
        kind = type(node)
        if kind is nodes.Symbol:
            argument = self.arguments.get(node.name)
            if argument is not None:
                return argument
            renamed = self.renames.get(node.name)
            return node if renamed is None else nodes.Symbol(renamed, node.column)
        if kind is nodes.Binary:
            left, right = self.node(node.left), self.node(node.right)
            return nodes.Binary(node.op, left, right, node.column, node.op_column,
                                self._depth(left, right), self._size(left, right))
        if kind is nodes.Unary:
            operand = self.node(node.operand)
            return nodes.Unary(node.op, operand, node.column, self._depth(operand),
                               self._size(operand))
        if kind is nodes.Memory:
            expr = self.node(node.expr)
            return nodes.Memory(expr, node.column, self._depth(expr), self._size(expr))
        return node

    @staticmethod
    def _depth(*children) -> int:
        depth = 1 + max(child.depth for child in children)
        if depth > MAX_EXPANDED_DEPTH:
            raise _ExprError(f"expression nested too deeply after macro expansion (more than "
                             f"{MAX_EXPANDED_DEPTH} levels)", children[0].column)
        return depth

    @staticmethod
    def _size(*children) -> int:
        size = 1 + sum(child.size for child in children)
        if size > MAX_EXPANDED_SIZE:
            raise _ExprError(f"expression too large after macro expansion (more than "
                             f"{MAX_EXPANDED_SIZE} terms)", children[0].column)
        return size
