"""Equivalence (Popek & Goldberg) as a property over generated programs, for every strategy that
runs an unmodified kernel: the program inside a tiny kernel (props_kernel), at ring 0 or ring 3,
runs natively and under the strategy, and the guest-visible final states must be equal.

- trap-emulate (both ring models): every program without sensitive-unprivileged instructions is
  equivalent; a program with them is equivalent or the divergence is reported, naming an
  instruction (vmm/equivalence.py) — and only such programs may diverge;
- binary-translation and hardware-assisted (both generations): every program, sensitive and
  self-modifying ones included, is equivalent.

Every run is also audited: no resource-control violation (vmm/hypervisor.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from props_kernel import TARGETS, examples, kernel_guest

from toyvisor.isa.spec import Privilege
from toyvisor.testing import strategies as tst
from toyvisor.vmm import run_guest

TRAP_EMULATE = ["trap-emulate:0/1/3", "trap-emulate:0/3/3"]
EXACT = ["binary-translation", "hardware-assisted:1", "hardware-assisted:2"]
SENSITIVE = {d.mnemonic for d in __import__("toyvisor.isa.table", fromlist=["x"]).INSTRUCTIONS
             if d.privilege is Privilege.SENSITIVE}

#: a strategy's run is cheap but it runs twice (native + VM, plus a traced replay on divergence)
EXAMPLES = examples(20)


def _run(program, user, spec):
    guest = kernel_guest(program, user=user)
    result = run_guest(guest, spec)
    assert result.resource_violations == (), (spec, program, result.resource_violations)
    return result


@pytest.mark.parametrize("spec", TRAP_EMULATE)
@settings(max_examples=EXAMPLES)
@given(program=tst.programs(privileged=True, targets=TARGETS, interrupts=True, loop=True),
       user=st.booleans())
def test_trap_emulate_is_equivalent_without_sensitive_instructions(spec, program, user):
    result = _run(program, user, spec)
    assert result.equivalent, f"{spec}:\n{program}\n{result.divergence}"


@pytest.mark.parametrize("spec", TRAP_EMULATE)
@settings(max_examples=EXAMPLES)
@given(program=tst.programs(privileged=True, sensitive=True, targets=TARGETS, interrupts=True),
       user=st.booleans())
def test_trap_emulate_reports_every_divergence(spec, program, user):
    result = _run(program, user, spec)
    if not result.equivalent:
        assert program.mnemonics & SENSITIVE, f"{spec} diverged without cause:\n{program}"
        assert result.divergence, f"{spec} diverged silently:\n{program}"
        assert "[final state:" in result.divergence


@pytest.mark.parametrize("spec", EXACT)
@settings(max_examples=EXAMPLES)
@given(program=tst.programs(privileged=True, sensitive=True, targets=TARGETS,
                            self_modifying=True, interrupts=True, loop=True),
       user=st.booleans())
def test_exact_strategies_are_equivalent_for_every_program(spec, program, user):
    result = _run(program, user, spec)
    assert result.equivalent, f"{spec}:\n{program}\n{result.divergence}"
