"""The compare table cannot contradict itself (issue 10, item 3): a run that stopped on its
budget says so, a strategy cheaper than native is explained, and a placement that does not apply
is named."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from toyvisor.tools.cli import main
from toyvisor.tools.guest import load_guest
from toyvisor.vmm import compare as compare_table
from toyvisor.vmm import comparison


@pytest.fixture(scope="module")
def minikernel_rows():
    results = comparison.compare(load_guest("minikernel"),
                                 ["binary-translation", "trap-emulate", "paravirtual"])
    return compare_table.build_rows(results)


def test_a_run_stopped_on_its_budget_shows_its_stop_reason():
    result = CliRunner().invoke(main, ["compare", "minikernel", "--vmm", "trap-emulate",
                                       "--max-steps", "5000"])
    lines = result.output.splitlines()
    assert any(line.startswith("native") and line.endswith("yes, budget") for line in lines)
    markdown = CliRunner().invoke(main, ["compare", "minikernel", "--vmm", "trap-emulate",
                                         "--max-steps", "5000", "--markdown"]).output
    assert "| yes, budget |" in markdown
    data = json.loads(CliRunner().invoke(main, ["compare", "minikernel", "--vmm", "trap-emulate",
                                                "--max-steps", "5000", "--json"]).output)
    assert {r["stop_reason"] for r in data} == {"budget"}


def test_a_halted_run_shows_no_stop_reason(minikernel_rows):
    text = compare_table.render_text(minikernel_rows, cost_profile="pentium4")
    assert "halted" not in text and "budget" not in text


def test_a_strategy_cheaper_than_native_is_explained(minikernel_rows):
    cheaper = [r for r in minikernel_rows if r.slowdown < 1]
    assert {r.strategy for r in cheaper} == {"binary-translation", "paravirtual"}
    note = compare_table.cheaper_note(minikernel_rows, "pentium4")
    assert note.startswith("note: binary-translation (0.98x), paravirtual (0.19x) cost less than "
                           "native: natively 978 port accesses wait on the real device (3,209 "
                           "cycles each), under a VMM on an emulated one (179).")
    text = compare_table.render_text(minikernel_rows, cost_profile="pentium4")
    assert "cost less than native" in text
    assert "Note: binary-translation (0.98x)" in compare_table.render_markdown(minikernel_rows,
                                                                               cost_profile="pentium4")


def test_no_note_when_every_strategy_costs_more(minikernel_rows):
    rows = [r for r in minikernel_rows if r.strategy in ("native", "trap-emulate:0/1/3")]
    assert compare_table.cheaper_note(rows, "pentium4") is None
    assert "less than native" not in compare_table.render_text(rows, cost_profile="pentium4")


def test_hosted_placement_says_why_it_does_not_apply_to_paravirtual():
    results = comparison.compare(load_guest("minikernel"), ["trap-emulate", "paravirtual"],
                                 placement="hosted")
    placements = {r.strategy: r.placement for r in results}
    assert placements == {"native": "hosted", "trap-emulate:0/1/3": "hosted",
                          "paravirtual": "system"}
    text = compare_table.table(results, cost_profile="pentium4")
    assert ("note: paravirtual ran as a system VMM: hosted placement does not apply (a "
            "Xen-style hypervisor is type 1") in " ".join(text.split())
    system = comparison.compare(load_guest("minikernel"), ["paravirtual"])
    assert compare_table.placement_note(compare_table.build_rows(system)) is None


def test_ptbench_says_hosted_placement_does_not_apply_to_paravirtual():
    from toyvisor.vmm import ptbench

    table = ptbench.measure((64,), ["paravirtual"], placement="hosted")
    for text in (ptbench.render_text(table), ptbench.render_markdown(table)):
        assert "paravirtual ran as a system VMM: hosted placement does not apply" in \
            " ".join(text.split())
    system = ptbench.measure((64,), ["paravirtual"])
    assert "does not apply" not in ptbench.render_text(system)
