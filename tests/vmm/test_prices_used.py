"""Every price a cost profile defines is applied by some run (issue 10, item 3): a price no run
counts is a number the model quotes and never uses (as native ``guest_trap:pgfault`` was)."""

from __future__ import annotations

import pytest
from toyvisor.tools.guest import load_guest
from toyvisor.vmm import comparison, costs, make_strategy, run_guest
from toyvisor.vmm.hypervisor import Hypervisor


@pytest.fixture(scope="module")
def counted() -> set[str]:
    """Every events key some run of the bundled guests counts (non-zero)."""
    keys: set[str] = set()
    minikernel = load_guest("minikernel")
    for placement in ("system", "hosted"):
        for result in comparison.compare(minikernel, None, placement=placement):
            keys |= {key for key, n in result.events.items() if n}
    # two VMs time-sliced on one hypervisor: the world switch between them
    hv = Hypervisor(make_strategy("trap-emulate"), quantum=700)
    vms = [hv.create_vm(minikernel) for _ in range(2)]
    for vm in vms:
        vm.boot()
    hv.run()
    for vm in vms:
        keys |= {key for key, n in vm.events.items() if n}
    return keys


@pytest.mark.parametrize("profile", costs.available())
def test_every_price_of_every_bundled_profile_is_used_by_some_run(profile, counted):
    unused = sorted(set(costs.named(profile).costs) - counted)
    assert unused == [], f"{profile}: no run counts {unused}"


def test_a_native_page_fault_is_priced_as_a_page_fault():
    result = run_guest(load_guest("minikernel"), "native")
    assert result.by_cause["page-fault"] == 1
    assert result.events["guest_trap:pgfault"] == 1
    model = costs.named("pentium4")
    breakdown = model.breakdown(result.events)
    assert breakdown["guest_trap:pgfault"] == 1093
    assert breakdown["guest_trap"] == (result.events["guest_trap"] - 1) * 889


@pytest.mark.parametrize("spec", ["hardware-assisted:2"])
def test_a_page_fault_the_hardware_delivers_in_the_guest_is_priced_as_one(spec):
    result = run_guest(load_guest("minikernel"), spec)
    assert result.events["guest_trap:pgfault"] == 1
    assert result.events["guest_trap"] >= 1
