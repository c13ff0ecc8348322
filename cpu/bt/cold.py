"""Cold blocks: a translated block runs on the ISA table's handler closures until it is hot.

Compiling a block to Python costs about half a millisecond of host time, as much as running
some ten thousand instructions on handler closures, and most blocks of a kernel run a few
hundred times only.  So a block starts *cold*: formed, counted and cached like any other (the translator's
statistics and a VMM's priced ``translation`` events do not depend on it), but its function calls
the interpreter's handler of each instruction in turn.  Each entry heats it; at the translator's
`hot_threshold` it is compiled (`toyvisor.cpu.bt.codegen`) and its function replaced.

A cold function has the compiled one's contract: ``fn(room) -> (successor, room)``, the chained
successor taken from the same closure cells (so chaining, invalidation and the statistics behave
alike), ``_sig.exit`` honoured after every instruction, and on a fault ``_sig.room`` and
``_sig.index`` (the faulting instruction) saved before the exception propagates.
"""

from __future__ import annotations

from collections.abc import Callable

from .block import Block
from .codegen import Signal


def cold_function(block: Block, cpu, signal: Signal, cells: dict[int, object],
                  heating: tuple) -> Callable:
    """The function running `block` on handler closures; `cells` maps each constant exit pc to
    its chaining cell.  Every entry heats the block as `heating` says
    (`Translator._heating`: the heat is counted in line, not by a call per entry) and compiles
    it once hot.

    ``_sig.exit`` can only be raised by an instruction that touches more than registers, flags
    and the pc (a store over code, a read or write hook asking for attention): a body without
    such an instruction is checked once, after its last instruction."""
    handlers = block.handlers
    total = block.n
    R = cpu.regs
    chain = cells.get if block.tail is None else {}.get
    step, translator, heats, key, adapted = heating
    compile_ = translator._compile

    watch = block.memory_body

    def cold(room):
        block.heat += step
        if heats is None or adapted:
            heat = block.heat
        else:
            heat = heats[key] = heats.get(key, 0) + step
        if heat >= translator.hot_threshold and block.valid:
            compile_(block)
        room -= total
        done = 0
        try:
            for handler in handlers:
                handler(cpu, R)
                done += 1
                if watch and signal.exit:
                    if done < total:
                        signal.early_exits += 1
                    return None, room + total - done
        except BaseException:
            signal.room = room
            signal.index = done
            raise
        if signal.exit:  # a quiet body is checked once, here
            return None, room
        cell = chain(cpu.pc)
        return (None if cell is None else cell.cell_contents), room

    return cold


__all__ = ["cold_function"]
