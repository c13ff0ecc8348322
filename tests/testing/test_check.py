"""Isolation properties and `toyvisor check`: a broken kernel and a broken VMM are caught."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from toyvisor.testing import Instr, Program
from toyvisor.testing.check import check_kernel
from toyvisor.testing.harness import user_guest
from toyvisor.testing.properties import PropertyViolation, assert_isolated, run_under
from toyvisor.tools.cli import main
from toyvisor.tools.guest import load_guest
from toyvisor.vmm.shadow import ShadowPager

BROKEN = Path(__file__).resolve().parent / "broken_kernel"


def test_the_broken_kernel_is_caught_by_the_walk_with_a_standalone_counterexample():
    report = check_kernel(load_guest(BROKEN), ["trap-emulate"], examples=5, seed=3)
    failed = {p.name: p for p in report.properties if not p.held}
    assert set(failed) == {"kernel-isolation"} and not report.held
    assert len(report.properties) == 5  # the kernel's property and four under trap-emulate
    finding = failed["kernel-isolation"]
    assert [str(e) for e in finding.exposures] == [
        "write linear 0x00011000 -> frame 0x00011000: the page table of linear "
        "0x00000000-0x003fffff; KPT"]
    assert finding.counterexample.splitlines() == [
        "        li r13, 0x11000                 ; page table", "        li r1, 0x0",
        "        st [r13], r1"]
    assert finding.access.startswith("write of 4 byte(s) at physical 0x00011000 (KPT + 0x0")
    assert finding.access.endswith("by the instruction at pc 0x00001014")


def test_a_random_program_s_ring_3_store_into_kernel_memory_is_caught_and_shrunk():
    # no sweep and no walk: the generated programs alone must find and shrink the store into the
    # page table
    from toyvisor.testing import check

    kernel = load_guest(BROKEN)
    violation = check._search(
        check.adversarial_programs(kernel),
        lambda p: check.native_test_for(kernel, walk=False)(p, ["kernel-isolation"]), 200, 0)
    assert violation is not None
    lines = [line.split(";")[0].strip() for line in violation.program.source().splitlines()]
    assert len(lines) <= 3 and any("0x11000" in line for line in lines), lines


@pytest.mark.parametrize("where", ["the other VM", "the VMM region"])
def test_a_vmm_that_maps_a_frame_the_vm_does_not_own_is_caught(monkeypatch, where):
    """The shadow pager maps the guest's user pages (linear 4 MiB and up) to frames of the next
    VM's slice, or to a free frame of the VMM's own region."""
    write_pte = ShadowPager._write_pte

    def buggy(self, space, vpn, value):
        if vpn >= 0x400 and value & 1:
            frame = (value & ~0xFFF) - self.vm.base
            wrong = (self.vm.base + self.vm.size + frame % 0x4000 if where == "the other VM"
                     else self.vm.base - 0x1000)
            value = (value & 0xFFF) | wrong
        write_pte(self, space, vpn, value)

    monkeypatch.setattr(ShadowPager, "_write_pte", buggy)
    program = Program((Instr("li", (1, 5)),))
    guest = user_guest(load_guest("minikernel"), program)
    run = run_under(guest, "trap-emulate", program=program,
                    properties=("resource-control", "vm-isolation"))
    names = {f.name for f in run.findings}
    assert {"vm-isolation", "resource-control"} <= names
    isolation = next(f for f in run.findings if f.name == "vm-isolation")
    assert isolation.access.where == where
    try:
        assert_isolated(guest, "trap-emulate", program)
    except PropertyViolation as error:
        text = str(error)
        assert "property 'vm-isolation' failed under trap-emulate" in text
        assert "first offending access:" in text and "li r1, 0x5" in text
    else:
        raise AssertionError("the VMM bug went unnoticed")


def test_check_minikernel_json_reports_every_property_held():
    result = CliRunner().invoke(main, ["check", "guests/minikernel", "--json", "--vmm",
                                       "trap-emulate", "--examples", "1"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["held"] and len(report["properties"]) == 5
    assert all(p["held"] for p in report["properties"])


def test_check_of_the_broken_kernel_exits_2_with_the_counterexample():
    result = CliRunner().invoke(main, ["check", str(BROKEN), "--vmm", "trap-emulate",
                                       "--examples", "2", "--seed", "1"])
    assert result.exit_code == 2
    assert "FAILED  kernel-isolation  native" in result.output
    assert "li r13, 0x11000" in result.output and "first offending access" in result.output
    assert "write linear 0x00011000 -> frame 0x00011000: the page table" in result.output


def test_check_is_deterministic_for_a_seed():
    runs = [CliRunner().invoke(main, ["check", str(BROKEN), "--vmm", "binary-translation",
                                      "--examples", "4", "--seed", "9", "--json"]).output
            for _ in range(2)]
    assert runs[0] == runs[1]


def test_bad_input_is_one_line_and_exit_1():
    for args in (["check", "no/such/kernel"], ["check", "examples/hello.s"],
                 ["check", str(BROKEN), "--vmm", "bogus"],
                 ["check", str(BROKEN), "--vmm", "paravirtual"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 1, (args, result.output)
        assert result.output.startswith("error: ") and result.output.count("\n") == 1


def test_the_docs_example_is_the_example_test_file_verbatim():
    repo = Path(__file__).resolve().parents[2]
    docs = (repo / "docs" / "testing-isolation.md").read_text(encoding="utf-8")
    example = (Path(__file__).resolve().parent / "test_user_example.py").read_text(
        encoding="utf-8")
    assert f"```python\n{example}```" in docs
