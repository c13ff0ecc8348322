"""The comparison table on synthetic results (compare.py does not run guests)."""

import json
from types import SimpleNamespace

import attrs

from toyvisor.vmm import compare


def result(strategy, **fields):
    base = dict(strategy=strategy, placement="system", equivalent=True, divergence=None,
                guest_instructions=20_112, vmm_entries=0, by_cause={}, events={},
                emulated_instructions=0, callouts=0, blocks_translated=0, cache_hits=0,
                cache_misses=0, cycles=20_112, slowdown=1.0, efficiency=1.0)
    base.update(fields)
    return SimpleNamespace(**base)


@attrs.frozen
class FrozenResult:  # the contract's VMRunResult is an attrs frozen class
    strategy: str
    equivalent: bool
    divergence: str | None
    guest_instructions: int
    vmm_entries: int
    by_cause: dict
    events: dict
    emulated_instructions: int
    callouts: int
    blocks_translated: int
    cache_hits: int
    cycles: int
    slowdown: float
    efficiency: float


RUNS = [
    result("native", events={"instruction": 20_112}),
    result("trap-emulate:0/1/3", equivalent=False,
           divergence="pc 0x0140 popf: sensitive-unprivileged; at real CPL 1 its change of IF "
                      "was silently ignored\n  guests/nanobench/popf.s:12",
           vmm_entries=1_234, emulated_instructions=1_234, cycles=12_345_678, slowdown=613.85,
           efficiency=0.9387,
           by_cause={"vmm:privileged": 800, "vmm:io": 300, "vmm:ptemod": 100, "vmm:timer": 34,
                     "pgfault": 100, "syscall": 5000}),
    result("binary-translation", vmm_entries=500, callouts=400, blocks_translated=321,
           cache_hits=98_765, cycles=1_234_567, slowdown=61.38, efficiency=0.975,
           by_cause={"callout:popf": 400, "vmm:pgfault-hidden": 100}),
    result("hardware-assisted:2", vmm_entries=300, emulated_instructions=300,
           cycles=3_456_789, slowdown=171.87, efficiency=0.985,
           by_cause={"exit:hlt": 1, "vmm:io": 299}),
]


def test_rows_keep_order_and_pick_the_top_vmm_causes():
    rows = compare.build_rows(RUNS)
    assert [row.strategy for row in rows] == [run.strategy for run in RUNS]
    trap = rows[1]
    # Guest-visible causes (pgfault, syscall) are not VMM entries; the rest sorted by count.
    assert trap.top_causes == (("vmm:privileged", 800), ("vmm:io", 300), ("vmm:ptemod", 100))
    assert trap.other_causes == 1
    assert rows[3].top_causes == (("vmm:io", 299), ("exit:hlt", 1))


def test_text_has_every_column_and_fits_100_columns():
    text = compare.table(RUNS, cost_profile="pentium4")
    for header in ("strategy", "guest instr", "VMM entries", "est. cycles", "slowdown",
                   "efficiency", "equivalent", "emulated", "callouts", "blocks / hits",
                   "top VMM entry causes"):
        assert header in text
    assert max(len(line) for line in text.splitlines()) <= 100
    assert "12,345,678" in text and "613.85x" in text and "93.9%" in text
    assert "321 / 98,765" in text
    assert "vmm:privileged 800" in text and "syscall" not in text
    assert "cost profile 'pentium4'" in text


def test_columns_are_aligned():
    lines = compare.table(RUNS).splitlines()
    block = lines[: lines.index("")]
    # Right-aligned numeric columns end at the same place on every row.
    ends = {line.index("20,112") + len("20,112") for line in block[2:]}
    assert len(ends) == 1


def test_non_equivalent_runs_get_a_footnote_with_the_divergence():
    text = compare.table(RUNS)
    row = next(line for line in text.splitlines() if line.startswith("trap-emulate:0/1/3"))
    assert row.rstrip().endswith("NO [1]")
    assert "[1] trap-emulate:0/1/3: pc 0x0140 popf: sensitive-unprivileged" in text
    assert "    guests/nanobench/popf.s:12" in text
    for name in ("native", "binary-translation", "hardware-assisted:2"):
        line = next(line for line in text.splitlines() if line.startswith(name))
        assert line.rstrip().endswith("yes")
    assert "[2]" not in text


def test_several_footnotes_are_numbered_in_order():
    runs = [result("native"), result("a", equivalent=False, divergence="first"),
            result("b", equivalent=False, divergence=None)]
    text = compare.table(runs)
    assert "[1] a: first" in text
    assert "[2] b: no divergence reported" in text


def test_long_cause_lists_are_shortened_by_whole_causes():
    causes = {f"vmm:a-rather-long-cause-name-{i}": 1000 - i for i in range(6)}
    text = compare.table([result("trap-emulate:0/3/3", vmm_entries=5985, by_cause=causes)])
    assert max(len(line) for line in text.splitlines()) <= 100
    line = next(line for line in text.splitlines()[6:] if line.startswith("trap-emulate"))
    assert "more" in line and "..." not in line


def test_missing_values_show_a_dash_and_empty_input_is_handled():
    text = compare.table([result("native", cycles=None, slowdown=None, efficiency=None)])
    line = next(line for line in text.splitlines() if line.startswith("native"))
    assert line.split()[3:6] == ["-", "-", "-"]
    assert compare.render_text([]) == "no runs to compare\n"


def test_attrs_results_work_too():
    frozen = FrozenResult("binary-translation", True, None, 10, 2, {"callout:popf": 2},
                          {"translated_instruction": 10, "callout": 2}, 0, 2, 1, 5, 80, 8.0, 0.8)
    text = compare.table([frozen])
    assert "binary-translation" in text and "1 / 5" in text and "80.0%" in text


def test_json_has_one_object_per_run_with_the_contract_fields():
    records = compare.to_json(RUNS)
    assert len(records) == len(RUNS)
    for record, run in zip(records, RUNS):
        for field in ("strategy", "equivalent", "divergence", "guest_instructions",
                      "vmm_entries", "by_cause", "cycles", "slowdown", "efficiency", "events"):
            assert record[field] == getattr(run, field)
    assert records[1]["equivalent"] is False and "popf" in records[1]["divergence"]
    assert list(records[1]["by_cause"]) == sorted(records[1]["by_cause"])
    json.dumps(records)  # serialisable as is


def test_json_fills_absent_optional_fields():
    frozen = FrozenResult("native", True, None, 3, 0, {}, {"instruction": 3}, 0, 0, 0, 0, 3,
                          1.0, 1.0)
    (record,) = compare.to_json([frozen])
    assert record["placement"] is None and record["cache_misses"] is None
    assert record["by_cause"] == {} and record["events"] == {"instruction": 3}
    assert list(record) == list(compare.JSON_FIELDS)
