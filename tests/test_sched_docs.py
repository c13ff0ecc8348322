"""docs/scheduling.md tells the truth: each ``<!-- sched ARGS -->`` block is what
``toyvisor sched ARGS`` prints, and each figures/sched-WORKLOAD-POLICY.svg is the Gantt chart of
that run.  TOYVISOR_REGEN=1 rewrites them instead of comparing."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from toyvisor.tools import plot
from toyvisor.tools.cli import main
from toyvisor.tools.sched_cli import gantt_chart
from toyvisor.vmm.sched import load_workload, simulate

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "scheduling.md"
BLOCK = re.compile(r"<!-- sched (.*?) -->\n(.*?)<!-- end -->\n", re.S)
FIGURE = re.compile(r"\(figures/sched-([a-z]+)-([a-z-]+)\.svg\)")
REGEN = os.environ.get("TOYVISOR_REGEN") == "1"


def _printed(args: str) -> str:
    result = CliRunner().invoke(main, ["sched", *shlex.split(args)])
    assert result.exit_code == 0, result.output
    return result.output


def test_scheduling_doc_tables_are_what_sched_prints(monkeypatch):
    monkeypatch.chdir(REPO)
    text = DOC.read_text(encoding="utf-8")
    blocks = list(BLOCK.finditer(text))
    assert len(blocks) >= 6
    if REGEN:
        text = BLOCK.sub(lambda m: f"<!-- sched {m[1]} -->\n{_printed(m[1])}<!-- end -->\n",
                         text)
        DOC.write_text(text, encoding="utf-8")
        return
    for match in blocks:
        assert match[2] == _printed(match[1]), f"docs/scheduling.md is stale: sched {match[1]}"


@pytest.mark.parametrize("workload, policy",
                         sorted(set(FIGURE.findall(DOC.read_text(encoding="utf-8")))))
def test_scheduling_doc_figures_are_the_runs_gantt_charts(workload, policy):
    loaded = load_workload(REPO / "guests" / "sched" / f"{workload}.toml")
    (run,) = simulate(loaded, [policy])
    path = REPO / "docs" / "figures" / f"sched-{workload}-{policy}.svg"
    chart = gantt_chart(run, loaded.name)
    if REGEN:
        plot.write(chart, path)
        return
    assert path.read_text(encoding="utf-8") == plot.svg(chart), f"{path.name} is stale"
