"""Isolation tests for your own kernel (the example of docs/testing-isolation.md, verbatim)."""

from pathlib import Path

from hypothesis import given, settings

from toyvisor.testing import (
    assert_isolated,
    assert_kernel_isolates,
    kernel_targets,
    strategies,
    user_guest,
)
from toyvisor.tools.guest import load_guest

KERNEL = load_guest("minikernel")  # your kernel: a guest directory that follows the convention
BROKEN = Path(__file__).resolve().parent / "broken_kernel"


def test_no_user_program_escapes_the_kernel(toyvisor_check):
    # every property, natively and under trap-and-emulate; fails the test with the details
    toyvisor_check(KERNEL, vmms=["trap-emulate"], examples=2)


def test_the_broken_kernel_is_caught(toyvisor_check):
    report = toyvisor_check(BROKEN, vmms=[], examples=2, expect_held=False)
    assert not report.held


@settings(max_examples=5)
@given(strategies.programs(targets=kernel_targets(KERNEL), privileged=True))
def test_ring_3_stays_in_user_memory(program):
    assert_kernel_isolates(user_guest(KERNEL, program), program)


@settings(max_examples=3)
@given(strategies.programs(targets=kernel_targets(KERNEL), self_modifying=True))
def test_the_vm_stays_in_its_frames_under_binary_translation(program):
    assert_isolated(user_guest(KERNEL, program), "binary-translation", program)
