"""Split drivers (docs/paravirtualization.md, "Split drivers"): dom0's back-ends (guests/dom0)
serve the console and block front-ends (guests/lib/pv_front.s) of domUs wired by the toolstack
(`toyvisor.vmm.paravirt.setup.boot_system`) over I/O rings in granted pages
(`toyvisor.vmm.paravirt.ioring`)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from toyvisor.tools.guest import Guest, load_guest
from toyvisor.vmm.paravirt import abi
from toyvisor.vmm.paravirt.ioring import (
    RING_SLOTS,
    RingModel,
    index_violations,
    read_ring,
)
from toyvisor.vmm.paravirt.setup import (
    SI_BACKEND_TABLE,
    SI_BACKENDS,
    SI_BLOCK_RING_PFN,
    SI_CONSOLE_RING_PFN,
    boot_system,
    measure,
)

REPO = Path(__file__).resolve().parents[2]
SECTOR_LINE = 'B: sector 1 says "Hello from sector 1 of the minikernel disk (disk.txt)!"'


def domu_hello(name: str = "hello") -> Guest:
    image = load_guest(REPO / "guests" / "dom0" / "domu_hello.s").image
    return Guest(name=name, image=image, memory_size=0x10000, max_steps=200_000)


def run_system(domus, block=True):
    """Boot dom0 + `domus`, check every ring at every VMM entry, count event sends per port."""
    return measure(load_guest("dom0"), domus, block=block,
                   disk=(REPO / "guests" / "minikernel" / "disk.txt").read_bytes())


def lines_of(console: str, domid: int) -> list[str]:
    prefix = f"[d{domid}] "
    return [line[len(prefix):] for line in console.splitlines() if line.startswith(prefix)]


# -- the Python model of the ring protocol ------------------------------------------------------------

def test_notifications_are_batched_by_the_event_indices():
    ring = RingModel()
    for _ in range(5):
        ring.produce()
    assert ring.push_requests()            # the back-end asked (req_event = 1)
    for _ in range(3):
        ring.produce()
        assert not ring.push_requests()    # it has not re-armed: no more notifications
    taken = []
    while (rid := ring.take_request()) is not None:
        taken.append(rid)
    assert taken == list(range(8)) and ring.req_event == 9
    ring.respond(3)                         # out of order
    ring.respond(0)
    assert ring.push_responses()
    assert sorted(ring.consume_responses()) == [0, 3]
    ring.produce()
    assert ring.push_requests()            # re-armed: notified again
    assert ring.notifications_to_back == 2 and not ring.violations()


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["produce", "push", "take", "respond", "rpush",
                                           "consume"]),
                          st.integers(0, 40)), max_size=300))
def test_ring_protocol_property(script):
    """Random interleavings of both sides, responses in random order: the invariants hold, no
    slot is overwritten before its response was consumed (the model raises), every request is
    answered exactly once, and no side is notified more often than the other published."""
    ring = RingModel()
    issued, answered = [], []
    pushes = rpushes = 0
    for op, n in script:
        if op == "produce":
            for _ in range(min(n % 8 + 1, ring.free_slots())):
                issued.append(ring.produce())
        elif op == "push":
            ring.push_requests()
            pushes += 1
        elif op == "take":
            for _ in range(n % 8 + 1):
                ring.take_request()
        elif op == "respond" and ring.pending:
            ring.respond(n % len(ring.pending))
        elif op == "rpush":
            ring.push_responses()
            rpushes += 1
        elif op == "consume":
            answered.extend(ring.consume_responses())
        assert not ring.violations(), ring.violations()
        assert (ring.req_prod_pvt - ring.rsp_cons) % 2**32 <= RING_SLOTS
        assert (ring.req_prod - ring.rsp_prod) % 2**32 <= RING_SLOTS
    # drain: publish everything, answer everything, consume everything
    ring.push_requests()
    while ring.take_request() is not None:
        pass
    while ring.pending:
        ring.respond(len(ring.pending) - 1)
    ring.push_responses()
    answered.extend(ring.consume_responses())
    assert sorted(answered) == sorted(issued) and len(set(answered)) == len(answered)
    assert not ring.outstanding
    assert ring.notifications_to_back <= pushes + 1
    assert ring.notifications_to_front <= rpushes + 1


def test_index_violations_are_reported():
    assert not index_violations(40, 10, 40, 10)
    assert index_violations(45, 10)                        # 35 outstanding
    assert index_violations(10, 11)                        # rsp_prod ahead of req_prod
    assert index_violations(50, 30, 50, rsp_cons=10)       # slot reused before consumed


# -- the toolstack ----------------------------------------------------------------------------------

def test_boot_system_wires_each_domu_like_a_toolstack():
    system = boot_system(load_guest("dom0"), [domu_hello("a"), domu_hello("b")])
    dom0 = system.dom0
    memory = system.hypervisor.machine.memory
    si0 = dom0.p2m[dom0.start_info_pfn]
    assert memory.read32(si0 + SI_BACKENDS) == 2
    for i, domu in enumerate(system.domus):
        si = domu.p2m[domu.start_info_pfn]
        record = [memory.read32(si0 + SI_BACKEND_TABLE + 20 * i + 4 * j) for j in range(5)]
        cport, cgref = memory.read32(si + abi.SI_CONSOLE_PORT), memory.read32(si + abi.SI_CONSOLE_GREF)
        bport, bgref = memory.read32(si + abi.SI_BLOCK_PORT), memory.read32(si + abi.SI_BLOCK_GREF)
        assert record[0] == domu.domid == i + 1
        assert record[2] == cgref and record[4] == bgref and cport and bport
        # the domU's ports are bound to dom0's, whose numbers the record carries
        assert domu.events.ports[cport] == ("interdomain", 0, record[1])
        assert dom0.events.ports[record[1]] == ("interdomain", domu.domid, cport)
        assert domu.events.ports[bport] == ("interdomain", 0, record[3])
        # the ring pages are granted to dom0, writable, and below the domU's first free pfn
        cpfn, bpfn = memory.read32(si + SI_CONSOLE_RING_PFN), memory.read32(si + SI_BLOCK_RING_PFN)
        assert domu.grants.entries[cgref][:3] == [0, cpfn, False]
        assert domu.grants.entries[bgref][:3] == [0, bpfn, False]
        assert memory.read32(si + abi.SI_FIRST_FREE) == max(cpfn, bpfn) + 1
        view = read_ring(memory, domu.p2m[cpfn])
        assert (view.req_prod, view.req_event, view.rsp_prod, view.rsp_event) == (0, 1, 0, 1)


# -- whole systems ----------------------------------------------------------------------------------

def test_two_tiny_domus_print_and_read_through_dom0():
    measured = run_system([domu_hello("a"), domu_hello("b")])
    system = measured.system
    console = system.console
    for domid in (1, 2):
        assert lines_of(console, domid) == ["hello through the console front-end"] * 3 + [
            "Hello from sector 1 of the minikernel disk (disk.txt)!"]
    for domain in (system.dom0, *system.domus):
        assert domain.vm.stop_reason == "halted", domain.vm.fault_report
    assert all(d.vm.console == "" for d in system.domus)  # nothing through console_io
    assert not measured.findings
    assert system.hypervisor.machine.platform.disk.reads == 2


def test_minikernel_port_twice_through_the_split_drivers():
    """dom0 + two PV minikernels: every console byte of the domUs goes through the console
    front-end/back-end (their own console_io console stays empty), task B reads sector 1 through
    the block back-end as natively, the rings stay sound at every VMM entry, and the
    notifications are batched."""
    mk = load_guest("minikernel")
    measured = run_system([mk, mk])
    system = measured.system
    console = system.console
    for domain in (system.dom0, *system.domus):
        assert domain.vm.stop_reason == "halted", domain.vm.fault_report
    for domid in (1, 2):
        lines = lines_of(console, domid)
        assert lines[0].startswith(f"[kernel] toyvisor minikernel booting (paravirtualized: "
                                   f"ring 1, domain {domid},")
        assert SECTOR_LINE in lines
        assert "[kernel] all tasks finished" in lines
        assert "A: done, I am task 1" in lines
        assert not any("no block front-end" in line for line in lines)
        assert lines[-1].endswith("shutting down")
    assert all(d.vm.console == "" for d in system.domus)
    assert not measured.findings
    assert all(w.checks > 100 for w in measured.watchers)
    # batching: fewer notifications than requests, both ways
    stats = measured.stats()
    for domid in (1, 2):
        s = stats[domid]
        assert s["console requests"] > 100
        assert s["console notifications to dom0"] < s["console requests"]
        assert s["console notifications from dom0"] < s["console requests"]
        assert s["block requests"] == 1
    # the back-end's real I/O: every byte out to the console port (one multicall per line),
    # the disk read twice
    dom0 = system.dom0.vm
    assert system.hypervisor.machine.platform.disk.reads == 2
    assert dom0.events["port_io"] >= len(console)
    assert dom0.by_cause["hypercall:multicall"] == console.count("\n")
    assert dom0.entries < len(console) // 10


def test_port_and_a_tiny_guest_tell_the_native_story():
    """dom0 + the PV minikernel + the tiny domU: the port's console (through the split drivers)
    is the native kernel's outcome under the guest's own rules — task B's sector included."""
    from toyvisor.tools.runner import run
    from toyvisor.vmm.outcome import Outcome, compare

    measured = run_system([load_guest("minikernel"), domu_hello()])
    system = measured.system
    guest = load_guest("minikernel")
    native = run(guest)
    port_console = "\n".join(lines_of(system.console, 1))
    assert compare(Outcome(native.console, b"", "halted"),
                   Outcome(port_console, b"", "halted"), guest.port_outcome) is None
    assert SECTOR_LINE in native.console and SECTOR_LINE in lines_of(system.console, 1)
    assert lines_of(system.console, 2)[-1] == \
        "Hello from sector 1 of the minikernel disk (disk.txt)!"
    assert not measured.findings
    assert system.dom0.vm.stop_reason == "halted"


def test_a_domu_port_without_a_block_back_end_gets_eio():
    """A domU has no disk of its own: with only a console back-end, read_sector is E_IO."""
    system = run_system([load_guest("minikernel")], block=False).system
    text = "\n".join(lines_of(system.console, 1))
    assert "read_sector(1) failed: -5" in text
    assert re.search(r"no block front-end yet", text)
    assert system.hypervisor.machine.platform.disk.reads == 0


def test_the_port_alone_is_dom0_and_drives_the_real_disk():
    from toyvisor.vmm.strategies import make_strategy

    strategy = make_strategy("paravirtual")
    result = strategy.run(load_guest("minikernel"))
    assert SECTOR_LINE in result.console
    assert result.by_cause["hypercall:physdev_op"] == 5
    assert strategy.hypervisor.machine.platform.disk.reads == 1
