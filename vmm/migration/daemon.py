"""dom0's migration daemon: the management operation that moves a paravirtual domain (Xen's
``xl migrate``, libxc's ``xc_domain_save`` on one side and ``xc_domain_restore`` on the other).

The daemon acts with dom0's identity: everything it asks of the hypervisor is a hypercall made
*as its caller domain* through the hypercall table's dispatcher, which refuses the dom0-only
rows (``domctl``, ``shadow_op``) to any other domain — so a migration started from a domU fails
at its first request (``-1 EPERM``), before anything has changed.  Its buffers (the domain list,
the dirty bitmap) live in its caller's memory, as libxc's live in dom0's.

What the daemon does itself, as the toolstack does in dom0's user space, is what Xen does
through foreign mappings: read the domain's frames to send them and write the new domain's
frames at the other end (`toyvisor.vmm.paravirt.migrate`).
"""

from __future__ import annotations

from toyvisor.isa.spec import PAGE_SIZE

from ..paravirt.hypercalls import BY_NAME, dispatch
from ..paravirt.log import errno_name
from ..paravirt.logdirty import read_bitmap
from .link import MigrationError

_DOMCTL, _SHADOW, _EVTCHN = (BY_NAME[n].number for n in ("domctl", "shadow_op",
                                                             "event_channel_op"))
_LIST, _SEND = 3, 3
_ENABLE, _CLEAN, _OFF = 0, 1, 2
#: domain records one ``domctl list`` returns at most
MAX_DOMAINS = 64


class Dom0Daemon:
    """The migration daemon at one host, acting as `caller` (see the module docstring)."""

    def __init__(self, caller, host: str) -> None:
        self.caller = caller
        self.host = host
        # its buffer: the caller's first free page (mapped writable by the domain builder)
        self.buffer = caller.first_free_pfn * PAGE_SIZE
        if caller.first_free_pfn >= len(caller.p2m) - 1:
            raise MigrationError(f"{caller.vm.name} has no free page for the daemon's buffer")

    def call(self, what: str, number: int, *args: int) -> int:
        result = dispatch(self.caller, number, args)
        if result < 0:
            entries = self.caller.refusals.entries
            why = entries[-1].reason if entries else ""
            raise MigrationError(f"host {self.host}: {what} refused to d{self.caller.domid}: "
                                 f"{errno_name(result)}: {why}")
        return result

    def lookup(self, domid: int):
        """The domain `domid` (``domctl list``, dom0 only): a `MigrationError` if the caller may
        not list domains or there is no such domain."""
        count = self.call("domctl list", _DOMCTL, _LIST, self.buffer, MAX_DOMAINS)
        ids = [self.caller.read_word(self.buffer + 16 * i) for i in range(count)]
        if domid not in ids:
            raise MigrationError(f"host {self.host} has no domain {domid} (domains: "
                                 f"{', '.join(map(str, ids))})")
        if domid == self.caller.domid:
            raise MigrationError(f"d{domid} is dom0 itself: the daemon moves other domains")
        return self.caller.system.domains[domid]

    def enable_logdirty(self, domid: int) -> None:
        self.call("shadow_op enable_logdirty", _SHADOW, _ENABLE, domid)

    def clean(self, domid: int, nr_pages: int) -> set[int]:
        """The pfns the domain dirtied since the last clean (``shadow_op clean``)."""
        words = -(-nr_pages // 32)
        self.call("shadow_op clean", _SHADOW, _CLEAN, domid, self.buffer, words)
        return read_bitmap(self.caller.read_words(self.buffer, words), nr_pages)

    def logdirty_off(self, domid: int) -> None:
        self.call("shadow_op off", _SHADOW, _OFF, domid)

    def request_suspend(self, port: int) -> None:
        """Ask the domain to suspend: an event on the control channel (xenstore's
        ``control/shutdown`` in Xen)."""
        self.call("event_channel_op send", _EVTCHN, _SEND, port)


__all__ = ["Dom0Daemon", "MAX_DOMAINS"]
