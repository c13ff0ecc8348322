"""``toyvisor bench --targets``: issue 13's targets, each judged on this host's run."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from toyvisor.tools import anchors, speed_targets, trapbench
from toyvisor.tools.cli import main


@pytest.fixture(scope="module")
def report():
    return speed_targets.measure(scale=0.002, repeat=1)


def test_every_target_is_judged(report):
    names = [goal.name for goal in report.goals]
    assert len(names) == len(set(names)) == 20
    assert all(goal.measured > 0 and goal.met in (True, False) for goal in report.goals)
    for goal in report.goals:
        bound = float(goal.required.split()[1])
        assert goal.met == (goal.measured <= bound if goal.required.startswith("<=")
                            else goal.measured >= bound)


def test_the_ceiling_is_the_fastest_formulation_timed_in_the_same_rounds(report):
    assert set(report.ceiling_runs) == set(anchors.CEILING_FORMULATIONS)
    rates = speed_targets._formulation_rates(report)
    assert max(rates.values()) == pytest.approx(report.ceiling_mops)
    fast = report.goal("compute loop, fast / ceiling, whole run")
    compute = report.goal("compute loop, trap-emulate:0/1/3 / native fast")
    assert fast.measured > 0 and compute.measured > 0


def test_rate_targets_give_their_share_of_both_ceilings(report):
    minikernel = report.goal("minikernel natively, fastest engine (MIPS)")
    assert minikernel.share == pytest.approx(minikernel.measured / report.ceiling_mops)
    assert minikernel.required_share == pytest.approx(2 / speed_targets.ISSUE_CEILING_MOPS)
    ratio = report.goal("minikernel, fastest native / hardware-assisted:2")
    assert ratio.share is None and ratio.required_share is None
    assert "of the ceiling; the target is 0.1120 of the issue's" in speed_targets.render_markdown(report)


def test_the_targets_compare_the_loops_at_their_own_sizes(monkeypatch):
    """The compute-loop ratios use the scaled loop, not the 40,000-instruction one."""
    sizes = []
    original = trapbench._run

    def spy(guest, config):
        run = original(guest, config)
        sizes.append((guest.name, config.label, run.instructions))
        return run

    monkeypatch.setattr(speed_targets, "_run", spy)
    speed_targets.measure(scale=0.2, repeat=1)
    compute_fast = {n for name, label, n in sizes if name == "compute" and label == "native/fast"}
    assert len(compute_fast) == 2  # the scaled loop (10,000 iterations) and the short one


def test_the_cli_prints_the_targets_as_text_markdown_and_json():
    text = CliRunner().invoke(main, ["bench", "--targets", "--scale", "0.002", "--repeat", "1"])
    assert text.exit_code == 0, text.output
    assert text.output.startswith("issue 13's targets: ")
    assert "| compute loop, fast / ceiling, whole run | >= 0.9 |" in text.output
    markdown = CliRunner().invoke(main, ["bench", "--targets", "--markdown", "--scale", "0.002",
                                         "--repeat", "1"])
    assert markdown.output.startswith("| target | required |") and "\n- ceiling: " in markdown.output
    data = json.loads(CliRunner().invoke(main, ["bench", "--targets", "--json", "--scale",
                                                "0.002", "--repeat", "1"]).output)
    assert len(data["goals"]) == 20 and data["issue_ceiling_mops"] == 17.86


@pytest.mark.parametrize("args, message", [
    (["--workload", "compute"], "--targets takes no"),
    (["--trap-heavy"], "--targets takes no"),
    (["--no-vmm"], "--targets takes no"),
    (["--scale", "0"], "--scale must be above 0"),
    (["--scale", "nan"], "--scale must be above 0"),
    (["--repeat", "0"], "--repeat must be 1 to"),
])
def test_bad_target_options_are_one_line_and_exit_1(args, message):
    outcome = CliRunner().invoke(main, ["bench", "--targets", *args])
    assert outcome.exit_code == 1
    assert message in outcome.output and len(outcome.output.strip().splitlines()) == 1


def test_timed_runs_start_with_the_garbage_collected(monkeypatch):
    import gc
    calls = []
    monkeypatch.setattr(gc, "collect", lambda *args: calls.append("collect"))
    assert speed_targets._timed(lambda: calls.append("run") or 7)[1] == 7
    assert calls == ["collect", "run"]
