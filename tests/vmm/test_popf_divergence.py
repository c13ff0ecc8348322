"""The POPF divergence explanation reads IF where the `popf` retired (issue 10, item 3): an
interrupt taken right after it clears IF at the handler's first instruction, which must not
make the explanation say "0 on bare metal"."""

from pathlib import Path

from toyvisor.tools.guest import load_guest
from toyvisor.vmm import run_guest

HERE = Path(__file__).resolve().parent


def test_an_interrupt_right_after_popf_does_not_hide_the_bare_metal_if():
    result = run_guest(load_guest(HERE / "popf_irq.s"), "trap-emulate")
    assert not result.equivalent
    assert result.divergence.startswith("popf at ")
    assert "of the guest, popf_irq.s:28;" in result.divergence  # the statement that diverged
    assert "(virtual IF 0 after it, 1 on bare metal)" in result.divergence


def test_the_nanobench_popf_divergence_still_reads_the_same():
    result = run_guest(load_guest("nanobench"), "trap-emulate")
    assert "popf" in result.divergence
    assert "(virtual IF 0 after it, 1 on bare metal)" in result.divergence
