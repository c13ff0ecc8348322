"""The checker finds what ring 3 can reach from the machine itself (toyvisor.testing.reach)."""

from pathlib import Path

import attrs
import pytest

from toyvisor.testing import Instr, Program
from toyvisor.testing.check import check_kernel
from toyvisor.testing.harness import kernel_targets, reach, user_guest
from toyvisor.testing.properties import PropertyViolation, assert_kernel_isolates
from toyvisor.tools.guest import load_guest

KERNELS = Path(__file__).resolve().parent / "kernels"
EXPOSED = {  # kernel → (access, linear address, what the frame holds)
    "renamed": ("write", 0x11000, "the page table of linear 0x00000000-0x003fffff"),
    "data_page": ("write", 0x2000, "kernel data (image segment 'data' at 0x2000)"),
    "idt_page": ("write", 0x15000, "the interrupt table (idtr 0x00015000)"),
    "table_readable": ("read", 0x11000, "the page table of linear 0x00000000-0x003fffff"),
}


@pytest.mark.parametrize("name", sorted(EXPOSED))
def test_each_exposing_kernel_fails_at_the_default_settings(name):
    report = check_kernel(load_guest(KERNELS / name))  # every strategy, 20 programs, seed 0
    assert not report.held
    failed = [p for p in report.properties if not p.held]
    assert [(p.name, p.strategy) for p in failed] == [("kernel-isolation", "native")]
    access, va, holds = EXPOSED[name]
    [exposure] = failed[0].exposures
    assert (exposure.access, exposure.va, exposure.frame) == (access, va, va)
    assert exposure.holds.startswith(holds)
    assert f"{access:<5} linear {va:#010x} -> frame {va:#010x}: {holds}" in report.text()
    # the counterexample stands alone and really reaches the page
    source = failed[0].counterexample
    assert f"li r13, {va:#x}" in source and (("li r1, 0x0" in source) == (access == "write"))
    assert failed[0].access.startswith(f"{access} of 4 byte(s) at physical {va:#010x}")


def test_names_do_not_matter_the_kernel_stripped_of_its_symbols_fails_the_same():
    kernel = load_guest(KERNELS / "renamed")
    kept = {k: v for k, v in kernel.image.symbols.items() if k.startswith("user_")}
    stripped = attrs.evolve(kernel, image=attrs.evolve(kernel.image, symbols=kept))
    report = check_kernel(stripped, [])
    [finding] = report.properties
    assert not finding.held
    assert [(e.va, e.access) for e in finding.exposures] == [(0x11000, "write")]
    assert finding.exposures[0].holds == "the page table of linear 0x00000000-0x003fffff"


@pytest.mark.parametrize("name", ["minikernel", str(KERNELS / "sound")])
def test_correct_kernels_expose_nothing_and_hold(name):
    kernel = load_guest(name)
    surveyed = reach(kernel)
    assert surveyed.entries >= 1 and surveyed.exposures == []
    assert surveyed.page_table_frames  # the walk saw the tables all the same
    if name != "minikernel":  # minikernel's full check is test_check's
        assert check_kernel(kernel).held


def test_minikernel_s_frames_are_found_from_cr3_idtr_ksp_and_the_disk():
    frames = reach(load_guest("minikernel")).frames
    holds = {what.split(";")[0].split(" (")[0] for what in frames.values()}
    assert {"the page directory", "the interrupt table", "the ring-0 stack", "kernel text",
            "kernel data", "the disk's DMA buffer"} <= holds
    assert any(what.startswith("the page table of linear 0x00400000") for what in frames.values())


def test_the_search_aims_at_the_reachable_pages():
    targets = kernel_targets(load_guest(KERNELS / "data_page"))
    assert targets.kernel[0] == 0x2000  # the exposed page first
    assert 0x11000 in targets.page_tables and 0x10000 in targets.page_tables


def test_the_assertion_walks_too_even_when_the_program_touches_nothing():
    kernel = load_guest(KERNELS / "idt_page")
    program = Program((Instr("li", (1, 5)),))
    with pytest.raises(PropertyViolation, match="ring 3 can reach 1 kernel page") as caught:
        assert_kernel_isolates(user_guest(kernel, program), program)
    assert "write linear 0x00015000 -> frame 0x00015000: the interrupt table" in str(caught.value)


def test_a_search_counterexample_sets_every_register_it_reads():
    from toyvisor.testing import check

    program = Program((Instr("li", (13, 0x11000)), Instr("st", ((13, 0), 1)),
                       Instr("push", (2,))))
    assert program.inputs() == (1, 2, 15)
    whole = program.standalone(list(range(100, 116)))
    assert [str(i.values) for i in whole.instructions[:3]] == ["(1, 101)", "(2, 102)",
                                                               "(15, 115)"]
    kernel = load_guest(Path(__file__).resolve().parent / "broken_kernel")
    test = check.native_test_for(kernel, walk=False)
    with pytest.raises(PropertyViolation) as caught:
        test(program, ["kernel-isolation"])
    registers = reach(kernel).entry_registers
    standalone = check._standalone(caught.value, test, registers, kernel)
    lines = standalone.program.source().splitlines()
    assert lines[0].startswith(f"        li r1, {registers[1]:#x}")
    assert lines[2].startswith(f"        li sp, {registers[15]:#x}")
    assert standalone.finding.name == "kernel-isolation"


def test_the_docs_check_example_is_what_check_prints(monkeypatch):
    import re

    from click.testing import CliRunner

    from toyvisor.tools.cli import main

    repo = Path(__file__).resolve().parents[2]
    docs = (repo / "docs" / "testing-isolation.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- generate: \$ toyvisor check (.*?) -->\n```\n\$ toyvisor check \1\n(.*?)```",
                      docs, re.S)
    assert match, "the check example block of docs/testing-isolation.md is missing"
    monkeypatch.chdir(repo)
    result = CliRunner().invoke(main, ["check", *match.group(1).split()])
    assert result.exit_code == 2
    assert match.group(2) == result.output


def test_a_kernel_that_never_enters_ring_3_is_bad_input_not_a_vacuous_pass(tmp_path):
    from click.testing import CliRunner

    from toyvisor.tools.cli import main

    source = tmp_path / "never.s"  # follows the convention, but halts before any ring-3 entry
    source.write_text("start: cli\n hlt\n.align PAGE_SIZE\nuser_program: .space PAGE_SIZE\n"
                      "user_program_end:\nuser_memory_u = user_program\n"
                      "user_memory_u_end = user_program_end\n")
    result = CliRunner().invoke(main, ["check", str(source), "--vmm", "trap-emulate"])
    assert result.exit_code == 1
    assert result.output.startswith("error: never: the kernel never entered ring 3") \
        and "halted after 2 instructions" in result.output


def test_a_system_call_that_exposes_a_page_is_found_by_the_search_and_shrunk():
    # sound at boot: the walk of the empty program finds nothing; `int 0x81` maps KTAB at PL3
    kernel = load_guest(KERNELS / "syscall_maps")
    surveyed = reach(kernel)
    assert surveyed.exposures == [] and {0x80, 0x81} <= surveyed.vectors
    report = check_kernel(kernel)  # the default settings
    [failed] = [p for p in report.properties if not p.held]
    assert (failed.name, failed.strategy) == ("kernel-isolation", "native")
    assert [(e.va, e.access) for e in failed.exposures] == [(0x11000, "write")]
    assert [line.split(";")[0].strip() for line in failed.counterexample.splitlines()] \
        == ["int 129"]


def test_programs_raise_the_kernel_s_own_vectors():
    from hypothesis import given, settings

    from toyvisor.testing import strategies

    seen = set()

    @settings(max_examples=60, database=None)
    @given(strategies.programs(vectors=(0x81,), max_size=6))
    def collect(program):
        seen.update(i.values[0] for i in program if i.mnemonic == "int")

    collect()
    assert 0x81 in seen
