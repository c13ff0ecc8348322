"""--plot FILE on compare, nanobench and ptbench: the charts hold what the commands measured."""

import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner

from toyvisor.tools import pictures
from toyvisor.tools.cli import main
from toyvisor.tools.guest import load_guest
from toyvisor.vmm import comparison, costs

SVG = "{http://www.w3.org/2000/svg}"


def invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def tooltips(path):
    root = ET.parse(path).getroot()
    return [t.text for t in root.iter(f"{SVG}title")]


def test_compare_plot_stacks_the_cost_breakdown_to_each_run_s_cycles(tmp_path):
    guest = load_guest("minikernel")
    results = comparison.compare(guest, ["trap-emulate", "binary-translation"])
    chart = pictures.compare_chart(results, None, "minikernel")
    assert chart.stacked and chart.categories == tuple(str(r.strategy) for r in results)
    for i, result in enumerate(results):
        assert sum(values[i] for _, values in chart.series) == result.cycles
    out = tmp_path / "compare.svg"
    assert invoke("compare", "minikernel", "--vmm", "trap-emulate", "--plot", out).exit_code == 0
    assert any(t.startswith("emulated_instruction · trap-emulate:0/1/3:") for t in tooltips(out))


def test_nanobench_plot_puts_the_paper_beside_ours(tmp_path):
    out = tmp_path / "nano.svg"
    result = invoke("nanobench", "--bench", "divzero", "--bench", "syscall", "--vmm",
                    "binary-translation", "--plot", out)
    assert result.exit_code == 0, result.output
    tips = tooltips(out)
    assert "paper BT · divzero: 3.223k" in tips and "paper native · divzero: 889" in tips
    assert not any(t.startswith("paper") and "syscall" in t for t in tips)  # no stated figure
    assert any(t.startswith("binary-translation · syscall:") for t in tips)


def test_ptbench_plot_has_a_line_per_strategy(tmp_path):
    out = tmp_path / "pt.svg"
    result = invoke("ptbench", "--n", "16", "--n", "32", "--vmm", "trap-emulate", "--plot", out)
    assert result.exit_code == 0, result.output
    tips = tooltips(out)
    assert any(t.startswith("native: (16,") for t in tips)
    assert any(t.startswith("trap-emulate:0/1/3: (32,") for t in tips)


@pytest.mark.parametrize("command", [["compare", "minikernel"], ["nanobench"],
                                     ["ptbench", "--n", "16"]])
def test_a_bad_picture_name_fails_before_measuring_and_writes_nothing(command, tmp_path):
    result = invoke(*command, "--plot", tmp_path / "chart.gif")
    assert result.exit_code == 1 and "unknown picture format '.gif'" in result.output
    assert list(tmp_path.iterdir()) == []


def test_paper_figures_are_only_benchmarks_the_table_knows():
    from toyvisor.vmm.nanobench import PAPER_BENCHMARKS

    assert set(pictures.PAPER_CYCLES) <= set(PAPER_BENCHMARKS)
    assert costs.default_model().name == "pentium4"
