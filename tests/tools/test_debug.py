"""toyvisor debug: stops, views, reverse execution by replay, and the final state left untouched."""

import re
from pathlib import Path

import attrs
import pytest
from click.testing import CliRunner

from toyvisor.tools.cli import main
from toyvisor.tools.debug import DebugError, Session, World
from toyvisor.tools.debug.monitor import COMMANDS, Monitor
from toyvisor.tools.guest import load_guest
from toyvisor.vmm.equivalence import vm_state
from toyvisor.vmm.strategies import make_strategy

REPO = Path(__file__).resolve().parents[2]


def nanobench_popf():
    return attrs.evolve(load_guest("nanobench"), console_input=b"popf 2\n")


def undisturbed_state(guest, vmm):
    """The final guest-visible state of a plain run (no debugger, no trace, no chunks)."""
    strategy = make_strategy(vmm)
    strategy.run(guest)
    return vm_state(strategy.last_vm)


def script(monitor, *lines):
    return [monitor.execute(line) for line in lines]


def test_popf_under_trap_emulate_virtual_and_real_if_reverse_to_pushf_and_same_end():
    guest = nanobench_popf()
    session = Session(guest, vmm="trap-emulate", checkpoint_every=1000)
    monitor = Monitor(session)
    popf = session.location("popf.s:14")
    pushf = session.location("popf.s:15")
    out = script(monitor, "break popf.s:14", "continue", "continue", "regs",
                 "print iflag", "print real_iflag")
    assert out[2].startswith(f"[#{session.position}] breakpoint 1")
    assert session.view().pc == popf and "popf" in out[2]
    # the second popf: the kernel's cli made the virtual IF 0; the real IF stays 1 (ring 1)
    assert re.search(r"CPL\s+0\s+1", out[3]) and re.search(r"IF\s+0\s+1", out[3])
    assert out[4].startswith("0 =") and out[5].startswith("1 =")
    at_popf = session.position
    # back, line by line, to the pushf before it (pushf, pop, addi, cmpi, jnz, cli, push)
    texts = script(monitor, *["reverse-step"] * 7)
    assert session.position == at_popf - 7 and session.view().pc == pushf
    assert "pushf" in texts[-1] and "popf.s:15" in texts[-1]
    # replays are bounded by the checkpoint interval, never a restart from the boot
    assert session.replayed <= 7 * 1000
    end = script(monitor, "delete", "continue")[-1]
    assert "the guest halted" in end
    assert session.world.guest_state() == undisturbed_state(guest, "trap-emulate")


@pytest.mark.parametrize("vmm", [None, "trap-emulate", "binary-translation",
                                 "hardware-assisted:2"])
def test_minikernel_reverse_anywhere_then_the_same_end(vmm):
    guest = load_guest("minikernel")
    session = Session(guest, vmm=vmm, checkpoint_every=4000)
    seen = {}
    for target in (1500, 9000, 17000):
        session.stepi(target - session.position)
        seen[target] = attrs.evolve(session.view(), real=None)
    for target in (9000, 1500, 17000, 9000):
        before = session.replayed
        session._goto(target)
        assert session.position == target
        assert attrs.evolve(session.view(), real=None) == seen[target]
        assert session.replayed - before <= 4000  # one checkpoint interval at most
    assert session.run_to_end().finished
    if vmm is None:
        reference = World.boot(guest)
        while reference.stop_reason is None:
            reference.run(10 ** 7, None)
        assert session.world.guest_state() == reference.guest_state()
    else:
        assert session.world.guest_state() == undisturbed_state(guest, vmm)


def test_breakpoint_on_symbol_bt_finish_next_step():
    session = Session(load_guest("minikernel"), vmm="trap-emulate")
    monitor = Monitor(session)
    puts = session.location("puts")
    out = script(monitor, "break puts", "continue", "bt")
    assert session.view().pc == puts
    assert "(call <puts>)" in out[2] and "kernel.s:22" in out[2]
    call_site = session.frames[-1].site
    out = script(monitor, "finish")
    assert "finished the frame" in out[0] and session.view().pc == call_site + 4
    assert not session.frames
    # next runs over a call: from the line of `call memset32` to the line after it
    script(monitor, "delete", "tbreak memset32", "continue")
    assert session.view().pc == session.location("memset32")
    assert not session.points  # a temporary breakpoint is gone once it stopped the guest
    script(monitor, "finish")
    after = session.view().pc
    # reverse-next goes back over the whole call to the calling line; next over it again
    script(monitor, "reverse-next")
    site = session.view().pc
    assert monitor.inspector.mnemonic(session.view(), site) == "call" and after == site + 4
    depth = len(session.frames)
    script(monitor, "next")
    assert session.view().pc == after and len(session.frames) == depth
    script(monitor, "reverse-stepi")
    assert monitor.inspector.mnemonic(session.view(), session.view().pc) == "ret"
    assert len(session.frames) == depth + 1
    out = script(monitor, "reverse-continue", "reverse-next", "step")  # no points: the start
    assert "reached the start" in out[0] and "already at the start" in out[1]
    assert session.position == 1 and not session.frames


def test_conditional_breakpoint_and_register_watch():
    session = Session(nanobench_popf())
    monitor = Monitor(session)
    out = script(monitor, "break popf.s:17 if r10 == 1", "continue")
    assert session.view().regs[10] == 1 and "breakpoint 1" in out[1]
    out = script(monitor, "delete", "watch r10", "continue")
    assert "watchpoint 2: r10 0x1 -> 0x0" in out[2]
    assert session.view().pc == session.location("popf.s:18")


def test_memory_watch_reports_old_and_new_value_and_reverse_continue_finds_earlier_hits():
    session = Session(nanobench_popf(), vmm="trap-emulate")
    monitor = Monitor(session)
    script(monitor, "break bench_popf.loop", "continue", "delete")
    out = script(monitor, "watch sp-4 4 w", "continue")
    assert re.search(r"watchpoint 2: write at 0x[0-9a-f]+: 0x[0-9a-f]+ -> 0x00000200 "
                     r"\(by [0-9a-f]+ push\)", out[1])
    first = session.position
    out = script(monitor, "continue")  # pushf writes the same slot: the real IF shows
    assert "-> 0x00000200 (by" in out[0] and "pushf" in out[0]
    script(monitor, "continue", "continue")
    out = script(monitor, "reverse-continue", "reverse-continue", "reverse-continue")
    assert session.position == first and "watchpoint 2" in out[-1]


def test_catch_trap_and_vmm_causes():
    session = Session(load_guest("minikernel"), vmm="trap-emulate")
    monitor = Monitor(session)
    out = script(monitor, "catch vmm:privileged", "continue")
    assert "catchpoint 1: vmm:privileged (after" in out[1]
    out = script(monitor, "delete", "catch int 0x80", "continue", "bt")
    assert "catchpoint 2: int 0x80" in out[2] and "(int 0x80 ->" in out[3]
    out = script(monitor, "delete", "catch page-fault", "continue")
    assert "catchpoint 3: page-fault" in out[2]
    out = script(monitor, "delete", "catch vmm", "stepi 50000", "info breakpoints")
    assert "catchpoint 4: vmm:" in out[2]


def test_inspection_commands_under_a_vmm_show_both_sides():
    session = Session(load_guest("minikernel"), vmm="trap-emulate")
    monitor = Monitor(session)
    script(monitor, "catch int 0x80", "continue")
    out = script(monitor, "info pt pc", "info idt", "info tlb", "x/4xw sp", "x/2i pc",
                 "x/s 0", "mem sp 32", "disasm pc 3", "info vm", "vcpu", "cpu", "status")
    pt, idt, tlb = out[0], out[1], out[2]
    assert "guest page table" in pt and "real page table (shadow" in pt
    assert pt.count("PDE at") == 2 and "ring 0" in pt
    assert "general-protection" in idt and "0x80" not in idt.split("\n")[0]
    assert "real interrupt table" in idt and "every one enters the VMM" in idt
    assert "guest (virtual TLB" in tlb and "real TLB" in tlb
    assert out[4].startswith("=>") and len(out[5].splitlines()) == 1
    assert len(out[6].splitlines()) == 2 and out[7].startswith("=>")
    assert "minikernel#0 under trap-emulate:0/1/3" in out[8] and out[9].startswith("* vcpu0")


def test_triple_fault_stops_with_the_reason(tmp_path):
    source = tmp_path / "boom.s"
    source.write_text("start:  li r1, 1\n        ld r2, [r1]\n        hlt\n")
    session = Session(load_guest(source))
    stop = session.cont()
    assert stop.finished and "triple-faulted" in stop.reason
    text = Monitor(session).stop_text(stop)
    assert "triple fault at pc" in text
    assert Monitor(session).execute("stepi").startswith(f"[#{stop.position}] the guest")
    assert session.reverse_stepi().position == stop.position - 1


@pytest.mark.parametrize("line, message", [
    ("frobnicate", "unknown command 'frobnicate'"),
    ("break", "break where?"),
    ("break nosuchsymbol", "unknown name 'nosuchsymbol'"),
    ("break kernel.s:99999", "no instruction at kernel.s:99999"),
    ("break puts if r1 ===", "cannot parse expression"),
    ("break puts if __import__('os')", "only integers, registers"),
    ("stepi -3", "at least 1"),
    ("stepi lots", "'lots' is not a number"),
    ("x/4q sp", "unknown format letter 'q'"),
    ("mem 0xfffff000 16", "outside"),
    ("watch 0 8 rx", "usage"),
    ("watch r99", "unknown name 'r99'"),
    ("delete 42", "no breakpoint, watchpoint or catchpoint 42"),
    ("info nothing", "info what?"),
    ("info pt", "usage: info pt VADDR"),
    ("reverse-step", "already at the start"),
    ("finish", "finish: no call"),
    ("vcpu 3", "no VMM"),
    ("cpu 3", "no cpu 3"),
    ("print 1/0", "division by zero"),
    ("catch", "catch what?"),
])
def test_bad_commands_are_one_line_and_the_session_goes_on(line, message):
    session = Session(load_guest("minikernel"))
    monitor = Monitor(session)
    out = monitor.execute(line)
    assert out.startswith("error: ") and message in out and "\n" not in out
    assert monitor.execute("stepi 2").startswith("[#2]")


def test_unsupported_setups_are_clear_errors():
    with pytest.raises(DebugError, match="paravirtual runs a port"):
        Session(load_guest("minikernel"), vmm="paravirtual")
    with pytest.raises(DebugError, match="the debugger runs one-CPU machines"):
        Session(load_guest("minikernel"), cpus=2)


def test_every_command_has_help():
    monitor = Monitor(Session(load_guest("minikernel")))
    listing = monitor.execute("help")
    for command in COMMANDS:
        assert command.usage in listing
        assert command.help.split(".")[0] in monitor.execute(f"help {command.name}")


def test_cli_commands_file(tmp_path):
    commands = tmp_path / "session.cmd"
    commands.write_text("# stop at the popf\nbreak popf.s:14\ncontinue\nregs\ncontinue\n")
    result = CliRunner().invoke(main, ["debug", "nanobench", "--vmm", "trap-emulate",
                                       "--input", "popf 1", "--commands", str(commands)])
    assert result.exit_code == 0, result.output
    assert "(toyvisor) break popf.s:14" in result.output
    assert "the guest halted" in result.output and "Traceback" not in result.output
    commands.write_text("stepi\nnope\nstepi\n")
    result = CliRunner().invoke(main, ["debug", "minikernel", "--commands", str(commands)])
    assert result.exit_code == 1 and "error: unknown command 'nope'" in result.output
    assert "[#2]" in result.output and "1 command failed" in result.output


@pytest.mark.parametrize("args, message", [
    (["debug", "nosuchguest"], "nosuchguest"),
    (["debug", "minikernel", "--vmm", "nonsense"], "unknown strategy 'nonsense'"),
    (["debug", "minikernel", "--commands", "/nonexistent/cmds"], "/nonexistent/cmds"),
    (["debug", "minikernel", "--commands", "/dev/zero"], "not a regular file"),
])
def test_cli_bad_input_is_one_line(args, message):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1 and message in result.output
    assert "Traceback" not in result.output
