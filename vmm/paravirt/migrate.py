"""Moving a domain between hypervisors: the hypervisor's and the toolstack's side of Xen's
save/restore (``xc_domain_save`` / ``xc_domain_restore``), for dom0's migration daemon
(`toyvisor.vmm.migration.daemon`).

- **The control channel.**  Xen's toolstack asks a guest to suspend through xenstore
  (``control/shutdown = suspend``), which reaches the guest as an event.  Here the toolstack
  connects an interdomain event channel dom0 → domU when it creates the domain and writes the
  domU's port into start_info (`SI_CONTROL_PORT`); an event on it means "suspend now".
- **The suspend.**  The guest answers with ``sched_op shutdown(SHUTDOWN_suspend)``: the domain
  stops *inside* that hypercall.  It resumes from it, at the destination, with ``r1`` = 0
  ("resumed in a new domain"), or at the source with ``r1`` = 1 when the migration failed
  (Xen's *suspend cancelled*).  That return value is how the guest is told.
- **Canonicalization.**  A page table names machine frames, which mean nothing at another host.
  On the way out every present entry of a typed page (`PT`/`PD`) has its frame replaced by the
  frame's pfn (the m2p), and the VMM hole's directory entries are cleared; the p2m array's
  words become pfns too.  At the destination, pfns become the *new* host's machine frames
  (`uncanonical_page`), the p2m array is rewritten, and every table the domain had pinned (and
  its base pointer) is validated and typed again through the frame table, exactly as a guest
  pin would be.
- **Host-local state.**  Event channels and grants belong to a host: a migrating domain may have
  no grant mapped or granted (its console is the VMM's ``console_io``), and at the destination
  its ports are fresh — the control channel is re-created there and its new port written to
  start_info, as Xen's restore rewrites start_info's store and console fields.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

import attrs

from toyvisor.isa.errors import ToyvisorError
from toyvisor.isa.spec import PAGE_SHIFT, PAGE_SIZE, PTE_FRAME, PTE_P

from ..vm import RUNNABLE
from .abi import EBUSY, HOLE_PDE, INVALID_MFN, SI_CONTROL_PORT, SI_DOMID, HypercallError
from .memory import PD, PT

if TYPE_CHECKING:
    from .domain import Domain

#: the page kind of the p2m array's pages (canonicalized like tables, never typed)
P2M = "p2m"
#: the suspend hypercall's return value: resumed in a new domain / suspend cancelled (Xen's)
RESUMED_NEW_DOMAIN, SUSPEND_CANCELLED = 0, 1

_words = struct.Struct("<1024I")


class CanonicalError(ToyvisorError):
    """A page that cannot be canonicalized (it names a frame that is not the domain's)."""


def _p2m_pfns(domain: Domain) -> range:
    return range(domain.p2m_pfn, domain.p2m_pfn + -(-len(domain.p2m) * 4 // PAGE_SIZE))


def page_kinds(domain: Domain) -> dict[int, str]:
    """pfn → kind of every page that names machine frames: typed tables and the p2m array (Xen's
    ``XEN_DOMCTL_PFINFO`` types); every other page is plain data."""
    ftype = domain.system.frames.ftype
    kinds = {pfn: ftype[m] for pfn, m in enumerate(domain.p2m) if m in ftype}
    kinds.update({pfn: P2M for pfn in _p2m_pfns(domain)})
    return kinds


def m2p_of(domain: Domain) -> dict[int, int]:
    """machine address → pfn of the domain's frames."""
    return {m: pfn for pfn, m in enumerate(domain.p2m) if m is not None}


def canonical_page(data: bytes, kind: str | None, m2p: dict[int, int]) -> bytes:
    """`data` with machine frames replaced by pfns (``mfn → pfn``) if `kind` names frames."""
    if kind is None:
        return data
    words = list(_words.unpack(data))
    if kind == P2M:
        for i, m in enumerate(words):
            if m != INVALID_MFN and m in m2p:
                words[i] = m2p[m] << PAGE_SHIFT
        return _words.pack(*words)
    for i, entry in enumerate(words):
        if kind == PD and i >= HOLE_PDE:
            words[i] = 0  # the VMM hole is the host's: the destination writes its own
        elif entry & PTE_P:
            pfn = m2p.get(entry & PTE_FRAME)
            if pfn is None:
                raise CanonicalError(f"{kind} entry {i} maps frame {entry & PTE_FRAME:#x}, "
                                     "which is not the domain's")
            words[i] = (pfn << PAGE_SHIFT) | (entry & ~PTE_FRAME)
    return _words.pack(*words)


def uncanonical_page(data: bytes, kind: str | None, p2m: list[int | None]) -> bytes:
    """The inverse at the destination: pfns become this host's machine frames."""
    if kind is None:
        return data
    words = list(_words.unpack(data))
    for i, entry in enumerate(words):
        if kind == P2M:
            if entry != INVALID_MFN and entry >> PAGE_SHIFT < len(p2m):
                words[i] = p2m[entry >> PAGE_SHIFT]
        elif entry & PTE_P and entry >> PAGE_SHIFT < len(p2m):
            words[i] = p2m[entry >> PAGE_SHIFT] | (entry & ~PTE_FRAME)
    return _words.pack(*words)


# -- the control channel and the suspend --------------------------------------------------------------
def connect_control(dom0: Domain, domu: Domain) -> tuple[int, int]:
    """Connect the toolstack's control channel (the toolstack's work at domain creation, or at
    the destination's restore); writes the domU's port to start_info; returns (the domU's port,
    dom0's port)."""
    port = domu.events.alloc_unbound(dom0)
    dom0_port = dom0.events.bind_interdomain(domu, port)
    domu.memory.write32(domu.p2m[domu.start_info_pfn] + SI_CONTROL_PORT, port)
    return port, dom0_port


def suspended(domain: Domain) -> bool:
    """Whether the domain stopped in its suspend hypercall."""
    return domain.shutdown_reason == "suspend"


def cancel_suspend(domain: Domain) -> None:
    """Resume a suspended domain where it was: its suspend hypercall returns 1."""
    vm = domain.vm
    domain.shutdown_reason = None
    vm.stop_reason = vm.fault_report = None
    vm.state = RUNNABLE
    vm.vcpu.regs[1] = SUSPEND_CANCELLED


def check_movable(domain: Domain) -> None:
    """A `HypercallError` unless the domain holds no host-local memory: no grant given or
    mapped (the frames behind a grant are another domain's business)."""
    if None in domain.p2m:
        raise HypercallError(EBUSY, f"domain {domain.domid} has ballooned pages out: the "
                                    "destination would back them")
    if domain.grants.entries or domain.grants.handles:
        raise HypercallError(EBUSY, f"domain {domain.domid} has grants (split-driver devices): "
                                  "their rings and mappings are host-local")


@attrs.frozen
class DomainContext:
    """What the toolstack sends besides the pages (Xen's vcpu context and domain info), in
    pfns: the page directory, the pinned tables, the virtual trap table and callbacks."""

    cr3_pfn: int
    pins: tuple[tuple[int, str], ...]
    trap_table: tuple[tuple[int, tuple[int, int]], ...]
    event_callback: int
    kernel_sp: int
    timer_deadline: int


def save_context(domain: Domain) -> DomainContext:
    m2p = m2p_of(domain)
    return DomainContext(m2p[domain.cr3], tuple(sorted((m2p[f], k) for f, k in domain.pins.items())),
                         tuple(sorted(domain.trap_table.items())), domain.event_callback,
                         domain.kernel_sp, domain.timer_deadline)


def empty_container(domain: Domain) -> None:
    """A freshly built domain becomes a container for an incoming one: the builder's start-of-
    day tables lose their types (their pages will be overwritten by what arrives)."""
    domain.system.frames.put_type(domain.cr3)
    domain.vm.pause()  # Xen creates the receiving domain paused


def restore_context(domain: Domain, context: DomainContext, control_port: int) -> None:
    """After every page arrived (uncanonicalized): the p2m array, start_info's host-local words,
    the tables validated and pinned, the base pointer, the vCPU's page directory."""
    table = domain.system.frames
    memory = domain.memory
    p2m = domain.p2m
    for i, m in enumerate(p2m):  # the guest's own p2m array names this host's frames
        offset = domain.p2m_pfn * PAGE_SIZE + 4 * i
        memory.write32(p2m[offset >> PAGE_SHIFT] + (offset & (PAGE_SIZE - 1)),
                       INVALID_MFN if m is None else m)
    si = p2m[domain.start_info_pfn]
    memory.write32(si + SI_DOMID, domain.domid)
    memory.write32(si + SI_CONTROL_PORT, control_port)
    for pfn, kind in context.pins:
        table.get_type(domain, p2m[pfn], kind)
        domain.pins[p2m[pfn]] = kind
    directory = p2m[context.cr3_pfn]
    table.get_type(domain, directory, PD)
    domain.vm.vcpu.cr3 = directory
    domain.vm.mmu.cr3 = directory
    domain.trap_table = dict(context.trap_table)
    domain.event_callback = context.event_callback
    domain.kernel_sp = context.kernel_sp
    domain.timer_deadline = context.timer_deadline
    domain.write_real_idt()


__all__ = ["P2M", "PD", "PT", "RESUMED_NEW_DOMAIN", "SI_CONTROL_PORT", "SUSPEND_CANCELLED",
           "CanonicalError", "DomainContext", "cancel_suspend", "canonical_page",
           "check_movable", "connect_control", "empty_container", "m2p_of", "page_kinds",
           "restore_context", "save_context", "suspended", "uncanonical_page"]
