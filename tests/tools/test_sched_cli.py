"""toyvisor sched: the seed's matrix, the comparison, JSON, Markdown, Gantt files, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from toyvisor.tools.cli import main

SCHED = Path(__file__).resolve().parents[2] / "guests" / "sched"
TANENBAUM = str(SCHED / "tanenbaum.toml")

SEED_ROWS = ["A0 A1 A2 A3 A4 A5", "B0 B1 B2 C0 C1 C2", "D0 D1 D2 D3 D4 E0",
             "E1 E2 E3 E4 E5 E6"] * 2


def invoke(*args):
    return CliRunner().invoke(main, ["sched", *map(str, args)])


def test_gang_prints_the_seeds_eight_row_matrix():
    result = invoke(TANENBAUM, "--policy", "gang", "--pcpus", 6)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    start = lines.index(next(line for line in lines if line.startswith("slot")))
    rows = [" ".join(line.split()[1:]) for line in lines[start + 1:start + 9]]
    assert rows == SEED_ROWS
    assert [line.split()[0] for line in lines[start + 1:start + 9]] == [str(n) for n in range(8)]
    assert lines[start + 9] == ""
    assert lines[start + 10].split()[0] == "policy" and lines[start + 11].split()[0] == "gang"


def test_json_carries_the_matrix_and_the_metrics():
    result = invoke(TANENBAUM, "--policy", "gang", "--policy", "timesharing", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.output)
    gang, plain = data["runs"]
    assert [" ".join(row) for row in gang["matrix"]] == SEED_ROWS
    for key in ("utilization", "idle_ticks", "makespan", "context_switches", "world_switches",
                "spin_instructions", "lock_holder_preemptions", "queue_lock_contended",
                "cache_misses", "migrations"):
        assert key in plain
    assert plain["policy"] == "timesharing" and data["refused"] == {}


def test_default_compares_every_policy_and_reports_one_that_cannot_run():
    result = invoke(TANENBAUM, "--rows", 2)
    assert result.exit_code == 0, result.stderr
    table = result.output[result.output.rindex("\npolicy"):]
    names = [line.split()[0] for line in table.strip().splitlines()[1:]]
    assert names[:6] == ["timesharing", "smart", "ple", "affinity", "two-level", "gang"]
    assert "space: cannot run this workload:" in result.output
    assert "... 6 more slots" in result.output


def test_markdown_and_gantt(tmp_path):
    picture = tmp_path / "schedule.svg"
    result = invoke(TANENBAUM, "--policy", "gang", "--markdown", "--gantt", picture)
    assert result.exit_code == 0, result.stderr
    assert "| slot | CPU 0 |" in result.output and "| 7 | E1 | E2 |" in result.output
    svg = picture.read_text()
    assert svg.startswith("<svg") or svg.startswith("<?xml")
    assert "E6" in svg
    result = invoke(TANENBAUM, "--policy", "gang", "--policy", "affinity", "--gantt", picture)
    assert result.exit_code == 0
    assert (tmp_path / "schedule-gang.svg").exists()
    assert (tmp_path / "schedule-affinity.svg").exists()


@pytest.mark.parametrize("args, message", [
    ((TANENBAUM, "--policy", "fifo"), "unknown policy 'fifo'"),
    ((TANENBAUM, "--policy", "space"), "tanenbaum.toml:"),
    ((TANENBAUM, "--pcpus", 0), "at least 1"),
    ((TANENBAUM, "--quantum", 7), "multiple of 25"),
    ((TANENBAUM, "--cache", "3,2,1"), "power of two"),
    ((TANENBAUM, "--json", "--markdown"), "exclude each other"),
    (("missing.toml",), "missing.toml: cannot read"),
])
def test_bad_input_is_one_error_line(args, message):
    result = invoke(*args)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


@pytest.mark.parametrize("text, message", [
    ("pcpus = [", "invalid TOML"),
    ("pcpus = " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
    ("pcpus = 2\ncolor = 1\n", "w.toml:2: unknown key 'color'"),
    ("pcpus = 'two'\n", "w.toml:1: 'pcpus' must be a int"),
    ("pcpus = 2\n", "at least one [[vm]]"),
    ("[[vm]]\nname = 'A'\nvcpus = 2\nwork = 1\n", "w.toml:1: [[vm]] needs 'program'"),
    ("[[vm]]\nname = 'A'\nvcpus = 0\nprogram = 'p.s'\nwork = 1\n", "w.toml:3: 'vcpus' must be"),
    ("[[vm]]\nname = 'A'\nvcpus = 1\nprogram = 'p.s'\nwork = 1\n"
     "[[vm]]\nname = 'A'\nvcpus = 1\nprogram = 'p.s'\nwork = 1\n", "w.toml:7: two VMs"),
    ("[[vm]]\nname = 'A'\nvcpus = 1\nprogram = 'nothere.s'\nwork = 1\n",
     "w.toml:4: program nothere.s"),
    ("[[vm]]\nname = 'A'\nvcpus = 1\nprogram = 'bad.s'\nwork = 1\n", "bad.s:1:1"),
    ("[[vm]]\nname = 'A'\nvcpus = 1\nprogram = 'p.s'\nwork = 1\nmemory = 1000\n",
     "w.toml:6: 'memory' must be a multiple of 4096"),
    ("[[vm]]\nname = 'A'\nvcpus = 1\nprogram = 'p.s'\nparams = 1\n",
     "w.toml:5: 'params' must be a bool"),
    ("[[vm]]\nname = 'A'\nvcpus = 1\nprogram = 'p.s'\n", "w.toml:1: [[vm]] needs 'work'"),
])
def test_a_malformed_workload_is_one_located_error(tmp_path, text, message):
    (tmp_path / "p.s").write_text("start: cli\n hlt\n")
    (tmp_path / "bad.s").write_text("frobnicate r1\n")
    path = tmp_path / "w.toml"
    path.write_text(text)
    result = invoke(path, "--pcpus", 2)
    assert result.exit_code == 1, result.output
    assert message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
