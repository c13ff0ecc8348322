"""Physical memory: one flat bytearray, shared by every CPU and DMA-capable device.

RAM is a single private anonymous mapping (`zeroed_ram`: a `bytearray` would be zero-filled
page by page up front, so startup and host memory would grow with the guest's RAM); the host
supplies its zero pages on first touch, so a 256 MiB machine starts as fast as a 1 MiB one and
costs the host only the pages the guest uses.  Nothing is allocated per page except one byte of
*page flags* per 4 KiB page, which is how the rare slow cases are found with one index operation
on every store:

- ``PAGE_CODE``: the page holds instructions the interpreter has decoded.  A write to such a page
  is reported to `on_code_write` (the shared decode cache), which drops the decoded instructions
  the write overlaps (self-modifying code, program loaders, DMA into code).
- ``PAGE_WATCH_WRITE`` / ``PAGE_WATCH_READ``: the page is watched by the *audit hook*.  A VMM (or
  a debugger) calls `watch` and sets `audit` to see every write (or read) of the page made by a
  CPU, the page-table walker or a device, before the value lands (a read returns what the page
  holds after the hook: post-copy migration fills a missing page there, as userfaultfd does).  Unwatched memory pays nothing
  for reads: CPUs switch to checking variants of their load paths only while some page is
  read-watched (see `add_listener`).

Physical addresses are checked against the size of RAM; an access beyond it raises #GP(0) (the
architectural rule of docs/machine.md).  The `read*`/`write*` methods here are the *careful*
path; CPUs inline the common case themselves and fall back to these.
"""

from __future__ import annotations

import mmap
import struct
import sys
from collections.abc import Callable

from toyvisor.isa.faults import GuestFault
from toyvisor.isa.spec import M32, PAGE_SHIFT, PAGE_SIZE, VEC_GP

from .errors import MachineError

PAGE_CODE = 1
PAGE_WATCH_WRITE = 2
PAGE_WATCH_READ = 4

DEFAULT_MEMORY_SIZE = 4 * 1024 * 1024
MAX_MEMORY_SIZE = 1 << 32

_U32 = struct.Struct("<I")
# byte-translation tables over page-flag values (watch / unwatch whole ranges at C speed)
_HAS_READ_WATCH = bytes(1 if v & PAGE_WATCH_READ else 0 for v in range(256))
_OR_FLAGS = [bytes(v | added for v in range(256)) for added in range(8)]
_UNWATCHED = bytes(v & ~(PAGE_WATCH_READ | PAGE_WATCH_WRITE) & 0xFF for v in range(256))

#: ``audit(access, physical_address, size, value)``: access is "read" or "write"; value is an int
#: for 1- and 4-byte accesses and `bytes` for block transfers (loader, DMA).
AuditHook = Callable[[str, int, int, "int | bytes"], None]


class _LazyRAM(mmap.mmap):
    """A private anonymous mapping that compares by contents, as a `bytearray` does (`mmap`
    itself compares by identity)."""

    __slots__ = ()
    __hash__ = None  # type: ignore[assignment]

    def __eq__(self, other):
        try:
            return len(self) == len(other) and self[:] == memoryview(other)
        except TypeError:
            return NotImplemented


def zeroed_ram(size: int) -> bytearray:
    """`size` zero bytes supporting what RAM needs of a `bytearray` (int indexing, bytes slices,
    same-length slice assignment, the buffer protocol), without touching any page up front."""
    if not hasattr(mmap, "MAP_PRIVATE"):  # no POSIX mmap flags (Windows): eager zero fill
        return bytearray(size)
    return _LazyRAM(-1, size, flags=mmap.MAP_PRIVATE)  # type: ignore[return-value]


def _word_view(data):
    """`data` as unsigned 32-bit little-endian words: a memoryview, or on a big-endian host an
    object indexing the same bytes."""
    if sys.byteorder == "little" and struct.calcsize("I") == 4:
        return memoryview(data).cast("I")
    return _LittleEndianWords(data)


class _LittleEndianWords:
    """Word indexing over RAM on a big-endian host."""

    __slots__ = ("_data",)

    def __init__(self, data) -> None:
        self._data = data

    def __getitem__(self, index: int) -> int:
        return _U32.unpack_from(self._data, index << 2)[0]

    def __setitem__(self, index: int, value: int) -> None:
        _U32.pack_into(self._data, index << 2, value)


class PhysicalMemory:
    """RAM of `size` bytes (a positive multiple of 4 KiB, at most 4 GiB), initially zero."""

    def __init__(self, size: int = DEFAULT_MEMORY_SIZE):
        if not isinstance(size, int) or size <= 0 or size % PAGE_SIZE or size > MAX_MEMORY_SIZE:
            raise MachineError(
                f"memory size must be a positive multiple of {PAGE_SIZE} bytes and at most "
                f"4 GiB, not {size!r}"
            )
        self.size = size
        self.data = zeroed_ram(size)
        #: The same RAM as little-endian 32-bit words (``words[pa >> 2]`` for an aligned `pa`):
        #: the fastest word access for generated code.
        self.words = _word_view(self.data)
        self.page_flags = bytearray(size >> PAGE_SHIFT)
        #: Called as ``on_code_write(pa, size)`` before a write to a page marked PAGE_CODE.
        self.on_code_write: Callable[[int, int], None] | None = None
        #: The audit hook for watched pages (see the module docstring).
        self.audit: AuditHook | None = None
        self._read_watches = 0
        self._listeners: list[Callable[[], None]] = []

    # -- watching -------------------------------------------------------------------------------

    def add_listener(self, callback: Callable[[], None]) -> None:
        """Call `callback()` whenever read-watching starts or stops (CPUs reselect load paths)."""
        self._listeners.append(callback)

    def remove_listener(self, callback: Callable[[], None]) -> None:
        """Undo `add_listener` (no error if `callback` is not registered)."""
        if callback in self._listeners:
            self._listeners.remove(callback)

    @property
    def read_watched(self) -> bool:
        """True while at least one page is read-watched."""
        return self._read_watches > 0

    def watch(self, address: int, size: int = PAGE_SIZE, *, read: bool = False,
              write: bool = True) -> None:
        """Report accesses to the pages covering ``[address, address+size)`` to `audit`."""
        was = self.read_watched
        pages = self._pages(address, size)
        # One C-level pass over the flag bytes (not a Python loop per page): a hypervisor watches
        # each VM's whole slice, and its start-up must not grow with the guest's RAM.
        flags = self.page_flags[pages.start:pages.stop]
        if read:
            self._read_watches += len(flags) - flags.translate(_HAS_READ_WATCH).count(1)
        added = (PAGE_WATCH_READ if read else 0) | (PAGE_WATCH_WRITE if write else 0)
        self.page_flags[pages.start:pages.stop] = flags.translate(_OR_FLAGS[added])
        if was != self.read_watched:
            self._notify()

    def unwatch(self, address: int, size: int = PAGE_SIZE) -> None:
        """Stop watching the pages covering ``[address, address+size)``."""
        was = self.read_watched
        pages = self._pages(address, size)
        flags = self.page_flags[pages.start:pages.stop]
        self._read_watches -= flags.translate(_HAS_READ_WATCH).count(1)
        self.page_flags[pages.start:pages.stop] = flags.translate(_UNWATCHED)
        if was != self.read_watched:
            self._notify()

    def _pages(self, address: int, size: int) -> range:
        if size <= 0 or address < 0 or address + size > self.size:
            raise MachineError(f"range {address:#x}+{size:#x} is not inside RAM")
        return range(address >> PAGE_SHIFT, ((address + size - 1) >> PAGE_SHIFT) + 1)

    def _notify(self) -> None:
        for callback in self._listeners:
            callback()

    # -- the careful access path ----------------------------------------------------------------

    def check(self, pa: int, size: int) -> None:
        """Raise #GP(0) unless ``[pa, pa+size)`` lies inside RAM."""
        if pa < 0 or pa + size > self.size:
            raise GuestFault(VEC_GP, 0)

    def read32(self, pa: int) -> int:
        """Read a little-endian word (no alignment rule here: that is the CPU's)."""
        self.check(pa, 4)
        value = _U32.unpack_from(self.data, pa)[0]
        if self.page_flags[pa >> PAGE_SHIFT] & PAGE_WATCH_READ and self.audit is not None:
            self.audit("read", pa, 4, value)
            value = _U32.unpack_from(self.data, pa)[0]  # the hook may fill the page (post-copy)
        return value

    def read8(self, pa: int) -> int:
        self.check(pa, 1)
        value = self.data[pa]
        if self.page_flags[pa >> PAGE_SHIFT] & PAGE_WATCH_READ and self.audit is not None:
            self.audit("read", pa, 1, value)
            value = self.data[pa]
        return value

    def write32(self, pa: int, value: int) -> None:
        self.check(pa, 4)
        self._before_write(pa, 4, value)
        _U32.pack_into(self.data, pa, value & M32)

    def write8(self, pa: int, value: int) -> None:
        self.check(pa, 1)
        self._before_write(pa, 1, value)
        self.data[pa] = value & 0xFF

    def read(self, pa: int, size: int) -> bytes:
        """Read a block (used by DMA and tools; audited like single accesses)."""
        self.check(pa, size)
        value = bytes(self.data[pa:pa + size])
        if self.audit is not None and self._any_flag(pa, size, PAGE_WATCH_READ):
            self.audit("read", pa, size, value)
            value = bytes(self.data[pa:pa + size])
        return value

    def write(self, pa: int, data: bytes) -> None:
        """Write a block (the loader, DMA); drops decoded code it overlaps."""
        size = len(data)
        if not size:
            return
        self.check(pa, size)
        self._before_write(pa, size, bytes(data))
        self.data[pa:pa + size] = data

    def _any_flag(self, pa: int, size: int, flag: int) -> bool:
        flags = self.page_flags
        last = (pa + size - 1) >> PAGE_SHIFT
        return any(flags[p] & flag for p in range(pa >> PAGE_SHIFT, last + 1))

    def _before_write(self, pa: int, size: int, value) -> None:
        flags = self.page_flags
        first, last = pa >> PAGE_SHIFT, (pa + size - 1) >> PAGE_SHIFT
        combined = 0
        for page in range(first, last + 1):
            combined |= flags[page]
        if not combined:
            return
        if combined & PAGE_WATCH_WRITE and self.audit is not None:
            self.audit("write", pa, size, value)
        if combined & PAGE_CODE and self.on_code_write is not None:
            self.on_code_write(pa, size)


__all__ = [
    "DEFAULT_MEMORY_SIZE",
    "MAX_MEMORY_SIZE",
    "PAGE_CODE",
    "PAGE_WATCH_READ",
    "PAGE_WATCH_WRITE",
    "PhysicalMemory",
]
