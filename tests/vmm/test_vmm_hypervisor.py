"""The hypervisor: several VMs time-sliced on one real CPU, isolation, lifecycle, snapshots."""

import pytest

from toyvisor.tools import runner
from toyvisor.vmm import Hypervisor, VMError, make_strategy
from toyvisor.vmm.equivalence import native_state, vm_state
from toyvisor.vmm.strategies.native import boot_native


def _native(guest):
    machine = boot_native(guest)
    machine.run(max_steps=guest.max_steps)
    return native_state(machine)


@pytest.mark.parametrize("ring_model", ["0/1/3", "0/3/3"])
def test_three_vms_time_sliced_each_as_on_bare_metal(minikernel, loop, hostile, ring_model):
    hv = Hypervisor(make_strategy("trap-emulate", ring_model), quantum=700)
    vms = [hv.create_vm(g) for g in (minikernel, loop, hostile)]
    for vm in vms:
        vm.boot()
    hv.run()
    for vm, guest in zip(vms, (minikernel, loop, hostile)):
        assert vm.stop_reason == "halted"
        assert vm_state(vm) == _native(guest), vm.name
        assert vm.events["world_switch"] > 0
        assert hv.resource_violations(vm) == []
    assert hv.violations == []
    # slices are disjoint and beyond the VMM region
    spans = sorted((vm.base, vm.base + vm.size) for vm in vms)
    assert spans[0][0] >= hv.vmm_region
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))


def test_hostile_guest_faults_inside_its_own_vm(hostile, loop):
    hv = Hypervisor(make_strategy("trap-emulate"), quantum=300)
    neighbour = hv.create_vm(loop)
    bad = hv.create_vm(hostile)
    neighbour.boot()
    bad.boot()
    before = bytes(hv.machine.memory.data[:hv.vmm_region])
    hv.run()
    assert bad.console == "hostile: 192\n"  # 128 probes with paging off, 64 through its tables
    assert bad.by_cause["general-protection"] == 192
    assert neighbour.console == runner.run(loop).console
    assert hv.violations == [] and hv.resource_violations(bad) == []
    # the VMM region changed only in shadow page-table frames the VMM itself owns
    after = hv.machine.memory.data
    changed = {pa & ~0xFFF for pa in range(0, hv.vmm_region, 4) if after[pa:pa + 4] != before[pa:pa + 4]}
    assert changed <= set(range(0x1000, hv.vmm_region, 0x1000))
    assert not any(after[0:0x800:8][i] for i in range(256))  # real gates untouched


def test_audit_reports_a_mapping_outside_the_slice(loop):
    hv = Hypervisor(make_strategy("trap-emulate"))
    vm = hv.create_vm(loop)
    vm.boot()
    hv.run(max_steps=50)
    # corrupt the VMM's own physmap (a VMM bug): the structural audit must notice
    space = vm.pager.spaces[("physmap",)]
    table = space.tables[0]
    hv.machine.memory.write32(table, 0x0 | 1)
    assert any("outside its slice" in v for v in hv.resource_violations(vm))


def test_snapshot_restore_continues_exactly(minikernel):
    hv = Hypervisor(make_strategy("trap-emulate"))
    vm = hv.create_vm(minikernel)
    vm.boot()
    hv.run(max_steps=15_000)
    assert vm.stop_reason == "budget"
    snap = vm.snapshot()
    with pytest.raises(AttributeError):
        snap.memory = b""  # immutable
    hv.run()
    end = vm_state(vm)
    assert end.stop_reason == "halted"

    hv2 = Hypervisor(make_strategy("trap-emulate"))
    vm2 = hv2.create_vm(minikernel)
    vm2.restore(snap)
    hv2.run()
    assert vm_state(vm2) == end
    assert vm2.guest_instructions == vm.guest_instructions


def test_pause_resume(minikernel, loop):
    hv = Hypervisor(make_strategy("trap-emulate"), quantum=500)
    a, b = hv.create_vm(minikernel), hv.create_vm(loop)
    a.boot()
    b.boot()
    hv.run(max_steps=2_000)
    a.pause()
    steps = a.steps
    hv.run()
    assert a.steps == steps and a.state == "paused"
    assert b.stop_reason == "halted"
    with pytest.raises(VMError):
        a.pause()
    a.resume()
    hv.run()
    assert a.stop_reason == "halted"
    assert vm_state(a) == _native(minikernel)


def test_destroy_frees_the_slice(loop):
    hv = Hypervisor(make_strategy("trap-emulate"), memory_size=(1 << 20) + (4 << 20))
    vm = hv.create_vm(loop)
    base = vm.base
    vm.boot()
    hv.run()
    with pytest.raises(VMError):
        hv.create_vm(loop)  # no room for a second 4 MiB VM
    vm.destroy()
    assert vm.state == "destroyed" and vm not in hv.vms
    assert not any(hv.machine.memory.data[base:base + vm.size])
    again = hv.create_vm(loop)
    assert again.base == base
    again.boot()
    hv.run()
    assert again.stop_reason == "halted"
