"""``toyvisor bench --trap-heavy``: host time per guest event; the counts it divides by are exact."""

from __future__ import annotations

import json

import attrs
import pytest
from click.testing import CliRunner

from toyvisor.cpu import Machine
from toyvisor.tools import trapbench
from toyvisor.tools.cli import main
from toyvisor.tools.guest import load_guest


@pytest.fixture(scope="module")
def report():
    return trapbench.measure(("interpreter", "fast"), ("trap-emulate", "hardware-assisted:2"),
                             count=6, repeat=1)


def test_every_event_is_measured_under_every_configuration(report):
    assert report.configs == ("native/interpreter", "native/fast", "trap-emulate:0/1/3",
                              "hardware-assisted:2")
    assert len(report.cells) == len(trapbench.EVENTS) * len(report.configs)
    assert all(cell.deterministic and cell.halted for cell in report.cells)


def test_vmm_entries_per_event_are_the_strategies_exact_counts(report):
    entries = {(c.event, c.config): c.entries for c in report.cells}
    assert all(entries[(e.name, c)] == 0 for e in trapbench.EVENTS
               for c in ("native/interpreter", "native/fast"))
    # trap-and-emulate: the event's trap, then the handler's iret traps as privileged
    assert entries[("int/iret pair", "trap-emulate:0/1/3")] == 2
    assert entries[("exception", "trap-emulate:0/1/3")] == 2
    # the hlt and the iret trap; the real timer's own entries come on top (virtual time)
    assert entries[("timer interrupt", "trap-emulate:0/1/3")] >= 2
    assert entries[("port access", "trap-emulate:0/1/3")] == 1
    # hardware-assisted: the guest kernel handles its own int/iret; I/O exits
    assert entries[("int/iret pair", "hardware-assisted:2")] == 0
    assert entries[("port access", "hardware-assisted:2")] == 1
    per_entry = report.cell("port access", "trap-emulate:0/1/3").ns_per_entry
    assert per_entry is not None
    assert report.cell("int/iret pair", "hardware-assisted:2").ns_per_entry is None


def test_json_and_markdown_name_every_event(report):
    data = json.loads(json.dumps(report.to_dict()))
    assert [e["name"] for e in data["events"]] == [e.name for e in trapbench.EVENTS]
    text = trapbench.render_markdown(report)
    assert all(e.name in text for e in trapbench.EVENTS)


@pytest.mark.parametrize("engine", ["interpreter", "fast"])
def test_the_timer_guest_takes_the_interrupts_it_is_asked_for(engine):
    guest = attrs.evolve(load_guest("bench/timer"), console_input=b"7")
    machine = Machine(memory_size=guest.memory_size, console_input=guest.console_input)
    machine.load(guest.image)
    result = machine.run(guest.max_steps, engine=engine)
    assert result.halted and result.by_cause == {"timer": 7}
    assert "timer: 7 interrupts" in result.console


@pytest.mark.parametrize("args, message", [
    (["--workload", "compute"], "takes no --workload"),
    (["--scaling"], "takes no --workload or --scaling"),
    (["--scale", "0"], "--scale must be above 0"),
    (["--vmm", "paravirtual"], "paravirtual needs a port"),
    (["--vmm", "warp"], "unknown strategy 'warp'"),
    (["--engine", "turbo"], "unknown engine 'turbo'"),
    (["--repeat", "0"], "repeat must be 1 to 100"),
    (["--no-vmm", "--vmm", "trap-emulate"], "exclude each other"),
])
def test_bad_trap_heavy_requests_are_one_error_line(args, message):
    outcome = CliRunner().invoke(main, ["bench", "--trap-heavy", *args])
    assert outcome.exit_code == 1
    assert message in outcome.output and "Traceback" not in outcome.output


def test_the_cli_prints_the_tables():
    outcome = CliRunner().invoke(main, ["bench", "--trap-heavy", "--scale", "0.003",
                                        "--repeat", "1", "--engine", "fast", "--no-vmm",
                                        "--markdown"])
    assert outcome.exit_code == 0, outcome.output
    assert "| timer interrupt (host ns) |" in outcome.output


def test_a_profile_names_where_the_time_goes_per_guest_event():
    found = trapbench.profile("bench/syscall", "native/fast", 20, top=5)
    assert found.events == 21  # 20 calls and the exit call
    assert len(found.rows) == 5 and 0 < sum(share for _, share, _ in found.rows) <= 1.0001
    assert found.rows == tuple(sorted(found.rows, key=lambda row: -row[1]))
    text = trapbench.render_profile(found)
    assert "bench/syscall, native/fast" in text and "| function |" in text


def test_a_sampling_view_of_the_same_run():
    found = trapbench.sample("bench/syscall", "native/interpreter", 200, top=4, interval=0.0002)
    assert found.events == 201 and found.rows
    assert all(calls is None for _, _, calls in found.rows)
    assert 0 < sum(share for _, share, _ in found.rows) <= 1.0001
    assert found.samples >= 50 or found.runs == 100
    assert "CPU time of the sampled run" in trapbench.render_profile(found)


def test_a_short_run_is_repeated_until_it_has_its_samples():
    """A run shorter than the sampling interval still gets a view (a busy host once left a
    3 ms run with no sample at all): the same deterministic run is pooled until enough."""
    found = trapbench.sample("bench/syscall", "native/fast", 20, top=4, interval=0.001,
                             min_samples=30, max_runs=400)
    assert found.samples >= 30 and found.runs > 1 and found.rows
    assert f"samples over {found.runs} runs" in trapbench.render_profile(found)
    once = trapbench.sample("bench/syscall", "native/fast", 20, interval=0.001,
                            min_samples=1, max_runs=1)
    assert once.runs == 1 and once.instructions == found.instructions


@pytest.mark.parametrize("bad", [{"min_samples": 0}, {"max_runs": 0}])
def test_a_sampling_view_needs_a_sample_and_a_run(bad):
    with pytest.raises(trapbench.TrapBenchError, match="sample needs"):
        trapbench.sample("bench/syscall", "native/fast", 20, **bad)


def test_compile_times_time_every_block_the_run_compiles():
    times = trapbench.compile_times("bench/syscall", 5)
    guest = attrs.evolve(load_guest("bench/syscall"), console_input=b"5")
    machine = Machine(memory_size=guest.memory_size, console_input=guest.console_input)
    machine.load(guest.image)
    machine.run(guest.max_steps, engine="fast")
    stats = machine.engine("fast").stats
    assert len(times) == stats.blocks_translated  # every block compiled once, at its first entry
    assert sum(n for n, _ in times) == stats.instructions_translated
    assert all(seconds >= 0 for _, seconds in times)


def test_generated_code_is_grouped_by_kind_in_a_profile():
    assert trapbench._label(("<bt:0x100>", 1, "block"), "/r") == "compiled blocks (<bt:...>)"
    assert trapbench._label(("<isa:add>", 2, "op_add"), "/r") == "ISA handlers (<isa:...>)"
    assert trapbench._label(("<cold>", 9, "cold_18"), "/r") == "cold blocks, unrolled (<cold>)"
    assert trapbench._label(("/r/cpu/bt/cold.py", 43, "_looping"), "/r") == "cpu/bt/cold.py:_looping"
