"""guests/minikernel/pv: the paravirtualized port of the minikernel (docs/paravirtual-abi.md).

The port is checked statically (it assembles, the manifest names it, it executes no sensitive
instruction — every one became a hypercall) and, once the ``paravirtual`` strategy is registered,
by running it: the console must tell the same story as the native kernel's, the kernel must talk
to the VMM through hypercalls, and the tasks' ``int 0x80`` must never enter the VMM (fast trap).

What legitimately differs from the native run — the boot lines, the interleaving of the tasks,
the schedule-dependent counts, the clock line — is declared once, in the guest's manifest
(``[port_outcome]``, `toyvisor.vmm.outcome`); these tests split both consoles with those rules.
"""

import re
from pathlib import Path

import attrs
import pytest

from toyvisor.asm import assemble_file
from toyvisor.isa.table import instruction_set
from toyvisor.tools.guest import load_guest
from toyvisor.tools.runner import run

REPO = Path(__file__).resolve().parents[2]
MINIKERNEL = REPO / "guests" / "minikernel"
PORT = MINIKERNEL / "pv" / "kernel.s"

TOKEN = re.compile(r"^[AB]\d+$")


def paravirtual_strategy():
    """The ``paravirtual`` strategy, or None while vmm/paravirt/ does not register it."""
    from toyvisor.vmm.strategies import StrategyError, make_strategy

    try:
        return make_strategy("paravirtual")
    except StrategyError:
        return None


needs_paravirtual = pytest.mark.skipif(
    paravirtual_strategy() is None,
    reason="the 'paravirtual' strategy (vmm/paravirt/) is not registered yet")


# -- static checks --------------------------------------------------------------------------------

def test_port_assembles_with_the_native_user_tasks():
    assembly = assemble_file(PORT, include_paths=(MINIKERNEL,))
    files = {Path(name).name for name in assembly.files}
    assert {"user.s", "layout.s", "pv.s", "pv_console.s"} <= files
    symbols = assembly.image.symbols
    for name in ("start", "isr_event", "isr_syscall", "trap_return", "task_a", "task_b"):
        assert name in symbols, name


def test_manifest_names_the_port():
    guest = load_guest(MINIKERNEL)
    assert guest.pv_image is not None
    port = assemble_file(PORT, include_paths=(MINIKERNEL,)).image
    assert guest.pv_image.segments == port.segments
    assert guest.pv_image != guest.image


def test_port_executes_no_sensitive_instruction():
    """Everything privileged or sensitive in the native kernel became a hypercall or a
    shared_info access; ring-1 code may only use innocuous instructions (+ int 0x82)."""
    sensitive = {d.mnemonic for d in instruction_set("vt") if d.sensitive}
    sensitive |= {alias for d in instruction_set("vt") if d.sensitive for alias in d.aliases}
    assembly = assemble_file(PORT, include_paths=(MINIKERNEL,))
    offenders = []
    for line in assembly.lines:
        if line.address is None or not line.data:
            continue
        text = line.text.split(";")[0]
        text = re.sub(r"^\s*([.\w]+:\s*)*", "", text)         # labels
        mnemonic = text.split()[0].lower() if text.split() else ""
        if mnemonic in sensitive:
            offenders.append(f"{line.file}:{line.line}: {line.text.strip()}")
    assert not offenders, "\n".join(offenders)


# -- running under the paravirtual VMM ---------------------------------------------------------------

@pytest.fixture(scope="module")
def native():
    return run(load_guest(MINIKERNEL))


@pytest.fixture(scope="module")
def paravirtual():
    guest = load_guest(MINIKERNEL)
    # the port, whichever way the strategy picks it (pv_image, or the image it is handed)
    return paravirtual_strategy().run(attrs.evolve(guest, image=guest.pv_image))


@needs_paravirtual
def test_port_runs_to_a_clean_shutdown(paravirtual):
    assert paravirtual.halted, (paravirtual.stop_reason, paravirtual.fault_report,
                                paravirtual.console)
    assert "PANIC" not in paravirtual.console, paravirtual.console
    assert "[kernel] all tasks finished" in paravirtual.console
    assert not paravirtual.resource_violations


@needs_paravirtual
def test_console_tells_the_native_story(native, paravirtual):
    rules = load_guest(MINIKERNEL).port_outcome
    want, got = rules.streams(native.console), rules.streams(paravirtual.console)
    assert [w for w in got["A"] if TOKEN.match(w)] == [f"A{i}" for i in range(12)]
    assert [w for w in got["B"] if TOKEN.match(w)] == [f"B{i}" for i in range(10)]
    for who in ("A", "B", "kernel"):
        assert got[who] == want[who], who
    assert ("[kernel] task 2 killed: page fault at 0x00001000 (protection, read, ring 3)"
            in paravirtual.console)
    # as dom0 the port reads task B's sector from the real disk itself (physdev_op)
    assert 'B: sector 1 says "Hello from sector 1' in paravirtual.console
    assert paravirtual.by_cause["hypercall:physdev_op"] == 5


@needs_paravirtual
def test_tasks_are_interleaved_by_preemption(paravirtual):
    tokens = [w for line in paravirtual.console.splitlines() for w in line.split()
              if TOKEN.match(w)]
    first_b = next(i for i, w in enumerate(tokens) if w.startswith("B"))
    last_a = max(i for i, w in enumerate(tokens) if w.startswith("A"))
    assert first_b < last_a, tokens                     # B ran before A was done
    switches = sum(1 for a, b in zip(tokens, tokens[1:]) if a[0] != b[0])
    assert switches >= 5, tokens


@needs_paravirtual
def test_kernel_uses_hypercalls_and_syscalls_stay_in_the_guest(paravirtual):
    by_cause = paravirtual.by_cause
    hypercalls = {cause: n for cause, n in by_cause.items() if "hypercall" in cause}
    assert sum(hypercalls.values()) > 0, by_cause
    # fast trap: the tasks' 35 syscalls never enter the VMM
    assert not [cause for cause in by_cause
                if "0x80" in cause or "128" in cause.split(":") or "syscall" in cause], by_cause
    stats = re.search(r"(\d+) syscalls", paravirtual.console)
    assert stats and int(stats[1]) >= 30, paravirtual.console
