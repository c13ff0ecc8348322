"""A VMM's virtual delivery and emulated ``iret`` move a frame in one go (`GuestCPU._frame_pa`,
`VM.plain_frame`) and compute exactly what the careful path (every word through the guest's
translation and `GuestPhysicalMemory`) does: the same guest against the same strategy with the
shortcut off, and against the bare machine.  Kernel stacks and interrupt tables lie on page
ends, read-only and unmapped pages, beyond RAM, misaligned, and on a guest page-table frame the
shadow pager traces (its writes must drop shadow entries and count ``shadow_sync``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cpu"))

import test_fast_delivery as fast_delivery  # noqa: E402

from toyvisor.asm.image import Image, Segment  # noqa: E402
from toyvisor.cpu import Machine  # noqa: E402
from toyvisor.isa.spec import PTE_P, PTE_PL_SHIFT, PTE_W  # noqa: E402
from toyvisor.tools.guest import Guest  # noqa: E402
from toyvisor.vmm.emulate import GuestCPU  # noqa: E402
from toyvisor.vmm.strategies import make_strategy  # noqa: E402

# The guest of tests/cpu/test_fast_delivery.py (ring 0 sets up its table and ksp0, drops to ring
# 3, which traps in every way; the handlers skip the faulting instruction and return; #DF halts),
# with virtual page 0xC000 mapping its page table (physical 0xB000): a kernel stack there writes
# the frame into the entries of pages 0xD000 and up.
PAGE_TABLE_ALIAS = 0xC000
RW = PTE_P | PTE_W | (3 << PTE_PL_SHIFT)
# Kernel stacks: those of the bare-machine test, and one on the page table (the shadow pager
# traces it: the frame's writes must drop shadow entries).
STACKS = [*fast_delivery.STACKS, PAGE_TABLE_ALIAS + 0x48]
TABLES = fast_delivery.TABLES
SPECS = ["trap-emulate:0/1/3", "trap-emulate:0/3/3", "binary-translation"]
MEMORY = fast_delivery.MEMORY


def guest(ksp: int, idt: int, paging: bool, usp: int = 0xE000) -> Guest:
    """That guest's memory, as one image."""
    machine = fast_delivery.make(None, ksp, usp, idt, paging, careful=False)
    table = fast_delivery.DIRECTORY + 0x1000
    machine.memory.write32(table + 4 * (PAGE_TABLE_ALIAS >> 12), table | RW)
    image = Image(segments=(Segment("text", 0, bytes(machine.memory.data)),),
                  entry=machine.cpu.pc)
    return Guest(name="frames", image=image, memory_size=MEMORY, max_steps=20_000)


def outcome(vm, *, counts: bool):
    vcpu = vm.vcpu
    seen = (vm.stop_reason, vm.fault_report, vm.memory.snapshot(), tuple(vcpu.regs), vcpu.pc,
            vcpu.cpl, vcpu.flags, vcpu.cr2, vm.guest_instructions, vm.guest_causes)
    if not counts:
        return seen
    pager = vm.pager
    return seen + (vm.vmm_causes, vm.events, vm.entries, vm.devices.clock, vm.idle_ticks,
                   pager.traced_writes, sorted(pager.protected.items()))


def run(spec: str, g: Guest, budget: int, fast: bool, monkeypatch):
    monkeypatch.setattr(GuestCPU, "fast_frames", fast)
    strategy = make_strategy(spec)
    strategy.run(g, max_steps=budget)
    return strategy.last_vm


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(STACKS), st.sampled_from(TABLES), st.booleans(),
       st.sampled_from(SPECS), st.integers(60, 600))
def test_fast_frames_match_the_careful_path_and_the_bare_machine(ksp, idt, paging, spec,
                                                                   budget):
    with pytest.MonkeyPatch.context() as monkeypatch:
        g = guest(ksp, idt, paging)
        careful = run(spec, g, budget, False, monkeypatch)
        fast = run(spec, g, budget, True, monkeypatch)
    assert outcome(fast, counts=True) == outcome(careful, counts=True)
    machine = Machine(memory_size=MEMORY)
    machine.load(g.image)
    result = machine.run(budget)
    cpu = machine.cpu
    assert (bytes(machine.memory.data), tuple(cpu.regs), cpu.pc, cpu.cpl, cpu.cr2,
            result.guest_instructions) == (fast.memory.snapshot(), tuple(fast.vcpu.regs),
                                     fast.vcpu.pc, fast.vcpu.cpl, fast.vcpu.cr2,
                                     fast.guest_instructions)


@pytest.mark.parametrize("spec", SPECS)
def test_the_normal_case_takes_the_fast_path(spec, monkeypatch):
    calls = []
    original = GuestCPU._frame_pa

    def spy(self, *args, **kwargs):
        found = original(self, *args, **kwargs)
        calls.append(found is not None)
        return found

    monkeypatch.setattr(GuestCPU, "_frame_pa", spy)
    vm = run(spec, guest(0x8000, 0x400, True), 20_000, True, monkeypatch)
    assert vm.stop_reason == "halted" and vm.guest_causes["int 0x80"] == 40
    assert sum(calls) > 0.8 * len(calls)  # the shortcut is taken, so the test above compares it


def test_a_traced_frame_or_another_write_hook_takes_the_careful_path(monkeypatch):
    vm = run("trap-emulate:0/1/3", guest(0x8000, 0x400, True), 3_000, True, monkeypatch)
    table = fast_delivery.DIRECTORY + 0x1000
    assert table >> 12 in vm.pager.protected
    assert vm.plain_frame(table + 0x40, 20, True) is None
    assert vm.plain_frame(table + 0x40, 20, False) == vm.base + table + 0x40  # reads are plain
    assert vm.plain_frame(0x7000, 20, True) == vm.base + 0x7000
    assert vm.plain_frame(MEMORY - 8, 20, False) is None  # beyond the guest's RAM
    vm.memory.on_write = lambda gpa, size: None  # e.g. a migration's dirty log
    assert vm.plain_frame(0x7000, 20, True) is None


def test_a_vm_of_another_memory_class_takes_the_careful_path(monkeypatch):
    vm = run("trap-emulate:0/1/3", guest(0x8000, 0x400, True), 100, True, monkeypatch)
    mapped = type("Mapped", (type(vm.memory),), {})  # a subclass may map guest-physical anew
    vm.memory = mapped(vm.memory.host, vm.base, vm.size, vm.memory.on_write)
    assert vm.plain_frame(0x7000, 20, False) is None


@pytest.mark.parametrize("name", ["minikernel", "nanobench"])
def test_emulating_with_the_decode_caches_handler_matches_binding_it_anew(name, monkeypatch):
    """Trap-and-emulate hands `emulate` the handler its fetch already bound (`CodeEntry`); with
    `emulate` binding every handler itself, kernels run to the same state and counts."""
    from toyvisor.tools.guest import load_guest
    from toyvisor.vmm.strategies import trap_emulate

    g = load_guest(name)
    fast = run("trap-emulate:0/1/3", g, g.max_steps, True, monkeypatch)
    original = trap_emulate.emulate
    monkeypatch.setattr(trap_emulate, "emulate",
                        lambda vm, decoded, handler=None, **kw: original(vm, decoded, **kw))
    anew = run("trap-emulate:0/1/3", g, g.max_steps, True, monkeypatch)
    assert outcome(fast, counts=True) == outcome(anew, counts=True)
    assert fast.stop_reason == "halted" and fast.console == anew.console


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("budget", [300, 3_000])
def test_frames_on_a_traced_page_table_match_the_careful_path(spec, budget, monkeypatch):
    """The kernel stack on the guest's page table (always, not only when the property test
    draws it): every frame rewrites entries the shadow tables were built from."""
    g = guest(PAGE_TABLE_ALIAS + 0x48, 0x400, True)
    careful = run(spec, g, budget, False, monkeypatch)
    fast = run(spec, g, budget, True, monkeypatch)
    assert outcome(fast, counts=True) == outcome(careful, counts=True)
