"""SMP VMs under every classic strategy (docs/vmm-design.md, "SMP VMs"): a VM of V vCPUs on P
physical CPUs, V above, equal to and below P, against the bare multiprocessor of V CPUs."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import pytest

from toyvisor.cpu.cpu import CPU
from toyvisor.tools.guest import load_guest
from toyvisor.vmm import StrategyError, run_guest
from toyvisor.vmm.hypervisor import Hypervisor
from toyvisor.vmm.strategies import make_strategy
from toyvisor.vmm.vm import VMError

HERE = Path(__file__).resolve().parent
CLASSIC = ("trap-emulate", "trap-emulate:0/3/3", "binary-translation", "binary-translation-all",
           "hardware-assisted:1", "hardware-assisted:2")
SHOOTDOWN = ("shared window before the remap: 8 at generation 1, 0 at generation 2; after the "
             "TLB shootdown: 0 at generation 1, 8 at generation 2")


@pytest.fixture(scope="module")
def smpkernel():
    return load_guest("smpkernel")


@pytest.fixture(scope="module")
def identity():
    return attrs.evolve(load_guest(HERE / "smp_identity.s"), max_steps=400_000)


def _smp(guest, cpus):
    return attrs.evolve(guest, cpus=cpus)


@pytest.mark.parametrize("spec", CLASSIC)
@pytest.mark.parametrize("vcpus, pcpus", [(2, 1), (4, 4)])
def test_smpkernel_is_equivalent_on_its_outcome(smpkernel, spec, vcpus, pcpus):
    result = run_guest(_smp(smpkernel, vcpus), spec, pcpus=pcpus)
    assert result.stop_reason == "halted"
    assert result.equivalent, result.divergence
    assert result.equivalence_basis.startswith(f"SMP outcome ({vcpus} vCPUs)")
    assert (result.vcpus, result.pcpus) == (vcpus, pcpus)
    assert SHOOTDOWN in result.console  # the guest's TLB shootdown, through the VMM's shadows
    assert "locked counter: 400 (expected 400)" in result.console
    assert result.resource_violations == ()


@pytest.mark.parametrize("spec, pcpus", [("trap-emulate", 2), ("binary-translation", 3),
                                         ("hardware-assisted:2", 3)])
def test_more_vcpus_than_physical_cpus(smpkernel, spec, pcpus):
    result = run_guest(_smp(smpkernel, 4), spec, pcpus=pcpus)
    assert result.equivalent, result.divergence
    assert result.events.get("world_switch", 0) > 0  # vCPUs share physical CPUs


@pytest.mark.parametrize("spec", CLASSIC)
def test_identity_timers_and_ipis(identity, spec):
    """`rdpid`, each vCPU's own local timer and IPIs (the idle vCPUs wake on them), with five
    vCPUs on two physical CPUs: the report equals the bare machine's, line for line."""
    result = run_guest(_smp(identity, 5), spec, pcpus=2)
    assert result.equivalent, result.divergence
    lines = result.console.splitlines()
    assert lines == [f"cpu {i}: seen 1, ticks 3, IPIs {int(i > 0)}" for i in range(5)]


def test_rdpid_needs_the_processor_id_the_vmm_loads(identity, monkeypatch):
    """Under trap-emulate `rdpid` runs on the real CPU: without the VMM's load of the processor-id
    register a vCPU on a physical CPU of another number reads the wrong one; under
    hardware-assisted it exits and is emulated, so it does not depend on the register."""
    monkeypatch.setattr(CPU, "cpu_number", lambda self: self.index)
    guest = attrs.evolve(_smp(identity, 3), max_steps=100_000)
    assert not run_guest(guest, "trap-emulate", pcpus=2).equivalent
    assert run_guest(guest, "hardware-assisted:2", pcpus=2).equivalent


def test_one_vcpu_on_several_physical_cpus_is_state_equivalent(identity):
    result = run_guest(_smp(identity, 1), "trap-emulate", pcpus=3)
    assert result.equivalent and result.equivalence_basis.startswith("state")
    assert result.console == "cpu 0: seen 1, ticks 3, IPIs 0\n"


@pytest.mark.parametrize("spec", ["trap-emulate", "hardware-assisted:1"])
def test_a_changed_shadow_entry_leaves_every_real_tlb(smpkernel, spec):
    """The VMM's own shootdown: a shadow entry shared by vCPUs loaded on two physical CPUs is
    invalidated in both real TLBs when the guest's `invlpg` drops it."""
    hv = Hypervisor(make_strategy(spec), memory_size=(1 << 20) + smpkernel.memory_size, pcpus=2)
    vm = hv.create_vm(_smp(smpkernel, 2))
    vm.boot()
    hv.run(max_steps=60_000)  # both vCPUs up, paging on
    pager = vm.pager
    space = next(s for key, s in pager.spaces.items() if key != ("physmap",) and s.entries)
    vpn = next(iter(space.entries))
    cpus = [p.cpu for p in hv.pcpus]
    pager.loaded = {cpu.index: [cpu, space.key] for cpu in cpus}
    for cpu in cpus:
        cpu.mmu.tlb[vpn] = cpu.mmu.tlb.get(vpn, (0, 0, True, True, 0))
    vm.vcpu.cr3 = space.key[0]
    vm.invlpg(vpn << 12)
    assert all(vpn not in cpu.mmu.tlb for cpu in cpus)


@pytest.mark.parametrize("spec", ["trap-emulate", "hardware-assisted:2"])
def test_two_smp_vms_stay_in_their_slices(smpkernel, spec):
    from toyvisor.tools.guest import Guest
    from toyvisor.asm import assemble_file

    hostile = Guest(name="hostile", image=assemble_file(HERE / "hostile.s").image,
                    memory_size=0x10000, max_steps=100_000)
    hv = Hypervisor(make_strategy(spec), memory_size=(1 << 20) + 2 * smpkernel.memory_size,
                    pcpus=2)
    good = hv.create_vm(_smp(smpkernel, 3))
    bad = hv.create_vm(hostile)
    good.boot()
    bad.boot()
    hv.run()
    assert bad.console == "hostile: 192\n"
    assert SHOOTDOWN in good.console and good.stop_reason == "halted"
    assert hv.violations == []
    assert hv.resource_violations(good) == [] and hv.resource_violations(bad) == []
    # the audit is armed for whichever VM a physical CPU runs: the other's memory is watched
    hv.in_vmm = False
    hv._run_vm(bad)
    hv.machine.memory.read32(good.base)
    assert hv.violations and hv.violations[0].startswith("hostile#1: read")


def test_snapshot_of_an_smp_vm_is_refused(smpkernel):
    hv = Hypervisor(make_strategy("trap-emulate"), pcpus=2)
    vm = hv.create_vm(_smp(smpkernel, 2))
    vm.boot()
    with pytest.raises(VMError, match="not supported"):
        vm.snapshot()


@pytest.mark.parametrize("pcpus", [0, 65, True])
def test_bad_physical_cpu_counts(pcpus):
    with pytest.raises(VMError, match="physical CPUs must be an integer from 1 to 64"):
        Hypervisor(make_strategy("trap-emulate"), pcpus=pcpus)


def test_paravirtual_runs_smpkernels_port_as_an_smp_domain(smpkernel):
    result = run_guest(smpkernel, "paravirtual")  # pv_source: guests/pvsmp (tests/vmm/test_pv_smp.py)
    assert result.equivalent and (result.vcpus, result.pcpus) == (4, 4)


def test_paravirtual_needs_a_port_for_an_smp_guest_too():
    with pytest.raises(StrategyError, match="has no paravirtual port"):
        run_guest(load_guest(HERE / "smp_identity.s"), "paravirtual")


def _cli(*args):
    from click.testing import CliRunner

    from toyvisor.tools.cli import main

    return CliRunner().invoke(main, [str(a) for a in args])


def test_compare_cpus_runs_every_classic_strategy():
    result = _cli("compare", HERE / "smp_identity.s", "--cpus", 3, "--pcpus", 2,
                  "--vmm", "trap-emulate", "--vmm", "hardware-assisted:2")
    assert result.exit_code == 0, result.output
    assert "smp_identity: 3 vCPUs on 2 physical CPUs (native: a machine of 3 CPUs)" in result.output
    assert "not applicable" not in result.output  # paravirtual hosts SMP (needs a port)
    assert result.output.count(" yes") == 3
    runs = json.loads(_cli("compare", HERE / "smp_identity.s", "--cpus", 3, "--pcpus", 2,
                           "--vmm", "trap-emulate", "--json").output)
    assert [(r["strategy"], r["vcpus"], r["pcpus"]) for r in runs] == [
        ("native", 3, 3), ("trap-emulate:0/1/3", 3, 2)]


@pytest.mark.parametrize("args, message", [
    (["--pcpus", 0], "the number of physical CPUs must be an integer from 1 to 64, not 0"),
    (["--pcpus", 65], "the number of physical CPUs must be an integer from 1 to 64, not 65"),
    (["--cpus", 65], "the number of CPUs must be an integer from 1 to 64, not 65"),
    (["--cpus", 2, "--vmm", "paravirtual"], "has no paravirtual port"),
])
@pytest.mark.parametrize("command", ["compare", "run"])
def test_bad_smp_input_is_one_error_line(command, args, message):
    if command == "run" and "--vmm" not in args:
        args = [*args, "--vmm", "trap-emulate"]
    result = _cli(command, HERE / "smp_identity.s", *args)
    assert result.exit_code == 1 and message in result.output
    assert result.output.count("\n") == 1 and "Traceback" not in result.output


@pytest.mark.parametrize("spec", ["trap-emulate", "hardware-assisted:2"])
def test_a_run_in_budget_pieces_ends_with_every_vcpu_off_its_cpu(identity, spec):
    guest = _smp(identity, 4)
    hv = Hypervisor(make_strategy(spec), memory_size=(1 << 20) + guest.memory_size, pcpus=3)
    vm = hv.create_vm(guest)
    vm.boot()
    pieces = 0
    while vm.runnable and pieces < 200:
        hv.run(max_steps=500)
        pieces += 1
        assert all(pcpu.loaded is None for pcpu in hv.pcpus)  # state and counts are whole
        assert vm.stop_reason in ("budget", "halted")
    assert vm.stop_reason == "halted" and pieces > 3
    assert vm.console.splitlines() == [f"cpu {i}: seen 1, ticks 3, IPIs {int(i > 0)}"
                                       for i in range(4)]
