"""The short VMM entry paths of a guest's system call (`Hypervisor.trap_fields`: an ``int n``
reflected by `_reflect_int`, a #GP emulated by `_emulate_gp`, both resumed by `_return`; the
virtual delivery and ``iret`` moved in one go by `GuestCPU._enter_plain` and `GuestCPU.iret`)
compute exactly what the generic path does: the same guest with them off (every VMM entry
through `Hypervisor.trap` with its `TrapEvent`, every frame word the careful way), with a trace
attached (the slow path, every event seen), and on the bare machine.  The guests make system
calls through present, refused and absent gates, trap and interrupt gates, with the virtual
timer landing on every instruction boundary (at the VMM entries too), budgets ending anywhere,
and kernel stacks and tables on page ends, unmapped, read-only, misaligned and beyond RAM."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cpu"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import test_bt_trap_paths as trap_paths  # noqa: E402
import test_vmm_fast_frames as fast_frames  # noqa: E402

from toyvisor.asm.image import Image, Segment  # noqa: E402
from toyvisor.tools.guest import Guest, load_guest  # noqa: E402
from toyvisor.vmm.emulate import GuestCPU  # noqa: E402
from toyvisor.vmm.hypervisor import Hypervisor  # noqa: E402
from toyvisor.vmm.strategies import make_strategy, vm_result  # noqa: E402
from toyvisor.vmm.strategies.trap_emulate import TrapEmulate  # noqa: E402

SPECS = ["trap-emulate:0/1/3", "trap-emulate:0/3/3", "binary-translation"]


def loop_guest(period: int, flags: int, calls: int = 12) -> Guest:
    """tests/vmm/test_bt_trap_paths.py's loop (``int 0x80``, ``brk`` on a trap gate, a refused
    ``int 0x55`` whose #GP handler skips it, timer ticks with IF on in ring 3) as a guest."""
    machine = trap_paths.make(period, flags, calls)
    image = Image(segments=(Segment("text", 0, bytes(machine.memory.data)),),
                  entry=machine.cpu.pc)
    return Guest(name="loop", image=image, memory_size=1 << 16, max_steps=100_000)


def generic(monkeypatch) -> None:
    """Every VMM entry through `Hypervisor.trap` and every frame word the careful way."""
    monkeypatch.delattr(Hypervisor, "trap_fields")
    monkeypatch.setattr(TrapEmulate, "short_traps", property(lambda self: False))
    monkeypatch.setattr(TrapEmulate, "plain_retired", property(lambda self: False))
    monkeypatch.setattr(GuestCPU, "fast_frames", False)


def run(spec: str, g: Guest, budget: int | None = None, *, short: bool = True, trace=None,
        chunks: int = 1):
    """`g` under `spec` (in `chunks` runs of the budget): what a run shows, every count."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        if not short:
            generic(monkeypatch)
        strategy = make_strategy(spec)
        if chunks == 1:
            result = strategy.run(g, max_steps=budget, trace=trace)
        else:
            hypervisor = Hypervisor(strategy, memory_size=(1 << 20) + g.memory_size)
            vm = hypervisor.create_vm(g)
            vm.boot()
            step = (budget or g.max_steps) // chunks
            for _ in range(chunks):  # a run split in pieces is the same run
                hypervisor.run(max_steps=step)
            strategy.last_vm = vm
            result = vm_result(strategy, hypervisor, vm)
        vm = strategy.last_vm
        cpu = strategy.hypervisor.cpu
        real = (dict(cpu.by_cause), cpu.vmm_entries, cpu.deliveries, cpu.retired,
                cpu.platform.clock, vm.console)
        return result, fast_frames.outcome(vm, counts=True), real


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("period,flags", [(0, 0), (7, 0x200), (13, 0x200)])
def test_system_call_loops_match_the_generic_path_and_the_traced_run(spec, period, flags):
    g = loop_guest(period, flags)
    short = run(spec, g)
    assert short == run(spec, g, short=False)
    if spec != "binary-translation":  # (traced, its translator forms one-instruction blocks)
        events = []
        assert short == run(spec, g, trace=events.append)  # tracing: the slow path
        assert events  # (the trace saw the run)
    _, seen, _ = short
    assert seen[0] == "halted"
    native = trap_paths.make(period, flags, 12)
    native.run(100_000)
    assert seen[3] == tuple(native.cpu.regs)  # the bare machine's registers


@pytest.mark.parametrize("period", range(1, 23))
def test_virtual_timer_at_every_boundary_of_the_loop_and_at_the_vmm_entries(period):
    """Periods 1..22 put the virtual timer's interrupt on every instruction of the loop's
    iteration, the instruction after each reflected ``int`` and emulated ``iret`` included
    (where `_return` must hand the delivery to `_resume`)."""
    g = loop_guest(period, 0x200, calls=8)
    for spec in ("trap-emulate:0/1/3", "binary-translation"):
        short = run(spec, g)
        assert short == run(spec, g, short=False)
        assert short[1][9].get("timer", 0) > 0


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 30), st.sampled_from([0, 0x200]), st.integers(1, 900),
       st.sampled_from(SPECS), st.integers(1, 4))
def test_budgets_ending_anywhere_match_the_generic_path(period, flags, budget, spec, chunks):
    g = loop_guest(period, flags, calls=10)
    assert run(spec, g, budget, chunks=chunks) == run(spec, g, budget, short=False,
                                                         chunks=chunks)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(fast_frames.STACKS), st.sampled_from(fast_frames.TABLES), st.booleans(),
       st.sampled_from(SPECS), st.integers(60, 600))
def test_faults_while_delivering_match_the_generic_path(ksp, idt, paging, spec, budget):
    """Gates and kernel stacks on page ends, unmapped and read-only pages, misaligned, beyond
    RAM, on a traced page-table frame: #PF, #GP, #AC, #DF and triple faults while reflecting,
    the careful path's exactly."""
    g = fast_frames.guest(ksp, idt, paging)
    assert run(spec, g, budget) == run(spec, g, budget, short=False)


@pytest.mark.parametrize("name,count", [("bench/syscall", 300), ("minikernel", None),
                                        ("nanobench", None)])
def test_kernels_match_the_generic_path(name, count):
    import attrs

    g = load_guest(name)
    if count is not None:
        g = attrs.evolve(g, console_input=str(count).encode())
    for spec in SPECS:
        assert run(spec, g) == run(spec, g, short=False)


def test_a_system_call_takes_the_short_paths(monkeypatch):
    """The system-call loop enters the VMM twice per call, never through `Hypervisor.trap`
    (which only the timer's entries and the loop's start and exit reach)."""
    import attrs

    calls = []
    trap = Hypervisor.trap
    monkeypatch.setattr(Hypervisor, "trap", lambda self, cpu, event: calls.append(event.source)
                        or trap(self, cpu, event))
    g = attrs.evolve(load_guest("bench/syscall"), console_input=b"500")
    result = make_strategy("trap-emulate:0/1/3").run(g)
    assert result.vmm_entries >= 1000
    assert len(calls) < 50 and "software" not in calls


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("ksp,idt", [(0x9100, 0x9400), (0x9100, 0x400), (0xD008, 0x9400),
                                     (0x10000, 0xF800)])
def test_a_kernel_stack_the_guests_tlb_holds_unwritable_is_written_as_on_the_careful_path(
        spec, ksp, idt):
    """The interrupt table on the kernel stack's page puts that page in the guest's TLB (the gate
    is read through it) with a write not allowed yet: read-only (#PF → #DF) or clean (the write
    sets the guest's D bit first), as the careful path computes, never a frame written in one
    go."""
    g = fast_frames.guest(ksp, idt, True)
    for budget in (100, 400, 2000):
        assert run(spec, g, budget) == run(spec, g, budget, short=False)


def test_the_faulting_instruction_is_handed_over_only_while_its_fault_is_delivered():
    """`CPU.faulting_entry` (what `_emulate_gp` emulates without a second fetch) is the
    instruction of the fault being delivered, and None once it was: a later #GP of another
    origin (a block, an interrupt check) fetches its own instruction."""
    strategy = make_strategy("trap-emulate:0/1/3")
    seen = []
    emulate_gp = Hypervisor._emulate_gp

    def spy(self, cpu, pc):
        seen.append((cpu.faulting_entry.decoded.pc, pc))
        return emulate_gp(self, cpu, pc)

    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(Hypervisor, "_emulate_gp", spy)
        strategy.run(loop_guest(0, 0, calls=3))
    assert seen and all(entry_pc == pc for entry_pc, pc in seen)
    assert strategy.hypervisor.cpu.faulting_entry is None


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("short", [True, False])
@pytest.mark.parametrize("period,flags", [(0, 0), (7, 0x200)])
def test_a_refused_int_counts_once_as_on_the_bare_machine(spec, short, period, flags):
    """The loop's ``int 0x55`` is refused by the guest's gate: natively one ``int 0x55`` and one
    #GP.  The VMM reflects the ``int``, hands the refusal back to the real CPU, which raises the
    #GP: that #GP is the refusal's (`Hypervisor._reflect_refusal`), not an instruction to
    emulate, which ran the ``int`` again and counted it twice."""
    g = loop_guest(period, flags)
    result, _, _ = run(spec, g, short=short)
    native = trap_paths.make(period, flags, 12)
    native.run(100_000)
    guest_causes = {cause: n for cause, n in result.by_cause.items()
                    if not cause.startswith(("vmm:", "callout:"))}
    assert guest_causes == dict(native.cpu.by_cause)
    assert native.cpu.by_cause.get("int 0x55", 0) > 0
