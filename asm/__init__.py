"""toyvisor.asm: the assembler, the image format and the disassembler.

    >>> from toyvisor.asm import assemble_source
    >>> assembly = assemble_source("start: li r1, 42\\n hlt\\n")
    >>> assembly.image.entry, assembly.image.segments[0].data.hex()
    (0, '000010032a00000000000043')

Errors are raised as one `AssemblyError` listing every problem of the program; ``str(error)``
is the compiler-style report (``file:line:col: error: message``, the line and a caret).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from .assembler import Assembler, Assembly, ListingLine, default_include_paths
from .disasm import (DisassembledLine, disassemble, disassemble_one, disassemble_range,
                     symbol_map)
from .errors import AssemblyError, Diagnostic, ImageError
from .image import (FORMAT_VERSION, Image, Segment, SourceLocation, load_image, save_image)
from .listing import listing

__all__ = [
    "Assembler", "Assembly", "AssemblyError", "Diagnostic", "DisassembledLine", "FORMAT_VERSION",
    "Image", "ImageError", "ListingLine", "Segment", "SourceLocation", "assemble_file",
    "assemble_source", "default_include_paths", "disassemble", "disassemble_one",
    "disassemble_range", "listing", "load_image", "save_image", "symbol_map",
]


def assemble_source(text: str | bytes, filename: str = "<string>",
                    include_paths: Sequence[str | os.PathLike] = ()) -> Assembly:
    """Assemble program text.

    `filename` names the text in messages and, unless it is a ``<pseudo-name>``, is where
    relative ``.include`` paths start from (otherwise the current directory).  `include_paths`
    are searched next, then the repository's ``guests/lib``.  Raises `AssemblyError`.
    """
    return Assembler(include_paths).assemble(text, filename)


def assemble_file(path: str | os.PathLike,
                  include_paths: Sequence[str | os.PathLike] = ()) -> Assembly:
    """Assemble the file at `path` (see `assemble_source`).  Raises `AssemblyError`."""
    return Assembler(include_paths).assemble_file(path)
