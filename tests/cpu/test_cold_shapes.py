"""The unrolled cold functions (`toyvisor.cpu.bt.cold`) compute exactly what the general loop
computes, for every shape they are generated for: each body length, with and without a tail,
memory-touching or quiet, with zero, one or two chaining exits; a handler raising at any index,
the engine's signal raised by any instruction, the block compiled at its entry, the pc after the
body on either exit or neither.  And the fast engine with the unrolled functions leaves what it
leaves with the general loop only (state, console, every translator counter) on kernels.
"""

from __future__ import annotations

from types import CellType, SimpleNamespace

import pytest

from toyvisor.cpu import Machine
from toyvisor.cpu.bt import cold
from toyvisor.cpu.bt.codegen import Signal
from toyvisor.tools.guest import load_guest

SHAPES = sorted(cold._CODES)


class Boom(Exception):
    """What a handler raises in place of a guest fault."""


def _run_shape(factory, shape, *, raise_at, signal_at, pc_choice, hot, quiet_signal):
    """Run one entry of a cold function of `shape` made by `factory`; everything it did."""
    n, tail, watch, exits = shape
    signal = Signal()
    cpu = SimpleNamespace(regs=[0] * 16, pc=0)
    calls = []
    targets = [object() for _ in range(exits)]
    pcs = [0x100, 0x200][:exits]

    def handler(i):
        def run(cpu_, regs):
            assert cpu_ is cpu and regs is cpu.regs
            calls.append(i)
            if i == signal_at or (quiet_signal and i == n - 1):
                signal.exit = True
            if i == raise_at:
                raise Boom(i)
            cpu.pc = [0x100, 0x200, 0x300][pc_choice]
        return run

    compiled = []
    translator = SimpleNamespace(hot_threshold=3 if hot else 10_000, _compile=compiled.append)
    block = SimpleNamespace(handlers=tuple(handler(i) for i in range(n)), n=n + tail,
                            tail=object() if tail else None, memory_body=watch, heat=1,
                            valid=True)
    cells = {pc: CellType(target) for pc, target in zip(pcs, targets)}
    fn = factory(block, cpu, signal, cells, (2, translator, None, 0, set()))
    try:
        result = fn(50)
    except Boom as error:
        result = ("raised", error.args[0])
    if isinstance(result, tuple) and len(result) == 2 and result[0] in targets:
        result = (targets.index(result[0]), result[1])
    return (result, calls, signal.room, signal.index, signal.early_exits, signal.exit,
            block.heat, len(compiled))


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "n%d-tail%d-mem%d-exits%d" % s)
def test_every_unrolled_shape_computes_what_the_loop_computes(shape):
    n = shape[0]
    unrolled = cold.cold_function
    for raise_at in (None, *range(n)):
        for signal_at in (None, *range(n)):
            for pc_choice in (0, 1, 2):
                for hot in (False, True):
                    for quiet_signal in (False, True):
                        case = dict(raise_at=raise_at, signal_at=signal_at, pc_choice=pc_choice,
                                    hot=hot, quiet_signal=quiet_signal)
                        assert (_run_shape(unrolled, shape, **case)
                                == _run_shape(cold._looping, shape, **case)), case


def test_cold_function_takes_the_unrolled_form_for_its_shapes():
    """The shapes above are what the engine builds (and only the shared heat of several CPUs,
    longer bodies or more exits take the loop)."""
    fn = cold.cold_function(
        SimpleNamespace(handlers=(), n=1, tail=object(), memory_body=False, heat=0, valid=True),
        SimpleNamespace(regs=[]), Signal(), {},
        (1, SimpleNamespace(hot_threshold=5, _compile=None), None, 0, set()))
    assert fn.__code__.co_filename == "<cold>"
    fn = cold.cold_function(
        SimpleNamespace(handlers=(), n=1, tail=object(), memory_body=False, heat=0, valid=True),
        SimpleNamespace(regs=[]), Signal(), {},
        (1, SimpleNamespace(hot_threshold=5, _compile=None), {}, 0, set()))
    assert fn.__code__.co_filename != "<cold>"


def _outcome(guest):
    machine = Machine(memory_size=guest.memory_size, console_input=guest.console_input,
                      disk=guest.disk)
    machine.load(guest.image)
    result = machine.run(guest.max_steps, engine="fast")
    cpu = machine.cpus[0]
    return (result, list(cpu.regs), cpu.pc, cpu.flags, cpu.platform.clock,
            bytes(machine.memory.data), machine.engine("fast").stats)


@pytest.mark.parametrize("name", ["minikernel", "nanobench"])
def test_kernels_run_alike_on_unrolled_and_looping_cold_blocks(name, monkeypatch):
    guest = load_guest(name)
    unrolled = _outcome(guest)
    monkeypatch.setattr(cold, "_CODES", {})
    monkeypatch.setattr(cold, "UNROLLED", -1)
    assert _outcome(guest) == unrolled


@pytest.mark.parametrize("name", ["minikernel", "nanobench"])
def test_forming_with_the_cache_looked_up_first_forms_the_same_blocks(name):
    """`form_block` looking the decode cache's dict up before asking `entry_at` (the engine's
    way) forms what asking `entry_at` for every instruction forms, at every word of the code
    the kernel ran, adapted addresses included, with the cache filled by the run."""
    from toyvisor.cpu.bt.block import form_block

    guest = load_guest(name)
    machine = Machine(memory_size=guest.memory_size, console_input=guest.console_input,
                      disk=guest.disk)
    machine.load(guest.image)
    machine.run(guest.max_steps, engine="fast")
    translator = machine.engine("fast")
    entries = machine.cpus[0].code.entries
    starts = sorted({block.pc for block in translator.blocks})
    adapted = {block.pa + 4 for block in translator.blocks[::3]}
    assert len(starts) > 50
    for pc in starts:
        for address in range(pc, pc + 64, 4):  # pa == pc: these kernels run with paging off
            for marks in ((), adapted):
                for limit in (1, 64):
                    expected = form_block(translator._entry_at, address, address, limit, marks)
                    assert form_block(translator._entry_at, address, address, limit, marks,
                                      entries) == expected


def test_forming_stops_before_an_li_straddling_a_page_the_interpreter_decoded():
    """An instruction whose second word lies on the next page (the interpreter's fetch decoded
    it with ``pa2``) ends the block before it whichever way the cache is looked up."""
    from cpu_asm import boot

    from toyvisor.cpu.bt.block import form_block

    machine = boot("""
        start:  jmp  there
                .org 0xff8
        there:  addi r2, r2, 1
                li   r1, 0x12345678
                addi r1, r1, 1
                hlt
    """)
    machine.run(100)  # the interpreter decodes the straddling li (pa2 set)
    code = machine.cpus[0].code
    assert code.get(0xffc, 0xffc).pa2 == 0x1000
    translator = machine.engine("fast")
    for pc in (0xff8, 0xffc):
        expected = form_block(translator._entry_at, pc, pc, 64)
        assert form_block(translator._entry_at, pc, pc, 64, (), code.entries) == expected
    assert len(expected[0]) == 0 and expected[1] is None
