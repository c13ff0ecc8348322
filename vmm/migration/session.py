"""`Session`: one migration of one VM between two hypervisors joined by a `Link`.

The session owns the mechanism every method shares — the two hosts, the migration's clock, page
transfer with compression, suspension, the switch-over, an abort when the link fails, the final
run and the comparison with a run that never migrated; a method (`toyvisor.vmm.migration.methods`)
only decides *which pages go when*.

The clock.  Ticks since the migration started (`at` guest steps into the run).  While the link
is busy for `t` ticks with the VM running, the VM executes `t` guest steps (fewer when
auto-converge throttles it); while it is suspended nothing runs and the clock still advances:
that span is the downtime.  The guest never sees the migration's clock — its own time is its
instructions — which is why a migrated VM can be *equivalent* to one that never moved.

What crosses the link: every page (8-byte header + its encoding, `compress`), and at the
switch-over the vCPU and the device registers (`STATE_BYTES`).  The disk is network-attached
storage, as in Clark et al. (NSDI 2005): both hosts see the same disk, nothing of it is sent.
"""

from __future__ import annotations

import attrs

from toyvisor.cpu.cpu import BUDGET
from toyvisor.isa.spec import NUM_REGS, PAGE_SHIFT, PAGE_SIZE

from ..hypervisor import DEFAULT_VMM_REGION, Hypervisor
from ..result import cost_cycles
from ..strategies import make_strategy
from ..vm import VMError
from .compress import PageDecoder, PageEncoder
from .dirty import DirtyLog, dirty_log_for
from .link import Link, LinkFailure, MigrationError
from .result import MigrationResult, Phase, Round

#: the vCPU (registers, pc, flags, CPL, idtr, cr0/2/3, ksp0-2) and the device registers (clock,
#: PIC pending and mask, timer period and deadline, console position, disk sector, address,
#: status): 4 bytes each
STATE_BYTES = 4 * ((NUM_REGS + 10) + 9)
#: the longest the VM runs between two looks at the link (ticks): the grain of the schedule
SLICE_TICKS = 512


def _round_up(size: int) -> int:
    return -(-size // PAGE_SIZE) * PAGE_SIZE


def guest_state(vm) -> tuple:
    """The guest-visible final state of `vm`: vCPU, memory, devices (console and disk streams,
    timer, pending interrupts, virtual clock), how it stopped."""
    snap = vm.snapshot()
    return snap.vcpu, snap.memory, snap.devices, snap.stop_reason or BUDGET


def describe_difference(migrated: tuple, unmigrated: tuple) -> str | None:
    """None when the two states are equal, else the first difference in words."""
    names = ("vCPU", "memory", "devices", "stop reason")
    for name, a, b in zip(names, migrated, unmigrated):
        if a == b:
            continue
        if name == "memory":
            for page in range(0, len(a), PAGE_SIZE):
                if a[page:page + PAGE_SIZE] != b[page:page + PAGE_SIZE]:
                    return f"guest page {page >> PAGE_SHIFT:#x} differs"
        if name in ("vCPU", "devices"):
            for field in attrs.fields(type(a)):
                if getattr(a, field.name) != getattr(b, field.name):
                    return f"{name} field '{field.name}' differs"
        return f"{name} differs ({a!r} vs {b!r})"
    return None


class Session:
    """One migration (see the module docstring).  Build it, then `run` it once."""

    def __init__(self, guest, strategy: str, method, *, link: Link | None = None, at: int = 0,
                 compression: frozenset[str] = frozenset(), dest_memory: int | None = None,
                 reference: tuple | None = None) -> None:
        if at < 0:
            raise MigrationError(f"the migration time must not be negative (got {at})")
        self.guest = guest
        self.method = method
        self.link = link or Link()
        self.at = at
        self.compression = compression
        size = _round_up(guest.memory_size)
        self.size = size
        self.npages = size >> PAGE_SHIFT
        self.strategy = make_strategy(strategy).spec
        # step 1 (choose the hosts) is checked before anything runs: a destination without
        # room is refused with the source VM untouched
        self.make_hosts(strategy, dest_memory)
        self.dest_vm = None
        self.clock = 0
        self.phases: list[Phase] = []
        self.rounds: list[Round] = []
        self.messages: list[str] = []
        self.encoder = PageEncoder(compression)
        self.decoder = PageDecoder()
        self.sends = [0] * self.npages
        self.pages_sent = 0
        self.wire_bytes = 0
        self.raw_bytes = 0
        self.suspended_at: int | None = None
        self.resumed_at: int | None = None
        self.committed_at: int | None = None
        self.stop_reason = ""
        self.outcome = "migrated"
        self.stale: tuple[int, ...] = ()
        self.network_faults = 0
        self.fault_stall = 0
        self.violations: tuple[str, ...] = ()
        self.throttle = None
        #: pages the destination put on other machine frames (paravirtual: the p2m changed)
        self.remapped = 0
        #: what the guest was told at its resume (paravirtual: its suspend hypercall's result)
        self.resume_value: int | None = None
        #: (final guest state, cycles) of the unmigrated run, computed on first need if None
        self.reference_run = reference
        self._ran = False
        self._sent_data = b""

    # -- the hosts and the pages (what a strategy with its own memory model overrides) ------------
    def make_hosts(self, strategy: str, dest_memory: int | None) -> None:
        """Both hypervisors, the VM booted at the source, its dirty log."""
        guest, size = self.guest, self.size
        self.source = Hypervisor(make_strategy(strategy), memory_size=DEFAULT_VMM_REGION + size)
        dest_size = dest_memory if dest_memory is not None else DEFAULT_VMM_REGION + size
        if dest_size % PAGE_SIZE or dest_size <= DEFAULT_VMM_REGION:
            raise MigrationError(f"the destination host needs more than its {DEFAULT_VMM_REGION}-"
                                 f"byte VMM region and a whole number of pages (got {dest_size})")
        self.dest = Hypervisor(make_strategy(strategy), memory_size=dest_size)
        room = max((end - start for start, end in self.dest.free), default=0)
        if room < size:
            raise MigrationError(f"the destination host has no room for {guest.name}: it needs "
                                 f"{size} bytes, the largest free range is {room}")
        self.vm = self.source.create_vm(guest, guest.name)
        self.vm.boot()
        self.log_dirty: DirtyLog = dirty_log_for(self.vm)

    def create_container(self):
        """Step 2: the destination's empty VM."""
        return self.dest.create_vm(self.guest, self.guest.name)

    def page_bytes(self, gfn: int) -> bytes:
        """Source page `gfn` as it goes on the wire."""
        start = self.vm.base + (gfn << PAGE_SHIFT)
        return bytes(self.source.machine.memory.data[start:start + PAGE_SIZE])

    def store_page(self, gfn: int, data: bytes) -> None:
        """The destination writes arrived page `gfn` into its container."""
        start = self.dest_vm.base + (gfn << PAGE_SHIFT)
        self.dest.machine.memory.data[start:start + PAGE_SIZE] = data
        self.dest.machine.code.invalidate(start, PAGE_SIZE)

    def last_pages(self, pages: set[int]) -> list[int]:
        """What the last copy (VM suspended) sends, given the pages still dirty."""
        return sorted(pages)

    def final_state(self, vm) -> tuple:
        """What equivalence compares (`guest_state`)."""
        return guest_state(vm)

    def unmigrated_run(self) -> tuple:
        return unmigrated(self.guest, self.strategy)

    # -- the clock and the VM ---------------------------------------------------------------------
    def note(self, text: str) -> None:
        self.messages.append(f"[{self.clock:>8}] {text}")

    def phase(self, name: str, start: int, detail: str = "") -> None:
        self.phases.append(Phase(name, start, self.clock, detail))
        self.note(f"{name}: {detail}" if detail else name)

    def run_vm(self, hypervisor, vm, steps: int) -> int:
        """Run `vm` for up to `steps` guest steps (its budget permitting); returns the steps run."""
        left = self.guest.max_steps - vm.steps
        steps = min(steps, left)
        if steps <= 0 or not vm.runnable:
            return 0
        before = vm.steps
        hypervisor.run(max_steps=steps)
        return vm.steps - before

    def advance(self, ticks: int, running: bool) -> None:
        """The link is busy for `ticks`; the source VM runs meanwhile if `running`.  Raises
        `LinkFailure` at the tick the link goes down (the VM having run until then)."""
        while ticks > 0:
            step = min(ticks, SLICE_TICKS)
            if self.link.fails_by(self.clock + step):
                step = max(self.link.fails_at - self.clock, 0)
                if running and step:
                    self.run_vm(self.source, self.vm, self._steps(step))
                self.clock += step
                raise LinkFailure(self.clock)
            if running:
                self.run_vm(self.source, self.vm, self._steps(step))
            self.clock += step
            ticks -= step

    def _steps(self, ticks: int) -> int:
        return ticks if self.throttle is None else self.throttle.steps(ticks)

    # -- pages ------------------------------------------------------------------------------------
    def encode(self, gfn: int) -> tuple[str, bytes, int]:
        """Encode source page `gfn` for the wire: (encoding, payload, wire bytes); counted as
        sent."""
        data = self.page_bytes(gfn)
        before_raw, before_wire = self.encoder.stats.raw_bytes, self.encoder.stats.wire_bytes
        kind, payload = self.encoder.encode(gfn, data)
        self._sent_data = data
        wire = self.encoder.stats.wire_bytes - before_wire
        self.raw_bytes += self.encoder.stats.raw_bytes - before_raw
        self.wire_bytes += wire
        self.pages_sent += 1
        self.sends[gfn] += 1
        return kind, payload, wire

    def receive(self, gfn: int, kind: str, payload: bytes) -> None:
        """The destination decodes page `gfn` into its container's memory."""
        data = self.decoder.decode(gfn, kind, payload)
        if data != self._sent_data:  # what arrived is not what left: a codec fault, never hidden
            self.stale += (gfn,)
        self.store_page(gfn, data)

    def send_pages(self, pages, *, running: bool) -> tuple[int, int]:
        """Send `pages` in order, the VM running meanwhile if `running`; each batch of pages is
        read when it leaves, so a write after that is the next round's.  Returns (wire bytes,
        ticks) including the latency of the last byte."""
        start_clock, start_bytes = self.clock, self.wire_bytes
        budget = int(self.link.bandwidth * SLICE_TICKS)
        batch = 0
        for gfn in pages:
            kind, payload, wire = self.encode(gfn)
            self.receive(gfn, kind, payload)
            batch += wire
            if batch >= budget:
                self.advance(self.link.transfer_ticks(batch), running)
                batch = 0
        self.advance(self.link.transfer_ticks(batch) + self.link.latency, running)
        return self.wire_bytes - start_bytes, self.clock - start_clock

    # -- the steps --------------------------------------------------------------------------------
    def start(self) -> None:
        """Run the VM to the migration time, then steps 1 and 2."""
        self.run_vm(self.source, self.vm, self.at)
        vm = self.vm
        if not vm.runnable or vm.steps < self.at:
            raise MigrationError(f"{self.guest.name} stopped ({vm.stop_reason}) after "
                                 f"{vm.steps} steps, before the migration time {self.at}")
        self.note(f"migrating {self.guest.name} ({self.npages} pages) under {self.strategy} "
                  f"by {self.method.spec} at step {vm.steps}")
        self.phase("choose-hosts", 0, f"source host A, destination host B ({self.link.bandwidth:g}"
                   f" bytes/tick, latency {self.link.latency} ticks)")
        start = self.clock
        self.advance(2 * self.link.latency, running=True)  # ask B for a container, hear back
        try:
            self.dest_vm = self.create_container()
        except VMError as error:  # checked at construction; kept for a caller's own hosts
            raise MigrationError(f"destination host: {error}") from None
        self.phase("init-container", start, f"{self.size} bytes reserved at host B")

    def suspend(self) -> None:
        self.suspended_at = self.clock
        self.note(f"VM suspended at host A after {self.vm.steps} steps")

    def send_state(self) -> None:
        """The vCPU and device registers cross the link (the VM is suspended)."""
        self.wire_bytes += STATE_BYTES
        self.raw_bytes += STATE_BYTES
        self.advance(self.link.transfer_ticks(STATE_BYTES) + self.link.latency, running=False)

    def install_state(self) -> None:
        """The container takes the VM's vCPU, devices and counters over its own memory."""
        snapshot = self.vm.snapshot()
        self.dest_vm.restore(attrs.evolve(snapshot, memory=self.dest_vm.memory.snapshot()))

    def check_pages(self) -> None:
        """Compare every page of the container with the (suspended) source: none may be
        missing or stale."""
        src = self.source.machine.memory.data
        dst = self.dest.machine.memory.data
        a, b = self.vm.base, self.dest_vm.base
        self.stale += tuple(g for g in range(self.npages)
                           if src[a + (g << PAGE_SHIFT):a + ((g + 1) << PAGE_SHIFT)]
                           != dst[b + (g << PAGE_SHIFT):b + ((g + 1) << PAGE_SHIFT)])
        if self.stale:
            self.note(f"{len(self.stale)} stale page(s): {', '.join(map(hex, self.stale[:8]))}")

    def commit(self, start: int) -> None:
        """Step 5: the source VM is gone."""
        self.source.destroy_vm(self.vm)
        self.committed_at = self.clock
        self.phase("commit", start, "the VM is destroyed at host A")

    def resume(self, start: int) -> None:
        """Step 6: the VM runs at the destination."""
        self.resumed_at = self.clock
        self.phase("resume", start, f"the VM runs at host B; downtime "
                   f"{self.resumed_at - self.suspended_at} ticks")

    # -- the whole ------------------------------------------------------------------------------
    def run(self) -> MigrationResult:
        if self._ran:
            raise MigrationError("a migration session runs once")
        self._ran = True
        try:
            self.start()
            self.method.migrate(self)
        except LinkFailure as failure:
            self._link_failed(failure)
        return self._finish()

    def _link_failed(self, failure: LinkFailure) -> None:
        self.note(str(failure))
        if self.committed_at is not None or self.resumed_at is not None:
            self.outcome = "lost"
            self.stop_reason = "link failed after the resume"
            self.note("the VM is lost: the source no longer runs it, the destination lacks pages")
            return
        self.outcome = "aborted"
        self.stop_reason = "link failed"
        self.log_dirty.stop()
        if self.dest_vm is not None:
            self.dest.destroy_vm(self.dest_vm)
            self.dest_vm = None
        self.suspended_at = self.resumed_at = None
        self.note("migration aborted: the container at host B is destroyed, the VM goes on at "
                  "host A")

    def _finish(self) -> MigrationResult:
        if self.outcome == "migrated":
            hypervisor, vm = self.dest, self.dest_vm
        elif self.outcome == "aborted":
            hypervisor, vm = self.source, self.vm
        else:
            hypervisor, vm = None, None
        if vm is not None:
            while self.run_vm(hypervisor, vm, self.guest.max_steps):
                pass
            if vm.runnable and vm.stop_reason is None:
                vm.stop(BUDGET)
        reference_state, reference_cycles = self.reference()
        if vm is None:
            equivalent, divergence, cycles, console = False, "the VM was lost", 0, ""
        else:
            divergence = describe_difference(self.final_state(vm), reference_state)
            equivalent = divergence is None and not self.stale
            if self.stale and divergence is None:
                divergence = f"{len(self.stale)} stale page(s) at the switch-over"
            cycles, console = cost_cycles(vm.events), vm.console
            self.violations = tuple(hypervisor.resource_violations(vm))
        downtime = (self.resumed_at - self.suspended_at) if self.resumed_at is not None else 0
        end = self.committed_at if self.committed_at is not None else self.clock
        encodings = dict(self.encoder.stats.pages)
        return MigrationResult(
            guest=self.guest.name, strategy=self.strategy, method=self.method.spec,
            bandwidth=self.link.bandwidth, latency=self.link.latency, at=self.at,
            compression=tuple(sorted(self.compression)), memory_pages=self.npages,
            outcome=self.outcome, phases=tuple(self.phases), rounds=tuple(self.rounds),
            stop_reason=self.stop_reason, total_ticks=end, downtime_ticks=downtime,
            pages_sent=self.pages_sent, wire_bytes=self.wire_bytes, raw_bytes=self.raw_bytes,
            pages_by_encoding=tuple(sorted(encodings.items())),
            network_faults=self.network_faults, fault_stall_ticks=self.fault_stall,
            max_sends_per_page=max(self.sends, default=0),
            dirty_log=self.log_dirty.mechanism if self.method.logs_dirty else "",
            dirty_log_faults=self.log_dirty.faults if self.method.logs_dirty else 0,
            stale_pages=self.stale, equivalent=equivalent, divergence=divergence,
            cycles=cycles, unmigrated_cycles=reference_cycles,
            resource_violations=self.violations, remapped_frames=self.remapped,
            resume_value=self.resume_value, log=tuple(self.messages),
            console=console)

    def reference(self) -> tuple:
        """(final guest state, cycles) of the same guest under the same strategy, unmigrated."""
        if self.reference_run is None:
            self.reference_run = self.unmigrated_run()
        return self.reference_run


def unmigrated(guest, strategy: str) -> tuple:
    """(final guest state, cycles) of `guest` run under `strategy` without migrating."""
    hypervisor = Hypervisor(make_strategy(strategy),
                            memory_size=DEFAULT_VMM_REGION + _round_up(guest.memory_size))
    vm = hypervisor.create_vm(guest, guest.name)
    vm.boot()
    hypervisor.run()
    if vm.runnable and vm.stop_reason is None:
        vm.stop(BUDGET)
    return guest_state(vm), cost_cycles(vm.events)


__all__ = ["STATE_BYTES", "Session", "describe_difference", "guest_state", "unmigrated"]
