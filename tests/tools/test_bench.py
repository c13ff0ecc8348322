"""`toyvisor bench`: the workloads, the anchors, the report, the command line, the scaling probes.

Every run here is tiny (`scale`); nothing asserts a time or a rate — only that rates exist, that
instruction counts are deterministic and that every engine computes the same thing.
"""

import json
import re
import statistics
import platform
import sys
from pathlib import Path

import attrs
import pytest
from click.testing import CliRunner

from toyvisor.cpu import ENGINES, Machine, PhysicalMemory
from toyvisor.tools import anchors, bench, scaling
from toyvisor.tools.cli import main
from toyvisor.tools.guest import load_guest

TINY = 0.001  # compute: 50 iterations, memory: 1 pass, syscall: 8 calls, anchors: a few hundred


def invoke(*args):
    result = CliRunner().invoke(main, ["bench", *map(str, args)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return result


def run_bench_guest(name: str, count: int):
    guest = attrs.evolve(load_guest(f"bench/{name}"), console_input=str(count).encode())
    machine = Machine(memory_size=guest.memory_size, console_input=guest.console_input)
    machine.load(guest.image)
    return machine.run(guest.max_steps)


# -- the guests ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name, per_iteration", [("compute", 7), ("memory", 4096 * 6 + 3),
                                                 ("syscall", 13)])
def test_each_iteration_costs_a_fixed_number_of_instructions(name, per_iteration):
    few, more = run_bench_guest(name, 2), run_bench_guest(name, 42)
    assert few.stop_reason == more.stop_reason == "halted"
    # the rest is the start-up and the report, whose digits cost a few instructions each
    assert abs(more.guest_instructions - few.guest_instructions - 40 * per_iteration) < 100
    assert run_bench_guest(name, 42) == more


def test_the_ceiling_loop_computes_the_compute_guests_checksum():
    acc, x = anchors.ceiling_loop(1234)
    assert f"acc {acc:#010x}, x {x:#010x}" in run_bench_guest("compute", 1234).console


@pytest.mark.parametrize("text", ["0", "abc", "5 6", "100000001", "9" * 40])
def test_a_bad_iteration_count_is_reported_by_the_guest(text):
    guest = attrs.evolve(load_guest("bench/compute"), console_input=text.encode())
    machine = Machine(memory_size=guest.memory_size, console_input=guest.console_input)
    machine.load(guest.image)
    result = machine.run(100_000)
    assert result.stop_reason == "halted"
    assert result.console.startswith("bench: the console input must be one iteration count")


# -- the API ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_report():
    return bench.measure(["compute", "syscall"], strategies=("trap-emulate",), repeat=2,
                         scale=TINY)


def test_every_workload_runs_under_every_engine_and_strategy(tiny_report):
    labels = {(r.workload, r.label) for r in tiny_report.rows}
    expected = {(w, f"native/{e}") for w in ("compute", "syscall") for e in ENGINES}
    expected |= {("compute", "trap-emulate:0/1/3"), ("syscall", "trap-emulate:0/1/3")}
    assert labels == expected
    for row in tiny_report.rows:
        assert row.stop_reason == "halted"
        assert row.deterministic and row.equivalent, row
        assert len(row.runs) == len(row.setups) == 2
        assert row.mips > 0 and tiny_report.ratio_to_ceiling(row) > 0
    assert tiny_report.ceiling_checksum_matches is True
    assert tiny_report.ceiling.measured and len(tiny_report.ceiling.runs) == 2


def test_the_targets_are_judged_on_the_report_and_missing_runs_are_named(tiny_report):
    judged = {t.name: t for t in bench.targets(tiny_report)}
    assert len(judged) == 5
    fastest = max((r for r in tiny_report.rows if r.workload == "compute"
                   and r.strategy == "native"), key=lambda r: r.best_mips)
    ceiling = judged["compute loop, fastest engine, x ceiling (steady)"]
    # the steady rate when the tiny run yielded one (a double run not measurably longer has none)
    steady = fastest.steady_mips is not None
    assert ceiling.measured == tiny_report.ratio_to_ceiling(fastest, steady=steady)
    assert ceiling.met == (ceiling.measured >= 0.5)
    memory = judged["memory loop (paging on), fastest engine, x ceiling (steady)"]
    assert memory.measured is None and memory.met is None and memory.missing == "not measured"
    assert [t["name"] for t in tiny_report.to_dict()["targets"]] == list(judged)


def test_a_sized_workload_also_runs_twice_as_long_for_its_steady_rate(tiny_report):
    for row in tiny_report.rows:
        per_call = 13 if row.workload == "syscall" else 7
        count = 8 if row.workload == "syscall" else 50
        extra = row.double_instructions - row.guest_instructions
        assert abs(extra - per_call * count) < 100  # the report's digits vary a little
        assert len(row.double_runs) == 2
    report = bench.measure(["minikernel"], engines=["interpreter"], strategies=(), repeat=1)
    (row,) = report.rows
    assert row.double_instructions is None and row.steady_mips is None
    assert report.ratio_to_ceiling(row, steady=True) is None and row.best_mips == row.mips


def test_the_documented_json_fields_are_the_ones_printed(tiny_report):
    doc = (Path(__file__).resolve().parents[2] / "docs" / "performance.md").read_text()
    data = tiny_report.to_dict()
    for key in [*data, *data["environment"], *data["results"][0], *data["ceiling"],
                *data["workloads"][0], *data["targets"][0]]:
        assert f"`{key}`" in doc, key


def test_instruction_counts_are_the_same_in_every_invocation(tiny_report):
    again = bench.measure(["compute", "syscall"], strategies=("trap-emulate",), repeat=1,
                          scale=TINY)
    counts = {(r.workload, r.label): r.guest_instructions for r in tiny_report.rows}
    assert counts == {(r.workload, r.label): r.guest_instructions for r in again.rows}
    # every configuration of a workload retires the same instructions
    assert len({counts[k] for k in counts if k[0] == "compute"}) == 1


def test_a_workload_without_a_port_is_skipped_under_paravirtual():
    report = bench.measure(["memory"], engines=["interpreter"], strategies=("paravirtual",),
                           repeat=1, scale=TINY)
    assert [r.label for r in report.rows] == ["native/interpreter"]
    assert report.skipped == ("memory under paravirtual: the guest has no paravirtual port",)
    with pytest.raises(bench.BenchError, match="nothing to measure: memory under paravirtual"):
        bench.measure(["memory"], engines=(), strategies=("paravirtual",), repeat=1, scale=TINY)


def test_a_port_is_measured_and_judged_on_its_outcome():
    report = bench.measure(["minikernel"], engines=["interpreter"], strategies=("paravirtual",),
                           repeat=1, scale=TINY)
    row = report.row("minikernel", strategy="paravirtual")
    assert row.equivalent and row.stop_reason == "halted"


def test_without_py65_the_report_says_so_and_invents_no_number(monkeypatch):
    monkeypatch.setitem(sys.modules, "py65.devices.mpu6502", None)  # import fails
    report = bench.measure(["compute"], engines=["interpreter"], strategies=(), repeat=1,
                           scale=TINY)
    assert not report.py65.measured and report.py65.note == anchors.PY65_MISSING
    assert report.ratio_to_py65(report.rows[0]) is None
    data = report.to_dict()
    assert data["py65"]["mips"] is None and data["results"][0]["ratio_to_py65"] is None
    assert "py65 is not installed" in bench.render_text(report)


@pytest.mark.skipif(anchors.py65_version() is None, reason="py65 (extra 'peer') not installed")
def test_with_py65_every_result_has_a_ratio_to_it(tiny_report):
    assert tiny_report.py65.measured and tiny_report.py65.version == anchors.py65_version()
    assert all(tiny_report.ratio_to_py65(r) > 0 for r in tiny_report.rows)


@pytest.mark.parametrize("kwargs, message", [
    ({"workloads": ["nope"]}, "unknown workload 'nope'"),
    ({"engines": ["warp"]}, "unknown engine 'warp'"),
    ({"strategies": ["bogus"]}, "unknown strategy 'bogus'"),
    ({"strategies": ["native"]}, "measured with --engine"),
    ({"repeat": 0}, "repeat must be"),
    ({"scale": 0}, "scale must be"),
    ({"scale": float("nan")}, "scale must be"),
])
def test_bad_requests_are_bench_errors(kwargs, message):
    with pytest.raises(bench.BenchError, match=message):
        bench.measure(**kwargs)


# -- the command line ---------------------------------------------------------------------------

def test_json_has_mips_and_ratio_to_ceiling_per_workload_and_engine():
    result = invoke("--json", "--workload", "compute", "--no-vmm", "--repeat", 1,
                    "--scale", TINY)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {"environment", "repeat", "ceiling", "py65", "workloads", "results"} <= set(data)
    assert platform.python_version() in data["environment"]["python"]
    assert [r["engine"] for r in data["results"]] == list(ENGINES)
    for row in data["results"]:
        assert row["workload"] == "compute" and row["strategy"] == "native"
        assert row["mips"] > 0 and row["ratio_to_ceiling"] > 0
        assert row["equivalent"] and row["deterministic"]
        assert row["double_instructions"] > row["guest_instructions"]
        assert {"steady_mips", "steady_ratio_to_ceiling", "steady_ratio_to_py65"} <= set(row)
        assert (row["ratio_to_py65"] is None) == (data["py65"]["mips"] is None)
    assert data["workloads"][0]["count"] == 50


def test_text_and_markdown_tables():
    text = invoke("--workload", "syscall", "--engine", "interpreter", "--vmm",
                  "hardware-assisted:1", "--repeat", 1, "--scale", TINY).output
    assert "python-ceiling:" in text and "hardware-assisted:1" in text
    markdown = invoke("--markdown", "--workload", "syscall", "--engine", "interpreter",
                      "--no-vmm", "--repeat", 1, "--scale", TINY).output
    assert markdown.splitlines()[0].startswith("| workload | engine / strategy |")
    assert "| syscall | native/interpreter |" in markdown


@pytest.mark.parametrize("args, message", [
    (["--workload", "nope"], "unknown workload"),
    (["--engine", "warp"], "unknown engine"),
    (["--vmm", "bogus"], "unknown strategy"),
    (["--repeat", "0"], "repeat must be"),
    (["--scale", "-1"], "scale must be"),
    (["--json", "--markdown"], "exclude each other"),
    (["--no-vmm", "--vmm", "trap-emulate"], "exclude each other"),
    (["--scaling", "--workload", "compute"], "--scaling takes no"),
])
def test_bad_arguments_are_one_line_errors(args, message):
    result = invoke(*args)
    assert result.exit_code == 1
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1


# -- scaling ------------------------------------------------------------------------------------

def test_ram_is_not_touched_when_a_machine_starts():
    # a 256 MiB machine: RAM is mapped lazily, so building it costs the host almost nothing
    point = scaling._memory_probe(256)
    assert point.guest_instructions > 0
    assert point.rss_after_run < 32 * scaling.MIB
    # and a guest using all of it costs the host about its size, not more
    assert 0.9 < point.rss_per_guest_byte < 2


def test_lazily_mapped_ram_behaves_like_a_bytearray():
    a, b = PhysicalMemory(1 << 16), PhysicalMemory(1 << 16)
    assert a.data == b.data and a.data == bytes(1 << 16)
    a.write32(0x100, 0xDEADBEEF)
    assert a.data != b.data and a.data[0x100:0x104] == b"\xef\xbe\xad\xde" and a.data[0x103] == 0xDE


def test_scaling_measures_each_point_in_its_own_process():
    report = scaling.measure(memory_mib=(1,), vm_counts=(2,))
    (memory,), (vms,) = report.memory, report.vms
    assert memory.memory_mib == 1 and memory.guest_instructions > 0
    assert [spec for spec, _ in memory.vmm_startup_seconds] == [
        "trap-emulate:0/1/3", "binary-translation", "hardware-assisted:2"]
    assert vms.vms == 2 and vms.all_halted and vms.guest_instructions > 0
    data = report.to_dict()
    assert set(data) == {"environment", "strategy", "memory", "vms"}
    assert "| 2 |" in scaling.render_markdown(report)


def test_the_scaling_command_prints_json_and_markdown(monkeypatch):
    small = scaling.measure
    monkeypatch.setattr(scaling, "measure", lambda: small(memory_mib=(1,), vm_counts=(1,)))
    data = json.loads(invoke("--scaling", "--json").output)
    assert data["memory"][0]["memory_mib"] == 1 and data["vms"][0]["all_halted"]
    assert invoke("--scaling").output.startswith("| guest RAM (MiB) |")


@pytest.mark.parametrize("kwargs, message", [
    ({"memory_mib": (0,)}, "memory sizes"),
    ({"vm_counts": (100,)}, "VM counts"),
    ({"strategy": "paravirtual"}, "unmodified"),
    ({"strategy": "bogus"}, "unknown strategy"),
])
def test_bad_scaling_requests_are_errors(kwargs, message):
    with pytest.raises(scaling.ScalingError, match=message):
        scaling.measure(**kwargs)


# -- the honest ceiling (issue 10, item 6) -------------------------------------------------------

@pytest.mark.parametrize("name", sorted(anchors.CEILING_FORMULATIONS))
def test_every_ceiling_formulation_computes_the_compute_guests_checksum(name):
    acc, x = anchors.CEILING_FORMULATIONS[name](1234)
    assert f"acc {acc:#010x}, x {x:#010x}" in run_bench_guest("compute", 1234).console


def test_the_ceiling_measures_several_formulations_including_for_range_and_while():
    assert {"while", "for-range"} <= set(anchors.CEILING_FORMULATIONS)
    assert len(anchors.CEILING_FORMULATIONS) >= 3


def test_the_reported_ceiling_is_the_fastest_measured_formulation(tiny_report):
    ceiling = tiny_report.ceiling
    assert set(ceiling.formulations) == set(anchors.CEILING_FORMULATIONS)
    rates = {name: ceiling.count / statistics.median(runs)
             for name, runs in ceiling.formulations.items()}
    assert all(len(runs) == tiny_report.repeat for runs in ceiling.formulations.values())
    assert ceiling.rate == max(rates.values())
    fastest = max(rates, key=rates.__getitem__)
    assert ceiling.runs == ceiling.formulations[fastest]
    assert f"fastest of {len(rates)} formulations: {fastest}" in ceiling.note
    data = tiny_report.to_dict()["ceiling"]
    assert max(f["mips"] for f in data["formulations"].values()) == data["mips"]


def test_a_faster_formulation_becomes_the_ceiling():
    slow, fast = (0.5, 0.6, 0.4), (0.2, 0.1, 0.3)
    runs = anchors.CeilingRuns(1000, {"while": slow, "for-range": fast})
    assert runs.fastest() == "for-range"
    assert runs.anchor().runs == fast and runs.anchor().seconds == 0.2


# -- noise: a steady rate the runs cannot back is "noisy" (issue 10, item 3) ---------------------

def _row(runs, double_runs, *, ceiling_rate=10e6, instructions=1_000_000, double=2_000_000):
    return bench.Row(workload="memory", strategy="binary-translation", engine=None,
                     guest_instructions=instructions, stop_reason="halted", deterministic=True,
                     equivalent=True, runs=runs, setups=(0.01,) * len(runs),
                     double_instructions=double, double_runs=double_runs,
                     ceiling_rate=ceiling_rate)


def test_a_steady_rate_above_the_ceiling_is_noise():
    row = _row((1.0, 1.0, 1.0), (1.06, 1.06, 1.06))   # 1 M instructions in 0.06 s: 16.7 M/s
    assert row.steady_mips is None
    assert row.steady_noise == "1.67x the plain-Python ceiling: noise, not a result"


def test_a_difference_that_varies_too_much_between_rounds_is_noise():
    row = _row((1.0, 1.0, 1.0), (1.2, 1.5, 1.9), ceiling_rate=100e6)
    assert row.steady_mips is None and "vary by 140% of their median" in row.steady_noise
    assert _row((1.0,), (1.5,), ceiling_rate=100e6).steady_noise.startswith("one round")
    assert "not measurably longer" in _row((1.0, 1.0), (0.9, 0.9)).steady_noise


def test_a_steady_difference_gives_a_steady_rate():
    row = _row((1.0, 1.0, 1.0), (1.5, 1.52, 1.48))
    assert row.steady_noise is None and row.steady_mips == pytest.approx(2.0)


def test_noisy_rows_and_a_busy_machine_are_said_in_the_output():
    ceiling = anchors.Anchor("python-ceiling", "operations", 1000, (0.1, 0.2, 0.1))
    report = bench.BenchReport(
        rows=(_row((1.0, 1.0, 1.0), (1.06, 1.06, 1.06)),), workloads=(), ceiling=ceiling,
        py65=anchors.Anchor("py65", "6502 instructions", 1, ()), repeat=3,
        ceiling_checksum_matches=None, skipped=(),
        environment={**bench.environment(), "cpus": 2, "load_average": [1.0, 5.5]})
    assert report.busy == ("load average up to 5.5 on 2 CPUs; the ceiling's runs varied by "
                           "100% of their median")
    text = bench.render_text(report)
    assert "WARNING: the machine was busy (load average up to 5.5 on 2 CPUs" in text
    assert re.search(r"noisy +noisy +noisy", text)
    assert "noisy: memory binary-translation: 1.67x the plain-Python ceiling" in text
    assert "- the machine was busy" in bench.render_markdown(report)
    data = report.to_dict()
    assert data["busy"] == report.busy
    assert data["results"][0]["steady_mips"] is None
    assert data["results"][0]["steady_noisy"].startswith("1.67x")
