"""guests/nanobench: the Adams & Agesen nanobenchmarks run natively and report what they saw."""

import re
from pathlib import Path

import attrs
import pytest

from toyvisor.tools.guest import load_guest
from toyvisor.tools.runner import run

REPO = Path(__file__).resolve().parents[2]
NANOBENCH = REPO / "guests" / "nanobench"
BENCHMARKS = ("empty", "syscall", "in", "cr8wr", "call/ret", "pgfault", "divzero", "ptemod",
              "popf", "cpl")
LINE = re.compile(r"^(?P<name>\S+): (?P<n>\d+) iterations, (?P<ticks>\d+) ticks, "
                  r"(?P<per>\d+\.\d) ticks/iter$")


def iterations() -> int:
    """N as the entry source defines it (`.equ N, <value>`)."""
    source = (NANOBENCH / "nanobench.s").read_text(encoding="utf-8")
    match = re.search(r"^\s*\.equ\s+N\s*,\s*(\d+)", source, re.MULTILINE)
    assert match, "nanobench.s must define N with .equ"
    return int(match.group(1))


@pytest.fixture(scope="module")
def result():
    return run(load_guest(NANOBENCH))


@pytest.fixture(scope="module")
def lines(result):
    return result.console.splitlines()


def timing_lines(lines):
    found = {}
    for line in lines:
        match = LINE.match(line)
        if match:
            assert match["name"] not in found, f"duplicate line for {match['name']}"
            found[match["name"]] = match
    return found


def test_halts_cleanly_within_budget(result):
    assert result.halted and result.stop_reason == "halted", result.fault_report
    assert result.cpl == 0
    assert result.guest_instructions < 150_000
    assert result.console.endswith("nanobench: done\n")


def test_every_benchmark_reports_its_iterations_and_ticks(lines):
    n = iterations()
    found = timing_lines(lines)
    assert list(found) == list(BENCHMARKS)
    for name, match in found.items():
        assert int(match["n"]) == n, name
        ticks = int(match["ticks"])
        assert ticks >= n, name                 # at least one instruction per iteration
        assert match["per"] == f"{ticks * 10 // n // 10}.{ticks * 10 // n % 10}", name


def test_costs_are_ordered_sensibly_natively(lines):
    ticks = {name: int(match["ticks"]) for name, match in timing_lines(lines).items()}
    for name in BENCHMARKS:
        if name != "empty":
            assert ticks[name] > ticks["empty"], name
    assert ticks["pgfault"] > ticks["divzero"] > ticks["call/ret"]


def test_trap_counts_match_the_loops(result):
    n = iterations()
    causes = result.by_cause
    assert causes.get("int 0x80", 0) >= n
    assert causes.get("page-fault", 0) == n
    assert causes.get("divide-error", 0) == n
    assert "general-protection" not in causes and "double-fault" not in causes


def test_popf_and_cpl_report_the_observed_values(lines):
    assert "popf: IF after popf = 1" in lines
    assert "cpl: rdcs = 0" in lines
    assert lines[-1] == "nanobench: done"
    assert not any("unexpected" in line for line in lines)


# -- selecting one benchmark through the console input ------------------------------------------


def run_with(text: str):
    guest = attrs.evolve(load_guest(NANOBENCH), console_input=text.encode("ascii"))
    result = run(guest)
    assert result.halted and result.stop_reason == "halted", result.fault_report
    return result


@pytest.mark.parametrize("text", ["", "\n", "  \r\n\t"])
def test_no_or_blank_input_runs_everything(text, lines):
    assert run_with(text).console.splitlines() == lines


@pytest.mark.parametrize("name", BENCHMARKS)
def test_a_name_runs_only_that_benchmark(name, lines):
    result = run_with(f"{name}\n")
    got = result.console.splitlines()
    expected = [line for line in lines if line.startswith(f"{name}: ")] + ["nanobench: done"]
    assert got == expected


def test_callret_is_accepted_for_call_ret():
    assert run_with("callret").console.splitlines()[0].startswith("call/ret: 100 iterations")


def test_an_iteration_count_and_quiet():
    result = run_with("  syscall 0250\n")
    assert LINE.match(result.console.splitlines()[0])["n"] == "250"
    assert result.by_cause.get("int 0x80") == 250
    quiet = run_with("divzero quiet 7")
    assert quiet.console == "" and quiet.by_cause.get("divide-error") == 7
    assert run_with("divzero 7 quiet  \n").by_cause == quiet.by_cause


def test_popf_with_input_pending_takes_no_console_interrupt():
    """IRQ 1 is level-triggered while input waits: the kernel must have drained it before the
    popf loop sets IF."""
    result = run_with("popf\n")
    assert "popf: IF after popf = 1" in result.console.splitlines()
    assert "unexpected" not in result.console
    assert not any(cause.startswith("irq") or "33" in cause for cause in result.by_cause)


@pytest.mark.parametrize("text, message", [
    ("nope\n", "nanobench: unknown benchmark 'nope' (known: empty syscall in cr8wr call/ret"),
    ("in loud\n", "nanobench: unexpected input 'loud' after the benchmark name"),
    ("in 0\n", "nanobench: unexpected input '0'"),
    ("in 1000001\n", "nanobench: unexpected input '1000001'"),
    ("x" * 65, "nanobench: console input too long"),
])
def test_bad_input_is_one_error_line(text, message):
    result = run_with(text)
    assert result.console.count("\n") == 1 and result.console.startswith(message), result.console
