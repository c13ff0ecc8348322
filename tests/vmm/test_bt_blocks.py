"""Block formation, the cache, chaining and the engine's counters."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cpu"))

from cpu_asm import assemble  # noqa: E402

from toyvisor.cpu import Machine  # noqa: E402
from toyvisor.vmm.bt import DirectCallouts, Translator  # noqa: E402

LOOP = """
start:  li   r1, 0
        li   r4, 1000
loop:   addi r1, r1, 1
        addi r2, r2, 3
        cmp  r1, r4
        jnz  loop
        cli
        pushf
        hlt
"""


def machine_for(source: str) -> Machine:
    machine = Machine(memory_size=1 << 16)
    machine.load(assemble(source))
    machine.cpu.regs[15] = 0x8000
    return machine


def test_blocks_end_at_control_transfers_and_sensitive_instructions():
    machine = machine_for(LOOP)
    translator = Translator(machine.cpu)
    assert translator.run(100_000) == "halted"
    shapes = {b.pc: ([d.definition.mnemonic for d in b.insns], b.body_n) for b in
              translator.blocks}
    assert shapes[0x0] == (["li", "li", "addi", "addi", "cmp", "jnz"], 6)
    assert shapes[0x10] == (["addi", "addi", "cmp", "jnz"], 4)
    assert shapes[0x20] == (["cli"], 0)  # a callout alone
    assert shapes[0x24] == (["pushf"], 0)
    stats = translator.stats
    assert stats.callouts_by_mnemonic == {"cli": 1, "hlt": 1, "pushf": 1}
    assert stats.chained >= 990  # the loop runs on chain links, not lookups
    assert stats.translated_instructions + stats.callouts == machine.cpu.retired
    assert stats.events()["callout"] == 3
    assert machine.cpu.privileged_executed == 2 and machine.cpu.sensitive_executed == 1


def test_max_block_and_page_end_cut_blocks():
    source = ".org 0xFF0\nstart: " + "\n".join(["nop"] * 12) + "\nhlt\n"
    machine = machine_for(source)
    translator = Translator(machine.cpu, max_block=3)
    translator.run(1000)
    lengths = [(b.pc, b.n) for b in translator.blocks]
    assert lengths[:2] == [(0xFF0, 3), (0xFFC, 1)]  # page end at 0x1000
    assert all(n <= 3 for _, n in lengths)


def test_generated_code_is_readable_python():
    machine = machine_for(LOOP)
    translator = Translator(machine.cpu, hot_threshold=1)
    translator.run(10)
    source = next(b for b in translator.blocks if b.pc == 0).source
    assert "r1 = r1 + 1 & 4294967295" in source  # registers live in locals
    assert "return _l0, room" in source and "cpu.flags = F" in source
    assert "while True" not in source
    loop = next(b for b in translator.blocks if b.pc == 0x10).source
    assert "while True:" in loop and "continue" in loop  # the loop stays in its function


def test_invalidation_unlinks_and_close_detaches():
    machine = machine_for(LOOP)
    memory = machine.memory
    hook = memory.on_code_write
    translator = Translator(machine.cpu, DirectCallouts())
    translator.run(200)
    loop = next(b for b in translator.blocks if b.pc == 0x10)
    assert loop.incoming  # the loop is chained to itself
    memory.write32(0x14, memory.read32(0x14))  # rewrite a word of the loop
    assert not loop.valid and all(c.cell_contents is None for c in loop.cells.values())
    assert translator.stats.invalidations >= 2  # the loop and the entry block overlap 0x14
    translator.close()
    assert memory.on_code_write is hook and "request_attention" not in vars(machine.cpu)


def test_translate_cpls_is_validated():
    machine = machine_for(LOOP)
    with pytest.raises(ValueError):
        Translator(machine.cpu, translate_cpls={4})
    with pytest.raises(ValueError):
        Translator(machine.cpu, max_block=0)
