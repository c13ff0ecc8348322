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

    # every instruction exit decoded (an I/O exit of generation 2 otherwise binds from its
    # qualification: tests/vmm/test_vmm_fast_exits.py)
    monkeypatch.setattr(HardwareAssisted, "io_from_qualification", False)

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


STALE = """
start:  li   sp, 0x8000
        li   r1, 0xA000
        mtcr cr3, r1
        li   r1, 1
        mtcr cr0, r1
        li   r6, 0xD000
        ld   r4, [r6]
        li   r1, 0xB034
        li   r2, NEW
        st   [r1], r2
        out  PORT_CONSOLE_DATA, r4
        ld   r5, [r6]
        out  PORT_CONSOLE_DATA, r5
        hlt
"""


def test_a_stale_translation_survives_an_exit_as_on_bare_metal(monkeypatch):
    """The kernel remaps page 0xD000 without `invlpg`, then makes an I/O exit: natively the TLB
    still holds the old translation, and with the kept TLB so does the guest under generation 2
    (with an empty TLB per entry it would read the new page: docs/hardware-virtualization.md's
    known limit, lifted for exits that change no translation)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cpu"))
    from cpu_asm import assemble, map_pages

    from toyvisor.asm.image import Image, Segment
    from toyvisor.cpu import Machine
    from toyvisor.isa.spec import PTE_P, PTE_PL_SHIFT, PTE_W
    from toyvisor.tools.guest import Guest

    rw = PTE_P | PTE_W | (3 << PTE_PL_SHIFT)
    code = assemble(STALE, {"NEW": 0xE000 | rw})
    machine = Machine(memory_size=1 << 16)
    machine.load(code)
    machine.memory.write32(0xD000, ord("A"))
    machine.memory.write32(0xE000, ord("B"))
    map_pages(machine.memory, 0xA000, [(page, page, rw) for page in range(0, 1 << 16, 0x1000)])
    image = Image(segments=(Segment("text", 0, bytes(machine.memory.data)),), entry=code.entry)
    guest = Guest(name="stale", image=image, memory_size=1 << 16, max_steps=1_000)

    native = Machine(memory_size=1 << 16)
    native.load(image)
    assert native.run(1_000).console == "AA"
    strategy = make_strategy("hardware-assisted:2")
    result = strategy.run(guest)
    assert strategy.last_vm.console == "AA" and result.by_cause.get("exit:io", 0) == 2
    monkeypatch.setattr(HardwareAssisted, "tagged_tlb", False)  # the old behaviour, for contrast
    strategy = make_strategy("hardware-assisted:2")
    strategy.run(guest)
    assert strategy.last_vm.console == "AB"
