"""``post-copy``: send the vCPU and device state first, resume at the destination at once, and
fetch each page when the guest first touches it there (a *network page fault*), while the
source pushes the rest in the background (active push) and every fault brings its neighbours
along (pre-paging).  Hines & Gopalan, VEE 2009; QEMU's postcopy-ram.

The destination's missing pages are watched at the machine level, as QEMU's userfaultfd watches
them on Linux: the first access by the vCPU, a page walker, the VMM or a DMA stalls until the
page is there (``2 × latency`` plus its transfer; the stall is not downtime, the VM runs, slower).
The fault handler is chained before the destination hypervisor's resource audit, which keeps
running: the audit unwatches a VM's own pages when it loads it, so the handler watches the
missing ones again after every load (it wraps the strategy's ``load`` hook).
Every page is sent exactly once, the downtime is only the state's transfer, and the migration is
committed — the source VM destroyed — when the last page has arrived.  Its weakness: if the link
fails after the resume, neither host has the whole VM (the result says ``lost``).
"""

from __future__ import annotations

from toyvisor.isa.spec import PAGE_SHIFT, PAGE_SIZE

from ..link import LinkFailure
from ..result import POST_COPY_PHASE, Round
from ..session import SLICE_TICKS
from . import Method, register

#: pages sent after a faulting one in the same reply (pre-paging)
PREPAGE = 4
#: guest steps the destination runs between two looks at the push (ticks)
CHUNK = SLICE_TICKS // 2


@register
class PostCopy(Method):
    name = "post-copy"

    def migrate(self, session) -> None:
        start = session.clock
        session.suspend()
        session.send_state()
        session.stop_reason = "post-copy"
        session.phase("suspend-copy", start, "the vCPU state only, VM suspended")
        start = session.clock
        session.install_state()  # over a container whose pages are all still missing
        fetcher = _Fetcher(session)
        session.resume(start)
        start = session.clock
        try:
            fetcher.run()
        finally:
            fetcher.close()
        session.rounds.append(Round(1, fetcher.pushed, 0, fetcher.push_bytes, fetcher.push_ticks))
        session.rounds.append(Round(2, fetcher.faulted, 0, fetcher.fault_bytes, session.fault_stall))
        session.phase(POST_COPY_PHASE, start, f"{fetcher.pushed} pages pushed, "
                      f"{fetcher.faulted} fetched by {session.network_faults} network faults")
        session.commit(session.clock)  # every page arrived once, decoded as it left the source


class _Fetcher:
    """The destination's side of post-copy: network faults, pre-paging, the push."""

    def __init__(self, session) -> None:
        self.session = session
        self.missing = set(range(session.npages))
        self.cursor = 0
        self.arrived: list[int] = []
        self.pushed = self.faulted = 0
        self.push_bytes = self.fault_bytes = self.push_ticks = 0
        vm = session.dest_vm
        self.base = vm.base
        memory = session.dest.machine.memory
        self.memory = memory
        self._previous = memory.audit  # the destination's resource audit (chained)
        memory.audit = self._access
        memory.watch(vm.base, vm.size, read=True, write=True)
        strategy = session.dest.strategy
        self._load = strategy.load

        def load(loaded, cpu, switch, _load=self._load):
            _load(loaded, cpu, switch)
            if switch and loaded is vm:  # the audit has just unwatched the VM's own pages
                self._watch_missing()

        strategy.load = load  # this destination's strategy only

    def _watch_missing(self) -> None:
        start = None
        for gfn in range(self.session.npages + 1):  # in runs: one call per range of pages
            if gfn in self.missing and gfn < self.session.npages:
                start = gfn if start is None else start
            elif start is not None:
                self.memory.watch(self.base + (start << PAGE_SHIFT), (gfn - start) << PAGE_SHIFT,
                                  read=True, write=True)
                start = None

    def _send(self, gfn: int) -> int:
        session = self.session
        kind, payload, wire = session.encode(gfn)
        session.receive(gfn, kind, payload)
        self.missing.discard(gfn)
        self.arrived.append(gfn)
        return wire

    def _access(self, access: str, pa: int, size: int, value) -> None:
        """The machine-level hook on the destination's missing pages: a network fault."""
        first = (pa - self.base) >> PAGE_SHIFT
        last = (pa + size - 1 - self.base) >> PAGE_SHIFT
        for gfn in range(first, last + 1):
            if gfn in self.missing:
                self._fault(gfn)
        if self._previous is not None:
            self._previous(access, pa, size, value)

    def _fault(self, gfn: int) -> None:
        session = self.session
        link = session.link
        wire = self._send(gfn)
        self.faulted += 1
        for near in range(gfn + 1, min(gfn + 1 + PREPAGE, session.npages)):
            if near in self.missing:
                wire += self._send(near)
                self.faulted += 1
        self.cursor = gfn + 1  # the push goes on from where the guest is working
        stall = 2 * link.latency + link.transfer_ticks(wire)
        session.network_faults += 1
        session.fault_stall += stall
        self.fault_bytes += wire
        if link.fails_by(session.clock + stall):
            session.clock = max(session.clock, link.fails_at)
            raise LinkFailure(session.clock)
        session.clock += stall

    def _push(self, ticks: int) -> None:
        """The source pushes pages in the background for `ticks` ticks of the link."""
        session = self.session
        budget = int(session.link.bandwidth * ticks)
        sent = 0
        while self.missing and sent < budget:
            while self.cursor < session.npages and self.cursor not in self.missing:
                self.cursor += 1
            if self.cursor >= session.npages:
                self.cursor = min(self.missing)
            sent += self._send(self.cursor)
            self.pushed += 1
        self.push_bytes += sent

    def _settle(self) -> None:
        for gfn in self.arrived:
            self.memory.unwatch(self.base + (gfn << PAGE_SHIFT), PAGE_SIZE)
        self.arrived = []

    def run(self) -> None:
        session = self.session
        while self.missing:
            ran = session.run_vm(session.dest, session.dest_vm, CHUNK)
            ticks = CHUNK if ran else session.link.transfer_ticks(
                len(self.missing) * (PAGE_SIZE + 8))
            if session.link.fails_by(session.clock + ticks):
                session.clock = max(session.clock, session.link.fails_at)
                raise LinkFailure(session.clock)
            session.clock += ticks
            self.push_ticks += ticks
            self._push(ticks)
            self._settle()

    def close(self) -> None:
        self._settle()
        self.memory.audit = self._previous
        self.session.dest.strategy.load = self._load
        if self.missing:  # the VM is lost: nothing more arrives
            self.memory.unwatch(self.base, self.session.dest_vm.size)
