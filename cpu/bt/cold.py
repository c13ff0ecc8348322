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

A kernel run is mostly cold entries of short blocks (minikernel: ~11,000 entries of blocks of
one to seven instructions), so the common shapes — up to `UNROLLED` body instructions, heat not
shared between CPUs, at most two chaining exits — get a function with the handler calls
unrolled and the exits compared in place (`_unrolled`), generated once at import; any other
block runs the general loop (`_looping`).  Both compute exactly the same thing.
"""

from __future__ import annotations

from collections.abc import Callable
from types import CodeType, FunctionType

from .block import Block
from .codegen import Signal

#: Bodies of up to this many instructions get an unrolled cold function.
UNROLLED = 8


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
    step, translator, heats, key, adapted = heating
    if heats is None and len(handlers) <= UNROLLED and len(cells) <= 2:
        code = _CODES[len(handlers), block.tail is not None, block.memory_body, len(cells)]
        # The function's state in its defaults (one tuple), not in a closure cell per variable
        state = (block, cpu, cpu.regs, signal, translator, step, block.n)
        for pair in cells.items():
            state += pair
        return FunctionType(code, _GLOBALS, "cold", state + handlers)
    return _looping(block, cpu, signal, cells, heating)


def _looping(block: Block, cpu, signal: Signal, cells: dict[int, object],
             heating: tuple) -> Callable:
    """The general cold function (any length, heat shared between CPUs, any exits)."""
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


def _unrolled_source(n: int, tail: bool, watch: bool, exits: int) -> str:
    """The cold function of a block of `n` body instructions (and a tail or not),
    memory-touching or quiet, with `exits` chaining cells: what `_looping` does for such a
    block, with its loop unrolled.  Its state comes as parameters after ``room`` that only
    their defaults give (`cold_function`).  A block with a tail is never chained (no cells)."""
    params = ["room", "block", "cpu", "R", "signal", "translator", "step", "total"]
    for i in range(exits):
        params += [f"p{i}", f"c{i}"]
    params += [f"h{i}" for i in range(n)]
    lines = [f"def cold({', '.join(params)}):",
             "    heat = block.heat = block.heat + step",
             "    if heat >= translator.hot_threshold and block.valid:",
             "        translator._compile(block)",
             "    room -= total"]
    for i in range(n):
        lines += ["    try:",
                  f"        h{i}(cpu, R)",
                  "    except BaseException:",
                  "        signal.room = room",
                  f"        signal.index = {i}",
                  "        raise"]
        if watch:
            lines.append("    if signal.exit:")
            if i + 1 < n or tail:  # instructions left (`_looping`'s ``done < total``)
                lines.append("        signal.early_exits += 1")
            lines.append(f"        return None, room + total - {i + 1}")
    lines += ["    if signal.exit:",
              "        return None, room"]
    if exits:
        lines.append("    pc = cpu.pc")
        for i in range(exits):
            lines += [f"    if pc == p{i}:",
                      f"        return c{i}.cell_contents, room"]
    lines.append("    return None, room")
    return "\n".join(lines)


def _codes() -> dict[tuple[int, bool, bool, int], CodeType]:
    """(body length, tail, memory body, exits) -> code of its cold function, every shape
    compiled in one go."""
    shapes = [(n, tail, watch, exits) for n in range(UNROLLED + 1) for tail in (False, True)
              for watch in (False, True) for exits in ((0,) if tail else (0, 1, 2))]
    source = "\n".join(_unrolled_source(*shape).replace("def cold(", f"def cold_{i}(", 1)
                       for i, shape in enumerate(shapes))
    namespace: dict = {}
    exec(compile(source, "<cold>", "exec"), namespace)  # noqa: S102 - generated above
    return {shape: namespace[f"cold_{i}"].__code__ for i, shape in enumerate(shapes)}


#: (body length, tail, memory body, exits) -> the code of its unrolled cold function
_CODES = _codes()
#: the globals of the unrolled functions (they use none but the builtins)
_GLOBALS = {"__builtins__": __builtins__}


__all__ = ["UNROLLED", "cold_function"]
