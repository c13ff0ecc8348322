"""`toyvisor compare`: every strategy on one guest, priced by one cost model."""

import json

import attrs

from click.testing import CliRunner

from toyvisor.tools.cli import main
from toyvisor.vmm import costs
from toyvisor.vmm.comparison import compare, default_specs


def test_default_specs_list_native_first_and_every_variant():
    specs = default_specs()
    assert specs[0] == "native"
    assert "trap-emulate:0/1/3" in specs and "trap-emulate:0/3/3" in specs


def test_compare_runs_native_first_and_prices_with_the_chosen_model(loop):
    results = compare(loop, ["trap-emulate"], cost_model="core2")
    assert [r.strategy for r in results] == ["native", "trap-emulate:0/1/3"]
    native, vm = results
    assert native.vmm_entries == 0 and native.slowdown == 1.0
    assert vm.cycles == costs.named("core2").cycles(vm.events)
    assert vm.slowdown == vm.cycles / native.cycles
    assert vm.equivalent and vm.guest_instructions == native.guest_instructions


def test_compare_cli_json_has_one_object_per_run(loop):
    result = CliRunner().invoke(main, ["compare", "examples/loop.s", "--vmm", "trap-emulate:0/3/3",
                                       "--json"])
    assert result.exit_code == 0, result.output
    runs = json.loads(result.output)
    assert [r["strategy"] for r in runs] == ["native", "trap-emulate:0/3/3"]
    for run in runs:
        for key in ("strategy", "equivalent", "divergence", "guest_instructions", "vmm_entries",
                    "by_cause", "cycles"):
            assert key in run


def test_compare_text_shows_the_table():
    result = CliRunner().invoke(main, ["compare", "examples/loop.s", "--vmm", "trap-emulate"])
    assert result.exit_code == 0
    assert "native" in result.output and "trap-emulate:0/1/3" in result.output
    assert "slowdown" in result.output


def test_compare_rejects_an_unknown_strategy_or_cost_model_in_one_line(tmp_path):
    for args in (["--vmm", "warp-drive"], ["--cost-model", "nonesuch"]):
        result = CliRunner().invoke(main, ["compare", "examples/loop.s", *args])
        assert result.exit_code == 1
        assert len(result.output.strip().splitlines()) == 1, result.output
    bad = tmp_path / "bad.toml"
    bad.write_text("name = [")
    result = CliRunner().invoke(main, ["compare", "examples/loop.s", "--cost-model", str(bad)])
    assert result.exit_code == 1 and "bad.toml" in result.output


def test_compare_markdown_is_one_table_with_footnotes_for_divergent_runs(nanobench):
    from toyvisor.vmm.compare import build_rows, render_markdown

    results = compare(nanobench, ["trap-emulate"])
    text = render_markdown(build_rows(results), cost_profile="pentium4")
    assert text.count("| `") == 2
    assert "NO [1]" in text and "[1] `trap-emulate:0/1/3`: popf" in text


def test_paravirtual_joins_the_comparison_only_for_guests_with_a_port(minikernel, loop):
    assert "paravirtual" in default_specs(minikernel)
    assert "paravirtual" not in default_specs(loop)


def test_the_port_is_judged_on_its_outcome_and_is_equivalent(minikernel):
    from toyvisor.vmm import run_guest

    result = run_guest(minikernel, "paravirtual")
    assert result.halted and result.by_cause.get("hypercall:console_io", 0) > 0
    assert result.by_cause["hypercall:physdev_op"] == 5  # dom0 reads task B's sector itself
    assert result.equivalent is True and result.divergence is None
    assert result.equivalence_basis.startswith("outcome: console per stream (A, B, kernel)")


def test_without_its_outcome_rules_the_port_differs_at_the_banner(minikernel):
    from toyvisor.vmm import run_guest

    result = run_guest(attrs.evolve(minikernel, port_outcome=None), "paravirtual")
    assert result.equivalent is False
    assert result.divergence.startswith("console line 1 differs")
    assert "paravirtualized" in result.divergence
    assert result.equivalence_basis == "outcome: console line by line, disk contents, how the run ended"


def test_paravirtual_refuses_a_guest_without_a_port_in_one_line(loop):
    result = CliRunner().invoke(main, ["run", "examples/loop.s", "--vmm", "paravirtual"])
    assert result.exit_code == 1
    assert "no paravirtual port" in result.output
    assert len(result.output.strip().splitlines()) == 1
