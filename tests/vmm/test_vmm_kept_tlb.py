"""The hardware-assisted VMM (generation 2) lets the CPU keep the guest's TLB across VM exits
(`VirtualizationUnit.keep_tlb`, invalidated by the VMM on every change: `invalidate`).  On
guests that do not rely on stale translations a run computes exactly what it computes with an
empty TLB at every entry (`HardwareAssisted.tagged_tlb` off): state, console and every count,
one VM or several time-sliced, and SMP VMs (which never keep it)."""

from __future__ import annotations

import pytest

from toyvisor.cpu import vt
from toyvisor.tools.guest import load_guest
from toyvisor.vmm.hypervisor import Hypervisor
from toyvisor.vmm.strategies import make_strategy
from toyvisor.vmm.strategies.hardware_assisted import HardwareAssisted


def _vm_outcome(vm):
    vcpu = vm.vcpu
    return (vm.stop_reason, vm.fault_report, vm.memory.snapshot(), tuple(vcpu.regs), vcpu.pc,
            vcpu.cpl, vcpu.flags, vcpu.cr2, vcpu.cr3, vm.guest_instructions, vm.by_cause,
            vm.events, vm.entries, vm.devices.clock, vm.idle_ticks, vm.console)


def _hosted(names, tagged: bool, monkeypatch, quantum: int = 700):
    monkeypatch.setattr(HardwareAssisted, "tagged_tlb", tagged)
    hypervisor = Hypervisor(make_strategy("hardware-assisted:2"), quantum=quantum)
    vms = [hypervisor.create_vm(load_guest(name)) for name in names]
    for vm in vms:
        vm.boot()
    hypervisor.run()
    return [_vm_outcome(vm) for vm in vms], hypervisor


@pytest.mark.parametrize("names", [["minikernel"], ["nanobench"], ["minikernel", "nanobench"],
                                   ["minikernel", "examples/loop.s"]])
def test_a_kept_tlb_computes_what_an_empty_one_does(names, monkeypatch):
    kept, _ = _hosted(names, True, monkeypatch)
    empty, _ = _hosted(names, False, monkeypatch)
    assert kept == empty
    assert all(outcome[0] == "halted" for outcome in kept)


def test_the_kept_tlb_is_taken_and_survives_exits(monkeypatch):
    built = []
    original = vt.NestedMMU.__init__

    def counting(self, *args, **kwargs):
        built.append(1)
        original(self, *args, **kwargs)

    monkeypatch.setattr(vt.NestedMMU, "__init__", counting)
    _, hypervisor = _hosted(["minikernel"], True, monkeypatch)
    entries = hypervisor.vms[0].entries
    assert entries > 20 and len(built) < entries / 4  # most entries resume with the kept MMU


def test_smp_vms_and_generation_1_never_keep_it(monkeypatch):
    monkeypatch.setattr(HardwareAssisted, "tagged_tlb", True)
    for spec, pcpus in (("hardware-assisted:2", 2), ("hardware-assisted:1", 1)):
        hypervisor = Hypervisor(make_strategy(spec), pcpus=pcpus)
        vm = hypervisor.create_vm(load_guest("minikernel"))
        vm.boot()
        hypervisor.run()
        assert vm.stop_reason == "halted"
        assert all(cpu.vt._kept is None for cpu in hypervisor.machine.cpus)


def test_a_reset_or_another_exit_invalidates(monkeypatch):
    monkeypatch.setattr(HardwareAssisted, "tagged_tlb", True)
    strategy = make_strategy("hardware-assisted:2")
    hypervisor = Hypervisor(strategy)
    vm = hypervisor.create_vm(load_guest("minikernel"))
    vm.boot()
    hypervisor.run(max_steps=5_000)
    cpu = hypervisor.cpu
    assert cpu.vt.keep_tlb and cpu.vt._kept is not None
    strategy.reset(vm)
    assert cpu.vt._kept is None


@pytest.mark.parametrize("spec", ["hardware-assisted:2", "hardware-assisted:1"])
def test_exits_emulate_with_the_decodings_handler_as_with_one_bound_anew(spec, monkeypatch):
    """An instruction exit decodes through `DECODINGS` and hands `emulate` the handler bound
    there; with `emulate` binding it itself, runs end alike in state and counts."""
    from toyvisor.vmm.strategies import hardware_assisted

    def outcomes():
        strategy = make_strategy(spec)
        strategy.run(load_guest("nanobench"))
        return _vm_outcome(strategy.last_vm)

    cached = outcomes()
    original = hardware_assisted.emulate
    monkeypatch.setattr(hardware_assisted, "emulate",
                        lambda vm, decoded, handler=None, **kw: original(vm, decoded, **kw))
    assert outcomes() == cached
    assert cached[0] == "halted"
