"""guests/ptbench and toyvisor.vmm.ptbench: the page-table-heavy benchmark.

Natively the kernel builds an address space of N mappings and prints the summary computed here;
under trap-and-emulate with shadow paging every page-table store is a VMM entry (~N); the
paravirtual kernel batches them (~ceil(N / B) + a constant) — at least 10x fewer at N >= 256.
"""

import math

import attrs
import pytest
from click.testing import CliRunner

from toyvisor.tools.cli import main
from toyvisor.tools.guest import load_guest
from toyvisor.tools.runner import run
from toyvisor.vmm import ptbench, run_guest

#: Hypercalls of the paravirtual kernel besides its ceil(N / (B*M)) page-table batches: the trap
#: table, the preparing multicall, new_baseptr, console_io, shutdown.
PV_CONSTANT = 5
#: The VMM's scheduling quantum (real ticks): its timer entries are one per quantum of guest time.
QUANTUM = 2000


@pytest.fixture(scope="module")
def guest():
    return load_guest("ptbench")


def with_input(guest, text):
    changes = {"console_input": (text + "\n").encode()}
    if guest.pv_image is not None:
        changes["pv_image"] = ptbench.with_command_line(guest.pv_image, text)
    return attrs.evolve(guest, **changes)


def run_paravirtual(guest, text):
    """The paravirtual kernel (the image the strategy boots) with `text` as its command line;
    equivalence with the bare machine compares one kernel's memory, which a port is not."""
    ported = with_input(guest, text)
    return run_guest(attrs.evolve(ported, image=ported.pv_image), "paravirtual",
                     check_equivalence=False)


@pytest.fixture(scope="module")
def trap_emulate(guest):
    return {n: run_guest(with_input(guest, ptbench.command_line(n)), "trap-emulate")
            for n in (64, 256)}


def needs_paravirtual():
    if not ptbench.paravirtual_registered():
        pytest.skip("the 'paravirtual' strategy is not registered yet "
                    "(toyvisor.vmm.strategies.paravirtual is missing)")


@pytest.mark.parametrize("text, n, touch", [
    ("", 256, False),
    ("1", 1, False),
    ("64", 64, False),
    ("1024 b=8 m=4", 1024, False),
    ("1025 touch", 1025, True),
    ("quiet 300", 300, None),
])
def test_native_kernel_builds_the_mappings_and_reports_them(guest, text, n, touch):
    result = run(with_input(guest, text))
    assert result.stop_reason == "halted", result.fault_report
    if touch is None:  # quiet
        assert result.console == ""
    else:
        assert result.console == ptbench.expected_line(n, touch)


def test_native_cost_grows_with_n_only_in_the_build_loop(guest):
    small = run(with_input(guest, "100")).guest_instructions
    large = run(with_input(guest, "200")).guest_instructions
    assert 800 <= large - small <= 820  # 8 instructions per mapping (the build loop's body)


@pytest.mark.parametrize("text, message", [
    ("bogus", "ptbench: unexpected input 'bogus'"),
    ("0", "ptbench: out of range: '0'"),
    ("2049", "ptbench: out of range: '2049'"),
    ("b=513", "ptbench: out of range: 'b=513'"),
    ("m=x", "ptbench: out of range: 'm=x'"),
    ("1" * 65, "ptbench: console input too long"),
])
def test_bad_input_is_one_line_and_a_halt(guest, text, message):
    result = run(attrs.evolve(guest, console_input=text.encode()))
    assert result.stop_reason == "halted"
    assert result.console.startswith(message)
    assert result.console.count("\n") == 1


def test_trap_emulate_takes_one_vmm_entry_per_page_table_write(trap_emulate):
    for n, result in trap_emulate.items():
        assert result.equivalent, result.divergence
        assert result.console == ptbench.expected_line(n)
        assert result.by_cause.get("vmm:ptemod", 0) >= 0.9 * n
        assert result.vmm_entries >= n
    # linear: the extra 192 mappings cost 192 more traced writes, and nothing else grows
    grown = trap_emulate[256].vmm_entries - trap_emulate[64].vmm_entries
    assert trap_emulate[256].by_cause["vmm:ptemod"] - trap_emulate[64].by_cause["vmm:ptemod"] \
        == 192
    assert 192 <= grown <= 200


def test_nested_paging_takes_no_page_table_entries(guest):
    result = run_guest(with_input(guest, "256"), "hardware-assisted:2")
    assert result.equivalent and result.console == ptbench.expected_line(256)
    assert "exit:exception" not in result.by_cause  # no paging exits at all
    assert result.vmm_entries < 100  # console I/O and the timer, whatever N is


def test_paravirtual_kernel_prints_the_native_summary(guest):
    needs_paravirtual()
    for text, n, touch in (("64", 64, False), ("1025 b=16 m=4 touch", 1025, True)):
        result = run_paravirtual(guest, text)
        assert result.stop_reason == "halted", (result.console, result.fault_report)
        assert result.console == ptbench.expected_line(n, touch)


@pytest.mark.parametrize("n, batch, calls", [(64, 32, 1), (256, 32, 1), (256, 8, 4),
                                              (1024, 32, 1)])
def test_paravirtual_needs_about_n_over_batch_entries(guest, n, batch, calls):
    needs_paravirtual()
    result = run_paravirtual(guest, ptbench.command_line(n, batch, calls))
    assert result.console == ptbench.expected_line(n), (result.console, result.fault_report)
    batches = math.ceil(n / (batch * calls))
    hypercalls = sum(v for k, v in result.by_cause.items() if k.startswith("hypercall:"))
    assert hypercalls == batches + PV_CONSTANT, result.by_cause
    assert result.by_cause.get("hypercall:multicall") == batches + 1
    # nothing else enters the VMM but its own scheduling timer, once per quantum
    timer = result.by_cause.get("vmm:timer", 0)
    assert result.vmm_entries == hypercalls + timer, result.by_cause
    assert timer <= result.guest_instructions // QUANTUM + 2


def test_paravirtual_is_ten_times_fewer_entries_than_trap_emulate(guest, trap_emulate):
    needs_paravirtual()
    result = run_paravirtual(guest, ptbench.command_line(256))
    assert result.console == ptbench.expected_line(256)
    assert 10 * result.vmm_entries <= trap_emulate[256].vmm_entries, \
        (result.by_cause, trap_emulate[256].by_cause)


def test_measure_tabulates_and_renders(guest):
    table = ptbench.measure((16, 48), ["trap-emulate"], batch=16)
    assert table.strategies == ("native", "trap-emulate:0/1/3")
    assert table.entries(16, "native") == 0
    assert table.entries(48, "trap-emulate:0/1/3") - table.entries(16, "trap-emulate:0/1/3") \
        >= 32
    assert table.cell(48, "trap-emulate:0/1/3").page_table_entries >= 48
    text = ptbench.render_text(table)
    assert "N=16" in text and "trap-emulate:0/1/3" in text and "ceil(N / (B*M))" in text
    markdown = ptbench.render_markdown(table)
    assert "| `trap-emulate:0/1/3` |" in markdown
    assert ptbench.to_json(table)["paravirtual_batches"] == {"16": 1, "48": 3}


def test_measure_rejects_bad_parameters():
    with pytest.raises(ptbench.PtbenchError):
        ptbench.measure((0,), ["trap-emulate"])
    with pytest.raises(ptbench.PtbenchError):
        ptbench.measure((64,), ["trap-emulate"], batch=1000)


def test_default_strategies_include_paravirtual_when_registered():
    specs = ptbench.default_strategies()
    assert specs[0] == "native" and "trap-emulate:0/1/3" in specs
    assert ("paravirtual" in specs) == ptbench.paravirtual_registered()


def test_cli_ptbench():
    runner = CliRunner()
    result = runner.invoke(main, ["ptbench", "--n", "8", "--vmm", "trap-emulate", "--json"])
    assert result.exit_code == 0, result.output
    assert '"ns": [\n    8\n  ]' in result.output
    result = runner.invoke(main, ["ptbench", "--n", "8", "--json", "--markdown"])
    assert result.exit_code == 1 and "exclude each other" in result.output
