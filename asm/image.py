"""The image: what the assembler produces and the machine loads.

An `Image` is a set of non-overlapping memory segments, an entry point, the symbol table and a
source map.  `Image.to_bytes` / `Image.from_bytes` convert it to and from the on-disk format
documented in ``docs/image-format.md``:

    offset  size  field
    0       8     magic  b"TOYVIMG\\0"
    8       4     format version (u32, little-endian) = 1
    12      4     header length H (u32)
    16      8     payload length P (u64)
    24      H     header: UTF-8 JSON (entry, segments, symbols, files, source map)
    24+H    P     payload: the segments' bytes, in header order
    24+H+P  32    SHA-256 of every preceding byte of the file

`save_image` writes atomically (a temporary file in the same directory, then ``os.replace``) and
`load_image` reports every kind of damage as an `ImageError` with a clear reason.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

import attrs

from toyvisor.isa.files import read_bounded, write_atomic

from .errors import ImageError

__all__ = [
    "FORMAT_VERSION", "MAGIC", "Image", "ImageError", "Segment", "SourceLocation", "load_image",
    "save_image",
]

MAGIC = b"TOYVIMG\0"
FORMAT_VERSION = 1
ADDRESS_SPACE = 1 << 32
#: the largest image file read (no guest has more memory: toyvisor.tools.guest.MAX_MEMORY)
MAX_IMAGE_FILE = 1 << 30
_FIXED = struct.Struct("<8sIIQ")
_DIGEST = 32


@attrs.frozen
class Segment:
    """`data` loaded at `address`; `name` says where it came from ("text", "data")."""

    name: str
    address: int
    data: bytes = attrs.field(converter=bytes, repr=lambda d: f"<{len(d)} bytes>")

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def end(self) -> int:
        """The first address after the segment."""
        return self.address + len(self.data)


@attrs.frozen
class SourceLocation:
    """The statement that produced the bytes at `address` (line and column count from 1)."""

    address: int
    file: str
    line: int
    column: int

    @property
    def where(self) -> str:
        """``file:line`` with the file's name only, as traces and reports show it."""
        return f"{os.path.basename(self.file)}:{self.line}"


def _freeze(mapping: Mapping[str, int]) -> Mapping[str, int]:
    return MappingProxyType(dict(mapping))


@attrs.frozen
class Image:
    """A loadable program.

    `symbols` maps every label and ``.equ`` constant of the program to its value (an address for
    a label; any integer for a constant).  `source_map` has one entry per instruction or data
    statement, in address order.  Constructing an image with overlapping segments, segments
    outside the 32-bit address space or an entry point out of range raises `ImageError`.
    """

    entry: int
    segments: tuple[Segment, ...] = attrs.field(converter=tuple)
    symbols: Mapping[str, int] = attrs.field(factory=dict, converter=_freeze, hash=False)
    source_map: tuple[SourceLocation, ...] = attrs.field(default=(), converter=tuple)
    version: int = FORMAT_VERSION

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.entry, int) or not 0 <= self.entry < ADDRESS_SPACE:
            raise ImageError(f"entry point {self.entry!r} is outside the 32-bit address space")
        for segment in self.segments:
            if not 0 <= segment.address or segment.end > ADDRESS_SPACE:
                raise ImageError(
                    f"segment '{segment.name}' at {segment.address:#x} ({segment.size} bytes) "
                    "is outside the 32-bit address space")
        ordered = sorted((s for s in self.segments if s.size), key=lambda s: s.address)
        for first, second in zip(ordered, ordered[1:]):
            if second.address < first.end:
                raise ImageError(
                    f"segments overlap: '{first.name}' {first.address:#010x}-{first.end - 1:#010x}"
                    f" and '{second.name}' {second.address:#010x}-{second.end - 1:#010x}")

    # --- queries ---
    @property
    def size(self) -> int:
        """Total bytes in all segments."""
        return sum(s.size for s in self.segments)

    def segment_at(self, address: int) -> Segment | None:
        """The segment holding `address`, if any."""
        for segment in self.segments:
            if segment.address <= address < segment.end:
                return segment
        return None

    def read(self, address: int, size: int) -> bytes:
        """`size` bytes at `address`; bytes outside every segment read as zero."""
        out = bytearray(size)
        for segment in self.segments:
            low, high = max(address, segment.address), min(address + size, segment.end)
            if low < high:
                out[low - address:high - address] = segment.data[low - segment.address:
                                                                  high - segment.address]
        return bytes(out)

    def location_of(self, address: int) -> SourceLocation | None:
        """The source statement whose bytes include `address` (the closest one at or before it)."""
        best = None
        for location in self.source_map:
            if location.address <= address and (best is None or location.address >= best.address):
                best = location
        return best

    # --- serialization ---
    def to_bytes(self) -> bytes:
        """The on-disk form (see the module docstring and docs/image-format.md)."""
        files: dict[str, int] = {}
        source_map = [[loc.address, files.setdefault(loc.file, len(files)), loc.line, loc.column]
                      for loc in self.source_map]
        segments, offset = [], 0
        for segment in self.segments:
            segments.append({"name": segment.name, "address": segment.address, "offset": offset,
                             "size": segment.size})
            offset += segment.size
        header = json.dumps(
            {"entry": self.entry, "segments": segments, "symbols": dict(self.symbols),
             "files": list(files), "source_map": source_map},
            separators=(",", ":"),
        ).encode("utf-8")
        payload = b"".join(segment.data for segment in self.segments)
        body = _FIXED.pack(MAGIC, FORMAT_VERSION, len(header), len(payload)) + header + payload
        return body + hashlib.sha256(body).digest()

    @classmethod
    def from_bytes(cls, data: bytes) -> "Image":
        """Parse the on-disk form; raises `ImageError` saying what is wrong."""
        data = bytes(data)
        if len(data) < len(MAGIC):
            if not data:
                raise ImageError("not a toyvisor image (the file is empty)")
            if MAGIC.startswith(data):
                raise ImageError(f"truncated image ({len(data)} bytes)")
            raise ImageError("not a toyvisor image (bad magic number)")
        if not data.startswith(MAGIC):
            raise ImageError("not a toyvisor image (bad magic number)")
        if len(data) < _FIXED.size:
            raise ImageError(f"truncated image ({len(data)} bytes, the fixed header alone "
                             f"takes {_FIXED.size})")
        _, version, header_length, payload_length = _FIXED.unpack_from(data)
        if version != FORMAT_VERSION:
            raise ImageError(f"unsupported image format version {version} (this toyvisor reads "
                             f"version {FORMAT_VERSION}; reassemble the program)")
        expected = _FIXED.size + header_length + payload_length + _DIGEST
        if len(data) < expected:
            raise ImageError(f"truncated image ({len(data)} bytes, the header announces "
                             f"{expected})")
        if len(data) > expected:
            raise ImageError(f"corrupted image ({len(data) - expected} unexpected bytes after "
                             "the end)")
        if hashlib.sha256(data[:-_DIGEST]).digest() != data[-_DIGEST:]:
            raise ImageError("corrupted image (checksum mismatch)")
        header_end = _FIXED.size + header_length
        try:
            header = json.loads(data[_FIXED.size:header_end].decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as error:
            raise ImageError(f"malformed image header (not valid JSON: {error})") from None
        except RecursionError:  # json's decoder recurses once per nested array or object
            raise ImageError("malformed image header (its JSON nests too deeply)") from None
        payload = data[header_end:header_end + payload_length]
        return _from_header(header, payload)


def _malformed(reason: str) -> ImageError:
    return ImageError(f"malformed image header ({reason})")


def _int(value, what: str) -> int:
    if type(value) is not int:
        raise _malformed(f"{what} must be an integer")
    return value


def _field(mapping, key: str, kind, what: str):
    if not isinstance(mapping, dict) or key not in mapping:
        raise _malformed(f"missing {what}")
    value = mapping[key]
    if kind is int:
        return _int(value, what)
    if not isinstance(value, kind):
        raise _malformed(f"{what} has the wrong type")
    return value


def _from_header(header, payload: bytes) -> Image:
    if not isinstance(header, dict):
        raise _malformed("not a JSON object")
    entry = _field(header, "entry", int, "entry point")
    segments, expected_offset = [], 0
    for index, item in enumerate(_field(header, "segments", list, "segment list")):
        what = f"segment {index}"
        name = _field(item, "name", str, f"{what} name")
        address = _field(item, "address", int, f"{what} address")
        offset = _field(item, "offset", int, f"{what} offset")
        size = _field(item, "size", int, f"{what} size")
        if offset != expected_offset or size < 0 or offset + size > len(payload):
            raise _malformed(f"{what} does not match the payload (offset {offset}, size {size})")
        expected_offset += size
        if address < 0 or address + size > ADDRESS_SPACE:
            raise ImageError(f"segment '{name}' at {address:#x} ({size} bytes) is outside the "
                             "32-bit address space")
        segments.append(Segment(name, address, payload[offset:offset + size]))
    if expected_offset != len(payload):
        raise _malformed(f"the segments cover {expected_offset} of {len(payload)} payload bytes")
    symbols = _field(header, "symbols", dict, "symbol table")
    for name, value in symbols.items():
        _int(value, f"symbol '{name}'")
    files = _field(header, "files", list, "file list")
    if not all(isinstance(f, str) for f in files):
        raise _malformed("file names must be strings")
    source_map = []
    for entry_ in _field(header, "source_map", list, "source map"):
        if not (isinstance(entry_, list) and len(entry_) == 4
                and all(type(v) is int for v in entry_) and 0 <= entry_[1] < len(files)):
            raise _malformed("bad source map entry")
        address, file_index, line, column = entry_
        source_map.append(SourceLocation(address, files[file_index], line, column))
    if not 0 <= entry < ADDRESS_SPACE:
        raise _malformed(f"entry point {entry:#x} is outside the 32-bit address space")
    return Image(entry=entry, segments=tuple(segments), symbols=symbols,
                 source_map=tuple(source_map))


def save_image(image: Image, path: str | os.PathLike) -> None:
    """Write `image` to `path` atomically (see `toyvisor.isa.files.write_atomic`).

    Raises `ImageError` when the file cannot be written; no partial or temporary file is left.
    """
    try:
        write_atomic(path, image.to_bytes())
    except OSError as error:
        raise ImageError(f"{path}: cannot write image: {error.strerror or error}") from None


def load_image(path: str | os.PathLike) -> Image:
    """Read an image file; raises `ImageError` (naming the file) if it is unreadable or damaged."""
    try:
        data = read_bounded(path, MAX_IMAGE_FILE)
    except OSError as error:
        raise ImageError(f"{path}: cannot read image: {error.strerror or error}") from None
    except ValueError as error:
        raise ImageError(f"{path}: cannot read image: {error}") from None
    try:
        return Image.from_bytes(data)
    except ImageError as error:
        raise ImageError(f"{path}: {error}") from None
