"""Console input for paravirtual domains: ``console_io read`` and VIRQ_CONSOLE."""

import attrs
import pytest

from toyvisor.vmm.hypervisor import Hypervisor
from toyvisor.vmm.paravirt.abi import EFAULT, PV_VMM_START, SH_EVTCHN_PENDING, VIRQ_CONSOLE
from toyvisor.vmm.strategies import make_strategy

from pv_support import call, scratch_va, spin_guest

READ, BIND_VIRQ = 1, 2


@pytest.fixture
def domain():
    strategy = make_strategy("paravirtual")
    Hypervisor(strategy, memory_size=(1 << 20) + 0x20000)
    guest = attrs.evolve(spin_guest("reader"), console_input=b"hello, world")
    return strategy.create_domain(guest, privileged=True)


def pending(domain, port: int) -> bool:
    return bool(domain.shared(SH_EVTCHN_PENDING + 4 * (port >> 5)) >> (port & 31) & 1)


def test_binding_virq_console_with_input_waiting_raises_it(domain):
    port = call(domain, "event_channel_op", BIND_VIRQ, VIRQ_CONSOLE)
    assert port > 0 and pending(domain, port)


def test_read_moves_input_and_raises_the_virq_again_while_some_is_left(domain):
    port = call(domain, "event_channel_op", BIND_VIRQ, VIRQ_CONSOLE)
    domain.set_shared(SH_EVTCHN_PENDING, 0)  # the guest takes the event
    va = scratch_va(domain)
    assert call(domain, "console_io", READ, 5, va) == 5
    assert domain.read_bytes(va, 5) == b"hello"
    assert pending(domain, port)  # 7 bytes are still waiting
    domain.set_shared(SH_EVTCHN_PENDING, 0)
    assert call(domain, "console_io", READ, 100, va) == 7
    assert domain.read_bytes(va, 7) == b", world"
    assert not pending(domain, port)  # all read: no new event
    assert call(domain, "console_io", READ, 100, va) == 0  # nothing waiting


def test_a_bad_buffer_is_efault_and_consumes_no_input(domain):
    console = domain.vm.devices.platform.console
    assert call(domain, "console_io", READ, 4, PV_VMM_START - 2) == EFAULT
    assert console.waiting == len(b"hello, world")
    assert call(domain, "console_io", READ, 4, scratch_va(domain)) == 4


def test_no_input_means_no_event(domain):
    guest = spin_guest("quiet")
    strategy = make_strategy("paravirtual")
    Hypervisor(strategy, memory_size=(1 << 20) + 0x20000)
    quiet = strategy.create_domain(guest, privileged=True)
    port = call(quiet, "event_channel_op", BIND_VIRQ, VIRQ_CONSOLE)
    assert not pending(quiet, port)
    assert call(quiet, "console_io", READ, 4, scratch_va(quiet)) == 0


def test_a_guest_echoes_its_input_event_by_event():
    from pathlib import Path

    from toyvisor.asm import assemble_file
    from toyvisor.tools.guest import Guest

    image = assemble_file(Path(__file__).with_name("pv_echo.s")).image
    guest = Guest(name="pv_echo", image=image, memory_size=0x10000, max_steps=100_000,
                  console_input=b"hi there\n")
    result = make_strategy("paravirtual").run(guest)
    assert result.stop_reason == "halted", result
    assert result.console == "[hi t][here][\n]"
    assert result.by_cause["hypercall:console_io"] == 6   # 3 reads, 3 writes
    assert result.by_cause["upcall"] == 3                 # one event per 4 bytes
