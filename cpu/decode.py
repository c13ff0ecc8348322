"""The decode cache: decode each instruction once, bind it to its generated handler, and forget it
when its bytes change.

Entries are keyed by the instruction's *physical* address together with its *virtual* pc
(``key = pa << 32 | pc``): the physical address because that is what a store can change, the pc
because the handlers of `toyvisor.isa.codegen` bake in ``pc`` and ``npc`` (branch targets and
return addresses are absolute).  The cache is shared by every CPU of a machine: a decoded
instruction does not depend on which CPU runs it.

Self-modifying code.  Every page holding a decoded instruction is marked ``PAGE_CODE`` in
`PhysicalMemory.page_flags`; a write to such a page (by a CPU, the page walker, DMA or the loader)
calls `invalidate`, which drops exactly the entries whose words the write overlaps and tells
every CPU to clear its fetch cache (see `CPU`).  Stores to ordinary pages pay one bytearray index.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from toyvisor.isa.codegen import (
    FACTORIES,
    INNER_FACTORIES,
    field_names,
    pair_factory,
)
from toyvisor.isa.encoding import Decoded, decode_word
from toyvisor.isa.spec import M32, PAGE_SHIFT, Privilege
from toyvisor.isa.table import ALL_INSTRUCTIONS

from .memory import PAGE_CODE, PhysicalMemory

#: Words of semantics that mark an instruction as able to change what the interpreter must check
#: before the next instruction (CPL, IF, pending interrupts, translations, the clock).
_ATTENTION_WORDS = (
    "software_interrupt", "iret", "halt", "port_in", "port_out", "write_cr", "invlpg",
    "cpu.cpl =", "cpu.idtr =", "FLAG_IF",
)


def needs_attention(decoded: Decoded) -> bool:
    """Whether the instruction must run on the interpreter's careful path.

    True for every sensitive instruction (so they can be counted) and for any instruction whose
    semantics can change privilege, interrupt state, translations or devices.
    """
    return _ATTENTION[decoded.definition.opcode]


def needs_attention_opcode(opcode: int) -> bool:
    """`needs_attention` of an instruction by its opcode."""
    return _ATTENTION[opcode]


#: opcode -> `needs_attention` (worked out once: decoding is on the path of every first fetch)
_ATTENTION = {d.opcode: d.sensitive or any(w in d.semantics for w in _ATTENTION_WORDS)
              for d in ALL_INSTRUCTIONS}


def _static(definition) -> tuple:
    """What a `CodeEntry` takes from its definition alone: (length, sets_pc, memory,
    pairs_first, attention, privilege, factory, quiet).  `Instruction.length` and the semantics'
    substring tests are computed properties, too slow for every first fetch of a kernel."""
    memory = "cpu.load" in definition.semantics or "cpu.store" in definition.semantics
    return (definition.length, definition.sets_pc, memory,
            not (definition.sets_pc or memory or definition.privileged
                 or "raise" in definition.semantics),
            _ATTENTION[definition.opcode], definition.privilege, FACTORIES[definition.opcode],
            not set(re.findall(r"\bcpu\.(\w+)", definition.semantics)) - {"pc", "flags"})


#: opcode -> `_static` of its definition
_STATIC = {d.opcode: _static(d) for d in ALL_INSTRUCTIONS}
#: opcode -> size in bytes (4, or 8 with a 32-bit immediate)
LENGTHS = {opcode: static[0] for opcode, static in _STATIC.items()}


class Decodings:
    """What decoding a word and binding its handler give, remembered for every machine of the
    process: both are pure functions of the instruction's words and its pc (`decode_word`, the
    handler factories of `toyvisor.isa.codegen` bake in only fields, ``pc`` and ``npc``), so a
    kernel booted again — a benchmark round, a property test's next example, the nodes of a
    cluster running one image — pays for decoding its code once (a "pre-decoded image").  Each
    machine's `DecodeCache` still holds, counts and invalidates its own entries; only the
    immutable `Decoded` and its handler closure are shared.  Bounded: forgotten wholesale when
    `limit` words are remembered.

    A two-word instruction (``li``) is remembered per second word: `decode` calls `next_word`
    exactly when `decode_word` would (the first word decoded once before means the operands
    before the immediate are valid), so a fetch's #PF on the second word is raised alike."""

    def __init__(self, limit: int = 1 << 16) -> None:
        self.limit = limit
        #: (word << 32 | pc) -> (Decoded, handler), or for a two-word instruction a dict
        #: second word -> (Decoded, handler)
        self._known: dict[int, object] = {}

    def decode(self, word: int, pc: int, next_word: Callable[[], int] | None
               ) -> tuple[Decoded, Callable]:
        """(`decode_word(word, pc, next_word)`, its bound handler); raises as it does."""
        key = (word << 32) | pc
        known = self._known.get(key)
        if known is not None:
            if type(known) is tuple:
                return known
            ext = next_word()
            found = known.get(ext)
            if found is not None:
                return found
            return self._remember(decode_word(word, pc, lambda: ext), key)
        return self._remember(decode_word(word, pc, next_word), key)

    def _remember(self, decoded: Decoded, key: int) -> tuple[Decoded, Callable]:
        known = self._known
        if len(known) >= self.limit:
            known.clear()
        length = LENGTHS[decoded.definition.opcode]
        pc = decoded.pc
        found = (decoded, _STATIC[decoded.definition.opcode][6](
            **decoded.fields, pc=pc, npc=(pc + length) & M32))
        if length == 4:
            known[key] = found
        else:
            known.setdefault(key, {})[decoded.values[-1]] = found
        return found


#: The process's `Decodings` (a memo of pure functions; it changes no guest-visible behaviour).
DECODINGS = Decodings()


class CodeEntry:
    """One decoded instruction bound to its handler closure."""

    __slots__ = ("handler", "decoded", "attention", "privilege", "key", "pa", "pa2", "words",
                 "valid", "length", "sets_pc", "memory", "_inner", "pairs_first", "quiet")

    def __init__(self, decoded: Decoded, pa: int, pa2: int | None,
                 handler: Callable | None = None) -> None:
        pc = decoded.pc
        self.decoded = decoded
        # size in bytes; whether the instruction transfers control; whether it loads or stores
        # (a hook may then act: the interpreter's runs end there); whether it can lead a
        # superinstruction (`toyvisor.isa.codegen.pair_factory`)
        (length, self.sets_pc, self.memory, self.pairs_first, self.attention, privilege,
         factory, self.quiet) = _STATIC[decoded.definition.opcode]
        self.length = length
        self.handler = handler if handler is not None else factory(
            **decoded.fields, pc=pc, npc=(pc + length) & M32)
        self.privilege: Privilege = privilege
        self.key = (pa << 32) | pc
        self.pa = pa
        #: Physical address of the second word when it lies on another page, else None.
        self.pa2 = pa2
        #: Physical addresses of the instruction's words.
        self.words = (pa,) if length == 4 else (pa, pa + 4 if pa2 is None else pa2)
        self.valid = True
        self._inner = None

    def inner_handler(self):
        """The handler without the ``cpu.pc`` store (`INNER_FACTORIES`; only for an instruction
        that does not transfer control), bound on first use."""
        inner = self._inner
        if inner is None:
            decoded = self.decoded
            inner = self._inner = INNER_FACTORIES[decoded.definition.opcode](
                **decoded.fields, pc=decoded.pc, npc=(decoded.pc + self.length) & M32)
        return inner

    def pair_handler(self, second: CodeEntry, variant: str):
        """One handler running this instruction then `second` (see `pair_factory`)."""
        a, b = self.decoded, second.decoded
        return pair_factory(a.definition.opcode, b.definition.opcode, variant)(
            *(a.fields[name] for name in field_names(a.definition)), a.pc,
            (a.pc + self.length) & M32,
            *(b.fields[name] for name in field_names(b.definition)), b.pc,
            (b.pc + second.length) & M32)


class DecodeCache:
    """Decoded instructions of one machine, keyed by (physical address, pc)."""

    def __init__(self, memory: PhysicalMemory) -> None:
        self.memory = memory
        memory.on_code_write = self.invalidate
        self.entries: dict[int, CodeEntry] = {}
        #: physical word address → entries whose bytes include that word
        self._words: dict[int, list[CodeEntry]] = {}
        #: called with no argument after entries were dropped (CPUs clear their fetch caches)
        self.listeners: list[Callable[[], None]] = []
        self.decodes = 0
        self.invalidations = 0

    def get(self, pa: int, pc: int) -> CodeEntry | None:
        return self.entries.get((pa << 32) | pc)

    def insert(self, decoded: Decoded, pa: int, pa2: int | None = None,
               handler: Callable | None = None) -> CodeEntry:
        """Bind `decoded` (fetched from physical `pa`, second word at `pa2`; `handler` its bound
        handler if known) and remember it."""
        entry = CodeEntry(decoded, pa, pa2, handler)
        key = entry.key
        entries = self.entries
        old = entries.get(key)
        if old is not None:
            self._remove(old)
        self.decodes += 1
        entries[key] = entry
        flags = self.memory.page_flags
        words = self._words
        for word in entry.words:
            siblings = words.get(word)
            if siblings is None:
                words[word] = [entry]
            else:
                siblings.append(entry)
            flags[word >> PAGE_SHIFT] |= PAGE_CODE
        return entry

    def invalidate(self, pa: int, size: int) -> None:
        """Drop the entries overlapping physical ``[pa, pa+size)``."""
        dropped = False
        words = self._words
        first, end = pa & ~3, pa + size
        if (end - first) // 4 > len(words):
            hit = sorted(w for w in words if first <= w < end)
        else:
            hit = range(first, end, 4)
        for word in hit:
            entries = words.get(word)
            if entries:
                for entry in list(entries):
                    self._remove(entry)
                dropped = True
        if dropped:
            self.invalidations += 1
            for listener in self.listeners:
                listener()

    def _remove(self, entry: CodeEntry) -> None:
        entry.valid = False
        self.entries.pop(entry.key, None)
        words = self._words
        for word in entry.words:
            siblings = words.get(word)
            if siblings is not None:
                siblings.remove(entry)
                if not siblings:
                    del words[word]

    def clear(self) -> None:
        """Forget everything (the page flags stay; a later write finds nothing to drop)."""
        for entry in self.entries.values():
            entry.valid = False
        self.entries.clear()
        self._words.clear()
        for listener in self.listeners:
            listener()


__all__ = ["DECODINGS", "LENGTHS", "CodeEntry", "Decodings", "needs_attention_opcode", "DecodeCache", "needs_attention"]
