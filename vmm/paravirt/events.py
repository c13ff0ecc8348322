"""Event channels: the paravirtual interrupts (docs/paravirtual-abi.md, Shared info page).

A domain has ports 1–63.  A port is *unbound* (reserved for a named remote domain to bind to),
*interdomain* (connected to a port of another — or the same — domain) or bound to a *VIRQ*
(a virtual interrupt the VMM raises: ``VIRQ_TIMER`` from ``set_timer_op``, ``VIRQ_DOM_EXC`` to
dom0 when a domain shuts down or crashes).  Raising a port sets its bit in the domain's
``shared_info.evtchn_pending``; if the port is not masked the VMM sets ``upcall_pending``, wakes
the domain if it is blocked, and at the next instruction boundary with ``upcall_mask`` = 0
delivers an *upcall* to the registered callback (`Domain.maybe_upcall`).

In a domain of several vCPUs every port *notifies* one vCPU (vCPU 0 unless bound otherwise, as
Xen's ``notify_vcpu_id``): its ``upcall_pending`` is set, that vCPU is woken, and only that vCPU
takes the upcall.  An *IPI* port (``bind_ipi``) is bound to a vCPU of the domain itself: sending
on it raises it on that vCPU — the paravirtual inter-processor interrupt.  ``VIRQ_TIMER`` is per
vCPU (each vCPU binds its own, Xen's per-vCPU VIRQs); the other VIRQs are global.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .abi import (
    EEXIST,
    EINVAL,
    ENOSPC,
    NR_PORTS,
    SH_EVTCHN_MASK,
    SH_EVTCHN_PENDING,
    VI_UPCALL_PENDING,
    VIRQ_TIMER,
    HypercallError,
)

if TYPE_CHECKING:
    from .domain import Domain

UNBOUND, INTERDOMAIN, VIRQ, IPI = "unbound", "interdomain", "virq", "ipi"
#: VIRQs bound per vCPU (each vCPU its own port); the others are one per domain
PER_VCPU_VIRQS = frozenset({VIRQ_TIMER})
ALL_PORTS = (1 << NR_PORTS) - 1


class EventChannels:
    """The ports of one domain: port → (kind, a, b)."""

    def __init__(self, domain: Domain) -> None:
        self.domain = domain
        #: port → ("unbound", remote domid, 0) | ("interdomain", remote domid, remote port)
        #:        | ("virq", virq, 0) | ("ipi", 0, 0)
        self.ports: dict[int, tuple[str, int, int]] = {}
        #: port → the vCPU it notifies, for ports not notifying vCPU 0 (SMP domains)
        self.notify: dict[int, int] = {}

    def state(self) -> tuple:
        return tuple(sorted(self.ports.items()))

    def vcpu_ports(self, vcpu_id: int) -> int:
        """The bit mask of the ports that notify `vcpu_id`."""
        if not self.notify:
            return ALL_PORTS if vcpu_id == 0 else 0
        bits = 0
        for port in range(1, NR_PORTS):
            if self.notify.get(port, 0) == vcpu_id:
                bits |= 1 << port
        return bits

    def _free_port(self) -> int:
        for port in range(1, NR_PORTS):
            if port not in self.ports:
                return port
        raise HypercallError(ENOSPC, "no free port")

    def _bound(self, port: int) -> tuple[str, int, int]:
        entry = self.ports.get(port)
        if entry is None:
            raise HypercallError(EINVAL, f"port {port} is not bound")
        return entry

    # -- operations (the event_channel_op commands) ------------------------------------------------
    def alloc_unbound(self, remote: Domain) -> int:
        port = self._free_port()
        self.ports[port] = (UNBOUND, remote.domid, 0)
        return port

    def bind_interdomain(self, remote: Domain, remote_port: int) -> int:
        entry = remote.events.ports.get(remote_port)
        if entry is None or entry[0] != UNBOUND or entry[1] != self.domain.domid:
            raise HypercallError(EINVAL, f"port {remote_port} of domain {remote.domid} is not "
                                 f"reserved for domain {self.domain.domid}")
        port = self._free_port()
        self.ports[port] = (INTERDOMAIN, remote.domid, remote_port)
        remote.events.ports[remote_port] = (INTERDOMAIN, self.domain.domid, port)
        return port

    def bind_virq(self, virq: int, vcpu_id: int = 0) -> int:
        """Bind `virq` for `vcpu_id` (a per-vCPU VIRQ once per vCPU, a global one once)."""
        vcpu_id = vcpu_id if virq in PER_VCPU_VIRQS else 0
        if self.virq_port(virq, vcpu_id):
            raise HypercallError(EEXIST, f"VIRQ {virq} is already bound"
                                 + (f" for vCPU {vcpu_id}" if vcpu_id else ""))
        port = self._free_port()
        self.ports[port] = (VIRQ, virq, 0)
        self._bind_to(port, vcpu_id)
        return port

    def virq_port(self, virq: int, vcpu_id: int = 0) -> int:
        for port, (kind, a, _) in self.ports.items():
            if kind == VIRQ and a == virq and self.notify.get(port, 0) == vcpu_id:
                return port
        return 0

    def bind_ipi(self, vcpu_id: int) -> int:
        """A new IPI port notifying `vcpu_id` of this domain (EVTCHNOP_bind_ipi)."""
        port = self._free_port()
        self.ports[port] = (IPI, 0, 0)
        self._bind_to(port, vcpu_id)
        return port

    def bind_vcpu(self, port: int, vcpu_id: int) -> int:
        """Make `port` notify `vcpu_id` from now on (EVTCHNOP_bind_vcpu); a per-vCPU VIRQ
        stays with its vCPU (EINVAL), as in Xen."""
        kind, virq, _ = self._bound(port)
        if kind == VIRQ and virq in PER_VCPU_VIRQS:
            raise HypercallError(EINVAL, f"port {port} is a per-vCPU VIRQ")
        if kind == UNBOUND:
            raise HypercallError(EINVAL, f"port {port} is unbound")
        self._bind_to(port, vcpu_id)
        if self._bit(SH_EVTCHN_PENDING, port) and not self._bit(SH_EVTCHN_MASK, port):
            self._notify(port)
        return 0

    def _bind_to(self, port: int, vcpu_id: int) -> None:
        if vcpu_id:
            self.notify[port] = vcpu_id
        else:
            self.notify.pop(port, None)

    def send(self, port: int) -> int:
        kind, remote_id, remote_port = self._bound(port)
        if kind == IPI:
            self.raise_port(port)
            return 0
        if kind != INTERDOMAIN:
            raise HypercallError(EINVAL, f"port {port} is {kind}")
        remote = self.domain.system.domains.get(remote_id)
        if remote is not None:
            remote.events.raise_port(remote_port)
        return 0

    def close(self, port: int) -> int:
        kind, remote_id, remote_port = self._bound(port)
        if kind == INTERDOMAIN:
            remote = self.domain.system.domains.get(remote_id)
            if remote is not None and remote.events.ports.get(remote_port) == \
                    (INTERDOMAIN, self.domain.domid, port):
                remote.events.ports[remote_port] = (UNBOUND, self.domain.domid, 0)
        del self.ports[port]
        self.notify.pop(port, None)
        self._set_bit(SH_EVTCHN_PENDING, port, False)
        return 0

    def close_all(self) -> None:
        for port in list(self.ports):
            self.close(port)

    def unmask(self, port: int) -> int:
        self._bound(port)
        self._set_bit(SH_EVTCHN_MASK, port, False)
        if self._bit(SH_EVTCHN_PENDING, port):
            self._notify(port)
        return 0

    # -- raising -----------------------------------------------------------------------------------
    def raise_port(self, port: int) -> None:
        domain = self.domain
        if domain.shutdown_reason is not None or port not in self.ports:
            return
        self._set_bit(SH_EVTCHN_PENDING, port, True)
        if not self._bit(SH_EVTCHN_MASK, port):
            self._notify(port)

    def raise_virq(self, virq: int, vcpu_id: int = 0) -> None:
        port = self.virq_port(virq, vcpu_id if virq in PER_VCPU_VIRQS else 0)
        if port:
            self.raise_port(port)

    def _notify(self, port: int) -> None:
        domain = self.domain
        vcpu_id = self.notify.get(port, 0)
        domain.set_shared(domain.vcpu_info(VI_UPCALL_PENDING, vcpu_id), 1)
        domain.wake(vcpu_id)

    def _bit(self, base: int, port: int) -> bool:
        return bool(self.domain.shared(base + 4 * (port >> 5)) >> (port & 31) & 1)

    def _set_bit(self, base: int, port: int, on: bool) -> None:
        domain = self.domain
        offset = base + 4 * (port >> 5)
        word = domain.shared(offset)
        domain.set_shared(offset, word | 1 << (port & 31) if on else word & ~(1 << (port & 31)))


__all__ = ["INTERDOMAIN", "IPI", "PER_VCPU_VIRQS", "UNBOUND", "VIRQ", "EventChannels"]
