"""hardware-assisted (generations 1 and 2) on the bundled guests: equivalence (nanobench too),
exits by reason, guest traps without exits, several VMs, isolation, snapshots, the CLI."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from toyvisor.asm import assemble_file
from toyvisor.tools import runner
from toyvisor.tools.guest import Guest
from toyvisor.tools.cli import main
from toyvisor.vmm import Hypervisor, StrategyError, make_strategy, run_guest
from toyvisor.vmm.comparison import default_specs
from toyvisor.vmm.equivalence import find_divergence, native_state, vm_state
from toyvisor.vmm.strategies.native import boot_native

GENERATIONS = ("1", "2")


def _native(guest):
    machine = boot_native(guest)
    machine.run(max_steps=guest.max_steps)
    return native_state(machine)


def _exits(result):
    return {k: v for k, v in result.by_cause.items() if k.startswith("exit:")}


@pytest.fixture(scope="module")
def minikernel_runs(minikernel):
    return {gen: run_guest(minikernel, f"hardware-assisted:{gen}") for gen in GENERATIONS}


@pytest.fixture(scope="module")
def nanobench_runs(nanobench):
    return {gen: run_guest(nanobench, f"hardware-assisted:{gen}") for gen in GENERATIONS}


@pytest.mark.parametrize("gen", GENERATIONS)
def test_minikernel_is_equivalent(minikernel, minikernel_runs, gen):
    native = runner.run(minikernel)
    result = minikernel_runs[gen]
    assert result.strategy == f"hardware-assisted:{gen}"
    assert result.halted and result.console == native.console
    assert result.equivalent, result.divergence
    assert result.resource_violations == ()
    assert result.guest_instructions == native.guest_instructions
    for cause, count in native.by_cause.items():  # guest-visible causes as on bare metal
        assert result.by_cause[cause] == count, cause
    exits = _exits(result)
    assert result.vmm_entries == sum(exits.values()) == result.events["vm_exit"]
    for reason in ("exit:io", "exit:hlt", "exit:external-interrupt", "exit:interrupt-window"):
        assert exits[reason] > 0, reason
    assert not any(k.startswith("vmm:") for k in result.by_cause)  # no trap ever
    events = result.events
    assert events["instruction"] + events["emulated_instruction"] == result.guest_instructions
    assert result.efficiency == events["instruction"] / result.guest_instructions
    assert events["device_access"] == exits["exit:io"]
    # system calls and the breakpoint went through the guest's table with no exit
    assert events["guest_trap"] >= native.by_cause["int 0x80"] + native.by_cause["breakpoint"]
    assert events["interrupt_injection"] >= native.by_cause["timer"]  # every virtual timer IRQ


def test_minikernel_generations_differ_by_their_paging_exits(minikernel_runs):
    gen1, gen2 = minikernel_runs["1"], minikernel_runs["2"]
    # generation 1: shadow paging exits (#PF in the exception bitmap, cr3/cr0 accesses)
    assert gen1.by_cause["exit:exception"] == gen1.events["vm_exit:pgfault"] > 0
    assert gen1.by_cause["exit:cr-access"] > 0 and gen1.events["shadow_sync"] > 0
    # generation 2: the guest's own tables through nested paging, no paging exit at all
    assert not {"exit:exception", "exit:nested-page-fault", "exit:cr-access",
                "exit:invlpg"} & set(gen2.by_cause)
    assert "vm_exit:pgfault" not in gen2.events and "shadow_sync" not in gen2.events
    assert gen2.vmm_entries < gen1.vmm_entries
    paging = sum(v for k, v in _exits(gen1).items()
                 if k in ("exit:exception", "exit:cr-access", "exit:invlpg"))
    assert gen1.vmm_entries - gen2.vmm_entries == paging
    # the guest's true page fault: generation 1 injects it, generation 2 never sees it
    assert gen1.events["interrupt_injection"] == gen2.events["interrupt_injection"] + 1


@pytest.mark.parametrize("gen", GENERATIONS)
def test_nanobench_is_equivalent_unlike_trap_emulate(nanobench, nanobench_runs, gen):
    native = runner.run(nanobench)
    result = nanobench_runs[gen]
    assert result.halted and result.equivalent, result.divergence
    assert "cpl: rdcs = 0" in result.console  # the guest kernel really is at ring 0
    assert result.console == native.console  # popf changed the guest's own IF
    # divzero and int 0x80 are delivered by the hardware through the guest's table: no exit
    assert result.by_cause["divide-error"] == native.by_cause["divide-error"]
    assert result.by_cause["int 0x80"] == native.by_cause["int 0x80"]
    assert set(_exits(result)) <= {"exit:io", "exit:hlt", "exit:external-interrupt",
                                   "exit:interrupt-window", "exit:exception", "exit:cr-access",
                                   "exit:invlpg"}


def test_nanobench_generation_1_exits_on_page_faults_and_page_table_writes(nanobench,
                                                                          nanobench_runs):
    gen1, gen2 = nanobench_runs["1"], nanobench_runs["2"]
    exits = _exits(gen1)
    assert exits["exit:exception"] == gen1.events["vm_exit:pgfault"] >= 300
    assert exits["exit:invlpg"] > 0
    # ptemod: stores to write-protected guest page tables, emulated (beyond the instruction exits)
    instruction_exits = sum(exits.get(k, 0) for k in ("exit:io", "exit:hlt", "exit:cr-access",
                                                       "exit:invlpg"))
    assert gen1.events["emulated_instruction"] - instruction_exits >= 200
    assert gen1.events["shadow_sync"] > 0
    # the benchmark's 100 true page faults: injected in generation 1, hardware-delivered in 2
    assert gen1.events["interrupt_injection"] >= 100
    assert gen2.events["guest_trap"] == sum(runner.run(nanobench).by_cause.values())
    assert "exit:exception" not in gen2.by_cause and "interrupt_injection" not in gen2.events


@pytest.mark.parametrize("gen", GENERATIONS)
def test_faults_while_the_hardware_delivers_an_event(gen):
    """tests/vmm/delivery.s: an exception's, an injected IRQ's and an `int`'s frame land on
    fresh stack pages (generation 1: #PF exits with the event as vectoring information, the
    event re-injected or the `int` re-run), then a #DE whose frame cannot be pushed at all
    (#PF, #DF, triple fault)."""
    image = assemble_file(Path(__file__).with_name("delivery.s")).image
    guest = Guest(name="delivery", image=image, memory_size=0x10000, max_steps=100_000)
    native = runner.run(guest)
    assert native.stop_reason == "triple-fault" and native.console == "delivered\n"
    result = run_guest(guest, f"hardware-assisted:{gen}")
    assert result.stop_reason == "triple-fault" and result.equivalent, result.divergence
    guest_causes = {k: v for k, v in result.by_cause.items() if not k.startswith("exit:")}
    assert guest_causes == native.by_cause  # each delivery counted once, as natively
    if gen == "1":
        assert result.by_cause["exit:exception"] >= 5
    else:
        assert result.by_cause["exit:triple-fault"] == 1


@pytest.mark.parametrize("gen", GENERATIONS)
def test_two_vms_time_sliced_each_as_on_bare_metal(minikernel, loop, gen):
    hv = Hypervisor(make_strategy("hardware-assisted", gen), quantum=700)
    vms = [hv.create_vm(g) for g in (minikernel, loop)]
    for vm in vms:
        vm.boot()
    hv.run()
    structures = set()
    for vm, guest in zip(vms, (minikernel, loop)):
        assert vm.stop_reason == "halted"
        assert vm_state(vm) == _native(guest), vm.name
        assert vm.events["world_switch"] > 0
        assert hv.resource_violations(vm) == []
        # one control structure per VM, in the VMM region, outside every slice
        address = vm.hardware.vmcs.address
        assert address + 0x200 <= hv.vmm_region
        structures.add(address)
    assert len(structures) == 2 and hv.violations == []
    assert hv.cpu.vm_exits["external-interrupt"] > 0


@pytest.mark.parametrize("gen", GENERATIONS)
def test_hostile_guest_faults_inside_its_own_vm(hostile, loop, gen):
    hv = Hypervisor(make_strategy("hardware-assisted", gen), quantum=300)
    neighbour = hv.create_vm(loop)
    bad = hv.create_vm(hostile)
    neighbour.boot()
    bad.boot()
    before = bytes(hv.machine.memory.data[:hv.vmm_region])
    hv.run()
    assert bad.console == "hostile: 192\n"
    assert bad.by_cause["general-protection"] == 192
    if gen == "2":  # every probe beyond its RAM is a nested page fault, reflected as #GP(0)
        assert bad.by_cause["exit:nested-page-fault"] == 192
    assert neighbour.console == runner.run(loop).console
    assert hv.violations == [] and hv.resource_violations(bad) == []
    assert vm_state(bad) == _native(hostile)
    # the VMM region changed only in frames the VMM owns (control structures, page tables)
    after = hv.machine.memory.data
    changed = {pa & ~0xFFF for pa in range(0, hv.vmm_region, 4)
               if after[pa:pa + 4] != before[pa:pa + 4]}
    assert changed <= set(range(0x1000, hv.vmm_region, 0x1000))
    assert not any(after[0:0x800:8][i] for i in range(256))  # real gates untouched


def test_nested_table_maps_exactly_the_slice_and_the_audit_checks_it(loop):
    hv = Hypervisor(make_strategy("hardware-assisted:2"))
    vm = hv.create_vm(loop)
    vm.boot()
    hv.run(max_steps=50)
    frames = vm.pager.mapped_host_frames()
    assert len(frames) == vm.size // 4096
    assert {frame for _key, _page, frame in frames} == set(range(vm.base, vm.base + vm.size,
                                                                 4096))
    table = next(iter(vm.pager.tables.values()))
    hv.machine.memory.write32(table, 0x0 | 1)  # a VMM bug: guest page 0 → host frame 0
    assert any("outside its slice" in v for v in hv.resource_violations(vm))


@pytest.mark.parametrize("gen", GENERATIONS)
def test_snapshot_restore_continues_exactly(minikernel, gen):
    hv = Hypervisor(make_strategy("hardware-assisted", gen))
    vm = hv.create_vm(minikernel)
    vm.boot()
    hv.run(max_steps=15_000)
    assert vm.stop_reason == "budget"
    snap = vm.snapshot()
    hv.run()
    end = vm_state(vm)
    assert end == _native(minikernel)

    hv2 = Hypervisor(make_strategy("hardware-assisted", gen))
    vm2 = hv2.create_vm(minikernel)
    vm2.restore(snap)
    hv2.run()
    assert vm_state(vm2) == end
    assert vm2.guest_instructions == vm.guest_instructions


def test_destroy_gives_back_the_vmm_frames(loop):
    hv = Hypervisor(make_strategy("hardware-assisted:2"))
    free = len(hv.frames.free)
    vm = hv.create_vm(loop)
    assert len(hv.frames.free) < free
    vm.boot()
    hv.run()
    vm.destroy()
    assert len(hv.frames.free) == free


@pytest.mark.parametrize("gen", GENERATIONS)
def test_hosted_counts_host_syscalls_and_is_otherwise_identical(loop, gen):
    spec = f"hardware-assisted:{gen}"
    system = run_guest(loop, spec, check_equivalence=False)
    hosted = run_guest(loop, spec, placement="hosted", check_equivalence=False)
    assert hosted.console == system.console and hosted.by_cause == system.by_cause
    assert "host_syscall" not in system.events
    assert hosted.events["host_syscall"] >= hosted.events["device_access"] > 0


def test_runs_are_deterministic(loop):
    assert run_guest(loop, "hardware-assisted:1") == run_guest(loop, "hardware-assisted:1")


def test_traces_line_up_with_native(loop):
    """The per-instruction replay sees exiting (emulated) instructions and drops retried ones,
    so a hardware-assisted trace matches the native one instruction for instruction."""
    for spec in ("hardware-assisted:1", "hardware-assisted:2"):
        text = find_divergence(loop, spec)
        assert text.startswith("every instruction saw the same registers"), (spec, text)


def test_registry_variants_and_errors():
    assert make_strategy("hardware-assisted").spec == "hardware-assisted:2"
    assert make_strategy("hardware-assisted:1").spec == "hardware-assisted:1"
    assert {"hardware-assisted:1", "hardware-assisted:2"} <= set(default_specs())
    with pytest.raises(StrategyError, match="unknown variant"):
        make_strategy("hardware-assisted:3")


def test_cli_run_json_and_compare():
    cli = CliRunner()
    result = cli.invoke(main, ["run", "guests/minikernel", "--vmm", "hardware-assisted:1",
                               "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["strategy"] == "hardware-assisted:1" and data["equivalent"] is True
    assert data["events"]["vm_exit"] == data["vmm_entries"] > 0
    result = cli.invoke(main, ["compare", "guests/examples/loop.s"])
    assert result.exit_code == 0, result.output
    assert "hardware-assisted:1" in result.output and "hardware-assisted:2" in result.output
