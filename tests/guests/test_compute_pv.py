"""guests/bench/compute's paravirtual port (pv.s): the compute loop timed under the paravirtual
VMM prints exactly what the native guest prints, for every kind of console input."""

from __future__ import annotations

import attrs
import pytest

from toyvisor.tools.guest import load_guest
from toyvisor.vmm import run_guest

COMPUTE = load_guest("bench/compute")


@pytest.mark.parametrize("text", [b"1000", b"", b"  7\n", b"x", b"0", b"100000001",
                                  b"1" * 32, b"1" * 33, b"9" * 200, b"12 13"])
def test_the_port_prints_what_the_native_guest_prints(text):
    guest = attrs.evolve(COMPUTE, console_input=text, max_steps=2_000_000)
    native = run_guest(guest, "native")
    port = run_guest(guest, "paravirtual")
    assert port.equivalent and port.stop_reason == native.stop_reason == "halted"
    assert port.console == native.console and port.console.startswith(("compute: ", "bench: "))


def test_the_port_reads_input_longer_than_one_hypercall_takes():
    """pv_input.s keeps reading past its buffer, so overflow is seen as natively: 200 bytes
    of digits are too long, not the number their first 32 bytes spell."""
    guest = attrs.evolve(COMPUTE, console_input=b"9" * 200)
    port = run_guest(guest, "paravirtual")
    assert port.console.startswith("bench: the console input must be one iteration count")
    assert port.events["hypercall"] > 200 // 16
