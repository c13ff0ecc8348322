"""The per-CPU cache model: set-associative data caches kept coherent by an MSI protocol.

A model, not a part of the machine's semantics: it only counts.  Each CPU's data accesses (the
loads and stores of its instructions, at their physical addresses) look up that CPU's cache:

- a read hits a line held Shared or Modified; a miss loads it Shared (a copy Modified in another
  cache is written back and becomes Shared there);
- a write hits a line held Modified; a line held Shared is *upgraded* (counted as a miss: it must
  ask the other caches to drop their copies), a missing line is loaded Modified; either way every
  other cache's copy is invalidated (counted as an invalidation of *that* cache);
- a full set evicts its least recently used line; block transfers by devices (DMA) invalidate
  the lines they overlap in every cache.

Instruction fetches, page walks and trap frames are not modelled.  The model is off unless a
`CacheGeometry` is given to `toyvisor.cpu.Machine` (``--cache``); it never changes a result, only
the counts — what affinity scheduling is about ("la CPU potrebbe avere nella propria cache dei
blocchi già caricati").
"""

from __future__ import annotations

from collections import OrderedDict

import attrs

from .errors import MachineError
from .mmu import WRITE

#: The geometry ``--cache on`` selects: 4 KiB, 2-way, 32-byte lines.
DEFAULT_SIZE, DEFAULT_WAYS, DEFAULT_LINE = 4096, 2, 32

_SHARED, _MODIFIED = 1, 2


def _power_of_two(value: int) -> bool:
    return value > 0 and not value & (value - 1)


@attrs.frozen
class CacheGeometry:
    """Size in bytes, associativity (ways) and line size in bytes; all powers of two."""

    size: int = DEFAULT_SIZE
    ways: int = DEFAULT_WAYS
    line: int = DEFAULT_LINE

    def __attrs_post_init__(self) -> None:
        for name in ("size", "ways", "line"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not _power_of_two(value):
                raise MachineError(f"cache {name} must be a power of two, not {value!r}")
        if self.line < 4:
            raise MachineError(f"cache line must be at least 4 bytes, not {self.line}")
        if self.size < self.ways * self.line:
            raise MachineError(f"a cache of {self.size} bytes cannot hold {self.ways} ways of "
                               f"{self.line}-byte lines")

    @property
    def sets(self) -> int:
        return self.size // (self.ways * self.line)

    def __str__(self) -> str:
        return f"{self.size},{self.ways},{self.line}"


def parse_geometry(text: str) -> CacheGeometry:
    """``"on"`` (the default geometry) or ``"SIZE,WAYS,LINE"`` in bytes, e.g. ``"8192,4,64"``."""
    text = text.strip()
    if text == "on":
        return CacheGeometry()
    parts = text.split(",")
    if len(parts) != 3 or not all(p.strip().isdigit() for p in parts):
        raise MachineError(f"cache geometry must be 'on' or SIZE,WAYS,LINE in bytes "
                           f"(e.g. 4096,2,32), not {text!r}")
    size, ways, line = (int(p) for p in parts)
    return CacheGeometry(size, ways, line)


class Cache:
    """One CPU's cache: counts and line states."""

    def __init__(self, geometry: CacheGeometry) -> None:
        self.geometry = geometry
        self._shift = geometry.line.bit_length() - 1
        self._set_mask = geometry.sets - 1
        self._ways = geometry.ways
        #: set number -> line number -> state, in LRU order (oldest first)
        self._sets: list[OrderedDict[int, int]] = [OrderedDict() for _ in range(geometry.sets)]
        self.hits = 0
        self.misses = 0
        #: lines this cache lost because another CPU wrote them (or a device overwrote them)
        self.invalidations = 0
        #: Modified lines written back (evicted, or read by another CPU)
        self.writebacks = 0

    def state(self, line: int) -> int:
        return self._sets[line & self._set_mask].get(line, 0)

    def _install(self, line: int, state: int, directory: dict[int, set[int]], me: int) -> None:
        ways = self._sets[line & self._set_mask]
        if line not in ways and len(ways) >= self._ways:
            victim, victim_state = ways.popitem(last=False)
            if victim_state == _MODIFIED:
                self.writebacks += 1
            holders = directory.get(victim)
            if holders is not None:
                holders.discard(me)
                if not holders:
                    del directory[victim]
        ways[line] = state
        ways.move_to_end(line)
        directory.setdefault(line, set()).add(me)

    def _drop(self, line: int) -> None:
        ways = self._sets[line & self._set_mask]
        if ways.pop(line, 0) == _MODIFIED:
            self.writebacks += 1
        self.invalidations += 1


class CoherentCaches:
    """The caches of every CPU of a machine and the directory of which CPUs hold each line."""

    def __init__(self, geometry: CacheGeometry, cpus: int) -> None:
        self.geometry = geometry
        self.caches = [Cache(geometry) for _ in range(cpus)]
        self._shift = geometry.line.bit_length() - 1
        #: line number -> CPUs holding it
        self._directory: dict[int, set[int]] = {}

    def access(self, cpu: int, pa: int, write: bool) -> None:
        """CPU `cpu` reads (or writes) physical address `pa`."""
        line = pa >> self._shift
        cache = self.caches[cpu]
        ways = cache._sets[line & cache._set_mask]
        state = ways.get(line, 0)
        directory = self._directory
        if not write:
            if state:
                cache.hits += 1
                ways.move_to_end(line)
                return
            cache.misses += 1
            for other in directory.get(line, ()):
                other_ways = self.caches[other]._sets[line & cache._set_mask]
                if other_ways.get(line) == _MODIFIED:
                    other_ways[line] = _SHARED
                    self.caches[other].writebacks += 1
            cache._install(line, _SHARED, directory, cpu)
            return
        if state == _MODIFIED:
            cache.hits += 1
            ways.move_to_end(line)
            return
        cache.misses += 1
        for other in list(directory.get(line, ())):
            if other != cpu:
                self.caches[other]._drop(line)
                directory[line].discard(other)
        cache._install(line, _MODIFIED, directory, cpu)

    def invalidate(self, pa: int, size: int) -> None:
        """A device wrote ``[pa, pa+size)``: every cache drops the lines it overlaps."""
        directory = self._directory
        for line in range(pa >> self._shift, ((pa + size - 1) >> self._shift) + 1):
            holders = directory.pop(line, None)
            for cpu in holders or ():
                self.caches[cpu]._drop(line)

    def wrap(self, cpu, load32, load8, store32, store8):
        """The CPU's access functions, reporting each access to the model after it succeeded
        (a faulting access touches no line)."""
        index = cpu.index
        access = self.access
        translate = cpu.translate

        def counted_load32(va):
            value = load32(va)
            access(index, translate(va), False)
            return value

        def counted_load8(va):
            value = load8(va)
            access(index, translate(va), False)
            return value

        def counted_store32(va, v):
            store32(va, v)
            access(index, translate(va, WRITE), True)

        def counted_store8(va, v):
            store8(va, v)
            access(index, translate(va, WRITE), True)

        return counted_load32, counted_load8, counted_store32, counted_store8


__all__ = ["Cache", "CacheGeometry", "CoherentCaches", "parse_geometry"]
