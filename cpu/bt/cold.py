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
                  heat: Callable[[Block], None]) -> Callable:
    """The function running `block` on handler closures; `cells` maps each constant exit pc to
    its chaining cell; `heat(block)` is called on every entry."""
    handlers = block.handlers
    total = block.n
    R = cpu.regs
    chain = cells.get if block.tail is None else {}.get

    def cold(room):
        heat(block)
        room -= total
        done = 0
        try:
            for handler in handlers:
                handler(cpu, R)
                done += 1
                if signal.exit:
                    if done < total:
                        signal.early_exits += 1
                    return None, room + total - done
        except BaseException:
            signal.room = room
            signal.index = done
            raise
        cell = chain(cpu.pc)
        return (None if cell is None else cell.cell_contents), room

    return cold


__all__ = ["cold_function"]
