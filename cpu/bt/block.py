"""Translation blocks: what a block is, how one is formed, and the record the cache keeps.

**Definition.**  A *translation block* (TB) is the longest run of guest instructions that

1. starts at a guest pc (a linear address, 4-byte aligned) in a given *mode* — the CPL and
   whether paging is on — and is read from the physical page that pc maps to at translation time;
2. continues over consecutive instructions, in address order, all inside that one 4 KiB physical
   page (an instruction whose second word would lie on the next page is not included; a block
   never crosses a page);
3. ends, inclusively, at the first instruction that
   - transfers control (``sets_pc`` in the instruction table: jumps, conditional branches, call,
     ret, jmpr, callr, int, brk, iret, hlt), or
   - is *sensitive or privileged* (every instruction whose privilege class is not innocuous:
     cli, sti, popf, pushf, in, out, mtcr, mfcr, lidt, invlpg, iret, hlt, sidt, smsw, rdcs), or
   - must be seen by the machine between instructions (a software interrupt: int, brk), or
   - is *marked for a callout by adaptation*: an innocuous instruction that writes memory (``st``,
     ``stb``, ``xchg``, ``push``...; not a control transfer) whose physical address the translator
     was told to `Translator.adapt` because it kept trapping (a store into a write-protected guest
     page table): it becomes a callout tail like a privileged instruction;
4. or ends, exclusively, before an instruction that cannot be decoded (#UD is raised by the
   interpreter when execution gets there), at the end of the page, or after `max_block`
   instructions (64 by default).

The block's *body* is every instruction the generated function executes: all of them, except a
final sensitive/privileged instruction, software interrupt or adapted instruction, which is the
block's *tail*.  The engine runs a sensitive, privileged or adapted tail as a *callout* (``callouts.callout(cpu, decoded)``:
under a VMM, emulation against the virtual CPU) and a software-interrupt tail through the
machine's normal delivery.  A block is therefore entered only at its first instruction, and
inside its body nothing can change the CPL, IF, the address space, pending interrupts or the
clock's deadline: which is why interrupts need to be checked only at block boundaries.

A block is identified by ``(pc, physical address of pc, mode)``.  Looking a pc up after the guest
remapped its code therefore finds the translation of the bytes it now maps, never a stale one.
"""

from __future__ import annotations

from collections.abc import Callable

from collections.abc import Container, Mapping

from toyvisor.isa.encoding import Decoded
from toyvisor.isa.spec import M32, PAGE_MASK

from ..decode import CodeEntry, needs_attention_opcode

DEFAULT_MAX_BLOCK = 64


def writes_memory(definition) -> bool:
    """Whether the instruction's semantics store to memory (explicit operand or stack)."""
    return "cpu.store" in definition.semantics


def adaptable(decoded: Decoded) -> bool:
    """Whether `decoded` may be run as a callout because of adaptation: an innocuous instruction
    that writes memory and does not transfer control."""
    return adaptable_definition(decoded.definition)


def adaptable_definition(definition) -> bool:
    """`adaptable` for every instruction of `definition` (it depends on nothing else)."""
    return (not definition.sensitive and not definition.sets_pc and writes_memory(definition)
            and not needs_attention_opcode(definition.opcode))


def form_block(entry_at: Callable[[int, int], CodeEntry | None], pc: int, pa: int,
               max_block: int, adapted: Container[int] = frozenset(),
               entries: Mapping[int, CodeEntry] | None = None
               ) -> tuple[list[CodeEntry], CodeEntry | None]:
    """The instructions of the block at linear `pc` (physical `pa`): returns (body, tail).

    `entry_at(physical, address)` gives the decoded instruction there (the machine's shared
    `DecodeCache` entry), or None when it cannot be decoded or its second word lies on another
    page; `entries`, if given, is that cache's dict of entries (``pa << 32 | pc``), looked up
    first (most instructions of a block were decoded before).  `adapted` holds the physical
    addresses of instructions marked for a callout by adaptation: such an instruction, when
    `adaptable`, ends the block as its tail.

    Both empty/None when the first instruction cannot be translated (undecodable, or a two-word
    instruction straddling the page end): the interpreter then executes it.
    """
    body: list[CodeEntry] = []
    page_end = (pa | PAGE_MASK) + 1
    address, physical = pc, pa
    known = {}.get if entries is None else entries.get
    while len(body) < max_block and physical < page_end:
        entry = known((physical << 32) | address)
        if entry is None:
            entry = entry_at(physical, address)
            if entry is None:
                break
        elif entry.pa2 is not None:  # its second word lies on another page
            break
        if entry.attention:  # every sensitive instruction, int, brk...
            return body, entry
        if adapted and physical in adapted and adaptable(entry.decoded):
            return body, entry
        body.append(entry)
        if entry.sets_pc:
            break
        length = entry.length
        address = (address + length) & M32
        physical += length
    return body, None


#: A block without exits or source lines shares these (never mutated: replaced when set).
_NONE: dict = {}
_NONE_LINES: tuple = ()


class Block:
    """One translated block as the cache holds it."""

    __slots__ = ("pc", "pa", "end_pa", "mode", "key", "fn", "cells", "exits", "n", "body_n",
                 "insns", "lines", "tail", "tail_handler", "tail_native", "incoming", "valid", "source",
                 "linkable", "heat", "hot", "handlers", "memory_body")

    def __init__(self, pc: int, pa: int, mode: int, body: list[CodeEntry],
                 tail: CodeEntry | None):
        # One pass over the body: a kernel forms hundreds of blocks it runs a few times each.
        #: the interpreter's handler of the tail (what `DirectCallouts` runs for it), or None
        self.tail_native = None
        self.pc = pc
        self.pa = pa
        size = 0
        handlers = []
        insns = []
        quiet = True
        for entry in body:
            size += entry.length
            handlers.append(entry.handler)
            insns.append(entry.decoded)
            quiet = quiet and entry.quiet
        #: the interpreter's handler of each body instruction (what a cold block runs)
        self.handlers = tuple(handlers)
        #: whether a body instruction touches anything but registers, flags and the pc (memory,
        #: a counter a hook may watch): only such an instruction can raise the engine's signal
        #: (`toyvisor.cpu.bt.cold`)
        self.memory_body = not quiet
        self.body_n = len(insns)
        if tail is not None:
            size += tail.length
            self.tail_native = tail.handler
            tail = tail.decoded
            insns.append(tail)
        #: physical bytes [pa, end_pa) hold the block's instructions
        self.end_pa = pa + size
        self.mode = mode
        self.key = 0
        self.fn = None
        #: closure cells holding chained successors, by cell name
        self.cells: dict = _NONE
        #: constant destination pc -> cell name
        self.exits: dict[int, str] = _NONE
        #: instructions in the block: the body plus the tail
        self.n = len(insns)
        #: the decoded instructions, body then tail
        self.insns = insns = tuple(insns)
        self.lines: list[int] = _NONE_LINES
        self.tail = tail
        self.tail_handler = None
        #: (block, cell) pairs chained to this block (unlinked when it is invalidated); an empty
        #: tuple until the first link (most blocks of a kernel run are never a link's target)
        self.incoming: list | tuple = ()
        self.valid = True
        self.source = ""
        #: whether this block's exits may be chained to successors (set by the translator)
        self.linkable = False
        #: entries so far while cold; whether `fn` is the compiled function (`toyvisor.cpu.bt.cold`)
        self.heat = 0
        self.hot = False

    @property
    def pcs(self) -> tuple[int, ...]:
        """The pc of each instruction (asked only when one faults: not kept)."""
        return tuple([d.pc for d in self.insns])

    def pa_of(self, index: int) -> int:
        """Physical address of instruction `index` (the block lies in one physical page)."""
        return self.pa + ((self.insns[index].pc - self.pc) & M32)

    def index_of_line(self, line: int) -> int:
        """The index of the instruction whose code covers source line `line`."""
        index = 0
        for i, start in enumerate(self.lines):
            if start <= line:
                index = i
            else:
                break
        return index

    def __repr__(self) -> str:
        state = "" if self.valid else " invalid"
        tail = f" + {self.tail.definition.mnemonic}" if self.tail is not None else ""
        return f"<Block pc={self.pc:#010x} pa={self.pa:#x} {self.body_n}{tail}{state}>"


__all__ = ["Block", "DEFAULT_MAX_BLOCK", "adaptable", "adaptable_definition", "form_block", "writes_memory"]
