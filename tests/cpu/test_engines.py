"""Execution engines: `Machine.run(engine=...)` and ``toyvisor run --engine``.

Every engine must compute exactly what the reference interpreter computes; the random-program
differential tests live in tests/vmm/test_bt_differential.py (they drive the same translator).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from toyvisor.cpu import ENGINES, Machine, MachineError
from toyvisor.tools.cli import main

from cpu_asm import assemble

REPO = Path(__file__).resolve().parents[2]

LOOP = """
start:  li   r1, 0
        li   r2, 0
        li   r3, 5000
loop:   addi r1, r1, 1
        addi r2, r2, 3
        cmp  r1, r3
        jnz  loop
        hlt
"""


def loop_machine() -> Machine:
    machine = Machine(memory_size=1 << 16)
    machine.load(assemble(LOOP))
    return machine


def test_engines_are_named_and_the_interpreter_comes_first():
    assert ENGINES[0] == "interpreter" and "fast" in ENGINES


@pytest.mark.parametrize("engine", ENGINES)
def test_every_engine_computes_the_interpreters_result(engine):
    expected = loop_machine().run(100_000)
    assert expected.halted
    assert loop_machine().run(100_000, engine=engine) == expected


def test_switching_engines_between_runs_continues_the_same_machine():
    expected = loop_machine().run(100_000)
    machine = loop_machine()
    for budget, engine in ((1001, "fast"), (999, "interpreter"), (7, "fast"), (100_000, "fast")):
        result = machine.run(budget, engine=engine)
    assert result == expected


def test_an_unknown_engine_is_a_machine_error_naming_the_known_ones():
    with pytest.raises(MachineError, match="unknown engine 'turbo'.*interpreter, fast"):
        loop_machine().run(10, engine="turbo")


def test_cli_run_engine_gives_the_same_json_as_the_interpreter():
    runner = CliRunner()
    outputs = [runner.invoke(main, ["run", "minikernel", "--json", *args])
               for args in ((), ("--engine", "fast"), ("--engine", "interpreter"))]
    assert all(o.exit_code == 0 for o in outputs), outputs[0].output
    first = json.loads(outputs[0].output)
    assert all(json.loads(o.output) == first for o in outputs[1:])


def test_cli_run_rejects_an_unknown_engine_and_engine_with_vmm():
    runner = CliRunner()
    bad = runner.invoke(main, ["run", "minikernel", "--engine", "turbo"])
    assert bad.exit_code == 2 and "'turbo' is not one of" in bad.output
    both = runner.invoke(main, ["run", "minikernel", "--engine", "fast", "--vmm", "trap-emulate"])
    assert both.exit_code == 2 and "--engine applies to bare-machine runs" in both.output
