"""A traced run under a VMM strategy ends exactly as the untraced one: tracing changes which
engine loop runs the guest (`Translator._run_traced`, `CPU._run_traced`), never what happens.

The shipped `guests/examples/pagefault.s` under hardware-assisted:1 is the case that found a bug:
the #PF injected for the guest's own fault hits a shadow miss on its way in (a VM exit with the
event as vectoring information), the VMM fills the shadow entry and re-injects it, and the
traced loop then ran the faulting instruction again instead of delivering the re-injected event
first (its count of guest traps went negative).

Under binary translation a traced run forms one-instruction blocks (docs/tutorial.md), so there
its translator's counts and the cycles they cost are its own; everything else is compared."""

from pathlib import Path

import pytest

from toyvisor.tools import runner
from toyvisor.tools.guest import load_guest
from toyvisor.vmm.strategies import STRATEGIES, load_builtin

EXAMPLES = Path(__file__).resolve().parents[2] / "guests" / "examples"


def _specs():
    load_builtin()
    for name, cls in sorted(STRATEGIES.items()):
        if name not in ("native", "paravirtual"):
            yield from ([f"{name}:{v}" for v in sorted(cls.variants)] if cls.variants
                        else [name])



@pytest.mark.parametrize("spec", list(_specs()))
@pytest.mark.parametrize("example", ["pagefault.s", "syscall.s", "hello.s", "loop.s"])
def test_a_traced_run_ends_as_the_untraced_one(example, spec):
    guest = load_guest(str(EXAMPLES / example))
    lines: list[str] = []
    traced = runner.run_vmm(guest, spec, trace=runner.vmm_tracer(guest, spec, lines.append))
    plain = runner.run_vmm(guest, spec)
    assert lines  # the trace saw the run
    if not spec.startswith("binary-translation"):
        assert runner.vmm_result_text(traced) == runner.vmm_result_text(plain)
        return
    apart = {"cycles", "slowdown", "blocks_translated", "cache_hits", "cache_misses", "events"}
    mine, theirs = traced.to_dict(), plain.to_dict()
    assert {k: v for k, v in mine.items() if k not in apart} == \
        {k: v for k, v in theirs.items() if k not in apart}
    assert {k: v for k, v in mine["events"].items() if k != "translation"} == \
        {k: v for k, v in theirs["events"].items() if k != "translation"}
