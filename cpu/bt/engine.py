"""The binary translator: a translation cache in the style of QEMU's TCG, run against a `CPU`.

    >>> translator = Translator(machine.cpu, DirectCallouts())
    >>> translator.run(1_000_000)          # like CPU.run: returns the stop reason
    >>> translator.stats.blocks_translated

**Cache.**  Blocks (see `toyvisor.cpu.bt.block`) are kept in one dict keyed by ``(physical
address of pc, pc, mode)`` where the mode holds the CPL, cr0.PG and whether the block is a
one-instruction block.  Before entering a block that was not reached through a chain link the
engine translates the pc exactly as an instruction fetch does (TLB, walk, A bits, #PF): a guest
that remaps its code (cr3 write, invlpg) finds the translation of what the pc now maps to.

**Invalidation.**  Every physical page holding translated code is marked ``PAGE_CODE`` in the
memory's page flags, and the engine chains itself into ``memory.on_code_write`` (the hook the
decode cache uses).  A write to such a page drops exactly the blocks whose bytes it overlaps
(a per-page list of blocks plus a per-word use count filters out writes to data sharing a page
with code), unlinks every chain into them, and raises the signal that makes a running block stop
right after the writing instruction — so a store into the block being executed takes effect for
the very next instruction, as on the interpreter.

**Chaining.**  A block whose last instruction has constant destinations (fallthrough, jmp, call,
both sides of a conditional branch) returns the successor block held in a closure cell of its
function; the engine fills the cell the first time it looks that successor up, and the
dispatcher then goes from block to block without hashing.  With paging on, only successors on
the same virtual page are chained (a remap moves both ends together; QEMU's rule), with paging
off every constant successor is.  Blocks ending in a callout or software interrupt are never
chained: the dispatcher re-examines the machine after them.

**Timing.**  Interrupts are serviced (and the budget checked) exactly where the interpreter does
it as seen from the guest: a block is entered only if all its instructions fit before the next
timer deadline and within the budget; otherwise the engine runs one-instruction blocks up to the
deadline.  Nothing inside a block body can make an interrupt deliverable (bodies hold no
sensitive instruction), so checking at block boundaries is checking before every instruction.
A block compiled as a loop (`toyvisor.cpu.bt.codegen`) receives the room left and iterates only
while a whole further pass fits in it.

**Cold and hot.**  A new block runs on the interpreter's handler closures (`toyvisor.cpu.bt.cold`)
and is compiled to Python after `hot_threshold` entries (a block that branches to itself
`LOOP_FACTOR` times sooner); both forms behave identically (same
exits, chaining, statistics), so what is counted as translated does not depend on it.  Nested
("vt" non-root) guests run as direct execution (below): the careful path of their blocks'
tails, delivery and the interrupt check make their VM exits.

**Adaptation.**  A user (a VMM) may mark the physical address of an innocuous memory-writing
instruction for a callout with `adapt` — VMware's *adaptive* binary translation: an instruction
that keeps trapping (a store into a write-protected guest page table) is retranslated so that
the VMM does its work without the trap.  `adapt` drops exactly the blocks holding the
instruction (unlinking every chain into them); retranslation then ends a block at the instruction
and makes it the block's callout tail (`toyvisor.cpu.bt.block.form_block`).  The marks are keyed
by host-physical address (under a VMM, VM slices never overlap) and last until `unadapt` drops
them (a VMM forgetting a VM's slice); they survive writes to the code, but only an
`adaptable` instruction (an innocuous, non-control-transfer store) at a marked address is turned
into a callout.  While the engine delivers a fault raised inside translated code,
`faulting_pa` holds the physical address of the faulting instruction (None otherwise): that is
how a VMM learns which instruction to adapt.

**Policy.**  `translate_cpls` names the rings whose code is translated; code of the other rings
runs "directly".  A VMM sets it to the ring its guest kernel is deprivileged to and lets ring 3
run directly.  Direct execution uses blocks too (their own cache entries, mode bit
``_MODE_DIRECT``): a body holds no sensitive instruction, so running it compiled *is* running it
on the real CPU; the block's last sensitive instruction or ``int`` runs on the interpreter's
careful path (never a callout), its instructions count as ``direct_instructions``, and such
blocks are not translations (no ``blocks_translated``, ``cache_hits``... and no priced
``translation`` event).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import CellType

import attrs

from toyvisor.isa.encoding import DecodeError
from toyvisor.isa.faults import GuestFault
from toyvisor.isa.spec import CR0_PG, FLAG_IF, M32, PAGE_MASK, PAGE_SHIFT, Privilege
from toyvisor.isa.table import ALL_INSTRUCTIONS

from ..cpu import BUDGET, CPU
from ..decode import DECODINGS, LENGTHS, CodeEntry
from ..events import InstructionEvent
from ..memory import PAGE_CODE
from ..mmu import FETCH
from .block import DEFAULT_MAX_BLOCK, Block, adaptable_definition, form_block
from .callouts import Callouts, DirectCallouts
from .codegen import MemoryMode, Signal, block_source, compile_block, exit_pcs
from .cold import cold_function

#: Entries of a block after which it is compiled to Python.  Compiling one costs about half a
#: millisecond (median over minikernel's and nanobench's blocks, 2–3 instructions each), as
#: much as some ten thousand instructions on handler closures, and most blocks of a kernel run
#: a few hundred times in a whole run: tuned on minikernel, nanobench and the three bench loops
#: so that a run of 40,000 instructions is not slower than on the interpreter
#: (docs/performance.md), while loops (`LOOP_FACTOR`) still compile early.
DEFAULT_HOT_THRESHOLD = 5000
#: How many times sooner a block that branches to itself is hot (`Translator._heating`).
LOOP_FACTOR = 30

#: opcode -> whether a block tail of it is a software interrupt the machine delivers (not a
#: sensitive instruction, not an adaptable store: those are callouts)
_DELIVERED_TAIL = {d.opcode: not d.sensitive and not adaptable_definition(d)
                   for d in ALL_INSTRUCTIONS}

#: The names of a block's chaining cells, in `exit_pcs` order (at most two exits).
_EXIT_NAMES = ("_l0", "_l1")
#: the exit cells of a block with a tail (never chained; never mutated)
_NO_CELLS: dict = {}

#: Mode bits of a cache key.
_MODE_PAGING = 1
_MODE_CPL_SHIFT = 1
_MODE_SINGLE = 8
#: a block of a ring that is not translated, run as direct execution (see `_run`)
_MODE_DIRECT = 16
_MODE_BITS = 5


@attrs.frozen
class TranslatorStats:
    """A snapshot of a translator's counters (cumulative over its runs)."""

    #: blocks translated (cache misses that produced a block)
    blocks_translated: int
    #: guest instructions translated: the `translation` event (once per instruction per block)
    instructions_translated: int
    #: lookups that found a block / had to translate
    cache_hits: int
    cache_misses: int
    #: blocks dropped because their code was written, an instruction in them was adapted, or by
    #: `flush`
    invalidations: int
    #: block-to-block transitions that followed a chain link (no lookup)
    chained: int
    #: chain links made
    links: int
    #: guest instructions retired inside translated code (`translated_instruction` event);
    #: includes software interrupts run at block ends, excludes callouts
    translated_instructions: int
    #: guest instructions retired by the interpreter: untranslated rings, undecodable or
    #: page-straddling instructions (`instruction` event)
    direct_instructions: int
    #: callouts made (each sensitive or privileged instruction reached in translated code)
    callouts: int
    callouts_by_mnemonic: dict[str, int]
    #: blocks left early because a write hit translated code or the CPU asked for attention
    early_exits: int
    #: instructions marked for a callout by `Translator.adapt` (cumulative)
    adaptations: int = 0
    #: instruction addresses currently marked
    adapted: int = 0
    #: block tails (software interrupts, `iret`, port I/O...) after which the dispatcher went
    #: straight on to the next block (`Translator._chain_tail`)
    tails_chained: int = 0

    def events(self) -> dict[str, int]:
        """The engine's share of the cost model's events (docs/vmm-design.md)."""
        events = {
            "translation": self.instructions_translated,
            "translated_instruction": self.translated_instructions,
            "instruction": self.direct_instructions,
            "callout": self.callouts,
        }
        return {name: count for name, count in events.items() if count}


class SharedTranslations:
    """What the translators of one machine's CPUs share (QEMU's one translation cache for every
    vCPU): each block's formed instructions and its compiled code, keyed like the blocks.

    A CPU that reaches a pc another CPU has translated in the same mode reuses the form (no new
    translation is counted: it is a cache hit) and, once it exists, the compiled code (bound to
    its own registers without compiling again).  A write to translated code drops the shared
    entries it overlaps, as each translator drops its own blocks, before the next instruction of
    any CPU runs."""

    def __init__(self, memory) -> None:
        self.memory = memory
        #: translators using this cache (`Translator` counts itself in): with one, the shared heat
        #: is the block's own and is not kept
        self.users = 0
        #: key -> (body, tail, end physical address)
        self.forms: dict[int, tuple[list[CodeEntry], CodeEntry | None, int]] = {}
        #: (key, loads through the CPU) -> the compiled block's code object and source
        self.codes: dict[tuple[int, bool], tuple[object, object]] = {}
        #: key -> entries of the block on every CPU while it is cold
        self.heat: dict[int, int] = {}
        #: physical page -> keys of forms starting on it
        self._pages: dict[int, set[int]] = {}
        previous = memory.on_code_write

        def on_code_write(pa: int, size: int) -> None:
            if previous is not None:
                previous(pa, size)
            self._code_written(pa, size)

        memory.on_code_write = on_code_write

    def add(self, key: int, pa: int, body: list[CodeEntry], tail: CodeEntry | None,
            end_pa: int) -> None:
        self.forms[key] = (body, tail, end_pa)
        self._pages.setdefault(pa >> PAGE_SHIFT, set()).add(key)

    def _code_written(self, pa: int, size: int) -> None:
        end = pa + size
        for page in range((pa >> PAGE_SHIFT) - 1, ((end - 1) >> PAGE_SHIFT) + 1):
            keys = self._pages.get(page)
            if not keys:
                continue
            for key in [k for k in keys
                        if (k >> (32 + _MODE_BITS)) < end and pa < self.forms[k][2]]:
                keys.discard(key)
                del self.forms[key]
                self.heat.pop(key, None)
                self.codes.pop((key, False), None)
                self.codes.pop((key, True), None)


class Translator:
    """Runs a CPU by binary translation.  See the module docstring.

    `callouts` receives every sensitive or privileged instruction of translated code
    (`DirectCallouts` by default: execute it natively).  `max_block` bounds a block's length.
    """

    def __init__(self, cpu: CPU, callouts: Callouts | None = None, *,
                 max_block: int = DEFAULT_MAX_BLOCK,
                 translate_cpls: Iterable[int] = (0, 1, 2, 3),
                 hot_threshold: int = DEFAULT_HOT_THRESHOLD,
                 shared: SharedTranslations | None = None) -> None:
        if max_block < 1:
            raise ValueError(f"max_block must be at least 1, not {max_block}")
        if hot_threshold < 1:
            raise ValueError(f"hot_threshold must be at least 1, not {hot_threshold}")
        self.cpu = cpu
        #: entries after which a block is compiled to Python (`toyvisor.cpu.bt.cold`)
        self.hot_threshold = hot_threshold
        self._compiled = 0
        self.callouts: Callouts = callouts if callouts is not None else DirectCallouts()
        self.max_block = max_block
        self.translate_cpls = translate_cpls
        self.memory = cpu.memory
        #: the translations shared with the other CPUs' translators (None: not shared)
        self.shared = shared
        if shared is not None:
            shared.users += 1
        self._signal = Signal()
        #: key -> block
        self._blocks: dict[int, Block] = {}
        #: physical page -> blocks on it
        self._pages: dict[int, list[Block]] = {}
        #: physical page -> per-word count of blocks covering the word
        self._words: dict[int, list[int]] = {}
        # counters
        self._translated_blocks = 0
        self._translated_insns = 0
        self._hits = 0
        self._misses = 0
        self._invalidations = 0
        self._chained = 0
        self._links = 0
        self._executed = 0
        self._direct = 0
        self._callouts: dict[str, int] = {}
        #: physical addresses of instructions marked for a callout by adaptation
        self._adapted: set[int] = set()
        self._adaptations = 0
        self._tails_chained = 0
        #: physical address of the translated instruction whose fault is being delivered
        self.faulting_pa: int | None = None
        self._attach()

    # ------------------------------------------------------------------------------------------
    # Hooks into the machine
    # ------------------------------------------------------------------------------------------

    def _attach(self) -> None:
        memory, cpu, signal = self.memory, self.cpu, self._signal
        previous = memory.on_code_write

        def on_code_write(pa: int, size: int) -> None:
            if previous is not None:
                previous(pa, size)
            self._code_written(pa, size)

        self._previous_on_code_write = previous
        self._on_code_write = on_code_write
        memory.on_code_write = on_code_write
        # A hook running inside an instruction (an audit hook, a monitor) that changes what the
        # machine checks between instructions calls CPU.request_attention: the running block
        # must stop after the current instruction.  (This per-instance wrapper stands in for a
        # listener list on the CPU.)
        original = cpu.request_attention

        def request_attention() -> None:
            signal.exit = True
            original()

        self._original_request_attention = original
        cpu.request_attention = request_attention
        # Blocks inline loads only while no page is read-watched (the audit must see them).
        memory.add_listener(self._watching_changed)

    def _watching_changed(self) -> None:
        # Housekeeping, not a change of the guest's code: not counted as invalidations.
        counted = self._invalidations
        self.flush()
        self._invalidations = counted
        self._signal.exit = True

    def close(self) -> None:
        """Detach from the machine (the blocks are dropped)."""
        if self.memory.on_code_write is self._on_code_write:
            self.memory.on_code_write = self._previous_on_code_write
        if self.cpu.__dict__.get("request_attention") is not None:
            del self.cpu.request_attention
        self.memory.remove_listener(self._watching_changed)
        self.flush()

    @property
    def translate_cpls(self) -> frozenset[int]:
        return self._translate_cpls

    @translate_cpls.setter
    def translate_cpls(self, cpls: Iterable[int]) -> None:
        cpls = frozenset(cpls)
        if not cpls <= {0, 1, 2, 3}:
            raise ValueError(f"CPLs are 0..3, not {sorted(cpls)}")
        self._translate_cpls = cpls

    # ------------------------------------------------------------------------------------------
    # The cache
    # ------------------------------------------------------------------------------------------

    @property
    def stats(self) -> TranslatorStats:
        return TranslatorStats(
            blocks_translated=self._translated_blocks,
            instructions_translated=self._translated_insns,
            cache_hits=self._hits,
            cache_misses=self._misses,
            invalidations=self._invalidations,
            chained=self._chained + self._signal.iterations,
            links=self._links,
            translated_instructions=self._executed,
            direct_instructions=self._direct,
            callouts=sum(self._callouts.values()),
            callouts_by_mnemonic=dict(sorted(self._callouts.items())),
            early_exits=self._signal.early_exits,
            adaptations=self._adaptations,
            adapted=len(self._adapted),
            tails_chained=self._tails_chained,
        )

    #: the fields of `counters`, in order
    COUNTERS = ("blocks_translated", "instructions_translated", "cache_hits", "cache_misses",
                "invalidations", "direct_instructions")

    def counters(self) -> tuple[int, ...]:
        """The `COUNTERS` of `stats`, cheaply and exactly as they stand even in the middle of a
        run (a VMM reads them at every entry to credit each VM with its share of the work)."""
        return (self._translated_blocks, self._translated_insns, self._hits, self._misses,
                self._invalidations, self._direct)

    @property
    def blocks(self) -> list[Block]:
        """The valid blocks, by pc."""
        return sorted(self._blocks.values(), key=lambda b: (b.pc, b.mode))

    def _lookup(self, single: bool, direct: bool = False) -> Block | None:
        """The block at ``cpu.pc`` for the current mode, translated if needed; None when the
        instruction there must run on the interpreter (misaligned pc, fetch fault, #UD,
        page-straddling instruction)."""
        cpu = self.cpu
        pc = cpu.pc
        if pc & 3:
            return None
        cpl = cpu.cpl
        mmu = cpu.mmu
        if cpu.cr0 & CR0_PG or mmu.nested:
            entry = mmu.tlb.get(pc >> PAGE_SHIFT)
            if entry is None or cpl > entry[1]:
                try:
                    pa = mmu.translate(pc, cpl, FETCH)
                except GuestFault:
                    return None
            else:
                pa = entry[0] | (pc & PAGE_MASK)
            mode = (cpl << _MODE_CPL_SHIFT) | _MODE_PAGING
        else:
            if pc > self.memory.size - 4:
                return None
            pa = pc
            mode = cpl << _MODE_CPL_SHIFT
        if single:
            mode |= _MODE_SINGLE
        if direct:
            mode |= _MODE_DIRECT
            key = (((pa << 32) | pc) << _MODE_BITS) | mode
            block = self._blocks.get(key)
            return block if block is not None else self._translate(pc, pa, mode, key)
        key = (((pa << 32) | pc) << _MODE_BITS) | mode
        block = self._blocks.get(key)
        if block is not None:
            self._hits += 1
            return block
        self._misses += 1
        return self._translate(pc, pa, mode, key)

    def _entry_at(self, physical: int, address: int) -> CodeEntry | None:
        """The decoded instruction at `physical` for pc `address`, from the machine's decode
        cache (decoded now if needed); None if it is undecodable or straddles a page end.
        (`form_block` looks the cache up itself first: this is its miss path.)"""
        code = self.cpu.code
        entry = code.get(physical, address)
        if entry is not None:
            return entry if entry.pa2 is None else None
        memory = self.memory
        page_end = (physical | PAGE_MASK) + 1

        def next_word() -> int:
            if physical + 4 >= page_end:
                raise DecodeError("crosses a page")
            return memory.read32(physical + 4)

        try:
            decoded, handler = DECODINGS.decode(memory.read32(physical), address, next_word)
        except (DecodeError, GuestFault):
            return None
        return code.insert(decoded, physical, None, handler)

    def _translate(self, pc: int, pa: int, mode: int, key: int) -> Block | None:
        single = mode & _MODE_SINGLE
        direct = mode & _MODE_DIRECT
        # another CPU's translation of the same code in the same mode (not while adapting:
        # adaptation's marks are this translator's own)
        adapted = self._adapted
        shared = self.shared if not adapted else None
        form = None if shared is None else shared.forms.get(key)
        if form is not None:
            body, tail, _end = form
        else:
            body, tail = form_block(self._entry_at, pc, pa, 1 if single else self.max_block,
                                    () if direct else adapted, self.cpu.code.entries)
            if not body and tail is None:
                return None
        block = Block(pc, pa, mode, body, tail)
        if shared is not None and form is None:
            shared.add(key, pa, body, tail, block.end_pa)
        block.key = key
        if tail is None:
            exits = exit_pcs(block.insns, tail=None, end_pc=self._end_pc(block))
            cell_list = [CellType(None) for _ in exits]
            block.exits = dict(zip(exits, _EXIT_NAMES))
            block.cells = dict(zip(_EXIT_NAMES, cell_list))
            cells = dict(zip(exits, cell_list))
            block.linkable = not single and bool(exits)
        else:
            cells = _NO_CELLS
            if _DELIVERED_TAIL[tail.decoded.definition.opcode]:
                block.tail_handler = tail.handler  # a software interrupt: the machine delivers it
        block.fn = cold_function(block, self.cpu, self._signal, cells, self._heating(block))
        self._blocks[key] = block
        page = pa >> PAGE_SHIFT
        blocks = self._pages.get(page)
        if blocks is None:
            self._pages[page] = [block]
            words = self._words[page] = [0] * (1 << (PAGE_SHIFT - 2))
        else:
            blocks.append(block)
            words = self._words[page]
        self.memory.page_flags[page] |= PAGE_CODE
        first = (pa & PAGE_MASK) >> 2
        last = ((block.end_pa - 1) & PAGE_MASK) >> 2
        words[first] += 1
        while first < last:
            first += 1
            words[first] += 1
        if form is not None:
            if not direct:  # found in the shared cache: a hit, not a translation
                self._misses -= 1
                self._hits += 1
            if (key, self.memory.read_watched) in shared.codes:
                self._compile(block)
        elif not direct:  # direct execution's blocks are the engine's business, not translations
            self._translated_blocks += 1
            self._translated_insns += block.n
        return block

    @staticmethod
    def _end_pc(block: Block) -> int:
        """Where control goes after the body when its last instruction does not set the pc."""
        if block.tail is not None:
            return block.tail.pc
        last = block.insns[block.body_n - 1]
        return (last.pc + LENGTHS[last.definition.opcode]) & M32

    def _heating(self, block: Block) -> tuple:
        """How a cold block heats on every entry (`toyvisor.cpu.bt.cold`): ``(step, the
        translator, the shared heat dict or None, the block's key, this translator's adaptation
        marks)``.  A block that branches to itself is hot `LOOP_FACTOR` times sooner: compiled,
        it iterates inside its function, which also saves the dispatcher's round trip of every
        iteration.  The entries of every CPU sharing the translation count (not while adapting:
        adaptation's marks are this translator's own): a loop every CPU runs is hot as soon as
        on one CPU.  Once hot (``translator.hot_threshold``) and still valid, the block is
        compiled (`_compile`)."""
        step = LOOP_FACTOR if block.pc in block.exits else 1
        shared = self.shared
        heats = None if shared is None or shared.users < 2 else shared.heat
        return step, self, heats, block.key, self._adapted

    def _compile(self, block: Block) -> None:
        """Replace `block`'s cold function by its compiled one (same exits, same links)."""
        memory = self.memory
        mode = block.mode
        shared = self.shared if not self._adapted else None
        code_key = (block.key, memory.read_watched)
        compiled = None if shared is None else shared.codes.get(code_key)
        if compiled is not None:
            code, source = compiled
        else:
            body = list(block.insns[:block.body_n])
            source = block_source(
                body, tail=block.tail, end_pc=self._end_pc(block), loop=not mode & _MODE_SINGLE,
                mode=MemoryMode(bool(mode & _MODE_PAGING), mode >> _MODE_CPL_SHIFT & 3,
                                memory.read_watched, memory.size))
            code = compile(source.text, f"<bt:{block.pc:#010x}>", "exec")
            if shared is not None and shared.forms.get(block.key) is not None:
                shared.codes[code_key] = (code, source)
        fn, cells = compile_block(source, self.cpu, self._signal, code)
        for name, cell in cells.items():
            cell.cell_contents = block.cells[name].cell_contents
        block.cells = cells
        block.fn = fn
        block.lines = source.lines
        block.source = source.text
        block.hot = True
        self._compiled += 1

    def _link(self, source: Block, target: Block, pc: int) -> None:
        """Chain `source`'s exit to `pc` to `target` when that is safe."""
        if not (source.linkable and source.valid and target.valid and target.mode == source.mode):
            return
        name = source.exits.get(pc)
        if name is None:
            return
        if source.mode & _MODE_PAGING and (pc ^ source.pc) >> PAGE_SHIFT:
            return  # another virtual page: its mapping may change independently
        cell = source.cells[name]
        if cell.cell_contents is None:
            cell.cell_contents = target
            if target.incoming:
                target.incoming.append((source, name))
            else:
                target.incoming = [(source, name)]
            self._links += 1

    def _invalidate(self, block: Block) -> None:
        if not block.valid:
            return
        block.valid = False
        self._invalidations += 1
        if self._blocks.get(block.key) is block:
            del self._blocks[block.key]
        page = block.pa >> PAGE_SHIFT
        self._pages[page].remove(block)
        words = self._words[page]
        for word in range((block.pa & PAGE_MASK) >> 2, ((block.end_pa - 1) & PAGE_MASK) // 4 + 1):
            words[word] -= 1
        for source, name in block.incoming:
            cell = source.cells[name]
            if cell.cell_contents is block:
                cell.cell_contents = None
        block.incoming = ()
        for cell in block.cells.values():
            cell.cell_contents = None

    def _code_written(self, pa: int, size: int) -> None:
        """``memory.on_code_write``: drop the blocks the write ``[pa, pa+size)`` overlaps."""
        end = pa + size
        hit = False
        for page in range(pa >> PAGE_SHIFT, ((end - 1) >> PAGE_SHIFT) + 1):
            words = self._words.get(page)
            if words is None:
                continue
            base = page << PAGE_SHIFT
            low, high = max(pa, base), min(end, base + (1 << PAGE_SHIFT))
            if not any(words[(low - base) >> 2:((high - 1 - base) >> 2) + 1]):
                continue
            for block in [b for b in self._pages[page] if b.pa < high and low < b.end_pa]:
                self._invalidate(block)
                hit = True
        if hit:
            self._signal.exit = True

    def flush(self) -> None:
        """Drop every block (a later lookup retranslates)."""
        for block in list(self._blocks.values()):
            self._invalidate(block)

    def invalidate(self, pa: int, size: int) -> int:
        """Drop every block whose code overlaps physical ``[pa, pa+size)`` (a VMM dropping one
        VM's translations); returns how many were dropped."""
        before = self._invalidations
        end = pa + size
        for page in range(pa >> PAGE_SHIFT, ((end - 1) >> PAGE_SHIFT) + 1):
            for block in [b for b in self._pages.get(page, ()) if b.pa < end and pa < b.end_pa]:
                self._invalidate(block)
        return self._invalidations - before

    # ------------------------------------------------------------------------------------------
    # Adaptation
    # ------------------------------------------------------------------------------------------

    def adapt(self, pa: int) -> int:
        """Mark the instruction at physical `pa` for a callout (see the module docstring) and
        drop exactly the blocks holding it; returns how many were dropped (0 if it was marked
        already)."""
        if pa in self._adapted:
            return 0
        self._adapted.add(pa)
        self._adaptations += 1
        return self._drop_holding(pa, pa + 1)

    def unadapt(self, pa: int, size: int) -> int:
        """Forget the marks on physical ``[pa, pa+size)`` and drop the blocks holding the
        instructions they marked; returns how many marks were forgotten."""
        end = pa + size
        marks = [address for address in self._adapted if pa <= address < end]
        for address in marks:
            self._adapted.discard(address)
            self._drop_holding(address, address + 1)
        return len(marks)

    def is_adapted(self, pa: int) -> bool:
        return pa in self._adapted

    def _drop_holding(self, pa: int, end: int) -> int:
        before = self._invalidations
        for block in [b for b in self._pages.get(pa >> PAGE_SHIFT, ())
                      if b.pa < end and pa < b.end_pa]:
            self._invalidate(block)
        return self._invalidations - before

    # ------------------------------------------------------------------------------------------
    # Running
    # ------------------------------------------------------------------------------------------

    def run(self, max_steps: int, trace: Callable[[object], None] | None = None) -> str:
        """Run the CPU for at most `max_steps` steps, as `CPU.run` does (same stop reasons, same
        budget accounting, same observable behaviour).  With `trace`, every instruction runs as a
        one-instruction block and is reported as an `InstructionEvent` first (traps and the stop
        are reported by the CPU)."""
        cpu = self.cpu
        if max_steps < 0:
            raise ValueError(f"max_steps must not be negative, not {max_steps}")
        if cpu.stop_reason == BUDGET:
            cpu.stop_reason = None
        if cpu.stop_reason is not None:
            return cpu.stop_reason
        end = cpu.steps + max_steps
        cpu._trace = trace
        try:
            if trace is None:
                self._run(end)
            else:
                self._run_traced(end, trace)
        finally:
            cpu._trace = None
        return cpu.stop_reason

    def _step(self) -> None:
        """One instruction on the interpreter's careful path."""
        cpu = self.cpu
        before = cpu.retired
        cpu._step()
        self._direct += cpu.retired - before

    def _run_direct(self, room: int) -> None:
        """The interpreter's fast loop for up to `room` instructions of an untranslated ring,
        then one careful step on a fetch-cache miss."""
        done, missed = self.cpu.run_direct(room)
        self._direct += done
        if missed and self.cpu.stop_reason is None:
            self._step()

    def _fault_index(self, block: Block, fault: GuestFault) -> int:
        """Which instruction of `block` raised `fault`: from the traceback's line number in a
        compiled block, as saved by the cold function otherwise (it may have been compiled
        while it ran)."""
        if block.hot:
            code = block.fn.__code__
            frame = fault.__traceback__
            while frame is not None:
                if frame.tb_frame.f_code is code:
                    return block.index_of_line(frame.tb_lineno)
                frame = frame.tb_next
        return self._signal.index

    def _run_tail(self, block: Block) -> None:
        """Run a block's final callout or software interrupt (``cpu.pc`` is at it)."""
        cpu = self.cpu
        decoded = block.tail
        platform = cpu.platform
        platform.clock += 1  # as on the interpreter: the instruction counts while it executes
        try:
            if block.tail_handler is None:
                mnemonic = decoded.definition.mnemonic
                self._callouts[mnemonic] = self._callouts.get(mnemonic, 0) + 1
                self.callouts.callout(cpu, decoded)
            else:
                block.tail_handler(cpu, cpu.regs)
                self._executed += 1
        except GuestFault as fault:
            platform.clock -= 1
            cpu.deliver(fault.vector, fault.error, decoded.pc, "exception", fault.address)
            return
        cpu.retired += 1

    def _chain_tail(self, block: Block) -> bool:
        """Run `block`'s tail (as `_run_tail` with `DirectCallouts`, with the retired count and
        the clock up to date) and tell whether the dispatcher may go straight on to the next
        block, i.e. whether the tail left alone everything the dispatcher examines between
        blocks: False when it stopped the CPU, asked for attention (a write over code, a hook),
        moved the clock by more than its own tick (`hlt`) or the timer deadline (a write to the
        timer's ports), made an interrupt deliverable (`iret`, `sti`, `popf`, a device raising
        its line, a PIC mask) or left the translated rings or root mode.  A tail that faults is
        delivered as its exception: one budget step, as the room counted it, and no tick.  So a
        system call's `int` and `iret` and a driver's polled `in` cost no trip through the
        dispatcher.  Only with `DirectCallouts` (see `_run`): a callout runs the interpreter's
        handler of the instruction (what `DirectCallouts.callout` runs) and is counted as it
        counts it."""
        cpu = self.cpu
        platform = cpu.platform
        timer = platform.timer
        clock, deadline = platform.clock, timer.deadline
        decoded = block.tail
        platform.clock = clock + 1  # as on the interpreter: the instruction counts while it executes
        try:
            block.tail_native(cpu, cpu.regs)
        except GuestFault as fault:
            platform.clock -= 1
            if block.tail_handler is None:
                self._count_callout(decoded)
            cpu.deliver(fault.vector, fault.error, decoded.pc, "exception", fault.address)
            return False if cpu.stop_reason is not None or self._signal.exit \
                else self._chain_on(clock, deadline)
        if block.tail_handler is None:
            definition = decoded.definition
            callouts = self._callouts
            mnemonic = definition.mnemonic
            callouts[mnemonic] = callouts.get(mnemonic, 0) + 1
            privilege = definition.privilege
            if privilege is Privilege.PRIVILEGED:
                cpu.privileged_executed += 1
            elif privilege is not Privilege.INNOCUOUS:
                cpu.sensitive_executed += 1
        else:
            self._executed += 1
        cpu.retired += 1
        # `_chain_on`, in line (a kernel chains a tail every few dozen instructions)
        if cpu.stop_reason is not None or self._signal.exit or cpu.nonroot \
                or platform.clock - clock > 1 or platform.timer.deadline != deadline \
                or cpu.cpl not in self._translate_cpls \
                or (cpu.flags & FLAG_IF and platform.pic.deliverable()):
            return False
        self._tails_chained += 1
        return True

    def _chain_on(self, clock: int, deadline: int | None) -> bool:
        """`_chain_tail`'s verdict once the tail ran without stopping or signalling."""
        cpu = self.cpu
        platform = cpu.platform
        if cpu.nonroot or platform.clock - clock > 1 or platform.timer.deadline != deadline \
                or cpu.cpl not in self._translate_cpls:
            return False
        if cpu.flags & FLAG_IF and platform.pic.deliverable():
            return False
        self._tails_chained += 1
        return True

    def _count_callout(self, decoded) -> None:
        mnemonic = decoded.definition.mnemonic
        self._callouts[mnemonic] = self._callouts.get(mnemonic, 0) + 1

    def _deliver_block_fault(self, block: Block, index: int, fault: GuestFault) -> None:
        """Deliver `fault`, raised by instruction `index` of `block`, as its exception."""
        cpu = self.cpu
        pc = cpu.pc = block.insns[index].pc
        self.faulting_pa = block.pa_of(index)
        try:
            cpu.deliver(fault.vector, fault.error, pc, "exception", fault.address)
        finally:
            self.faulting_pa = None

    def _run(self, end: int) -> None:
        cpu = self.cpu
        platform = cpu.platform
        timer = platform.timer
        signal = self._signal
        lookup = self._lookup
        link = self._link
        translate_cpls = self._translate_cpls
        service = cpu._service_interrupts
        chained = 0
        executed = 0
        # A multiprocessor's turn usually starts in the middle of a loop (where the last turn
        # ended): that fragment is entered once a turn, so it stays cold; the interpreter's
        # fetch cache runs it to its end at less cost.
        resume = cpu.slicing
        try:
            while cpu.stop_reason is None:
                if cpu.retired + cpu.deliveries >= end:
                    cpu.out_of_budget()
                    break
                if service():
                    continue  # non-root mode: an injection or a VM exit; re-examine first
                if cpu.stop_reason is not None:
                    break
                room = end - cpu.retired - cpu.deliveries
                deadline = timer.deadline
                if deadline is not None and deadline - platform.clock < room:
                    room = deadline - platform.clock
                # Code of a ring that is not translated runs "directly": its blocks' bodies run
                # like translated ones (they hold no sensitive instruction, so this is exactly
                # executing them on the real CPU), but are counted as direct instructions and
                # are no translations, and their last sensitive instruction or `int` runs on the
                # interpreter's careful path, as the real CPU would execute it.  So does the
                # guest of the "vt" extension: only such a tail (on the careful path), a fault
                # (through `CPU.deliver`) or the interrupt check can make its VM exits.
                direct = cpu.nonroot or cpu.cpl not in translate_cpls
                block = lookup(False, direct)
                if resume:
                    resume = False
                    if block is not None and not block.hot and block.n <= room:
                        self._run_direct(block.n)
                        continue
                if block is not None and block.n > room:
                    if cpu.slicing:
                        # The last few steps of a multiprocessor's turn: the interpreter's
                        # fetch cache runs them at less cost than one-instruction blocks.
                        self._run_direct(room)
                        continue
                    block = lookup(True, direct)
                if block is None:
                    self._step()
                    continue
                signal.exit = False
                start = room
                tail = None
                # A block's tail (a software interrupt, `iret`, port I/O...) runs without leaving
                # this loop (`_chain_tail`) when nothing else sees it: no monitor, the real
                # callouts.
                chain_tails = cpu.monitor is None and not direct \
                    and type(self.callouts) is DirectCallouts
                try:
                    while block.n <= room:
                        successor, room = block.fn(room)
                        if successor is None:
                            if signal.exit:
                                break
                            if block.tail is not None:
                                if chain_tails:
                                    ran = start - room - 1
                                    cpu.retired += ran
                                    platform.clock += ran
                                    executed += ran
                                    start = room
                                    if not self._chain_tail(block):
                                        break
                                    successor = lookup(False, False)
                                    if successor is None:
                                        break
                                    block = successor
                                    continue
                                tail = block
                                break
                            pc = cpu.pc
                            successor = lookup(False, direct)
                            if successor is None:
                                break
                            link(block, successor, pc)
                        else:
                            chained += 1
                        block = successor
                except GuestFault as fault:
                    index = self._fault_index(block, fault)
                    ran = start - signal.room - block.n + index
                    cpu.retired += ran
                    platform.clock += ran
                    if direct:
                        self._direct += ran
                        pc = cpu.pc = block.insns[index].pc
                        cpu.deliver(fault.vector, fault.error, pc, "exception", fault.address)
                    else:
                        executed += ran
                        self._deliver_block_fault(block, index, fault)
                    continue
                ran = start - room
                if tail is not None:
                    ran -= 1
                cpu.retired += ran
                platform.clock += ran
                if direct:
                    self._direct += ran
                    if tail is not None and cpu.stop_reason is None:
                        self._step()
                else:
                    executed += ran
                    if tail is not None:
                        self._run_tail(tail)
        finally:
            self._chained += chained
            self._executed += executed

    def _run_traced(self, end: int, trace: Callable[[object], None]) -> None:
        cpu = self.cpu
        platform = cpu.platform
        signal = self._signal
        while cpu.stop_reason is None:
            if cpu.steps >= end:
                cpu.out_of_budget()
                break
            if cpu._service_interrupts():
                continue  # non-root mode: an injection or a VM exit happened; re-examine first
            if cpu.stop_reason is not None:
                break
            block = (self._lookup(True) if cpu.cpl in self._translate_cpls and not cpu.nonroot
                     else None)
            if block is None:
                self._step()  # the CPU reports the instruction itself
                continue
            trace(InstructionEvent(cpu.pc, cpu.cpl, block.insns[0], cpu.index))
            signal.exit = False
            if block.tail is not None:
                block.fn(1)
                self._run_tail(block)
                continue
            try:
                block.fn(1)
            except GuestFault as fault:
                self._deliver_block_fault(block, 0, fault)
                continue
            cpu.retired += 1
            platform.clock += 1
            self._executed += 1


__all__ = ["Translator", "TranslatorStats"]
