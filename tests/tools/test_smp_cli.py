"""The multiprocessor from the command line: --cpus, --interleave, --cache, the guest.toml keys,
--json per-CPU figures, --trace naming the CPU, toyvisor smp — and one error line for each kind
of bad input."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from toyvisor.tools.cli import main

PROGRAM = """
start:  in   r8, PORT_CPU_COUNT
        li   r1, 1
boot:   cmp  r1, r8
        jge  work
        out  PORT_IPI_DEST, r1
        li   r2, work
        out  PORT_CPU_START, r2
        addi r1, r1, 1
        jmp  boot
work:   li   r1, counter
        li   r2, 1
        xadd r2, [r1]
        cli
        hlt
        .align 4
counter: .word 0
"""


@pytest.fixture
def program(tmp_path):
    path = tmp_path / "smp.s"
    path.write_text(PROGRAM)
    return path


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_run_cpus_json_has_per_cpu_figures(program):
    result = _run("run", program, "--cpus", 3, "--interleave", 4, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [c["cpu"] for c in data["cpus"]] == [0, 1, 2]
    assert all(c["state"] == "halted" and c["guest_instructions"] > 0 for c in data["cpus"])
    assert data["cpus"][0]["ipis_sent"] == 2 and data["cpus"][1]["ipis_received"] == 1
    assert {"idle_ticks", "by_cause", "cache_hits", "cache_misses", "pauses"} <= set(data["cpus"][0])


def test_one_cpu_json_keeps_its_shape(program):
    data = json.loads(_run("run", program, "--json").output)
    assert "cpus" not in data and data["halted"]


def test_run_cache_counts_and_text_summary(program):
    result = _run("run", program, "--cpus", 2, "--cache", "1024,2,16")
    assert result.exit_code == 0, result.output
    assert "--- cpu 1: halted" in result.output and "cache 0 hits / 2 misses" in result.output


def test_trace_names_the_cpu_of_every_line(program):
    result = _run("run", program, "--cpus", 2, "--trace")
    lines = result.output.splitlines()
    traced = [line for line in lines if not line.startswith("---")]
    assert traced and all(line.startswith(("cpu0 ", "cpu1 ")) for line in traced)
    assert any(line.startswith("cpu1 ") and "xadd" in line for line in traced)


def test_the_manifest_sets_cpus_and_interleave(tmp_path):
    (tmp_path / "k.s").write_text(PROGRAM)
    (tmp_path / "guest.toml").write_text('entry_source = "k.s"\ncpus = 5\ninterleave = 3\n')
    data = json.loads(_run("run", tmp_path, "--json").output)
    assert len(data["cpus"]) == 5
    data = json.loads(_run("run", tmp_path, "--json", "--cpus", 2).output)
    assert len(data["cpus"]) == 2


@pytest.mark.parametrize("args, message", [
    (["--cpus", 0], "the number of CPUs must be an integer from 1 to 64, not 0"),
    (["--cpus", 65], "the number of CPUs must be an integer from 1 to 64, not 65"),
    (["--cpus", 2, "--interleave", 0], "the interleave must be a positive number of steps"),
    (["--interleave", -3], "the interleave must be a positive number of steps"),
    (["--cpus", 2, "--cache", "4096,3,32"], "cache ways must be a power of two, not 3"),
    (["--cache", "1000,2,32"], "cache size must be a power of two, not 1000"),
    (["--cache", "big"], "cache geometry must be 'on' or SIZE,WAYS,LINE"),
    (["--cpus", 2, "--pcpus", 2], "--pcpus sets the physical CPUs of a VMM's host"),
    (["--cpus", 2, "--vmm", "trap-emulate", "--pcpus", 0], "physical CPUs must be an integer"),
    (["--cpus", 2, "--vmm", "trap-emulate", "--pcpus", 65], "physical CPUs must be an integer"),
    (["--cpus", 2, "--vmm", "paravirtual"], "has no paravirtual port"),
])
def test_bad_options_are_one_error_line(program, args, message):
    result = _run("run", program, *args)
    assert result.exit_code in (1, 2) and message in result.output
    assert "Traceback" not in result.output
    if not message.startswith("--vmm"):
        assert result.exit_code == 1 and result.output.count("\n") == 1


@pytest.mark.parametrize("manifest, message", [
    ('cpus = "4"', "'cpus' must be a int"),
    ("cpus = 4.0", "'cpus' must be a int"),
    ("cpus = true", "'cpus' must be a int"),
    ("cpus = 0", "'cpus' must be between 1 and 64"),
    ("cpus = 65", "'cpus' must be between 1 and 64"),
    ("interleave = 0", "'interleave' must be positive"),
])
def test_bad_manifest_keys_are_one_error_line(tmp_path, manifest, message):
    (tmp_path / "k.s").write_text(PROGRAM)
    (tmp_path / "guest.toml").write_text(f'entry_source = "k.s"\n{manifest}\n')
    result = _run("run", tmp_path)
    assert result.exit_code == 1 and message in result.output
    assert result.output.count("\n") == 1


def test_smp_command_tabulates_cpu_counts(program):
    result = _run("smp", program, "--cpus", "1,3", "--interleave", 5)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "smp on the interpreter engine, interleave 5"
    assert lines[2].split()[:2] == ["1", "halted"] and lines[3].split()[:2] == ["3", "halted"]


@pytest.mark.parametrize("cpus", ["0", "1,x", "65"])
def test_smp_command_rejects_bad_cpu_lists(program, cpus):
    result = _run("smp", program, "--cpus", cpus)
    assert result.exit_code == 1 and result.output.count("\n") == 1
