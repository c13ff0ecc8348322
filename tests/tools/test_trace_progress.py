"""`toyvisor run --trace` under every strategy, the console interleaved with the trace, and the
progress line of long commands (on a terminal only)."""

import io
import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from toyvisor.tools.cli import main
from toyvisor.tools.progress import Progress
from toyvisor.vmm.strategies import STRATEGIES, load_builtin

REPO = Path(__file__).resolve().parents[2]
SOURCE = """start:  li   r1, 'h'
        out  PORT_CONSOLE_DATA, r1
        li   r1, 'i'
        out  PORT_CONSOLE_DATA, r1
        cli
        hlt
"""


def invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def _specs():
    load_builtin()
    for name, cls in sorted(STRATEGIES.items()):
        if name != "native":
            yield from ([f"{name}:{v}" for v in sorted(cls.variants)] if cls.variants
                        else [name])


@pytest.mark.parametrize("spec", [s for s in _specs() if not s.startswith("paravirtual")])
def test_run_trace_under_a_vmm_shows_instructions_entries_and_console(tmp_path, spec):
    source = tmp_path / "two.s"
    source.write_text(SOURCE)
    lines = invoke("run", source, "--trace", "--vmm", spec).output.splitlines()
    instructions = [line for line in lines if "out 0x10, r1" in line]
    assert len(instructions) == 2 and all(line.endswith("two.s:2") or line.endswith("two.s:4")
                                          for line in instructions), lines
    entries = [line for line in lines if "[vmm] === two#0: VMM entry by " in line]
    assert entries and all(":" in line.rsplit("entry by ", 1)[1] for line in entries)
    # each output byte shows up after the `out` that wrote it, before the next instruction
    first = lines.index(instructions[0])
    console = lines.index('         <<< console: "h"')
    li_i = next(i for i, line in enumerate(lines) if "li r1, 0x69" in line)
    assert first < console < li_i
    assert '         <<< console: "i"' in lines


def test_run_trace_under_paravirtual_traces_the_port_with_its_source_and_hypercalls():
    result = invoke("run", REPO / "guests" / "minikernel", "--trace", "--vmm", "paravirtual",
                    "--max-steps", "3000")
    lines = result.output.splitlines()
    assert any(line.endswith("pv_console.s:47") for line in lines)
    assert any("VMM entry by trap: hypercall:console_io" in line for line in lines)
    assert any(line.startswith('         <<< console: "[kernel] toyvisor minikernel booting')
               for line in lines)


def test_every_registered_strategy_is_covered_by_a_trace_test():
    assert set(_specs()) >= {"trap-emulate:0/1/3", "binary-translation", "paravirtual",
                             "hardware-assisted:2"}


def test_a_bare_machine_trace_interleaves_the_console_where_it_happened(tmp_path):
    source = tmp_path / "two.s"
    source.write_text(SOURCE)
    lines = invoke("run", source, "--trace").output.splitlines()
    outs = [i for i, line in enumerate(lines) if "out 0x10, r1" in line]
    assert lines[outs[0] + 1] == '         <<< console: "h"'
    assert lines[outs[1] + 1] == '         <<< console: "i"'


def test_progress_draws_on_a_terminal_and_erases_its_line():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    stream = Terminal()
    with Progress("toyvisor check", stream, interval=0.01) as progress:
        progress("kernel-isolation under native", 3, 20)
        time.sleep(0.1)
    text = stream.getvalue()
    assert "\rtoyvisor check: kernel-isolation under native 3/20 (0 s)" in text
    assert text.endswith("\r")  # erased: the command's own output starts on a clean line


def test_progress_stays_quiet_when_piped():
    stream = io.StringIO()  # not a terminal
    with Progress("toyvisor check", stream, interval=0.01) as progress:
        progress("x", 1, 2)
        time.sleep(0.05)
    assert stream.getvalue() == ""


def test_check_and_compare_report_progress_and_print_nothing_of_it_when_piped():
    from toyvisor.testing.check import check_kernel
    from toyvisor.tools.guest import load_guest
    from toyvisor.vmm.comparison import compare

    seen = []
    check_kernel(load_guest(REPO / "tests" / "testing" / "kernels" / "sound"), [], examples=2,
                 progress=lambda *state: seen.append(state))
    assert ("kernel-isolation under native", 2, 2) in seen
    steps = []
    compare(load_guest(REPO / "guests" / "examples" / "hello.s"), ["trap-emulate"],
            progress=lambda *state: steps.append(state))
    assert steps == [("native", 0, 2), ("trap-emulate", 1, 2)]
    result = CliRunner().invoke(main, ["compare", str(REPO / "guests" / "examples" / "hello.s"),
                                       "--vmm", "trap-emulate", "--json"])
    json.loads(result.output)  # stdout is the report alone; the runner's stderr is no TTY
    assert "toyvisor compare:" not in result.output
