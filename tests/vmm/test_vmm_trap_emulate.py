"""trap-emulate on the bundled guests: equivalence where it must hold, explained divergence where
it cannot (sensitive-unprivileged instructions), and the contract's result shape."""

import pytest

from toyvisor.tools import runner
from toyvisor.vmm import STRATEGIES, StrategyError, make_strategy, run_guest

RING_MODELS = ("0/1/3", "0/3/3")


@pytest.mark.parametrize("ring_model", RING_MODELS)
def test_minikernel_is_equivalent(minikernel, ring_model):
    native = runner.run(minikernel)
    result = run_guest(minikernel, "trap-emulate", ring_model=ring_model)
    assert result.strategy == f"trap-emulate:{ring_model}"
    assert result.halted and result.stop_reason == "halted"
    assert result.console == native.console
    assert result.equivalent, result.divergence
    assert result.divergence is None
    assert result.resource_violations == ()
    assert result.guest_instructions == native.guest_instructions
    # guest-visible causes exactly as on bare metal, plus the VMM's own
    for cause, count in native.by_cause.items():
        assert result.by_cause[cause] == count
    for cause in ("vmm:privileged", "vmm:io", "vmm:pgfault-hidden", "vmm:int", "vmm:timer"):
        assert result.by_cause[cause] > 0
    assert result.vmm_entries == sum(v for k, v in result.by_cause.items() if k.startswith("vmm:"))
    assert 0.9 < result.efficiency < 1
    events = result.events
    assert events["instruction"] + events["emulated_instruction"] == result.guest_instructions
    assert events["trap"] == result.vmm_entries
    assert events["shadow_sync"] > 0 and events["tlb_flush"] > 0
    assert events["interrupt_injection"] == sum(native.by_cause.values())


@pytest.mark.parametrize("ring_model", RING_MODELS)
def test_nanobench_diverges_at_popf_with_an_explanation(nanobench, ring_model):
    result = run_guest(nanobench, "trap-emulate", ring_model=ring_model)
    assert result.halted
    assert not result.equivalent
    text = result.divergence
    assert text.startswith("popf at 0x")
    assert "sensitive-unprivileged" in text and "sensitive-register" in text
    assert "silently ignored" in text
    real = "1" if ring_model == "0/1/3" else "3"
    assert f"vCPL 0, real CPL {real}" in text
    # what the guest itself observed: pushf (also sensitive-unprivileged) reads the *real* IF,
    # which the VMM keeps at 1, so the printed IF matches bare metal by accident, while rdcs
    # shows the real ring
    assert "popf: IF after popf = 1" in result.console
    assert f"cpl: rdcs = {real}" in result.console
    assert result.by_cause["vmm:ptemod"] > 0 and result.by_cause["vmm:pgfault-guest"] > 0


def test_native_strategy_has_the_same_shape(minikernel):
    result = run_guest(minikernel, "native")
    assert result.vmm_entries == 0 and result.efficiency == 1
    assert result.events["instruction"] == result.guest_instructions
    assert result.events["guest_trap"] == sum(result.by_cause.values())
    assert set(result.to_dict()) >= {"strategy", "equivalent", "divergence", "guest_instructions",
                                     "vmm_entries", "by_cause", "cycles", "slowdown"}


def test_hosted_counts_host_syscalls_and_is_otherwise_identical(loop):
    system = run_guest(loop, "trap-emulate", check_equivalence=False)
    hosted = run_guest(loop, "trap-emulate", placement="hosted", check_equivalence=False)
    assert hosted.console == system.console and hosted.by_cause == system.by_cause
    assert "host_syscall" not in system.events
    assert hosted.events["host_syscall"] >= hosted.events["device_access"] > 0
    assert hosted.placement == "hosted"


def test_runs_are_deterministic(loop):
    a = run_guest(loop, "trap-emulate:0/3/3")
    b = run_guest(loop, "trap-emulate:0/3/3")
    assert a == b


def test_registry_and_errors():
    assert {"native", "trap-emulate"} <= set(STRATEGIES) or make_strategy("native")
    assert make_strategy("trap-emulate").spec == "trap-emulate:0/1/3"
    assert make_strategy("trap-emulate", "0/3/3").spec == "trap-emulate:0/3/3"
    with pytest.raises(StrategyError, match="unknown strategy 'nope'"):
        make_strategy("nope")
    with pytest.raises(StrategyError, match="unknown variant"):
        make_strategy("trap-emulate:0/2/3")
