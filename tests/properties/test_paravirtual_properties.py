"""Isolation under the paravirtual VMM, as a property: an unprivileged domain runs any generated
program — hypercalls with arbitrary arguments (aimed at machine frames of every domain and the
pool, page-table entries, the VMM hole), privileged and sensitive instructions, wild jumps,
accesses aimed at the VMM hole and beyond its pages — next to dom0 running a small PV kernel
(tests/vmm/pv_hello.s).  Afterwards dom0 has printed exactly what it prints alone, the audit of
every physical access is clean, no page table of any domain maps a frame it does not own, and
every machine frame is owned by exactly one domain or free (conservation).

tests/vmm/test_pv_fuzz.py drives the hypercall layer directly; this runs the hypercalls from
guest code, through the trap path, interleaved with everything else a guest can do."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from props_kernel import concat, examples

from toyvisor.asm import assemble_file, assemble_source
from toyvisor.testing import strategies as tst
from toyvisor.testing.program import Instr, Program
from toyvisor.testing.strategies import Targets
from toyvisor.tools.guest import Guest
from toyvisor.vmm import Hypervisor, make_strategy
from toyvisor.vmm.paravirt.abi import HYPERCALL_VECTOR, PV_VMM_START

PV_HELLO = Path(__file__).resolve().parents[1] / "vmm" / "pv_hello.s"
DOM_MEMORY = 0x10000
POOL_PAGES = 16
HOST = (1 << 20) + 2 * DOM_MEMORY + POOL_PAGES * 4096
#: machine frames of the domains and the pool (where hypercall arguments aim)
FRAMES = tuple(range(1 << 20, HOST, 0x1000))
TARGETS = Targets(kernel=(0x0, 0x1000), page_tables=(), vmm=(PV_VMM_START, PV_VMM_START + 0x800),
                  other_vms=(DOM_MEMORY, 1 << 20, (1 << 20) + DOM_MEMORY), user=(0x3000,))


def _hypercalls(calls) -> Program:
    out = []
    for call in calls:
        out.append(Instr("li", (1, call.number), call.name))
        out += [Instr("li", (r, value)) for r, value in enumerate(call.args, 2)]
        out.append(Instr("int", (HYPERCALL_VECTOR,), "hypercall"))
    return Program(tuple(out))


attackers = st.builds(
    concat,
    st.lists(tst.hypercalls(FRAMES), max_size=6).map(_hypercalls),
    tst.programs(privileged=True, sensitive=True, wild=True, targets=TARGETS, max_size=10))


def _guest(program: Program) -> Guest:
    source = program.source() + "forever: jmp forever\n"
    image = assemble_source(source, "<attacker>").image
    return Guest(name="attacker", image=image, memory_size=DOM_MEMORY, max_steps=3000)


HELLO = Guest(name="pv_hello", image=assemble_file(PV_HELLO).image, memory_size=DOM_MEMORY,
              max_steps=20_000)


@settings(max_examples=examples(25))
@given(attacker=attackers, quantum=st.sampled_from([40, 500]))
def test_an_unprivileged_domain_cannot_reach_dom0_or_foreign_frames(attacker, quantum):
    strategy = make_strategy("paravirtual")
    hv = Hypervisor(strategy, memory_size=HOST, quantum=quantum)
    dom0 = strategy.create_domain(HELLO, privileged=True)
    bad = strategy.create_domain(_guest(attacker), privileged=False)
    hv.run()
    report = f"attacker:\n{attacker}"
    assert dom0.vm.console == "pv hello\n.....G bye\n", report
    assert dom0.vm.stop_reason == "halted", report
    assert hv.violations == [], report
    domains = list(strategy.domains.values())
    for domain in (dom0, bad):
        assert hv.resource_violations(domain.vm) == [], report
    assert strategy.frames.check(domains) == [], report
