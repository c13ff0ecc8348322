"""Errors of the assembler and of image files, reported like a compiler's.

Every problem found in a source file becomes a `Diagnostic`; when a file has errors the assembler
raises one `AssemblyError` holding all of them, whose ``str()`` is the full report::

    boot.s:12:9: error: unknown instruction 'mvo' (did you mean 'mov'?)
       12 |         mvo r1, r2
          |         ^
"""

from __future__ import annotations

import attrs

from toyvisor.isa.errors import ToyvisorError

__all__ = ["AssemblyError", "Diagnostic", "ImageError"]

#: Source lines longer than this are shown cut around the caret.
_SHOWN_WIDTH = 120


@attrs.frozen
class Diagnostic:
    """One message about a source file.

    `line` and `column` count from 1; `line` is 0 for a message about a whole file (a file that
    cannot be read).  `source_line` is the text of the line, for the caret display.
    """

    file: str
    line: int
    column: int
    message: str
    severity: str = "error"
    source_line: str | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def location(self) -> str:
        """``file:line:col`` (or just ``file`` for a whole-file message)."""
        if self.line <= 0:
            return self.file
        return f"{self.file}:{self.line}:{self.column}"

    def headline(self) -> str:
        """The one-line form: ``file:line:col: error: message``."""
        return f"{self.location}: {self.severity}: {self.message}"

    def render(self) -> str:
        """The headline, then the source line and a caret under the column."""
        text = self.headline()
        if self.line <= 0 or self.source_line is None:
            return text
        shown, caret = _excerpt(self.source_line, self.column)
        gutter = " " * len(str(self.line))
        return f"{text}\n {self.line} | {shown}\n {gutter} | {caret}"


def _excerpt(line: str, column: int) -> tuple[str, str]:
    """The source line made printable (cut around `column` if long) and its caret line."""
    index = max(0, min(column - 1, len(line)))
    prefix = ""
    if len(line) > _SHOWN_WIDTH:
        start = max(0, index - _SHOWN_WIDTH // 2)
        end = start + _SHOWN_WIDTH
        prefix = "..." if start else ""
        suffix = "..." if end < len(line) else ""
        line, index = prefix + line[start:end] + suffix, index - start + len(prefix)
    shown = "".join(ch if ch == "\t" or ch.isprintable() else "?" for ch in line)
    caret = "".join("\t" if ch == "\t" else " " for ch in shown[:index]) + "^"
    return shown, caret


class AssemblyError(ToyvisorError):
    """A source file (or one it includes) has errors; `diagnostics` holds every one of them."""

    def __init__(self, diagnostics):
        self.diagnostics: tuple[Diagnostic, ...] = tuple(diagnostics)
        super().__init__(self.report())

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity == "error")

    def report(self) -> str:
        """Every diagnostic with its source excerpt, then a count."""
        parts = [d.render() for d in self.diagnostics]
        count = len(self.errors)
        parts.append(f"{count} error{'s' if count != 1 else ''} generated.")
        return "\n".join(parts)

    def __str__(self) -> str:
        return self.report()


class ImageError(ToyvisorError):
    """An image file cannot be read or written; the message says why."""
