"""Compression of the pages a migration sends: zero pages, an XBZRLE-like delta cache, zlib.

Each page goes on the wire with an 8-byte header (page number and encoding, as QEMU's RAM
stream does) and one of these payloads, the first that applies of those selected:

- ``zero``: a page of zeros sends nothing but its header;
- ``xbzrle``: a page sent before and still in the sender's cache is sent as its difference from
  the cached copy — runs of unchanged words skipped, changed words sent — when that is smaller
  than a quarter of the page (QEMU's XBZRLE; the cache holds `cache_pages` pages, LRU);
- ``zlib``: the page compressed by `zlib` (level 1) when that is smaller;
- otherwise the page itself.

The receiver decodes every page (`PageDecoder`, its own cache), so the destination's memory is
what actually came over the link; `CompressionStats` counts bytes before and after.
"""

from __future__ import annotations

import struct
import zlib
from collections import OrderedDict

import attrs

from toyvisor.isa.spec import PAGE_SIZE

from .link import MigrationError

HEADER_BYTES = 8
METHODS = ("zero", "xbzrle", "zlib")
_WORDS = PAGE_SIZE // 4
_ZERO = bytes(PAGE_SIZE)
#: an XBZRLE delta is used only below this size (QEMU gives up on pages that changed a lot)
XBZRLE_LIMIT = PAGE_SIZE // 4
#: QEMU's default XBZRLE cache is 64 MiB: here it defaults to every page of the guest
DEFAULT_CACHE_PAGES = 1 << 14


def parse_methods(spec: str | None) -> frozenset[str]:
    """``"zero,xbzrle"``, ``"all"``, ``"none"`` → the set of methods (a `MigrationError` for an
    unknown name)."""
    if spec is None or spec.strip() in ("", "none"):
        return frozenset()
    if spec.strip() == "all":
        return frozenset(METHODS)
    names = [name.strip() for name in spec.split(",") if name.strip()]
    for name in names:
        if name not in METHODS:
            raise MigrationError(f"unknown compression '{name}' (known: {', '.join(METHODS)}, "
                                 "all, none)")
    return frozenset(names)


@attrs.define
class CompressionStats:
    """Pages and bytes by encoding (cumulative over a migration)."""

    raw_bytes: int = 0
    wire_bytes: int = 0
    pages: dict[str, int] = attrs.Factory(dict)

    @property
    def saved_bytes(self) -> int:
        return self.raw_bytes - self.wire_bytes


def _delta(old: bytes, new: bytes) -> bytes:
    """XBZRLE-like: (skip words, changed words, the changed words) runs, 2-byte counts."""
    a = memoryview(old).cast("I")
    b = memoryview(new).cast("I")
    out = bytearray()
    i = 0
    while i < _WORDS:
        start = i
        while i < _WORDS and a[i] == b[i]:
            i += 1
        skip = i - start
        start = i
        while i < _WORDS and a[i] != b[i]:
            i += 1
        if i == start and i == _WORDS:
            break
        out += struct.pack("<HH", skip, i - start) + new[start * 4:i * 4]
        if len(out) > XBZRLE_LIMIT:
            return bytes(out)
    return bytes(out)


def _apply(old: bytes, delta: bytes) -> bytes:
    page = bytearray(old)
    word = 0
    pos = 0
    while pos < len(delta):
        skip, count = struct.unpack_from("<HH", delta, pos)
        pos += 4
        word += skip
        page[word * 4:(word + count) * 4] = delta[pos:pos + count * 4]
        pos += count * 4
        word += count
    return bytes(page)


class _Cache:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.pages: OrderedDict[int, bytes] = OrderedDict()

    def get(self, gfn: int) -> bytes | None:
        # no reordering on a look-up: both ends reorder only on `put`, so their caches stay equal
        return self.pages.get(gfn)

    def put(self, gfn: int, data: bytes) -> None:
        self.pages[gfn] = data
        self.pages.move_to_end(gfn)
        while len(self.pages) > self.capacity:
            self.pages.popitem(last=False)


class PageEncoder:
    """The sender's side: page → (encoding, payload); counts the bytes."""

    def __init__(self, methods: frozenset[str] = frozenset(),
                 cache_pages: int = DEFAULT_CACHE_PAGES) -> None:
        self.methods = methods
        self.cache = _Cache(cache_pages) if "xbzrle" in methods else None
        self.stats = CompressionStats()

    def encode(self, gfn: int, data: bytes) -> tuple[str, bytes]:
        kind, payload = self._choose(gfn, data)
        if self.cache is not None:
            self.cache.put(gfn, data)
        stats = self.stats
        stats.raw_bytes += HEADER_BYTES + PAGE_SIZE
        stats.wire_bytes += HEADER_BYTES + len(payload)
        stats.pages[kind] = stats.pages.get(kind, 0) + 1
        return kind, payload

    def _choose(self, gfn: int, data: bytes) -> tuple[str, bytes]:
        methods = self.methods
        if "zero" in methods and data == _ZERO:
            return "zero", b""
        if self.cache is not None:
            old = self.cache.get(gfn)
            if old is not None:
                delta = _delta(old, data)
                if len(delta) <= XBZRLE_LIMIT:
                    return "xbzrle", delta
        if "zlib" in methods:
            packed = zlib.compress(data, 1)
            if len(packed) < PAGE_SIZE:
                return "zlib", packed
        return "raw", data


class PageDecoder:
    """The receiver's side: (encoding, payload) → the page."""

    def __init__(self, cache_pages: int = DEFAULT_CACHE_PAGES) -> None:
        self.cache = _Cache(cache_pages)

    def decode(self, gfn: int, kind: str, payload: bytes) -> bytes:
        if kind == "zero":
            data = _ZERO
        elif kind == "xbzrle":
            data = _apply(self.cache.get(gfn), payload)
        elif kind == "zlib":
            data = zlib.decompress(payload)
        else:
            data = payload
        self.cache.put(gfn, data)
        return data


__all__ = ["CompressionStats", "HEADER_BYTES", "METHODS", "PageDecoder", "PageEncoder",
           "parse_methods"]
