"""The isolation properties for SMP VMs (`toyvisor.testing.smp`, ``toyvisor check --cpus``):
generated guests of several vCPUs on several physical CPUs next to a two-vCPU victim; a VMM bug
that only a vCPU other than 0 hits is caught."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from toyvisor.testing.harness import bare_guest
from toyvisor.testing.program import Instr, Program
from toyvisor.testing.properties import run_under
from toyvisor.testing.smp import MAX_SMP_CPUS, SMP_PROPERTIES, bare_smp_guest
from toyvisor.tools.cli import main
from toyvisor.vmm.hypervisor import Hypervisor
from toyvisor.vmm.strategies import make_strategy
from toyvisor.vmm.strategies.trap_emulate import TrapEmulate

STORE = Program((Instr("li", (1, 5)), Instr("li", (13, 0x2000)), Instr("st", ((13, 0), 1))))


def test_every_vcpu_of_a_generated_smp_guest_runs_the_program():
    hv = Hypervisor(make_strategy("trap-emulate"), memory_size=(1 << 20) + 0x10000, pcpus=2)
    vm = hv.create_vm(bare_smp_guest(STORE, 3))
    vm.boot()
    hv.run()
    assert vm.stop_reason == "halted"
    assert [v.run_state for v in vm.vcpus] == ["halted"] * 3
    assert {v.pcpu for v in vm.vcpus} == {0, 1}                  # on both physical CPUs
    assert vm.by_cause["vmm:io"] >= 2 * 2 + 3                   # 2 start IPIs, 3 timers
    assert vm.memory.read32(0x2000) == 5


@pytest.mark.parametrize("spec", ["trap-emulate", "binary-translation", "hardware-assisted"])
def test_the_smp_properties_hold_under_every_classic_strategy(spec):
    wild = Program((Instr("li", (13, 0x10000)), Instr("li", (1, 7)),   # past its RAM: the
                    Instr("st", ((13, 0), 1)), Instr("ld", (2, (13, 0)))))  # next VM's slice
    for program, pcpus in ((STORE, 2), (wild, 1), (wild, 3)):
        run = run_under(bare_smp_guest(program, 2), spec, program=program,
                        properties=SMP_PROPERTIES, pcpus=pcpus)
        assert run.findings == ()


def _vcpu_number_for_vm_number(monkeypatch):
    """A VMM bug: loading a vCPU, trap-emulate indexes the host's VMs by the vCPU's number, so
    vCPU 1 of the first VM runs on the second VM's shadow tables."""
    load = TrapEmulate.load

    def buggy(self, vm, cpu, switch):
        load(self, vm, cpu, switch)
        vms = self.hypervisor.vms
        if 0 < vm.vcpu.index < len(vms) and vms[vm.vcpu.index] is not vm:
            cpu.write_cr(3, vms[vm.vcpu.index].pager.root())

    monkeypatch.setattr(TrapEmulate, "load", buggy)


def test_a_bug_only_vcpu_1_hits_is_caught_by_the_smp_check_and_missed_by_one_vcpu(monkeypatch):
    _vcpu_number_for_vm_number(monkeypatch)
    one = run_under(bare_guest(STORE), "trap-emulate", program=STORE,
                    properties=("resource-control", "vm-isolation"))
    assert one.findings == ()                                   # one vCPU: never vCPU 1
    smp = run_under(bare_smp_guest(STORE, 2), "trap-emulate", program=STORE,
                    properties=SMP_PROPERTIES, pcpus=1)
    found = {f.name: f for f in smp.findings}
    assert set(found) == {"resource-control", "vm-isolation"}
    assert found["vm-isolation"].access.where == "the other VM"


def test_check_cpus_reports_the_smp_properties_per_strategy():
    result = CliRunner().invoke(main, ["check", "guests/minikernel", "--json", "--vmm",
                                       "hardware-assisted", "--examples", "2", "--cpus", "2"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    smp = [p for p in report["properties"] if "vCPUs" in p["strategy"]]
    assert [(p["name"], p["strategy"], p["held"]) for p in smp] == [
        (name, f"{make_strategy('hardware-assisted').spec} (2 vCPUs on 2 physical CPUs)", True)
        for name in SMP_PROPERTIES]


def test_check_cpus_fails_with_exit_2_on_the_vcpu_bug(monkeypatch):
    _vcpu_number_for_vm_number(monkeypatch)
    result = CliRunner().invoke(main, ["check", "guests/minikernel", "--vmm", "trap-emulate",
                                       "--examples", "3", "--cpus", "2", "--pcpus", "1"])
    assert result.exit_code == 2, result.output
    assert "FAILED  vm-isolation      trap-emulate:0/1/3 (2 vCPUs on 1 physical CPU)" \
        in result.output
    assert "held    vm-isolation      trap-emulate:0/1/3\n" in result.output  # one vCPU: missed


@pytest.mark.parametrize("args, message", [
    (["--cpus", "0"], f"an SMP check runs VMs of 2 to {MAX_SMP_CPUS} vCPUs, not 0"),
    (["--cpus", "99"], f"an SMP check runs VMs of 2 to {MAX_SMP_CPUS} vCPUs, not 99"),
    (["--cpus", "2", "--pcpus", "0"], "the host has 1 to 64 physical CPUs, not 0"),
    (["--pcpus", "2"], "--pcpus needs --cpus (the vCPUs of the SMP VMs) above 1"),
])
def test_bad_smp_counts_are_one_line_and_exit_1(args, message):
    result = CliRunner().invoke(main, ["check", "guests/minikernel", "--vmm", "trap-emulate",
                                       *args])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f"error: {message}"]
