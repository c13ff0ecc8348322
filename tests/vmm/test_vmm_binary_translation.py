"""binary-translation: the guest kernel runs translated, its sensitive and privileged instructions
become callouts — equivalent to bare metal where trap-emulate cannot be (popf, rdcs), translation
cache coherent with self-modifying code, several VMs on one translator."""

from pathlib import Path

import pytest

from toyvisor.asm import assemble_file
from toyvisor.tools import runner
from toyvisor.tools.guest import Guest
from toyvisor.vmm import Hypervisor, make_strategy, run_guest
from toyvisor.vmm.comparison import default_specs
from toyvisor.vmm.equivalence import native_state, vm_state
from toyvisor.vmm.strategies import STRATEGIES, load_builtin
from toyvisor.vmm.strategies.native import boot_native

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def selfmod():
    image = assemble_file(HERE / "selfmod.s").image
    return Guest(name="selfmod", image=image, memory_size=0x10000, max_steps=100_000)


def _native(guest):
    machine = boot_native(guest)
    machine.run(max_steps=guest.max_steps)
    return native_state(machine)


def _check_accounting(result):
    """The contract's invariants for a BT run."""
    events = result.events
    callouts = sum(v for k, v in result.by_cause.items() if k.startswith("callout:"))
    traps = sum(v for k, v in result.by_cause.items() if k.startswith("vmm:"))
    assert result.callouts == callouts == events["callout"]
    assert result.vmm_entries == callouts + traps
    assert events.get("trap", 0) == traps
    assert "emulated_instruction" not in events or \
        events["emulated_instruction"] == result.by_cause.get("vmm:ptemod", 0) \
        + result.by_cause.get("vmm:privileged", 0) + result.by_cause.get("vmm:io", 0)
    # every retired guest instruction is direct, translated or emulated (callouts + traps)
    assert (events.get("instruction", 0) + events.get("translated_instruction", 0)
            + callouts + result.emulated_instructions) == result.guest_instructions
    direct = events.get("instruction", 0) + events.get("translated_instruction", 0)
    assert result.efficiency == pytest.approx(direct / result.guest_instructions)
    assert result.cache_misses >= result.blocks_translated > 0
    assert events["translation"] >= result.blocks_translated


def test_registered_without_variants():
    load_builtin()
    assert STRATEGIES["binary-translation"].name == "binary-translation"
    strategy = make_strategy("binary-translation")
    assert strategy.spec == "binary-translation" and strategy.variant is None
    assert "binary-translation" in default_specs()


def test_minikernel_is_equivalent_with_callouts_instead_of_traps(minikernel):
    native = runner.run(minikernel)
    result = run_guest(minikernel, "binary-translation")
    assert result.strategy == "binary-translation"
    assert result.halted and result.stop_reason == "halted"
    assert result.equivalent, result.divergence
    assert result.console == native.console
    assert result.resource_violations == ()
    assert result.guest_instructions == native.guest_instructions
    for cause, count in native.by_cause.items():
        assert result.by_cause[cause] == count
    # the kernel's privileged instructions are callouts, never #GP traps
    assert "vmm:privileged" not in result.by_cause and "vmm:io" not in result.by_cause
    for mnemonic in ("iret", "out", "mtcr", "lidt", "hlt"):
        assert result.by_cause[f"callout:{mnemonic}"] > 0
    for cause in ("vmm:int", "vmm:timer", "vmm:pgfault-hidden"):
        assert result.by_cause[cause] > 0
    assert result.blocks_translated > 0 and result.cache_hits > result.cache_misses
    assert result.invalidations == 0
    events = result.events
    assert events["translated_instruction"] > events["instruction"] > 0  # user tasks: direct
    assert events["interrupt_injection"] == sum(native.by_cause.values())
    assert events["shadow_sync"] > 0 and events["device_access"] > 0
    assert 0.9 < result.efficiency < 1
    _check_accounting(result)


def test_minikernel_needs_fewer_traps_than_trap_emulate(minikernel):
    bt = run_guest(minikernel, "binary-translation", check_equivalence=False)
    te = run_guest(minikernel, "trap-emulate", check_equivalence=False)
    assert bt.events["trap"] < te.events["trap"] / 5
    assert bt.callouts == te.by_cause["vmm:privileged"] + te.by_cause["vmm:io"]


def test_nanobench_is_equivalent_unlike_trap_emulate(nanobench):
    result = run_guest(nanobench, "binary-translation")
    assert result.halted
    assert result.equivalent, result.divergence
    # the sensitive-unprivileged instructions are callouts that see the virtual state
    assert "cpl: rdcs = 0" in result.console
    assert "popf: IF after popf = 1" in result.console
    for mnemonic in ("popf", "pushf", "rdcs", "invlpg", "cli"):
        assert result.by_cause[f"callout:{mnemonic}"] > 0
    # faults in translated code still trap, exactly as under trap-emulate
    assert result.by_cause["vmm:ptemod"] > 0 and result.by_cause["vmm:pgfault-guest"] > 0
    assert result.by_cause["vmm:exception"] == result.by_cause["divide-error"]
    _check_accounting(result)


def test_self_modifying_kernel_invalidates_its_translations(selfmod):
    assert runner.run(selfmod).console == "selfmod: 30505\n"
    result = run_guest(selfmod, "binary-translation")
    assert result.console == "selfmod: 30505\n"
    assert result.equivalent, result.divergence
    assert result.invalidations >= 2  # the patched loop, and the block patched while it ran
    assert result.cache_hits > 0
    _check_accounting(result)


def test_two_vms_time_sliced_share_one_translator(minikernel, loop, hostile):
    strategy = make_strategy("binary-translation")
    hv = Hypervisor(strategy, quantum=700)
    guests = (minikernel, loop, hostile)
    vms = [hv.create_vm(g) for g in guests]
    for vm in vms:
        vm.boot()
    hv.run()
    for vm, guest in zip(vms, guests):
        assert vm.stop_reason == "halted"
        assert vm_state(vm) == _native(guest), vm.name
        assert vm.events["world_switch"] > 0
        assert hv.resource_violations(vm) == []
        counters = vm.translation
        assert counters.blocks_translated > 0 and counters.callouts > 0
        assert vm.events["translated_instruction"] > 0
    assert hv.violations == []
    # each VM's share adds up to the translator's totals
    stats = strategy.translator.stats
    assert sum(vm.translation.blocks_translated for vm in vms) == stats.blocks_translated
    assert sum(vm.translation.cache_hits for vm in vms) == stats.cache_hits
    assert sum(vm.events["callout"] for vm in vms) == stats.callouts
    assert sum(vm.events.get("instruction", 0) for vm in vms) == stats.direct_instructions
    # a VM's blocks are translated from its own slice only
    for block in strategy.translator.blocks:
        owners = [vm for vm in vms if vm.base <= block.pa < vm.base + vm.size]
        assert len(owners) == 1


def test_hostile_guest_stays_in_its_slice(hostile, loop):
    hv = Hypervisor(make_strategy("binary-translation"), quantum=300)
    neighbour = hv.create_vm(loop)
    bad = hv.create_vm(hostile)
    neighbour.boot()
    bad.boot()
    before = bytes(hv.machine.memory.data[:hv.vmm_region])
    hv.run()
    assert bad.console == "hostile: 192\n"
    assert bad.by_cause["general-protection"] == 192
    assert neighbour.console == runner.run(loop).console
    assert hv.violations == [] and hv.resource_violations(bad) == []
    after = hv.machine.memory.data
    assert not any(after[0:0x800:8][i] for i in range(256))  # real gates untouched
    changed = {pa & ~0xFFF for pa in range(0, hv.vmm_region, 4)
               if after[pa:pa + 4] != before[pa:pa + 4]}
    assert changed <= set(range(0x1000, hv.vmm_region, 0x1000))


def test_snapshot_restore_drops_the_vms_translations(minikernel):
    strategy = make_strategy("binary-translation")
    hv = Hypervisor(strategy)
    vm = hv.create_vm(minikernel)
    vm.boot()
    hv.run(max_steps=15_000)
    snap = vm.snapshot()
    hv.run()
    end = vm_state(vm)
    assert end.stop_reason == "halted"
    assert any(vm.base <= b.pa < vm.base + vm.size for b in strategy.translator.blocks)
    instructions = vm.guest_instructions
    vm.restore(snap)  # rewind the same VM: nothing translated from its old memory survives
    assert not any(vm.base <= b.pa < vm.base + vm.size for b in strategy.translator.blocks)
    hv.run()
    assert vm_state(vm) == end
    assert vm.guest_instructions == instructions


def test_runs_are_deterministic(loop):
    a = run_guest(loop, "binary-translation")
    b = run_guest(loop, "binary-translation")
    assert a == b and a.equivalent


def test_hosted_placement(loop):
    system = run_guest(loop, "binary-translation", check_equivalence=False)
    hosted = run_guest(loop, "binary-translation", placement="hosted", check_equivalence=False)
    assert hosted.console == system.console and hosted.by_cause == system.by_cause
    assert hosted.events["host_syscall"] >= hosted.events["device_access"] > 0


def test_traced_run_matches_bare_metal_instruction_by_instruction(nanobench):
    # the divergence finder's replay: every instruction (translated, callout or direct) sees the
    # registers, flags and CPL it sees on bare metal — interrupts arrive at the same instruction
    from toyvisor.vmm.equivalence import _trace_native, _trace_vm

    native, native_retired = _trace_native(nanobench, None)
    virtual, virtual_retired = _trace_vm(nanobench, "binary-translation", "system", None)
    assert native_retired == virtual_retired  # the flags each instruction left
    assert len(virtual) == len(native)
    assert all(n[:4] == v[:4] for n, v in zip(native, virtual))
