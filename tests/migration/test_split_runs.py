"""Migration runs a VM in pieces (each round, each chunk of post-copy): a run split at any step
must be the same run.  (The hypervisor once entered a VM resumed after its budget without the
interrupt check of that instruction boundary: split right after minikernel's `iret` at step
37,614, the timer interrupt came one instruction late.)"""

from __future__ import annotations

import pytest

from toyvisor.tools.guest import load_guest
from toyvisor.vmm.hypervisor import Hypervisor
from toyvisor.vmm.migration.session import describe_difference, guest_state, unmigrated
from toyvisor.vmm.strategies import make_strategy


def _split_run(guest, strategy, points):
    hypervisor = Hypervisor(make_strategy(strategy), memory_size=(1 << 20) + guest.memory_size)
    vm = hypervisor.create_vm(guest, guest.name)
    vm.boot()
    for point in points:
        hypervisor.run(max_steps=point - vm.steps)
    hypervisor.run(max_steps=guest.max_steps - vm.steps)
    return guest_state(vm)


@pytest.mark.parametrize("strategy", ["trap-emulate", "binary-translation",
                                      "hardware-assisted:1", "hardware-assisted:2"])
def test_a_run_split_at_interrupt_boundaries_is_the_same_run(strategy):
    guest = load_guest("minikernel")
    reference = unmigrated(guest, strategy)[0]
    for points in ([37_614], [37_700], list(range(30_000, 40_000, 97))):
        assert describe_difference(_split_run(guest, strategy, points), reference) is None, points
