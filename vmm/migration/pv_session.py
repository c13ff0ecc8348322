"""`PVSession`: the live migration of a paravirtual domain, driven by dom0's daemon (Xen's
``xl migrate``; docs/migration.md, "Paravirtual").

Each host is a paravirtual hypervisor with its dom0 (`toyvisor.vmm.migration.daemon` acts with
its identity).  At host A the toolstack created the domain with a control channel from dom0
(`toyvisor.vmm.paravirt.migrate`); host B's hypervisor keeps a larger region for itself
(`DEST_VMM_EXTRA`), so every pfn of the domain lands on another machine frame there: the p2m
really changes.

What differs from `Session` (the methods are the same files):

- **the dirty log** is the domain's log-dirty mode, switched on and read (a bitmap in dom0's
  memory) by dom0-only ``shadow_op`` hypercalls;
- **pages go pfn-indexed and canonical**: a page table's entries name pfns on the wire, and
  the destination writes its own machine frames into them as the page arrives; a page whose
  type changed since it was last sent goes again in the last copy;
- **the suspend is the guest's**: the daemon sends an event on the control channel, the guest
  calls ``sched_op shutdown(suspend)``; the downtime starts there.  At the destination the
  tables are validated and pinned again and the domain resumes from that hypercall with 0
  ("resumed in a new domain"); if the link fails first, it resumes at the source with 1
  (cancelled);
- **equivalence**: the guest reacts to being told (it runs its upcall handler, re-reads its
  machine frames), so it executes instructions an unmigrated run does not.  What is compared
  is therefore the canonical state: every page with machine frames rewritten as pfns, except
  the kernel's stack page (the upcall's frame is pushed there) and shared_info's two clocks
  (host time; the domain's instruction count); the devices (console and disk streams, timer,
  pending interrupts) without the virtual clock; how the run stopped.  The vCPU's registers
  are not compared (they hold machine addresses the guest re-read).  At the switch-over every
  page, canonicalized, must equal the source's (no page lost or stale).
- **post-copy** does not apply (`POST_COPY_WHY`).
"""

from __future__ import annotations

import attrs

from toyvisor.cpu.cpu import BUDGET
from toyvisor.isa.spec import PAGE_SHIFT, PAGE_SIZE

from ..hypervisor import DEFAULT_VMM_REGION, Hypervisor
from ..paravirt.abi import SH_SYSTEM_TIME, SH_VIRTUAL_TIME, HypercallError
from ..paravirt.migrate import (
    RESUMED_NEW_DOMAIN,
    cancel_suspend,
    canonical_page,
    check_movable,
    connect_control,
    empty_container,
    m2p_of,
    page_kinds,
    restore_context,
    save_context,
    suspended,
    uncanonical_page,
)
from ..result import cost_cycles
from ..strategies import make_strategy
from ..vm import VMError
from .daemon import Dom0Daemon
from .dirty import LogDirtyMode
from .link import LinkFailure, MigrationError
from .session import Session

#: host B's hypervisor keeps this much more memory for itself than host A's (its machine frames
#: for the domain are therefore others)
DEST_VMM_EXTRA = 64 * PAGE_SIZE
#: free machine frames each host has beyond dom0 and the domain
SLACK_PAGES = 8
#: guest steps the domain has to answer the suspend request
SUSPEND_TIMEOUT = 100_000
#: guest steps between two looks at whether it has suspended
SUSPEND_SLICE = 64
#: why post-copy is refused
POST_COPY_WHY = (
    "post-copy cannot move a paravirtual domain: the real MMU walks the guest's own page "
    "tables, so the destination must hold, rewrite and validate every one of them before the "
    "domain's first instruction, and its frames are known only once the guest has suspended; "
    "toyvisor, like Xen, moves paravirtual domains by pre-copy or stop-and-copy")


def _pages(size: int) -> int:
    return -(-size // PAGE_SIZE)


def build_host(dom0_guest, guest, *, vmm_region: int = DEFAULT_VMM_REGION,
               memory_size: int | None = None, audit: bool = True):
    """A paravirtual host running dom0 and `guest` as domain 1 with a control channel:
    (hypervisor, dom0, domain, dom0's control port)."""
    need = (_pages(dom0_guest.memory_size) + _pages(guest.memory_size) + SLACK_PAGES) * PAGE_SIZE
    hypervisor = Hypervisor(make_strategy("paravirtual"), vmm_region=vmm_region,
                            memory_size=memory_size or vmm_region + need, audit=audit)
    strategy = hypervisor.strategy
    dom0 = strategy.create_domain(dom0_guest, privileged=True, name=f"{dom0_guest.name}#d0")
    domain = strategy.create_domain(guest, name=guest.name)
    _, port = connect_control(dom0, domain)
    return hypervisor, dom0, domain, port


def domain_state(domain, reached_budget: bool = False) -> tuple:
    """The canonical final state of a domain (see the module docstring)."""
    vm = domain.vm
    memory = domain.memory.data
    kinds = page_kinds(domain)
    m2p = m2p_of(domain)
    stack = (domain.kernel_sp - 1) >> PAGE_SHIFT
    pages = []
    for pfn, frame in enumerate(domain.p2m):
        if pfn == stack or frame is None:
            pages.append(b"")
            continue
        page = bytearray(canonical_page(bytes(memory[frame:frame + PAGE_SIZE]),
                                        kinds.get(pfn), m2p))
        if pfn == domain.shared_info_pfn:
            for offset in (SH_SYSTEM_TIME, SH_VIRTUAL_TIME):
                page[offset:offset + 4] = bytes(4)
        pages.append(bytes(page))
    snap = vm.snapshot()
    return (None, b"".join(p.ljust(PAGE_SIZE, b"\0") for p in pages),
            attrs.evolve(snap.devices, clock=0), snap.stop_reason or BUDGET)


class PVSession(Session):
    """One migration of a paravirtual domain (see the module docstring)."""

    def __init__(self, guest, strategy: str, method, *, dom0=None, domid: int = 1,
                 caller: int = 0, **options) -> None:
        if method.name == "post-copy":
            raise MigrationError(POST_COPY_WHY)
        if dom0 is None:
            raise MigrationError("a paravirtual migration needs the hosts' dom0 guest")
        if guest.pv_image is None:
            raise MigrationError(f"{guest.name} has no paravirtual port (pv_source in its "
                                 "guest.toml) to run as a domain")
        self.dom0_guest = dom0
        self.domid = domid
        self.caller = caller
        self.resume_value: int | None = None
        super().__init__(guest, strategy, method, **options)

    # -- the hosts ----------------------------------------------------------------------------------
    def make_hosts(self, strategy: str, dest_memory: int | None) -> None:
        self.source, self.source_dom0, domain, self.control_port = build_host(
            self.dom0_guest, self.guest)
        caller = self.source.strategy.domains.get(self.caller)
        if caller is None:
            raise MigrationError(f"host A has no domain {self.caller} to run the daemon in")
        self.daemon = Dom0Daemon(caller, "A")
        self.domain = self.daemon.lookup(self.domid)  # dom0 only; the domain must exist
        try:
            check_movable(self.domain)
        except HypercallError as why:
            raise MigrationError(f"d{self.domid} cannot migrate: {why.why}") from None
        self.vm = self.domain.vm
        region = DEFAULT_VMM_REGION + DEST_VMM_EXTRA
        if dest_memory is not None and (dest_memory % PAGE_SIZE or dest_memory <= region):
            raise MigrationError(f"the destination host needs more than its {region}-byte VMM "
                                 f"region and a whole number of pages (got {dest_memory})")
        size = dest_memory or region + (_pages(self.dom0_guest.memory_size) + self.npages
                                        + SLACK_PAGES) * PAGE_SIZE
        self.dest = Hypervisor(make_strategy(strategy), memory_size=size, vmm_region=region)
        try:
            self.dest_dom0 = self.dest.strategy.create_domain(
                self.dom0_guest, privileged=True, name=f"{self.dom0_guest.name}#d0")
        except VMError as error:
            raise MigrationError(f"the destination host cannot even run its dom0: {error}") \
                from None
        free = len(self.dest.strategy.frames.pool)
        if free < self.npages:
            raise MigrationError(f"the destination host has no room for {self.guest.name}: it "
                                 f"needs {self.npages} machine frames, {free} are free")
        self.dest_daemon = Dom0Daemon(self.dest_dom0, "B")
        self.log_dirty = LogDirtyMode(self.daemon, self.domain)
        self.kinds: dict[int, str] = {}
        self.m2p: dict[int, int] = {}
        #: the kind each page had when it last left (None: plain data)
        self.sent_kind: dict[int, str | None] = {}
        self.p2m_at_start = tuple(self.domain.p2m)

    def create_container(self):
        domain = self.dest.strategy.create_domain(self.guest, name=self.guest.name)
        empty_container(domain)
        self.dest_domain = domain
        self.dest_control_port, self.dest_dom0_port = connect_control(self.dest_dom0, domain)
        return domain.vm

    # -- pages --------------------------------------------------------------------------------------
    def send_pages(self, pages, *, running: bool) -> tuple[int, int]:
        self.kinds = page_kinds(self.domain)  # the types as the round starts (Xen's PFINFO)
        self.m2p = m2p_of(self.domain)
        return super().send_pages(pages, running=running)

    def page_bytes(self, gfn: int) -> bytes:
        frame = self.domain.p2m[gfn]
        kind = self.kinds.get(gfn)
        self.sent_kind[gfn] = kind
        data = bytes(self.source.machine.memory.data[frame:frame + PAGE_SIZE])
        return canonical_page(data, kind, self.m2p)

    def store_page(self, gfn: int, data: bytes) -> None:
        frame = self.dest_domain.p2m[gfn]
        memory = self.dest.machine.memory
        memory.data[frame:frame + PAGE_SIZE] = uncanonical_page(data, self.sent_kind[gfn],
                                                                self.dest_domain.p2m)
        self.dest.machine.code.invalidate(frame, PAGE_SIZE)

    def last_pages(self, pages: set[int]) -> list[int]:
        kinds = page_kinds(self.domain)
        retyped = {g for g, kind in self.sent_kind.items() if kinds.get(g) != kind}
        return sorted(pages | retyped)

    def check_pages(self) -> None:
        kinds = page_kinds(self.domain)
        src, dst = self.source.machine.memory.data, self.dest.machine.memory.data
        m2p_a, m2p_b = m2p_of(self.domain), m2p_of(self.dest_domain)
        p2m_a, p2m_b = self.domain.p2m, self.dest_domain.p2m
        self.stale += tuple(
            g for g in range(self.npages)
            if canonical_page(bytes(src[p2m_a[g]:p2m_a[g] + PAGE_SIZE]), kinds.get(g), m2p_a)
            != canonical_page(bytes(dst[p2m_b[g]:p2m_b[g] + PAGE_SIZE]), kinds.get(g), m2p_b))
        if self.stale:
            self.note(f"{len(self.stale)} stale page(s): {', '.join(map(hex, self.stale[:8]))}")

    # -- the suspend and the switch-over ----------------------------------------------------------------
    def suspend(self) -> None:
        """Ask the guest to suspend and run it until it has (it answers in its upcall)."""
        if tuple(self.domain.p2m) != self.p2m_at_start:
            self.log_dirty.stop()
            raise MigrationError(f"d{self.domid} changed its machine frames (ballooned) during "
                                 "the migration")
        self.daemon.request_suspend(self.control_port)
        asked = self.clock
        while not suspended(self.domain):
            if self.clock - asked >= SUSPEND_TIMEOUT or not self.vm.runnable:
                self.log_dirty.stop()
                raise MigrationError(f"d{self.domid} did not answer the suspend request "
                                     f"(within {SUSPEND_TIMEOUT} of its steps): does its kernel "
                                     "handle the control channel (start_info SI_CONTROL_PORT)?")
            ran = self.run_vm(self.source, self.vm, SUSPEND_SLICE)
            self.clock += max(ran, 1)  # the guest's steps until its suspend; the link is idle
            if self.link.fails_by(self.clock):
                raise LinkFailure(self.clock)
        self.suspended_at = self.clock
        self.note(f"d{self.domid} suspended itself at host A after {self.vm.steps} steps, "
                  f"{self.clock - asked} ticks after the request (sched_op shutdown suspend)")

    def install_state(self) -> None:
        context = save_context(self.domain)
        snapshot = self.vm.snapshot()
        self.dest_vm.restore(attrs.evolve(
            snapshot, memory=self.dest_vm.memory.snapshot(), tlb=(), stop_reason=None,
            fault_report=None))
        try:
            restore_context(self.dest_domain, context, self.dest_control_port)
        except HypercallError as why:  # the tables arrived but do not validate: never hidden
            raise MigrationError(f"host B refused d{self.domid}'s page tables: {why}") from None
        self.dest_vm.vcpu.regs[1] = RESUMED_NEW_DOMAIN
        self.resume_value = RESUMED_NEW_DOMAIN
        self.remapped = sum(1 for a, b in zip(self.domain.p2m, self.dest_domain.p2m) if a != b)
        self.note(f"host B: {self.remapped} of {self.npages} pfns on new machine frames, tables "
                  f"pinned again; d{self.dest_domain.domid}'s suspend hypercall returns "
                  f"{RESUMED_NEW_DOMAIN} (resumed in a new domain)")

    def _link_failed(self, failure) -> None:
        super()._link_failed(failure)
        if self.outcome == "aborted" and suspended(self.domain):
            cancel_suspend(self.domain)
            self.resume_value = 1
            self.note(f"d{self.domid} resumes at host A: its suspend hypercall returns 1 "
                      "(cancelled)")

    # -- equivalence ----------------------------------------------------------------------------------
    def final_state(self, vm) -> tuple:
        return domain_state(vm.domain)

    def unmigrated_run(self) -> tuple:
        hypervisor, _dom0, domain, _port = build_host(self.dom0_guest, self.guest)
        hypervisor.run()
        vm = domain.vm
        if vm.runnable and vm.stop_reason is None:
            vm.stop(BUDGET)
        return domain_state(domain), cost_cycles(vm.events)


__all__ = ["DEST_VMM_EXTRA", "POST_COPY_WHY", "PVSession", "build_host", "domain_state"]
