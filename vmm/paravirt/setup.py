"""The toolstack: wire dom0 and its domUs into a split-driver system (docs/paravirtualization.md,
"Split drivers").

What Xen's toolstack and xenstore do, done deterministically from Python before the first
instruction runs: for each domU (domids 1, 2, … in order) and each device (console, block)

* reserve one pfn of the domU for the ring page (the toolstack advances the domU's
  ``start_info.first_free`` past them, so its allocator never hands them out), zero it,
  initialise ``req_event`` = ``rsp_event`` = 1, and grant it to dom0 (writable) *on the domU's
  behalf* — a reference in the domU's grant table;
* allocate the event channel: an unbound port in the domU reserved for dom0, which dom0's side
  binds (interdomain) at once;
* write port and gref into the domU's start_info (0x20–0x2C) and the ring pages' pfns at 0x34/0x38,
  and one record ``{domid, console port, console gref, block port, block gref}`` per domU into
  dom0's start_info back-end table (count at 0x44, records from 0x48).
"""

from __future__ import annotations

import time
from types import MappingProxyType

import attrs

from toyvisor.isa.spec import PAGE_SIZE

from .abi import (
    SI_BLOCK_GREF,
    SI_BLOCK_PORT,
    SI_CONSOLE_GREF,
    SI_CONSOLE_PORT,
    SI_FIRST_FREE,
)
from .ioring import REQ_EVENT, RSP_EVENT, RingWatcher, read_ring

SI_CONSOLE_RING_PFN = 0x34
SI_BLOCK_RING_PFN = 0x38
SI_BACKENDS = 0x44          # dom0: number of back-end records
SI_BACKEND_TABLE = 0x48     # dom0: records of 5 words
BACKEND_RECORD = 20
MAX_BACKENDS = 8


class Connection:
    """One device connection between a domU front-end and dom0's back-end."""

    def __init__(self, kind: str, domu, ring_pfn: int, gref: int, domu_port: int,
                 dom0_port: int) -> None:
        self.kind, self.domu = kind, domu
        self.ring_pfn, self.gref = ring_pfn, gref
        self.domu_port, self.dom0_port = domu_port, dom0_port

    @property
    def ring_address(self) -> int:
        """Machine address of the ring page."""
        return self.domu.p2m[self.ring_pfn]


class System:
    """A booted split-driver system: the strategy, the hypervisor, dom0, the domUs, connections."""

    def __init__(self, strategy, hypervisor, dom0, domus, connections) -> None:
        self.strategy, self.hypervisor = strategy, hypervisor
        self.dom0, self.domus, self.connections = dom0, domus, connections
        self.wall_time = 0.0

    @property
    def console(self) -> str:
        """The real console (what dom0's back-end wrote with physdev_op)."""
        return self.hypervisor.machine.platform.console.text

    def run(self, max_steps: int | None = None) -> None:
        started = time.perf_counter()
        self.hypervisor.run(max_steps=max_steps)
        self.wall_time = time.perf_counter() - started


def _write_si(domain, offset: int, value: int) -> None:
    domain.memory.write32(domain.p2m[domain.start_info_pfn] + offset, value)


def _read_si(domain, offset: int) -> int:
    return domain.memory.read32(domain.p2m[domain.start_info_pfn] + offset)


def connect(dom0, domu, kind: str) -> Connection:
    """Create one front-end/back-end connection (the toolstack's work for one device)."""
    pfn = _read_si(domu, SI_FIRST_FREE)
    _write_si(domu, SI_FIRST_FREE, pfn + 1)
    frame = domu.p2m[pfn]
    memory = domu.memory
    memory.write(frame, bytes(PAGE_SIZE))
    memory.write32(frame + REQ_EVENT, 1)
    memory.write32(frame + RSP_EVENT, 1)
    gref = domu.grants.grant_access(dom0, pfn, 0)
    domu_port = domu.events.alloc_unbound(dom0)
    dom0_port = dom0.events.bind_interdomain(domu, domu_port)
    port_off, gref_off, pfn_off = {
        "console": (SI_CONSOLE_PORT, SI_CONSOLE_GREF, SI_CONSOLE_RING_PFN),
        "block": (SI_BLOCK_PORT, SI_BLOCK_GREF, SI_BLOCK_RING_PFN)}[kind]
    _write_si(domu, port_off, domu_port)
    _write_si(domu, gref_off, gref)
    _write_si(domu, pfn_off, pfn)
    domu.first_free_pfn = pfn + 1
    return Connection(kind, domu, pfn, gref, domu_port, dom0_port)


def boot_system(dom0_guest, domu_guests, *, disk: bytes | None = None, block=True,
                placement: str = "system", pool_pages: int = 16):
    """Create dom0 (privileged, domid 0) and the domUs (domids 1…), wire each domU's console
    (and, if `block` — a bool, or one bool per domU — block) front-end to dom0's back-end, and
    load `disk` (default: dom0's guest disk, else the first domU's) on the real machine's disk.  Returns a `System`; call
    ``.run()``."""
    from ..hypervisor import Hypervisor
    from ..strategies import make_strategy

    if len(domu_guests) > MAX_BACKENDS:
        raise ValueError(f"at most {MAX_BACKENDS} domUs")
    strategy = make_strategy("paravirtual")
    guests = [dom0_guest, *domu_guests]
    size = sum(-(-g.memory_size // PAGE_SIZE) * PAGE_SIZE for g in guests)
    hypervisor = Hypervisor(strategy, memory_size=(1 << 20) + size + pool_pages * PAGE_SIZE,
                            placement=placement)
    dom0 = strategy.create_domain(dom0_guest, privileged=True, name=f"{dom0_guest.name}#d0")
    domus = [strategy.create_domain(g, name=f"{g.name}#d{i + 1}")
             for i, g in enumerate(domu_guests)]
    blocks = [block] * len(domus) if isinstance(block, bool) else list(block)
    connections = []
    for i, domu in enumerate(domus):
        console = connect(dom0, domu, "console")
        blk = connect(dom0, domu, "block") if blocks[i] else None
        connections.append(console)
        if blk is not None:
            connections.append(blk)
        record = (domu.domid, console.dom0_port, console.gref,
                  blk.dom0_port if blk else 0, blk.gref if blk else 0)
        for j, word in enumerate(record):
            _write_si(dom0, SI_BACKEND_TABLE + BACKEND_RECORD * i + 4 * j, word)
    _write_si(dom0, SI_BACKENDS, len(domus))
    if disk is None:
        disk = dom0_guest.disk or next((g.disk for g in domu_guests if g.disk), None)
    if disk:
        hypervisor.machine.platform.disk.load(disk)
    return System(strategy, hypervisor, dom0, domus, connections)


@attrs.frozen
class SplitMeasurement:
    """A split-driver system run with every ring checked at every VMM entry (`measure`).

    `watchers` has one `RingWatcher` per connection (in `system.connections` order); `sends`
    counts event-channel sends per (sending domid, port)."""

    system: System
    watchers: tuple[RingWatcher, ...]
    sends: MappingProxyType = attrs.field(converter=lambda d: MappingProxyType(dict(d)))

    @property
    def findings(self) -> list[str]:
        """Every ring invariant a watcher saw broken (none, for a sound protocol)."""
        return [f for w in self.watchers for f in w.found]

    def stats(self) -> dict[int, dict[str, int]]:
        """Per domU: requests (``req_prod`` at the end) and notifications each way, per device."""
        memory = self.system.hypervisor.machine.memory
        out: dict[int, dict[str, int]] = {}
        for c in self.system.connections:
            s = out.setdefault(c.domu.domid, {})
            s[f"{c.kind} requests"] = read_ring(memory, c.ring_address).req_prod
            s[f"{c.kind} notifications to dom0"] = self.sends.get((c.domu.domid, c.domu_port), 0)
            s[f"{c.kind} notifications from dom0"] = self.sends.get((0, c.dom0_port), 0)
        return out


def measure(dom0_guest, domu_guests, **boot) -> SplitMeasurement:
    """Boot dom0 + `domu_guests` (`boot_system`'s keywords), check every ring at every VMM entry
    and once after the run, count the event sends per port, and run the system to the end."""
    system = boot_system(dom0_guest, domu_guests, **boot)
    memory = system.hypervisor.machine.memory
    watchers = tuple(RingWatcher(memory, c.ring_address, f"d{c.domu.domid}.{c.kind}")
                     for c in system.connections)
    strategy = system.strategy
    handle = strategy.handle

    def checked_handle(vm, event):
        for watcher in watchers:
            watcher.check()
        handle(vm, event)

    strategy.handle = checked_handle  # this system's strategy only
    sends: dict[tuple[int, int], int] = {}
    for domain in (system.dom0, *system.domus):
        def counted_send(port, _send=domain.events.send, _domid=domain.domid):
            sends[(_domid, port)] = sends.get((_domid, port), 0) + 1
            return _send(port)

        domain.events.send = counted_send
    system.run()
    for watcher in watchers:
        watcher.check()
    return SplitMeasurement(system, watchers, sends)


__all__ = ["Connection", "SplitMeasurement", "System", "boot_system", "connect", "measure"]
