"""How big is a paravirtual port?  The diff of a guest's port against its native kernel
(guests/minikernel/README.md, "How big is the port?"; Xen's paper reports 1.36 % of Linux's x86
code for XenoLinux).

The files of each kernel are the ones its assembly includes.  Files both include count as shared
(nothing to port); files from the guest library (guests/lib) are the ABI's, not the kernel's, and
are left out on both sides, as Xen's public headers are; every other native file is paired with
the port's file of the same name.  Each pair is diffed twice: as written, and as *code* — ``;``
comments stripped and blank lines dropped.  Removed lines are the native lines the diff deletes or
replaces; added lines are the port's lines it inserts.

    python -m toyvisor.tools.portsize guests/minikernel      # the Markdown table
"""

from __future__ import annotations

import difflib
import sys
from pathlib import Path

import attrs

from toyvisor.asm import assemble_file
from toyvisor.asm.assembler import MAX_SOURCE_SIZE, guests_directory
from toyvisor.isa.errors import ToyvisorError
from toyvisor.isa.files import parse_toml, read_bounded

from .guest import MANIFEST, MAX_TOML_SIZE, GuestError


@attrs.frozen
class Count:
    """Lines as written, and lines of code."""

    lines: int
    code: int

    def __add__(self, other: Count) -> Count:
        return Count(self.lines + other.lines, self.code + other.code)


@attrs.frozen
class FileDiff:
    """One native file against the port's file of the same name."""

    name: str
    native: Count
    removed: Count
    added: Count


@attrs.frozen
class PortSize:
    """The whole port: per-file diffs, the shared files, the port's own size."""

    files: tuple[FileDiff, ...]
    shared: tuple[str, ...]
    shared_size: Count
    port_size: Count

    @property
    def native(self) -> Count:
        return sum((f.native for f in self.files), self.shared_size)

    @property
    def removed(self) -> Count:
        return sum((f.removed for f in self.files), Count(0, 0))

    @property
    def added(self) -> Count:
        return sum((f.added for f in self.files), Count(0, 0))


def _code(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        # `;` inside a string literal would be cut too; no kernel line has one before its comment
        stripped = line.split(";", 1)[0].rstrip() if '"' not in line else line.rstrip()
        if stripped.strip():
            out.append(stripped)
    return out


def _diff(native: list[str], port: list[str]) -> tuple[int, int]:
    removed = added = 0
    matcher = difflib.SequenceMatcher(None, native, port, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            removed += i2 - i1
            added += j2 - j1
    return removed, added


def _read(path: Path) -> list[str]:
    try:
        return read_bounded(path, MAX_SOURCE_SIZE).decode("utf-8").splitlines()
    except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        raise GuestError(f"{path}: {exc}") from None


def measure(directory: str | Path) -> PortSize:
    """The port size of the guest in `directory` (its guest.toml names entry_source and
    pv_source).  Raises `GuestError` for a directory without a port."""
    import tomllib

    directory = Path(directory)
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        raise GuestError(f"{directory}: not a guest directory (no {MANIFEST})")
    try:
        manifest = parse_toml(read_bounded(manifest_path, MAX_TOML_SIZE).decode("utf-8"))
    except (tomllib.TOMLDecodeError, ValueError) as exc:  # not UTF-8, too large
        raise GuestError(f"{manifest_path}: invalid TOML: {exc}") from None
    except OSError as exc:
        raise GuestError(f"{manifest_path}: cannot read: {exc.strerror or exc}") from None
    for key in ("entry_source", "pv_source"):
        if key in manifest and not (directory / str(manifest[key])).is_file():
            raise GuestError(f"{manifest_path}: {key} '{manifest[key]}' not found")
    if "pv_source" not in manifest:
        raise GuestError(f"{manifest_path}: no pv_source: the guest has no paravirtual port")
    library = guests_directory() / "lib"

    def files(source: str) -> list[Path]:
        assembly = assemble_file(directory / source, include_paths=(directory,))
        return [Path(f).resolve() for f in assembly.files
                if not Path(f).resolve().is_relative_to(library.resolve())]

    native, port = files(manifest["entry_source"]), files(manifest["pv_source"])
    shared = [f for f in native if f in port]
    by_name = {f.name: f for f in port if f not in shared}
    diffs = []
    for path in native:
        if path in shared:
            continue
        ported = by_name.pop(path.name, None)
        a = _read(path)
        b = _read(ported) if ported is not None else []
        removed, added = _diff(a, b)
        removed_code, added_code = _diff(_code(a), _code(b))
        diffs.append(FileDiff(path.name, Count(len(a), len(_code(a))),
                              Count(removed, removed_code), Count(added, added_code)))
    for name, path in by_name.items():  # port-only files: all added
        b = _read(path)
        diffs.append(FileDiff(name, Count(0, 0), Count(0, 0), Count(len(b), len(_code(b)))))
    shared_size = sum((Count(len(_read(f)), len(_code(_read(f)))) for f in shared), Count(0, 0))
    port_only = [f for f in port if f not in shared]
    port_size = sum((Count(len(_read(f)), len(_code(_read(f)))) for f in port_only), Count(0, 0))
    root = directory.resolve()
    return PortSize(tuple(diffs), tuple(str(f.relative_to(root)) for f in shared),
                    shared_size, port_size)


def _cell(count: Count) -> str:
    return f"{count.lines:,} ({count.code:,})"


def _share(count: Count, whole: Count) -> str:
    return (f"{100 * count.lines / whole.lines:.1f} % "
            f"({100 * count.code / whole.code:.1f} %)")


def render_markdown(size: PortSize) -> str:
    """The table of guests/minikernel/README.md."""
    rows = ["| file | native lines (code) | lines removed or replaced | lines added |",
            "| --- | --- | --- | --- |"]
    for f in size.files:
        rows.append(f"| `{f.name}` | {_cell(f.native)} | {_cell(f.removed)} | {_cell(f.added)} |")
    shared = ", ".join(f"`{name}`" for name in size.shared)
    rows.append(f"| shared: {shared} | {_cell(size.shared_size)} | 0 | 0 |")
    native = size.native
    rows.append(f"| **total** | **{_cell(native)}** | **{_cell(size.removed)} = "
                f"{_share(size.removed, native)}** | **{_cell(size.added)} = "
                f"{_share(size.added, native)}** |")
    diff = size.removed + size.added
    return ("\n".join(rows) + "\n\n"
            f"The port's own files: {_cell(size.port_size)} lines. The diff, removed + added: "
            f"{_cell(diff)} lines = {_share(diff, native)} of the native kernel.\n")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m toyvisor.tools.portsize GUEST_DIRECTORY", file=sys.stderr)
        return 2
    try:
        sys.stdout.write(render_markdown(measure(args[0])))
    except ToyvisorError as error:  # the manifest, or an assembly error in either kernel
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["Count", "FileDiff", "PortSize", "measure", "render_markdown"]
