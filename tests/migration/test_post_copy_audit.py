"""After a post-copy resume the destination hypervisor's resource audit keeps running: its hook
is chained after the network-fault handler, whose watches survive the audit's own."""

from __future__ import annotations

from migration_support import LINK, SLOW, dirty_guest, reference
from toyvisor.isa.spec import PAGE_SIZE
from toyvisor.vmm.hypervisor import DEFAULT_VMM_REGION
from toyvisor.vmm.migration.methods import make_method
from toyvisor.vmm.migration.session import Session


def _session(**options):
    guest = dirty_guest(SLOW)
    return Session(guest, "trap-emulate", make_method("post-copy"), link=LINK, at=20_000,
                   reference=reference(SLOW, "trap-emulate"), **options)


def test_a_stray_access_at_the_destination_during_post_copy_is_reported():
    guest = dirty_guest(SLOW)
    size = -(-guest.memory_size // PAGE_SIZE) * PAGE_SIZE
    session = _session(dest_memory=DEFAULT_VMM_REGION + 2 * size)
    resident = session.dest.create_vm(guest, "resident")  # another tenant of host B
    run_vm = session.run_vm
    strayed = []

    def run_then_stray(hypervisor, vm, steps):
        ran = run_vm(hypervisor, vm, steps)
        if hypervisor is session.dest and not strayed:  # the VM runs at B, pages still missing
            assert session.network_faults > 0 or ran
            # as if the guest's own store reached the other tenant while it ran
            hypervisor.in_vmm, hypervisor.current = False, vm
            hypervisor.machine.memory.write32(resident.base + 64, 1)
            hypervisor.in_vmm, hypervisor.current = True, None
            strayed.append(vm.name)
        return ran

    session.run_vm = run_then_stray
    result = session.run()
    assert strayed and result.outcome == "migrated"
    assert any("outside" in v for v in result.resource_violations), result.resource_violations


def test_a_post_copy_without_strays_stays_clean_and_equivalent():
    result = _session().run()
    assert result.equivalent and result.resource_violations == ()
    assert result.network_faults > 0 and result.max_sends_per_page == 1
